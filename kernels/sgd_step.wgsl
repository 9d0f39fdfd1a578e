// One SGD step on one parameter, in place, with PyTorch's formulas (torch.optim.SGD):
//   g = grad + weight_decay * w
//   buf = g on the parameter's first step, else momentum * buf + (1 - dampening) * g
//   g = nesterov ? g + momentum * buf : buf          (only when momentum != 0)
//   w = w - lr * g
// Thread mapping: one invocation per parameter element.
struct Params {
  count: u32,
  lr: f32,
  momentum: f32, // 0 means no momentum buffer (`buf` is then a placeholder)
  dampening: f32,
  weight_decay: f32,
  nesterov: u32,
  first_step: u32, // 1 when buf holds nothing yet
}

//!include per_element.wgsl
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> w: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> buf: array<f32>;

fn element(i: u32) {
  let weight_decay = p.weight_decay;
  let momentum = p.momentum;
  var g = grad[i];
  if (weight_decay != 0.0) {
    g += weight_decay * w[i];
  }
  if (momentum != 0.0) {
    var b = g;
    if (p.first_step == 0u) {
      b = momentum * buf[i] + (1.0 - p.dampening) * g;
    }
    buf[i] = b;
    g = select(b, g + momentum * b, p.nesterov != 0u);
  }
  w[i] -= p.lr * g;
}
