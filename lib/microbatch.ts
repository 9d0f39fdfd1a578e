/**
 * Splitting a batch so that every tensor of a forward and backward pass fits one storage binding.
 *
 * @module
 */
import { formatShape, NinError } from "./errors.ts";
import { mib } from "./gpu.ts";
import type { Module } from "./module.ts";
import { layerShapes } from "./nin.ts";
import { shapeSize } from "./tensor.ts";

/** The largest activation of one sample, and where it occurs. */
export interface LargestActivation {
  /** Dotted PyTorch name of the layer producing it (`input` for the input itself). */
  layer: string;
  /** Bytes for one sample. */
  bytesPerSample: number;
}

/** The layer whose output (or the input) is the largest per sample: the binding that limits the batch. */
export function largestActivation(net: Module, sampleShape: readonly number[]): LargestActivation {
  let best: LargestActivation = { layer: "input", bytesPerSample: shapeSize(sampleShape) * 4 };
  for (const row of layerShapes(net, [1, ...sampleShape], true)) {
    const bytes = shapeSize(row.shape) * 4;
    if (bytes > best.bytesPerSample) best = { layer: row.name, bytesPerSample: bytes };
  }
  return best;
}

/**
 * The micro-batch size to use for `batch` samples of `sampleShape` (C, H, W): the whole batch when every
 * tensor fits `maxBindingBytes`, else the largest size that fits, or `requested` if given and smaller.
 * Throws a {@link NinError} with the estimate when not even one sample fits.
 *
 * @example
 * ```ts
 * import { microBatchSize, nin, requestGpu } from "../mod.ts";
 * const gpu = await requestGpu();
 * console.log(microBatchSize(nin(gpu), [1, 224, 224], 128, gpu.limits.maxStorageBufferBindingSize));
 * gpu.destroy();
 * ```
 */
export function microBatchSize(
  net: Module,
  sampleShape: readonly number[],
  batch: number,
  maxBindingBytes: number,
  requested?: number,
): number {
  const largest = largestActivation(net, sampleShape);
  const fits = Math.floor(maxBindingBytes / largest.bytesPerSample);
  if (fits < 1) {
    throw new NinError(
      `one sample of shape ${
        formatShape(sampleShape)
      } is too large for this device: layer ${largest.layer} ` +
        `needs ${mib(largest.bytesPerSample)} per sample but a binding holds at most ${
          mib(maxBindingBytes)
        }; ` +
        `use a smaller --resize`,
    );
  }
  return Math.max(1, Math.min(batch, fits, requested ?? batch));
}
