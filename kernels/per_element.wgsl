// Shared by the kernels that run one invocation per element (`//!include per_element.wgsl`): their entry
// point. The including kernel has a `Params` uniform `p` whose field `count` is the number of elements, and
// defines the work of one element:
//   fn element(i: u32)
// The runtime folds a large workgroup count into (x, y) (Gpu.dispatch: x = min(count, limit),
// y = ceil(count / limit)); invocations past the count do nothing. WORKGROUP_SIZE is 64 unless the kernel's
// constants say otherwise (the runtime reads it for dispatch sizes).
override WORKGROUP_SIZE: u32 = 64u;

// Element i of a tensor [planes, height, width] (planes = N * C): its plane, row and column.
struct Cell {
  plane: u32,
  row: u32,
  col: u32,
}

fn plane_cell(i: u32, height: u32, width: u32) -> Cell {
  return Cell(i / (height * width), (i / width) % height, i % width);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WORKGROUP_SIZE + lid;
  if (i < p.count) {
    element(i);
  }
}
