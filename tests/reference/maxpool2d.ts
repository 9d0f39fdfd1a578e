// Float64 CPU reference for MaxPool2d (PyTorch semantics), written independently of the WGSL kernels.

/** Shape and hyperparameters of a pooling: input [n, c, h, w], square kernel, stride, padding. */
export interface PoolGeometry {
  n: number;
  c: number;
  h: number;
  w: number;
  kernel: number;
  stride: number;
  padding: number;
}

/** PyTorch's floor output size. */
export function maxPoolOutSize(size: number, kernel: number, stride: number, padding: number): number {
  return Math.floor((size + 2 * padding - kernel) / stride) + 1;
}

/**
 * Max over each window, padding as -infinity; `argmax` is the flat index (y * w + x) in the input plane of
 * the first maximum in row-major window order.
 */
export function maxPool2dForwardRef(
  x: ArrayLike<number>,
  g: PoolGeometry,
): { y: Float64Array; argmax: Int32Array; oh: number; ow: number } {
  const oh = maxPoolOutSize(g.h, g.kernel, g.stride, g.padding);
  const ow = maxPoolOutSize(g.w, g.kernel, g.stride, g.padding);
  const y = new Float64Array(g.n * g.c * oh * ow);
  const argmax = new Int32Array(y.length);
  for (let plane = 0; plane < g.n * g.c; plane++) {
    for (let i = 0; i < oh; i++) {
      for (let j = 0; j < ow; j++) {
        let best = -Infinity;
        let bestAt = -1;
        for (let a = 0; a < g.kernel; a++) {
          for (let b = 0; b < g.kernel; b++) {
            const r = i * g.stride - g.padding + a;
            const s = j * g.stride - g.padding + b;
            if (r < 0 || r >= g.h || s < 0 || s >= g.w) continue;
            const v = x[plane * g.h * g.w + r * g.w + s];
            if (v > best) {
              best = v;
              bestAt = r * g.w + s;
            }
          }
        }
        const o = (plane * oh + i) * ow + j;
        y[o] = best;
        argmax[o] = bestAt;
      }
    }
  }
  return { y, argmax, oh, ow };
}

/** Scatters each output gradient onto its window's argmax. */
export function maxPool2dBackwardRef(
  argmax: Int32Array,
  dy: ArrayLike<number>,
  g: PoolGeometry,
): Float64Array {
  const dx = new Float64Array(g.n * g.c * g.h * g.w);
  const perPlane = argmax.length / (g.n * g.c);
  for (let o = 0; o < argmax.length; o++) {
    const plane = Math.floor(o / perPlane);
    dx[plane * g.h * g.w + argmax[o]] += dy[o];
  }
  return dx;
}
