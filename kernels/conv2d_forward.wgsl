// Conv2d forward as an implicit GEMM (no im2col buffer):
//   y[n, o, oh, ow] = bias[o] + sum over (kh, kw, c) of w[o, c, kh, kw] * x[n, c, oh*s - p + kh, ow*s - p + kw]
// with zero padding; with fuseRelu the epilogue applies max(., 0).
//
// Thread mapping, chosen for llvmpipe (a workgroup runs on one CPU thread, its 8 invocations are the SIMD
// lanes; a storage load whose address differs per lane costs a loop over the lanes, one whose address is
// workgroup-uniform costs a single scalar load):
// - a workgroup computes 128 output channels x 32 output positions (positions flattened over n, oh, ow);
// - invocation `lid` owns 16 of the channels (4 quads) for all 32 positions (8 quads): four Rows of eight
//   mat4x4 accumulators, row j's accumulator t holds channels 4j.. (matrix rows) x positions 4t.. (columns);
// - the positions are the same for every lane, so the 32 input loads per step and the padding checks are
//   uniform; only the 16 weight loads differ per lane (straight from the OIHW tensor, no transposed copy).
//   512 multiply-adds per lane per step of the reduction;
// - the reduction runs over kernel taps (kh, kw) outside and input channels inside, as one flat loop:
//   offsets and padding checks are computed once per tap and reused for every channel. (Taps that read only
//   padding run too, on zeros: skipping them measured slower on the layers that matter.)
//
override fuseRelu: bool = false;

//!include conv2d_common.wgsl
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

const CHANNELS_PER_WORKGROUP = 128u;
const POSITIONS_PER_WORKGROUP = 32u;

// A Row holds four channels x 32 positions of accumulators.

// One input value per position of the block, as 8 quads.
alias Inputs = Quads;

// Where a quad of positions reads its input: image base offset, top and left input corner.
struct Quad {
  base: vec4u,
  top: vec4i,
  left: vec4i,
}

fn quad(q: u32) -> Quad {
  let ohw = p.out_height * p.out_width;
  let pos = min(vec4u(q) + QUAD, vec4u(p.n * ohw - 1u));
  let r = pos % ohw;
  return Quad((pos / ohw) * p.in_channels * p.height * p.width,
              vec4i((r / p.out_width) * p.stride) - i32(p.padding),
              vec4i((r % p.out_width) * p.stride) - i32(p.padding));
}

// A quad's input offsets at one tap; `inside` is false where the tap reads padding.
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

fn gather(t: Tap) -> vec4f {
  return select(vec4f(0.0), vec4f(x[t.offset.x], x[t.offset.y], x[t.offset.z], x[t.offset.w]), t.inside);
}

// The block's 8 position quads at one tap, and the input values they read from one channel.
struct Taps {
  t0: Tap, t1: Tap, t2: Tap, t3: Tap, t4: Tap, t5: Tap, t6: Tap, t7: Tap,
}

fn inputs(t: Taps) -> Inputs {
  return Inputs(gather(t.t0), gather(t.t1), gather(t.t2), gather(t.t3), gather(t.t4), gather(t.t5),
                gather(t.t6), gather(t.t7));
}

// The same taps one input channel further on.
fn nextChannel(t: Taps) -> Taps {
  let hw = vec4u(p.height * p.width);
  return Taps(Tap(t.t0.offset + hw, t.t0.inside), Tap(t.t1.offset + hw, t.t1.inside),
              Tap(t.t2.offset + hw, t.t2.inside), Tap(t.t3.offset + hw, t.t3.inside),
              Tap(t.t4.offset + hw, t.t4.inside), Tap(t.t5.offset + hw, t.t5.inside),
              Tap(t.t6.offset + hw, t.t6.inside), Tap(t.t7.offset + hw, t.t7.inside));
}

// Four weights w[o.., c, kh, kw] of consecutive output channels: `rows` are their offsets o * c_in * k * k.
fn weights(rows: vec4u, k: u32) -> vec4f {
  return vec4f(w[rows.x + k], w[rows.y + k], w[rows.z + k], w[rows.w + k]);
}

// Adds bias, applies the optional ReLU and writes one accumulator (channels o.., positions q..).
fn store(acc: mat4x4f, o: u32, q: u32) {
  let ohw = p.out_height * p.out_width;
  for (var col = 0u; col < 4u; col++) {
    if (q + col >= p.n * ohw) {
      return;
    }
    let n = (q + col) / ohw;
    let r = (q + col) % ohw;
    for (var row = 0u; row < 4u; row++) {
      if (o + row < p.out_channels) {
        var v = acc[col][row] + bias[o + row];
        if (fuseRelu) {
          v = max(v, 0.0);
        }
        y[(n * p.out_channels + o + row) * ohw + r] = v;
      }
    }
  }
}

fn storeRow(r: Row, o: u32, q: u32) {
  store(r.q0, o, q);
  store(r.q1, o, q + 4u);
  store(r.q2, o, q + 8u);
  store(r.q3, o, q + 12u);
  store(r.q4, o, q + 16u);
  store(r.q5, o, q + 20u);
  store(r.q6, o, q + 24u);
  store(r.q7, o, q + 28u);
}

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let wg = wid.x + wid.y * nwg.x;
  let channelBlocks = (p.out_channels + CHANNELS_PER_WORKGROUP - 1u) / CHANNELS_PER_WORKGROUP;
  let o0 = (wg % channelBlocks) * CHANNELS_PER_WORKGROUP + lid * 16u;
  let q0 = (wg / channelBlocks) * POSITIONS_PER_WORKGROUP;
  let kk = p.kernel * p.kernel;
  // Weight row offsets of this lane's channels (clamped: lanes past the last channel compute unused values).
  let lastRow = vec4u(p.out_channels - 1u);
  let rows0 = min(vec4u(o0) + QUAD, lastRow) * p.in_channels * kk;
  let rows1 = min(vec4u(o0 + 4u) + QUAD, lastRow) * p.in_channels * kk;
  let rows2 = min(vec4u(o0 + 8u) + QUAD, lastRow) * p.in_channels * kk;
  let rows3 = min(vec4u(o0 + 12u) + QUAD, lastRow) * p.in_channels * kk;
  let g0 = quad(q0);
  let g1 = quad(q0 + 4u);
  let g2 = quad(q0 + 8u);
  let g3 = quad(q0 + 12u);
  let g4 = quad(q0 + 16u);
  let g5 = quad(q0 + 20u);
  let g6 = quad(q0 + 24u);
  let g7 = quad(q0 + 28u);
  var acc0 = Row();
  var acc1 = Row();
  var acc2 = Row();
  var acc3 = Row();
  // One flat loop over the reduction (kh, kw, c), channels fastest: the accumulators never cross the boundary
  // of a per-tap inner loop, which costs as much as the work when there are few input channels (the first
  // layer has one: 2x faster flat).
  var kh = 0u;
  var kw = 0u;
  var taps = Taps(tap(g0, 0u, 0u), tap(g1, 0u, 0u), tap(g2, 0u, 0u), tap(g3, 0u, 0u), tap(g4, 0u, 0u),
                  tap(g5, 0u, 0u), tap(g6, 0u, 0u), tap(g7, 0u, 0u));
  var c = 0u;
  var k = 0u;
  for (var step = 0u; step < p.in_channels * kk; step++) {
    let xs = inputs(taps);
    acc0 = accumulate(acc0, weights(rows0, k), xs);
    acc1 = accumulate(acc1, weights(rows1, k), xs);
    acc2 = accumulate(acc2, weights(rows2, k), xs);
    acc3 = accumulate(acc3, weights(rows3, k), xs);
    c += 1u;
    if (c < p.in_channels) {
      taps = nextChannel(taps);
      k += kk;
    } else {
      c = 0u;
      kw += 1u;
      if (kw == p.kernel) {
        kw = 0u;
        kh += 1u;
      }
      taps = Taps(tap(g0, kh, kw), tap(g1, kh, kw), tap(g2, kh, kw), tap(g3, kh, kw), tap(g4, kh, kw),
                  tap(g5, kh, kw), tap(g6, kh, kw), tap(g7, kh, kw));
      k = kh * p.kernel + kw;
    }
  }
  storeRow(acc0, o0, q0);
  storeRow(acc1, o0 + 4u, q0);
  storeRow(acc2, o0 + 8u, q0);
  storeRow(acc3, o0 + 12u, q0);
}
