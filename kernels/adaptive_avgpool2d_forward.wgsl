// AdaptiveAvgPool2d forward, as PyTorch: output cell (oy, ox) averages input rows
// [floor(oy * H / OH), ceil((oy + 1) * H / OH)) and the columns defined the same way.
// Thread mapping: one invocation per output element, linear over [N * C, OH, OW]; it sums its window
// row-major and divides by the window's area.
//!include element_index.wgsl
//!include adaptive_pool_window.wgsl
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = element_index(wid, nwg, lid);
  let out_plane = p.out_height * p.out_width;
  if (i >= p.planes * out_plane) {
    return;
  }
  let ox = i % p.out_width;
  let oy = (i / p.out_width) % p.out_height;
  let base = (i / out_plane) * p.height * p.width;
  let y_start = window_start(oy, p.height, p.out_height);
  let y_end = window_end(oy, p.height, p.out_height);
  let x_start = window_start(ox, p.width, p.out_width);
  let x_end = window_end(ox, p.width, p.out_width);

  var sum = 0.0;
  for (var iy = y_start; iy < y_end; iy++) {
    for (var ix = x_start; ix < x_end; ix++) {
      sum += x[base + iy * p.width + ix];
    }
  }
  y[i] = sum / f32((y_end - y_start) * (x_end - x_start));
}
