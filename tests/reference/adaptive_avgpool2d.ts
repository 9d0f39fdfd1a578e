// Float64 CPU reference for AdaptiveAvgPool2d (PyTorch's window bounds), written independently of the kernels.

/** Start (inclusive) and end (exclusive) of adaptive window `o` when pooling `size` down/up to `out`. */
export function adaptiveWindow(o: number, size: number, out: number): [number, number] {
  return [Math.floor((o * size) / out), Math.ceil(((o + 1) * size) / out)];
}

/** Averages over each window of an [n, c, h, w] input into [n, c, oh, ow]. */
export function adaptiveAvgPool2dForwardRef(
  x: ArrayLike<number>,
  [n, c, h, w]: number[],
  [oh, ow]: number[],
): Float64Array {
  const y = new Float64Array(n * c * oh * ow);
  for (let plane = 0; plane < n * c; plane++) {
    for (let i = 0; i < oh; i++) {
      const [r0, r1] = adaptiveWindow(i, h, oh);
      for (let j = 0; j < ow; j++) {
        const [s0, s1] = adaptiveWindow(j, w, ow);
        let sum = 0;
        for (let r = r0; r < r1; r++) for (let s = s0; s < s1; s++) sum += x[plane * h * w + r * w + s];
        y[(plane * oh + i) * ow + j] = sum / ((r1 - r0) * (s1 - s0));
      }
    }
  }
  return y;
}

/** Spreads each output gradient evenly over its window (scatter form). */
export function adaptiveAvgPool2dBackwardRef(
  dy: ArrayLike<number>,
  [n, c, h, w]: number[],
  [oh, ow]: number[],
): Float64Array {
  const dx = new Float64Array(n * c * h * w);
  for (let plane = 0; plane < n * c; plane++) {
    for (let i = 0; i < oh; i++) {
      const [r0, r1] = adaptiveWindow(i, h, oh);
      for (let j = 0; j < ow; j++) {
        const [s0, s1] = adaptiveWindow(j, w, ow);
        const share = dy[(plane * oh + i) * ow + j] / ((r1 - r0) * (s1 - s0));
        for (let r = r0; r < r1; r++) for (let s = s0; s < s1; s++) dx[plane * h * w + r * w + s] += share;
      }
    }
  }
  return dx;
}
