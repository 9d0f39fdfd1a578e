/**
 * The gpu conv2d family's GEMM shapes, as one table of tunable candidates, and the paper model that picks a
 * default among them and estimates a large GPU's time for a dispatch.
 *
 * Every candidate runs the same WGSL (kernels/gpu/conv2d_gpu_gemm.wgsl and its includers) with its shape's
 * constants: a workgroup owns `tileM` rows x `tileN` output channels, each invocation a `blockM` x `blockN`
 * register block read from workgroup memory as vec4s, and the reduction advances `chunk` steps per trip
 * through workgroup memory, the next chunk's loads issued before the current chunk's FMAs.
 *
 * @module
 */
import type { ConvGeometry } from "./conv2d_passes.ts";
import { resolveIncludes } from "../gpu/kernel.ts";

/** One GEMM shape of the gpu family; `name` is what a dispatch records as its `candidate`. */
export interface GemmCandidate {
  /** Recorded name, e.g. `128x64/8x4/c16`. */
  name: string;
  /** Rows per workgroup tile (positions in the forward, weight columns in the weight gradient). */
  tileM: number;
  /** Output channels per workgroup tile. */
  tileN: number;
  /** Rows per invocation (a multiple of 4). */
  blockM: number;
  /** Channels per invocation (a multiple of 4). */
  blockN: number;
  /** Reduction steps per trip through workgroup memory. */
  chunk: number;
  /**
   * A plain GEMM for 1 x 1 convolutions (stride 1, no padding) whose output planes hold a multiple of 4
   * positions: no window index math, vec4 loads along positions (kernels/gpu/conv2d_gpu_pointwise.wgsl);
   * forward and input gradient only.
   */
  pointwise: boolean;
}

function candidate(
  tileM: number,
  tileN: number,
  blockM: number,
  blockN: number,
  chunk: number,
  pointwise = false,
): GemmCandidate {
  const name = `${tileM}x${tileN}/${blockM}x${blockN}/c${chunk}${pointwise ? "/1x1" : ""}`;
  return { name, tileM, tileN, blockM, blockN, chunk, pointwise };
}

/**
 * The table. The first is the family's original shape (and the WGSL's default constants); the others are
 * what the GEMM literature finds faster on large GPUs: bigger register blocks (more FMAs per workgroup-memory
 * read), longer chunks (fewer barriers), channel tiles of 32 and 96 for NiN's 10- and 96-channel layers, and
 * a plain GEMM for 1 x 1 convolutions. Workgroup memory: 8, 12, 15, 20, 24, 32 and 12 KiB; those above
 * 16 KiB run only where the adapter allows them.
 *
 * @example
 * ```ts
 * import { GEMM_CANDIDATES } from "./conv2d_gpu_candidates.ts";
 * console.log(GEMM_CANDIDATES.map((c) => c.name).join(", "));
 * ```
 */
export const GEMM_CANDIDATES: readonly GemmCandidate[] = [
  candidate(64, 64, 4, 4, 16),
  candidate(128, 64, 8, 4, 16),
  candidate(64, 96, 4, 8, 24),
  candidate(128, 32, 8, 4, 32),
  candidate(128, 64, 8, 8, 32),
  candidate(128, 128, 8, 8, 32),
  candidate(128, 64, 8, 4, 16, true),
];

/** The candidate named `name`, or undefined. */
export function candidateNamed(name: string): GemmCandidate | undefined {
  return GEMM_CANDIDATES.find((c) => c.name === name);
}

/** Invocations per workgroup: (tileM / blockM) x (tileN / blockN). */
export function threadsOf(c: GemmCandidate): number {
  return (c.tileM / c.blockM) * (c.tileN / c.blockN);
}

/** Bytes of workgroup memory: both operands' stages, chunk x (tileM + tileN) floats. */
export function workgroupBytes(c: GemmCandidate): number {
  return 4 * c.chunk * (c.tileM + c.tileN);
}

/** The limits a candidate needs from the device. */
export type CandidateLimits = Pick<
  GPUSupportedLimits,
  "maxComputeWorkgroupStorageSize" | "maxComputeInvocationsPerWorkgroup"
>;

/** Whether the device runs `c` (its workgroup memory and size within the limits). */
export function fitsDevice(c: GemmCandidate, limits: CandidateLimits): boolean {
  return workgroupBytes(c) <= limits.maxComputeWorkgroupStorageSize &&
    threadsOf(c) <= limits.maxComputeInvocationsPerWorkgroup;
}

/** Whether candidate `c` runs `pass` of `g` (a pointwise candidate only 1 x 1 forwards and input gradients). */
export function appliesTo(c: GemmCandidate, g: ConvGeometry, pass: GemmPass): boolean {
  if (!c.pointwise) return true;
  const plane = pass === "forward" ? g.outHeight * g.outWidth : g.height * g.width;
  return pass !== "weight gradient" && g.kernel === 1 && g.stride === 1 && g.padding === 0 && plane % 4 === 0;
}

/**
 * The WGSL of a GEMM kernel in shape `c`: its includes resolved, then the shape constants of
 * conv2d_gpu_gemm.wgsl set to `c`'s. Throws if a constant is missing (the WGSL and this table disagree).
 */
export function shapedCode(source: string, c: GemmCandidate, name: string): string {
  const values: Record<string, number> = {
    TILE_M: c.tileM,
    TILE_N: c.tileN,
    BLOCK_M: c.blockM,
    BLOCK_N: c.blockN,
    CHUNK: c.chunk,
    THREADS: threadsOf(c),
  };
  let code = resolveIncludes(source, name);
  for (const [constant, value] of Object.entries(values)) {
    const line = new RegExp(`^const ${constant} = \\d+u;$`, "m");
    if (!line.test(code)) throw new Error(`${name}: no line "const ${constant} = ...u;" to set`);
    code = code.replace(line, `const ${constant} = ${value}u;`);
  }
  return code;
}

/** The three GEMM passes of a convolution. */
export type GemmPass = "forward" | "input gradient" | "weight gradient";

/** A GEMM's sizes: `rows` x `channels` outputs, each a sum over `depth` steps. */
export interface GemmSize {
  /** Output rows (positions; weight columns for the weight gradient). */
  rows: number;
  /** Output channels. */
  channels: number;
  /** Reduction steps. */
  depth: number;
}

/** The GEMM a pass of `g` runs (the input gradient as the forward of the transposed convolution). */
export function gemmSize(g: ConvGeometry, pass: GemmPass): GemmSize {
  const kk = g.kernel * g.kernel;
  const positions = g.n * g.outHeight * g.outWidth;
  switch (pass) {
    case "forward":
      return { rows: positions, channels: g.outChannels, depth: g.inChannels * kk };
    case "input gradient":
      return { rows: g.n * g.height * g.width, channels: g.inChannels, depth: g.outChannels * kk };
    case "weight gradient":
      return { rows: g.inChannels * kk, channels: g.outChannels, depth: positions };
  }
}

/** Workgroup tiles of `c` over a GEMM's outputs (one reduction slice). */
export function tilesOf(c: GemmCandidate, s: GemmSize): number {
  return Math.ceil(s.rows / c.tileM) * Math.ceil(s.channels / c.tileN);
}

/**
 * FLOPs the launched tiles execute: every tile multiplies its full tileM x tileN block over the slices'
 * reduction steps, each slice rounded up to whole chunks. `slices` of `sliceLength` cut the reduction
 * (default: one slice of the whole depth).
 */
export function executedFlops(c: GemmCandidate, s: GemmSize, slices = 1, sliceLength = s.depth): number {
  const lastLength = s.depth - (slices - 1) * sliceLength;
  const steps = (slices - 1) * Math.ceil(sliceLength / c.chunk) * c.chunk +
    Math.ceil(lastLength / c.chunk) * c.chunk;
  return 2 * tilesOf(c, s) * c.tileM * c.tileN * steps;
}

/** A large GPU as the paper model sees it. */
export interface DeviceModel {
  /** Name for reports. */
  name: string;
  /** Streaming multiprocessors (compute units). */
  sms: number;
  /** Peak fp32 FLOP/s (FMA = 2). */
  peakFlops: number;
  /** Memory bandwidth, bytes/s. */
  bandwidth: number;
  /** Workgroup memory per SM, bytes. */
  sharedBytesPerSm: number;
  /** Resident invocations per SM. */
  threadsPerSm: number;
  /** 32-bit registers per SM. */
  registersPerSm: number;
  /** Fixed cost of one dispatch in a queued stream, seconds. */
  dispatchSeconds: number;
}

/**
 * An NVIDIA H200 (SXM): 132 SMs, 128 fp32 lanes each at 1.98 GHz (66.9 TFLOP/s), 4.8 TB/s HBM3e, 228 KiB of
 * shared memory, 2,048 threads and 64 Ki registers per SM; 4 us per queued dispatch.
 */
export const H200: DeviceModel = {
  name: "NVIDIA H200 (paper model)",
  sms: 132,
  peakFlops: 2 * 132 * 128 * 1.98e9,
  bandwidth: 4.8e12,
  sharedBytesPerSm: 228 * 1024,
  threadsPerSm: 2048,
  registersPerSm: 65536,
  dispatchSeconds: 4e-6,
};

/** Issue slots one staged value costs a loader: index math, bounds check, the global load, the store. */
const SLOTS_PER_STAGED_VALUE = 8;
/** Registers an invocation needs besides its block, operands and prefetched values (indices, addresses). */
const BASE_REGISTERS = 24;

/**
 * The share of an invocation's issue slots that are FMAs, per reduction step: blockM x blockN FMAs against
 * blockM / 4 + blockN / 4 vec4 reads of workgroup memory and the staging of the next chunk
 * ((chunk x (tileM + tileN) / threads) values per chunk, {@link SLOTS_PER_STAGED_VALUE} slots each; a
 * pointwise candidate's rows are loaded 4 at a time, a quarter of that).
 */
export function issueEfficiency(c: GemmCandidate): number {
  const fmas = c.blockM * c.blockN;
  const reads = c.blockM / 4 + c.blockN / 4;
  const rowValues = c.tileM / (c.pointwise ? 4 : 1);
  const staged = (c.chunk * (rowValues + c.tileN) / threadsOf(c)) * SLOTS_PER_STAGED_VALUE / c.chunk;
  return fmas / (fmas + reads + staged);
}

/** Workgroups of `c` resident on one SM at once (threads, workgroup memory and registers permitting). */
export function residentWorkgroups(c: GemmCandidate, device: DeviceModel): number {
  const threads = threadsOf(c);
  const registers = c.blockM * c.blockN + c.blockM + c.blockN +
    c.chunk * (c.tileM + c.tileN) / threads + BASE_REGISTERS;
  return Math.max(
    1,
    Math.min(
      Math.floor(device.threadsPerSm / threads),
      Math.floor(device.sharedBytesPerSm / workgroupBytes(c)),
      Math.floor(device.registersPerSm / (threads * registers)),
    ),
  );
}

/**
 * Bytes any GEMM pass of `g` must move at least once: the input (or its gradient), the output gradient (or
 * output) and the weights (or their gradient), as float32.
 */
function passBytes(g: ConvGeometry): number {
  const input = g.n * g.inChannels * g.height * g.width;
  const output = g.n * g.outChannels * g.outHeight * g.outWidth;
  const weights = g.outChannels * g.inChannels * g.kernel * g.kernel;
  return 4 * (input + output + weights);
}

/** A reduction cut into `slices` contiguous ranges of `sliceLength` steps (split-K). */
export interface Split {
  /** Number of ranges. */
  slices: number;
  /** Steps per range (the last may be shorter). */
  sliceLength: number;
}

/**
 * The paper estimate of one GEMM dispatch of `c`, in seconds: the larger of
 * - compute: waves (workgroups over SMs x {@link residentWorkgroups}, rounded up) x the resident
 *   workgroups' executed FLOPs at one SM's peak x {@link issueEfficiency};
 * - memory: the pass's operands and output (plus a split's workspace, written and read back) over the
 *   bandwidth;
 * plus the dispatch's fixed cost (and the split reduction's, when split).
 *
 * @example
 * ```ts
 * import { estimateSeconds, GEMM_CANDIDATES } from "./conv2d_gpu_candidates.ts";
 * const g = { n: 128, inChannels: 96, height: 54, width: 54, outChannels: 96, outHeight: 54, outWidth: 54,
 *   kernel: 1, stride: 1, padding: 0 };
 * console.log(estimateSeconds(GEMM_CANDIDATES[0], g, "forward") * 1e3, "ms");
 * ```
 */
export function estimateSeconds(
  c: GemmCandidate,
  g: ConvGeometry,
  pass: GemmPass,
  split?: Split,
  device: DeviceModel = H200,
): number {
  const size = gemmSize(g, pass);
  const { slices, sliceLength } = split ?? { slices: 1, sliceLength: size.depth };
  const workgroups = tilesOf(c, size) * slices;
  const perWorkgroup = executedFlops(c, size, slices, sliceLength) / workgroups;
  const resident = residentWorkgroups(c, device);
  const waves = Math.ceil(workgroups / (device.sms * resident));
  const compute = waves * resident * perWorkgroup / (device.peakFlops / device.sms * issueEfficiency(c));
  const workspace = slices > 1 ? 2 * 4 * slices * size.rows * size.channels : 0;
  const memory = (passBytes(g) + workspace) / device.bandwidth;
  return Math.max(compute, memory) + device.dispatchSeconds * (slices > 1 ? 2 : 1);
}
