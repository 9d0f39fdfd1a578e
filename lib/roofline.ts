/**
 * The matmul roofline: the strongest WGSL matmul this adapter runs, timed on the same adapter, the ceiling
 * the model's kernels are measured against. Candidates: the register-blocked storage-buffer matmul
 * (kernels/matmul_roofline.wgsl), and, where the adapter has read-only storage textures, each texture-fed
 * block of the software family's conv table run as the GEMM it is (a 1x1 convolution; operands packed once,
 * outside the timing). The fastest correct one is the roofline.
 *
 * @module
 */
import type { Gpu } from "./gpu/device.ts";
import { kernel } from "./gpu/kernel.ts";
import { NinError } from "./errors.ts";
import { workgroupsFor } from "./module.ts";
import { Random } from "./random.ts";
import { median } from "./median.ts";
import { Tensor } from "./tensor.ts";
import { pinCandidate, SOFTWARE_CONV_CANDIDATES } from "./kernel_candidates.ts";
import { SOFTWARE_CONV } from "./layers/conv2d_software.ts";
import type { ConvGeometry } from "./layers/conv2d_passes.ts";
import code from "../kernels/matmul_roofline.wgsl" with { type: "text" };

const MATMUL_ROOFLINE = kernel("matmul_roofline", code);

/** One candidate's figures. */
export interface RooflineCandidate {
  /** `matmul_roofline` (storage buffers) or the texture candidate's name, e.g. `texture 12x8`. */
  name: string;
  /** Median seconds per multiplication. */
  seconds: number;
  /** 2 * size^3 / seconds / 1e9. */
  gflops: number;
  /** Largest |C - A*B| over a few checked entries (proves the kernel computed the product). */
  maxError: number;
}

/** Result of {@link measureRoofline}: the fastest candidate's figures, and every candidate's. */
export interface Roofline extends RooflineCandidate {
  /** Matrix side. */
  size: number;
  /** Every candidate measured, in table order. */
  candidates: RooflineCandidate[];
}

/** Entries of C checked against a float64 product: corners and a few inside. */
function checkedEntries(size: number): [number, number][] {
  return [[0, 0], [size - 1, size - 1], [size >> 1, 3], [7, size - 5]];
}

/** Times `repeats` calls of `run` (after one warm-up), each waited for, and returns the median seconds. */
async function timeRuns(gpu: Gpu, run: () => void, repeats: number): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i <= repeats; i++) {
    const start = performance.now();
    run();
    await gpu.sync();
    if (i > 0) times.push((performance.now() - start) / 1000);
  }
  return median(times);
}

/**
 * Times `repeats` multiplications of two `size` x `size` matrices (after one warm-up) with each candidate and
 * returns the fastest one's median GFLOP/s, with every candidate's. `size` must be a multiple of 32.
 *
 * @example
 * ```ts
 * import { measureRoofline, requestGpu } from "@nin/webgpu";
 * const gpu = await requestGpu();
 * const roofline = await measureRoofline(gpu, 256, 2);
 * console.log(roofline.name, roofline.gflops);
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
  const error = (c: (i: number, j: number) => number) => {
    let maxError = 0;
    for (const [i, j] of checkedEntries(size)) {
      let sum = 0;
      for (let k = 0; k < size; k++) sum += a[i * size + k] * b[k * size + j];
      maxError = Math.max(maxError, Math.abs(sum - c(i, j)));
    }
    return maxError;
  };
  const flops = 2 * size ** 3;
  const figures = (name: string, seconds: number, maxError: number) => ({
    name,
    seconds,
    gflops: flops / seconds / 1e9,
    maxError,
  });
  const run = { gpu, size, repeats, a, b, error, figures };
  const candidates = [await bufferMatmul(run)];
  if (gpu.readOnlyStorageTextures && gpu.kernels === "software") candidates.push(...await textureGemms(run));
  const best = candidates.reduce((x, y) => y.gflops > x.gflops ? y : x);
  return { ...best, size, candidates };
}

/** What every candidate's measurement shares: the operands, the check and the figures it reports. */
interface Run {
  gpu: Gpu;
  size: number;
  repeats: number;
  a: Float32Array;
  b: Float32Array;
  /** Largest error of C, read through the given accessor, at the checked entries. */
  error: (c: (i: number, j: number) => number) => number;
  figures: (name: string, seconds: number, maxError: number) => RooflineCandidate;
}

async function bufferMatmul(run: Run): Promise<RooflineCandidate> {
  const { gpu, size, repeats, a, b, error, figures } = run;
  const bytes = size * size * 4;
  const [bufA, bufB, bufC] = ["A", "B", "C"].map((what) => gpu.allocate(bytes, `roofline ${what}`));
  try {
    gpu.write(bufA, a);
    gpu.write(bufB, b);
    const blocks = (size / 32) ** 2;
    const seconds = await timeRuns(gpu, () =>
      gpu.dispatch(
        MATMUL_ROOFLINE,
        { a: bufA, b: bufB, c: bufC },
        { m: size, n: size, k: size },
        workgroupsFor(blocks, MATMUL_ROOFLINE),
        2 * size ** 3,
      ), repeats);
    const c = new Float32Array(await gpu.read(bufC, bytes));
    return figures(MATMUL_ROOFLINE.name, seconds, error((i, j) => c[i * size + j]));
  } finally {
    for (const buffer of [bufA, bufB, bufC]) gpu.release(buffer);
  }
}

/**
 * The texture candidates as the GEMM C = A B: a 1x1 convolution whose size^2 positions (rows of A, a 32-wide
 * image) read `size` input channels (columns of A) into `size` output channels (B's columns, as OIHW weights).
 */
async function textureGemms(run: Run): Promise<RooflineCandidate[]> {
  const { gpu, size, repeats, a, b, error, figures } = run;
  const g: ConvGeometry = {
    n: 1,
    inChannels: size,
    height: size / 32,
    width: 32,
    outChannels: size,
    outHeight: size / 32,
    outWidth: 32,
    kernel: 1,
    stride: 1,
    padding: 0,
  };
  const transpose = (m: Float32Array) => m.map((_, i) => m[(i % size) * size + Math.floor(i / size)]);
  const x = Tensor.fromArray(gpu, transpose(a), [1, size, size / 32, 32]);
  const w = Tensor.fromArray(gpu, transpose(b), [size, size, 1, 1]);
  const bias = Tensor.zeros(gpu, [size]);
  const y = Tensor.empty(gpu, [1, size, size / 32, 32]);
  const out: RooflineCandidate[] = [];
  try {
    for (const candidate of SOFTWARE_CONV_CANDIDATES.filter((c) => c.operands === "texture")) {
      pinCandidate(gpu, candidate);
      const d = SOFTWARE_CONV.forward!(g, false, gpu);
      pinCandidate(gpu, undefined);
      const operands = d.operands!(gpu, x, w, false);
      try {
        const bindings = { ...operands.bindings, bias: bias.buffer, y: y.buffer };
        const seconds = await timeRuns(
          gpu,
          () => gpu.dispatch(d.kernel, bindings, d.params, d.workgroups, 2 * size ** 3),
          repeats,
        );
        const c = await y.toArray();
        out.push(figures(candidate.name, seconds, error((i, j) => c[j * size + i])));
      } finally {
        operands.release();
      }
    }
  } finally {
    for (const t of [x, w, bias, y]) t.dispose();
  }
  return out;
}
