// Bilinear resize of uint8 grayscale images to size x size floats in [0, 1], as PyTorch's
// F.interpolate(x / 255, mode="bilinear", align_corners=False) without antialias:
//   src = max((dst + 0.5) * in / out - 0.5, 0), i0 = floor(src), i1 = min(i0 + 1, in - 1), t = src - i0,
//   out = lerp(lerp(x[y0, x0], x[y0, x1], tx), lerp(x[y1, x0], x[y1, x1], tx), ty) / 255.
// Pixels arrive packed four per u32 word (byte k of the upload is bits 8 * (k % 4) of word k / 4).
// Thread mapping: one invocation per output pixel, linear over [N, size, size].
struct Params {
  count: u32, // output pixels
  height: u32,
  width: u32,
  size: u32,
  scale_y: f32, // height / size
  scale_x: f32, // width / size
}

//!include per_element.wgsl
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> pixels: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

fn pixel(index: u32) -> f32 {
  return f32((pixels[index / 4u] >> (8u * (index % 4u))) & 0xffu);
}

// Source position of output coordinate `dst`: the lower neighbour, the upper one and the weight of the upper.
struct Taps {
  lo: u32,
  hi: u32,
  t: f32,
}

fn taps(dst: u32, scale: f32, in_size: u32) -> Taps {
  let src = max((f32(dst) + 0.5) * scale - 0.5, 0.0);
  let lo = min(u32(src), in_size - 1u);
  return Taps(lo, min(lo + 1u, in_size - 1u), src - f32(lo));
}

fn element(i: u32) {
  let cell = plane_cell(i, p.size, p.size);
  let ty = taps(cell.row, p.scale_y, p.height);
  let tx = taps(cell.col, p.scale_x, p.width);
  let base = cell.plane * p.height * p.width;
  let row_lo = base + ty.lo * p.width;
  let row_hi = base + ty.hi * p.width;
  let top = (1.0 - tx.t) * pixel(row_lo + tx.lo) + tx.t * pixel(row_lo + tx.hi);
  let bottom = (1.0 - tx.t) * pixel(row_hi + tx.lo) + tx.t * pixel(row_hi + tx.hi);
  out[i] = ((1.0 - ty.t) * top + ty.t * bottom) / 255.0;
}
