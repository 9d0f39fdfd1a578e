// Second pass of the split-K weight gradient and of the bias gradient: adds the per-slice partial sums into
// the gradient, in slice order (deterministic run to run; the gradient accumulates across micro-batches):
//   out[i] += sum over s = 0 .. slices - 1 of partial[s * count + i]
// One invocation per element (256 per workgroup, from the kernel's constants); consecutive invocations read
// consecutive addresses.
struct Params {
  count: u32,
  slices: u32,
}

//!include per_element.wgsl
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

fn element(i: u32) {
  var sum = 0.0;
  for (var s = 0u; s < p.slices; s++) {
    sum += partial[s * p.count + i];
  }
  out[i] += sum;
}
