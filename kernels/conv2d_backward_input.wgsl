// Conv2d input gradient as a transposed implicit GEMM, in gather form (every dx element written once):
//   dx[n, c, ih, iw] = sum over (kh, kw, o) of g[n, o, oh, ow] * w[o, c, kh, kw]
// over the output positions that read (ih, iw) through tap (kh, kw): oh*s = ih + p - kh, ow*s = iw + p - kw
// (exact division, inside the output). g is dy, or with fuseRelu dy masked by (saved output > 0), since the
// layer's forward returned relu(conv(x)).
//
// Thread mapping (same scheme as conv2d_forward.wgsl, for llvmpipe's lanes-as-invocations):
// - a workgroup computes 64 input channels x 16 input pixels (flattened over n, ih, iw); invocation `lid`
//   owns 8 channels (two quads) for all 16 pixels (four quads): eight mat4x4 accumulators,
//   acc[j][t][col][row] = channel 4j + row, pixel 4t + col;
// - pixels are workgroup-uniform, so dy (and saved-output) loads and the stride/padding checks are uniform;
//   the weight loads differ per lane (read from the OIHW tensor, four channels of one output channel);
// - taps outside, output channels inside; a tap no pixel of the block uses (stride > 1) is skipped.
struct Params {
  n: u32,
  inChannels: u32,
  height: u32,
  width: u32,
  outChannels: u32,
  outHeight: u32,
  outWidth: u32,
  kernel: u32,
  stride: u32,
  padding: u32,
}

override fuseRelu: bool = false;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
// The forward's output (post-ReLU) when fuseRelu; otherwise bound to dy and never read.
@group(0) @binding(3) var<storage, read> saved: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;

const CHANNELS_PER_WORKGROUP = 64u;
const PIXELS_PER_WORKGROUP = 16u;
const QUAD = vec4u(0u, 1u, 2u, 3u);

// acc + a * b^T: column i gains a * b[i].
fn outer(acc: mat4x4f, a: vec4f, b: vec4f) -> mat4x4f {
  return mat4x4f(fma(a, vec4f(b.x), acc[0]), fma(a, vec4f(b.y), acc[1]), fma(a, vec4f(b.z), acc[2]),
                 fma(a, vec4f(b.w), acc[3]));
}

// Four output gradients at `offset`, zero where no output position reads the pixel through this tap
// (and, with fuseRelu, where the ReLU was inactive).
fn gather(offset: vec4u, used: vec4<bool>) -> vec4f {
  let g = vec4f(dy[offset.x], dy[offset.y], dy[offset.z], dy[offset.w]);
  if (fuseRelu) {
    let out = vec4f(saved[offset.x], saved[offset.y], saved[offset.z], saved[offset.w]);
    return select(vec4f(0.0), g, used & (out > vec4f(0.0)));
  }
  return select(vec4f(0.0), g, used);
}

// Weights w[o, c.., kh, kw] of four consecutive input channels: `cols` are their offsets c * k * k.
fn weights(cols: vec4u, k: u32) -> vec4f {
  return vec4f(w[cols.x + k], w[cols.y + k], w[cols.z + k], w[cols.w + k]);
}

// The four pixels of a quad: output-image base offset, and ih + p, iw + p.
struct Quad {
  base: vec4u,
  row: vec4i,
  col: vec4i,
}

fn quad(q: u32) -> Quad {
  let hw = p.height * p.width;
  let pix = min(vec4u(q) + QUAD, vec4u(p.n * hw - 1u));
  let r = pix % hw;
  return Quad((pix / hw) * p.outChannels * p.outHeight * p.outWidth,
              vec4i(r / p.width) + i32(p.padding), vec4i(r % p.width) + i32(p.padding));
}

// dy offsets of a quad at tap (kh, kw); `used` is false where no output position reads the pixel through it.
struct Tap {
  offset: vec4u,
  used: vec4<bool>,
}

fn tap(g: Quad, kh: u32, kw: u32) -> Tap {
  let s = vec4i(i32(p.stride));
  let th = g.row - i32(kh);
  let tw = g.col - i32(kw);
  let oh = th / s;
  let ow = tw / s;
  let used = (th >= vec4i(0)) & (tw >= vec4i(0)) & (oh * s == th) & (ow * s == tw) &
    (oh < vec4i(i32(p.outHeight))) & (ow < vec4i(i32(p.outWidth)));
  return Tap(select(vec4u(0u), g.base + vec4u(oh) * p.outWidth + vec4u(ow), used), used);
}

// Writes a 4 x 4 accumulator (channels c.., pixels q..).
fn store(acc: mat4x4f, c: u32, q: u32) {
  let hw = p.height * p.width;
  for (var col = 0u; col < 4u; col++) {
    if (q + col >= p.n * hw) {
      return;
    }
    let n = (q + col) / hw;
    let r = (q + col) % hw;
    for (var row = 0u; row < 4u; row++) {
      if (c + row < p.inChannels) {
        dx[(n * p.inChannels + c + row) * hw + r] = acc[col][row];
      }
    }
  }
}

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let wg = wid.x + wid.y * nwg.x;
  let channelBlocks = (p.inChannels + CHANNELS_PER_WORKGROUP - 1u) / CHANNELS_PER_WORKGROUP;
  let c0 = (wg % channelBlocks) * CHANNELS_PER_WORKGROUP + lid * 8u;
  let q0 = (wg / channelBlocks) * PIXELS_PER_WORKGROUP;
  let ohw = p.outHeight * p.outWidth;
  let kk = p.kernel * p.kernel;
  let ickk = p.inChannels * kk;
  // Weight column offsets of this lane's channels (clamped: lanes past the last channel compute unused values).
  let lastChannel = vec4u(p.inChannels - 1u);
  let cols0 = min(vec4u(c0) + QUAD, lastChannel) * kk;
  let cols1 = min(vec4u(c0 + 4u) + QUAD, lastChannel) * kk;
  let px0 = quad(q0);
  let px1 = quad(q0 + 4u);
  let px2 = quad(q0 + 8u);
  let px3 = quad(q0 + 12u);
  var acc00 = mat4x4f();
  var acc01 = mat4x4f();
  var acc02 = mat4x4f();
  var acc03 = mat4x4f();
  var acc10 = mat4x4f();
  var acc11 = mat4x4f();
  var acc12 = mat4x4f();
  var acc13 = mat4x4f();
  for (var kh = 0u; kh < p.kernel; kh++) {
    for (var kw = 0u; kw < p.kernel; kw++) {
      var t0 = tap(px0, kh, kw);
      var t1 = tap(px1, kh, kw);
      var t2 = tap(px2, kh, kw);
      var t3 = tap(px3, kh, kw);
      if (!any(t0.used | t1.used | t2.used | t3.used)) {
        continue;
      }
      var k = kh * p.kernel + kw;
      for (var o = 0u; o < p.outChannels; o++) {
        let w0 = weights(cols0, k);
        let w1 = weights(cols1, k);
        let d0 = gather(t0.offset, t0.used);
        let d1 = gather(t1.offset, t1.used);
        let d2 = gather(t2.offset, t2.used);
        let d3 = gather(t3.offset, t3.used);
        acc00 = outer(acc00, w0, d0);
        acc01 = outer(acc01, w0, d1);
        acc02 = outer(acc02, w0, d2);
        acc03 = outer(acc03, w0, d3);
        acc10 = outer(acc10, w1, d0);
        acc11 = outer(acc11, w1, d1);
        acc12 = outer(acc12, w1, d2);
        acc13 = outer(acc13, w1, d3);
        t0.offset += vec4u(ohw);
        t1.offset += vec4u(ohw);
        t2.offset += vec4u(ohw);
        t3.offset += vec4u(ohw);
        k += ickk;
      }
    }
  }
  store(acc00, c0, q0);
  store(acc01, c0, q0 + 4u);
  store(acc02, c0, q0 + 8u);
  store(acc03, c0, q0 + 12u);
  store(acc10, c0 + 4u, q0);
  store(acc11, c0 + 4u, q0 + 4u);
  store(acc12, c0 + 4u, q0 + 8u);
  store(acc13, c0 + 4u, q0 + 12u);
}
