// Shared by conv2d_gpu_forward.wgsl and conv2d_gpu_weight_grad.wgsl (`//!include gpu/conv2d_gpu_gemm.wgsl`,
// with gpu/conv2d_gpu_common.wgsl): the workgroup-tiled GEMM both run.
// - A workgroup of 256 invocations owns a tile of TILE rows (output positions in the forward, weight columns
//   in the weight gradient) x TILE output channels; invocation t = (tx, ty) = (t % 16, t / 16) holds rows
//   tx + 16i x channels 4ty + j in four vec4 accumulators, so consecutive invocations write consecutive rows.
// - Per chunk of CHUNK reduction steps the workgroup stages the row operand, gathered from the input `x`
//   with zero padding, in `tileRows` [CHUNK][ROW_STRIDE], and the channel operand in `tileChannels`
//   [CHUNK][CHANNEL_STRIDE] as vec4s of four channels; a loader invocation stages four values of one step,
//   16 rows or channels apart.
// - FMA loop: per step one vec4 read of the channel tile (the same for all tx: broadcast), 4 scalar reads of
//   the row tile (consecutive across tx: no bank conflicts), 16 multiply-adds. No integer division.
// - CHANNEL_STRIDE is 17 vec4s (vec4-aligned; the transposing stores conflict at most 2-way).
// The including kernel binds `x` and defines
//   const ROW_STRIDE                             the row tile's stride, conflict-free for its row loader
//   fn channelOperand(o: u32, at: u32) -> f32    channel o's operand value at the loader's offset `at`
const CHANNEL_STRIDE = 17u;

var<workgroup> tileRows: array<f32, CHUNK * ROW_STRIDE>;
var<workgroup> tileChannels: array<vec4f, CHUNK * CHANNEL_STRIDE>;

// Tiles over `rows` x the output channels.
fn tileCount(rows: u32) -> u32 {
  return ((rows + TILE - 1u) / TILE) * ((p.out_channels + TILE - 1u) / TILE);
}

// The first row and first channel of tile `tile` (channel tiles fastest).
fn tileOrigin(tile: u32) -> vec2u {
  let channelTiles = (p.out_channels + TILE - 1u) / TILE;
  return vec2u((tile / channelTiles) * TILE, (tile % channelTiles) * TILE);
}

// Where reduction step e = (c*k + kh)*k + kw reads relative to a window's corner: tap row and column, and the
// offset of (c, kh, kw) inside an image. Past the reduction (e >= depth) the row is FAR, so it reads nothing.
struct Step {
  row: i32,
  col: i32,
  offset: i32,
}

fn reductionStep(e: u32) -> Step {
  let kk = p.kernel * p.kernel;
  if (e >= p.in_channels * kk) {
    return Step(FAR, 0, 0);
  }
  let c = e / kk;
  let tap = e - c * kk;
  let row = tap / p.kernel;
  let col = tap - row * p.kernel;
  return Step(i32(row), i32(col), i32(c * p.height * p.width + row * p.width + col));
}

// Negative coordinates wrap to huge unsigned values, so one comparison checks both ends.
fn insideImage(ih: vec4i, iw: vec4i) -> vec4<bool> {
  return (vec4u(ih) < vec4u(p.height)) & (vec4u(iw) < vec4u(p.width));
}

// Stages x[at[j]] (0 where !inside[j]) at rows lane + 16j of tile row `step`.
fn stageRows(step: u32, lane: u32, at: vec4i, inside: vec4<bool>) {
  for (var j = 0u; j < 4u; j++) {
    var v = 0.0;
    if (inside[j]) {
      v = x[at[j]];
    }
    tileRows[step * ROW_STRIDE + lane + 16u * j] = v;
  }
}

// Stages the operand of channels o0 + lane + 16j at tile row `step` (0 past the last channel or if !valid).
fn stageChannels(step: u32, o0: u32, lane: u32, valid: bool, at: u32) {
  for (var j = 0u; j < 4u; j++) {
    let o = o0 + lane + 16u * j;
    var v = 0.0;
    if (valid && o < p.out_channels) {
      v = channelOperand(o, at);
    }
    tileChannels[step * CHANNEL_STRIDE + lane / 4u + 4u * j][lane % 4u] = v;
  }
}

// An invocation's accumulators: rows tx + 16i (ai) x channels 4ty.. (components).
struct Accumulators {
  a0: vec4f,
  a1: vec4f,
  a2: vec4f,
  a3: vec4f,
}

// Adds the products of the staged chunk.
fn multiplyChunk(acc: Accumulators, tx: u32, ty: u32) -> Accumulators {
  var r = acc;
  for (var q = 0u; q < CHUNK; q++) {
    let row = q * ROW_STRIDE + tx;
    let channels = tileChannels[q * CHANNEL_STRIDE + ty];
    r.a0 = fma(vec4f(tileRows[row]), channels, r.a0);
    r.a1 = fma(vec4f(tileRows[row + 16u]), channels, r.a1);
    r.a2 = fma(vec4f(tileRows[row + 32u]), channels, r.a2);
    r.a3 = fma(vec4f(tileRows[row + 48u]), channels, r.a3);
  }
  return r;
}
