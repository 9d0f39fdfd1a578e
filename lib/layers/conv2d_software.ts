/**
 * Conv2d's passes in the software-adapter kernel family: register-blocked implicit GEMMs shaped for
 * llvmpipe, where a workgroup of 8 invocations is one CPU thread and its invocations are SIMD lanes, so each
 * invocation owns a large block of outputs and loops over the whole reduction itself.
 *
 * @module
 */
import type { Gpu } from "../gpu/device.ts";
import { constantOf, type Kernel, kernel } from "../gpu/kernel.ts";
import { workgroupsFor } from "../module.ts";
import { Tensor } from "../tensor.ts";
import { tunedChoice } from "../tuning.ts";
import type { GemmPass } from "./conv2d_gpu_candidates.ts";
import { chooseCandidate, type Extent, type SoftwareConvCandidate, texelFill } from "../kernel_candidates.ts";
import {
  type ConvBackward,
  type ConvDispatch,
  convFlops,
  type ConvGeometry,
  type ConvPasses,
  convUniform,
  PACKED_INPUTS,
  reluMaskBindings,
  transposedGeometry,
} from "./conv2d_passes.ts";
import forwardCode from "../../kernels/conv2d_forward.wgsl" with { type: "text" };
import textureForwardCode from "../../kernels/conv2d_texture_forward.wgsl" with { type: "text" };
import packInputCode from "../../kernels/conv2d_texture_pack_input.wgsl" with { type: "text" };
import packWeightCode from "../../kernels/conv2d_texture_pack_weight.wgsl" with { type: "text" };
import backwardInputCode from "../../kernels/conv2d_backward_input.wgsl" with { type: "text" };
import backwardWeightCode from "../../kernels/conv2d_backward_weight.wgsl" with { type: "text" };
import backwardWeightTextureCode from "../../kernels/conv2d_texture_backward_weight.wgsl" with {
  type: "text",
};
import backwardBiasCode from "../../kernels/conv2d_backward_bias.wgsl" with { type: "text" };

/**
 * A GEMM kernel of conv2d_common.wgsl and its block, read once from the WGSL: a workgroup computes `rows`
 * (4 * rowQuads per invocation) x `columns` (4 * columnQuads) of the matrix.
 */
interface Gemm {
  kernel: Kernel;
  rows: number;
  columns: number;
}

function gemm(k: Kernel): Gemm {
  return {
    kernel: k,
    rows: k.workgroupSize * 4 * constantOf(k, "rowQuads"),
    columns: 4 * constantOf(k, "columnQuads"),
  };
}

const FORWARD = gemm(kernel("conv2d_forward", forwardCode));
const FORWARD_RELU = gemm(kernel("conv2d_forward_relu", forwardCode, { constants: { fuseRelu: 1 } }));
const BACKWARD_INPUT = gemm(kernel("conv2d_backward_input", backwardInputCode));
/** The input gradient with 96 instead of 128 channels per workgroup, for layers where that wastes fewer lanes. */
const BACKWARD_INPUT_96 = gemm(kernel("conv2d_backward_input_96ch", backwardInputCode, {
  constants: { rowQuads: 3 },
}));
const BACKWARD_WEIGHT = gemm(kernel("conv2d_backward_weight", backwardWeightCode));
// One invocation per output channel: eight per workgroup, few channels per layer.
const BACKWARD_BIAS = kernel("conv2d_backward_bias", backwardBiasCode, { constants: { WORKGROUP_SIZE: 8 } });
/** The bias gradient of the ReLU-fused layer, which also writes the masked output gradient. */
const BACKWARD_BIAS_RELU = kernel("conv2d_backward_bias_relu", backwardBiasCode, {
  constants: { WORKGROUP_SIZE: 8, masked: 1 },
});

const PACK_INPUT = kernel("conv2d_texture_pack_input", packInputCode);
const PACK_WEIGHT = kernel("conv2d_texture_pack_weight", packWeightCode);
const PACK_WEIGHT_TRANSPOSED = kernel("conv2d_texture_pack_weight_transposed", packWeightCode, {
  constants: { transposed: 1 },
});
/** Texels a row of a linearly packed texture (kernels/conv2d_texels.wgsl). */
const TEXTURE_WIDTH = constantOf(PACK_INPUT, "TEXTURE_WIDTH");

/** The texture-fed kernels of each candidate, by kernel file and candidate, made once each. */
const TEXTURE_KERNELS = new Map<string, Gemm>();

/** The texture-fed kernel `name` (of WGSL `code`) of candidate `c`, with `constants` besides its block. */
function textureKernel(
  name: string,
  code: string,
  c: SoftwareConvCandidate,
  constants: Record<string, number> = {},
): Gemm {
  const full = `${name}_${4 * c.rowQuads}x${4 * c.columnQuads}`;
  let k = TEXTURE_KERNELS.get(full);
  if (!k) {
    const block = { rowQuads: c.rowQuads, columnQuads: c.columnQuads };
    k = gemm(kernel(full, code, { constants: { ...block, ...constants } }));
    TEXTURE_KERNELS.set(full, k);
  }
  return k;
}

/** An NCHW tensor `[n, channels, height, width]` as conv2d_texture_pack_input.wgsl packs it, zero-padded. */
interface Packed {
  n: number;
  channels: number;
  height: number;
  width: number;
  padding: number;
}

/** Texels of a packed tensor (channels in quads), and the extent of its linearly laid out texture. */
function packedTexels(t: Packed): { texels: number; extent: Extent } {
  const texels = t.n * (t.height + 2 * t.padding) * (t.width + 2 * t.padding) * Math.ceil(t.channels / 4);
  return { texels, extent: [TEXTURE_WIDTH, Math.ceil(texels / TEXTURE_WIDTH)] };
}

/** The forward's input as its texture-fed kernels read it (padded), also the weight gradient's. */
function packedInput(g: ConvGeometry): Packed {
  return { n: g.n, channels: g.inChannels, height: g.height, width: g.width, padding: g.padding };
}

/** The output gradient with no padding, as the texture-fed weight gradient reads it without an input gradient. */
function packedOutput(g: ConvGeometry): Packed {
  return { n: g.n, channels: g.outChannels, height: g.outHeight, width: g.outWidth, padding: 0 };
}

/** The packed weights' extent: output channel quads x reduction steps (kernels/conv2d_texture_pack_weight.wgsl). */
function packedWeightExtent(g: ConvGeometry): Extent {
  return [Math.ceil(g.outChannels / 4), g.kernel * g.kernel * Math.ceil(g.inChannels / 4) * 4];
}

/**
 * Records the packing of `source` (laid out as `t`) into a new texture, returned: a workspace, or `what` for
 * one kept past the pass.
 */
function pack(gpu: Gpu, source: GPUBuffer, t: Packed, what = "workspace"): GPUTexture {
  const { texels, extent } = packedTexels(t);
  const texture = gpu.allocateTexture(extent[0], extent[1], what);
  const { n, channels: in_channels, height, width, padding } = t;
  gpu.dispatch(
    PACK_INPUT,
    { x: source, packed: gpu.view(texture) },
    { n, in_channels, height, width, padding },
    workgroupsFor(texels, PACK_INPUT),
  );
  return texture;
}

/**
 * Records the packing of OIHW weights for the forward of `g` into a new workspace texture, returned; with
 * `transposed`, `weight` is the OIHW tensor of the convolution whose transpose `g` is.
 */
function packWeight(gpu: Gpu, g: ConvGeometry, weight: GPUBuffer, transposed = false): GPUTexture {
  const [width, height] = packedWeightExtent(g);
  const texture = gpu.allocateTexture(width, height, "workspace");
  gpu.dispatch(
    transposed ? PACK_WEIGHT_TRANSPOSED : PACK_WEIGHT,
    { w: weight, packed: gpu.view(texture) },
    { in_channels: g.inChannels, out_channels: g.outChannels, kernel: g.kernel },
    workgroupsFor(width * height, PACK_WEIGHT),
  );
  return texture;
}

/** The forward of `g` with the plan's candidate for it on `gpu`. */
function forward(g: ConvGeometry, relu: boolean, gpu: Gpu): ConvDispatch {
  const positions = g.n * g.outHeight * g.outWidth;
  const extents = [packedTexels(packedInput(g)).extent, packedWeightExtent(g)];
  const candidate = chooseCandidate(gpu, extents, texelFill(g.inChannels), tuned(gpu, g, "forward"));
  if (candidate.operands === "texture") {
    const name = relu ? "conv2d_texture_forward_relu" : "conv2d_texture_forward";
    const k = textureKernel(name, textureForwardCode, candidate, { fuseRelu: relu ? 1 : 0 });
    return {
      kernel: k.kernel,
      params: softwareUniform(g),
      workgroups: gemmWorkgroups(k, positions, g.outChannels),
      // The textures are workspaces, released once the forward is recorded, except a packed input kept for
      // the weight gradient, which reads it in the same layout.
      operands: (gpu, x, weight, keepInput) => {
        const xt = pack(gpu, x.buffer, packedInput(g), keepInput ? PACKED_INPUTS : "workspace");
        const wt = packWeight(gpu, g, weight.buffer);
        return {
          bindings: { xt: gpu.view(xt), wt: gpu.view(wt) },
          release: () => {
            if (!keepInput) gpu.release(xt);
            gpu.release(wt);
          },
          packedInput: keepInput ? xt : undefined,
        };
      },
    };
  }
  const k = relu ? FORWARD_RELU : FORWARD;
  return {
    kernel: k.kernel,
    params: softwareUniform(g),
    workgroups: gemmWorkgroups(k, g.outChannels, positions),
  };
}

/**
 * The stride-1 convolution whose forward is the input gradient of `g` ({@link transposedGeometry}), or
 * undefined where `g` has none (a stride, or a padding of k or more: the buffer kernel's input gradient
 * serves those in every candidate).
 */
function textureInputGradient(g: ConvGeometry): ConvGeometry | undefined {
  return g.stride === 1 && g.padding <= g.kernel - 1 ? transposedGeometry(g) : undefined;
}

/** A texture-fed input gradient: the transposed convolution it runs and its candidate. */
interface TextureInputGradient {
  t: ConvGeometry;
  candidate: SoftwareConvCandidate;
}

/** The plan's texture-fed input gradient for `args`, or undefined where it needs none or the buffer kernel. */
function textureInputPlan(args: ConvBackward): TextureInputGradient | undefined {
  const t = args.dx ? textureInputGradient(args.geometry) : undefined;
  if (!t) return undefined;
  const extents = [packedTexels(packedInput(t)).extent, packedWeightExtent(t)];
  const choice = tuned(args.gpu, args.geometry, "input gradient");
  const candidate = chooseCandidate(args.gpu, extents, texelFill(t.inChannels), choice);
  return candidate.operands === "texture" ? { t, candidate } : undefined;
}

/** The output gradient packed once for a backward's GEMMs (on first use), in the layout `packed`. */
interface PackedGradient {
  packed: Packed;
  texture(): GPUTexture;
}

/** Records the input gradient of `args` (into `dx`, written): texture-fed as `plan` says, else the buffer kernel. */
function inputGradient(
  args: ConvBackward,
  dx: Tensor,
  plan: TextureInputGradient | undefined,
  grad: PackedGradient,
) {
  const { gpu, geometry: g, weight } = args;
  const flops = convFlops(g).gemm;
  if (plan) {
    const { t, candidate } = plan;
    // The forward's code under its own name, so that profiles tell the passes apart.
    const k = textureKernel("conv2d_texture_backward_input", textureForwardCode, candidate);
    const wt = packWeight(gpu, t, weight.buffer, true);
    const zeros = Tensor.zeros(gpu, [g.inChannels], "workspace");
    gpu.dispatch(
      k.kernel,
      { xt: gpu.view(grad.texture()), wt: gpu.view(wt), bias: zeros.buffer, y: dx.buffer },
      softwareUniform(t),
      gemmWorkgroups(k, t.n * t.outHeight * t.outWidth, t.outChannels),
      flops,
    );
    // Safe to release now: later users of the pooled workspaces are recorded after this dispatch.
    gpu.release(wt);
    zeros.dispose();
    return;
  }
  // Pixels are numbered by residue class mod the stride, on a grid of ceil(h / s) x ceil(w / s) per class.
  const s = g.stride;
  const pixels = s * s * g.n * Math.ceil(g.height / s) * Math.ceil(g.width / s);
  // Blocks of 128 or 96 input channels, whichever leaves fewer idle (e.g. 96 for 96 channels).
  const idle = (k: Gemm) => workgroupsFor(g.inChannels, k.rows) * k.rows - g.inChannels;
  const inputGrad = idle(BACKWARD_INPUT_96) < idle(BACKWARD_INPUT) ? BACKWARD_INPUT_96 : BACKWARD_INPUT;
  gpu.dispatch(
    inputGrad.kernel,
    { g: args.grad.buffer, w: weight.buffer, dx: dx.buffer },
    softwareUniform(g),
    gemmWorkgroups(inputGrad, g.inChannels, pixels),
    flops,
  );
}

/**
 * Records the weight gradient of `args` (dw += ...) with the plan's candidate; a texture-fed one reads the
 * forward's kept packed input if there is one and the output gradient as `grad` packs it.
 */
function weightGradient(args: ConvBackward, grad: PackedGradient): void {
  const { gpu, geometry: g, x, packedInput: kept, dw } = args;
  const inputPacked = packedInput(g);
  const extents = [packedTexels(inputPacked).extent, packedTexels(grad.packed).extent];
  const candidate = chooseCandidate(gpu, extents, texelFill(g.inChannels), tuned(gpu, g, "weight gradient"));
  const flops = convFlops(g).gemm;
  if (candidate.operands === "texture") {
    const k = textureKernel("conv2d_texture_backward_weight", backwardWeightTextureCode, candidate);
    const xt = kept ?? pack(gpu, x.buffer, inputPacked);
    const rows = g.kernel * g.kernel * Math.ceil(g.inChannels / 4) * 4;
    gpu.dispatch(
      k.kernel,
      { xt: gpu.view(xt), gt: gpu.view(grad.texture()), dw: dw.buffer },
      softwareUniform(g, grad.packed.padding),
      gemmWorkgroups(k, rows, g.outChannels),
      flops,
    );
    // Safe to release now: later users of the pooled textures are recorded after this dispatch. A kept
    // input is its layer's to release.
    if (!kept) gpu.release(xt);
    return;
  }
  const columns = g.inChannels * g.kernel * g.kernel;
  gpu.dispatch(
    BACKWARD_WEIGHT.kernel,
    { x: x.buffer, g: args.grad.buffer, dw: dw.buffer },
    softwareUniform(g),
    gemmWorkgroups(BACKWARD_WEIGHT, columns, g.outChannels),
    flops,
  );
}

/**
 * The software kernels' `Params` uniform (kernels/conv2d_common.wgsl) for `g`, with the output gradient's
 * packed padding where a texture-fed weight gradient reads it.
 */
function softwareUniform(g: ConvGeometry, gradPadding = 0): Record<string, number> {
  return { ...convUniform(g), grad_padding: gradPadding };
}

/** The candidate `bench --tune` chose for `pass` of `g` on `gpu`, by name, if any. */
function tuned(gpu: Gpu, g: ConvGeometry, pass: GemmPass): string | undefined {
  return tunedChoice(gpu, g, pass)?.candidate;
}

/** Workgroups of a GEMM over a `rows` x `columns` matrix, in blocks of the kernel's. */
function gemmWorkgroups(k: Gemm, rows: number, columns: number): number {
  return workgroupsFor(rows, k.rows) * workgroupsFor(columns, k.columns);
}

/** The software-adapter family's convolution passes. */
export const SOFTWARE_CONV: ConvPasses = {
  /** The forward (bias, and ReLU when fused, in the epilogue), with the plan's candidate for `g`. */
  forward,

  /**
   * Records the bias, weight and (when asked) input gradients. With a fused ReLU the bias kernel masks dy by
   * (output > 0) once, into the workspace the two GEMMs read.
   */
  backward(args): void {
    const { gpu, geometry: g, y, db, dx } = args;
    const flops = convFlops(g);
    const inputPlan = textureInputPlan(args);
    // The output gradient is packed once for both texture-fed GEMMs, padded as the input gradient reads it.
    let gt: GPUTexture | undefined;
    const packed = inputPlan ? packedInput(inputPlan.t) : packedOutput(g);
    const grad = { packed, texture: () => gt ??= pack(gpu, args.grad.buffer, packed) };
    // The bias and weight gradients are the backward's "weight gradient" phase; the rest its input gradient.
    gpu.inPhase("weight gradient", () => {
      const bias = y ? BACKWARD_BIAS_RELU : BACKWARD_BIAS;
      gpu.dispatch(
        bias,
        { ...reluMaskBindings(args), db: db.buffer },
        { n: g.n, count: g.outChannels, positions: g.outHeight * g.outWidth },
        workgroupsFor(g.outChannels, bias),
        flops.bias,
      );
      weightGradient(args, grad);
    });
    if (dx) inputGradient(args, dx, inputPlan, grad);
    // Safe to release now: later users of the pooled texture are recorded after these dispatches.
    if (gt) gpu.release(gt);
  },
};
