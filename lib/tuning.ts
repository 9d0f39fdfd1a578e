/**
 * Per-adapter tuning of a kernel family: for each convolution geometry and GEMM pass (forward, input
 * gradient, weight gradient), the candidate that measured fastest on this adapter: for the gpu family a GEMM
 * candidate (lib/layers/conv2d_gpu_candidates.ts) and a split-K target (how many workgroups the split of its
 * reduction aims for); for the software family a convolution candidate (lib/kernel_candidates.ts), unsplit.
 * Choices are measured by {@link measureTuning} (`deno task bench --tune`), kept in a JSON file per adapter
 * (engine, vendor, architecture, driver) under the toolkit's cache directory by the Deno edge
 * (lib/deno/tuning_cache.ts), and put in force from that file's text by {@link applyTuning}. The choices in
 * force are the device's own state (`Gpu.tuning`); a family asks {@link tunedChoice} and uses its plan's
 * default where nothing was tuned.
 *
 * @module
 */
import type { DispatchRecord, Gpu } from "./gpu/device.ts";
import { WAVE_WORKGROUPS } from "./gpu/wave.ts";
import type { ConvGeometry } from "./layers/conv2d_passes.ts";
import {
  appliesTo,
  candidateNamed,
  fitsDevice,
  GEMM_CANDIDATES,
  type GemmPass,
} from "./layers/conv2d_gpu_candidates.ts";
import { median } from "./median.ts";
import { SOFTWARE_CONV_CANDIDATES, texturesUnsupported } from "./kernel_candidates.ts";

/** The GEMM passes a layer's choices cover, in the order a step runs them. */
export const GEMM_PASSES: readonly GemmPass[] = ["forward", "input gradient", "weight gradient"];

/**
 * Split-K targets tried per pass: workgroups a GEMM's slices aim for (1: no split; else one, two or four
 * waves of a large GPU; a pass with that many tiles already is not split).
 */
export const SPLIT_TARGETS: readonly number[] = [
  1,
  WAVE_WORKGROUPS,
  2 * WAVE_WORKGROUPS,
  4 * WAVE_WORKGROUPS,
];

/** One pass's choice: a candidate of the family's table and a split-K target. */
export interface PassChoice {
  /** A {@link GEMM_CANDIDATES} name (gpu family) or a {@link SOFTWARE_CONV_CANDIDATES} one (software). */
  candidate: string;
  /** The split-K target (one of {@link SPLIT_TARGETS}; always 1 in the software family). */
  target: number;
}

/** A layer's choices by pass (a pass without one uses the family's default). */
export type LayerChoices = Partial<Record<GemmPass, PassChoice>>;

/** What is known on a device: choices by geometry key, and where they came from. */
export interface Tuning {
  /** Choices by {@link geometryKey}. */
  choices: Record<string, LayerChoices>;
  /** The file it was read from or written to (absent while nothing was loaded or measured). */
  path?: string;
  /** Whether it was read from the cache (false: measured in this process, or nothing known). */
  cached: boolean;
}

/**
 * The candidate name a GEMM dispatch records: the candidate's and its split-K target, e.g.
 * `128x64/8x4/c16 split-K 1056`.
 */
export function choiceName(choice: PassChoice): string {
  return `${choice.candidate} split-K ${choice.target}`;
}

/** The key of a geometry in the cache, e.g. `128x96x54x54 -> 96 k1 s1 p0`. */
export function geometryKey(g: ConvGeometry): string {
  return `${g.n}x${g.inChannels}x${g.height}x${g.width} -> ${g.outChannels} k${g.kernel} s${g.stride} p${g.padding}`;
}

/** The tuned choice of one pass of `g` on this device, or undefined (the family's default then applies). */
export function tunedChoice(gpu: Gpu, g: ConvGeometry, pass: GemmPass): PassChoice | undefined {
  return gpu.tuning.choices[geometryKey(g)]?.[pass];
}

/** A candidate as tuning tries it: with one split-K target, on the passes it runs. */
interface Trial {
  choice: PassChoice;
  passes: readonly GemmPass[];
}

/**
 * What `--tune` measures on `gpu` for `g`: in the gpu family each GEMM candidate that fits the device with
 * every split-K target, on the passes it applies to; in the software family each convolution candidate the
 * adapter runs, unsplit, on every pass.
 */
function trials(gpu: Gpu, g: ConvGeometry): Trial[] {
  if (gpu.kernels === "gpu") {
    return GEMM_CANDIDATES.filter((c) => fitsDevice(c, gpu.limits)).flatMap((c) => {
      const passes = GEMM_PASSES.filter((pass) => appliesTo(c, g, pass));
      return SPLIT_TARGETS.map((target) => ({ choice: { candidate: c.name, target }, passes }));
    });
  }
  return softwareCandidates(gpu).map((c) => ({
    choice: { candidate: c.name, target: 1 },
    passes: GEMM_PASSES,
  }));
}

/** The software family's candidates `gpu` runs (texture ones only with read-only storage textures). */
function softwareCandidates(gpu: Gpu) {
  const textures = texturesUnsupported(gpu, []) === undefined;
  return SOFTWARE_CONV_CANDIDATES.filter((c) => c.operands === "buffer" || textures);
}

/** Whether `choice` names a candidate of the device's family that it runs, with a target the family uses. */
function validChoice(gpu: Gpu, choice: unknown): choice is PassChoice {
  const c = choice as PassChoice | null;
  if (typeof c?.candidate !== "string") return false;
  if (gpu.kernels !== "gpu") {
    return c.target === 1 && softwareCandidates(gpu).some((s) => s.name === c.candidate);
  }
  const candidate = candidateNamed(c.candidate);
  return candidate !== undefined && fitsDevice(candidate, gpu.limits) && SPLIT_TARGETS.includes(c.target);
}

/**
 * Puts the choices of a tuning cache file's `text` (read from `path`) in force on `gpu`; undefined (nothing
 * changed) when the file is for another adapter or kernel family, or damaged (the next --tune rewrites it). Choices naming a
 * candidate this device cannot run, or an unknown split target, are dropped.
 */
export function applyTuning(gpu: Gpu, text: string, path: string): Tuning | undefined {
  let choices: Record<string, LayerChoices>;
  try {
    const parsed = JSON.parse(text);
    if (parsed.adapter !== gpu.adapterKey || parsed.kernels !== gpu.kernels) return undefined;
    choices = {};
    for (const [key, layer] of Object.entries(parsed.choices ?? {})) {
      const valid = GEMM_PASSES.filter((pass) => validChoice(gpu, (layer as LayerChoices)?.[pass]));
      if (valid.length > 0) {
        choices[key] = Object.fromEntries(valid.map((pass) => [pass, (layer as LayerChoices)[pass]]));
      }
    }
  } catch {
    return undefined; // a damaged cache is ignored; the next --tune rewrites it
  }
  gpu.tuning = { choices, path, cached: true };
  return gpu.tuning;
}

/** Options of {@link measureTuning}. */
export interface TuneOptions {
  /** Measurements per candidate; the median counts (default 3). */
  repeats?: number;
  /**
   * Nanoseconds one pass took, given its records (those of the run in that pass's phase). Default: their GPU
   * times. Tests pass a timer whose figures they control.
   */
  time?: (records: DispatchRecord[]) => number;
}

/** The default timer: GPU nanoseconds of the records. */
function gpuNs(records: DispatchRecord[]): number {
  return records.reduce((s, r) => s + r.ns, 0);
}

/**
 * Measures, for each geometry, every candidate of the device's family that it runs on its passes (gpu
 * family: each with every split-K target of {@link SPLIT_TARGETS}), the median of `repeats` timed traces;
 * keeps per pass the fastest (candidate and target), and puts the choices in force on `gpu` (`path`: where the caller keeps them). `run(g)`
 * must record one forward and backward of a layer of geometry `g`, each GEMM pass in its phase (`forward`,
 * `input gradient`; the family records the weight gradient in its phase): a pass is timed from its phase's
 * records.
 */
export async function measureTuning(
  gpu: Gpu,
  geometries: readonly ConvGeometry[],
  run: (g: ConvGeometry) => Promise<void>,
  path: string,
  options: TuneOptions = {},
): Promise<Tuning> {
  const tuning: Tuning = { choices: { ...gpu.tuning.choices }, path, cached: false };
  gpu.tuning = tuning;
  const time = options.time ?? gpuNs;
  for (const g of geometries) {
    const key = geometryKey(g);
    const best = new Map<GemmPass, { choice: PassChoice; ns: number }>();
    for (const { choice, passes } of trials(gpu, g)) {
      // Passes the candidate does not run keep their default.
      const tried: LayerChoices = Object.fromEntries(passes.map((pass) => [pass, choice]));
      tuning.choices[key] = tried;
      const times = new Map<GemmPass, number[]>(passes.map((pass) => [pass, []]));
      for (let i = 0; i < (options.repeats ?? 3); i++) {
        const records = await gpu.trace(() => run(g), { timed: true });
        for (const pass of passes) {
          const own = records.filter((r) => r.phase === pass);
          if (own.length > 0) times.get(pass)!.push(time(own));
        }
      }
      for (const [pass, list] of times) {
        if (list.length === 0) continue; // a pass the layer does not run (a first layer's input gradient)
        const ns = median(list);
        if (ns < (best.get(pass)?.ns ?? Infinity)) best.set(pass, { choice, ns });
      }
    }
    tuning.choices[key] = Object.fromEntries([...best].map(([pass, { choice }]) => [pass, choice]));
  }
  return tuning;
}

/** The cache file's text for `tuning` on `gpu` (what {@link applyTuning} reads back). */
export function tuningText(gpu: Gpu, tuning: Tuning): string {
  return JSON.stringify({ adapter: gpu.adapterKey, kernels: gpu.kernels, choices: tuning.choices }, null, 2) +
    "\n";
}
