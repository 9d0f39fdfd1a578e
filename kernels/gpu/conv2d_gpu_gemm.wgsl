// Shared by conv2d_gpu_forward.wgsl and conv2d_gpu_weight_grad.wgsl (`//!include gpu/conv2d_gpu_gemm.wgsl`,
// with gpu/conv2d_gpu_common.wgsl): the workgroup-tiled GEMM both run, in the shape of one candidate.
//
// The shape constants below are the default candidate's (64 x 64 tiles, 4 x 4 blocks, chunks of 16); the
// runtime replaces their values with those of the candidate it runs (lib/layers/conv2d_gpu_candidates.ts,
// the one table of shapes), so this file compiles on its own and every candidate shares its code.
// - A workgroup of THREADS = (TILE_M / BLOCK_M) x (TILE_N / BLOCK_N) invocations owns a tile of TILE_M rows
//   (output positions in the forward, weight columns in the weight gradient) x TILE_N output channels.
//   Invocation t = (tx, ty) = (t % THREADS_M, t / THREADS_M) holds rows 4(tx + THREADS_M i) + 0..3 for
//   i < BLOCK_M / 4 and channels 4(ty + THREADS_N j) + 0..3 for j < BLOCK_N / 4, so both of its operands
//   are read from workgroup memory as vec4s (BLOCK_M / 4 + BLOCK_N / 4 reads per BLOCK_M x BLOCK_N FMAs).
// - Per chunk of CHUNK reduction steps the workgroup stages both operands in workgroup memory, [CHUNK]
//   [TILE_M] and [CHUNK][TILE_N] floats held as vec4s. Row reads are consecutive across tx (no bank
//   conflicts); channel reads are the same for all tx (broadcast).
// - The including kernel loads the next chunk's ROW_LOADS + CHANNEL_LOADS values into registers before
//   the current chunk's FMAs (register double-buffering), so global loads overlap arithmetic.
const TILE_M = 64u;
const TILE_N = 64u;
const BLOCK_M = 4u;
const BLOCK_N = 4u;
const CHUNK = 16u;
// (TILE_M / BLOCK_M) * (TILE_N / BLOCK_N), written out: the entry points' @workgroup_size.
const THREADS = 256u;

// The window's geometry, compiled into each pipeline (set per layer by the runtime): decoding a reduction
// step divides by constants, which the shader compiler turns into multiplications. PAD is signed: the
// input gradient runs the forward kernel with padding k - 1 - p, negative when p > k - 1 (a crop).
override KSIZE: u32;
override STRIDE: u32;
override PAD: i32;

const THREADS_M = TILE_M / BLOCK_M;
const THREADS_N = TILE_N / BLOCK_N;
const BLOCK_M4 = BLOCK_M / 4u;
const BLOCK_N4 = BLOCK_N / 4u;
// Values each invocation stages per chunk, of each operand.
const ROW_LOADS = CHUNK * TILE_M / THREADS;
const CHANNEL_LOADS = CHUNK * TILE_N / THREADS;

var<workgroup> tileRows: array<vec4f, CHUNK * TILE_M / 4u>;
var<workgroup> tileChannels: array<vec4f, CHUNK * TILE_N / 4u>;

// Tiles over `rows` x the output channels.
fn tileCount(rows: u32) -> u32 {
  return ((rows + TILE_M - 1u) / TILE_M) * ((p.out_channels + TILE_N - 1u) / TILE_N);
}

// The first row and first channel of tile `tile` (channel tiles fastest).
fn tileOrigin(tile: u32) -> vec2u {
  let channelTiles = (p.out_channels + TILE_N - 1u) / TILE_N;
  return vec2u((tile / channelTiles) * TILE_M, (tile % channelTiles) * TILE_N);
}

// Negative coordinates wrap to huge unsigned values, so one comparison checks both ends.
fn insideImage(ih: i32, iw: i32) -> bool {
  return u32(ih) < p.height && u32(iw) < p.width;
}

// Staged values of one chunk, loaded into registers ahead of their use.
struct Staged {
  rows: array<f32, ROW_LOADS>,
  channels: array<f32, CHANNEL_LOADS>,
}

// Element `at` of the row operand's stage, [CHUNK][TILE_M] flattened.
fn stageRow(at: u32, v: f32) {
  tileRows[at / 4u][at % 4u] = v;
}

// Element `at` of the channel operand's stage, [CHUNK][TILE_N] flattened.
fn stageChannel(at: u32, v: f32) {
  tileChannels[at / 4u][at % 4u] = v;
}

// An invocation's accumulators: acc[r * BLOCK_N4 + j] holds its block row r, channels 4(ty + THREADS_N j)..
alias Accumulators = array<vec4f, BLOCK_M * BLOCK_N4>;

// Adds the products of the staged chunk.
fn multiplyChunk(acc: ptr<function, Accumulators>, tx: u32, ty: u32) {
  for (var q = 0u; q < CHUNK; q++) {
    var a: array<vec4f, BLOCK_M4>;
    var b: array<vec4f, BLOCK_N4>;
    for (var i = 0u; i < BLOCK_M4; i++) {
      a[i] = tileRows[q * (TILE_M / 4u) + tx + THREADS_M * i];
    }
    for (var j = 0u; j < BLOCK_N4; j++) {
      b[j] = tileChannels[q * (TILE_N / 4u) + ty + THREADS_N * j];
    }
    for (var i = 0u; i < BLOCK_M4; i++) {
      for (var c = 0u; c < 4u; c++) {
        let row = vec4f(a[i][c]);
        for (var j = 0u; j < BLOCK_N4; j++) {
          let r = (4u * i + c) * BLOCK_N4 + j;
          (*acc)[r] = fma(row, b[j], (*acc)[r]);
        }
      }
    }
  }
}

// Hands each accumulator of invocation t in the tile at (row0, o0) to the including kernel's hook
//   fn store(acc: vec4f, row: u32, o: u32, slice: u32)   (row `row`, channels o..o+3)
fn storeAccumulators(acc: ptr<function, Accumulators>, t: u32, row0: u32, o0: u32, slice: u32) {
  let tx = t % THREADS_M;
  let ty = t / THREADS_M;
  for (var r = 0u; r < BLOCK_M; r++) {
    for (var j = 0u; j < BLOCK_N4; j++) {
      let row = row0 + 4u * (tx + THREADS_M * (r / 4u)) + r % 4u;
      store((*acc)[r * BLOCK_N4 + j], row, o0 + 4u * (ty + THREADS_N * j), slice);
    }
  }
}
