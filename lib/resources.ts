/**
 * What NiN costs: parameters, MACs and FLOPs per layer, and the peak GPU memory of a prediction pass and of
 * a training step. Nothing here models the runtime: {@link runResources} runs the real `nin()`,
 * `predictClasses` and `trainStep` on a device and reads the runtime's own accounting (the pool's peak and
 * what was live at it, by category and by layer scope; the FLOPs every dispatch declares, by scope). On
 * `countingGpu` that takes milliseconds and needs no adapter ({@link analyzeResources}); on a real adapter
 * the same function gives the measured figures.
 *
 * Convention: 1 MAC (multiply-accumulate) = 1 multiply + 1 add = 2 FLOPs.
 *
 * @module
 */
import { countingGpu, type CountingLimits } from "./gpu/counting.ts";
import type { DispatchRecord, Gpu, KernelFamily } from "./gpu/device.ts";
import { totalFlops } from "./gpu/records.ts";
import { NinError } from "./errors.ts";
import { PACKED_INPUTS } from "./layers/conv2d_passes.ts";
import { type ForwardContext, Module } from "./module.ts";
import { nin, ninConfig, type NinOptions } from "./nin.ts";
import { SGD } from "./optim.ts";
import { predictClasses } from "./predict.ts";
import { summary, type SummaryRow } from "./summary.ts";
import { Tensor } from "./tensor.ts";
import { trainStep } from "./train.ts";

/** The convention every figure of this module follows, in words. */
export const MAC_CONVENTION = "1 MAC = 1 multiply + 1 add = 2 FLOPs";

/** WebGPU's default `maxStorageBufferBindingSize` (128 MiB), what the counting device binds by default. */
export const DEFAULT_MAX_BINDING_BYTES = 134217728;

/** A NiN configuration, a batch and the optimizer of the training step. */
export interface ResourceOptions extends NinOptions {
  /** Images per batch (B). */
  batchSize: number;
  /** Input height and width. */
  resize: number;
  /** SGD momentum (default 0); the step measured is a steady-state one (momentum buffers started). */
  momentum?: number;
  /** SGD weight decay (default 0). */
  weightDecay?: number;
  /** Nesterov momentum (default false). */
  nesterov?: boolean;
  /** Largest micro-batch to train with (`StepOptions.microBatch`); default: what fits the binding. */
  microBatch?: number;
}

/** One pass as it ran on a device. */
export interface PassResources {
  /** Peak live bytes above what was live before the model was built (`gpu.memory.peakBytes`). */
  bytes: number;
  /** What those bytes were at the peak, by category (the `what` of each allocation), in allocation order. */
  breakdown: Record<string, number>;
  /** Where the peak was reached, e.g. `backward of 0.2 (micro-batch 1 of 2)`. */
  peakAt: string;
  /** Largest micro-batch the pass ran. */
  microBatch: number;
  /** Number of micro-batches. */
  microBatches: number;
  /** FLOPs its dispatches declared, in total and by phase. */
  flops: { total: number; forward: number; loss: number; backward: number; optimizer: number };
  /** Every dispatch, in order. */
  dispatches: DispatchRecord[];
  /** Wall-clock seconds, GPU work included. */
  seconds: number;
}

/** What {@link runResources} returns. */
export interface ResourceRun {
  /** The options with the model's defaults filled in. */
  options: ResourceOptions & Required<NinOptions>;
  /** `[B, C, resize, resize]`. */
  inputShape: number[];
  /** Leaf layers at this batch (from `summary`). */
  layers: readonly SummaryRow[];
  /** `predictClasses` on the batch. */
  inference: PassResources;
  /** One `trainStep` on the batch. */
  training: PassResources;
  /** Bytes each leaf layer (by scope) keeps alive for backward in the first training micro-batch. */
  saved: Map<string, number>;
}

/** One row of the per-layer table of {@link Resources}. */
export interface LayerResources extends SummaryRow {
  /** MACs of the forward pass per image. */
  macsPerImage: number;
  /** FLOPs the layer's inference dispatches declare, per image. */
  flops: number;
  /** FLOPs of its training dispatches per image: training-mode forward + input and weight gradients. */
  trainFlops: number;
  /** Bytes it leaves alive for backward in one training micro-batch (outputs and saved indices). */
  savedBytes: number;
  /** For a ReLU that runs inside the preceding convolution's kernels (no dispatch of its own): its name. */
  fusedInto?: string;
}

/** Everything {@link analyzeResources} reports. */
export interface Resources {
  /** The run at the full batch. */
  run: ResourceRun;
  /** The run at batch 1 (per-image figures). */
  single: ResourceRun;
  /** The counting device's binding limit and kernel family. */
  device: { maxBindingBytes: number; kernels: KernelFamily };
  /** Per-layer table, every leaf in PyTorch order. */
  layers: LayerResources[];
  /** Parameter count and float32 bytes. */
  params: { count: number; bytes: number };
  /** Inference forward pass: MACs and FLOPs per image and per batch. */
  forward: { macsPerImage: number; flopsPerImage: number; macs: number; flops: number };
  /** FLOPs of one training step, by kind. */
  trainStep: Record<StepPart, number>;
}

/** The parts of a training step's FLOPs. */
export type StepPart = "forward" | "inputGradients" | "weightGradients" | "loss" | "optimizer" | "total";

const SAVED_CATEGORIES = ["activations", "maxpool indices", PACKED_INPUTS];

/**
 * Wraps the model (same names and buffers) to count micro-batches, see what forward leaves alive for
 * backward, and note in which micro-batch the memory peak was reached. FLOPs and phases come from the
 * dispatch records, the peak's place from the pool's accounting.
 */
class Probe extends Module {
  forwards = 0;
  microBatch = 0;
  peakMicroBatch = 0;
  saved = new Map<string, number>();
  #peak = 0;

  constructor(readonly net: Module, readonly gpu: Gpu) {
    super();
  }

  start(): void {
    Object.assign(this, { forwards: 0, microBatch: 0, peakMicroBatch: 0, saved: new Map() });
    this.#peak = this.gpu.memory.peakBytes;
  }

  /** Notes the current micro-batch if the peak rose since the last note. */
  note(): void {
    if (this.gpu.memory.peakBytes > this.#peak) {
      this.#peak = this.gpu.memory.peakBytes;
      this.peakMicroBatch = this.forwards;
    }
  }

  override children(): [string, Module][] {
    return this.net.children();
  }

  forward(x: Tensor, ctx?: ForwardContext): Tensor {
    this.forwards += 1;
    this.note(); // the micro-batch's input copy counts toward it
    this.microBatch = Math.max(this.microBatch, x.shape[0]);
    const y = this.net.forward(x, ctx);
    this.note();
    const kept = ctx?.training && this.forwards === 1 ? this.gpu.liveBuffers : [];
    for (const b of kept.filter((b) => SAVED_CATEGORIES.includes(b.category))) {
      this.saved.set(b.scope, (this.saved.get(b.scope) ?? 0) + b.size);
    }
    return y;
  }

  backward(gradOutput: Tensor, needInputGrad?: boolean): Tensor | null {
    this.note();
    const dx = this.net.backward(gradOutput, needInputGrad);
    this.note();
    return dx;
  }

  outputShape(inputShape: readonly number[]): number[] {
    return this.net.outputShape(inputShape);
  }

  override clearSaved(): void {
    this.net.clearSaved();
  }
}

function bytesBy(buffers: readonly { size: number; category: string }[], sign = 1, into = {}) {
  const out: Record<string, number> = into;
  for (const b of buffers) out[b.category] = (out[b.category] ?? 0) + sign * b.size;
  return out;
}

async function runPass(probe: Probe, before: number, base: object, work: () => Promise<unknown>) {
  const gpu = probe.gpu;
  await gpu.sync();
  gpu.resetPeak();
  probe.start();
  const start = performance.now();
  const dispatches = await gpu.trace(work);
  await gpu.sync();
  const seconds = (performance.now() - start) / 1000;
  probe.note();
  const atPeak = gpu.buffersAtPeak;
  const breakdown = Object.fromEntries(
    Object.entries(bytesBy(atPeak, 1, { ...base })).filter(([, bytes]) => bytes !== 0),
  );
  const last = atPeak.at(-1);
  const peakPlace = last ? last.phase + (last.scope ? ` of ${last.scope}` : "") : "";
  const flops = {
    total: totalFlops(dispatches),
    forward: totalFlops(dispatches, "forward"),
    loss: totalFlops(dispatches, "loss"),
    backward: totalFlops(dispatches, "input gradient") + totalFlops(dispatches, "weight gradient"),
    optimizer: totalFlops(dispatches, "optimizer"),
  };
  return {
    bytes: gpu.memory.peakBytes - before,
    breakdown,
    peakAt: peakPlace +
      (probe.forwards > 1 ? ` (micro-batch ${probe.peakMicroBatch} of ${probe.forwards})` : ""),
    microBatch: probe.microBatch,
    microBatches: probe.forwards,
    flops,
    dispatches,
    seconds,
  };
}

/**
 * Builds NiN on `gpu`, puts a batch of zeros on it, runs `predictClasses` and then one `trainStep` with `SGD`
 * (momentum buffers marked as started, so the step is a steady-state one), and reports what the runtime
 * accounted for each pass. Everything it creates is freed again. On `countingGpu` this is the exact plan;
 * on a real adapter, the measurement.
 *
 * @example
 * ```ts
 * import { countingGpu, runResources } from "@nin/webgpu";
 * const run = await runResources(countingGpu(), { batchSize: 2, resize: 96 });
 * console.log(run.training.bytes, run.training.flops.total, run.training.peakAt);
 * ```
 */
export async function runResources(gpu: Gpu, options: ResourceOptions): Promise<ResourceRun> {
  const { batchSize, resize, microBatch } = options;
  for (const [what, value] of [["batch size", batchSize], ["resize", resize], ["micro-batch", microBatch]]) {
    if (value !== undefined && !(Number.isInteger(value) && (value as number) >= 1)) {
      throw new NinError(`${what} must be a positive integer, got ${value}`);
    }
  }
  const config = ninConfig(options);
  const inputShape = [batchSize, config.inChannels, resize, resize];
  await gpu.sync();
  const before = gpu.memory.liveBytes;
  const baseline = bytesBy(gpu.liveBuffers, -1);
  const net = nin(gpu, config);
  let images: Tensor | null = null;
  let optimizer: SGD | null = null;
  try {
    const layers = summary(net, inputShape).rows;
    images = Tensor.zeros(gpu, inputShape, "input batch");
    const probe = new Probe(net, gpu);
    const x = images;
    const inference = await runPass(probe, before, baseline, () => predictClasses(probe, x));
    const { momentum = 0, weightDecay = 0, nesterov = false } = options;
    const sgd = optimizer = new SGD(net.parameters(), { lr: 0.01, momentum, weightDecay, nesterov });
    if (momentum !== 0) sgd.loadState(net.parameters().map((p) => new Float32Array(p.value.size)), 1);
    const labels = new Int32Array(batchSize);
    const training = await runPass(
      probe,
      before,
      baseline,
      () => trainStep(probe, sgd, x, labels, { microBatch }),
    );
    return {
      options: { ...options, ...config },
      inputShape,
      layers,
      inference,
      training,
      saved: probe.saved,
    };
  } finally {
    optimizer?.dispose();
    images?.dispose();
    net.dispose();
  }
}

/**
 * Parameters, MACs, FLOPs and peak memory of NiN for a batch, from {@link runResources} on a counting device
 * (no adapter needed) with `maxBindingBytes` bindings (default 128 MiB), the `kernels` family (default
 * `software`) and a device's other `limits` (default WebGPU's; see `countingLimits`): at the batch, and at batch 1 for the per-image figures.
 *
 * @example
 * ```ts
 * import { analyzeResources } from "@nin/webgpu";
 * const r = await analyzeResources({ batchSize: 128, resize: 224 });
 * console.log(r.params.count, r.trainStep.total, r.run.training.bytes); // 1992166 577117436364 1164612752
 * ```
 */
export async function analyzeResources(
  options: ResourceOptions & {
    maxBindingBytes?: number;
    kernels?: KernelFamily;
    limits?: Partial<CountingLimits>;
  },
): Promise<Resources> {
  const { maxBindingBytes = DEFAULT_MAX_BINDING_BYTES, kernels = "software", limits, ...rest } = options;
  const device = { maxBindingBytes, kernels };
  const counting = () =>
    countingGpu({ kernels, limits: { ...limits, maxStorageBufferBindingSize: maxBindingBytes } });
  const run = await runResources(counting(), rest);
  const single = await runResources(counting(), { ...rest, batchSize: 1 });
  const byScope = (dispatches: DispatchRecord[], scope: string) =>
    dispatches.reduce((sum, d) => sum + (d.scope === scope ? d.flops : 0), 0);
  const layers = run.layers.map((row, i): LayerResources => {
    const previous = run.layers[i - 1];
    const dispatched = single.training.dispatches.some((d) => d.scope === row.name);
    return {
      ...row,
      macsPerImage: single.layers[i].macs,
      flops: byScope(single.inference.dispatches, row.name),
      trainFlops: byScope(single.training.dispatches, row.name),
      savedBytes: run.saved.get(row.name) ?? 0,
      ...(row.type === "ReLU" && !dispatched && previous?.type === "Conv2d"
        ? { fusedInto: previous.name }
        : {}),
    };
  });
  const params = layers.reduce((sum, l) => sum + l.params, 0);
  const { flops, dispatches } = run.training;
  const weightGradients = totalFlops(dispatches, "weight gradient");
  return {
    run,
    single,
    device,
    layers,
    params: { count: params, bytes: params * 4 },
    forward: {
      macsPerImage: single.layers.reduce((sum, l) => sum + l.macs, 0),
      flopsPerImage: single.inference.flops.total,
      macs: run.layers.reduce((sum, l) => sum + l.macs, 0),
      flops: run.inference.flops.total,
    },
    trainStep: {
      forward: flops.forward,
      inputGradients: flops.backward - weightGradients,
      weightGradients,
      loss: flops.loss,
      optimizer: flops.optimizer,
      total: flops.total,
    },
  };
}
