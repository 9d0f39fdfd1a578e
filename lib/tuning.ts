/**
 * Per-adapter tuning of the gpu kernel family: for each convolution geometry, the split-K target of its
 * weight gradient (how many workgroups the split aims for) that measured fastest on this adapter. Choices
 * are measured by {@link measureTuning} (`deno task bench --tune`), kept in a JSON file per adapter
 * (engine, vendor, architecture, driver) under the toolkit's cache directory by the Deno edge
 * (lib/deno/tuning_cache.ts), and put in force from that file's text by {@link applyTuning}. The choices in force are the device's own state (`Gpu.tuning`); the gpu family asks
 * {@link tunedTarget} and uses its default where nothing was tuned.
 *
 * @module
 */
import type { DispatchRecord, Gpu } from "./gpu/device.ts";
import { WAVE_WORKGROUPS } from "./gpu/wave.ts";
import type { ConvGeometry } from "./layers/conv2d_passes.ts";
import { median } from "./median.ts";

/**
 * The name of the gpu family's weight-gradient kernel, and the prefix of its split's reduction
 * (`..._reduce`): the dispatches {@link tuneConvolutions} times.
 */
export const WEIGHT_GRADIENT_KERNELS = "conv2d_gpu_backward_weight";

/**
 * Split-K targets tried per layer: workgroups the weight gradient's slices aim for (1: no split; else one,
 * two or four waves of a large GPU).
 */
export const SPLIT_TARGETS: readonly number[] = [
  1,
  WAVE_WORKGROUPS,
  2 * WAVE_WORKGROUPS,
  4 * WAVE_WORKGROUPS,
];

/** What is known on a device: split-K target by geometry key, and where it came from. */
export interface Tuning {
  /** Split-K target by {@link geometryKey}. */
  targets: Record<string, number>;
  /** The file it was read from or written to (absent while nothing was loaded or measured). */
  path?: string;
  /** Whether it was read from the cache (false: measured in this process, or nothing known). */
  cached: boolean;
}

/** The candidate name a weight-gradient dispatch records for split-K `target`. */
export function splitCandidate(target: number): string {
  return `split-K target ${target}`;
}

/** The key of a geometry in the cache, e.g. `128x96x54x54 -> 96 k1 s1 p0`. */
export function geometryKey(g: ConvGeometry): string {
  return `${g.n}x${g.inChannels}x${g.height}x${g.width} -> ${g.outChannels} k${g.kernel} s${g.stride} p${g.padding}`;
}

/** The tuned split-K target for `g` on this device, or undefined (the family's default then applies). */
export function tunedTarget(gpu: Gpu, g: ConvGeometry): number | undefined {
  return gpu.tuning.targets[geometryKey(g)];
}

/**
 * Puts the choices of a tuning cache file's `text` (read from `path`) in force on `gpu`; undefined (nothing
 * changed) when the file is for another adapter or damaged (the next --tune rewrites it).
 */
export function applyTuning(gpu: Gpu, text: string, path: string): Tuning | undefined {
  let targets: Record<string, number>;
  try {
    const parsed = JSON.parse(text);
    if (parsed.adapter !== gpu.adapterKey) return undefined;
    targets = Object.fromEntries(
      Object.entries(parsed.targets ?? {}).filter(([, v]) => SPLIT_TARGETS.includes(v as number)),
    ) as Record<string, number>;
  } catch {
    return undefined; // a damaged cache is ignored; the next --tune rewrites it
  }
  gpu.tuning = { targets, path, cached: true };
  return gpu.tuning;
}

/** Options of {@link measureTuning}. */
export interface TuneOptions {
  /** Measurements per candidate; the median counts (default 3). */
  repeats?: number;
  /**
   * Nanoseconds the weight gradient took in `records` (default: the GPU times of the dispatches named from
   * {@link WEIGHT_GRADIENT_KERNELS}). Tests pass a timer whose figures they control.
   */
  time?: (records: DispatchRecord[]) => number;
}

/** The default timer: GPU nanoseconds of the weight gradient's dispatches. */
function weightGradientNs(records: DispatchRecord[]): number {
  return records.filter((r) => r.kernel.startsWith(WEIGHT_GRADIENT_KERNELS)).reduce((s, r) => s + r.ns, 0);
}

/**
 * Measures every split-K target of {@link SPLIT_TARGETS} for each geometry (median of `repeats` timed
 * traces), keeps the fastest and puts the choices in force on `gpu` (`path`: where the caller keeps them).
 * `run(g)` must record one backward of a layer of geometry `g`.
 */
export async function measureTuning(
  gpu: Gpu,
  geometries: readonly ConvGeometry[],
  run: (g: ConvGeometry) => Promise<void>,
  path: string,
  options: TuneOptions = {},
): Promise<Tuning> {
  const tuning: Tuning = { targets: { ...gpu.tuning.targets }, path, cached: false };
  gpu.tuning = tuning;
  const time = options.time ?? weightGradientNs;
  for (const g of geometries) {
    const key = geometryKey(g);
    let best = { target: 0, ns: Infinity };
    for (const target of SPLIT_TARGETS) {
      tuning.targets[key] = target;
      const times: number[] = [];
      for (let i = 0; i < (options.repeats ?? 3); i++) {
        times.push(time(await gpu.trace(() => run(g), { timed: true })));
      }
      const ns = median(times);
      if (ns < best.ns) best = { target, ns };
    }
    tuning.targets[key] = best.target;
  }
  return tuning;
}

/** The cache file's text for `tuning` on `gpu` (what {@link applyTuning} reads back). */
export function tuningText(gpu: Gpu, tuning: Tuning): string {
  return JSON.stringify({ adapter: gpu.adapterKey, targets: tuning.targets }, null, 2) + "\n";
}
