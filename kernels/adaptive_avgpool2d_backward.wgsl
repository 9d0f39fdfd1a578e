// AdaptiveAvgPool2d backward in gather form (deterministic, no atomics):
// dx[plane, iy, ix] = sum over the output cells whose window contains (iy, ix) of dy / window area.
// Thread mapping: one invocation per input element, linear over [N * C, H, W]. Row iy lies in the windows
// oy in [floor(iy * OH / H), ceil((iy + 1) * OH / H) - 1] (the inverse of the forward's window bounds);
// likewise columns. Cells are visited row-major.
//!include element_index.wgsl
//!include adaptive_pool_window.wgsl
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;

// Number of input positions in window o of an adaptive pooling from `size` to `out_size`.
fn window_length(o: u32, size: u32, out_size: u32) -> u32 {
  return window_end(o, size, out_size) - window_start(o, size, out_size);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = element_index(wid, nwg, lid);
  let in_plane = p.height * p.width;
  if (i >= p.planes * in_plane) {
    return;
  }
  let ix = i % p.width;
  let iy = (i / p.width) % p.height;
  let out_base = (i / in_plane) * p.out_height * p.out_width;
  let oy_start = window_start(iy, p.out_height, p.height);
  let oy_end = window_end(iy, p.out_height, p.height);
  let ox_start = window_start(ix, p.out_width, p.width);
  let ox_end = window_end(ix, p.out_width, p.width);

  var sum = 0.0;
  for (var oy = oy_start; oy < oy_end; oy++) {
    let rows = window_length(oy, p.height, p.out_height);
    for (var ox = ox_start; ox < ox_end; ox++) {
      let area = rows * window_length(ox, p.width, p.out_width);
      sum += dy[out_base + oy * p.out_width + ox] / f32(area);
    }
  }
  dx[i] = sum;
}
