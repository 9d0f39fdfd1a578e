// MaxPool2d backward in gather form (no atomics, so the result is deterministic):
// dx[plane, iy, ix] = sum of dy[plane, oy, ox] over the windows that contain (iy, ix) and whose saved argmax
// is this element, visited row-major.
// Thread mapping: one invocation per input element, linear over [N * C, H, W]. The windows containing row iy
// are oy in [ceil((iy + pad - k + 1) / s), floor((iy + pad) / s)] clipped to [0, OH - 1]; likewise columns.
struct Params {
  planes: u32,
  height: u32,
  width: u32,
  out_height: u32,
  out_width: u32,
  kernel: u32,
  stride: u32,
  padding: u32,
}

//!include element_index.wgsl
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> indices: array<u32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

// The first output position whose window (starting at o * stride - padding) reaches position `i`.
fn first_window(i: u32) -> u32 {
  let reach = i32(i + p.padding) - i32(p.kernel) + 1;
  if (reach <= 0) {
    return 0u;
  }
  return (u32(reach) + p.stride - 1u) / p.stride;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = element_index(wid, nwg, lid);
  let in_plane = p.height * p.width;
  if (i >= p.planes * in_plane) {
    return;
  }
  let index = i % in_plane;
  let ix = index % p.width;
  let iy = index / p.width;
  let out_base = (i / in_plane) * p.out_height * p.out_width;
  let oy_end = min((iy + p.padding) / p.stride + 1u, p.out_height);
  let ox_end = min((ix + p.padding) / p.stride + 1u, p.out_width);

  var sum = 0.0;
  for (var oy = first_window(iy); oy < oy_end; oy++) {
    for (var ox = first_window(ix); ox < ox_end; ox++) {
      let o = out_base + oy * p.out_width + ox;
      if (indices[o] == index) {
        sum += dy[o];
      }
    }
  }
  dx[i] = sum;
}
