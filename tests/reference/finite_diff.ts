// Central finite differences in float64, the ground truth that gradient checks compare against.

/**
 * The gradient of a scalar function by central differences: (f(x + eps e_i) - f(x - eps e_i)) / (2 eps)
 * for every coordinate i. `x` is restored after each probe.
 *
 * @example
 * ```ts
 * import { finiteDifferenceGrad } from "./finite_diff.ts";
 * const g = finiteDifferenceGrad((x) => x[0] * x[0] + 3 * x[1], Float64Array.from([2, 5]), 1e-5);
 * console.log(g); // ~[4, 3]
 * ```
 */
export function finiteDifferenceGrad(
  f: (x: Float64Array) => number,
  x: Float64Array,
  eps = 1e-6,
): Float64Array {
  const grad = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const saved = x[i];
    x[i] = saved + eps;
    const up = f(x);
    x[i] = saved - eps;
    const down = f(x);
    x[i] = saved;
    grad[i] = (up - down) / (2 * eps);
  }
  return grad;
}
