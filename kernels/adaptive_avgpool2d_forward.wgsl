// AdaptiveAvgPool2d forward, as PyTorch: output cell (oy, ox) averages input rows
// [floor(oy * H / OH), ceil((oy + 1) * H / OH)) and the columns defined the same way.
// Thread mapping: one invocation per output element, linear over [N * C, OH, OW]; it sums its window
// row-major and divides by the window's area.
//!include per_element.wgsl
//!include adaptive_pool_window.wgsl
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

fn element(i: u32) {
  let window = span(i, p.out_height, p.out_width, p.height, p.width);
  var sum = 0.0;
  for (var iy = window.rows.start; iy < window.rows.end; iy++) {
    for (var ix = window.cols.start; ix < window.cols.end; ix++) {
      sum += x[window.base + iy * p.width + ix];
    }
  }
  let area = (window.rows.end - window.rows.start) * (window.cols.end - window.cols.start);
  y[i] = sum / f32(area);
}
