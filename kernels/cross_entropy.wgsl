// Fused softmax + cross-entropy with its gradient, as F.cross_entropy (per-sample loss
// log(sum_j exp(z_j - m)) - (z_label - m) with m = max_j z_j, so huge logits do not overflow).
// Writes grad[s, j] = (softmax(z_s)_j - [j == label_s]) * grad_scale and adds, into stats, the sum of the
// per-sample losses (stats[0], f32 bits) and the number of samples whose argmax (first maximum, as
// torch.argmax) equals the label (stats[1], u32).
// Thread mapping: a single workgroup of 256 invocations; invocation t handles samples t, t + 256, ...
// in order, then the partial sums are combined by a fixed tree reduction in workgroup memory, so the
// result is deterministic (no atomics), and invocation 0 accumulates into stats.
struct Params {
  samples: u32,
  classes: u32,
  grad_scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<i32>;
@group(0) @binding(3) var<storage, read_write> grad: array<f32>;
@group(0) @binding(4) var<storage, read_write> stats: array<u32>;

const THREADS = 256u;
var<workgroup> loss_part: array<f32, THREADS>;
var<workgroup> correct_part: array<u32, THREADS>;

@compute @workgroup_size(THREADS)
fn main(@builtin(local_invocation_index) t: u32) {
  let grad_scale = p.grad_scale;
  var loss = 0.0;
  var correct = 0u;
  for (var s = t; s < p.samples; s += THREADS) {
    let row = s * p.classes;
    var m = logits[row];
    var argmax = 0u;
    for (var j = 1u; j < p.classes; j++) {
      let z = logits[row + j];
      if (z > m) {
        m = z;
        argmax = j;
      }
    }
    var sum = 0.0;
    for (var j = 0u; j < p.classes; j++) {
      sum += exp(logits[row + j] - m);
    }
    let label = u32(labels[s]);
    for (var j = 0u; j < p.classes; j++) {
      let softmax = exp(logits[row + j] - m) / sum;
      grad[row + j] = (softmax - select(0.0, 1.0, j == label)) * grad_scale;
    }
    loss += log(sum) - (logits[row + label] - m);
    correct += select(0u, 1u, argmax == label);
  }
  loss_part[t] = loss;
  correct_part[t] = correct;
  for (var half = THREADS / 2u; half > 0u; half /= 2u) {
    workgroupBarrier();
    if (t < half) {
      loss_part[t] += loss_part[t + half];
      correct_part[t] += correct_part[t + half];
    }
  }
  if (t == 0u) {
    stats[0] = bitcast<u32>(bitcast<f32>(stats[0]) + loss_part[0]);
    stats[1] += correct_part[0];
  }
}
