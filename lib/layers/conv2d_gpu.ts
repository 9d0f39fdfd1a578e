/**
 * Conv2d's passes in the "gpu" kernel family (`kernels/gpu/`), shaped for real GPUs rather than llvmpipe:
 * 256-invocation workgroups, 64 x 64 output tiles staged in workgroup memory, a split-K weight gradient and
 * a parallel bias reduction, so that large layers launch hundreds to thousands of workgroups.
 *
 * - Forward: implicit GEMM, M = N*OH*OW positions x OC channels, K = IC*k*k, bias and ReLU in the epilogue.
 * - Input gradient (stride 1 only; NiN's one strided conv is its first layer, which needs none): the weights
 *   are flipped into the OIHW weights of the transposed convolution ([IC, OC, k, k], a workspace), then the
 *   forward kernel runs on the output gradient with padding k - 1 - p and no bias. A strided layer asked
 *   for an input gradient is refused (`unsupported`: Conv2d throws a NinError before any work).
 * - Weight gradient: split-K GEMM over slices of the N*OH*OW positions into a workspace [S, OC, IC*k*k],
 *   then a fixed-order reduction adds the slices into dw (one slice: the GEMM adds into dw directly).
 * - Bias gradient: per (channel, slice) tree reductions into [S, OC] partials, then the same fixed-order
 *   reduction into db. With the fused ReLU this pass also writes dy masked by (saved output > 0), which the
 *   weight and input gradients then read (the mask is applied once, not inside the GEMM loads).
 *
 * FLOPs as every family counts them (`convFlops`): the input gradient's GEMM counts as the forward's,
 * whatever its padding; the weight flip and the reductions of split partial sums are this family's overhead,
 * not the layer's arithmetic: they count 0.
 *
 * @module
 */
import type { Gpu } from "../gpu/device.ts";
import { constantOf, type Kernel, kernel } from "../gpu/kernel.ts";
import { tunedTarget, WEIGHT_GRADIENT_KERNELS } from "../tuning.ts";
import { workgroupsFor } from "../module.ts";
import { Tensor } from "../tensor.ts";
import {
  convFlops,
  type ConvGeometry,
  type ConvPasses,
  convUniform,
  reluMaskBindings,
  transposedGeometry,
} from "./conv2d_passes.ts";
import forwardCode from "../../kernels/gpu/conv2d_gpu_forward.wgsl" with { type: "text" };
import flipCode from "../../kernels/gpu/conv2d_gpu_flip.wgsl" with { type: "text" };
import weightGradCode from "../../kernels/gpu/conv2d_gpu_weight_grad.wgsl" with { type: "text" };
import biasGradCode from "../../kernels/gpu/conv2d_gpu_bias_grad.wgsl" with { type: "text" };
import reduceCode from "../../kernels/gpu/conv2d_gpu_reduce.wgsl" with { type: "text" };

const FORWARD = kernel("conv2d_gpu_forward", forwardCode);
const FORWARD_RELU = kernel("conv2d_gpu_forward_relu", forwardCode, { constants: { fuseRelu: 1 } });
/** The input gradient: the forward kernel, without bias, over the output gradient and flipped weights. */
const BACKWARD_INPUT = kernel("conv2d_gpu_backward_input", forwardCode, { constants: { has_bias: 0 } });
const FLIP = kernel("conv2d_gpu_backward_input_flip", flipCode, { constants: { WORKGROUP_SIZE: 256 } });
/** The weight gradient's GEMM and split reduction, named from the prefix of what lib/tuning.ts times. */
const WEIGHT_GRAD = kernel(WEIGHT_GRADIENT_KERNELS, weightGradCode);
const REDUCE_CONSTANTS = { constants: { WORKGROUP_SIZE: 256 } };
const WEIGHT_REDUCE = kernel(`${WEIGHT_GRADIENT_KERNELS}_reduce`, reduceCode, REDUCE_CONSTANTS);
const BIAS_GRAD = kernel("conv2d_gpu_backward_bias", biasGradCode);
/** The bias gradient of the ReLU-fused layer, which also writes the masked output gradient. */
const BIAS_GRAD_RELU = kernel("conv2d_gpu_backward_bias_relu", biasGradCode, { constants: { masked: 1 } });
const BIAS_REDUCE = kernel("conv2d_gpu_backward_bias_reduce", reduceCode, REDUCE_CONSTANTS);

/** Output tile of the GEMM kernels: TILE x TILE per workgroup (16 x 16 invocations, 4 x 4 each). */
const TILE = constantOf(FORWARD, "TILE");
/** Reduction steps per trip through workgroup memory; split-K slice lengths are multiples of it. */
const CHUNK = constantOf(FORWARD, "CHUNK");
/** Workgroups the split passes aim for: two waves of 528 (four per SM of a 132-SM H200). */
const TARGET_WORKGROUPS = 1056;
/** A slice of the weight or bias reduction covers at least this many positions (one per invocation). */
const MIN_SLICE = BIAS_GRAD.workgroupSize;
/**
 * Largest split-K workspace (slices x OC x IC*k*k floats), and never more than the device binds; the slice
 * count shrinks to fit.
 */
const MAX_WORKSPACE_BYTES = 64 * 2 ** 20;

/** A reduction over `total` positions cut into `slices` contiguous ranges of `sliceLength`. */
interface Split {
  slices: number;
  sliceLength: number;
}

/** The family's `Params` uniform for `g`, with the split fields (default: one slice). */
function uniform(
  g: ConvGeometry,
  over: Partial<Record<string, number>> = {},
): Record<string, number> {
  return { ...convUniform(g), slices: 1, slice_length: 0, direct: 0, ...over };
}

/** Workgroups of a GEMM over a rows x columns output in TILE x TILE tiles. */
function gemmTiles(rows: number, columns: number): number {
  return workgroupsFor(rows, TILE) * workgroupsFor(columns, TILE);
}

/** `total` cut into at most `wanted` slices whose length is a multiple of `multiple`, none empty. */
function split(total: number, wanted: number, multiple: number): Split {
  const sliceLength = Math.ceil(Math.ceil(total / Math.max(1, wanted)) / multiple) * multiple;
  return { slices: Math.ceil(total / sliceLength), sliceLength };
}

/**
 * The weight gradient's split-K: enough slices for `target` workgroups (this adapter's tuned choice, see
 * lib/tuning.ts, else TARGET_WORKGROUPS), each >= MIN_SLICE positions, workspace capped.
 */
function weightGradSplit(g: ConvGeometry, target: number, maxBindingBytes: number): Split {
  const positions = g.n * g.outHeight * g.outWidth;
  const depth = g.inChannels * g.kernel * g.kernel;
  const bytesPerSlice = g.outChannels * depth * 4;
  return split(
    positions,
    Math.min(
      Math.ceil(target / gemmTiles(g.outChannels, depth)),
      Math.ceil(positions / MIN_SLICE),
      Math.max(1, Math.floor(Math.min(MAX_WORKSPACE_BYTES, maxBindingBytes) / bytesPerSlice)),
    ),
    CHUNK,
  );
}

/** The bias gradient's slices: enough (channel, slice) workgroups for the target, each >= MIN_SLICE. */
function biasGradSplit(g: ConvGeometry): Split {
  const positions = g.n * g.outHeight * g.outWidth;
  return split(
    positions,
    Math.min(Math.ceil(TARGET_WORKGROUPS / g.outChannels), Math.ceil(positions / MIN_SLICE)),
    1,
  );
}

/** Records `out[i] += sum over slices of partial[s, i]` in slice order with `k`, a conv2d_gpu_reduce.wgsl. */
function reduce(gpu: Gpu, k: Kernel, partial: Tensor, out: Tensor, slices: number): void {
  const count = out.size;
  gpu.dispatch(k, { partial: partial.buffer, out: out.buffer }, { count, slices }, workgroupsFor(count, k));
}

/** The "gpu" family's convolution passes. */
export const GPU_CONV: ConvPasses = {
  /** The forward (bias, and ReLU when fused, in the epilogue). */
  forward: (g, relu) => ({
    kernel: relu ? FORWARD_RELU : FORWARD,
    params: uniform(g),
    workgroups: gemmTiles(g.n * g.outHeight * g.outWidth, g.outChannels),
  }),

  /** Input gradients of strided convolutions: this family runs the input gradient at stride 1 only. */
  unsupported: (g, needInputGrad) =>
    needInputGrad && g.stride !== 1
      ? "the gpu kernel family computes input gradients of stride-1 convolutions only " +
        `(this one has stride ${g.stride}); a strided layer must come first (it needs no input gradient), ` +
        "or use the software kernels"
      : undefined,

  /**
   * Records the bias gradient (masking dy into the workspace when the ReLU is fused), the weight gradient,
   * and the input gradient when asked.
   */
  backward(args): void {
    const { gpu, geometry: g, x, y, grad, weight, dw, db, dx } = args;
    const flops = convFlops(g);

    // Bias gradient: per (channel, slice) partial sums, then the fixed-order reduction into db.
    const bias = biasGradSplit(g);
    const biasPartials = Tensor.empty(gpu, [bias.slices, g.outChannels], "workspace");
    gpu.dispatch(
      y ? BIAS_GRAD_RELU : BIAS_GRAD,
      { ...reluMaskBindings(args), partial: biasPartials.buffer },
      uniform(g, { slices: bias.slices, slice_length: bias.sliceLength }),
      g.outChannels * bias.slices,
      flops.bias,
    );
    reduce(gpu, BIAS_REDUCE, biasPartials, db, bias.slices);

    // Weight gradient: split-K GEMM into a workspace and a fixed-order reduction, or straight into dw.
    const depth = g.inChannels * g.kernel * g.kernel;
    const weightSplit = weightGradSplit(
      g,
      tunedTarget(gpu, g) ?? TARGET_WORKGROUPS,
      gpu.limits.maxStorageBufferBindingSize,
    );
    const direct = weightSplit.slices === 1;
    const weightPartials = direct
      ? null
      : Tensor.empty(gpu, [weightSplit.slices, g.outChannels, depth], "workspace");
    gpu.dispatch(
      WEIGHT_GRAD,
      { x: x.buffer, g: grad.buffer, out: (weightPartials ?? dw).buffer },
      uniform(g, {
        slices: weightSplit.slices,
        slice_length: weightSplit.sliceLength,
        direct: direct ? 1 : 0,
      }),
      gemmTiles(g.outChannels, depth) * weightSplit.slices,
      flops.gemm,
    );
    if (weightPartials) reduce(gpu, WEIGHT_REDUCE, weightPartials, dw, weightSplit.slices);

    // Input gradient: dx = conv(grad, flipped weights) with padding k - 1 - p, the transposed convolution.
    let flipped: Tensor | null = null;
    if (dx) {
      flipped = Tensor.empty(gpu, [g.inChannels, g.outChannels, g.kernel, g.kernel], "workspace");
      gpu.dispatch(
        FLIP,
        { w: weight.buffer, wf: flipped.buffer },
        { count: flipped.size, in_channels: g.inChannels, out_channels: g.outChannels, kernel: g.kernel },
        workgroupsFor(flipped.size, FLIP),
      );
      const transposed = transposedGeometry(g);
      // No bias: the weights stand in for the unused binding.
      gpu.dispatch(
        BACKWARD_INPUT,
        { x: grad.buffer, w: flipped.buffer, bias: weight.buffer, y: dx.buffer },
        uniform(transposed),
        gemmTiles(g.n * g.height * g.width, g.inChannels),
        flops.gemm,
      );
    }
    // Safe to release now: later users of the pooled buffers are recorded after these dispatches.
    for (const t of [biasPartials, weightPartials, flipped]) t?.dispose();
  },
};
