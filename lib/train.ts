/**
 * One training step and one evaluation step on the GPU. A step is recorded as one stream of dispatches
 * and reads back only the loss sum and the number of correct predictions, once.
 *
 * @module
 */
import { formatShape, NinError } from "./errors.ts";
import type { ForwardContext, Module } from "./module.ts";
import { softmaxCrossEntropy, validateLabels } from "./loss.ts";
import { microBatchSize } from "./microbatch.ts";
import { layerShapes } from "./shapes.ts";
import type { SGD } from "./optim.ts";
import { Tensor } from "./tensor.ts";

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

/**
 * One SGD step on a batch: forward, softmax cross-entropy (mean over the batch), backward, update. A batch
 * whose activations exceed the device's binding size is split into micro-batches whose gradients add up
 * to the full batch's, so the update is the same. Dropout masks depend on the sample's position in the
 * batch and the optimizer's step count, never on the split.
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
    const result = runBatches(net, images, labels, options, optimizer);
    optimizer.step();
    const stats = await result.read();
    gpu.checkHealthy();
    return stats;
  });
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
  return await images.gpu.guard(() => runBatches(net, images, labels, options, null).read());
}

/**
 * Records forward (+ backward and zeroed gradients first, when training with `optimizer`) over the
 * micro-batches; the stats are read once at the end.
 */
function runBatches(
  net: Module,
  images: Tensor,
  labels: ArrayLike<number>,
  options: StepOptions,
  optimizer: SGD | null,
): { read: () => Promise<StepResult> } {
  const gpu = images.gpu;
  if (images.shape.length !== 4) {
    throw new NinError(`expected images of shape [N, C, H, W], got ${formatShape(images.shape)}`);
  }
  const [n, ...sample] = images.shape;
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
  const perSample = images.size / n;
  // Only once the batch passed validation, so a rejected step leaves the gradients alone.
  optimizer?.zeroGrad();
  // The upload first: a write submits what is pending, so everything after it goes out in one submit.
  const labelBuffer = gpu.allocate(n * 4, "labels and statistics");
  gpu.write(labelBuffer, labelArray as Int32Array<ArrayBuffer>);
  const stats = gpu.allocate(16, "labels and statistics");
  gpu.clear(stats);
  try {
    for (let start = 0; start < n; start += micro) {
      const count = Math.min(micro, n - start);
      const chunk = count === n ? images : Tensor.empty(gpu, [count, ...sample], "micro-batch copies");
      if (chunk !== images) {
        gpu.copy(images.buffer, chunk.buffer, count * perSample * 4, start * perSample * 4);
      }
      const chunkLabels = start === 0 ? labelBuffer : gpu.allocate(count * 4, "labels and statistics");
      if (start > 0) gpu.copy(labelBuffer, chunkLabels, count * 4, start * 4);
      const ctx: ForwardContext = {
        training: optimizer !== null,
        step: optimizer?.stepCount ?? 0,
        sampleOffset: start,
      };
      const logits = net.forward(chunk, ctx);
      const grad = softmaxCrossEntropy(logits, chunkLabels, ctx.training ? 1 / n : 0, stats);
      if (ctx.training) net.backward(grad, false);
      grad.dispose();
      logits.dispose();
      if (chunk !== images) chunk.dispose();
      if (chunkLabels !== labelBuffer) gpu.release(chunkLabels);
    }
  } catch (e) {
    net.clearSaved();
    gpu.release(stats);
    gpu.release(labelBuffer);
    throw e;
  }
  gpu.release(labelBuffer);
  return {
    read: async () => {
      const words = await gpu.read(stats, 8);
      gpu.release(stats);
      const loss = new Float32Array(words, 0, 1)[0] / n;
      const correct = new Uint32Array(words, 4, 1)[0];
      return { loss, correct, count: n, microBatch: micro };
    },
  };
}
