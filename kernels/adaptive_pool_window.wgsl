// Shared by adaptive_avgpool2d_forward.wgsl and adaptive_avgpool2d_backward.wgsl (`//!include adaptive_pool_window.wgsl`).
// PyTorch's adaptive windows: cell o of `out_size` covers [floor(o * size / out_size),
// ceil((o + 1) * size / out_size)). The same bounds with size and out_size swapped give the cells whose
// windows contain input position o, which is what the backward gathers over.
struct Params {
  count: u32, // output elements (forward) or input elements (backward)
  height: u32,
  width: u32,
  out_height: u32,
  out_width: u32,
}

struct Window {
  start: u32,
  end: u32,
}

fn window(o: u32, size: u32, out_size: u32) -> Window {
  return Window((o * size) / out_size, ((o + 1u) * size + out_size - 1u) / out_size);
}

// Element i of a [planes, height, width] tensor pooled adaptively to or from [planes, other_height,
// other_width]: the rows and columns of the other tensor that it meets (its window in the input, or the
// output cells whose windows contain it), and the offset of its plane there.
struct Span {
  base: u32,
  rows: Window,
  cols: Window,
}

fn span(i: u32, height: u32, width: u32, other_height: u32, other_width: u32) -> Span {
  let cell = plane_cell(i, height, width);
  return Span(cell.plane * other_height * other_width, window(cell.row, other_height, height),
              window(cell.col, other_width, width));
}
