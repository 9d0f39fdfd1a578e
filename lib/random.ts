/**
 * A small seeded random number generator (SplitMix32-style), so initialisation, shuffling and test data are
 * reproducible from one integer seed and its state fits in a checkpoint.
 *
 * @module
 */

/**
 * Seeded generator of uniform floats in [0, 1).
 *
 * @example
 * ```ts
 * import { Random } from "@nin/webgpu";
 * const rng = new Random(0);
 * console.log(rng.uniform(-1, 1), rng.int(10));
 * ```
 */
export class Random {
  /** The generator's 32-bit state; saving and restoring it resumes the same sequence. */
  state: number;

  /** Starts a sequence from `seed`. */
  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Next 32-bit unsigned integer. */
  nextUint32(): number {
    this.state = (this.state + 0x9e3779b9) >>> 0;
    let z = this.state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  }

  /** Uniform float in [0, 1). */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform float in [low, high). */
  uniform(low: number, high: number): number {
    return low + (high - low) * this.next();
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** A Float32Array of `n` uniform values in [low, high). */
  uniformArray(n: number, low = -1, high = 1): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.uniform(low, high);
    return out;
  }

  /** A random permutation of 0..n-1 (Fisher-Yates). */
  permutation(n: number): Int32Array {
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) out[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [out[i], out[j]] = [out[j], out[i]];
    }
    return out;
  }
}
