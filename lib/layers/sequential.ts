/**
 * Sequential container, as `torch.nn.Sequential`: children named "0", "1", ... run in order.
 *
 * @module
 */
import { type ForwardContext, Module } from "../module.ts";
import type { Tensor } from "../tensor.ts";
import { NinError } from "../errors.ts";
import { Conv2d } from "./conv2d.ts";
import { ReLU } from "./relu.ts";

/**
 * Runs its layers in order. A `Conv2d` directly followed by a `ReLU` runs as one fused kernel (the ReLU is
 * folded into the convolution's epilogue and its backward into the convolution's gradient kernels); the
 * names and parameters stay exactly PyTorch's.
 *
 * In training mode the intermediate activations are kept until `backward` (or `clearSaved`); keep the
 * returned output alive until then too, since the last layer may have saved it.
 *
 * @example
 * ```ts
 * import { Conv2d, Flatten, ReLU, requestGpu, Sequential, Tensor } from "@nin/webgpu";
 * const gpu = await requestGpu();
 * const net = new Sequential(new Conv2d(gpu, 1, 4, 3), new ReLU(gpu), new Flatten(gpu)).eval();
 * const y = net.forward(Tensor.zeros(gpu, [2, 1, 5, 5]));
 * console.log(y.shape); // [2, 36]
 * gpu.destroy();
 * ```
 */
export class Sequential extends Module {
  /** The layers, in order. */
  readonly layers: Module[];
  /** What runs, decided once here: each step is a layer, or a Conv2d with the ReLU after it fused in. */
  readonly #steps: { index: number; layer: Module; fusedRelu: boolean }[] = [];
  /** Whether the last forward was a training-mode one that ran every step (backward then runs them all). */
  #trained = false;
  /** Intermediate activations of the last training-mode forward (owned here until backward). */
  #saved: Tensor[] = [];

  /** Makes a container of `layers`. */
  constructor(...layers: Module[]) {
    super();
    this.layers = layers;
    for (let i = 0; i < layers.length; i++) {
      const fusedRelu = layers[i] instanceof Conv2d && layers[i + 1] instanceof ReLU;
      this.#steps.push({ index: i, layer: layers[i], fusedRelu });
      if (fusedRelu) i += 1;
    }
  }

  /** Children named by position, as PyTorch does. */
  override children(): [string, Module][] {
    return this.layers.map((layer, i) => [String(i), layer]);
  }

  /** Runs every layer in order; allocations and dispatches are attributed to each layer's dotted name. */
  forward(x: Tensor, ctx: ForwardContext = this.context()): Tensor {
    this.clearSaved();
    const gpu = x.gpu;
    let current = x;
    try {
      for (const { index, layer, fusedRelu } of this.#steps) {
        const input = current;
        current = gpu.inScope(
          String(index),
          () => fusedRelu ? (layer as Conv2d).forwardRelu(input, ctx) : layer.forward(input, ctx),
        );
        if (input !== x) {
          if (ctx.training) this.#saved.push(input);
          else input.dispose();
        }
      }
      // An empty container has nothing to backpropagate.
      this.#trained = ctx.training && this.#steps.length > 0;
    } catch (e) {
      // A layer that rejects its input (or a failed allocation) must not strand what ran before it.
      if (current !== x) current.dispose();
      this.clearSaved();
      throw e;
    }
    return current;
  }

  /** Backpropagates through the layers of the last training-mode forward, last first. */
  backward(gradOutput: Tensor, needInputGrad = true): Tensor | null {
    if (!this.#trained) {
      throw new NinError("Sequential.backward called without a training-mode forward");
    }
    const gpu = gradOutput.gpu;
    let grad: Tensor | null = gradOutput;
    for (let i = this.#steps.length - 1; i >= 0; i--) {
      const { index, layer } = this.#steps[i];
      const input: Tensor = grad!;
      grad = gpu.inScope(String(index), () => layer.backward(input, i > 0 || needInputGrad));
      if (input !== gradOutput) input.dispose();
    }
    this.clearSaved();
    return grad;
  }

  /** Folds `outputShape` through the layers. */
  outputShape(inputShape: readonly number[]): number[] {
    return this.layers.reduce((shape, layer) => layer.outputShape(shape), [...inputShape]);
  }

  /** Frees the kept activations and the children's saved state. */
  override clearSaved(): void {
    for (const t of this.#saved) t.dispose();
    this.#saved = [];
    this.#trained = false;
    super.clearSaved();
  }
}
