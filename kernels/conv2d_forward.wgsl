// Conv2d forward as an implicit GEMM (no im2col buffer):
//   y[n, o, oh, ow] = bias[o] + sum over (kh, kw, c) of w[o, c, kh, kw] * x[n, c, oh*s - p + kh, ow*s - p + kw]
// with zero padding; with fuseRelu the epilogue applies max(., 0).
//
// Thread mapping (the register-blocked GEMM of conv2d_common.wgsl, chosen for llvmpipe: a storage load whose
// address differs per lane costs a loop over the lanes, one whose address is workgroup-uniform costs a single
// scalar load):
// - matrix rows are output channels, columns are output positions (flattened over n, oh, ow): a workgroup
//   computes 128 channels x 32 positions, invocation `lid` 16 channels x the 32 positions;
// - the positions are the same for every lane, so the 32 input loads per step and the padding checks are
//   uniform; only the 16 weight loads differ per lane (straight from the OIHW tensor, no transposed copy).
//   512 multiply-adds per lane per step of the reduction;
// - the reduction runs over kernel taps (kh, kw) outside and input channels inside, as one flat loop:
//   offsets and padding checks are computed once per tap and reused for every channel. (Taps that read only
//   padding run too, on zeros: skipping them measured slower on the layers that matter.)
//
override fuseRelu: bool = false;

//!include conv2d_common.wgsl
//!include conv2d_taps.wgsl
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

fn streamed(i: u32) -> f32 {
  return x[i];
}

// A quad of positions reads the windows whose corners quad() gives, in channel 0.
alias Quad = Corners;

fn quad(q: u32) -> Corners {
  let ohw = p.out_height * p.out_width;
  let pos = clampedQuad(q, p.n * ohw);
  let r = pos % ohw;
  let top = vec4i((r / p.out_width) * p.stride) - i32(p.padding);
  let left = vec4i((r % p.out_width) * p.stride) - i32(p.padding);
  return Corners(vec4i((pos / ohw) * p.in_channels * p.height * p.width) + top * i32(p.width) + left, top, left);
}

// A quad's input offsets at one tap, invalid where the tap reads padding.
fn tap(c: Corners, kh: u32, kw: u32) -> Tap {
  let inside = insideImage(c.row + i32(kh), c.col + i32(kw));
  return Tap(select(vec4u(0u), vec4u(c.offset + i32(kh * p.width + kw)), inside), inside);
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

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let origin = blockOrigin(wid, nwg, lid, p.out_channels);
  let kk = p.kernel * p.kernel;
  let rows = weightOffsets(origin.x, p.out_channels, p.in_channels * kk);
  let block = positions(origin.y);
  var acc = Block();
  // One flat loop over the reduction (kh, kw, c), channels fastest: the accumulators never cross the boundary
  // of a per-tap inner loop, which costs as much as the work when there are few input channels (the first
  // layer has one: 2x faster flat).
  var kh = 0u;
  var kw = 0u;
  var taps = tapsAt(block, 0u, 0u);
  var c = 0u;
  var k = 0u;
  for (var step = 0u; step < p.in_channels * kk; step++) {
    acc = accumulateBlock(acc, weights(rows, k), columnValues(taps));
    c += 1u;
    if (c < p.in_channels) {
      taps = nextChannel(taps, p.height * p.width);
      k += kk;
    } else {
      c = 0u;
      kw += 1u;
      if (kw == p.kernel) {
        kw = 0u;
        kh += 1u;
      }
      taps = tapsAt(block, kh, kw);
      k = kh * p.kernel + kw;
    }
  }
  storeBlock(acc, origin.x, origin.y);
}
