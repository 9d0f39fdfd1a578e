// Shared by the conv2d GEMM kernels of the software family (`//!include conv2d_common.wgsl`):
// conv2d_forward.wgsl, conv2d_backward_input.wgsl, conv2d_backward_weight.wgsl and the texture-fed
// conv2d_texture_*.wgsl. Their Params layout, the test of input coordinates against the padding, and their
// register-blocked GEMM, shaped for llvmpipe (a workgroup of 8 invocations runs on one CPU thread, the
// invocations are its SIMD lanes):
// - a workgroup computes a block of 32 * rowQuads matrix rows x 4 * columnQuads matrix columns; invocation
//   `lid` owns 4 * rowQuads rows (rowQuads quads) for all the block's columns (columnQuads quads);
// - its accumulators are a Block: rowQuads Rows of columnQuads mat4x4, row j's accumulator t holds matrix
//   rows 4j.. x columns 4t..; a reduction step adds the outer product of the lane's row values with the
//   column values (the same for every lane, so the column operand's loads are uniform). The overrides size
//   the block: code for quads past them is compiled out (a Block holds at most 4 x 8 quads).
// The including kernel defines `fn store(acc: mat4x4f, row: u32, column: u32)`, which writes one
// accumulator (rows row.., columns column..).
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
  padding: u32,
  // The zero padding around each image of the output gradient as the texture-fed weight gradient reads it
  // (the input gradient's packing, shared); unused elsewhere.
  grad_padding: u32,
}

// Quads of matrix rows per invocation (1 to 4) and of matrix columns per workgroup (1 to 8).
override rowQuads: u32 = 4u;
override columnQuads: u32 = 8u;

const QUAD = vec4u(0u, 1u, 2u, 3u);

// Four windows of x (or four taps of one window): the offset in x of their top-left corner, which may lie in
// the padding, and its row and column.
struct Corners {
  offset: vec4i,
  row: vec4i,
  col: vec4i,
}

// Whether input rows ih and columns iw lie inside the image. Negative coordinates wrap to huge unsigned
// values, so one comparison checks both ends.
fn insideImage(ih: vec4i, iw: vec4i) -> vec4<bool> {
  return (vec4u(ih) < vec4u(p.height)) & (vec4u(iw) < vec4u(p.width));
}

// Indices first.. first + 3, clamped to count - 1: indices past the end compute values that are never stored.
fn clampedQuad(first: u32, count: u32) -> vec4u {
  return min(vec4u(first) + QUAD, vec4u(count - 1u));
}

// acc + a * b^T: column i gains a * b[i].
fn outer(acc: mat4x4f, a: vec4f, b: vec4f) -> mat4x4f {
  return mat4x4f(fma(a, vec4f(b.x), acc[0]), fma(a, vec4f(b.y), acc[1]), fma(a, vec4f(b.z), acc[2]),
                 fma(a, vec4f(b.w), acc[3]));
}

struct Row {
  q0: mat4x4f, q1: mat4x4f, q2: mat4x4f, q3: mat4x4f, q4: mat4x4f, q5: mat4x4f, q6: mat4x4f, q7: mat4x4f,
}

// 32 values as 8 quads, one per matrix column of a Row.
struct Quads {
  q0: vec4f, q1: vec4f, q2: vec4f, q3: vec4f, q4: vec4f, q5: vec4f, q6: vec4f, q7: vec4f,
}

fn accumulate(r: Row, a: vec4f, b: Quads) -> Row {
  var out = r;
  out.q0 = outer(r.q0, a, b.q0);
  if (columnQuads > 1u) { out.q1 = outer(r.q1, a, b.q1); }
  if (columnQuads > 2u) { out.q2 = outer(r.q2, a, b.q2); }
  if (columnQuads > 3u) { out.q3 = outer(r.q3, a, b.q3); }
  if (columnQuads > 4u) { out.q4 = outer(r.q4, a, b.q4); }
  if (columnQuads > 5u) { out.q5 = outer(r.q5, a, b.q5); }
  if (columnQuads > 6u) { out.q6 = outer(r.q6, a, b.q6); }
  if (columnQuads > 7u) { out.q7 = outer(r.q7, a, b.q7); }
  return out;
}

// An invocation's accumulators, and its row values at one reduction step (one quad per Row).
struct Block {
  r0: Row, r1: Row, r2: Row, r3: Row,
}

struct RowValues {
  q0: vec4f, q1: vec4f, q2: vec4f, q3: vec4f,
}

fn accumulateBlock(b: Block, rows: RowValues, columns: Quads) -> Block {
  var out = b;
  out.r0 = accumulate(b.r0, rows.q0, columns);
  if (rowQuads > 1u) { out.r1 = accumulate(b.r1, rows.q1, columns); }
  if (rowQuads > 2u) { out.r2 = accumulate(b.r2, rows.q2, columns); }
  if (rowQuads > 3u) { out.r3 = accumulate(b.r3, rows.q3, columns); }
  return out;
}

// The first matrix row of this invocation and the first column of its workgroup's block; blocks are
// numbered rows first, over workgroups folded into (x, y) as the runtime dispatches them.
fn blockOrigin(wid: vec3u, nwg: vec3u, lid: u32, rowCount: u32) -> vec2u {
  let wg = wid.x + wid.y * nwg.x;
  let rowsPerWorkgroup = 32u * rowQuads;
  let rowBlocks = (rowCount + rowsPerWorkgroup - 1u) / rowsPerWorkgroup;
  return vec2u((wg % rowBlocks) * rowsPerWorkgroup + lid * 4u * rowQuads,
               (wg / rowBlocks) * 4u * columnQuads);
}

fn storeRow(r: Row, row: u32, column: u32) {
  store(r.q0, row, column);
  if (columnQuads > 1u) { store(r.q1, row, column + 4u); }
  if (columnQuads > 2u) { store(r.q2, row, column + 8u); }
  if (columnQuads > 3u) { store(r.q3, row, column + 12u); }
  if (columnQuads > 4u) { store(r.q4, row, column + 16u); }
  if (columnQuads > 5u) { store(r.q5, row, column + 20u); }
  if (columnQuads > 6u) { store(r.q6, row, column + 24u); }
  if (columnQuads > 7u) { store(r.q7, row, column + 28u); }
}

fn storeBlock(b: Block, row: u32, column: u32) {
  storeRow(b.r0, row, column);
  if (rowQuads > 1u) { storeRow(b.r1, row + 4u, column); }
  if (rowQuads > 2u) { storeRow(b.r2, row + 8u, column); }
  if (rowQuads > 3u) { storeRow(b.r3, row + 12u, column); }
}
