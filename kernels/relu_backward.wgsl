// ReLU backward from the saved output: dx[i] = dy[i] where y[i] > 0, else 0 (PyTorch's threshold_backward).
// Thread mapping: one invocation per element.
struct Params {
  count: u32,
}

//!include per_element.wgsl
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

fn element(i: u32) {
  dx[i] = select(0.0, dy[i], y[i] > 0.0);
}
