// Second pass of the split-K forward (conv2d_gpu_forward.wgsl, conv2d_gpu_pointwise.wgsl with p.slices > 1):
//   y[i] = act(bias[o] + sum over s = 0 .. slices - 1 of partial[s * count + i])
// with o = (i / (OH*OW)) % OC the element's channel, act the ReLU when fuseRelu, else the identity; the
// slices are added in slice order (deterministic run to run). Without bias (the input gradient) the bias
// binding is a dummy. One invocation per element; consecutive invocations read consecutive addresses.
struct Params {
  count: u32,
  slices: u32,
  out_channels: u32,
  plane: u32,
}

override fuseRelu: bool = false;
override has_bias: bool = true;

//!include per_element.wgsl
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

fn element(i: u32) {
  var sum = 0.0;
  if (has_bias) {
    sum = bias[(i / p.plane) % p.out_channels];
  }
  for (var s = 0u; s < p.slices; s++) {
    sum += partial[s * p.count + i];
  }
  if (fuseRelu) {
    sum = max(sum, 0.0);
  }
  y[i] = sum;
}
