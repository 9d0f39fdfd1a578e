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
import type { Tensor } from "../tensor.ts";
import { forwardCandidate, forwardTextures, type SoftwareConvCandidate } from "../kernel_candidates.ts";
import {
  type ConvDispatch,
  convFlops,
  type ConvGeometry,
  type ConvOperands,
  type ConvPasses,
  convUniform,
  reluMaskBindings,
} from "./conv2d_passes.ts";
import forwardCode from "../../kernels/conv2d_forward.wgsl" with { type: "text" };
import textureForwardCode from "../../kernels/conv2d_texture_forward.wgsl" with { type: "text" };
import packInputCode from "../../kernels/conv2d_texture_pack_input.wgsl" with { type: "text" };
import packWeightCode from "../../kernels/conv2d_texture_pack_weight.wgsl" with { type: "text" };
import backwardInputCode from "../../kernels/conv2d_backward_input.wgsl" with { type: "text" };
import backwardWeightCode from "../../kernels/conv2d_backward_weight.wgsl" with { type: "text" };
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
/** Texels a row of the packed input texture (kernels/conv2d_texels.wgsl). */
const TEXTURE_LAYOUT = { inputWidth: constantOf(PACK_INPUT, "TEXTURE_WIDTH") };

/** The texture-fed forward kernels of a candidate (plain and ReLU-fused), made once each. */
const TEXTURE_FORWARDS = new Map<string, { plain: Gemm; relu: Gemm }>();

function textureForward(c: SoftwareConvCandidate, relu: boolean): Gemm {
  let pair = TEXTURE_FORWARDS.get(c.name);
  if (!pair) {
    const constants = { rowQuads: c.rowQuads, columnQuads: c.columnQuads };
    const name = `conv2d_texture_forward_${4 * c.rowQuads}x${4 * c.columnQuads}`;
    pair = {
      plain: gemm(kernel(name, textureForwardCode, { constants })),
      relu: gemm(kernel(`${name}_relu`, textureForwardCode, { constants: { ...constants, fuseRelu: 1 } })),
    };
    TEXTURE_FORWARDS.set(c.name, pair);
  }
  return relu ? pair.relu : pair.plain;
}

/**
 * Records the packing of x and w into the textures a texture-fed forward reads (see
 * kernels/conv2d_texture_pack_*.wgsl); the textures are workspaces, released once the forward is recorded.
 */
function packForward(g: ConvGeometry) {
  return (gpu: Gpu, x: Tensor, weight: Tensor): ConvOperands => {
    const { input, weight: weightExtent } = forwardTextures(g, TEXTURE_LAYOUT);
    const xt = gpu.allocateTexture(input[0], input[1], "workspace");
    const wt = gpu.allocateTexture(weightExtent[0], weightExtent[1], "workspace");
    const c4s = Math.ceil(g.inChannels / 4);
    const texels = g.n * (g.height + 2 * g.padding) * (g.width + 2 * g.padding) * c4s;
    const { n, inChannels: in_channels, height, width, padding } = g;
    gpu.dispatch(
      PACK_INPUT,
      { x: x.buffer, packed: xt.createView() },
      { n, in_channels, height, width, padding },
      workgroupsFor(texels, PACK_INPUT),
    );
    gpu.dispatch(
      PACK_WEIGHT,
      { w: weight.buffer, packed: wt.createView() },
      { in_channels, out_channels: g.outChannels, kernel: g.kernel },
      workgroupsFor(weightExtent[0] * weightExtent[1], PACK_WEIGHT),
    );
    return {
      bindings: { xt: xt.createView(), wt: wt.createView() },
      release: () => {
        gpu.release(xt);
        gpu.release(wt);
      },
    };
  };
}

/** The forward of `g` with the plan's candidate for it on `gpu`. */
function forward(g: ConvGeometry, relu: boolean, gpu: Gpu): ConvDispatch {
  const positions = g.n * g.outHeight * g.outWidth;
  const candidate = forwardCandidate(gpu, g, TEXTURE_LAYOUT);
  if (candidate.operands === "texture") {
    const k = textureForward(candidate, relu);
    return {
      kernel: k.kernel,
      params: convUniform(g),
      workgroups: gemmWorkgroups(k, positions, g.outChannels),
      operands: packForward(g),
    };
  }
  const k = relu ? FORWARD_RELU : FORWARD;
  return {
    kernel: k.kernel,
    params: convUniform(g),
    workgroups: gemmWorkgroups(k, g.outChannels, positions),
  };
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
    const { gpu, geometry: g, x, y, grad, weight, dw, db, dx } = args;
    const params = convUniform(g);
    const flops = convFlops(g);
    const bias = y ? BACKWARD_BIAS_RELU : BACKWARD_BIAS;
    gpu.dispatch(
      bias,
      { ...reluMaskBindings(args), db: db.buffer },
      { n: g.n, count: g.outChannels, positions: g.outHeight * g.outWidth },
      workgroupsFor(g.outChannels, bias),
      flops.bias,
    );
    const columns = g.inChannels * g.kernel * g.kernel;
    gpu.dispatch(
      BACKWARD_WEIGHT.kernel,
      { x: x.buffer, g: grad.buffer, dw: dw.buffer },
      params,
      gemmWorkgroups(BACKWARD_WEIGHT, columns, g.outChannels),
      flops.gemm,
    );
    if (!dx) return;
    // Pixels are numbered by residue class mod the stride, on a grid of ceil(h / s) x ceil(w / s) per class.
    const s = g.stride;
    const pixels = s * s * g.n * Math.ceil(g.height / s) * Math.ceil(g.width / s);
    // Blocks of 128 or 96 input channels, whichever leaves fewer idle (e.g. 96 for 96 channels).
    const idle = (k: Gemm) => workgroupsFor(g.inChannels, k.rows) * k.rows - g.inChannels;
    const inputGrad = idle(BACKWARD_INPUT_96) < idle(BACKWARD_INPUT) ? BACKWARD_INPUT_96 : BACKWARD_INPUT;
    gpu.dispatch(
      inputGrad.kernel,
      { g: grad.buffer, w: weight.buffer, dx: dx.buffer },
      params,
      gemmWorkgroups(inputGrad, g.inChannels, pixels),
      flops.gemm,
    );
  },
};
