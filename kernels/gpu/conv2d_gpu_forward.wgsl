// Conv2d forward as a workgroup-tiled implicit GEMM (no im2col buffer), for real GPUs:
//   y[n, o, oh, ow] = bias[o] + sum over (c, kh, kw) of w[o, c, kh, kw] * x[n, c, oh*s - p + kh, ow*s - p + kw]
// with zero padding; with fuseRelu the epilogue applies max(., 0). Also the input gradient of a stride-1
// conv (run on dy with the flipped weights of conv2d_gpu_flip.wgsl, padding k - 1 - p, has_bias = false).
//
// GEMM view (the tiled GEMM of conv2d_gpu_gemm.wgsl, in any candidate's shape): rows are the N*OH*OW output
// positions (m = (n*OH + oh)*OW + ow), channels the OC output channels, the reduction runs over IC*k*k steps
// e = (c*k + kh)*k + kw (OIHW order, so w is read as the row-major [OC, K] matrix it already is).
// - Input loader: value l = t + THREADS*j of the [CHUNK][TILE_M] stage is position t % TILE_M (the same for
//   all j, since TILE_M divides THREADS: decoded once, before the loop) at step l / TILE_M; consecutive
//   invocations read consecutive positions. A step is decoded with divisions by the override KSIZE.
// - Weight loader: value l of the [CHUNK][TILE_N] stage is step l % CHUNK (t % CHUNK for all j) of channel
//   l / CHUNK; consecutive invocations read consecutive floats of one weight row.
// - Both loaders fetch the next chunk into registers before the current chunk's FMAs.
// - Split-K (p.slices > 1, for layers with too few tiles to fill a GPU): workgroup (slice, tile) sums the
//   steps [slice * p.slice_length, + p.slice_length) only and writes its partial tile to the workspace bound
//   as y; conv2d_gpu_forward_reduce.wgsl then adds bias and slices in slice order and applies the ReLU.
//!include gpu/conv2d_gpu_common.wgsl
//!include gpu/conv2d_gpu_gemm.wgsl
//!include gpu/conv2d_gpu_output.wgsl

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

// One output position's window corner (top, left) and the offset of that corner in x; `valid` false past
// the last position.
struct Position {
  top: i32,
  left: i32,
  base: i32,
  valid: bool,
}

fn position(m: u32) -> Position {
  let ohw = p.out_height * p.out_width;
  if (m >= p.n * ohw) {
    return Position(0, 0, 0, false);
  }
  let n = m / ohw;
  let r = m - n * ohw;
  let oh = r / p.out_width;
  let top = i32(oh * STRIDE) - PAD;
  let left = i32((r - oh * p.out_width) * STRIDE) - PAD;
  return Position(top, left, i32(n * p.in_channels * p.height * p.width) + top * i32(p.width) + left, true);
}

// x at reduction step e = (c*k + kh)*k + kw of the window at `at` (0 in the padding or from step `end` on).
fn input(at: Position, e: u32, end: u32) -> f32 {
  let kk = KSIZE * KSIZE;
  if (!at.valid || e >= end) {
    return 0.0;
  }
  let c = e / kk;
  let tap = e - c * kk;
  let kh = tap / KSIZE;
  let kw = tap - kh * KSIZE;
  if (!insideImage(at.top + i32(kh), at.left + i32(kw))) {
    return 0.0;
  }
  return x[at.base + i32(c * p.height * p.width + kh * p.width + kw)];
}

// The chunk at reduction step k0 (steps from `end` on read 0): this invocation's share of both operands.
fn load(at: Position, t: u32, k0: u32, end: u32, o0: u32) -> Staged {
  var s: Staged;
  for (var j = 0u; j < ROW_LOADS; j++) {
    s.rows[j] = input(at, k0 + (t + THREADS * j) / TILE_M, end);
  }
  let e = k0 + t % CHUNK;
  for (var j = 0u; j < CHANNEL_LOADS; j++) {
    let o = o0 + (t + THREADS * j) / CHUNK;
    var v = 0.0;
    if (e < end && o < p.out_channels) {
      v = w[o * p.in_channels * KSIZE * KSIZE + e];
    }
    s.channels[j] = v;
  }
  return s;
}

fn stage(s: Staged, t: u32) {
  for (var j = 0u; j < ROW_LOADS; j++) {
    stageRow(t + THREADS * j, s.rows[j]);
  }
  for (var j = 0u; j < CHANNEL_LOADS; j++) {
    let l = t + THREADS * j;
    stageChannel((l % CHUNK) * TILE_N + l / CHUNK, s.channels[j]);
  }
}

@compute @workgroup_size(THREADS)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) t: u32) {
  let wg = wid.x + wid.y * nwg.x;
  let tiles = tileCount(p.n * p.out_height * p.out_width);
  if (wg >= tiles * p.slices) {
    return;
  }
  let slice = wg / tiles;
  let origin = tileOrigin(wg - slice * tiles);
  let m0 = origin.x;
  let o0 = origin.y;
  let start = slice * p.slice_length;
  let end = min(start + p.slice_length, p.in_channels * KSIZE * KSIZE);
  let at = position(m0 + t % TILE_M);
  var acc: Accumulators;
  let chunks = (max(end, start) - start + CHUNK - 1u) / CHUNK;
  var next = load(at, t, start, end, o0);
  for (var chunk = 0u; chunk < chunks; chunk++) {
    workgroupBarrier();
    stage(next, t);
    workgroupBarrier();
    if (chunk + 1u < chunks) {
      next = load(at, t, start + (chunk + 1u) * CHUNK, end, o0);
    }
    multiplyChunk(&acc, t % THREADS_M, t / THREADS_M);
  }
  storeAccumulators(&acc, t, m0, o0, slice);
}
