// Conv2d input gradient as a transposed implicit GEMM, in gather form (every dx element is written once):
//   dx[n, c, ih, iw] = sum over (kh, kw, o) of g[n, o, oh, ow] * w[o, c, kh, kw]
// over the output positions that read (ih, iw) through tap (kh, kw): oh*s = ih + p - kh and ow*s = iw + p - kw
// (exact division, inside the output). g is the output gradient (already masked by the ReLU when fused, see
// conv2d_backward_bias.wgsl).
//
// Thread mapping (the scheme of conv2d_forward.wgsl, for llvmpipe's lanes-as-invocations):
// - a workgroup computes 128 input channels x 32 input pixels; invocation `lid` owns 16 channels (4 quads)
//   for all 32 pixels (8 quads): four Rows of eight mat4x4 accumulators, row j's accumulator t holds
//   channels 4j.. (matrix rows) x pixels 4t.. (columns). With the override channelQuads = 3 an invocation
//   owns 12 channels and a workgroup 96, which wastes no lanes on 96-channel layers (measured ~15% faster
//   there); the fourth row's code is then compiled out;
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
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

// Quads of channels per invocation: 4 or 3.
override channelQuads: u32 = 4u;
const PIXELS_PER_WORKGROUP = 32u;

// A Row holds four channels x 32 pixels of accumulators.

// One gradient value per pixel of the block, as 8 quads.
alias Grads = Quads;

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
  let v = min(vec4u(q) + QUAD, vec4u(p.stride * p.stride * perClass - 1u));
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

// A quad's gradient offsets at one tap; `used` is false where no output position reads the pixel through it.
struct Tap {
  offset: vec4u,
  used: vec4<bool>,
}

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

fn gather(t: Tap) -> vec4f {
  return select(vec4f(0.0), vec4f(g[t.offset.x], g[t.offset.y], g[t.offset.z], g[t.offset.w]), t.used);
}

// The block's 8 pixel quads at one tap, and the gradient values they receive from one output channel.
struct Taps {
  t0: Tap, t1: Tap, t2: Tap, t3: Tap, t4: Tap, t5: Tap, t6: Tap, t7: Tap,
}

fn grads(t: Taps) -> Grads {
  return Grads(gather(t.t0), gather(t.t1), gather(t.t2), gather(t.t3), gather(t.t4), gather(t.t5),
               gather(t.t6), gather(t.t7));
}

// The same taps one output channel further on.
fn nextChannel(t: Taps) -> Taps {
  let ohw = vec4u(p.out_height * p.out_width);
  return Taps(Tap(t.t0.offset + ohw, t.t0.used), Tap(t.t1.offset + ohw, t.t1.used),
              Tap(t.t2.offset + ohw, t.t2.used), Tap(t.t3.offset + ohw, t.t3.used),
              Tap(t.t4.offset + ohw, t.t4.used), Tap(t.t5.offset + ohw, t.t5.used),
              Tap(t.t6.offset + ohw, t.t6.used), Tap(t.t7.offset + ohw, t.t7.used));
}

// Weights w[o, c.., kh, kw] of four consecutive input channels: `cols` are their offsets c * k * k.
fn weights(cols: vec4u, k: u32) -> vec4f {
  return vec4f(w[cols.x + k], w[cols.y + k], w[cols.z + k], w[cols.w + k]);
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

fn storeRow(r: Row, c: u32, v: u32) {
  store(r.q0, c, v);
  store(r.q1, c, v + 4u);
  store(r.q2, c, v + 8u);
  store(r.q3, c, v + 12u);
  store(r.q4, c, v + 16u);
  store(r.q5, c, v + 20u);
  store(r.q6, c, v + 24u);
  store(r.q7, c, v + 28u);
}

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let wg = wid.x + wid.y * nwg.x;
  let channelsPerWorkgroup = 32u * channelQuads;
  let channelBlocks = (p.in_channels + channelsPerWorkgroup - 1u) / channelsPerWorkgroup;
  let c0 = (wg % channelBlocks) * channelsPerWorkgroup + lid * 4u * channelQuads;
  let q0 = (wg / channelBlocks) * PIXELS_PER_WORKGROUP;
  let kk = p.kernel * p.kernel;
  // Weight column offsets of this lane's channels (clamped: lanes past the last channel compute unused values).
  let lastChannel = vec4u(p.in_channels - 1u);
  let cols0 = min(vec4u(c0) + QUAD, lastChannel) * kk;
  let cols1 = min(vec4u(c0 + 4u) + QUAD, lastChannel) * kk;
  let cols2 = min(vec4u(c0 + 8u) + QUAD, lastChannel) * kk;
  let cols3 = min(vec4u(c0 + 12u) + QUAD, lastChannel) * kk;
  let px0 = quad(q0);
  let px1 = quad(q0 + 4u);
  let px2 = quad(q0 + 8u);
  let px3 = quad(q0 + 12u);
  let px4 = quad(q0 + 16u);
  let px5 = quad(q0 + 20u);
  let px6 = quad(q0 + 24u);
  let px7 = quad(q0 + 28u);
  var acc0 = Row();
  var acc1 = Row();
  var acc2 = Row();
  var acc3 = Row();
  for (var kh = 0u; kh < p.kernel; kh++) {
    for (var kw = 0u; kw < p.kernel; kw++) {
      var taps = Taps(tap(px0, kh, kw), tap(px1, kh, kw), tap(px2, kh, kw), tap(px3, kh, kw), tap(px4, kh, kw),
                      tap(px5, kh, kw), tap(px6, kh, kw), tap(px7, kh, kw));
      if (!any(taps.t0.used | taps.t1.used | taps.t2.used | taps.t3.used | taps.t4.used | taps.t5.used |
               taps.t6.used | taps.t7.used)) {
        continue;
      }
      var k = kh * p.kernel + kw;
      for (var o = 0u; o < p.out_channels; o++) {
        let gs = grads(taps);
        acc0 = accumulate(acc0, weights(cols0, k), gs);
        acc1 = accumulate(acc1, weights(cols1, k), gs);
        acc2 = accumulate(acc2, weights(cols2, k), gs);
        if (channelQuads == 4u) {
          acc3 = accumulate(acc3, weights(cols3, k), gs);
        }
        taps = nextChannel(taps);
        k += p.in_channels * kk;
      }
    }
  }
  storeRow(acc0, c0, q0);
  storeRow(acc1, c0 + 4u, q0);
  storeRow(acc2, c0 + 8u, q0);
  if (channelQuads == 4u) {
    storeRow(acc3, c0 + 12u, q0);
  }
}
