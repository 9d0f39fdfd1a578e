/**
 * Class predictions and the confusion matrix d2l users look at after training.
 *
 * @module
 */
import { kernel } from "./gpu/kernel.ts";
import { type Module, workgroupsFor } from "./module.ts";
import { forEachMicroBatch, microBatchSize } from "./microbatch.ts";
import { layerShapes } from "./shapes.ts";
import type { Tensor } from "./tensor.ts";
import argmaxCode from "../kernels/argmax.wgsl" with { type: "text" };

const ARGMAX = kernel("argmax", argmaxCode);

/**
 * The arg-max class of each image (first maximum wins, like `torch.argmax`), in evaluation mode. The
 * classes collect on the GPU across micro-batches and are read back once.
 *
 * @example
 * ```ts
 * import { nin, predictClasses, requestGpu, Tensor } from "@nin/webgpu";
 * const gpu = await requestGpu();
 * console.log(await predictClasses(nin(gpu), Tensor.zeros(gpu, [2, 1, 96, 96]))); // Int32Array(2)
 * gpu.destroy();
 * ```
 */
export async function predictClasses(net: Module, images: Tensor): Promise<Int32Array> {
  const gpu = images.gpu;
  const n = images.shape[0];
  const shapes = layerShapes(net, images.shape, true);
  const micro = microBatchSize(shapes, images.shape, gpu.limits.maxStorageBufferBindingSize);
  const classes = gpu.allocate(n * 4, "predictions");
  try {
    forEachMicroBatch(images, micro, (chunk, start) => {
      const logits = gpu.inPhase(
        "forward",
        () => net.forward(chunk, { training: false, step: 0, sampleOffset: 0 }),
      );
      writePredictions(logits, classes, start);
      logits.dispose();
    });
    return new Int32Array(await gpu.read(classes, n * 4));
  } finally {
    gpu.release(classes);
  }
}

/** Records `out[offset + s] = argmax_j logits[s, j]` for every sample `s` of `logits` [N, classes]. */
export function writePredictions(logits: Tensor, out: GPUBuffer, offset: number): void {
  const [count, classes] = logits.shape;
  logits.gpu.dispatch(
    ARGMAX,
    { logits: logits.buffer, predicted: out },
    { count, classes, offset },
    workgroupsFor(count, ARGMAX),
  );
}

/**
 * `matrix[label][prediction]` counts for `classes` classes.
 *
 * @example
 * ```ts
 * import { confusionMatrix } from "@nin/webgpu";
 * console.log(confusionMatrix([0, 1, 1], [0, 1, 0], 2)); // [[1, 0], [1, 1]]
 * ```
 */
export function confusionMatrix(
  labels: ArrayLike<number>,
  predictions: ArrayLike<number>,
  classes: number,
): number[][] {
  const matrix = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  for (let i = 0; i < labels.length; i++) matrix[labels[i]][predictions[i]] += 1;
  return matrix;
}
