/**
 * 2-d convolution with bias, as `torch.nn.Conv2d` (NCHW input, OIHW weight, zero padding, floor output
 * size), optionally fused with the ReLU that follows it.
 *
 * @module
 */
import type { Gpu } from "../gpu/device.ts";
import { convPasses } from "../kernels.ts";
import { expectRank, type ForwardContext, Module, Parameter } from "../module.ts";
import { Tensor } from "../tensor.ts";
import { formatShape, NinError } from "../errors.ts";
import { Random } from "../random.ts";
import { convFlops, type ConvGeometry, convMacs, convOutputShape } from "./conv2d_passes.ts";

/** What a training-mode forward leaves for backward. */
interface Saved {
  /** The input (not owned). */
  x: Tensor;
  /** The output when the ReLU was fused (its mask), else null. */
  fusedOutput: Tensor | null;
  /** The forward's sizes. */
  geometry: ConvGeometry;
  /** The input as the forward's kernel packed it, owned until the backward (texture candidates). */
  packedInput?: GPUTexture;
}

/**
 * Weight initialisation of a {@link Conv2d}: `"xavier"` is d2l's Xavier-uniform (bound
 * `sqrt(6 / (fan_in + fan_out))`), `"kaiming"` is He-uniform for ReLU networks as
 * `torch.nn.init.kaiming_uniform_(w, nonlinearity="relu")` (bound `sqrt(6 / fan_in)`).
 */
export type ConvInit = "xavier" | "kaiming";

/** The accepted {@link ConvInit} names. */
export const CONV_INITS: readonly ConvInit[] = ["xavier", "kaiming"];

/**
 * Half-width of the uniform weight distribution for an initialisation and the layer's fans
 * (`fan_in = inChannels * k * k`, `fan_out = outChannels * k * k`).
 *
 * @example
 * ```ts
 * import { convWeightBound } from "../../mod.ts";
 * console.log(convWeightBound("kaiming", 96, 96)); // 0.25 = sqrt(6 / 96)
 * console.log(convWeightBound("xavier", 96, 96)); // 0.1767... = sqrt(6 / 192)
 * ```
 */
export function convWeightBound(init: ConvInit, fanIn: number, fanOut: number): number {
  switch (init) {
    case "xavier":
      return Math.sqrt(6 / (fanIn + fanOut));
    case "kaiming":
      return Math.sqrt(6 / fanIn);
    default:
      throw new NinError(`Conv2d: init must be one of ${CONV_INITS.join(", ")}, got ${init}`);
  }
}

/** Options for {@link Conv2d}. */
export interface Conv2dOptions {
  /** Generator for the initial weights and biases (default `new Random(0)`). */
  rng?: Random;
  /** Weight initialisation (default `"xavier"`, the chapter's); biases are PyTorch's default either way. */
  init?: ConvInit;
}

/**
 * `y = conv2d(x, weight) + bias` over NCHW tensors, with PyTorch's output size
 * `floor((H + 2p - k) / s) + 1`. Weights are initialised Xavier-uniform as in d2l (or He/Kaiming-uniform
 * with `init: "kaiming"`, see {@link convWeightBound}), biases uniform in ±1/sqrt(fan_in) as PyTorch does,
 * weights first then biases, from `options.rng`.
 *
 * FLOP counts passed to the GPU count multiply-adds only (2 per MAC; the bias adds and ReLU are not
 * counted): forward, input gradient and weight gradient `2*N*OC*OH*OW*IC*k*k` each, bias gradient
 * `N*OC*OH*OW` (one add per output element).
 *
 * @example
 * ```ts
 * import { Conv2d, requestGpu, Tensor } from "@nin/webgpu";
 * const gpu = await requestGpu();
 * const conv = new Conv2d(gpu, 1, 4, 3, 1, 1, { init: "kaiming" });
 * const y = conv.forward(Tensor.zeros(gpu, [2, 1, 5, 5]));
 * console.log(y.shape); // [2, 4, 5, 5]
 * gpu.destroy();
 * ```
 */
export class Conv2d extends Module {
  /** Filters, shape [outChannels, inChannels, k, k] (OIHW, PyTorch's layout). */
  readonly weight: Parameter;
  /** One bias per output channel, shape [outChannels]. */
  readonly bias: Parameter;
  #saved: Saved | null = null;

  /** Makes a convolution with fresh parameters on `gpu`. */
  constructor(
    readonly gpu: Gpu,
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: number,
    readonly stride = 1,
    readonly padding = 0,
    options: Conv2dOptions = {},
  ) {
    super();
    for (
      const [flag, value, min] of [
        ["inChannels", inChannels, 1],
        ["outChannels", outChannels, 1],
        ["kernelSize", kernelSize, 1],
        ["stride", stride, 1],
        ["padding", padding, 0],
      ] as const
    ) {
      if (!Number.isInteger(value) || value < min) {
        throw new NinError(`Conv2d: ${flag} must be an integer >= ${min}, got ${value}`);
      }
    }
    const rng = options.rng ?? new Random(0);
    const fanIn = inChannels * kernelSize * kernelSize;
    const fanOut = outChannels * kernelSize * kernelSize;
    const weightBound = convWeightBound(options.init ?? "xavier", fanIn, fanOut);
    const weights = rng.uniformArray(outChannels * fanIn, -weightBound, weightBound);
    const biasBound = 1 / Math.sqrt(fanIn);
    const biases = rng.uniformArray(outChannels, -biasBound, biasBound);
    const shape = [outChannels, inChannels, kernelSize, kernelSize];
    this.weight = new Parameter(Tensor.fromArray(gpu, weights, shape, "parameters"));
    this.bias = new Parameter(Tensor.fromArray(gpu, biases, [outChannels], "parameters"));
  }

  /** The parameters with PyTorch's names. */
  override ownParameters(): [string, Parameter][] {
    return [["weight", this.weight], ["bias", this.bias]];
  }

  /** `[N, outChannels, OH, OW]`; throws a {@link NinError} for a wrong rank, channel count or empty output. */
  outputShape(inputShape: readonly number[]): number[] {
    expectRank(this.#name(), { shape: inputShape }, 4, "[N, C, H, W]");
    const [n, channels, height, width] = inputShape;
    if (channels !== this.inChannels) {
      throw new NinError(
        `${this.#name()} expects ${this.inChannels} input channels, got ${channels} (input shape ${
          formatShape(inputShape)
        })`,
      );
    }
    const [outHeight, outWidth] = [height, width].map((size) =>
      Math.floor((size + 2 * this.padding - this.kernelSize) / this.stride) + 1
    );
    if (outHeight < 1 || outWidth < 1) {
      const smallest = Math.max(1, this.kernelSize - 2 * this.padding);
      throw new NinError(
        `${this.#name()} would produce an empty output for input shape ${
          formatShape(inputShape)
        }: height and width must be at least ${smallest}`,
      );
    }
    return [n, this.outChannels, outHeight, outWidth];
  }

  /** `conv2d(x) + bias`; in training mode remembers x for backward. */
  forward(x: Tensor, ctx: ForwardContext = this.context()): Tensor {
    return this.#forward(x, ctx, false);
  }

  /**
   * `relu(conv2d(x) + bias)` in one pass (the ReLU in the kernel's epilogue, no pre-activation tensor);
   * the following `backward` then takes the gradient with respect to that ReLU output. `Sequential` runs a
   * Conv2d followed by a ReLU this way.
   */
  forwardRelu(x: Tensor, ctx: ForwardContext = this.context()): Tensor {
    return this.#forward(x, ctx, true);
  }

  #forward(x: Tensor, ctx: ForwardContext, relu: boolean): Tensor {
    const g = this.geometry(x.shape);
    const passes = convPasses(this.gpu);
    const y = Tensor.empty(this.gpu, convOutputShape(g), "activations");
    const [weight, bias] = [this.weight.value, this.bias.value];
    this.clearSaved();
    let packedInput: GPUTexture | undefined;
    if (passes.recordForward) {
      passes.recordForward({ gpu: this.gpu, geometry: g, relu, x, weight, bias, y });
    } else {
      const { kernel, params, workgroups, operands } = passes.forward!(g, relu, this.gpu);
      const prepared = operands?.(this.gpu, x, weight, ctx.training);
      const inputs = prepared?.bindings ?? { x: x.buffer, w: weight.buffer };
      const buffers = { ...inputs, bias: bias.buffer, y: y.buffer };
      this.gpu.dispatch(kernel, buffers, params, workgroups, convFlops(g).gemm);
      prepared?.release();
      packedInput = prepared?.packedInput;
    }
    this.#saved = ctx.training ? { x, fusedOutput: relu ? y : null, geometry: g, packedInput } : null;
    return y;
  }

  /**
   * Adds the weight and bias gradients into `weight.grad` / `bias.grad` and returns the input gradient
   * (null when `needInputGrad` is false). After {@link Conv2d.forwardRelu}, `gradOutput` is the gradient
   * with respect to the ReLU's output.
   */
  backward(gradOutput: Tensor, needInputGrad = true): Tensor | null {
    const saved = this.#saved;
    if (!saved) throw new NinError(`${this.#name()}.backward called without a training-mode forward`);
    const { x, fusedOutput: y, geometry, packedInput } = saved;
    const shape = convOutputShape(geometry);
    if (formatShape(gradOutput.shape) !== formatShape(shape)) {
      throw new NinError(
        `${this.#name()}.backward expects a gradient of shape ${formatShape(shape)}, got ${
          formatShape(gradOutput.shape)
        }`,
      );
    }
    // The packed input is this backward's to release, whatever happens below.
    this.#saved = null;
    const release = () => packedInput && this.gpu.release(packedInput);
    const passes = convPasses(this.gpu);
    const unsupported = passes.unsupported?.(geometry, needInputGrad);
    if (unsupported) {
      release();
      throw new NinError(`${this.#name()}: ${unsupported}`);
    }
    const dw = this.weight.gradOrZeros();
    const db = this.bias.gradOrZeros();
    const masked = Tensor.empty(this.gpu, y ? gradOutput.shape : [1], "workspace");
    const dx = needInputGrad ? Tensor.empty(this.gpu, x.shape, "activation gradients") : null;
    try {
      passes.backward({
        gpu: this.gpu,
        geometry,
        x,
        packedInput,
        dy: gradOutput,
        y,
        masked,
        grad: y ? masked : gradOutput,
        weight: this.weight.value,
        dw,
        db,
        dx,
      });
    } catch (e) {
      dx?.dispose();
      throw e;
    } finally {
      // Safe to release now: later users of the pooled buffer and texture are recorded after these dispatches.
      masked.dispose();
      release();
    }
    return dx;
  }

  /** Forgets the remembered input and output (not owned by the layer) and frees the packed input (owned). */
  override clearSaved(): void {
    const packed = this.#saved?.packedInput;
    if (packed) this.gpu.release(packed);
    this.#saved = null;
  }

  /** Multiply-adds of one forward on `inputShape` (the input and weight gradients cost the same each). */
  macs(inputShape: readonly number[]): number {
    return convMacs(this.geometry(inputShape));
  }

  /** `Conv2d(in, out, k=.., s=.., p=..)` for error messages. */
  #name(): string {
    return `Conv2d(${this.inChannels}, ${this.outChannels}, k=${this.kernelSize}, s=${this.stride}, p=${this.padding})`;
  }

  /** The sizes of one call on `inputShape` (validated like {@link Conv2d.forward}'s input). */
  geometry(inputShape: readonly number[]): ConvGeometry {
    const [n, , outHeight, outWidth] = this.outputShape(inputShape);
    const [, inChannels, height, width] = inputShape;
    const { outChannels, kernelSize: kernel, stride, padding } = this;
    return { n, inChannels, height, width, outChannels, outHeight, outWidth, kernel, stride, padding };
  }
}
