// Float64 CPU reference for torch.optim.SGD's update, written independently of the WGSL kernel.

/** Hyperparameters, as torch.optim.SGD. */
export interface SgdRefOptions {
  lr: number;
  momentum: number;
  weightDecay: number;
  dampening: number;
  nesterov: boolean;
}

/** One step in place on `w` (and `buf`, which is null before the first momentum step); returns the buffer. */
export function sgdStepRef(
  w: Float64Array,
  grad: ArrayLike<number>,
  buf: Float64Array | null,
  o: SgdRefOptions,
): Float64Array | null {
  const d = Float64Array.from(grad, (g, i) => g + o.weightDecay * w[i]);
  let next = buf;
  if (o.momentum !== 0) {
    next = buf === null ? Float64Array.from(d) : buf.map((b, i) => o.momentum * b + (1 - o.dampening) * d[i]);
    for (let i = 0; i < d.length; i++) d[i] = o.nesterov ? d[i] + o.momentum * next[i] : next[i];
  }
  for (let i = 0; i < w.length; i++) w[i] -= o.lr * d[i];
  return next;
}
