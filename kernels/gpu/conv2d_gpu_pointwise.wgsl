// A 1 x 1 convolution (stride 1, no padding) as a plain GEMM, for real GPUs: the forward
//   y[n, o, pos] = bias[o] + sum over c of w[o, c] * x[n, c, pos]
// (with fuseRelu, max(., 0)), and the input gradient of a 1 x 1 conv (the same GEMM over dy and the
// transposed weights, has_bias = false). No window: no im2col index math and no bounds checks. Used only
// where OH*OW is a multiple of 4, so that 4 consecutive positions lie in one image and x is read as vec4s.
//
// GEMM view (the tiled GEMM of conv2d_gpu_gemm.wgsl, in the candidate's shape): rows are the N*OH*OW
// positions, channels the OC output channels, the reduction runs over the IC input channels.
// - Input loader: value group v = t % (TILE_M / 4) (4 consecutive positions, one vec4 load and one vec4
//   store into the stage) at channels t / (TILE_M / 4) + (4 THREADS / TILE_M) j; consecutive invocations
//   read consecutive vec4s.
// - Weight loader: as the forward's (consecutive invocations read consecutive floats of one weight row).
// - Both fetch the next chunk into registers before the current chunk's FMAs.
// - Split-K over the input channels as in conv2d_gpu_forward.wgsl.
//!include gpu/conv2d_gpu_common.wgsl
//!include gpu/conv2d_gpu_gemm.wgsl
//!include gpu/conv2d_gpu_output.wgsl

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4f>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

// Row values per invocation per chunk, in vec4s.
const ROW_VECTORS = ROW_LOADS / 4u;
// Vec4 groups of positions per tile.
const GROUPS = TILE_M / 4u;

struct Loaded {
  rows: array<vec4f, ROW_VECTORS>,
  channels: array<f32, CHANNEL_LOADS>,
}

// The chunk at input channel k0 (channels from `end` on read 0): this invocation's share of both operands.
// `at` is x's vec4 index of channel 0 at its 4 positions, or -1 past the last position.
fn load(at: i32, t: u32, k0: u32, end: u32, o0: u32) -> Loaded {
  var s: Loaded;
  let planeVectors = p.out_height * p.out_width / 4u;
  for (var j = 0u; j < ROW_VECTORS; j++) {
    let c = k0 + t / GROUPS + (THREADS / GROUPS) * j;
    var v = vec4f(0.0);
    if (at >= 0 && c < end) {
      v = x[u32(at) + c * planeVectors];
    }
    s.rows[j] = v;
  }
  let c = k0 + t % CHUNK;
  for (var j = 0u; j < CHANNEL_LOADS; j++) {
    let o = o0 + (t + THREADS * j) / CHUNK;
    var v = 0.0;
    if (c < end && o < p.out_channels) {
      v = w[o * p.in_channels + c];
    }
    s.channels[j] = v;
  }
  return s;
}

fn stage(s: Loaded, t: u32) {
  for (var j = 0u; j < ROW_VECTORS; j++) {
    tileRows[(t / GROUPS + (THREADS / GROUPS) * j) * GROUPS + t % GROUPS] = s.rows[j];
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
  let ohw = p.out_height * p.out_width;
  let tiles = tileCount(p.n * ohw);
  if (wg >= tiles * p.slices) {
    return;
  }
  let slice = wg / tiles;
  let origin = tileOrigin(wg - slice * tiles);
  let start = slice * p.slice_length;
  let end = min(start + p.slice_length, p.in_channels);
  let m0 = origin.x;
  let o0 = origin.y;
  // This invocation's 4 positions (one image: OH*OW and m are multiples of 4).
  let m = m0 + 4u * (t % GROUPS);
  var at = -1i;
  if (m < p.n * ohw) {
    let n = m / ohw;
    at = i32((n * p.in_channels * ohw + (m - n * ohw)) / 4u);
  }
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
