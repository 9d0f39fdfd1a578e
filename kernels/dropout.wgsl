// Dropout, one kernel for both directions: out = in * keep / (1 - p), keep = 1 with probability 1 - p.
// Forward: in = x, out = y. Backward: in = dy, out = dx, with the same mask, because the keep bit is not
// stored: it is a counter-based hash of (seed, step, global element index), recomputed here each time; a batch
// split into micro-batches gets the same mask as the whole batch because the global index is
// sample_offset * per_sample + i.
// Thread mapping: one invocation per element.
struct Params {
  count: u32,
  sample_offset: u32, // first sample of this (micro-)batch within the full batch
  per_sample: u32, // elements per sample
  seed: u32,
  step: u32,
  threshold: u32, // drop when hash < threshold = round(p * 2^32)
  scale: f32, // 1 / (1 - p)
}

// Chris Wellons' lowbias32 integer mixer: a bijection on u32 with good avalanche.
fn mix32(v: u32) -> u32 {
  var h = v;
  h ^= h >> 16u;
  h *= 0x7feb352du;
  h ^= h >> 15u;
  h *= 0x846ca68bu;
  h ^= h >> 16u;
  return h;
}

// Uniform u32 from (seed, step, index); keyed twice so different steps do not just permute one mask.
fn dropout_hash(seed: u32, step: u32, index: u32) -> u32 {
  let key = mix32(mix32(seed ^ 0x9e3779b9u) ^ step);
  return mix32(mix32(index ^ key) + key);
}

//!include per_element.wgsl
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read_write> output: array<f32>;

fn element(i: u32) {
  let keep = dropout_hash(p.seed, p.step, p.sample_offset * p.per_sample + i) >= p.threshold;
  output[i] = select(0.0, input[i] * p.scale, keep);
}
