/**
 * What a kernel family implements for Conv2d: its forward and backward passes over one geometry. The layer
 * (`conv2d.ts`) owns parameters, shape rules and saved state, and records the forward dispatch a family
 * describes; a family (`conv2d_software.ts`, `conv2d_gpu.ts`) records its backward passes, and
 * `lib/kernels.ts` picks the family for a device.
 *
 * @module
 */
import type { Gpu } from "../gpu/device.ts";
import type { Kernel } from "../gpu/kernel.ts";
import type { Tensor } from "../tensor.ts";

/** One convolution call's sizes: input `[n, inChannels, height, width]`, output `[n, outChannels, outHeight, outWidth]`. */
export interface ConvGeometry {
  /** Batch size. */
  n: number;
  /** Input channels. */
  inChannels: number;
  /** Input height. */
  height: number;
  /** Input width. */
  width: number;
  /** Output channels. */
  outChannels: number;
  /** Output height. */
  outHeight: number;
  /** Output width. */
  outWidth: number;
  /** Square kernel side. */
  kernel: number;
  /** Stride. */
  stride: number;
  /** Zero padding on every side. */
  padding: number;
}

/** The output shape `[n, outChannels, outHeight, outWidth]` (also the output gradient's). */
export function convOutputShape(g: ConvGeometry): number[] {
  return [g.n, g.outChannels, g.outHeight, g.outWidth];
}

/**
 * The stride-1 convolution whose forward over the output gradient is the input gradient of a stride-1 `g`:
 * the output gradient padded by k - 1 - p, read with the flipped, transposed weights (`[in, out, k, k]`).
 */
export function transposedGeometry(g: ConvGeometry): ConvGeometry {
  return {
    n: g.n,
    inChannels: g.outChannels,
    height: g.outHeight,
    width: g.outWidth,
    outChannels: g.inChannels,
    outHeight: g.height,
    outWidth: g.width,
    kernel: g.kernel,
    stride: 1,
    padding: g.kernel - 1 - g.padding,
  };
}

/** Multiply-adds of one GEMM pass (forward, input gradient or weight gradient): N*OC*OH*OW*IC*k*k. */
export function convMacs(g: ConvGeometry): number {
  return g.n * g.outChannels * g.outHeight * g.outWidth * g.inChannels * g.kernel * g.kernel;
}

/**
 * The FLOPs a pass over `g` declares, the same in every family: each GEMM pass (forward, input gradient,
 * weight gradient) 2 per multiply-add, the bias gradient one add per element of the output gradient. A
 * family's own overhead (weight flips, reductions of split partial sums) counts 0.
 */
export function convFlops(g: ConvGeometry): { gemm: number; bias: number } {
  return { gemm: 2 * convMacs(g), bias: g.n * g.outChannels * g.outHeight * g.outWidth };
}

/** The conv kernels' `Params` uniform, by WGSL field name. */
export function convUniform(g: ConvGeometry): Record<string, number> {
  return {
    n: g.n,
    in_channels: g.inChannels,
    height: g.height,
    width: g.width,
    out_channels: g.outChannels,
    out_height: g.outHeight,
    out_width: g.outWidth,
    kernel: g.kernel,
    stride: g.stride,
    padding: g.padding,
  };
}

/**
 * A family's forward for one geometry: the kernel, its params and workgroup count. Every forward kernel
 * binds `x`, `w` (OIHW), `bias` and `y`, and computes y = conv(x, w) + bias (then the ReLU when fused);
 * Conv2d records it. A kernel that reads x and w in a layout of its own gets them from `operands`.
 */
export interface ConvDispatch {
  /** The kernel. */
  kernel: Kernel;
  /** Its `Params`, by WGSL field name. */
  params: Record<string, number>;
  /** Workgroups to dispatch. */
  workgroups: number;
  /**
   * Records what turns the input and the OIHW weights into the kernel's own operands (e.g. packed
   * textures), returning its bindings for them and a release to call once the forward is recorded; absent:
   * the kernel binds the buffers `x` and `w` themselves. With `keepInput` (a training-mode forward) the
   * packed input, if any, outlives the release: it is returned for the backward to read.
   */
  operands?: (gpu: Gpu, x: Tensor, weight: Tensor, keepInput: boolean) => ConvOperands;
}

/** What the memory accounting calls a forward's packed inputs kept for the backward ({@link ConvOperands}). */
export const PACKED_INPUTS = "packed inputs";

/** The operands a {@link ConvDispatch} prepared: bindings by WGSL name, and what frees them. */
export interface ConvOperands {
  /** Bindings by WGSL variable name. */
  bindings: Record<string, GPUBuffer | GPUTextureView>;
  /** Returns the workspaces to the pool (safe once the dispatches that read them are recorded). */
  release(): void;
  /**
   * The packed input, kept for the backward ({@link ConvBackward.packedInput}) when asked to; its owner
   * releases it with {@link Gpu.release}.
   */
  packedInput?: GPUTexture;
}

/** Inputs of a forward a family records itself ({@link ConvPasses.recordForward}). */
export interface ConvForward {
  /** The device. */
  gpu: Gpu;
  /** Sizes. */
  geometry: ConvGeometry;
  /** Whether the following ReLU is fused into the forward. */
  relu: boolean;
  /** Input, NCHW. */
  x: Tensor;
  /** Weights, OIHW. */
  weight: Tensor;
  /** Bias. */
  bias: Tensor;
  /** The output to write, `[n, outChannels, outHeight, outWidth]`. */
  y: Tensor;
}

/**
 * Inputs of a backward pass, with what every family shares prepared by Conv2d: the masked-gradient workspace
 * and the input gradient. `dw` and `db` are accumulated into (`+=`), `dx` written.
 */
export interface ConvBackward {
  /** The device. */
  gpu: Gpu;
  /** Sizes. */
  geometry: ConvGeometry;
  /** The forward's input. */
  x: Tensor;
  /** The forward's input as its texture-fed kernel packed it ({@link ConvOperands.packedInput}), if it did. */
  packedInput?: GPUTexture;
  /** Gradient with respect to the output (the ReLU's output when fused). */
  dy: Tensor;
  /** The fused forward's output (post-ReLU), or null without a fused ReLU. */
  y: Tensor | null;
  /**
   * Where the bias pass writes dy masked by (y > 0) when the ReLU is fused, once for both GEMMs; without the
   * ReLU a one-element placeholder the bias pass binds but never touches.
   */
  masked: Tensor;
  /** The output gradient the weight and input gradients read: `masked` with a fused ReLU, else `dy`. */
  grad: Tensor;
  /** Weights, OIHW. */
  weight: Tensor;
  /** Weight gradient, accumulated into. */
  dw: Tensor;
  /** Bias gradient, accumulated into. */
  db: Tensor;
  /** The input gradient to write, or null when not needed (a first layer). */
  dx: Tensor | null;
}

/**
 * The bias gradient kernels' bindings of the fused ReLU's backward (kernels/conv2d_relu_mask.wgsl): `dy`, the
 * saved output `saved` and the masked gradient `g` (`dy` stands in for the unused `saved` without the ReLU).
 */
export function reluMaskBindings(args: ConvBackward): Record<string, GPUBuffer> {
  return { dy: args.dy.buffer, saved: (args.y ?? args.dy).buffer, g: args.masked.buffer };
}

/** A kernel family's Conv2d passes. */
export interface ConvPasses {
  /**
   * The forward over `g` on `gpu` as one dispatch, with the following ReLU fused into its epilogue when
   * `relu`; Conv2d records it. A family without it records its forward itself ({@link ConvPasses.recordForward}).
   */
  forward?(g: ConvGeometry, relu: boolean, gpu: Gpu): ConvDispatch;
  /** Records y = conv(x, w) + bias (then the ReLU when `relu`): a forward of several dispatches. */
  recordForward?(args: ConvForward): void;
  /**
   * Why this family cannot run the backward of `g` (the end of Conv2d's error message), or undefined when it
   * can; asked before any workspace is allocated or anything recorded.
   */
  unsupported?(g: ConvGeometry, needInputGrad: boolean): string | undefined;
  /** Records the bias, weight and (when `dx` is given) input gradients. */
  backward(args: ConvBackward): void;
}
