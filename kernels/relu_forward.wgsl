// ReLU forward: y[i] = max(x[i], 0).
// Thread mapping: one invocation per element; workgroups are laid out in x then y (see Gpu.dispatch).
struct Params {
  count: u32,
}

//!include per_element.wgsl
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

fn element(i: u32) {
  y[i] = max(x[i], 0.0);
}
