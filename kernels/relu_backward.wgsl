// ReLU backward from the saved output: dx[i] = dy[i] where y[i] > 0, else 0 (PyTorch's threshold_backward).
// Thread mapping: one invocation per element.
struct Params {
  count: u32,
}

//!include element_index.wgsl
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = element_index(wid, nwg, lid);
  if (i >= p.count) {
    return;
  }
  dx[i] = select(0.0, dy[i], y[i] > 0.0);
}
