// Conv2d weight gradient as a split-K, workgroup-tiled GEMM, for real GPUs:
//   dw[o, e] (+)= sum over (n, oh, ow) of g[n, o, oh, ow] * x[n, c, oh*s - p + kh, ow*s - p + kw]
// with e = (c*k + kh)*k + kw (OIHW order) and zero padding. g is the output gradient (already masked by the
// ReLU when fused: conv2d_gpu_bias_grad.wgsl writes the masked copy).
//
// GEMM view (the tiled GEMM of conv2d_gpu_gemm.wgsl, in any candidate's shape): rows are the IC*k*k weight
// columns e, channels the OC output channels, the reduction runs over the R = N*OH*OW flattened positions
// r = (n*OH + oh)*OW + ow.
// - The reduction is cut into p.slices contiguous ranges of p.slice_length (a multiple of CHUNK); workgroup
//   (slice, tile) sums its range only and writes its partial tile to the workspace out[slice, o, e];
//   conv2d_gpu_reduce.wgsl then adds the slices into dw in slice order (deterministic, no atomics). With a
//   single slice (p.direct = 1) out is dw itself and the epilogue adds into it.
// - Both loaders: value l = t + THREADS*j of a stage is position r = chunk start + l % CHUNK (t % CHUNK for
//   all j, since CHUNK divides THREADS: consecutive invocations read consecutive positions, contiguous in g
//   and stride s in x; decoded once per chunk) of column or channel l / CHUNK. A column is decoded with
//   divisions by the override KSIZE. The next chunk is loaded into registers before the current FMAs.
//!include gpu/conv2d_gpu_common.wgsl
//!include gpu/conv2d_gpu_gemm.wgsl

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

// The chunk starting at position r0 (positions from `end` on read 0): this invocation's share of both
// operands.
fn load(t: u32, r0: u32, end: u32, e0: u32, o0: u32) -> Staged {
  var s: Staged;
  let ohw = p.out_height * p.out_width;
  let kk = KSIZE * KSIZE;
  let depth = p.in_channels * kk;
  let r = r0 + t % CHUNK;
  let valid = r < end;
  let n = r / ohw;
  let pos = r - n * ohw;
  let oh = pos / p.out_width;
  let ow = pos - oh * p.out_width;
  let top = i32(oh * STRIDE) - PAD;
  let left = i32(ow * STRIDE) - PAD;
  let base = i32(n * p.in_channels * p.height * p.width) + top * i32(p.width) + left;
  for (var j = 0u; j < ROW_LOADS; j++) {
    let e = e0 + (t + THREADS * j) / CHUNK;
    let c = e / kk;
    let tap = e - c * kk;
    let kh = tap / KSIZE;
    let kw = tap - kh * KSIZE;
    var v = 0.0;
    if (valid && e < depth && insideImage(top + i32(kh), left + i32(kw))) {
      v = x[base + i32(c * p.height * p.width + kh * p.width + kw)];
    }
    s.rows[j] = v;
  }
  let at = n * p.out_channels * ohw + pos;
  for (var j = 0u; j < CHANNEL_LOADS; j++) {
    let o = o0 + (t + THREADS * j) / CHUNK;
    var v = 0.0;
    if (valid && o < p.out_channels) {
      v = g[at + o * ohw];
    }
    s.channels[j] = v;
  }
  return s;
}

fn stage(s: Staged, t: u32) {
  let step = t % CHUNK;
  for (var j = 0u; j < ROW_LOADS; j++) {
    stageRow(step * TILE_M + (t + THREADS * j) / CHUNK, s.rows[j]);
  }
  for (var j = 0u; j < CHANNEL_LOADS; j++) {
    stageChannel(step * TILE_N + (t + THREADS * j) / CHUNK, s.channels[j]);
  }
}

// Writes (or with p.direct adds) one accumulator: column e of channels o..o+3.
fn store(acc: vec4f, e: u32, o: u32, slice: u32) {
  let depth = p.in_channels * KSIZE * KSIZE;
  if (e >= depth) {
    return;
  }
  for (var j = 0u; j < 4u; j++) {
    if (o + j < p.out_channels) {
      let at = (o + j) * depth + e;
      if (p.direct != 0u) {
        out[at] += acc[j];
      } else {
        out[slice * p.out_channels * depth + at] = acc[j];
      }
    }
  }
}

@compute @workgroup_size(THREADS)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) t: u32) {
  let wg = wid.x + wid.y * nwg.x;
  let tiles = tileCount(p.in_channels * KSIZE * KSIZE);
  if (wg >= tiles * p.slices) {
    return;
  }
  let slice = wg / tiles;
  let origin = tileOrigin(wg - slice * tiles);
  let e0 = origin.x;
  let o0 = origin.y;
  let start = slice * p.slice_length;
  let end = min(start + p.slice_length, p.n * p.out_height * p.out_width);
  var acc: Accumulators;
  let chunks = (max(end, start) - start + CHUNK - 1u) / CHUNK;
  var next = load(t, start, end, e0, o0);
  for (var chunk = 0u; chunk < chunks; chunk++) {
    workgroupBarrier();
    stage(next, t);
    workgroupBarrier();
    if (chunk + 1u < chunks) {
      next = load(t, start + (chunk + 1u) * CHUNK, end, e0, o0);
    }
    multiplyChunk(&acc, t % THREADS_M, t / THREADS_M);
  }
  storeAccumulators(&acc, t, e0, o0, slice);
}
