// MaxPool2d forward, as PyTorch's max_pool2d: floor output size, padding positions count as -inf (they are
// skipped; PyTorch's padding <= kernel / 2 guarantees every window holds at least one real element).
// Thread mapping: one invocation per output element, linear over [N * C, OH, OW]. It scans its window
// row-major and keeps the first maximum (strict >, so ties go to the earliest element; a NaN wins, as in
// PyTorch). In training it also writes the argmax as the flat index iy * W + ix within the input plane,
// which the backward kernel gathers against.

// True in training: also write the argmax (in eval, `indices` is a placeholder that is never written).
override save_indices: bool = false;

//!include maxpool2d_params.wgsl
//!include per_element.wgsl
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> indices: array<u32>;

// WGSL lets a compiler assume no float is NaN, and lavapipe's (Vulkan) does: it folds `v != v` to false. So NaN
// is told by its bits (all-ones exponent, non-zero mantissa), and a NaN best is never compared again.
fn is_nan(v: f32) -> bool {
  return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

fn element(i: u32) {
  let cell = plane_cell(i, p.out_height, p.out_width);
  let base = cell.plane * p.height * p.width;
  let y0 = i32(cell.row * p.stride) - i32(p.padding);
  let x0 = i32(cell.col * p.stride) - i32(p.padding);

  var best = 0.0;
  var best_index = 0u;
  var found = false;
  for (var ky = 0u; ky < p.kernel; ky++) {
    let iy = y0 + i32(ky);
    if (iy < 0 || iy >= i32(p.height)) {
      continue;
    }
    for (var kx = 0u; kx < p.kernel; kx++) {
      let ix = x0 + i32(kx);
      if (ix < 0 || ix >= i32(p.width)) {
        continue;
      }
      let index = u32(iy) * p.width + u32(ix);
      let v = x[base + index];
      if (!found || (!is_nan(best) && (is_nan(v) || v > best))) {
        best = v;
        best_index = index;
        found = true;
      }
    }
  }
  y[i] = best;
  if (save_indices) {
    indices[i] = best_index;
  }
}
