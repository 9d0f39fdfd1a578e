// Dropout backward: dx = dy * keep / (1 - p), with keep recomputed from the same hash of (seed, step,
// global element index) as dropout_forward.wgsl (the two hash functions must stay identical).
// Thread mapping: one invocation per element.
struct Params {
  count: u32,
  sample_offset: u32, // first sample of this (micro-)batch within the full batch
  per_sample: u32, // elements per sample
  seed: u32,
  step: u32,
  threshold: u32, // drop when hash < threshold = round(p * 2^32)
  scale: u32, // f32 bits of 1 / (1 - p)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;

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

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (i >= p.count) {
    return;
  }
  let keep = dropout_hash(p.seed, p.step, p.sample_offset * p.per_sample + i) >= p.threshold;
  dx[i] = select(0.0, dy[i] * bitcast<f32>(p.scale), keep);
}
