/**
 * ReLU: `y = max(x, 0)`; backward passes the gradient where the output is positive.
 *
 * @module
 */
import type { Gpu } from "../gpu/device.ts";
import { kernel } from "../gpu/kernel.ts";
import { type ForwardContext, Module, workgroupsFor } from "../module.ts";
import { Tensor } from "../tensor.ts";
import { NinError } from "../errors.ts";
import forwardCode from "../../kernels/relu_forward.wgsl" with { type: "text" };
import backwardCode from "../../kernels/relu_backward.wgsl" with { type: "text" };

const RELU_FORWARD = kernel("relu_forward", forwardCode);
const RELU_BACKWARD = kernel("relu_backward", backwardCode);

/**
 * Elementwise rectifier, as `torch.nn.ReLU`.
 *
 * @example
 * ```ts
 * import { ReLU, requestGpu, Tensor } from "@nin/webgpu";
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
  forward(x: Tensor, ctx: ForwardContext = this.context()): Tensor {
    const y = Tensor.empty(this.gpu, x.shape, "activations");
    this.gpu.dispatch(
      RELU_FORWARD,
      { x: x.buffer, y: y.buffer },
      { count: x.size },
      workgroupsFor(x.size, RELU_FORWARD),
    );
    this.#output = ctx.training ? y : null;
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
  const dx = Tensor.empty(y.gpu, y.shape, "activation gradients");
  y.gpu.dispatch(
    RELU_BACKWARD,
    { y: y.buffer, dy: dy.buffer, dx: dx.buffer },
    { count: y.size },
    workgroupsFor(y.size, RELU_BACKWARD),
  );
  return dx;
}
