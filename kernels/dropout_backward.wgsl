// Dropout backward: dx = dy * keep / (1 - p), with keep recomputed from the same hash of (seed, step,
// global element index) as dropout_forward.wgsl (both are prepended with the one hash).
// Thread mapping: one invocation per element.
// Prepended with dropout_mask.wgsl (Params, dropout_hash).
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;

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
