// Conv2d weight gradient as a split-K, workgroup-tiled GEMM, for real GPUs:
//   dw[o, e] (+)= sum over (n, oh, ow) of g[n, o, oh, ow] * x[n, c, oh*s - p + kh, ow*s - p + kw]
// with e = (c*k + kh)*k + kw (OIHW order) and zero padding. g is the output gradient (already masked by the
// ReLU when fused: conv2d_gpu_bias_grad.wgsl writes the masked copy).
//
// GEMM view (the tiled GEMM of conv2d_gpu_gemm.wgsl): rows are the IC*k*k weight columns e, channels the OC
// output channels, the reduction runs over the R = N*OH*OW flattened positions r = (n*OH + oh)*OW + ow.
// - The reduction is cut into p.slices contiguous ranges of p.slice_length; workgroup (slice, tile) sums its
//   range only and writes its partial tile to the workspace out[slice, o, e]; conv2d_gpu_reduce.wgsl then
//   adds the slices into dw in slice order (deterministic, no atomics). With a single slice (p.direct = 1)
//   out is dw itself and the epilogue adds into it.
// - Consecutive invocations hold consecutive columns: coalesced stores.
// - Both loaders use position r = chunk start + t%16 (16 consecutive invocations read 16 consecutive
//   positions: contiguous in g, stride s in x) and channel/column t/16 + 16j. The columns are decoded once
//   before the loop; the position once per chunk (two divisions per invocation per chunk, outside the FMA
//   loop). The row stride of 66 floats makes the column loader's stores conflict-free.
//!include gpu/conv2d_gpu_common.wgsl
//!include gpu/conv2d_gpu_gemm.wgsl

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

const ROW_STRIDE = 66u;

// Gradient of channel o at g[n, 0, oh, ow] = g[at].
fn channelOperand(o: u32, at: u32) -> f32 {
  return g[at + o * p.out_height * p.out_width];
}

// Writes (or with p.direct adds) one accumulator: column e of channels o.. .
fn store(acc: vec4f, e: u32, o: u32, slice: u32) {
  let depth = p.in_channels * p.kernel * p.kernel;
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

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) t: u32) {
  let wg = wid.x + wid.y * nwg.x;
  let tiles = tileCount(p.in_channels * p.kernel * p.kernel);
  if (wg >= tiles * p.slices) {
    return;
  }
  let slice = wg / tiles;
  let origin = tileOrigin(wg - slice * tiles);
  let e0 = origin.x;
  let o0 = origin.y;
  let ohw = p.out_height * p.out_width;
  let start = slice * p.slice_length;
  let end = min(start + p.slice_length, p.n * ohw);

  let lr = t % 16u;
  let lc = t / 16u;
  // The loader's four columns e0 + lc + 16j: tap row and column relative to the window's corner, and the
  // offset of (c, kh - p, kw - p) inside an image.
  var colTop = vec4i(0);
  var colLeft = vec4i(0);
  var colOffset = vec4i(0);
  for (var j = 0u; j < 4u; j++) {
    let step = reductionStep(e0 + lc + 16u * j);
    colTop[j] = step.row - p.padding;
    colLeft[j] = step.col - p.padding;
    colOffset[j] = step.offset - p.padding * i32(p.width) - p.padding;
  }
  var acc = Accumulators();
  let chunks = (max(end, start) - start + CHUNK - 1u) / CHUNK;
  for (var chunk = 0u; chunk < chunks; chunk++) {
    let r = start + chunk * CHUNK + lr;
    let valid = r < end;
    let n = r / ohw;
    let pos = r - n * ohw;
    let oh = pos / p.out_width;
    let ow = pos - oh * p.out_width;
    stageChannels(lr, o0, lc, valid, n * p.out_channels * ohw + pos);
    // x at the four columns for position r (zero in the padding and past the slice).
    let ih = vec4i(i32(oh * p.stride)) + colTop;
    let iw = vec4i(i32(ow * p.stride)) + colLeft;
    let at = vec4i(i32(n * p.in_channels * p.height * p.width + (oh * p.width + ow) * p.stride)) + colOffset;
    stageRows(lr, lc, at, insideImage(ih, iw) & vec4<bool>(valid));
    workgroupBarrier();
    acc = multiplyChunk(acc, t % 16u, t / 16u);
    workgroupBarrier();
  }
  let o = o0 + 4u * (t / 16u);
  let e = e0 + t % 16u;
  store(acc.a0, e, o, slice);
  store(acc.a1, e + 16u, o, slice);
  store(acc.a2, e + 32u, o, slice);
  store(acc.a3, e + 48u, o, slice);
}
