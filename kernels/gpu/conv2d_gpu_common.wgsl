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
  // Weight and bias gradients: the reduction over (n, oh, ow) is cut into `slices` contiguous ranges of
  // `slice_length` flattened positions, one range per workgroup (split-K).
  slices: u32,
  slice_length: u32,
  // Weight gradient: 1 when there is a single slice, whose GEMM adds straight into dw (no workspace).
  direct: u32,
}
