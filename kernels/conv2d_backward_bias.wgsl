// Conv2d bias gradient, accumulated into db (micro-batching):
//   db[o] += sum over (n, oh, ow) of g[n, o, oh, ow]
// where g is dy, or with fuseRelu dy masked by (saved output > 0).
// Thread mapping: one invocation per output channel, looping over the batch and the positions (a plain
// reduction; it reads dy once, which is small next to the weight gradient's work).
struct Params {
  n: u32,
  channels: u32,
  positions: u32,
}

override fuseRelu: bool = false;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
// The forward's output (post-ReLU) when fuseRelu; otherwise bound to dy and never read.
@group(0) @binding(2) var<storage, read> saved: array<f32>;
@group(0) @binding(3) var<storage, read_write> db: array<f32>;

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let o = (wid.x + wid.y * nwg.x) * 8u + lid;
  if (o >= p.channels) {
    return;
  }
  var sum = 0.0;
  for (var n = 0u; n < p.n; n++) {
    let start = (n * p.channels + o) * p.positions;
    for (var i = start; i < start + p.positions; i++) {
      if (fuseRelu) {
        sum += select(0.0, dy[i], saved[i] > 0.0);
      } else {
        sum += dy[i];
      }
    }
  }
  db[o] += sum;
}
