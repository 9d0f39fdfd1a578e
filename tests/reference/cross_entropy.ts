// Float64 CPU reference for softmax cross-entropy, written independently of the WGSL kernel.

/** Per-sample losses, softmax probabilities and first-max argmax of logits [n, classes]. */
export function crossEntropyRef(
  logits: ArrayLike<number>,
  labels: ArrayLike<number>,
  classes: number,
): { losses: Float64Array; probs: Float64Array; argmax: Int32Array } {
  const n = labels.length;
  const losses = new Float64Array(n);
  const probs = new Float64Array(n * classes);
  const argmax = new Int32Array(n);
  for (let s = 0; s < n; s++) {
    const row = Array.from({ length: classes }, (_, j) => logits[s * classes + j]);
    const m = Math.max(...row);
    argmax[s] = row.indexOf(m);
    const sum = row.reduce((acc, z) => acc + Math.exp(z - m), 0);
    losses[s] = m + Math.log(sum) - row[labels[s]];
    row.forEach((z, j) => probs[s * classes + j] = Math.exp(z - m) / sum);
  }
  return { losses, probs, argmax };
}

/** d(gradScale * sum of losses)/dlogits = (softmax - onehot) * gradScale. */
export function crossEntropyGradRef(
  logits: ArrayLike<number>,
  labels: ArrayLike<number>,
  classes: number,
  gradScale: number,
): Float64Array {
  const { probs } = crossEntropyRef(logits, labels, classes);
  for (let s = 0; s < labels.length; s++) probs[s * classes + labels[s]] -= 1;
  return probs.map((v) => v * gradScale);
}
