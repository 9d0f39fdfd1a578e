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

/** Multiply-adds of one GEMM pass (forward, input gradient or weight gradient): N*OC*OH*OW*IC*k*k. */
export function convMacs(g: ConvGeometry): number {
  return g.n * g.outChannels * g.outHeight * g.outWidth * g.inChannels * g.kernel * g.kernel;
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
 * Conv2d records it.
 */
export interface ConvDispatch {
  /** The kernel. */
  kernel: Kernel;
  /** Its `Params`, by WGSL field name. */
  params: Record<string, number>;
  /** Workgroups to dispatch. */
  workgroups: number;
}

/** Inputs of a backward pass; `dw` and `db` are accumulated into (`+=`), the input gradient returned. */
export interface ConvBackward {
  /** The device. */
  gpu: Gpu;
  /** Sizes. */
  geometry: ConvGeometry;
  /** The forward's input. */
  x: Tensor;
  /** Gradient with respect to the output (the ReLU's output when fused). */
  dy: Tensor;
  /** The fused forward's output (post-ReLU), or null without a fused ReLU. */
  y: Tensor | null;
  /** Weights, OIHW. */
  weight: Tensor;
  /** Weight gradient, accumulated into. */
  dw: Tensor;
  /** Bias gradient, accumulated into. */
  db: Tensor;
  /** Whether to compute the input gradient (false for a first layer). */
  needInputGrad: boolean;
}

/** A kernel family's Conv2d passes. */
export interface ConvPasses {
  /** The forward over `g`, with the following ReLU fused into its epilogue when `relu`. */
  forward(g: ConvGeometry, relu: boolean): ConvDispatch;
  /** Records the backward; returns the input gradient, or null when not needed. */
  backward(args: ConvBackward): Tensor | null;
}
