/**
 * The matmul roofline: a strong register-blocked WGSL matmul timed on the same adapter, the ceiling the
 * model's kernels are measured against.
 *
 * @module
 */
import type { Gpu } from "./gpu/device.ts";
import { kernel } from "./gpu/kernel.ts";
import { NinError } from "./errors.ts";
import { workgroupsFor } from "./module.ts";
import { Random } from "./random.ts";
import code from "../kernels/matmul_roofline.wgsl" with { type: "text" };
import { median } from "./median.ts";

const MATMUL_ROOFLINE = kernel("matmul_roofline", code);

/** Result of {@link measureRoofline}. */
export interface Roofline {
  /** Matrix side. */
  size: number;
  /** Median seconds per multiplication. */
  seconds: number;
  /** 2 * size^3 / seconds / 1e9. */
  gflops: number;
  /** Largest |C - A*B| over a few checked entries (proves the kernel computed the product). */
  maxError: number;
}

/**
 * Times `repeats` multiplications of two `size` x `size` matrices (after one warm-up) and returns the
 * median GFLOP/s. `size` must be a multiple of 32.
 *
 * @example
 * ```ts
 * import { measureRoofline, requestGpu } from "@nin/webgpu";
 * const gpu = await requestGpu();
 * console.log((await measureRoofline(gpu, 256, 2)).gflops);
 * gpu.destroy();
 * ```
 */
export async function measureRoofline(gpu: Gpu, size = 1024, repeats = 3): Promise<Roofline> {
  if (size % 32 !== 0 || size <= 0) {
    throw new NinError(`roofline size must be a positive multiple of 32, got ${size}`);
  }
  const rng = new Random(7);
  const a = rng.uniformArray(size * size);
  const b = rng.uniformArray(size * size);
  const bytes = size * size * 4;
  const [bufA, bufB, bufC] = ["A", "B", "C"].map((what) => gpu.allocate(bytes, `roofline ${what}`));
  gpu.write(bufA, a);
  gpu.write(bufB, b);
  const blocks = (size / 32) ** 2;
  const flops = 2 * size ** 3;
  const run = () =>
    gpu.dispatch(
      MATMUL_ROOFLINE,
      { a: bufA, b: bufB, c: bufC },
      { m: size, n: size, k: size },
      workgroupsFor(blocks, MATMUL_ROOFLINE),
      flops,
    );
  const times: number[] = [];
  try {
    for (let i = 0; i <= repeats; i++) {
      const start = performance.now();
      run();
      await gpu.sync();
      if (i > 0) times.push((performance.now() - start) / 1000);
    }
    const c = new Float32Array(await gpu.read(bufC, bytes));
    let maxError = 0;
    for (const [i, j] of [[0, 0], [size - 1, size - 1], [size >> 1, 3], [7, size - 5]]) {
      let sum = 0;
      for (let k = 0; k < size; k++) sum += a[i * size + k] * b[k * size + j];
      maxError = Math.max(maxError, Math.abs(sum - c[i * size + j]));
    }
    const seconds = median(times);
    return { size, seconds, gflops: flops / seconds / 1e9, maxError };
  } finally {
    for (const buffer of [bufA, bufB, bufC]) gpu.release(buffer);
  }
}
