/**
 * AdaptiveAvgPool2d: averages the input over a grid of windows chosen so the output has a fixed size.
 *
 * @module
 */
import type { Gpu } from "../gpu/device.ts";
import { kernel } from "../gpu/kernel.ts";
import { expectRank, type ForwardContext, Module, workgroupsFor } from "../module.ts";
import { Tensor } from "../tensor.ts";
import { formatShape, NinError } from "../errors.ts";
import forwardCode from "../../kernels/adaptive_avgpool2d_forward.wgsl" with { type: "text" };
import backwardCode from "../../kernels/adaptive_avgpool2d_backward.wgsl" with { type: "text" };

const ADAPTIVE_AVGPOOL2D_FORWARD = kernel("adaptive_avgpool2d_forward", forwardCode);
const ADAPTIVE_AVGPOOL2D_BACKWARD = kernel("adaptive_avgpool2d_backward", backwardCode);

/**
 * Adaptive average pooling over NCHW input, as `torch.nn.AdaptiveAvgPool2d(outputSize)`: output cell
 * `(i, j)` averages rows `floor(i * H / OH)` to `ceil((i + 1) * H / OH) - 1` and the columns defined the
 * same way. `AdaptiveAvgPool2d(1)` is global average pooling. Saves only the shapes for backward.
 *
 * FLOPs passed to `gpu.dispatch`: forward `N * C * (sum of window areas + OH * OW)` (one addition per
 * window element and one division per output); backward `2 * N * C * (sum of window areas)` (a division and
 * an addition per input element per window containing it).
 *
 * @example
 * ```ts
 * import { AdaptiveAvgPool2d, requestGpu, Tensor } from "@nin/webgpu";
 * const gpu = await requestGpu();
 * const pool = new AdaptiveAvgPool2d(gpu, 1).eval();
 * const y = pool.forward(Tensor.fromArray(gpu, [1, 2, 3, 6], [1, 1, 2, 2]));
 * console.log(y.shape, await y.toArray()); // [1, 1, 1, 1] Float32Array [3]
 * gpu.destroy();
 * ```
 */
export class AdaptiveAvgPool2d extends Module {
  /** Output height and width. */
  readonly outputSize: [number, number];
  /** The input and output shapes of the last training-mode forward. */
  #saved: { inputShape: readonly number[]; outShape: readonly number[] } | null = null;

  /** An adaptive average pooling layer producing `outputSize` (one number for a square output). */
  constructor(readonly gpu: Gpu, outputSize: number | [number, number] = 1) {
    super();
    this.outputSize = typeof outputSize === "number"
      ? [outputSize, outputSize]
      : [outputSize[0], outputSize[1]];
    if (
      (typeof outputSize !== "number" && outputSize.length !== 2) ||
      !this.outputSize.every((s) => Number.isInteger(s) && s > 0)
    ) {
      throw new NinError(
        `AdaptiveAvgPool2d: output size must be a positive integer or two of them, got ${
          JSON.stringify(outputSize)
        }`,
      );
    }
  }

  /** PyTorch-like description, e.g. `AdaptiveAvgPool2d(output_size=(1, 1))`. */
  override toString(): string {
    return `AdaptiveAvgPool2d(output_size=(${this.outputSize.join(", ")}))`;
  }

  /** `[N, C, H, W]` -> `[N, C, OH, OW]`. */
  outputShape(inputShape: readonly number[]): number[] {
    expectRank(this.toString(), { shape: inputShape }, 4, "[N, C, H, W]");
    return [inputShape[0], inputShape[1], ...this.outputSize];
  }

  /** Window averages; in training mode the input and output shapes are remembered for backward. */
  forward(x: Tensor, ctx: ForwardContext = this.context()): Tensor {
    const shape = this.outputShape(x.shape);
    const y = Tensor.empty(this.gpu, shape, "activations");
    const planes = shape[0] * shape[1];
    this.gpu.dispatch(
      ADAPTIVE_AVGPOOL2D_FORWARD,
      { x: x.buffer, y: y.buffer },
      { ...this.#params(x.shape), count: y.size },
      workgroupsFor(y.size, ADAPTIVE_AVGPOOL2D_FORWARD),
      planes * (this.#windowArea(x.shape) + shape[2] * shape[3]),
    );
    this.#saved = ctx.training ? { inputShape: x.shape, outShape: shape } : null;
    return y;
  }

  /** Spreads each output gradient evenly over its window. */
  backward(gradOutput: Tensor, needInputGrad = true): Tensor | null {
    if (!this.#saved) throw new NinError(`${this}.backward called without a training-mode forward`);
    const { inputShape, outShape } = this.#saved;
    this.#saved = null;
    if (formatShape(gradOutput.shape) !== formatShape(outShape)) {
      throw new NinError(
        `${this}.backward: gradient shape ${formatShape(gradOutput.shape)} != output shape ${
          formatShape(outShape)
        }`,
      );
    }
    if (!needInputGrad) return null;
    const dx = Tensor.empty(this.gpu, inputShape, "activation gradients");
    this.gpu.dispatch(
      ADAPTIVE_AVGPOOL2D_BACKWARD,
      { dy: gradOutput.buffer, dx: dx.buffer },
      { ...this.#params(inputShape), count: dx.size },
      workgroupsFor(dx.size, ADAPTIVE_AVGPOOL2D_BACKWARD),
      2 * inputShape[0] * inputShape[1] * this.#windowArea(inputShape),
    );
    return dx;
  }

  /** Forgets the remembered shapes. */
  override clearSaved(): void {
    this.#saved = null;
  }

  /** Sum over output cells of their window's area (windows may overlap). */
  #windowArea(inputShape: readonly number[]): number {
    const lengths = (size: number, out: number) => {
      let total = 0;
      for (let o = 0; o < out; o++) total += Math.ceil(((o + 1) * size) / out) - Math.floor((o * size) / out);
      return total;
    };
    return lengths(inputShape[2], this.outputSize[0]) * lengths(inputShape[3], this.outputSize[1]);
  }

  #params(inputShape: readonly number[]) {
    const [, , height, width] = inputShape;
    const [out_height, out_width] = this.outputSize;
    return { height, width, out_height, out_width };
  }
}
