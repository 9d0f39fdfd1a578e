// Conv2d weight gradient as a GEMM reduction over batch and space, accumulated into dw (micro-batching):
//   dw[o, c, kh, kw] += sum over (n, oh, ow) of g[n, o, oh, ow] * x[n, c, oh*s - p + kh, ow*s - p + kw]
// (taps in the padding contribute nothing). g is the output gradient (already masked by the ReLU when fused,
// see conv2d_backward_bias.wgsl).
//
// Thread mapping (the register-blocked GEMM of conv2d_common.wgsl, for llvmpipe's lanes-as-invocations):
// - the weight tensor is seen as a matrix [out_channels, in_channels*k*k] whose column e = (c*k + kh)*k + kw is
//   one (input channel, tap) pair, exactly the OIHW order inside a row; the GEMM's matrix rows are these
//   columns e and its columns are output channels: a workgroup computes 128 columns x 32 output channels,
//   invocation `lid` 16 columns x the 32 channels;
// - every invocation loops over all (n, oh, ow) itself, as one flat loop: deterministic, no atomics, no
//   partial buffers. The 32 channels are workgroup-uniform, so the 32 gradient loads per step are uniform;
//   the 16 input loads and their padding checks differ per lane. 512 multiply-adds per lane per step.
//
//!include conv2d_common.wgsl
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> dw: array<f32>;

// The block's 32 output channels as 8 quads of offsets in g.
struct Channels {
  q0: vec4u, q1: vec4u, q2: vec4u, q3: vec4u, q4: vec4u, q5: vec4u, q6: vec4u, q7: vec4u,
}

// Offsets in g of four consecutive output channels from o.
fn channelQuad(o: u32) -> vec4u {
  return clampedQuad(o, p.out_channels) * p.out_height * p.out_width;
}

fn channels(o: u32) -> Channels {
  return Channels(channelQuad(o), channelQuad(o + 4u), channelQuad(o + 8u), channelQuad(o + 12u),
                  channelQuad(o + 16u), channelQuad(o + 20u), channelQuad(o + 24u), channelQuad(o + 28u));
}

fn load4(at: vec4u) -> vec4f {
  return vec4f(g[at.x], g[at.y], g[at.z], g[at.w]);
}

// The 32 channels' gradients at offset `at` of g[n, 0, oh, ow].
fn grads(ch: Channels, at: u32) -> Quads {
  let a = vec4u(at);
  return Quads(load4(ch.q0 + a), load4(ch.q1 + a), load4(ch.q2 + a), load4(ch.q3 + a), load4(ch.q4 + a),
               load4(ch.q5 + a), load4(ch.q6 + a), load4(ch.q7 + a));
}

// Four columns of the weight matrix as taps relative to a window's corner: offset of (c, kh - p, kw - p)
// inside an image, and kh - p, kw - p.
fn columns(e: u32) -> Corners {
  let kk = p.kernel * p.kernel;
  let col = clampedQuad(e, p.in_channels * kk);
  let row = vec4i((col % kk) / p.kernel) - i32(p.padding);
  let left = vec4i(col % p.kernel) - i32(p.padding);
  return Corners(vec4i((col / kk) * p.height * p.width) + row * i32(p.width) + left, row, left);
}

// The four columns' input values for the output position whose window starts at (ih0, iw0) in image `image`
// (zero in the padding).
fn inputs(cols: Corners, image: u32, ih0: i32, iw0: i32) -> vec4f {
  let inside = insideImage(cols.row + ih0, cols.col + iw0);
  let at = select(vec4u(0u), vec4u(cols.offset + ih0 * i32(p.width) + iw0) + image, inside);
  return select(vec4f(0.0), vec4f(x[at.x], x[at.y], x[at.z], x[at.w]), inside);
}

// The invocation's 16 columns, as four quads.
struct BlockColumns {
  c0: Corners, c1: Corners, c2: Corners, c3: Corners,
}

fn blockColumns(e: u32) -> BlockColumns {
  return BlockColumns(columns(e), columns(e + 4u), columns(e + 8u), columns(e + 12u));
}

fn blockInputs(b: BlockColumns, image: u32, ih0: i32, iw0: i32) -> RowValues {
  return RowValues(inputs(b.c0, image, ih0, iw0), inputs(b.c1, image, ih0, iw0), inputs(b.c2, image, ih0, iw0),
                   inputs(b.c3, image, ih0, iw0));
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

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let origin = blockOrigin(wid, nwg, lid, p.in_channels * p.kernel * p.kernel);
  let chw = p.in_channels * p.height * p.width;
  let cols = blockColumns(origin.x);
  let ch = channels(origin.y);
  var acc = Block();
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
    acc = accumulateBlock(acc, blockInputs(cols, image, ih0, iw0), grads(ch, at));
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
  storeBlock(acc, origin.x, origin.y);
}
