// Shared by the "gpu" conv2d family (kernels/gpu/, passes in lib/layers/conv2d_gpu.ts): included
// (`//!include gpu/conv2d_gpu_common.wgsl`) by conv2d_gpu_forward.wgsl, conv2d_gpu_weight_grad.wgsl and
// conv2d_gpu_bias_grad.wgsl. One uniform layout for the family's convolution passes (each reads the fields
// it needs; the TypeScript side fills them by name).
struct Params {
  n: u32,
  in_channels: u32,
  height: u32,
  width: u32,
  out_channels: u32,
  out_height: u32,
  out_width: u32,
  kernel: u32,
  stride: u32,
  // Signed: the input gradient runs the forward kernel with padding k - 1 - p, negative when p > k - 1
  // (a crop).
  padding: i32,
  // Weight and bias gradients: the reduction over (n, oh, ow) is cut into `slices` contiguous ranges of
  // `slice_length` flattened positions, one range per workgroup (split-K).
  slices: u32,
  slice_length: u32,
  // Weight gradient: 1 when there is a single slice, whose GEMM adds straight into dw (no workspace).
  direct: u32,
}

// GEMM tiles: 64 x 64 outputs per workgroup of 16 x 16 invocations, each a 4 x 4 register block; the
// reduction advances CHUNK = 16 steps per trip through workgroup memory.
const TILE = 64u;
const CHUNK = 16u;

// A row/column offset far outside any image: coordinates built on it fail the bounds check.
const FAR = 1048576i;
