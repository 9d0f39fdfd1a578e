// AdaptiveAvgPool2d backward in gather form (deterministic, no atomics):
// dx[plane, iy, ix] = sum over the output cells whose window contains (iy, ix) of dy / window area.
// Thread mapping: one invocation per input element, linear over [N * C, H, W]. Row iy lies in the windows
// oy in [floor(iy * OH / H), ceil((iy + 1) * OH / H) - 1] (the inverse of the forward's window bounds);
// likewise columns. Cells are visited row-major.
//!include per_element.wgsl
//!include adaptive_pool_window.wgsl
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;

// Number of input positions in window o of an adaptive pooling from `size` to `out_size`.
fn window_length(o: u32, size: u32, out_size: u32) -> u32 {
  let w = window(o, size, out_size);
  return w.end - w.start;
}

fn element(i: u32) {
  // The output cells whose windows contain this input position.
  let cells = span(i, p.height, p.width, p.out_height, p.out_width);
  var sum = 0.0;
  for (var oy = cells.rows.start; oy < cells.rows.end; oy++) {
    let height = window_length(oy, p.height, p.out_height);
    for (var ox = cells.cols.start; ox < cells.cols.end; ox++) {
      let area = height * window_length(ox, p.width, p.out_width);
      sum += dy[cells.base + oy * p.out_width + ox] / f32(area);
    }
  }
  dx[i] = sum;
}
