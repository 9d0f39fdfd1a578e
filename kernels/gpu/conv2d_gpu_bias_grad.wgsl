// First pass of the conv2d bias gradient, for real GPUs: per (channel, slice) partial sums
//   partial[slice, o] = sum over the slice's flattened positions r = (n*OH + oh)*OW + ow of g[n, o, oh, ow]
// then conv2d_gpu_reduce.wgsl adds the slices into db in slice order (db accumulates; deterministic).
// g is dy, or with the override `masked` (fused ReLU) dy masked by the saved output, which is also written
// out, once, for the weight and input gradient GEMMs (conv2d_relu_mask.wgsl).
// Workgroup (slice, o) = (wg / OC, wg % OC), 256 invocations striding over the slice's positions
// (consecutive invocations read consecutive positions of one image plane; the position is stepped without
// division), then a tree reduction in workgroup memory.
// Includes conv2d_gpu_common.wgsl (Params).
//!include gpu/conv2d_gpu_common.wgsl
//!include conv2d_relu_mask.wgsl

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> partial: array<f32>;
@group(0) @binding(3) var<storage, read> saved: array<f32>;
@group(0) @binding(4) var<storage, read_write> g: array<f32>;

const THREADS = 256u;

var<workgroup> sums: array<f32, THREADS>;

// The element offsets this invocation visits: r = start + t, start + t + 256, ... below end.
struct Walk {
  at: u32,
  r: u32,
  end: u32,
  pos: u32,
}

fn begin(slice: u32, o: u32, t: u32) -> Walk {
  let ohw = p.out_height * p.out_width;
  let start = slice * p.slice_length;
  let r = start + t;
  let n = r / ohw;
  let pos = r - n * ohw;
  return Walk((n * p.out_channels + o) * ohw + pos, r, min(start + p.slice_length, p.n * ohw), pos);
}

// One step of 256 positions: `pos` moves 256 % OH*OW within the image plane and the plane moves
// 256 / (OH*OW) images on, plus one on wrapping.
fn advance(walk: Walk) -> Walk {
  let ohw = p.out_height * p.out_width;
  let images = THREADS / ohw;
  var pos = walk.pos + (THREADS - images * ohw);
  var at = walk.at + (THREADS - images * ohw) + images * p.out_channels * ohw;
  if (pos >= ohw) {
    pos -= ohw;
    at += (p.out_channels - 1u) * ohw;
  }
  return Walk(at, walk.r + THREADS, walk.end, pos);
}

fn reduce(sum: f32, t: u32, slice: u32, o: u32) {
  sums[t] = sum;
  workgroupBarrier();
  for (var half = THREADS / 2u; half > 0u; half /= 2u) {
    if (t < half) {
      sums[t] += sums[t + half];
    }
    workgroupBarrier();
  }
  if (t == 0u) {
    partial[slice * p.out_channels + o] = sums[0];
  }
}

@compute @workgroup_size(THREADS)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) t: u32) {
  let wg = wid.x + wid.y * nwg.x;
  if (wg >= p.out_channels * p.slices) {
    return;
  }
  let o = wg % p.out_channels;
  let slice = wg / p.out_channels;
  var sum = 0.0;
  for (var walk = begin(slice, o, t); walk.r < walk.end; walk = advance(walk)) {
    sum += gradient(walk.at);
  }
  reduce(sum, t, slice, o);
}
