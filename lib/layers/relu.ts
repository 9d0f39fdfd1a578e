/**
 * ReLU: `y = max(x, 0)`; backward passes the gradient where the output is positive.
 *
 * @module
 */
import type { Gpu, Kernel } from "../gpu.ts";
import { Module, workgroupsFor } from "../module.ts";
import { Tensor } from "../tensor.ts";
import { NinError } from "../errors.ts";
import forwardCode from "../../kernels/relu_forward.wgsl" with { type: "text" };
import backwardCode from "../../kernels/relu_backward.wgsl" with { type: "text" };

const RELU_FORWARD: Kernel = { name: "relu_forward", code: forwardCode };
const RELU_BACKWARD: Kernel = { name: "relu_backward", code: backwardCode };

/**
 * Elementwise rectifier, as `torch.nn.ReLU`.
 *
 * @example
 * ```ts
 * import { ReLU, requestGpu, Tensor } from "../../mod.ts";
 * const gpu = await requestGpu();
 * const y = new ReLU(gpu).forward(Tensor.fromArray(gpu, [-1, 0.5], [2]));
 * console.log(await y.toArray()); // Float32Array [0, 0.5]
 * gpu.destroy();
 * ```
 */
export class ReLU extends Module {
  #output: Tensor | null = null;

  /** Makes a ReLU on a device. */
  constructor(readonly gpu: Gpu) {
    super();
  }

  /** `max(x, 0)`; in training mode the output is remembered (not owned) for backward. */
  forward(x: Tensor): Tensor {
    const y = Tensor.empty(this.gpu, x.shape, "relu output");
    this.gpu.dispatch(RELU_FORWARD, [x.buffer, y.buffer], [x.size], workgroupsFor(x.size, 64));
    this.#output = this.training ? y : null;
    return y;
  }

  /** `gradOutput` masked by `output > 0`. */
  backward(gradOutput: Tensor, needInputGrad = true): Tensor | null {
    const y = this.#output;
    if (!y) throw new NinError("ReLU.backward called without a training-mode forward");
    this.#output = null;
    if (!needInputGrad) return null;
    return reluBackward(y, gradOutput);
  }

  /** Same as the input. */
  outputShape(inputShape: readonly number[]): number[] {
    return [...inputShape];
  }

  /** Forgets the remembered output. */
  override clearSaved(): void {
    this.#output = null;
  }
}

/** `dx = dy * (y > 0)` as a new tensor, given ReLU's output `y`. */
export function reluBackward(y: Tensor, dy: Tensor): Tensor {
  const dx = Tensor.empty(y.gpu, y.shape, "relu input gradient");
  y.gpu.dispatch(RELU_BACKWARD, [y.buffer, dy.buffer, dx.buffer], [y.size], workgroupsFor(y.size, 64));
  return dx;
}
