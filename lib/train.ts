/**
 * One training step and one evaluation step on the GPU. A step is recorded as one stream of dispatches
 * whose only result, the loss sum and the number of correct predictions, stays on the GPU until someone
 * reads it: {@link trainStep} at once, the epoch loops in ticks (lib/readback.ts).
 *
 * @module
 */
import { formatShape, NinError } from "./errors.ts";
import type { ForwardContext, Module } from "./module.ts";
import { softmaxCrossEntropy, validateLabels } from "./loss.ts";
import { forEachMicroBatch, microBatchSize } from "./microbatch.ts";
import { writePredictions } from "./predict.ts";
import { layerShapes } from "./shapes.ts";
import type { SGD } from "./optim.ts";
import type { Tensor } from "./tensor.ts";
import type { Gpu, ReadPart } from "./gpu/device.ts";

/** What a step reports. */
export interface StepResult {
  /** Mean cross-entropy over the batch (before the update, for a training step). */
  loss: number;
  /** Number of samples whose arg-max logit equals the label. */
  correct: number;
  /** Number of samples. */
  count: number;
  /** Micro-batch size the step ran with. */
  microBatch: number;
}

/** Options of {@link trainStep} and {@link evalStep}. */
export interface StepOptions {
  /** Largest micro-batch to run at once (default: the whole batch, or what fits the device's bindings). */
  microBatch?: number;
}

/** Options of {@link recordEvalStep}. */
export interface EvalStepOptions extends StepOptions {
  /** Also write each sample's arg-max class (the first maximum, as `torch.argmax`) to the result. */
  predictions?: boolean;
}

/**
 * A recorded step whose result is still on the GPU: read it with {@link readStep}, or gather its
 * {@link RecordedStep.parts} with other steps' into one read (lib/readback.ts).
 */
export interface RecordedStep {
  /** The buffers holding the result: statistics (8 bytes), then predictions (4 bytes per sample) if asked. */
  parts: ReadPart[];
  /** Samples in the batch. */
  count: number;
  /** Micro-batch size the step ran with. */
  microBatch: number;
  /** Returns the result buffers to the pool (once their read is recorded). */
  release: () => void;
}

/** What an evaluation step reports: a step's figures and, when asked, each sample's predicted class. */
export interface EvalStepResult extends StepResult {
  /** Predicted class per sample (with `predictions: true`). */
  predictions?: Int32Array;
}

/** Decodes the bytes of a {@link RecordedStep}'s parts, read back concatenated. */
export function decodeStep(step: RecordedStep, bytes: ArrayBuffer): EvalStepResult {
  const loss = new Float32Array(bytes, 0, 1)[0] / step.count;
  const correct = new Uint32Array(bytes, 4, 1)[0];
  const result: EvalStepResult = { loss, correct, count: step.count, microBatch: step.microBatch };
  if (step.parts.length > 1) result.predictions = new Int32Array(bytes.slice(8, 8 + step.count * 4));
  return result;
}

/** Reads a recorded step's result now (one wait on the host) and releases its buffers. */
export async function readStep(gpu: Gpu, step: RecordedStep): Promise<EvalStepResult> {
  const read = gpu.readParts(step.parts);
  step.release();
  return decodeStep(step, await read);
}

/**
 * One SGD step on a batch: forward, softmax cross-entropy (mean over the batch), backward, update. A batch
 * whose activations exceed the device's binding size is split into micro-batches whose gradients add up
 * to the full batch's, so the update is the same. Dropout masks depend on the sample's position in the
 * batch and the optimizer's step count, never on the split. Waits for the result; loops that run many steps
 * use {@link recordTrainStep} and read results in ticks instead.
 *
 * @example
 * ```ts
 * import { nin, requestGpu, SGD, Tensor, trainStep } from "@nin/webgpu";
 * const gpu = await requestGpu();
 * const net = nin(gpu, { seed: 0 }).train();
 * const opt = new SGD(net.parameters(), { lr: 0.1 });
 * const images = Tensor.zeros(gpu, [2, 1, 96, 96]);
 * const { loss, correct } = await trainStep(net, opt, images, new Int32Array([3, 7]));
 * console.log(loss, correct);
 * gpu.destroy();
 * ```
 */
export async function trainStep(
  net: Module,
  optimizer: SGD,
  images: Tensor,
  labels: ArrayLike<number>,
  options: StepOptions = {},
): Promise<StepResult> {
  const gpu = images.gpu;
  return await gpu.guard(async () => {
    const step = recordTrainStep(net, optimizer, images, labels, options);
    const { loss, correct, count, microBatch } = await readStep(gpu, step);
    gpu.checkHealthy();
    return { loss, correct, count, microBatch };
  });
}

/**
 * Records one SGD step like {@link trainStep} without waiting for it: the result stays on the GPU.
 *
 * @example
 * ```ts
 * import { nin, readStep, recordTrainStep, requestGpu, SGD, Tensor } from "@nin/webgpu";
 * const gpu = await requestGpu();
 * const net = nin(gpu, { seed: 0 }).train();
 * const opt = new SGD(net.parameters(), { lr: 0.1 });
 * const images = Tensor.zeros(gpu, [2, 1, 96, 96]);
 * const first = recordTrainStep(net, opt, images, [3, 7]);
 * const second = recordTrainStep(net, opt, images, [3, 7]); // queued behind the first, no wait between
 * console.log((await readStep(gpu, first)).loss, (await readStep(gpu, second)).loss);
 * gpu.destroy();
 * ```
 */
export function recordTrainStep(
  net: Module,
  optimizer: SGD,
  images: Tensor,
  labels: ArrayLike<number>,
  options: StepOptions = {},
): RecordedStep {
  const step = recordBatches(net, images, labels, options, optimizer, false);
  images.gpu.inPhase("optimizer", () => optimizer.step());
  return step;
}

/**
 * Loss and correct count of a batch in evaluation mode (no dropout, nothing saved), split like
 * {@link trainStep} when the batch does not fit.
 *
 * @example
 * ```ts
 * import { evalStep, nin, requestGpu, Tensor } from "@nin/webgpu";
 * const gpu = await requestGpu();
 * const net = nin(gpu).eval();
 * console.log(await evalStep(net, Tensor.zeros(gpu, [1, 1, 96, 96]), [0]));
 * gpu.destroy();
 * ```
 */
export async function evalStep(
  net: Module,
  images: Tensor,
  labels: ArrayLike<number>,
  options: StepOptions = {},
): Promise<StepResult> {
  return await images.gpu.guard(async () => {
    const { loss, correct, count, microBatch } = await readStep(
      images.gpu,
      recordEvalStep(net, images, labels, options),
    );
    return { loss, correct, count, microBatch };
  });
}

/**
 * Records an evaluation step like {@link evalStep} (optionally with each sample's predicted class) without
 * waiting for it.
 *
 * @example
 * ```ts
 * import { nin, readStep, recordEvalStep, requestGpu, Tensor } from "@nin/webgpu";
 * const gpu = await requestGpu();
 * const net = nin(gpu).eval();
 * const step = recordEvalStep(net, Tensor.zeros(gpu, [2, 1, 96, 96]), [0, 1], { predictions: true });
 * console.log((await readStep(gpu, step)).predictions);
 * gpu.destroy();
 * ```
 */
export function recordEvalStep(
  net: Module,
  images: Tensor,
  labels: ArrayLike<number>,
  options: EvalStepOptions = {},
): RecordedStep {
  return recordBatches(net, images, labels, options, null, options.predictions === true);
}

/**
 * Records forward (+ backward and zeroed gradients first, when training with `optimizer`) over the
 * micro-batches, the statistics accumulating in one buffer (and predictions in another when asked).
 */
function recordBatches(
  net: Module,
  images: Tensor,
  labels: ArrayLike<number>,
  options: StepOptions,
  optimizer: SGD | null,
  predictions: boolean,
): RecordedStep {
  const gpu = images.gpu;
  if (images.shape.length !== 4) {
    throw new NinError(`expected images of shape [N, C, H, W], got ${formatShape(images.shape)}`);
  }
  const n = images.shape[0];
  // The one shape walk of the step: a mismatch names the layer (by its PyTorch index) before any work.
  const shapes = layerShapes(net, images.shape, true);
  const outShape = shapes.at(-1)!.shape;
  if (outShape.length !== 2) {
    throw new NinError(`the model's output ${formatShape(outShape)} is not [N, classes]`);
  }
  const labelArray = validateLabels(labels, n, outShape[1]);
  const micro = microBatchSize(
    shapes,
    images.shape,
    gpu.limits.maxStorageBufferBindingSize,
    options.microBatch,
  );
  // Only once the batch passed validation, so a rejected step leaves the gradients alone.
  optimizer?.zeroGrad();
  // The upload first: a write submits what is pending, so everything after it goes out in one submit.
  const labelBuffer = gpu.allocate(n * 4, "labels and statistics");
  gpu.write(labelBuffer, labelArray as Int32Array<ArrayBuffer>);
  const stats = gpu.allocate(16, "labels and statistics");
  gpu.clear(stats);
  const classes = predictions ? gpu.allocate(n * 4, "predictions") : null;
  const ctx: ForwardContext = {
    training: optimizer !== null,
    step: optimizer?.stepCount ?? 0,
    sampleOffset: 0,
  };
  try {
    forEachMicroBatch(images, micro, (chunk, start, count) => {
      const chunkLabels = start === 0 ? labelBuffer : gpu.allocate(count * 4, "labels and statistics");
      if (start > 0) gpu.copy(labelBuffer, chunkLabels, count * 4, start * 4);
      const chunkCtx = { ...ctx, sampleOffset: start };
      const logits = gpu.inPhase("forward", () => net.forward(chunk, chunkCtx));
      if (classes) writePredictions(logits, classes, start);
      const grad = gpu.inPhase(
        "loss",
        () => softmaxCrossEntropy(logits, chunkLabels, ctx.training ? 1 / n : 0, stats),
      );
      if (ctx.training) gpu.inPhase("input gradient", () => net.backward(grad, false));
      grad.dispose();
      logits.dispose();
      if (chunkLabels !== labelBuffer) gpu.release(chunkLabels);
    });
  } catch (e) {
    net.clearSaved();
    for (const buffer of [stats, labelBuffer, classes]) if (buffer) gpu.release(buffer);
    throw e;
  }
  gpu.release(labelBuffer);
  const parts = [{ buffer: stats, bytes: 8 }];
  if (classes) parts.push({ buffer: classes, bytes: n * 4 });
  return {
    parts,
    count: n,
    microBatch: micro,
    release: () => {
      for (const part of parts) gpu.release(part.buffer);
    },
  };
}
