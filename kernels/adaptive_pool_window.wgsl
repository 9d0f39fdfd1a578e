// Shared by adaptive_avgpool2d_forward.wgsl and adaptive_avgpool2d_backward.wgsl (`//!include adaptive_pool_window.wgsl`).
// PyTorch's adaptive windows: cell o of `out_size` covers [floor(o * size / out_size),
// ceil((o + 1) * size / out_size)). The same bounds with size and out_size swapped give the cells whose
// windows contain input position o, which is what the backward gathers over.
struct Params {
  planes: u32,
  height: u32,
  width: u32,
  out_height: u32,
  out_width: u32,
}

fn window_start(o: u32, size: u32, out_size: u32) -> u32 {
  return (o * size) / out_size;
}

fn window_end(o: u32, size: u32, out_size: u32) -> u32 {
  return ((o + 1u) * size + out_size - 1u) / out_size;
}
