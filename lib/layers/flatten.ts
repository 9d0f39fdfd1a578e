/**
 * Flatten: `[N, ...]` -> `[N, product of the rest]`, a reshape with no GPU work.
 *
 * @module
 */
import type { Gpu } from "../gpu/device.ts";
import { type ForwardContext, Module } from "../module.ts";
import type { Tensor } from "../tensor.ts";
import { formatShape, NinError } from "../errors.ts";

/**
 * Flattens every dimension after the first, as `torch.nn.Flatten()`. Forward returns a reshape view of the
 * input and backward a reshape view of `gradOutput` (new `Tensor` objects sharing the buffer, which the
 * caller owns and disposes); no kernel runs.
 *
 * @example
 * ```ts
 * import { Flatten, requestGpu, Tensor } from "@nin/webgpu";
 * const gpu = await requestGpu();
 * const y = new Flatten(gpu).forward(Tensor.zeros(gpu, [2, 10, 1, 1]));
 * console.log(y.shape); // [2, 10]
 * gpu.destroy();
 * ```
 */
export class Flatten extends Module {
  /** The input and output shapes of the last training-mode forward. */
  #saved: { inputShape: readonly number[]; outShape: readonly number[] } | null = null;

  /** A flatten layer (the device is kept for symmetry with the other layers). */
  constructor(readonly gpu: Gpu) {
    super();
  }

  /** PyTorch-like description. */
  override toString(): string {
    return "Flatten(start_dim=1, end_dim=-1)";
  }

  /** `[N, d1, d2, ...]` -> `[N, d1 * d2 * ...]`. */
  outputShape(inputShape: readonly number[]): number[] {
    if (inputShape.length < 2) {
      throw new NinError(
        `Flatten expects at least a 2-d input [N, ...], got shape ${formatShape(inputShape)}`,
      );
    }
    return [inputShape[0], inputShape.slice(1).reduce((a, b) => a * b, 1)];
  }

  /** A flattened view of `x`. */
  forward(x: Tensor, ctx: ForwardContext = this.context()): Tensor {
    const view = x.reshape(this.outputShape(x.shape));
    this.#saved = ctx.training ? { inputShape: x.shape, outShape: view.shape } : null;
    return view;
  }

  /** A view of `gradOutput` with the input's shape. */
  backward(gradOutput: Tensor, needInputGrad = true): Tensor | null {
    if (!this.#saved) throw new NinError("Flatten.backward called without a training-mode forward");
    const { inputShape, outShape } = this.#saved;
    this.#saved = null;
    if (formatShape(gradOutput.shape) !== formatShape(outShape)) {
      throw new NinError(
        `Flatten.backward: gradient shape ${formatShape(gradOutput.shape)} != output shape ${
          formatShape(outShape)
        }`,
      );
    }
    return needInputGrad ? gradOutput.reshape(inputShape) : null;
  }

  /** Forgets the remembered shapes. */
  override clearSaved(): void {
    this.#saved = null;
  }
}
