/**
 * What NiN costs, worked out without a GPU: parameters, MACs and FLOPs per layer, and the peak GPU memory
 * of a prediction pass and of a training step at a batch size, as the toolkit really schedules its buffers.
 *
 * The memory figures come from replaying the toolkit's own buffer schedule on a model of it: the same
 * allocations and releases, in the same order, as `predictClasses` and `trainStep` run them (micro-batch
 * copies, labels, the statistics buffer, every activation `Sequential` keeps until backward, the u32 argmax
 * indices of max pooling, weight gradients allocated on first use, the gradients in flight during backward,
 * momentum buffers, the 16-byte placeholders, all rounded up to 16 bytes as `Gpu.allocate` does). The FLOP
 * figures are what every dispatch of that replay declares, with each layer's documented convention, so the
 * dispatched total of a real pass equals them exactly. `lib/measure.ts` checks both against a real run.
 * The model description lives in `lib/model_spec.ts`, the replay in `lib/buffer_replay.ts`; this module
 * runs the replay and assembles the per-layer table and the totals.
 *
 * Convention: 1 MAC (multiply-accumulate) = 1 multiply + 1 add = 2 FLOPs.
 *
 * @module
 */
import { formatShape, NinError } from "./errors.ts";
import { ninConfig, type NinOptions } from "./nin.ts";
import { type LayerSpec, ninSpec, specLeaves, specOutputShape, specParams } from "./model_spec.ts";
import {
  type Dispatch,
  type FlopPhase,
  type Ledger,
  type MemoryCategory,
  type OptimizerSpec,
  replay,
} from "./buffer_replay.ts";

/** The convention every figure of this module follows, in words. */
export const MAC_CONVENTION = "1 MAC = 1 multiply + 1 add = 2 FLOPs";

/** WebGPU's default `maxStorageBufferBindingSize` (128 MiB), assumed when no device is at hand. */
export const DEFAULT_MAX_BINDING_BYTES = 134217728;

/** What {@link analyzeResources} works out, for a model configuration and a batch. */
export interface ResourceOptions extends NinOptions, OptimizerSpec {
  /** Images per batch (B). */
  batchSize: number;
  /** Input height and width. */
  resize: number;
  /** The device's `maxStorageBufferBindingSize`, which decides the micro-batching (default 128 MiB). */
  maxBindingBytes?: number;
  /** Largest micro-batch to train with (`StepOptions.microBatch`); default: what fits the binding. */
  microBatch?: number;
}

/** One row of the per-layer table. */
export interface LayerResources {
  /** Dotted PyTorch index, e.g. `0.2`. */
  index: string;
  /** PyTorch class name. */
  type: string;
  /** Output shape at batch B. */
  outputShape: number[];
  /** Parameters owned by the layer. */
  params: number;
  /** Multiply-accumulates of the forward pass per image (convolutions only). */
  macs: number;
  /** FLOPs of the inference forward pass per image, as the layer's kernels declare them. */
  flops: number;
  /** FLOPs of a training step per image: training-mode forward + input gradient + weight gradients. */
  trainFlops: number;
  /** Bytes the layer leaves alive for backward in one training micro-batch (output and saved indices). */
  savedBytes: number;
  /** For a ReLU run inside the preceding convolution's kernels: that convolution's index. */
  fusedInto?: string;
}

/** A predicted peak of live GPU memory. */
export interface MemoryPrediction {
  /** Peak live bytes (as `gpu.memory.peakBytes` counts them: every buffer rounded up to 16 bytes). */
  bytes: number;
  /** What the live bytes at the peak consist of. */
  breakdown: Partial<Record<MemoryCategory, number>>;
  /** Where the peak is reached, e.g. `backward of 0.2 (micro-batch 1 of 2)`. */
  peakAt: string;
  /**
   * The largest temporary workspace live at once: buffers a pass allocates for its own use and frees again
   * (today only 16-byte placeholders bound where a kernel needs a binding it does not use; the convolutions
   * are implicit GEMMs without an im2col buffer).
   */
  workspaceBytes: number;
  /** Micro-batch size used. */
  microBatch: number;
  /** Number of micro-batches. */
  microBatches: number;
  /** FLOPs the pass's dispatches declare in total. */
  flops: number;
}

/** FLOPs of one training step, by kind. */
export interface TrainStepFlops {
  /** Training-mode forward pass (includes the dropout mask multiply). */
  forward: number;
  /** Gradients with respect to the layers' inputs (none for the first convolution). */
  inputGradients: number;
  /** Gradients with respect to weights and biases. */
  weightGradients: number;
  /** Softmax cross-entropy and its gradient. */
  loss: number;
  /** SGD update of every parameter. */
  optimizer: number;
  /** All of the above: what a real step's dispatches add up to. */
  total: number;
}

/** Everything {@link analyzeResources} reports. */
export interface Resources {
  /** The options, with defaults filled in. */
  options: Required<Omit<ResourceOptions, "microBatch">> & { microBatch: number | null };
  /** The input shape `[B, C, resize, resize]`. */
  inputShape: number[];
  /** Per-layer table (every leaf, PyTorch order). */
  layers: LayerResources[];
  /** Parameter count and float32 bytes. */
  params: { count: number; bytes: number };
  /** Inference forward pass: MACs and FLOPs per image and per batch. */
  forward: { macsPerImage: number; flopsPerImage: number; macs: number; flops: number };
  /** FLOPs of one training step on the whole batch. */
  trainStep: TrainStepFlops;
  /** Peak GPU memory of a prediction pass (`predictClasses`) and of a training step (`trainStep`). */
  memory: { inference: MemoryPrediction; training: MemoryPrediction };
}

function fits(spec: LayerSpec, inputShape: number[]): boolean {
  try {
    specOutputShape(spec, inputShape);
    return true;
  } catch {
    return false;
  }
}

function sum(
  dispatches: Dispatch[],
  pick: (d: Dispatch) => number,
  filter: (d: Dispatch) => boolean,
): number {
  return dispatches.filter(filter).reduce((total, d) => total + pick(d), 0);
}

/**
 * Parameters, MACs, FLOPs and peak memory of NiN for a batch, worked out from the configuration alone
 * (no GPU needed). FLOP counts are those the kernels declare to `gpu.dispatch`; memory counts what
 * `gpu.memory` would report at the peak of `predictClasses` and of `trainStep` with a fresh model, the
 * input batch already on the GPU and, for training, an `SGD` optimizer in its steady state.
 *
 * @example
 * ```ts
 * import { analyzeResources } from "./resources.ts";
 * const r = analyzeResources({ batchSize: 128, resize: 224 });
 * console.log(r.params.count, r.forward.macsPerImage, r.memory.training.bytes);
 * ```
 */
export function analyzeResources(options: ResourceOptions): Resources {
  const { batchSize, resize } = options;
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new NinError(`batch size must be a positive integer, got ${batchSize}`);
  }
  if (!Number.isInteger(resize) || resize < 1) {
    throw new NinError(`resize must be a positive integer, got ${resize}`);
  }
  if (
    options.microBatch !== undefined && !(Number.isInteger(options.microBatch) && options.microBatch >= 1)
  ) {
    throw new NinError(`micro-batch must be a positive integer, got ${options.microBatch}`);
  }
  // Only the model's own options, without undefined ones (ninConfig would take an explicit undefined as a value).
  const { numClasses, inChannels, dropout, oneByOneConvs, seed } = options;
  const config = ninConfig(
    Object.fromEntries(
      Object.entries({ numClasses, inChannels, dropout, oneByOneConvs, seed }).filter(([, v]) =>
        v !== undefined
      ),
    ),
  );
  const maxBindingBytes = options.maxBindingBytes ?? DEFAULT_MAX_BINDING_BYTES;
  const spec = ninSpec(config);
  const inputShape = [batchSize, config.inChannels, resize, resize];
  const perImage = [1, config.inChannels, resize, resize];
  try {
    specOutputShape(spec, inputShape);
  } catch (e) {
    if (!(e instanceof NinError)) throw e;
    let smallest = resize + 1;
    while (smallest <= 4096 && !fits(spec, [1, config.inChannels, smallest, smallest])) smallest++;
    if (smallest > 4096) throw e;
    throw new NinError(
      `input ${formatShape(inputShape)} is too small: ${e.message}; the smallest input that works is ` +
        `${smallest}x${smallest}`,
    );
  }

  const full = replay(spec, inputShape, options, maxBindingBytes);
  const one = replay(spec, perImage, options, maxBindingBytes);

  const leaves = specLeaves(spec);
  let shape = inputShape;
  const layers: LayerResources[] = leaves.map((leaf, i) => {
    shape = specOutputShape(leaf.spec, shape, leaf.name);
    const previous = leaves[i - 1];
    const fused = leaf.spec.type === "ReLU" && previous?.spec.type === "Conv2d" &&
      previous.name.split(".").slice(0, -1).join(".") === leaf.name.split(".").slice(0, -1).join(".");
    const mine = (d: Dispatch) => d.layer === leaf.name;
    const trainDispatches = one.training.dispatches;
    return {
      index: leaf.name,
      type: leaf.spec.type,
      outputShape: shape,
      params: specParams(leaf.spec),
      macs: sum(one.inference.dispatches, (d) => d.macs, mine),
      flops: sum(one.inference.dispatches, (d) => d.flops, mine),
      trainFlops: sum(trainDispatches, (d) => d.flops, (d) => mine(d) && d.phase !== "optimizer"),
      savedBytes: full.saved.get(leaf.name) ?? 0,
      ...(fused ? { fusedInto: previous.name } : {}),
    };
  });

  const params = specParams(spec);
  const forwardDispatches = full.inference.dispatches;
  const trainDispatches = full.training.dispatches;
  const phase = (p: FlopPhase) => sum(trainDispatches, (d) => d.flops, (d) => d.phase === p);
  const trainStep: TrainStepFlops = {
    forward: phase("forward"),
    inputGradients: phase("input gradient"),
    weightGradients: phase("weight gradient"),
    loss: phase("loss"),
    optimizer: phase("optimizer"),
    total: sum(trainDispatches, (d) => d.flops, () => true),
  };
  const prediction = (ledger: Ledger, micro: number): MemoryPrediction => ({
    bytes: ledger.peak,
    breakdown: ledger.peakParts,
    peakAt: ledger.peakAt,
    workspaceBytes: ledger.workspacePeak,
    microBatch: micro,
    microBatches: Math.ceil(batchSize / micro),
    flops: sum(ledger.dispatches, (d) => d.flops, () => true),
  });
  return {
    options: {
      ...config,
      batchSize,
      resize,
      momentum: options.momentum ?? 0,
      weightDecay: options.weightDecay ?? 0,
      nesterov: options.nesterov ?? false,
      maxBindingBytes,
      microBatch: options.microBatch ?? null,
    },
    inputShape,
    layers,
    params: { count: params, bytes: params * 4 },
    forward: {
      macsPerImage: sum(one.inference.dispatches, (d) => d.macs, () => true),
      flopsPerImage: sum(one.inference.dispatches, (d) => d.flops, () => true),
      macs: sum(forwardDispatches, (d) => d.macs, () => true),
      flops: sum(forwardDispatches, (d) => d.flops, () => true),
    },
    trainStep,
    memory: {
      inference: prediction(full.inference, full.inferenceMicro),
      training: prediction(full.training, full.trainMicro),
    },
  };
}
