// MaxPool2d backward in scatter form, one invocation per plane (the software family's: llvmpipe runs few
// lanes, and this form reads each output gradient and argmax once, with no division per element):
// dx[plane] = 0, then dx[plane, indices[o]] += dy[plane, o] for the plane's outputs o in row-major order.
// Each element's sum is the gather form's (kernels/maxpool2d_backward.wgsl), term for term in the same
// order, so both give the same bits; one invocation owns a plane, so no atomics are needed.
// Thread mapping: one invocation per plane of [N * C] (p.count = planes).
//!include maxpool2d_params.wgsl
//!include per_element.wgsl
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> indices: array<u32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

fn element(plane: u32) {
  let base = plane * p.height * p.width;
  for (var i = 0u; i < p.height * p.width; i++) {
    dx[base + i] = 0.0;
  }
  let outputs = p.out_height * p.out_width;
  for (var o = plane * outputs; o < (plane + 1u) * outputs; o++) {
    dx[base + indices[o]] += dy[o];
  }
}
