// Shared by the three conv2d GEMM kernels of the software family (`//!include conv2d_common.wgsl`):
// conv2d_forward.wgsl, conv2d_backward_input.wgsl and conv2d_backward_weight.wgsl. Their Params layout, the
// test of input coordinates against the padding, and their register-blocked GEMM, shaped for llvmpipe (a
// workgroup of 8 invocations runs on one CPU thread, the invocations are its SIMD lanes):
// - a workgroup computes a block of 32 * rowQuads matrix rows x 32 matrix columns; invocation `lid` owns
//   4 * rowQuads rows (rowQuads quads) for all 32 columns (8 quads);
// - its accumulators are a Block: rowQuads Rows of eight mat4x4, row j's accumulator t holds matrix rows
//   4j.. x columns 4t..; a reduction step adds the outer product of the lane's row values with the 32 column
//   values (the same for every lane, so the column operand's loads are uniform).
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
}

// Quads of matrix rows per invocation: 4, or 3 for 96-row blocks (the fourth Row's code is compiled out).
override rowQuads: u32 = 4u;
const COLUMNS_PER_WORKGROUP = 32u;

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
  return Row(outer(r.q0, a, b.q0), outer(r.q1, a, b.q1), outer(r.q2, a, b.q2), outer(r.q3, a, b.q3),
             outer(r.q4, a, b.q4), outer(r.q5, a, b.q5), outer(r.q6, a, b.q6), outer(r.q7, a, b.q7));
}

// An invocation's accumulators, and its row values at one reduction step (one quad per Row).
struct Block {
  r0: Row, r1: Row, r2: Row, r3: Row,
}

struct RowValues {
  q0: vec4f, q1: vec4f, q2: vec4f, q3: vec4f,
}

fn accumulateBlock(b: Block, rows: RowValues, columns: Quads) -> Block {
  var r3 = b.r3;
  if (rowQuads == 4u) {
    r3 = accumulate(b.r3, rows.q3, columns);
  }
  return Block(accumulate(b.r0, rows.q0, columns), accumulate(b.r1, rows.q1, columns),
               accumulate(b.r2, rows.q2, columns), r3);
}

// The first matrix row of this invocation and the first column of its workgroup's block; blocks are
// numbered rows first, over workgroups folded into (x, y) as the runtime dispatches them.
fn blockOrigin(wid: vec3u, nwg: vec3u, lid: u32, rowCount: u32) -> vec2u {
  let wg = wid.x + wid.y * nwg.x;
  let rowsPerWorkgroup = 32u * rowQuads;
  let rowBlocks = (rowCount + rowsPerWorkgroup - 1u) / rowsPerWorkgroup;
  return vec2u((wg % rowBlocks) * rowsPerWorkgroup + lid * 4u * rowQuads,
               (wg / rowBlocks) * COLUMNS_PER_WORKGROUP);
}

fn storeRow(r: Row, row: u32, column: u32) {
  store(r.q0, row, column);
  store(r.q1, row, column + 4u);
  store(r.q2, row, column + 8u);
  store(r.q3, row, column + 12u);
  store(r.q4, row, column + 16u);
  store(r.q5, row, column + 20u);
  store(r.q6, row, column + 24u);
  store(r.q7, row, column + 28u);
}

fn storeBlock(b: Block, row: u32, column: u32) {
  storeRow(b.r0, row, column);
  storeRow(b.r1, row + 4u, column);
  storeRow(b.r2, row + 8u, column);
  if (rowQuads == 4u) {
    storeRow(b.r3, row + 12u, column);
  }
}
