// Shared by conv2d_gpu_forward.wgsl and conv2d_gpu_pointwise.wgsl (`//!include gpu/conv2d_gpu_output.wgsl`,
// after gpu/conv2d_gpu_gemm.wgsl): the epilogue of a GEMM that writes a convolution's output y (NCHW, rows are
// positions m = (n*OH + oh)*OW + ow), its `store` hook of the GEMM snippet. The including kernel binds
// `bias` and `y`.
override fuseRelu: bool = false;
// False for the input gradient: no bias is added (the bias binding is then a dummy).
override has_bias: bool = true;

// Adds bias, applies the optional ReLU and writes position m of channels o..o+3 (one accumulator); with a
// split reduction, writes the slice's partial sums instead.
fn store(acc: vec4f, m: u32, o: u32, slice: u32) {
  let ohw = p.out_height * p.out_width;
  if (m >= p.n * ohw) {
    return;
  }
  let n = m / ohw;
  let at = n * p.out_channels * ohw + (m - n * ohw);
  for (var j = 0u; j < 4u; j++) {
    if (o + j < p.out_channels && p.slices > 1u) {
      // A slice's partial sum, into the workspace [slices, N, OC, OH, OW]; conv2d_gpu_forward_reduce.wgsl
      // adds the bias, the slices and the ReLU.
      y[slice * p.n * p.out_channels * ohw + at + (o + j) * ohw] = acc[j];
    } else if (o + j < p.out_channels) {
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
