/**
 * `deno task bench`: NiN training and inference examples/sec, per-kernel GPU time and GFLOP/s, and a WGSL
 * matmul roofline measured on the same adapter in the same run. With `--plan`, the launch plan instead: every
 * dispatch of one training step, traced on the counting device (no adapter, no kernel runs).
 *
 * @module
 */
import { checkFlag, pickFlags, runTask } from "./cli.ts";
import type { DispatchRecord, Gpu } from "../lib/gpu/device.ts";
import { kernelChoice, requestGpu } from "../lib/deno/gpu.ts";
import { countingGpu } from "../lib/gpu/counting.ts";
import { nin } from "../lib/nin.ts";
import { type LayerShape, layerShapes } from "../lib/shapes.ts";
import { Conv2d } from "../lib/layers/conv2d.ts";
import { microBatchSize } from "../lib/microbatch.ts";
import { geometryKey } from "../lib/tuning.ts";
import { loadTuning, tuneConvolutions } from "../lib/deno/tuning_cache.ts";
import type { ConvGeometry } from "../lib/layers/conv2d_passes.ts";
import { estimateStepSeconds, type StepConvolution } from "../lib/layers/conv2d_gpu.ts";
import { GEMM_CANDIDATES, H200 } from "../lib/layers/conv2d_gpu_candidates.ts";
import { SGD } from "../lib/optim.ts";
import { Random } from "../lib/random.ts";
import { measureRoofline } from "../lib/roofline.ts";
import { probeAccessCosts } from "../lib/probe.ts";
import { Tensor } from "../lib/tensor.ts";
import { decodeStep, type RecordedStep, recordEvalStep, recordTrainStep } from "../lib/train.ts";
import { Readback } from "../lib/readback.ts";
import { type Phase, PHASES } from "../lib/gpu/records.ts";
import { LAUNCH_RULE, PLAN_BINDING_BYTES, planTrainingStep } from "../lib/plan.ts";

/** The task's `--help` and flags. */
const TASK = {
  usage: "deno task bench [options]",
  summary: "Measures NiN training and inference throughput, per-kernel GPU time and a matmul roofline.",
  flags: pickFlags(
    [
      "resize",
      "batch-size",
      "steps",
      "warmup",
      "roofline-size",
      "micro-batch",
      "json",
      "plan",
      "probe",
      "tune",
      "gpu",
      "kernels",
    ],
    { resize: 96, "batch-size": 16 },
  ),
};

/** The convolutions of a step on `input` at micro-batch `micro`, in layer order (the first computes no dx). */
function stepConvolutions(shapes: LayerShape[], input: readonly number[], micro: number): StepConvolution[] {
  return shapes.flatMap((row, i) => {
    if (!(row.layer instanceof Conv2d)) return [];
    const [, ...image] = i === 0 ? input : shapes[i - 1].shape;
    return [{ geometry: row.layer.geometry([micro, ...image]), inputGradient: i > 0 }];
  });
}

/**
 * Traces one training step of NiN on a counting device: every dispatch (with its GEMM candidate and tile
 * efficiency, useful / executed FLOPs), the share meeting {@link LAUNCH_RULE}, and for the gpu family the
 * paper estimate of the step on an H200 with the choices in force and with each GEMM candidate throughout.
 */
export async function launchPlan(
  gpu: Gpu,
  batch: number,
  size: number,
  microBatch: number | undefined,
  // deno-lint-ignore no-explicit-any
): Promise<Record<string, any>> {
  const net = nin(gpu, { seed: 0 });
  const input = [batch, 1, size, size];
  const shapes = checkFlag("--resize", size, () => layerShapes(net, input, true));
  const p = await planTrainingStep(gpu, net, input, microBatch);
  net.dispose();
  const convolutions = stepConvolutions(shapes, input, p.microBatch);
  const others = p.dispatches.filter((d) => d.candidate === "").length;
  const microBatches = Math.ceil(batch / p.microBatch);
  const estimate = (candidate?: (typeof GEMM_CANDIDATES)[number]) => {
    const stepMs = 1e3 * microBatches *
      estimateStepSeconds(gpu, convolutions, others / microBatches, candidate);
    return {
      candidate: candidate?.name ?? "in force",
      step_ms: stepMs,
      train_examples_per_s: batch * 1e3 / stepMs,
    };
  };
  return {
    device: gpu.describe(),
    kernel_family: gpu.kernels,
    resize: size,
    batch_size: batch,
    micro_batch: p.microBatch,
    total_flops: p.totalFlops,
    rule: { min_workgroups: LAUNCH_RULE.minWorkgroups, min_workgroup_size: LAUNCH_RULE.minWorkgroupSize },
    flops_share_meeting_rule: p.flopsShareMeetingRule,
    dispatches_meeting_rule: p.dispatchesMeetingRule,
    dispatches: p.dispatches.map((d) => ({
      kernel: d.kernel,
      candidate: d.candidate,
      phase: d.phase,
      workgroups: d.workgroups,
      workgroup_size: d.workgroupSize,
      flops: d.flops,
      executed_flops: d.executedFlops,
      tile_efficiency: d.candidate !== "" ? d.flops / d.executedFlops : null,
    })),
    paper_estimate: gpu.kernels === "gpu"
      ? { device: H200.name, steps: [estimate(), ...GEMM_CANDIDATES.map(estimate)] }
      : null,
  };
}

/**
 * The kernel family's per-adapter choices (lib/tuning.ts): measured now with `--tune`, else read from the
 * cache; described for the report.
 */
async function tune(
  gpu: Gpu,
  shapes: LayerShape[],
  input: number[],
  measure: boolean | undefined,
  requestedMicroBatch: number | undefined,
) {
  const micro = microBatchSize(shapes, input, gpu.limits.maxStorageBufferBindingSize, requestedMicroBatch);
  const geometries: ConvGeometry[] = stepConvolutions(shapes, input, micro).map((c) => c.geometry);
  const tuning = measure
    ? await tuneConvolutions(gpu, geometries, async (g) => {
      const conv = new Conv2d(gpu, g.inChannels, g.outChannels, g.kernel, g.stride, g.padding);
      const x = Tensor.zeros(gpu, [g.n, g.inChannels, g.height, g.width]);
      const dy = Tensor.zeros(gpu, [g.n, g.outChannels, g.outHeight, g.outWidth]);
      gpu.inPhase("forward", () => conv.forward(x, { training: true, step: 0, sampleOffset: 0 }).dispose());
      gpu.inPhase("input gradient", () => conv.backward(dy, g.stride === 1)?.dispose());
      await gpu.sync();
      for (const t of [x, dy]) t.dispose();
      conv.dispose();
    })
    : await loadTuning(gpu);
  const used = geometries.filter((g) => tuning?.choices[geometryKey(g)] !== undefined).length;
  const text = !tuning
    ? `no cached choice for this adapter (deno task bench --kernels ${gpu.kernels} --tune measures and caches ` +
      `them); the ${gpu.kernels === "gpu" ? "paper model's" : "plan's"} defaults apply`
    : `${
      tuning.cached ? "cached choice used" : "measured now and cached"
    } for ${used} of ${geometries.length} ` +
      `convolutions (${tuning.path})`;
  return {
    text,
    json: tuning
      ? { cached: tuning.cached, path: tuning.path, layers_tuned: used, choices: tuning.choices }
      : null,
  };
}

/**
 * How a loop runs when steps are queued as `fit` and `evaluate` queue them: wall seconds per step, and the
 * host's waits for results (reads issued, seconds spent waiting), per step.
 */
export interface LoopFigures {
  /** Wall milliseconds per step. */
  wallMs: number;
  /** Milliseconds per step the host spent waiting for results. */
  hostWaitMs: number;
  /** Reads of results per step (below 1: several steps per read). */
  readsPerStep: number;
}

/** {@link LoopFigures} with the GPU time of one profiled step, in all and by phase. */
export interface ProfiledLoop extends LoopFigures {
  /** GPU milliseconds of one step. */
  gpuMs: number;
  /** GPU milliseconds of one step by phase. */
  gpuMsByPhase: Partial<Record<Phase, number>>;
}

/** What {@link benchmark} returns (and `bench --json` prints). */
export interface BenchResult {
  /** Adapter name. */
  device: string;
  /** WebGPU engine. */
  engine: string;
  /** Kernel family. */
  kernel_family: string;
  /** Input side. */
  resize: number;
  /** Batch size. */
  batch_size: number;
  /** Training examples per second, as `fit` runs. */
  train_examples_per_s: number;
  /** Inference examples per second, as `evaluate` runs. */
  infer_examples_per_s: number;
  /** The two loops' figures. */
  loops: { train: ProfiledLoop; infer: ProfiledLoop };
  /** The matmul roofline, GFLOP/s: the fastest WGSL matmul the adapter runs. */
  roofline_gflops: number;
  /** Which matmul that was. */
  roofline_kernel: string;
  /** Every matmul candidate measured. */
  roofline_candidates: { name: string; gflops: number }[];
  /** The tuning in force (gpu family), or null. */
  tuning: unknown;
  /** How dispatches were timed. */
  timing: string;
  /** Per-kernel figures of one training step and one inference pass. */
  kernels: KernelFigure[];
}

/** Runs `warmup` then `steps` recorded steps through a {@link Readback}, the way the epoch loops do. */
export async function timeLoop(
  gpu: Gpu,
  warmup: number,
  steps: number,
  record: () => RecordedStep,
): Promise<LoopFigures> {
  const run = async (count: number) => {
    const readback = new Readback(gpu);
    const start = performance.now();
    for (let i = 0; i < count; i++) {
      const step = record();
      readback.add(step.parts, (bytes) => decodeStep(step, bytes), step.release);
      await readback.poll();
    }
    await readback.drain();
    return { seconds: (performance.now() - start) / 1000, readback };
  };
  await run(warmup);
  const { seconds, readback } = await run(steps);
  return {
    wallMs: 1000 * seconds / steps,
    hostWaitMs: 1000 * readback.waitSeconds / steps,
    readsPerStep: readback.reads / steps,
  };
}

/** GPU milliseconds of one profiled step, by phase. */
function phaseMs(records: DispatchRecord[]): Partial<Record<Phase, number>> {
  const out: Partial<Record<Phase, number>> = {};
  for (const phase of PHASES) {
    const ns = records.reduce((sum, r) => sum + (r.phase === phase ? r.ns : 0), 0);
    if (ns > 0) out[phase] = ns / 1e6;
  }
  return out;
}

/** Per-kernel totals over one profiled step. */
export interface KernelFigure {
  /** Kernel name. */
  name: string;
  /** Which loop's step. */
  phase: "train" | "infer";
  /** Dispatches. */
  calls: number;
  /** GPU milliseconds in all. */
  ms: number;
  /** GFLOP in all. */
  gflop: number;
  /** Achieved GFLOP/s. */
  gflops: number;
  /** Share of the roofline. */
  roofline_share: number;
}

function sumMs(kernels: KernelFigure[]): number {
  return kernels.reduce((sum, k) => sum + k.ms, 0);
}

function summarize(records: DispatchRecord[], phase: "train" | "infer", roofline: number): KernelFigure[] {
  const byName = new Map<string, { calls: number; ns: number; flops: number }>();
  for (const r of records) {
    const entry = byName.get(r.kernel) ?? { calls: 0, ns: 0, flops: 0 };
    entry.calls += 1;
    entry.ns += r.ns;
    entry.flops += r.flops;
    byName.set(r.kernel, entry);
  }
  return [...byName].map(([name, e]) => {
    const gflops = e.flops / e.ns;
    return {
      name,
      phase,
      calls: e.calls,
      ms: e.ns / 1e6,
      gflop: e.flops / 1e9,
      gflops,
      roofline_share: gflops / roofline,
    };
  }).sort((a, b) => b.ms - a.ms);
}

/** `--probe`: the access costs of lib/probe.ts, as a table or JSON. */
async function probe(gpu: Gpu, json: boolean | undefined): Promise<void> {
  const p = await probeAccessCosts(gpu);
  gpu.destroy();
  if (json) return console.log(JSON.stringify({ device: gpu.describe(), ...p }));
  console.log(`device: ${gpu.describe()}`);
  console.log(
    `one vec4 operand access inside a 12x8-blocked GEMM loop, ns per invocation-step (all threads together);` +
      ` one four-wide FMA costs ${p.nsPerFma.toFixed(2)} ns`,
  );
  console.log("access".padEnd(24) + "ns".padStart(8) + "FMAs".padStart(8));
  for (const c of p.costs.slice(1)) {
    console.log(
      c.kind.padEnd(24) + c.nsPerAccess.toFixed(2).padStart(8) +
        (c.nsPerAccess / p.nsPerFma).toFixed(1).padStart(8),
    );
  }
  if (!gpu.readOnlyStorageTextures) console.log("(this adapter has no read-only storage textures)");
}

if (import.meta.main) {
  await runTask(TASK, async (flags) => {
    const log = (line: string) => flags.json ? undefined : console.log(line);
    const batch = flags["batch-size"], size = flags.resize;
    const kernels = flags.kernels;
    if (flags.plan) {
      const counting = countingGpu({
        kernels: kernelChoice(kernels),
        limits: { maxStorageBufferBindingSize: PLAN_BINDING_BYTES },
      });
      const p = await launchPlan(counting, batch, size, flags["micro-batch"]);
      if (flags.json) return console.log(JSON.stringify(p));
      log(
        `plan: one training step, ${p.kernel_family} kernels, batch ${batch} (micro-batch ${p.micro_batch}), ${size}x${size}`,
      );
      log(
        "kernel".padEnd(32) + "candidate".padEnd(28) + "workgroups".padStart(12) + "size".padStart(6) +
          "GFLOP".padStart(10) + "tile eff.".padStart(10),
      );
      for (const d of p.dispatches) {
        log(
          d.kernel.padEnd(32) + d.candidate.padEnd(28) + String(d.workgroups).padStart(12) +
            String(d.workgroup_size).padStart(6) + (d.flops / 1e9).toFixed(3).padStart(10) +
            (d.tile_efficiency === null ? "" : `${(100 * d.tile_efficiency).toFixed(1)}%`).padStart(10),
        );
      }
      log(
        `${p.dispatches.length} dispatches, ${(p.total_flops / 1e9).toFixed(1)} GFLOP; ` +
          `${(100 * p.flops_share_meeting_rule).toFixed(2)}% of the FLOPs in dispatches of >= ` +
          `${LAUNCH_RULE.minWorkgroups} workgroups of >= ${LAUNCH_RULE.minWorkgroupSize} invocations`,
      );
      if (p.paper_estimate) {
        log(
          `\npaper estimate of the step on an ${p.paper_estimate.device} (lib/layers/conv2d_gpu_candidates.ts):`,
        );
        for (const e of p.paper_estimate.steps) {
          log(
            `  ${e.candidate.padEnd(20)} ${e.step_ms.toFixed(1).padStart(8)} ms/step ` +
              `${e.train_examples_per_s.toFixed(0).padStart(8)} examples/s`,
          );
        }
      }
      return;
    }
    const gpu = await requestGpu({ engine: flags.gpu, kernels });
    if (flags.probe) return await probe(gpu, flags.json);
    log(`device: ${gpu.describe()}`);
    const result = await benchmark(gpu, {
      batch,
      size,
      steps: flags.steps,
      warmup: flags.warmup,
      microBatch: flags["micro-batch"],
      rooflineSize: flags["roofline-size"],
      tune: flags.tune,
    }, log);
    if (flags.json) console.log(JSON.stringify(result));
    gpu.destroy();
  });
}

/** What {@link benchmark} measures. */
export interface BenchOptions {
  /** Batch size. */
  batch: number;
  /** Input side. */
  size: number;
  /** Timed steps per loop. */
  steps: number;
  /** Untimed steps first (shader compilation). */
  warmup: number;
  /** Largest micro-batch. */
  microBatch?: number;
  /** Side of the roofline's matmul. */
  rooflineSize: number;
  /** Measure the kernel family's tuned choices now (else read the cache). */
  tune?: boolean;
}

/**
 * NiN's training and inference loops on `gpu` as `fit` and `evaluate` run them (queued, read in ticks),
 * one GPU-timed step of each with per-kernel and per-phase figures, the roofline and the tuning in force.
 * `log` receives the human-readable lines.
 */
export async function benchmark(
  gpu: Gpu,
  options: BenchOptions,
  log: (line: string) => void = () => {},
): Promise<BenchResult> {
  const { batch, size, microBatch } = options;
  const net = nin(gpu, { seed: 0 });
  const input = [batch, 1, size, size];
  const shapes = checkFlag("--resize", size, () => layerShapes(net, input, true));
  const tuning = await tune(gpu, shapes, input, options.tune, microBatch);
  log(`tuning: ${tuning.text}`);
  const roofline = await measureRoofline(gpu, options.rooflineSize);
  log(
    `roofline: ${
      roofline.gflops.toFixed(1)
    } GFLOP/s (${roofline.name}, the fastest WGSL matmul of ${roofline.size}^3` +
      ` here; ${roofline.candidates.map((c) => `${c.name} ${c.gflops.toFixed(1)}`).join(", ")})`,
  );

  const rng = new Random(1);
  const images = Tensor.fromArray(gpu, rng.uniformArray(batch * size * size, 0, 1), [batch, 1, size, size]);
  const labels = Int32Array.from({ length: batch }, () => rng.int(10));
  const opt = new SGD(net.parameters(), { lr: 0.01 });

  const train = () => recordTrainStep(net, opt, images, labels, { microBatch });
  const infer = () => {
    net.eval();
    const step = recordEvalStep(net, images, labels, { microBatch, predictions: true });
    net.train();
    return step;
  };
  const trainLoop = await timeLoop(gpu, options.warmup, options.steps, train);
  const inferLoop = await timeLoop(gpu, options.warmup, options.steps, infer);
  const profiled = async (record: () => RecordedStep) =>
    await gpu.trace(async () => {
      const step = record();
      step.release();
      await gpu.sync();
    }, { timed: true });
  const trainRecords = await profiled(train);
  const inferRecords = await profiled(infer);
  const trainKernels = summarize(trainRecords, "train", roofline.gflops);
  const inferKernels = summarize(inferRecords, "infer", roofline.gflops);
  const loops = {
    train: { ...trainLoop, gpuMs: sumMs(trainKernels), gpuMsByPhase: phaseMs(trainRecords) },
    infer: { ...inferLoop, gpuMs: sumMs(inferKernels), gpuMsByPhase: phaseMs(inferRecords) },
  };
  const timing = gpu.timingMethod;
  for (const [name, loop] of Object.entries(loops)) {
    log(
      `${name}: ${(batch * 1000 / loop.wallMs).toFixed(1)} examples/s; per step: wall ${
        loop.wallMs.toFixed(1)
      } ms, GPU ${loop.gpuMs.toFixed(1)} ms, host waits ${loop.hostWaitMs.toFixed(1)} ms in ${
        loop.readsPerStep.toFixed(2)
      } reads`,
    );
    log(
      "  GPU ms by phase: " +
        Object.entries(loop.gpuMsByPhase).map(([phase, ms]) => `${phase} ${ms.toFixed(1)}`).join(", "),
    );
  }
  for (
    const [phase, kernels] of [["training step", trainKernels], ["inference pass", inferKernels]] as const
  ) {
    const total = sumMs(kernels);
    log(`\n${phase}: per-kernel time (${timing}), total ${total.toFixed(1)} ms`);
    log(
      "kernel".padEnd(32) + "calls".padStart(6) + "ms".padStart(10) + "share".padStart(8) +
        "GFLOP/s".padStart(10) + "of roofline".padStart(13),
    );
    for (const k of kernels) {
      log(
        k.name.padEnd(32) + String(k.calls).padStart(6) + k.ms.toFixed(2).padStart(10) +
          `${(100 * k.ms / total).toFixed(1)}%`.padStart(8) + k.gflops.toFixed(2).padStart(10) +
          `${(100 * k.roofline_share).toFixed(0)}%`.padStart(13),
      );
    }
  }
  images.dispose();
  opt.dispose();
  net.dispose();
  return {
    device: gpu.adapterName,
    engine: gpu.engine,
    kernel_family: gpu.kernels,
    resize: size,
    batch_size: batch,
    train_examples_per_s: batch * 1000 / loops.train.wallMs,
    infer_examples_per_s: batch * 1000 / loops.infer.wallMs,
    loops,
    roofline_gflops: roofline.gflops,
    roofline_kernel: roofline.name,
    roofline_candidates: roofline.candidates.map((c) => ({ name: c.name, gflops: c.gflops })),
    tuning: tuning.json,
    timing,
    kernels: [...trainKernels, ...inferKernels],
  };
}
