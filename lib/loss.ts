/**
 * Softmax cross-entropy, fused with its gradient, as `F.cross_entropy` on logits `[N, classes]`.
 *
 * @module
 */
import { kernel } from "./gpu/kernel.ts";
import { Tensor } from "./tensor.ts";
import { formatShape, NinError } from "./errors.ts";
import crossEntropyCode from "../kernels/cross_entropy.wgsl" with { type: "text" };

const CROSS_ENTROPY = kernel("cross_entropy", crossEntropyCode);

/** FLOPs the cross-entropy kernel counts per logit: max, exp (with subtraction), sum, softmax, gradient. */
const FLOPS_PER_LOGIT = 7;

/**
 * Checks class labels and returns them as an `Int32Array`: exactly `batch` of them, each an integer in
 * `[0, numClasses)`.
 *
 * @example
 * ```ts
 * import { validateLabels } from "@nin/webgpu";
 * console.log(validateLabels([3, 0, 9], 3, 10)); // Int32Array [3, 0, 9]
 * ```
 */
export function validateLabels(
  labels: Int32Array | ArrayLike<number>,
  batch: number,
  numClasses: number,
): Int32Array {
  if (labels.length !== batch) {
    throw new NinError(`expected ${batch} labels (one per image), got ${labels.length}`);
  }
  const out = new Int32Array(batch);
  for (let i = 0; i < batch; i++) {
    const label = labels[i];
    if (!Number.isInteger(label) || label < 0 || label >= numClasses) {
      throw new NinError(`label ${i} is ${label}; labels must be integers in [0, ${numClasses})`);
    }
    out[i] = label;
  }
  return out;
}

/**
 * Records one fused softmax + cross-entropy dispatch over `logits` `[n, classes]` with i32 `labels` `[n]`
 * (check them with {@link validateLabels} first). Returns `dL/dlogits * gradScale` where `L` is the sum over
 * the samples of their cross-entropy, so `gradScale = 1 / fullBatch` gives the gradient of the full batch's
 * mean loss even when called once per micro-batch. Adds the sum of the per-sample losses into `stats[0]`
 * (f32) and the number of samples whose first maximal logit is the label (as `torch.argmax`) into
 * `stats[1]` (u32); `stats` must be zeroed before the first call. Numerically stable (max trick) and
 * deterministic (one workgroup reduces in a fixed order). Nothing is read back.
 *
 * FLOPs passed to `gpu.dispatch`: `7 * n * classes`.
 *
 * @example
 * ```ts
 * import { requestGpu, softmaxCrossEntropy, Tensor } from "@nin/webgpu";
 * const gpu = await requestGpu();
 * const logits = Tensor.fromArray(gpu, [2, 0, 0, 0, 3, 0], [2, 3]);
 * const labels = gpu.allocate(8, "labels");
 * gpu.write(labels, new Int32Array([0, 2]));
 * const stats = gpu.allocate(16, "stats");
 * gpu.clear(stats);
 * const grad = softmaxCrossEntropy(logits, labels, 1 / 2, stats);
 * const words = await gpu.read(stats, 8);
 * console.log(new Float32Array(words, 0, 1)[0] / 2, new Uint32Array(words, 4, 1)[0]); // mean loss, 1 correct
 * grad.dispose();
 * gpu.release(labels);
 * gpu.release(stats);
 * gpu.destroy();
 * ```
 */
export function softmaxCrossEntropy(
  logits: Tensor,
  labels: GPUBuffer,
  gradScale: number,
  stats: GPUBuffer,
): Tensor {
  if (logits.shape.length !== 2) {
    throw new NinError(`cross-entropy expects logits [N, classes], got shape ${formatShape(logits.shape)}`);
  }
  const [n, classes] = logits.shape;
  if (labels.size < n * 4) {
    throw new NinError(`cross-entropy: the labels buffer holds ${labels.size / 4} labels, need ${n}`);
  }
  if (stats.size < 8) throw new NinError(`cross-entropy: the stats buffer needs 8 bytes, has ${stats.size}`);
  if (!Number.isFinite(gradScale)) {
    throw new NinError(`cross-entropy: gradScale must be finite, got ${gradScale}`);
  }
  const grad = Tensor.empty(logits.gpu, logits.shape, "logits gradient");
  logits.gpu.dispatch(
    CROSS_ENTROPY,
    { logits: logits.buffer, labels, grad: grad.buffer, stats },
    { samples: n, classes, grad_scale: gradScale },
    1,
    FLOPS_PER_LOGIT * n * classes,
  );
  return grad;
}

/**
 * The mean cross-entropy of `logits` `[n, classes]` against `labels`, as `F.cross_entropy(logits, labels)`,
 * read back to the host (a convenience for tests and evaluation; training uses {@link softmaxCrossEntropy}).
 *
 * @example
 * ```ts
 * import { crossEntropyLoss, requestGpu, Tensor } from "@nin/webgpu";
 * const gpu = await requestGpu();
 * const logits = Tensor.fromArray(gpu, [0, 0], [1, 2]);
 * console.log(await crossEntropyLoss(logits, [1])); // 0.6931... (ln 2)
 * gpu.destroy();
 * ```
 */
export async function crossEntropyLoss(logits: Tensor, labels: ArrayLike<number>): Promise<number> {
  if (logits.shape.length !== 2) {
    throw new NinError(`cross-entropy expects logits [N, classes], got shape ${formatShape(logits.shape)}`);
  }
  const [n, classes] = logits.shape;
  const checked = validateLabels(labels, n, classes);
  const gpu = logits.gpu;
  const labelBuffer = gpu.allocate(n * 4, "labels");
  const stats = gpu.allocate(16, "labels and statistics");
  try {
    gpu.write(labelBuffer, checked as Int32Array<ArrayBuffer>);
    gpu.clear(stats);
    softmaxCrossEntropy(logits, labelBuffer, 0, stats).dispose();
    return new Float32Array(await gpu.read(stats, 4))[0] / n;
  } finally {
    gpu.release(labelBuffer);
    gpu.release(stats);
  }
}
