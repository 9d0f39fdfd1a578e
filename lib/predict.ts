/**
 * Class predictions and the confusion matrix d2l users look at after training.
 *
 * @module
 */
import type { Module } from "./module.ts";
import { microBatchSize } from "./microbatch.ts";
import { layerShapes } from "./shapes.ts";
import { Tensor } from "./tensor.ts";

/**
 * The arg-max class of each image (first maximum wins, like `torch.argmax`), in evaluation mode.
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
  const [n, ...sample] = images.shape;
  const shapes = layerShapes(net, images.shape, true);
  const micro = microBatchSize(shapes, images.shape, images.gpu.limits.maxStorageBufferBindingSize);
  const perSample = images.size / n;
  const out = new Int32Array(n);
  for (let start = 0; start < n; start += micro) {
    const count = Math.min(micro, n - start);
    let chunk = images;
    if (count !== n) {
      chunk = Tensor.empty(images.gpu, [count, ...sample], "micro-batch copies");
      images.gpu.copy(images.buffer, chunk.buffer, count * perSample * 4, start * perSample * 4);
    }
    const logits = net.forward(chunk, { training: false, step: 0, sampleOffset: 0 });
    const values = await logits.toArray();
    logits.dispose();
    if (chunk !== images) chunk.dispose();
    const classes = values.length / count;
    for (let i = 0; i < count; i++) {
      let best = 0;
      for (let c = 1; c < classes; c++) if (values[i * classes + c] > values[i * classes + best]) best = c;
      out[start + i] = best;
    }
  }
  return out;
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
