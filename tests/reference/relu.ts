// Float64 CPU reference for ReLU, written independently of the WGSL kernels.

/** max(x, 0). */
export function reluForwardRef(x: ArrayLike<number>): Float64Array {
  return Float64Array.from(x, (v) => Math.max(v, 0));
}

/** dy where y > 0. */
export function reluBackwardRef(y: ArrayLike<number>, dy: ArrayLike<number>): Float64Array {
  return Float64Array.from(dy, (g, i) => (y[i] > 0 ? g : 0));
}
