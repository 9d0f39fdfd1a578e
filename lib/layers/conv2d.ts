/**
 * 2-d convolution with bias, as `torch.nn.Conv2d` (NCHW input, OIHW weight, zero padding, floor output
 * size), optionally fused with the ReLU that follows it.
 *
 * @module
 */
import type { Gpu, Kernel } from "../gpu.ts";
import { expectRank, Module, Parameter, workgroupsFor } from "../module.ts";
import { Tensor } from "../tensor.ts";
import { formatShape, NinError } from "../errors.ts";
import { Random } from "../random.ts";
import forwardCode from "../../kernels/conv2d_forward.wgsl" with { type: "text" };
import backwardInputCode from "../../kernels/conv2d_backward_input.wgsl" with { type: "text" };
import backwardWeightCode from "../../kernels/conv2d_backward_weight.wgsl" with { type: "text" };
import backwardBiasCode from "../../kernels/conv2d_backward_bias.wgsl" with { type: "text" };
import commonCode from "../../kernels/conv2d_common.wgsl" with { type: "text" };

const FORWARD: Kernel = { name: "conv2d_forward", code: commonCode + forwardCode };
const FORWARD_RELU: Kernel = {
  name: "conv2d_forward_relu",
  code: commonCode + forwardCode,
  constants: { fuseRelu: 1 },
};
const BACKWARD_INPUT: Kernel = { name: "conv2d_backward_input", code: commonCode + backwardInputCode };
/** The input gradient with 96 instead of 128 channels per workgroup, for layers where that wastes fewer lanes. */
const BACKWARD_INPUT_96: Kernel = {
  name: "conv2d_backward_input_96ch",
  code: commonCode + backwardInputCode,
  constants: { channelQuads: 3 },
};
const BACKWARD_WEIGHT: Kernel = { name: "conv2d_backward_weight", code: commonCode + backwardWeightCode };
const BACKWARD_BIAS: Kernel = { name: "conv2d_backward_bias", code: backwardBiasCode };
/** The bias gradient of the ReLU-fused layer, which also writes the masked output gradient. */
const BACKWARD_BIAS_RELU: Kernel = {
  name: "conv2d_backward_bias_relu",
  code: backwardBiasCode,
  entryPoint: "masked",
};

// Output block of one workgroup, as fixed by the kernels' constants.
const FORWARD_BLOCK = { channels: 128, positions: 32 };
const BACKWARD_INPUT_BLOCK = { pixels: 32 };
const BACKWARD_WEIGHT_BLOCK = { columns: 128, channels: 32 };
/** Output channels per workgroup of the bias gradient (one per invocation). */
const BACKWARD_BIAS_BLOCK = 8;

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
 * import { Conv2d, requestGpu, Tensor } from "../../mod.ts";
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
  /**
   * When true, `forward` returns `relu(conv(x))` (the ReLU in the kernel's epilogue, no pre-activation tensor)
   * and `backward` takes the gradient with respect to that ReLU output: the bias-gradient kernel masks it by
   * (output > 0) once and hands it to the weight and input gradient kernels, so the ReLU needs no pass of
   * its own. Set by `Sequential` for a Conv2d followed by a ReLU.
   */
  fuseRelu = false;
  #input: Tensor | null = null;
  #output: Tensor | null = null;

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
    this.weight = new Parameter(
      Tensor.fromArray(gpu, weights, [outChannels, inChannels, kernelSize, kernelSize]),
    );
    this.bias = new Parameter(Tensor.fromArray(gpu, biases, [outChannels]));
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

  /** `conv2d(x) + bias` (then ReLU when {@link Conv2d.fuseRelu}); in training mode remembers x (and y). */
  forward(x: Tensor): Tensor {
    const shape = this.outputShape(x.shape);
    const y = Tensor.empty(this.gpu, shape, "conv2d output");
    const [n, , outHeight, outWidth] = shape;
    this.gpu.dispatch(
      this.fuseRelu ? FORWARD_RELU : FORWARD,
      [x.buffer, this.weight.value.buffer, this.bias.value.buffer, y.buffer],
      this.#params(x.shape, shape),
      workgroupsFor(this.outChannels, FORWARD_BLOCK.channels) *
        workgroupsFor(n * outHeight * outWidth, FORWARD_BLOCK.positions),
      this.#macFlops(shape),
    );
    this.#input = this.training ? x : null;
    this.#output = this.training && this.fuseRelu ? y : null;
    return y;
  }

  /**
   * Adds the weight and bias gradients into `weight.grad` / `bias.grad` and returns the input gradient
   * (null when `needInputGrad` is false). With {@link Conv2d.fuseRelu}, `gradOutput` is the gradient with
   * respect to the ReLU's output.
   */
  backward(gradOutput: Tensor, needInputGrad = true): Tensor | null {
    const x = this.#input;
    // The ReLU-fused path is taken when the forward was fused (it saved its output).
    const y = this.#output;
    if (!x) {
      throw new NinError(`${this.#name()}.backward called without a training-mode forward`);
    }
    const shape = this.outputShape(x.shape);
    if (formatShape(gradOutput.shape) !== formatShape(shape)) {
      throw new NinError(
        `${this.#name()}.backward expects a gradient of shape ${formatShape(shape)}, got ${
          formatShape(gradOutput.shape)
        }`,
      );
    }
    this.clearSaved();
    const params = this.#params(x.shape, shape);
    const [n, , outHeight, outWidth] = shape;
    // With the fused ReLU, the bias kernel masks dy by (output > 0) once, into a temporary the GEMMs read.
    const masked = y ? Tensor.empty(this.gpu, shape, "conv2d masked output gradient") : null;
    this.gpu.dispatch(
      y ? BACKWARD_BIAS_RELU : BACKWARD_BIAS,
      y
        ? [gradOutput.buffer, this.bias.gradOrZeros().buffer, y.buffer, masked!.buffer]
        : [gradOutput.buffer, this.bias.gradOrZeros().buffer],
      [n, this.outChannels, outHeight * outWidth],
      workgroupsFor(this.outChannels, BACKWARD_BIAS_BLOCK),
      gradOutput.size,
    );
    const g = masked ?? gradOutput;
    const columns = this.inChannels * this.kernelSize * this.kernelSize;
    this.gpu.dispatch(
      BACKWARD_WEIGHT,
      [x.buffer, g.buffer, this.weight.gradOrZeros().buffer],
      params,
      workgroupsFor(columns, BACKWARD_WEIGHT_BLOCK.columns) *
        workgroupsFor(this.outChannels, BACKWARD_WEIGHT_BLOCK.channels),
      this.#macFlops(shape),
    );
    let dx: Tensor | null = null;
    if (needInputGrad) {
      dx = Tensor.empty(this.gpu, x.shape, "conv2d input gradient");
      const [, , height, width] = x.shape;
      // Pixels are numbered by residue class mod the stride, on a grid of ceil(h / s) x ceil(w / s) per class.
      const s = this.stride;
      const pixels = s * s * n * Math.ceil(height / s) * Math.ceil(width / s);
      // Blocks of 128 or 96 input channels, whichever leaves fewer idle (e.g. 96 for 96 channels).
      const idle = (block: number) => workgroupsFor(this.inChannels, block) * block - this.inChannels;
      const channels = idle(96) < idle(128) ? 96 : 128;
      this.gpu.dispatch(
        channels === 96 ? BACKWARD_INPUT_96 : BACKWARD_INPUT,
        [g.buffer, this.weight.value.buffer, dx.buffer],
        params,
        workgroupsFor(this.inChannels, channels) * workgroupsFor(pixels, BACKWARD_INPUT_BLOCK.pixels),
        this.#macFlops(shape),
      );
    }
    // Safe to release now: later users of the pooled buffer are recorded after these dispatches.
    masked?.dispose();
    return dx;
  }

  /** Forgets the remembered input and output (they are not owned by the layer). */
  override clearSaved(): void {
    this.#input = null;
    this.#output = null;
  }

  /** `Conv2d(in, out, k=.., s=.., p=..)` for error messages. */
  #name(): string {
    return `Conv2d(${this.inChannels}, ${this.outChannels}, k=${this.kernelSize}, s=${this.stride}, p=${this.padding})`;
  }

  /** The kernels' uniform: input and output geometry. */
  #params(inputShape: readonly number[], outputShape: readonly number[]): number[] {
    const [n, inChannels, height, width] = inputShape;
    const [, outChannels, outHeight, outWidth] = outputShape;
    return [
      n,
      inChannels,
      height,
      width,
      outChannels,
      outHeight,
      outWidth,
      this.kernelSize,
      this.stride,
      this.padding,
    ];
  }

  /** 2 * multiply-adds of one pass: 2*N*OC*OH*OW*IC*k*k (bias adds and ReLU not counted). */
  #macFlops(outputShape: readonly number[]): number {
    const [n, outChannels, outHeight, outWidth] = outputShape;
    return 2 * n * outChannels * outHeight * outWidth * this.inChannels * this.kernelSize * this.kernelSize;
  }
}
