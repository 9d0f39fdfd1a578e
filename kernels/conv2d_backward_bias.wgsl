// Conv2d bias gradient, accumulated into db (micro-batching):
//   db[o] += sum over (n, oh, ow) of g[n, o, oh, ow]
// Plain: the gradient is dy. With the override `masked` (Conv2d with fused ReLU): g = dy where the saved output
// (post-ReLU) is positive, else 0, and g is also written out for the weight and input gradient kernels, so the
// ReLU's backward costs no pass of its own and its mask is applied once, not in every GEMM step.
// Thread mapping: one invocation per output channel, looping over the batch and the positions in order (a
// plain reduction, deterministic; it reads dy once, little next to the GEMMs).
struct Params {
  n: u32,
  count: u32, // output channels
  positions: u32,
}

//!include per_element.wgsl

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> db: array<f32>;
@group(0) @binding(3) var<storage, read> saved: array<f32>;
@group(0) @binding(4) var<storage, read_write> g: array<f32>;

// True for the fused-ReLU variant: mask dy by the saved output and write the masked gradient to g (without
// it, `saved` and `g` are bound to placeholders and never touched).
override masked: bool = false;

fn element(o: u32) {
  var sum = 0.0;
  for (var n = 0u; n < p.n; n++) {
    let start = (n * p.count + o) * p.positions;
    for (var i = start; i < start + p.positions; i++) {
      var v = dy[i];
      if (masked) {
        v = select(0.0, v, saved[i] > 0.0);
        g[i] = v;
      }
      sum += v;
    }
  }
  db[o] += sum;
}
