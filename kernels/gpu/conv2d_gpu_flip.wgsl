// The OIHW weights of the transposed convolution, for the input gradient of a stride-1 conv:
//   wf[c, o, a, b] = w[o, c, k - 1 - a, k - 1 - b]      (wf is [IC, OC, k, k])
// so that dx = conv(dy, wf) with padding k - 1 - p (conv2d_gpu_forward.wgsl without bias). One invocation
// per element of wf, in wf's order (coalesced writes; the reads are a permutation of a small tensor).
// Includes conv2d_gpu_common.wgsl (Params).
//!include gpu/conv2d_gpu_common.wgsl

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> wf: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) t: u32) {
  let i = (wid.x + wid.y * nwg.x) * 256u + t;
  let k = p.kernel;
  let kk = k * k;
  if (i >= p.in_channels * p.out_channels * kk) {
    return;
  }
  let tap = i % kk;
  let pair = i / kk;
  let o = pair % p.out_channels;
  let c = pair / p.out_channels;
  // (k - 1 - a)*k + (k - 1 - b) = k*k - 1 - tap: flipping both axes reverses the taps.
  wf[i] = w[(o * p.in_channels + c) * kk + kk - 1u - tap];
}
