// Conv2d weight gradient as a split-K, workgroup-tiled GEMM, for real GPUs:
//   dw[o, e] (+)= sum over (n, oh, ow) of g[n, o, oh, ow] * x[n, c, oh*s - p + kh, ow*s - p + kw]
// with e = (c*k + kh)*k + kw (OIHW order) and zero padding. g is the output gradient (already masked by the
// ReLU when fused: conv2d_gpu_bias_grad.wgsl writes the masked copy).
//
// - The reduction over the R = N*OH*OW flattened positions r = (n*OH + oh)*OW + ow is cut into p.slices
//   contiguous ranges of p.slice_length; workgroup (slice, o-tile, e-tile) sums its range only and writes its
//   64 x 64 partial tile to the workspace out[slice, o, e]; conv2d_gpu_reduce.wgsl then adds the slices into
//   dw in slice order (deterministic, no atomics). With a single slice (p.direct = 1) out is dw itself and
//   the epilogue adds into it.
// - 256 invocations; (tx, ty) = (t % 16, t / 16) holds columns e0 + tx + 16i x channels o0 + 4ty + j, so
//   consecutive invocations write consecutive columns (coalesced).
// - Per chunk of 16 positions the workgroup stages g's tile [16 r][64 o] and x's tile [16 r][64 e]. Both
//   loaders use r = chunk start + t%16 (16 consecutive invocations read 16 consecutive positions: contiguous
//   in g, stride s in x) and channel/column t/16 + 16j. The columns are decoded once before the loop; the
//   position once per chunk (two divisions per invocation per chunk, outside the FMA loop).
// - FMA loop: per step one vec4 read of g's tile (broadcast across tx), 4 scalar reads of x's tile
//   (consecutive across tx), 16 multiply-adds. Row strides 17 vec4s (vec4-aligned, stores at most 2-way
//   conflicted) and 66 floats (conflict-free stores and reads).
// Includes conv2d_gpu_common.wgsl (Params, TILE, CHUNK, FAR).
//!include gpu/conv2d_gpu_common.wgsl

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

const G_STRIDE = 17u;
const X_STRIDE = 66u;

var<workgroup> tileG: array<vec4f, 272>; // CHUNK * G_STRIDE
var<workgroup> tileX: array<f32, 1056>; // CHUNK * X_STRIDE

// Writes (or with p.direct adds) one accumulator: column e of channels o.. .
fn store(acc: vec4f, e: u32, o: u32, slice: u32) {
  let depth = p.in_channels * p.kernel * p.kernel;
  if (e >= depth) {
    return;
  }
  for (var j = 0u; j < 4u; j++) {
    if (o + j < p.out_channels) {
      let at = (o + j) * depth + e;
      if (p.direct != 0u) {
        out[at] += acc[j];
      } else {
        out[slice * p.out_channels * depth + at] = acc[j];
      }
    }
  }
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) t: u32) {
  let wg = wid.x + wid.y * nwg.x;
  let kk = p.kernel * p.kernel;
  let depth = p.in_channels * kk;
  let channelTiles = (p.out_channels + TILE - 1u) / TILE;
  let tiles = channelTiles * ((depth + TILE - 1u) / TILE);
  if (wg >= tiles * p.slices) {
    return;
  }
  let slice = wg / tiles;
  let tile = wg - slice * tiles;
  let o0 = (tile % channelTiles) * TILE;
  let e0 = (tile / channelTiles) * TILE;
  let ohw = p.out_height * p.out_width;
  let hw = p.height * p.width;
  let width = i32(p.width);
  let start = slice * p.slice_length;
  let end = min(start + p.slice_length, p.n * ohw);

  let lr = t % 16u;
  let lc = t / 16u;
  // The loader's four columns e0 + lc + 16j: tap row and column relative to the window's corner, and the
  // offset of (c, kh - p, kw - p) inside an image.
  var colTop = vec4i(FAR);
  var colLeft = vec4i(0);
  var colOffset = vec4i(0);
  for (var j = 0u; j < 4u; j++) {
    let e = e0 + lc + 16u * j;
    if (e < depth) {
      let c = e / kk;
      let tap = e - c * kk;
      let row = tap / p.kernel;
      colTop[j] = i32(row) - p.padding;
      colLeft[j] = i32(tap - row * p.kernel) - p.padding;
      colOffset[j] = i32(c * hw) + colTop[j] * width + colLeft[j];
    }
  }
  let tx = t % 16u;
  let ty = t / 16u;
  var acc0 = vec4f(0.0);
  var acc1 = vec4f(0.0);
  var acc2 = vec4f(0.0);
  var acc3 = vec4f(0.0);
  let chunks = (max(end, start) - start + CHUNK - 1u) / CHUNK;
  for (var chunk = 0u; chunk < chunks; chunk++) {
    let r = start + chunk * CHUNK + lr;
    let valid = r < end;
    let n = r / ohw;
    let pos = r - n * ohw;
    let oh = pos / p.out_width;
    let ow = pos - oh * p.out_width;
    // g's tile: channels lc + 16j at position r.
    let gBase = n * p.out_channels * ohw + pos;
    for (var j = 0u; j < 4u; j++) {
      let o = o0 + lc + 16u * j;
      var v = 0.0;
      if (valid && o < p.out_channels) {
        v = g[gBase + o * ohw];
      }
      tileG[lr * G_STRIDE + lc / 4u + 4u * j][lc % 4u] = v;
    }
    // x's tile: columns lc + 16j at position r (zero in the padding and past the slice).
    let ih = vec4i(i32(oh * p.stride)) + colTop;
    let iw = vec4i(i32(ow * p.stride)) + colLeft;
    let inside = (vec4u(ih) < vec4u(p.height)) & (vec4u(iw) < vec4u(p.width)) & vec4<bool>(valid);
    let at = vec4i(i32(n * p.in_channels * hw + oh * p.stride * p.width + ow * p.stride)) + colOffset;
    for (var j = 0u; j < 4u; j++) {
      var v = 0.0;
      if (inside[j]) {
        v = x[at[j]];
      }
      tileX[lr * X_STRIDE + lc + 16u * j] = v;
    }
    workgroupBarrier();
    for (var q = 0u; q < CHUNK; q++) {
      let a = tileG[q * G_STRIDE + ty];
      let b = q * X_STRIDE + tx;
      acc0 = fma(vec4f(tileX[b]), a, acc0);
      acc1 = fma(vec4f(tileX[b + 16u]), a, acc1);
      acc2 = fma(vec4f(tileX[b + 32u]), a, acc2);
      acc3 = fma(vec4f(tileX[b + 48u]), a, acc3);
    }
    workgroupBarrier();
  }
  let o = o0 + 4u * ty;
  store(acc0, e0 + tx, o, slice);
  store(acc1, e0 + tx + 16u, o, slice);
  store(acc2, e0 + tx + 32u, o, slice);
  store(acc3, e0 + tx + 48u, o, slice);
}
