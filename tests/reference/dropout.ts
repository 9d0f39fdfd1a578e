// CPU reference for Dropout's mask: the same counter-based hash as the kernels, written with 32-bit integer
// arithmetic in TypeScript, so a mask can be reproduced from (seed, step, global index) alone.

function mix32(v: number): number {
  let h = v >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d) >>> 0;
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

/** The kernel's hash of (seed, step, global element index) as an unsigned 32-bit integer. */
export function dropoutHashRef(seed: number, step: number, index: number): number {
  const key = mix32(mix32((seed ^ 0x9e3779b9) >>> 0) ^ step);
  return mix32((mix32((index ^ key) >>> 0) + key) >>> 0);
}

/** Keep (1) or drop (0) for `count` elements starting at global index `first`. */
export function dropoutMaskRef(
  seed: number,
  step: number,
  p: number,
  first: number,
  count: number,
): Uint8Array {
  const threshold = Math.min(Math.round(p * 2 ** 32), 0xffffffff);
  const mask = new Uint8Array(count);
  for (let i = 0; i < count; i++) mask[i] = dropoutHashRef(seed, step, first + i) >= threshold ? 1 : 0;
  return mask;
}

/** x * mask / (1 - p) in float64 (the same formula serves the backward with dy in place of x). */
export function dropoutApplyRef(x: ArrayLike<number>, mask: Uint8Array, p: number): Float64Array {
  return Float64Array.from(x, (v, i) => (mask[i] ? v / (1 - p) : 0));
}
