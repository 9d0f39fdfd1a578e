// ReLU forward: y[i] = max(x[i], 0).
// Thread mapping: one invocation per element; workgroups are laid out in x then y (see Gpu.dispatch).
struct Params {
  count: u32,
}

//!include element_index.wgsl
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = element_index(wid, nwg, lid);
  if (i >= p.count) {
    return;
  }
  y[i] = max(x[i], 0.0);
}
