// Conv2d weight gradient as a GEMM reduction over batch and space, accumulated into dw (micro-batching):
//   dw[o, c, kh, kw] += sum over (n, oh, ow) of g[n, o, oh, ow] * x[n, c, oh*s - p + kh, ow*s - p + kw]
// (taps in the padding contribute nothing). g is the output gradient (already masked by the ReLU when fused,
// see conv2d_backward_bias.wgsl).
//
// Thread mapping (for llvmpipe, where the 8 invocations of a workgroup are one CPU thread's SIMD lanes):
// - the weight tensor is seen as a matrix [out_channels, in_channels*k*k] whose column e = (c*k + kh)*k + kw is
//   one (input channel, tap) pair, exactly the OIHW order inside a row;
// - a workgroup owns 128 columns x 32 output channels; invocation `lid` owns 16 columns (4 quads) for the 32
//   channels (8 quads): four Rows of eight mat4x4 accumulators, row j's accumulator t holds columns 4j..
//   (matrix rows) x channels 4t.. (matrix columns);
// - every invocation loops over all (n, oh, ow) itself, as one flat loop: deterministic, no atomics, no
//   partial buffers. The 32 channels are workgroup-uniform, so the 32 gradient loads per step are uniform;
//   the 16 input loads and their padding checks differ per lane. 512 multiply-adds per lane per step.
//
//!include conv2d_common.wgsl
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> dw: array<f32>;

const COLUMNS_PER_WORKGROUP = 128u;
const CHANNELS_PER_WORKGROUP = 32u;

// A Row holds four columns x 32 output channels of accumulators.

// The block's 32 output channels as 8 quads: their offsets in g, or their gradients at one position.
struct Channels {
  q0: vec4u, q1: vec4u, q2: vec4u, q3: vec4u, q4: vec4u, q5: vec4u, q6: vec4u, q7: vec4u,
}

alias Grads = Quads;

// Offsets in g of four consecutive output channels from o (clamped: channels past the last compute unused
// values).
fn channelQuad(o: u32) -> vec4u {
  return min(vec4u(o) + QUAD, vec4u(p.out_channels - 1u)) * p.out_height * p.out_width;
}

fn load4(at: vec4u) -> vec4f {
  return vec4f(g[at.x], g[at.y], g[at.z], g[at.w]);
}

fn grads(ch: Channels, at: u32) -> Grads {
  let a = vec4u(at);
  return Grads(load4(ch.q0 + a), load4(ch.q1 + a), load4(ch.q2 + a), load4(ch.q3 + a), load4(ch.q4 + a),
               load4(ch.q5 + a), load4(ch.q6 + a), load4(ch.q7 + a));
}

// Four columns of the weight matrix: offset of (c, kh - p, kw - p) inside an image, and kh - p, kw - p.
struct Columns {
  offset: vec4i,
  row: vec4i,
  col: vec4i,
}

fn columns(e: u32) -> Columns {
  let kk = p.kernel * p.kernel;
  let col = min(vec4u(e) + QUAD, vec4u(p.in_channels * kk - 1u));
  let row = vec4i((col % kk) / p.kernel) - i32(p.padding);
  let left = vec4i(col % p.kernel) - i32(p.padding);
  return Columns(vec4i((col / kk) * p.height * p.width) + row * i32(p.width) + left, row, left);
}

// The four columns' input values for the output position whose window starts at (ih0, iw0) in image `image`
// (zero in the padding).
fn inputs(cols: Columns, image: u32, ih0: i32, iw0: i32) -> vec4f {
  let ih = cols.row + ih0;
  let iw = cols.col + iw0;
  // Negative coordinates wrap to huge unsigned values, so one comparison checks both ends.
  let inside = (vec4u(ih) < vec4u(p.height)) & (vec4u(iw) < vec4u(p.width));
  let at = select(vec4u(0u), vec4u(cols.offset + ih0 * i32(p.width) + iw0) + image, inside);
  return select(vec4f(0.0), vec4f(x[at.x], x[at.y], x[at.z], x[at.w]), inside);
}

// Adds one accumulator (columns e.., channels o..) into dw.
fn store(acc: mat4x4f, e: u32, o: u32) {
  let columnCount = p.in_channels * p.kernel * p.kernel;
  for (var col = 0u; col < 4u; col++) {
    if (o + col >= p.out_channels) {
      return;
    }
    for (var row = 0u; row < 4u; row++) {
      if (e + row < columnCount) {
        let i = (o + col) * columnCount + e + row;
        dw[i] += acc[col][row];
      }
    }
  }
}

fn storeRow(r: Row, e: u32, o: u32) {
  store(r.q0, e, o);
  store(r.q1, e, o + 4u);
  store(r.q2, e, o + 8u);
  store(r.q3, e, o + 12u);
  store(r.q4, e, o + 16u);
  store(r.q5, e, o + 20u);
  store(r.q6, e, o + 24u);
  store(r.q7, e, o + 28u);
}

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let wg = wid.x + wid.y * nwg.x;
  let columnBlocks = (p.in_channels * p.kernel * p.kernel + COLUMNS_PER_WORKGROUP - 1u) / COLUMNS_PER_WORKGROUP;
  let e0 = (wg % columnBlocks) * COLUMNS_PER_WORKGROUP + lid * 16u;
  let o0 = (wg / columnBlocks) * CHANNELS_PER_WORKGROUP;
  let chw = p.in_channels * p.height * p.width;
  let cols0 = columns(e0);
  let cols1 = columns(e0 + 4u);
  let cols2 = columns(e0 + 8u);
  let cols3 = columns(e0 + 12u);
  let ch = Channels(channelQuad(o0), channelQuad(o0 + 4u), channelQuad(o0 + 8u), channelQuad(o0 + 12u),
                    channelQuad(o0 + 16u), channelQuad(o0 + 20u), channelQuad(o0 + 24u), channelQuad(o0 + 28u));
  var acc0 = Row();
  var acc1 = Row();
  var acc2 = Row();
  var acc3 = Row();
  // One flat loop over (n, oh, ow), ow fastest: the accumulators never cross an inner loop's boundary, which
  // costs as much as the work when output rows are short (4 or 1 positions in the late layers).
  var image = 0u;
  var ih0 = 0;
  var iw0 = 0;
  var ow = 0u;
  var oh = 0u;
  // Offset of g[n, 0, oh, ow]; the channel offsets are added in grads().
  var at = 0u;
  for (var step = 0u; step < p.n * p.out_height * p.out_width; step++) {
    let gs = grads(ch, at);
    acc0 = accumulate(acc0, inputs(cols0, image, ih0, iw0), gs);
    acc1 = accumulate(acc1, inputs(cols1, image, ih0, iw0), gs);
    acc2 = accumulate(acc2, inputs(cols2, image, ih0, iw0), gs);
    acc3 = accumulate(acc3, inputs(cols3, image, ih0, iw0), gs);
    ow += 1u;
    iw0 += i32(p.stride);
    at += 1u;
    if (ow == p.out_width) {
      ow = 0u;
      iw0 = 0;
      oh += 1u;
      ih0 += i32(p.stride);
      if (oh == p.out_height) {
        oh = 0u;
        ih0 = 0;
        image += chw;
        at += (p.out_channels - 1u) * p.out_height * p.out_width;
      }
    }
  }
  storeRow(acc0, e0, o0);
  storeRow(acc1, e0 + 4u, o0);
  storeRow(acc2, e0 + 8u, o0);
  storeRow(acc3, e0 + 12u, o0);
}
