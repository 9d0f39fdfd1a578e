// MaxPool2d backward in gather form (no atomics, so the result is deterministic):
// dx[plane, iy, ix] = sum of dy[plane, oy, ox] over the windows that contain (iy, ix) and whose saved argmax
// is this element, visited row-major.
// Thread mapping: one invocation per input element, linear over [N * C, H, W]. The windows containing row iy
// are oy in [ceil((iy + pad - k + 1) / s), floor((iy + pad) / s)] clipped to [0, OH - 1]; likewise columns.
//!include maxpool2d_params.wgsl
//!include per_element.wgsl
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

fn element(i: u32) {
  let cell = plane_cell(i, p.height, p.width);
  let index = cell.row * p.width + cell.col;
  let out_base = cell.plane * p.out_height * p.out_width;
  let oy_end = min((cell.row + p.padding) / p.stride + 1u, p.out_height);
  let ox_end = min((cell.col + p.padding) / p.stride + 1u, p.out_width);

  var sum = 0.0;
  for (var oy = first_window(cell.row); oy < oy_end; oy++) {
    for (var ox = first_window(cell.col); ox < ox_end; ox++) {
      let o = out_base + oy * p.out_width + ox;
      if (indices[o] == index) {
        sum += dy[o];
      }
    }
  }
  dx[i] = sum;
}
