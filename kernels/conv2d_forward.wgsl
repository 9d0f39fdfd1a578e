// Conv2d forward as an implicit GEMM (no im2col buffer):
//   y[n, o, oh, ow] = bias[o] + sum over (kh, kw, c) of w[o, c, kh, kw] * x[n, c, oh*s - p + kh, ow*s - p + kw]
// with zero padding; with fuseRelu the epilogue applies max(., 0).
//
// Thread mapping, chosen for llvmpipe (a workgroup runs on one CPU thread, its 8 invocations are the SIMD
// lanes, and every storage load is a per-lane loop, so work per loaded value is what counts):
// - a workgroup computes a block of 64 output channels x 16 output positions (positions flattened over
//   n, oh, ow); invocation `lid` owns 8 of the channels (two quads) for all 16 positions (four quads), i.e.
//   eight mat4x4 accumulators: acc[j][t][col][row] = channel 4j + row, position 4t + col of its block;
// - the 16 positions are the same for all lanes, so input loads and padding checks are workgroup-uniform;
//   only the weight loads differ per lane (read straight from the OIHW tensor, no transposed copy);
// - the reduction runs over kernel taps (kh, kw) outside and input channels inside: offsets and padding
//   checks are computed once per tap and reused for every channel. 128 FMAs per lane per inner step.
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
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

const CHANNELS_PER_WORKGROUP = 64u;
const POSITIONS_PER_WORKGROUP = 16u;
const QUAD = vec4u(0u, 1u, 2u, 3u);

// acc + a * b^T: column i gains a * b[i].
fn outer(acc: mat4x4f, a: vec4f, b: vec4f) -> mat4x4f {
  return mat4x4f(fma(a, vec4f(b.x), acc[0]), fma(a, vec4f(b.y), acc[1]), fma(a, vec4f(b.z), acc[2]),
                 fma(a, vec4f(b.w), acc[3]));
}

// Four input values at `offset`, zero where the tap falls into the padding.
fn gather(offset: vec4u, inside: vec4<bool>) -> vec4f {
  return select(vec4f(0.0), vec4f(x[offset.x], x[offset.y], x[offset.z], x[offset.w]), inside);
}

// Four weights of consecutive output channels (rows of the OIHW tensor) at one (c, kh, kw).
fn weights(rows: vec4u, k: u32) -> vec4f {
  return vec4f(w[rows.x + k], w[rows.y + k], w[rows.z + k], w[rows.w + k]);
}

// Where the four positions q.. of a quad read their input: image base offset, top and left input corner.
struct Quad {
  base: vec4u,
  top: vec4i,
  left: vec4i,
}

fn quad(q: u32) -> Quad {
  let ohw = p.outHeight * p.outWidth;
  let pos = min(vec4u(q) + QUAD, vec4u(p.n * ohw - 1u));
  let r = pos % ohw;
  return Quad((pos / ohw) * p.inChannels * p.height * p.width,
              vec4i((r / p.outWidth) * p.stride) - i32(p.padding),
              vec4i((r % p.outWidth) * p.stride) - i32(p.padding));
}

// Input offsets of a quad at tap (kh, kw); `inside` is false where the tap reads padding.
struct Tap {
  offset: vec4u,
  inside: vec4<bool>,
}

fn tap(g: Quad, kh: u32, kw: u32) -> Tap {
  let ih = g.top + i32(kh);
  let iw = g.left + i32(kw);
  // Negative coordinates wrap to huge unsigned values, so one comparison checks both ends.
  let inside = (vec4u(ih) < vec4u(p.height)) & (vec4u(iw) < vec4u(p.width));
  return Tap(select(vec4u(0u), g.base + vec4u(ih) * p.width + vec4u(iw), inside), inside);
}

// Adds bias, applies the optional ReLU and writes a 4 x 4 accumulator (channels o.., positions q..).
fn store(acc: mat4x4f, o: u32, q: u32) {
  let ohw = p.outHeight * p.outWidth;
  for (var col = 0u; col < 4u; col++) {
    if (q + col >= p.n * ohw) {
      return;
    }
    let n = (q + col) / ohw;
    let r = (q + col) % ohw;
    for (var row = 0u; row < 4u; row++) {
      if (o + row < p.outChannels) {
        var v = acc[col][row] + bias[o + row];
        if (fuseRelu) {
          v = max(v, 0.0);
        }
        y[(n * p.outChannels + o + row) * ohw + r] = v;
      }
    }
  }
}

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let wg = wid.x + wid.y * nwg.x;
  let channelBlocks = (p.outChannels + CHANNELS_PER_WORKGROUP - 1u) / CHANNELS_PER_WORKGROUP;
  let o0 = (wg % channelBlocks) * CHANNELS_PER_WORKGROUP + lid * 8u;
  let q0 = (wg / channelBlocks) * POSITIONS_PER_WORKGROUP;
  let hw = p.height * p.width;
  let kk = p.kernel * p.kernel;
  // Weight row offsets of this lane's channels (clamped: lanes past the last channel compute unused values).
  let lastRow = vec4u(p.outChannels - 1u);
  let rows0 = min(vec4u(o0) + QUAD, lastRow) * p.inChannels * kk;
  let rows1 = min(vec4u(o0 + 4u) + QUAD, lastRow) * p.inChannels * kk;
  let g0 = quad(q0);
  let g1 = quad(q0 + 4u);
  let g2 = quad(q0 + 8u);
  let g3 = quad(q0 + 12u);
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
      var t0 = tap(g0, kh, kw);
      var t1 = tap(g1, kh, kw);
      var t2 = tap(g2, kh, kw);
      var t3 = tap(g3, kh, kw);
      var k = kh * p.kernel + kw;
      for (var c = 0u; c < p.inChannels; c++) {
        let w0 = weights(rows0, k);
        let w1 = weights(rows1, k);
        let x0 = gather(t0.offset, t0.inside);
        let x1 = gather(t1.offset, t1.inside);
        let x2 = gather(t2.offset, t2.inside);
        let x3 = gather(t3.offset, t3.inside);
        acc00 = outer(acc00, w0, x0);
        acc01 = outer(acc01, w0, x1);
        acc02 = outer(acc02, w0, x2);
        acc03 = outer(acc03, w0, x3);
        acc10 = outer(acc10, w1, x0);
        acc11 = outer(acc11, w1, x1);
        acc12 = outer(acc12, w1, x2);
        acc13 = outer(acc13, w1, x3);
        t0.offset += vec4u(hw);
        t1.offset += vec4u(hw);
        t2.offset += vec4u(hw);
        t3.offset += vec4u(hw);
        k += kk;
      }
    }
  }
  store(acc00, o0, q0);
  store(acc01, o0, q0 + 4u);
  store(acc02, o0, q0 + 8u);
  store(acc03, o0, q0 + 12u);
  store(acc10, o0 + 4u, q0);
  store(acc11, o0 + 4u, q0 + 4u);
  store(acc12, o0 + 4u, q0 + 8u);
  store(acc13, o0 + 4u, q0 + 12u);
}
