/**
 * Conv2d's passes in the "gpu" kernel family (`kernels/gpu/`), shaped for real GPUs rather than llvmpipe:
 * GEMMs in workgroup tiles staged in workgroup memory, each pass in a choice of (GEMM candidate of the table
 * in `conv2d_gpu_candidates.ts`, split-K target): tuned per adapter (lib/tuning.ts), else the paper model's
 * fastest, so that large layers launch hundreds to thousands of workgroups and small ones split their
 * reduction; and a parallel bias reduction. The kernel size, stride and padding are compiled into each GEMM
 * pipeline (override constants, one pipeline per candidate and window geometry).
 *
 * - Forward: implicit GEMM, M = N*OH*OW positions x OC channels, K = IC*k*k, bias and ReLU in the epilogue;
 *   split, partial outputs [S, N, OC, OH, OW] into a workspace, then a fixed-order reduction adds bias and
 *   slices and applies the ReLU. A 1 x 1 layer may run the pointwise candidate (a plain GEMM).
 * - Input gradient (stride 1 only; NiN's one strided conv is its first layer, which needs none): the weights
 *   are flipped into the OIHW weights of the transposed convolution ([IC, OC, k, k], a workspace), then the
 *   forward kernel (and its split) runs on the output gradient with padding k - 1 - p and no bias. A strided layer asked
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
import { type Kernel, kernel } from "../gpu/kernel.ts";
import { choiceName, type PassChoice, SPLIT_TARGETS, tunedChoice } from "../tuning.ts";
import { WAVE_WORKGROUPS } from "../gpu/wave.ts";
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
import {
  appliesTo,
  candidateNamed,
  type DeviceModel,
  estimateSeconds,
  executedFlops,
  fitsDevice,
  GEMM_CANDIDATES,
  type GemmCandidate,
  type GemmPass,
  gemmSize,
  H200,
  shapedCode,
  type Split,
  tilesOf,
} from "./conv2d_gpu_candidates.ts";
import forwardCode from "../../kernels/gpu/conv2d_gpu_forward.wgsl" with { type: "text" };
import flipCode from "../../kernels/gpu/conv2d_gpu_flip.wgsl" with { type: "text" };
import weightGradCode from "../../kernels/gpu/conv2d_gpu_weight_grad.wgsl" with { type: "text" };
import biasGradCode from "../../kernels/gpu/conv2d_gpu_bias_grad.wgsl" with { type: "text" };
import reduceCode from "../../kernels/gpu/conv2d_gpu_reduce.wgsl" with { type: "text" };
import pointwiseCode from "../../kernels/gpu/conv2d_gpu_pointwise.wgsl" with { type: "text" };
import forwardReduceCode from "../../kernels/gpu/conv2d_gpu_forward_reduce.wgsl" with { type: "text" };

/**
 * The GEMM kernels, by name: source (and a pointwise candidate's) and the override constants of the variant
 * (the candidate's shape and the layer's window are added per pipeline, see {@link gemmKernel}).
 */
const GEMM_KERNELS = {
  conv2d_gpu_forward: { code: forwardCode, pointwise: pointwiseCode, constants: {} },
  conv2d_gpu_forward_relu: { code: forwardCode, pointwise: pointwiseCode, constants: { fuseRelu: 1 } },
  /** The input gradient: the forward kernel, without bias, over the output gradient and flipped weights. */
  conv2d_gpu_backward_input: { code: forwardCode, pointwise: pointwiseCode, constants: { has_bias: 0 } },
  conv2d_gpu_backward_weight: { code: weightGradCode, pointwise: null, constants: {} },
} as const;
const FLIP = kernel("conv2d_gpu_backward_input_flip", flipCode, { constants: { WORKGROUP_SIZE: 256 } });
const REDUCE_CONSTANTS = { constants: { WORKGROUP_SIZE: 256 } };
const WEIGHT_REDUCE = kernel("conv2d_gpu_backward_weight_reduce", reduceCode, REDUCE_CONSTANTS);
/** The second passes of a split forward and input gradient: bias, slices in order, ReLU. */
const OUTPUT_REDUCE = {
  conv2d_gpu_forward: kernel("conv2d_gpu_forward_reduce", forwardReduceCode, REDUCE_CONSTANTS),
  conv2d_gpu_forward_relu: kernel("conv2d_gpu_forward_relu_reduce", forwardReduceCode, {
    constants: { ...REDUCE_CONSTANTS.constants, fuseRelu: 1 },
  }),
  conv2d_gpu_backward_input: kernel("conv2d_gpu_backward_input_reduce", forwardReduceCode, {
    constants: { ...REDUCE_CONSTANTS.constants, has_bias: 0 },
  }),
} as const;
const BIAS_GRAD = kernel("conv2d_gpu_backward_bias", biasGradCode);
/** The bias gradient of the ReLU-fused layer, which also writes the masked output gradient. */
const BIAS_GRAD_RELU = kernel("conv2d_gpu_backward_bias_relu", biasGradCode, { constants: { masked: 1 } });
const BIAS_REDUCE = kernel("conv2d_gpu_backward_bias_reduce", reduceCode, REDUCE_CONSTANTS);

/** Workgroups the split passes aim for by default: two waves. */
const TARGET_WORKGROUPS = 2 * WAVE_WORKGROUPS;
/**
 * A slice of a split reduction covers at least this many steps (the bias gradient's: one position per
 * invocation).
 */
const MIN_SLICE = BIAS_GRAD.workgroupSize;
/**
 * Largest split-K workspace (slices x OC x IC*k*k floats), and never more than the device binds; the slice
 * count shrinks to fit.
 */
const MAX_WORKSPACE_BYTES = 64 * 2 ** 20;

/** Compiled variants, one per (kernel, candidate, window): a layer's pipelines are made once. */
const variants = new Map<string, Kernel>();

/** The GEMM kernel `name` in candidate `c`'s shape with `g`'s window compiled in. */
function gemmKernel(name: keyof typeof GEMM_KERNELS, c: GemmCandidate, g: ConvGeometry): Kernel {
  const key = `${name} ${c.name} k${g.kernel} s${g.stride} p${g.padding}`;
  let k = variants.get(key);
  if (!k) {
    const { code, pointwise, constants } = GEMM_KERNELS[name];
    if (c.pointwise && !pointwise) throw new Error(`${name} has no pointwise form (${c.name})`);
    k = kernel(name, shapedCode(c.pointwise ? pointwise! : code, c, name), {
      constants: { ...constants, KSIZE: g.kernel, STRIDE: g.stride, PAD: g.padding },
    });
    variants.set(key, k);
  }
  return k;
}

/** The family's `Params` uniform for `g`, with the split fields (default: one slice). */
function uniform(
  g: ConvGeometry,
  over: Partial<Record<string, number>>,
): Record<string, number> {
  // The window (kernel, stride, padding) is compiled into the GEMM pipelines, not passed.
  const { kernel: _k, stride: _s, padding: _p, ...sizes } = convUniform(g);
  return { ...sizes, direct: 0, ...over };
}

/** `total` cut into at most `wanted` slices whose length is a multiple of `multiple`, none empty. */
function split(total: number, wanted: number, multiple: number): Split {
  const sliceLength = Math.ceil(Math.ceil(total / Math.max(1, wanted)) / multiple) * multiple;
  return { slices: Math.ceil(total / sliceLength), sliceLength };
}

/**
 * The split-K of a pass of `g` in candidate `c`: enough slices of the reduction for `target` workgroups,
 * each >= MIN_SLICE steps and a whole number of chunks, the workspace (slices x the pass's output) capped.
 */
function gemmSplit(
  g: ConvGeometry,
  pass: GemmPass,
  c: GemmCandidate,
  target: number,
  maxBindingBytes: number,
): Split {
  const size = gemmSize(g, pass);
  const bytesPerSlice = size.rows * size.channels * 4;
  return split(
    size.depth,
    Math.min(
      Math.ceil(target / tilesOf(c, size)),
      Math.ceil(size.depth / MIN_SLICE),
      Math.max(1, Math.floor(Math.min(MAX_WORKSPACE_BYTES, maxBindingBytes) / bytesPerSlice)),
    ),
    c.chunk,
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

/** A pass's candidate and (weight gradient) split, resolved for a device. */
interface Resolved {
  choice: PassChoice;
  candidate: GemmCandidate;
  split: Split;
}

/** `choice` (default: the one in force) for a pass of `g`, resolved on `gpu`. */
function resolve(
  gpu: Gpu,
  g: ConvGeometry,
  pass: GemmPass,
  choice: PassChoice = passChoice(gpu, g, pass),
): Resolved {
  const candidate = candidateNamed(choice.candidate)!;
  const split = gemmSplit(g, pass, candidate, choice.target, gpu.limits.maxStorageBufferBindingSize);
  return { choice, candidate, split };
}

/**
 * The choice among `candidates` and split-K targets that the paper model
 * (`estimateSeconds`, a large GPU) finds fastest for a pass of `g`, with its estimate in seconds.
 */
function fastestByModel(
  gpu: Gpu,
  g: ConvGeometry,
  pass: GemmPass,
  candidates: readonly GemmCandidate[],
  device: DeviceModel = H200,
): { choice: PassChoice; seconds: number } {
  let best: { choice: PassChoice; seconds: number } | undefined;
  for (const c of candidates) {
    for (const target of SPLIT_TARGETS) {
      const choice = { candidate: c.name, target };
      const seconds = estimateSeconds(c, g, pass, resolve(gpu, g, pass, choice).split, device);
      if (!best || seconds < best.seconds) best = { choice, seconds };
    }
  }
  return best!;
}

/**
 * The model's default for a pass of `g` on `gpu`: the candidate the device runs and the split-K target that
 * the paper model finds fastest.
 *
 * @example
 * ```ts
 * import { countingGpu } from "../gpu/counting.ts";
 * import { defaultChoice } from "./conv2d_gpu.ts";
 * const g = { n: 128, inChannels: 96, height: 54, width: 54, outChannels: 96, outHeight: 54, outWidth: 54,
 *   kernel: 1, stride: 1, padding: 0 };
 * console.log(defaultChoice(countingGpu({ kernels: "gpu" }), g, "forward").candidate);
 * ```
 */
export function defaultChoice(gpu: Gpu, g: ConvGeometry, pass: GemmPass): PassChoice {
  const candidates = GEMM_CANDIDATES.filter((c) => fitsDevice(c, gpu.limits) && appliesTo(c, g, pass));
  return fastestByModel(gpu, g, pass, candidates).choice;
}

/**
 * The paper estimate of a pass of `g`, in seconds, on `device`: with `candidate` where it runs the pass (its
 * split-K target the model's best), else with the choice in force on `gpu`.
 *
 * @example
 * ```ts
 * import { countingGpu } from "../gpu/counting.ts";
 * import { estimatePassSeconds } from "./conv2d_gpu.ts";
 * import { GEMM_CANDIDATES } from "./conv2d_gpu_candidates.ts";
 * const g = { n: 128, inChannels: 96, height: 54, width: 54, outChannels: 96, outHeight: 54, outWidth: 54,
 *   kernel: 1, stride: 1, padding: 0 };
 * console.log(estimatePassSeconds(countingGpu({ kernels: "gpu" }), g, "weight gradient", GEMM_CANDIDATES[5]));
 * ```
 */
export function estimatePassSeconds(
  gpu: Gpu,
  g: ConvGeometry,
  pass: GemmPass,
  candidate?: GemmCandidate,
  device: DeviceModel = H200,
): number {
  if (candidate && appliesTo(candidate, g, pass)) {
    return fastestByModel(gpu, g, pass, [candidate], device).seconds;
  }
  const { candidate: inForce, split } = resolve(gpu, g, pass);
  return estimateSeconds(inForce, g, pass, split, device);
}

/** The choice in force for a pass of `g`: this adapter's tuned one, else the model's default. */
export function passChoice(gpu: Gpu, g: ConvGeometry, pass: GemmPass): PassChoice {
  const tuned = tunedChoice(gpu, g, pass);
  // A cached choice is checked against the device when loaded, and against the pass here.
  return tuned && appliesTo(candidateNamed(tuned.candidate)!, g, pass) ? tuned : defaultChoice(gpu, g, pass);
}

/**
 * Records one GEMM pass of `g` in its resolved choice; `kernelGeometry` is the geometry its kernel runs (the
 * transposed convolution for the input gradient).
 */
function dispatchGemm(
  gpu: Gpu,
  name: keyof typeof GEMM_KERNELS,
  g: ConvGeometry,
  pass: GemmPass,
  { choice, candidate, split }: Resolved,
  kernelGeometry: ConvGeometry,
  buffers: Record<string, GPUBuffer>,
  params: Record<string, number>,
): void {
  const size = gemmSize(g, pass);
  gpu.dispatch(
    gemmKernel(name, candidate, kernelGeometry),
    buffers,
    params,
    tilesOf(candidate, size) * split.slices,
    convFlops(g).gemm,
    choiceName(choice),
    executedFlops(candidate, size, split.slices, split.sliceLength),
  );
}

/**
 * Records a GEMM pass that writes a convolution's output (the forward, or the input gradient as the
 * forward of the transposed convolution `kernelGeometry`) into `out`: one dispatch, or, when its choice
 * splits the reduction, the GEMM into a workspace of per-slice partial outputs and the fixed-order
 * reduction that adds bias and slices (and applies the ReLU).
 */
function recordOutputGemm(
  gpu: Gpu,
  name: keyof typeof OUTPUT_REDUCE,
  g: ConvGeometry,
  pass: GemmPass,
  kernelGeometry: ConvGeometry,
  operands: { x: GPUBuffer; w: GPUBuffer; bias: GPUBuffer },
  out: Tensor,
): void {
  const chosen = resolve(gpu, g, pass);
  const { slices, sliceLength } = chosen.split;
  const partials = slices > 1 ? Tensor.empty(gpu, [slices, ...out.shape], "workspace") : null;
  dispatchGemm(
    gpu,
    name,
    g,
    pass,
    chosen,
    kernelGeometry,
    { ...operands, y: (partials ?? out).buffer },
    uniform(kernelGeometry, { slices, slice_length: sliceLength }),
  );
  if (partials) {
    const k = OUTPUT_REDUCE[name];
    gpu.dispatch(k, { partial: partials.buffer, bias: operands.bias, y: out.buffer }, {
      count: out.size,
      slices,
      out_channels: kernelGeometry.outChannels,
      plane: kernelGeometry.outHeight * kernelGeometry.outWidth,
    }, workgroupsFor(out.size, k));
    // Safe to release now: later users of the pooled buffer are recorded after these dispatches.
    partials.dispose();
  }
}

/** Records `out[i] += sum over slices of partial[s, i]` in slice order with `k`, a conv2d_gpu_reduce.wgsl. */
function reduce(gpu: Gpu, k: Kernel, partial: Tensor, out: Tensor, slices: number): void {
  const count = out.size;
  gpu.dispatch(k, { partial: partial.buffer, out: out.buffer }, { count, slices }, workgroupsFor(count, k));
}

/** The "gpu" family's convolution passes. */
export const GPU_CONV: ConvPasses = {
  /**
   * Records the forward in the choice in force for its geometry: bias, and ReLU when fused, in the GEMM's
   * epilogue, or, when split, in the reduction of its slices.
   */
  recordForward({ gpu, geometry: g, relu, x, weight, bias, y }): void {
    const name = relu ? "conv2d_gpu_forward_relu" : "conv2d_gpu_forward";
    recordOutputGemm(gpu, name, g, "forward", g, { x: x.buffer, w: weight.buffer, bias: bias.buffer }, y);
  },

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

    // The bias and weight gradients are the backward's "weight gradient" phase; the rest its input gradient.
    let biasPartials: Tensor | null = null, weightPartials: Tensor | null = null;
    gpu.inPhase("weight gradient", () => {
      // Bias gradient: per (channel, slice) partial sums, then the fixed-order reduction into db.
      const bias = biasGradSplit(g);
      biasPartials = Tensor.empty(gpu, [bias.slices, g.outChannels], "workspace");
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
      const chosen = resolve(gpu, g, "weight gradient");
      const { slices, sliceLength } = chosen.split;
      weightPartials = slices === 1 ? null : Tensor.empty(gpu, [slices, g.outChannels, depth], "workspace");
      dispatchGemm(
        gpu,
        "conv2d_gpu_backward_weight",
        g,
        "weight gradient",
        chosen,
        g,
        { x: x.buffer, g: grad.buffer, out: (weightPartials ?? dw).buffer },
        uniform(g, { slices, slice_length: sliceLength, direct: slices === 1 ? 1 : 0 }),
      );
      if (weightPartials) reduce(gpu, WEIGHT_REDUCE, weightPartials, dw, slices);
    });

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
      const operands = { x: grad.buffer, w: flipped.buffer, bias: weight.buffer };
      recordOutputGemm(gpu, "conv2d_gpu_backward_input", g, "input gradient", transposed, operands, dx);
    }
    // Safe to release now: later users of the pooled buffers are recorded after these dispatches.
    for (const t of [biasPartials, weightPartials, flipped]) t?.dispose();
  },
};

/** A convolution of a training step as the estimate sees it: its geometry, and whether it computes dx. */
export interface StepConvolution {
  /** The layer's geometry at the step's micro-batch. */
  geometry: ConvGeometry;
  /** Whether its input gradient runs (false for a first layer). */
  inputGradient: boolean;
}

/**
 * The paper estimate of a training step's time, in seconds, on `device`: every GEMM pass of `convolutions`
 * ({@link estimatePassSeconds}, with `candidate` where it is given, else the choices in force on `gpu`),
 * plus `otherDispatches` (the step's other dispatches: bias gradients, reductions, pooling, loss, optimizer)
 * at the device's fixed cost per dispatch each; their memory traffic is not modelled.
 *
 * @example
 * ```ts
 * import { countingGpu } from "../gpu/counting.ts";
 * import { estimateStepSeconds } from "./conv2d_gpu.ts";
 * const geometry = { n: 128, inChannels: 96, height: 54, width: 54, outChannels: 96, outHeight: 54,
 *   outWidth: 54, kernel: 1, stride: 1, padding: 0 };
 * console.log(estimateStepSeconds(countingGpu({ kernels: "gpu" }), [{ geometry, inputGradient: true }], 10));
 * ```
 */
export function estimateStepSeconds(
  gpu: Gpu,
  convolutions: readonly StepConvolution[],
  otherDispatches: number,
  candidate?: GemmCandidate,
  device: DeviceModel = H200,
): number {
  let seconds = otherDispatches * device.dispatchSeconds;
  for (const { geometry, inputGradient } of convolutions) {
    const passes: GemmPass[] = [
      "forward",
      "weight gradient",
      ...(inputGradient ? ["input gradient" as const] : []),
    ];
    for (const pass of passes) {
      seconds += estimatePassSeconds(gpu, geometry, pass, candidate, device);
    }
  }
  return seconds;
}
