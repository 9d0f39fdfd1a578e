// Conv2d forward as a workgroup-tiled implicit GEMM (no im2col buffer), for real GPUs:
//   y[n, o, oh, ow] = bias[o] + sum over (c, kh, kw) of w[o, c, kh, kw] * x[n, c, oh*s - p + kh, ow*s - p + kw]
// with zero padding; with fuseRelu the epilogue applies max(., 0). Also the input gradient of a stride-1
// conv (run on dy with the flipped weights of conv2d_gpu_flip.wgsl, padding k - 1 - p, has_bias = false).
//
// GEMM view (the tiled GEMM of conv2d_gpu_gemm.wgsl): rows are the N*OH*OW output positions
// (m = (n*OH + oh)*OW + ow), channels the OC output channels, the reduction runs over IC*k*k steps
// e = (c*k + kh)*k + kw (OIHW order, so w is read as the row-major [OC, K] matrix it already is).
// - Consecutive invocations hold consecutive positions: coalesced stores into NCHW.
// - Input loader: step k0 + t/16, positions m0 + t%16 + 16j (16 consecutive invocations read 16 consecutive
//   positions); the positions are decoded once before the loop (image base, top, left), the step once per
//   chunk (two divisions per invocation per chunk, outside the FMA loop). Its row stride of 80 floats puts
//   the two steps that 32 invocations store 16 banks apart.
// - Weight loader: step k0 + t%16 of channels o0 + t/16 + 16j (16 consecutive invocations read 16
//   consecutive floats of one weight row).
override fuseRelu: bool = false;
// False for the input gradient: no bias is added (the bias binding is then a dummy).
override has_bias: bool = true;

//!include gpu/conv2d_gpu_common.wgsl
//!include gpu/conv2d_gpu_gemm.wgsl

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

const ROW_STRIDE = 80u;

// Weight of channel o at reduction step `at`.
fn channelOperand(o: u32, at: u32) -> f32 {
  return w[o * p.in_channels * p.kernel * p.kernel + at];
}

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
      if (has_bias) {
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
  if (wg >= tileCount(positions)) {
    return;
  }
  let origin = tileOrigin(wg);
  let m0 = origin.x;
  let o0 = origin.y;
  let depth = p.in_channels * p.kernel * p.kernel;

  // Input loader: its four positions, decoded once.
  let aStep = t / 16u;
  let aLane = t % 16u;
  var base = vec4i(0);
  var top = vec4i(FAR);
  var left = vec4i(0);
  for (var j = 0u; j < 4u; j++) {
    let m = m0 + aLane + 16u * j;
    if (m < positions) {
      let n = m / ohw;
      let r = m - n * ohw;
      let oh = r / p.out_width;
      top[j] = i32(oh * p.stride) - p.padding;
      left[j] = i32((r - oh * p.out_width) * p.stride) - p.padding;
      base[j] = i32(n * p.in_channels * p.height * p.width) + top[j] * i32(p.width) + left[j];
    }
  }
  // Weight loader: reduction step k0 + bStep of channels o0 + bLane + 16j.
  let bStep = t % 16u;
  let bLane = t / 16u;
  var acc = Accumulators();
  let chunks = (depth + CHUNK - 1u) / CHUNK;
  for (var chunk = 0u; chunk < chunks; chunk++) {
    let k0 = chunk * CHUNK;
    let step = reductionStep(k0 + aStep);
    stageRows(aStep, aLane, base + vec4i(step.offset), insideImage(top + vec4i(step.row), left + vec4i(step.col)));
    stageChannels(bStep, o0, bLane, k0 + bStep < depth, k0 + bStep);
    workgroupBarrier();
    acc = multiplyChunk(acc, t % 16u, t / 16u);
    workgroupBarrier();
  }
  let o = o0 + 4u * (t / 16u);
  let m = m0 + t % 16u;
  store(acc.a0, m, o);
  store(acc.a1, m + 16u, o);
  store(acc.a2, m + 32u, o);
  store(acc.a3, m + 48u, o);
}
