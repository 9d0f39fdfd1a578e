// Shared by the conv2d bias gradient kernels of both families (`//!include conv2d_relu_mask.wgsl`):
// conv2d_backward_bias.wgsl and gpu/conv2d_gpu_bias_grad.wgsl. Plain, the gradient they sum is dy. With the
// override `masked` (Conv2d with fused ReLU) it is g = dy where the saved output (post-ReLU) is positive,
// else 0, and g is also written out for the weight and input gradient kernels, so the ReLU's backward costs
// no pass of its own and its mask is applied once, not in every GEMM step. The including kernel binds
//   dy: array<f32>                 the output gradient
//   saved: array<f32>              the fused forward's output (without `masked`: a placeholder never read)
//   g: array<f32>, read_write      the masked gradient (without `masked`: a placeholder never written)

// True for the fused-ReLU variant.
override masked: bool = false;

// The gradient at element i of dy, masked (and written to g) in the fused-ReLU variant.
fn gradient(i: u32) -> f32 {
  var v = dy[i];
  if (masked) {
    v = select(0.0, v, saved[i] > 0.0);
    g[i] = v;
  }
  return v;
}
