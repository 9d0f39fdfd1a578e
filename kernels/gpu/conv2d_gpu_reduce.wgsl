// Second pass of the split-K weight gradient and of the bias gradient: adds the per-slice partial sums into
// the gradient, in slice order (deterministic run to run; the gradient accumulates across micro-batches):
//   out[i] += sum over s = 0 .. slices - 1 of partial[s * count + i]
// One invocation per element, 256 per workgroup; consecutive invocations read consecutive addresses.
struct Params {
  count: u32,
  slices: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) t: u32) {
  let i = (wid.x + wid.y * nwg.x) * 256u + t;
  if (i >= p.count) {
    return;
  }
  var sum = 0.0;
  for (var s = 0u; s < p.slices; s++) {
    sum += partial[s * p.count + i];
  }
  out[i] += sum;
}
