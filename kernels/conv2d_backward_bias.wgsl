// Conv2d bias gradient, accumulated into db (micro-batching):
//   db[o] += sum over (n, oh, ow) of g[n, o, oh, ow]
// g is dy, or with the override `masked` (fused ReLU) dy masked by the saved output, which is also written
// out (conv2d_relu_mask.wgsl).
// Thread mapping: one invocation per output channel, looping over the batch and the positions in order (a
// plain reduction, deterministic; it reads dy once, little next to the GEMMs).
struct Params {
  n: u32,
  count: u32, // output channels
  positions: u32,
}

//!include per_element.wgsl
//!include conv2d_relu_mask.wgsl

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> db: array<f32>;
@group(0) @binding(3) var<storage, read> saved: array<f32>;
@group(0) @binding(4) var<storage, read_write> g: array<f32>;

fn element(o: u32) {
  var sum = 0.0;
  for (var n = 0u; n < p.n; n++) {
    let start = (n * p.count + o) * p.positions;
    for (var i = start; i < start + p.positions; i++) {
      sum += gradient(i);
    }
  }
  db[o] += sum;
}
