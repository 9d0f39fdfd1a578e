/**
 * Conv2d's passes in the software-adapter kernel family: register-blocked implicit GEMMs shaped for
 * llvmpipe, where a workgroup of 8 invocations is one CPU thread and its invocations are SIMD lanes, so each
 * invocation owns a large block of outputs and loops over the whole reduction itself.
 *
 * @module
 */
import { constantOf, type Kernel, kernel } from "../gpu/kernel.ts";
import { workgroupsFor } from "../module.ts";
import { convFlops, type ConvPasses, convUniform, reluMaskBindings } from "./conv2d_passes.ts";
import forwardCode from "../../kernels/conv2d_forward.wgsl" with { type: "text" };
import backwardInputCode from "../../kernels/conv2d_backward_input.wgsl" with { type: "text" };
import backwardWeightCode from "../../kernels/conv2d_backward_weight.wgsl" with { type: "text" };
import backwardBiasCode from "../../kernels/conv2d_backward_bias.wgsl" with { type: "text" };

/**
 * A GEMM kernel of conv2d_common.wgsl and its block, read once from the WGSL: a workgroup computes `rows`
 * (4 * rowQuads per invocation) x `columns` (COLUMNS_PER_WORKGROUP) of the matrix.
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
    columns: constantOf(k, "COLUMNS_PER_WORKGROUP"),
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

/** Workgroups of a GEMM over a `rows` x `columns` matrix, in blocks of the kernel's. */
function gemmWorkgroups(k: Gemm, rows: number, columns: number): number {
  return workgroupsFor(rows, k.rows) * workgroupsFor(columns, k.columns);
}

/** The software-adapter family's convolution passes. */
export const SOFTWARE_CONV: ConvPasses = {
  /** The forward (bias, and ReLU when fused, in the epilogue). */
  forward: (g, relu) => {
    const forward = relu ? FORWARD_RELU : FORWARD;
    return {
      kernel: forward.kernel,
      params: convUniform(g),
      workgroups: gemmWorkgroups(forward, g.outChannels, g.n * g.outHeight * g.outWidth),
    };
  },

  /**
   * Records the bias, weight and (when asked) input gradients. With a fused ReLU the bias kernel masks dy by
   * (output > 0) once, into the workspace the two GEMMs read.
   */
  backward(args): void {
    const { gpu, geometry: g, x, y, grad, weight, dw, db, dx } = args;
    const params = convUniform(g);
    const flops = convFlops(g);
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
      const columns = g.inChannels * g.kernel * g.kernel;
      gpu.dispatch(
        BACKWARD_WEIGHT.kernel,
        { x: x.buffer, g: grad.buffer, dw: dw.buffer },
        params,
        gemmWorkgroups(BACKWARD_WEIGHT, columns, g.outChannels),
        flops.gemm,
      );
    });
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
