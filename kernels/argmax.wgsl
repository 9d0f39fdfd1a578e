// Predicted class of each sample: classes[offset + s] = argmax_j logits[s, j], the first maximum winning (as
// torch.argmax), so that predictions of a whole batch collect on the GPU and are read back once.
// Thread mapping: one invocation per sample; workgroups are laid out in x then y (see Gpu.dispatch).
struct Params {
  count: u32,
  classes: u32,
  offset: u32,
}

//!include per_element.wgsl
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> predicted: array<u32>;

fn element(s: u32) {
  let row = s * p.classes;
  var best = 0u;
  for (var j = 1u; j < p.classes; j++) {
    if (logits[row + j] > logits[row + best]) {
      best = j;
    }
  }
  predicted[p.offset + s] = best;
}
