// The OIHW weights of the transposed convolution, for the input gradient of a stride-1 conv:
//   wf[c, o, a, b] = w[o, c, k - 1 - a, k - 1 - b]      (wf is [IC, OC, k, k])
// so that dx = conv(dy, wf) with padding k - 1 - p (conv2d_gpu_forward.wgsl without bias). One invocation
// per element of wf, in wf's order (coalesced writes; the reads are a permutation of a small tensor).
struct Params {
  count: u32, // IC * OC * k * k
  in_channels: u32,
  out_channels: u32,
  kernel: u32,
}

//!include per_element.wgsl
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> wf: array<f32>;

fn element(i: u32) {
  let kk = p.kernel * p.kernel;
  let tap = i % kk;
  let pair = i / kk;
  let o = pair % p.out_channels;
  let c = pair / p.out_channels;
  // (k - 1 - a)*k + (k - 1 - b) = k*k - 1 - tap: flipping both axes reverses the taps.
  wf[i] = w[(o * p.in_channels + c) * kk + kk - 1u - tap];
}
