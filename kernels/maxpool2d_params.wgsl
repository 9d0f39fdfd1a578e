// Shared by maxpool2d_forward.wgsl and maxpool2d_backward.wgsl (`//!include maxpool2d_params.wgsl`): their
// uniform layout. Windows start at (o * stride - padding) and span `kernel` positions in each axis.
struct Params {
  count: u32, // output elements (forward) or input elements (backward)
  height: u32,
  width: u32,
  out_height: u32,
  out_width: u32,
  kernel: u32,
  stride: u32,
  padding: u32,
}
