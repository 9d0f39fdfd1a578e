/**
 * Sequential container, as `torch.nn.Sequential`: children named "0", "1", ... run in order.
 *
 * @module
 */
import { Module } from "../module.ts";
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
 * import { Conv2d, Flatten, ReLU, requestGpu, Sequential, Tensor } from "../../mod.ts";
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
  /** Layers run by the last training-mode forward, in order (a fused ReLU is skipped). */
  #ran: Module[] = [];
  /** Intermediate activations of the last training-mode forward (owned here until backward). */
  #saved: Tensor[] = [];

  /** Makes a container of `layers`. */
  constructor(...layers: Module[]) {
    super();
    this.layers = layers;
  }

  /** Children named by position, as PyTorch does. */
  override children(): [string, Module][] {
    return this.layers.map((layer, i) => [String(i), layer]);
  }

  /** Runs every layer in order. */
  forward(x: Tensor): Tensor {
    this.clearSaved();
    let current = x;
    try {
      for (let i = 0; i < this.layers.length; i++) {
        const layer = this.layers[i];
        const fuse = layer instanceof Conv2d && this.layers[i + 1] instanceof ReLU;
        if (layer instanceof Conv2d) layer.fuseRelu = fuse;
        const next = layer.forward(current);
        if (fuse) i += 1;
        if (current !== x) {
          if (this.training) this.#saved.push(current);
          else current.dispose();
        }
        if (this.training) this.#ran.push(layer);
        current = next;
      }
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
    if (this.#ran.length === 0) {
      throw new NinError("Sequential.backward called without a training-mode forward");
    }
    let grad: Tensor | null = gradOutput;
    for (let i = this.#ran.length - 1; i >= 0; i--) {
      const next: Tensor | null = this.#ran[i].backward(grad!, i > 0 || needInputGrad);
      if (grad !== gradOutput) grad!.dispose();
      grad = next;
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
    this.#ran = [];
    super.clearSaved();
  }
}
