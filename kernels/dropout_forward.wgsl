// Dropout forward (training): y = x * keep / (1 - p), keep = 1 with probability 1 - p.
// The keep bit is not stored: it is a counter-based hash of (seed, step, global element index), so the
// backward kernel (dropout_backward.wgsl, same prepended hash) recomputes it, and a batch split into
// micro-batches gets the same mask as the whole batch because the global index is sample_offset * per_sample + i.
// Thread mapping: one invocation per element.
// Prepended with dropout_mask.wgsl (Params, dropout_hash).
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (i >= p.count) {
    return;
  }
  let keep = dropout_hash(p.seed, p.step, p.sample_offset * p.per_sample + i) >= p.threshold;
  y[i] = select(0.0, x[i] * bitcast<f32>(p.scale), keep);
}
