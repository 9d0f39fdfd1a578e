// Conv2d forward as a workgroup-tiled implicit GEMM (no im2col buffer), for real GPUs:
//   y[n, o, oh, ow] = bias[o] + sum over (c, kh, kw) of w[o, c, kh, kw] * x[n, c, oh*s - p + kh, ow*s - p + kw]
// with zero padding; with fuseRelu the epilogue applies max(., 0). Also the input gradient of a stride-1
// conv (run on dy with the flipped weights of conv2d_gpu_flip.wgsl, padding k - 1 - p, has_bias = 0).
//
// GEMM view: M = N*OH*OW output positions (m = (n*OH + oh)*OW + ow), N = OC channels, K = IC*k*k with
// e = (c*k + kh)*k + kw (OIHW order, so w is read as the row-major [OC, K] matrix it already is).
// - A workgroup (256 invocations) owns 64 positions x 64 channels; invocation (tx, ty) = (t % 16, t / 16)
//   holds the 4 x 4 block positions m0 + tx + 16i x channels o0 + 4ty + j, so consecutive invocations
//   write consecutive positions (coalesced stores into NCHW).
// - Per chunk of 16 reduction steps the workgroup stages the input tile [16 k][64 m] and the weight tile
//   [16 k][64 o] in workgroup memory. Input loader: row k0 + t/16, positions m0 + t%16 + 16j (16 consecutive
//   invocations read 16 consecutive positions); the positions are decoded once before the loop (image base,
//   top, left), the row once per chunk (two divisions per invocation per chunk, outside the FMA loop).
//   Weight loader: step k0 + t%16 of channels o0 + t/16 + 16j (16 consecutive invocations read 16
//   consecutive floats of one weight row).
// - FMA loop: per step 4 scalar reads of the input tile (consecutive across tx: no bank conflicts), one
//   vec4 read of the weight tile (the same for all tx: broadcast), 16 multiply-adds. No integer division.
// - Row strides: 80 floats for the input tile (its two rows per 32 invocations land 16 banks apart), 17
//   vec4s for the weight tile (vec4-aligned; its transposing stores conflict at most 2-way).
// Includes conv2d_gpu_common.wgsl (Params, TILE, CHUNK, FAR).
override fuseRelu: bool = false;

//!include gpu/conv2d_gpu_common.wgsl

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

const A_STRIDE = 80u;
const B_STRIDE = 17u;

var<workgroup> tileA: array<f32, 1280>; // CHUNK * A_STRIDE
var<workgroup> tileB: array<vec4f, 272>; // CHUNK * B_STRIDE

// Adds bias, applies the optional ReLU and writes positions m of channels o.. (one accumulator).
fn store(acc: vec4f, m: u32, o: u32) {
  let ohw = p.out_height * p.out_width;
  if (m >= p.n * ohw) {
    return;
  }
  let n = m / ohw;
  let at = n * p.out_channels * ohw + (m - n * ohw);
  for (var j = 0u; j < 4u; j++) {
    if (o + j < p.out_channels) {
      var v = acc[j];
      if (p.has_bias != 0u) {
        v += bias[o + j];
      }
      if (fuseRelu) {
        v = max(v, 0.0);
      }
      y[at + (o + j) * ohw] = v;
    }
  }
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) t: u32) {
  let wg = wid.x + wid.y * nwg.x;
  let ohw = p.out_height * p.out_width;
  let positions = p.n * ohw;
  let channelTiles = (p.out_channels + TILE - 1u) / TILE;
  if (wg >= channelTiles * ((positions + TILE - 1u) / TILE)) {
    return;
  }
  let o0 = (wg % channelTiles) * TILE;
  let m0 = (wg / channelTiles) * TILE;
  let kk = p.kernel * p.kernel;
  let depth = p.in_channels * kk;
  let hw = p.height * p.width;
  let width = i32(p.width);

  // Input loader: its four positions, decoded once.
  let aRow = t / 16u;
  let aCol = t % 16u;
  var base = vec4i(0);
  var top = vec4i(FAR);
  var left = vec4i(0);
  for (var j = 0u; j < 4u; j++) {
    let m = m0 + aCol + 16u * j;
    if (m < positions) {
      let n = m / ohw;
      let r = m - n * ohw;
      let oh = r / p.out_width;
      top[j] = i32(oh * p.stride) - p.padding;
      left[j] = i32((r - oh * p.out_width) * p.stride) - p.padding;
      base[j] = i32(n * p.in_channels * hw) + top[j] * width + left[j];
    }
  }
  // Weight loader: reduction step k0 + bRow of channels o0 + bCol + 16j.
  let bRow = t % 16u;
  let bCol = t / 16u;
  let tx = t % 16u;
  let ty = t / 16u;
  var acc0 = vec4f(0.0);
  var acc1 = vec4f(0.0);
  var acc2 = vec4f(0.0);
  var acc3 = vec4f(0.0);
  let chunks = (depth + CHUNK - 1u) / CHUNK;
  for (var chunk = 0u; chunk < chunks; chunk++) {
    let k0 = chunk * CHUNK;
    // Input tile row: decode the reduction step into (c, kh, kw) and its offset inside an image.
    let k = k0 + aRow;
    var kh = FAR;
    var kw = 0i;
    var offset = 0i;
    if (k < depth) {
      let c = k / kk;
      let tap = k - c * kk;
      let row = tap / p.kernel;
      kh = i32(row);
      kw = i32(tap - row * p.kernel);
      offset = i32(c * hw) + kh * width + kw;
    }
    // Negative coordinates wrap to huge unsigned values, so one comparison checks both ends.
    let inside = (vec4u(top + vec4i(kh)) < vec4u(p.height)) & (vec4u(left + vec4i(kw)) < vec4u(p.width));
    let at = base + vec4i(offset);
    for (var j = 0u; j < 4u; j++) {
      var v = 0.0;
      if (inside[j]) {
        v = x[at[j]];
      }
      tileA[aRow * A_STRIDE + aCol + 16u * j] = v;
    }
    let kb = k0 + bRow;
    for (var j = 0u; j < 4u; j++) {
      let o = o0 + bCol + 16u * j;
      var v = 0.0;
      if (kb < depth && o < p.out_channels) {
        v = w[o * depth + kb];
      }
      tileB[bRow * B_STRIDE + bCol / 4u + 4u * j][bCol % 4u] = v;
    }
    workgroupBarrier();
    for (var q = 0u; q < CHUNK; q++) {
      let a = q * A_STRIDE + tx;
      let b = tileB[q * B_STRIDE + ty];
      acc0 = fma(vec4f(tileA[a]), b, acc0);
      acc1 = fma(vec4f(tileA[a + 16u]), b, acc1);
      acc2 = fma(vec4f(tileA[a + 32u]), b, acc2);
      acc3 = fma(vec4f(tileA[a + 48u]), b, acc3);
    }
    workgroupBarrier();
  }
  let o = o0 + 4u * ty;
  store(acc0, m0 + tx, o);
  store(acc1, m0 + tx + 16u, o);
  store(acc2, m0 + tx + 32u, o);
  store(acc3, m0 + tx + 48u, o);
}
