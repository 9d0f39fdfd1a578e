/**
 * MaxPool2d: the maximum over each `kernelSize` x `kernelSize` window; backward routes each output gradient
 * to the element that was the maximum.
 *
 * @module
 */
import type { Gpu } from "../gpu/device.ts";
import { kernel } from "../gpu/kernel.ts";
import { expectRank, type ForwardContext, Module, workgroupsFor } from "../module.ts";
import { Tensor } from "../tensor.ts";
import { formatShape, NinError } from "../errors.ts";
import forwardCode from "../../kernels/maxpool2d_forward.wgsl" with { type: "text" };
import backwardCode from "../../kernels/maxpool2d_backward.wgsl" with { type: "text" };
import backwardPlanesCode from "../../kernels/maxpool2d_backward_planes.wgsl" with { type: "text" };
import { maxpoolBackwardLayout } from "../kernels.ts";

const MAXPOOL2D_FORWARD = kernel("maxpool2d_forward", forwardCode);
/** The training-mode forward, which also saves the argmax of every window. */
const MAXPOOL2D_FORWARD_TRAIN = kernel("maxpool2d_forward_train", forwardCode, {
  constants: { save_indices: 1 },
});
/** The backward's two forms (same bits): a gather per input element, a scatter per plane. */
const MAXPOOL2D_BACKWARD = {
  elements: kernel("maxpool2d_backward", backwardCode),
  // Eight planes per workgroup: one SIMD vector per CPU thread on llvmpipe.
  planes: kernel("maxpool2d_backward_planes", backwardPlanesCode, { constants: { WORKGROUP_SIZE: 8 } }),
};

/** What a training-mode forward leaves for backward: the argmax of every window and the shapes. */
interface Saved {
  indices: GPUBuffer;
  inputShape: readonly number[];
  outShape: readonly number[];
}

/**
 * 2-d max pooling over NCHW input, as `torch.nn.MaxPool2d(kernelSize, stride, padding)`: output size
 * `floor((H + 2 * padding - kernelSize) / stride) + 1`, padding counts as -infinity, and ties go to the
 * first maximum of the window in row-major order (so does the gradient). Training-mode forward saves the
 * argmax of every window as u32 indices (4 bytes per output element, accounted through `gpu.allocate`,
 * freed by backward or `clearSaved`); backward needs no atomics (a gather per input element, or on the
 * software kernels a scatter per plane), so it is deterministic.
 *
 * FLOPs passed to `gpu.dispatch`: forward `N * C * OH * OW * kernelSize^2` (one comparison per window
 * position, padded ones included); backward `N * C * OH * OW` (each output gradient is added once).
 *
 * @example
 * ```ts
 * import { MaxPool2d, requestGpu, Tensor } from "@nin/webgpu";
 * const gpu = await requestGpu();
 * const pool = new MaxPool2d(gpu, 3, 2);
 * const y = pool.eval().forward(Tensor.zeros(gpu, [1, 96, 54, 54]));
 * console.log(y.shape); // [1, 96, 26, 26]
 * gpu.destroy();
 * ```
 */
export class MaxPool2d extends Module {
  /** Window height and width. */
  readonly kernelSize: number;
  /** Step between windows. */
  readonly stride: number;
  /** Implicit -infinity border on each side. */
  readonly padding: number;
  #saved: Saved | null = null;

  /** A max pooling layer; `padding` must be at most `kernelSize / 2`, as PyTorch requires. */
  constructor(readonly gpu: Gpu, kernelSize: number, stride: number = kernelSize, padding = 0) {
    super();
    this.kernelSize = kernelSize;
    this.stride = stride;
    this.padding = padding;
    const name = this.toString();
    if (!Number.isInteger(kernelSize) || kernelSize < 1) {
      throw new NinError(`${name}: kernel size must be a positive integer`);
    }
    if (!Number.isInteger(stride) || stride < 1) {
      throw new NinError(`${name}: stride must be a positive integer`);
    }
    if (!Number.isInteger(padding) || padding < 0) {
      throw new NinError(`${name}: padding must be a non-negative integer`);
    }
    if (padding > kernelSize / 2) {
      throw new NinError(
        `${name}: padding must be at most half the kernel size (${
          Math.floor(kernelSize / 2)
        }), got ${padding}`,
      );
    }
  }

  /** PyTorch-like description, e.g. `MaxPool2d(3, stride=2)`. */
  override toString(): string {
    const padding = this.padding ? `, padding=${this.padding}` : "";
    return `MaxPool2d(${this.kernelSize}, stride=${this.stride}${padding})`;
  }

  /** `[N, C, H, W]` -> `[N, C, OH, OW]`; throws a {@link NinError} when the output would be empty. */
  outputShape(inputShape: readonly number[]): number[] {
    expectRank(this.toString(), { shape: inputShape }, 4, "[N, C, H, W]");
    const [n, c, h, w] = inputShape;
    const span = h + 2 * this.padding - this.kernelSize;
    const spanW = w + 2 * this.padding - this.kernelSize;
    if (span < 0 || spanW < 0) {
      throw new NinError(
        `${this}: input ${formatShape(inputShape)} gives an empty output; needs H, W >= ${
          this.kernelSize - 2 * this.padding
        }`,
      );
    }
    return [n, c, Math.floor(span / this.stride) + 1, Math.floor(spanW / this.stride) + 1];
  }

  /** Window maxima; in training mode the argmax indices are saved for backward. */
  forward(x: Tensor, ctx: ForwardContext = this.context()): Tensor {
    const shape = this.outputShape(x.shape);
    this.clearSaved();
    const y = Tensor.empty(this.gpu, shape, "activations");
    const indices = this.gpu.allocate(ctx.training ? y.size * 4 : 16, "maxpool indices");
    const forward = ctx.training ? MAXPOOL2D_FORWARD_TRAIN : MAXPOOL2D_FORWARD;
    this.gpu.dispatch(
      forward,
      { x: x.buffer, y: y.buffer, indices },
      { ...this.#params(x.shape, shape), count: y.size },
      workgroupsFor(y.size, forward),
      y.size * this.kernelSize * this.kernelSize,
    );
    // In eval mode `indices` is a placeholder the kernel never writes; release it right away.
    if (ctx.training) this.#saved = { indices, inputShape: x.shape, outShape: shape };
    else this.gpu.release(indices);
    return y;
  }

  /** Sends each output gradient to its window's saved argmax; frees the saved indices. */
  backward(gradOutput: Tensor, needInputGrad = true): Tensor | null {
    const saved = this.#saved;
    if (!saved) throw new NinError(`${this}.backward called without a training-mode forward`);
    const { inputShape, outShape } = saved;
    if (formatShape(gradOutput.shape) !== formatShape(outShape)) {
      throw new NinError(
        `${this}.backward: gradient shape ${formatShape(gradOutput.shape)} != output shape ${
          formatShape(outShape)
        }`,
      );
    }
    let dx: Tensor | null = null;
    if (needInputGrad) {
      dx = Tensor.empty(this.gpu, inputShape, "activation gradients");
      const layout = maxpoolBackwardLayout(this.gpu);
      const backward = MAXPOOL2D_BACKWARD[layout];
      const count = layout === "planes" ? inputShape[0] * inputShape[1] : dx.size;
      this.gpu.dispatch(
        backward,
        { indices: saved.indices, dy: gradOutput.buffer, dx: dx.buffer },
        { ...this.#params(inputShape, outShape), count },
        workgroupsFor(count, backward),
        gradOutput.size,
      );
    }
    this.clearSaved();
    return dx;
  }

  /** Frees the saved argmax indices. */
  override clearSaved(): void {
    if (this.#saved) this.gpu.release(this.#saved.indices);
    this.#saved = null;
  }

  #params(inputShape: readonly number[], outShape: readonly number[]) {
    const [, , height, width] = inputShape;
    const [, , out_height, out_width] = outShape;
    const { kernelSize: kernel, stride, padding } = this;
    return { height, width, out_height, out_width, kernel, stride, padding };
  }
}
