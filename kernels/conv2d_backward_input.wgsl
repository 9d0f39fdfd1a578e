// Conv2d input gradient as a transposed implicit GEMM, in gather form (every dx element is written once):
//   dx[n, c, ih, iw] = sum over (kh, kw, o) of g[n, o, oh, ow] * w[o, c, kh, kw]
// over the output positions that read (ih, iw) through tap (kh, kw): oh*s = ih + p - kh and ow*s = iw + p - kw
// (exact division, inside the output). g is the output gradient (already masked by the ReLU when fused, see
// conv2d_backward_bias.wgsl).
//
// Thread mapping (the register-blocked GEMM of conv2d_common.wgsl, for llvmpipe's lanes-as-invocations):
// - matrix rows are input channels, columns are input pixels: a workgroup computes 128 channels x 32 pixels,
//   invocation `lid` 16 channels x the 32 pixels. With the override rowQuads = 3 an invocation owns 12
//   channels and a workgroup 96, which wastes no lanes on 96-channel layers (measured ~15% faster there);
// - pixels are workgroup-uniform, so the 32 gradient loads per step and the stride/padding checks are
//   uniform; only the 16 weight loads (four input channels of one output channel, from the OIHW tensor)
//   differ per lane;
// - taps outside, output channels inside; a tap that no pixel of the block receives is skipped. With stride
//   s > 1 a pixel (ih, iw) only receives taps with kh = ih + p, kw = iw + p (mod s), so pixels are numbered
//   by residue class first, (ih mod s, iw mod s, n, ih div s, iw div s), on a grid of ceil(h/s) x ceil(w/s)
//   per class (grid points past the image are computed and dropped), and a block of 32 pixels mostly
//   shares one class: it runs about (k/s)^2 taps, not k^2. With s = 1 this is the plain (n, ih, iw) order.
//
//!include conv2d_common.wgsl
//!include conv2d_taps.wgsl
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

fn streamed(i: u32) -> f32 {
  return g[i];
}

// A quad of pixels (v.. in the residue-class order): base offset of its image in g, and (ih + p), (iw + p)
// divided by the stride, quotient and remainder.
struct Quad {
  base: vec4u,
  rowQuotient: vec4i,
  colQuotient: vec4i,
  rowRemainder: vec4u,
  colRemainder: vec4u,
}

fn quad(q: u32) -> Quad {
  let rows = (p.height + p.stride - 1u) / p.stride;
  let cols = (p.width + p.stride - 1u) / p.stride;
  let perClass = p.n * rows * cols;
  let v = clampedQuad(q, p.stride * p.stride * perClass);
  let residue = v / perClass;
  let rest = v % perClass;
  let n = rest / (rows * cols);
  let ih = residue / p.stride + (rest % (rows * cols)) / cols * p.stride;
  let iw = residue % p.stride + rest % cols * p.stride;
  let row = ih + p.padding;
  let col = iw + p.padding;
  return Quad(n * p.out_channels * p.out_height * p.out_width, vec4i(row / p.stride), vec4i(col / p.stride),
              row % p.stride, col % p.stride);
}

// A quad's gradient offsets at one tap, invalid where no output position reads the pixel through it.
// Output position (oh, ow) reads pixel (ih, iw) through tap (kh, kw) when oh*s + kh = ih + p, i.e. with
// kh = a*s + b: (ih + p) mod s = b and oh = (ih + p) div s - a. The quotients and remainders come precomputed
// from quad(): a vector division here made llvmpipe's shader compiler need over 10 GB of memory.
fn tap(px: Quad, kh: u32, kw: u32) -> Tap {
  let oh = px.rowQuotient - i32(kh / p.stride);
  let ow = px.colQuotient - i32(kw / p.stride);
  // Negative positions wrap to huge unsigned values, so one comparison checks both ends.
  let used = (px.rowRemainder == vec4u(kh % p.stride)) & (px.colRemainder == vec4u(kw % p.stride)) &
    (vec4u(oh) < vec4u(p.out_height)) & (vec4u(ow) < vec4u(p.out_width));
  return Tap(select(vec4u(0u), px.base + vec4u(oh) * p.out_width + vec4u(ow), used), used);
}

// Writes one accumulator (channels c.., pixels v.. of the residue-class order), skipping grid points past the
// image.
fn store(acc: mat4x4f, c: u32, v: u32) {
  let rows = (p.height + p.stride - 1u) / p.stride;
  let cols = (p.width + p.stride - 1u) / p.stride;
  let perClass = p.n * rows * cols;
  for (var col = 0u; col < 4u; col++) {
    let residue = (v + col) / perClass;
    let rest = (v + col) % perClass;
    let n = rest / (rows * cols);
    let ih = residue / p.stride + (rest % (rows * cols)) / cols * p.stride;
    let iw = residue % p.stride + rest % cols * p.stride;
    if (residue < p.stride * p.stride && ih < p.height && iw < p.width) {
      for (var row = 0u; row < 4u; row++) {
        if (c + row < p.in_channels) {
          dx[((n * p.in_channels + c + row) * p.height + ih) * p.width + iw] = acc[col][row];
        }
      }
    }
  }
}

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let origin = blockOrigin(wid, nwg, lid, p.in_channels);
  let kk = p.kernel * p.kernel;
  let cols = weightOffsets(origin.x, p.in_channels, kk);
  let block = positions(origin.y);
  var acc = Block();
  for (var kh = 0u; kh < p.kernel; kh++) {
    for (var kw = 0u; kw < p.kernel; kw++) {
      var taps = tapsAt(block, kh, kw);
      if (!anyValid(taps)) {
        continue;
      }
      var k = kh * p.kernel + kw;
      for (var o = 0u; o < p.out_channels; o++) {
        acc = accumulateBlock(acc, weights(cols, k), columnValues(taps));
        taps = nextChannel(taps, p.out_height * p.out_width);
        k += p.in_channels * kk;
      }
    }
  }
  storeBlock(acc, origin.x, origin.y);
}
