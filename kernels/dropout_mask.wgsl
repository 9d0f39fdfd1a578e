// Dropout mask hash, prepended (lib/layers/dropout.ts) to dropout_forward.wgsl and dropout_backward.wgsl:
// one copy of the Params layout and the hash, so the two kernels cannot disagree on the mask.
struct Params {
  count: u32,
  sample_offset: u32, // first sample of this (micro-)batch within the full batch
  per_sample: u32, // elements per sample
  seed: u32,
  step: u32,
  threshold: u32, // drop when hash < threshold = round(p * 2^32)
  scale: u32, // f32 bits of 1 / (1 - p)
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
