/**
 * Splitting a batch so that every tensor of a forward and backward pass fits one storage binding.
 *
 * @module
 */
import { formatShape, NinError } from "./errors.ts";
import { mib } from "./gpu/device.ts";
import type { LayerShape } from "./shapes.ts";
import { shapeSize, Tensor } from "./tensor.ts";

/** The largest activation of one sample, and where it occurs. */
export interface LargestActivation {
  /** Dotted PyTorch name of the layer producing it (`input` for the input itself). */
  layer: string;
  /** Bytes for one sample. */
  bytesPerSample: number;
}

/**
 * The layer whose output (or the input) is the largest per sample: the binding that limits the batch.
 * `shapes` are the leaf layers' output shapes for the batch (`layerShapes(net, inputShape, true)`).
 */
export function largestActivation(
  shapes: readonly LayerShape[],
  inputShape: readonly number[],
): LargestActivation {
  const perSample = (shape: readonly number[]) => (shapeSize(shape) / shape[0]) * 4;
  let best: LargestActivation = { layer: "input", bytesPerSample: perSample(inputShape) };
  for (const row of shapes) {
    const bytes = perSample(row.shape);
    if (bytes > best.bytesPerSample) best = { layer: row.name, bytesPerSample: bytes };
  }
  return best;
}

/**
 * The micro-batch size for a batch of `inputShape` (N, C, H, W) whose leaf layers have output `shapes`: the
 * whole batch when every tensor fits `maxBindingBytes`, else the largest size that fits, or `requested` if
 * given and smaller. Throws a {@link NinError} with the estimate when not even one sample fits.
 *
 * @example
 * ```ts
 * import { layerShapes, microBatchSize, nin, requestGpu } from "@nin/webgpu";
 * const gpu = await requestGpu();
 * const input = [128, 1, 224, 224];
 * console.log(microBatchSize(layerShapes(nin(gpu), input, true), input, gpu.limits.maxStorageBufferBindingSize));
 * gpu.destroy();
 * ```
 */
export function microBatchSize(
  shapes: readonly LayerShape[],
  inputShape: readonly number[],
  maxBindingBytes: number,
  requested?: number,
): number {
  const largest = largestActivation(shapes, inputShape);
  const batch = inputShape[0];
  const fits = Math.floor(maxBindingBytes / largest.bytesPerSample);
  if (fits < 1) {
    throw new NinError(
      `one sample of shape ${
        formatShape(inputShape.slice(1))
      } is too large for this device: layer ${largest.layer} ` +
        `needs ${mib(largest.bytesPerSample)} per sample but a binding holds at most ${
          mib(maxBindingBytes)
        }; ` +
        `use a smaller --resize`,
    );
  }
  return Math.max(1, Math.min(batch, fits, requested ?? batch));
}

/**
 * The one micro-batch walk: calls `work` on consecutive chunks of at most `micro` samples of `images` (the
 * batch itself when it fits in one; otherwise a copy of each chunk, freed after `work`), with the chunk's
 * first sample and size.
 *
 * @example
 * ```ts
 * import { forEachMicroBatch, requestGpu, Tensor } from "@nin/webgpu";
 * const gpu = await requestGpu();
 * forEachMicroBatch(Tensor.zeros(gpu, [5, 1, 8, 8]), 2, (chunk, start, count) => console.log(start, count));
 * gpu.destroy();
 * ```
 */
export function forEachMicroBatch(
  images: Tensor,
  micro: number,
  work: (chunk: Tensor, start: number, count: number) => void,
): void {
  const [n, ...sample] = images.shape;
  const perSample = images.size / n;
  for (let start = 0; start < n; start += micro) {
    const count = Math.min(micro, n - start);
    const chunk = count === n ? images : Tensor.empty(images.gpu, [count, ...sample], "micro-batch copies");
    try {
      if (chunk !== images) {
        images.gpu.copy(images.buffer, chunk.buffer, count * perSample * 4, start * perSample * 4);
      }
      work(chunk, start, count);
    } finally {
      if (chunk !== images) chunk.dispose();
    }
  }
}
