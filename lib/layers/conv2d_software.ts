/**
 * Conv2d's passes in the software-adapter kernel family: register-blocked implicit GEMMs shaped for
 * llvmpipe, where a workgroup of 8 invocations is one CPU thread and its invocations are SIMD lanes, so each
 * invocation owns a large block of outputs and loops over the whole reduction itself.
 *
 * @module
 */
import { constantOf, type Kernel, kernel } from "../gpu/kernel.ts";
import { workgroupsFor } from "../module.ts";
import { Tensor } from "../tensor.ts";
import { convMacs, type ConvPasses, convUniform } from "./conv2d_passes.ts";
import forwardCode from "../../kernels/conv2d_forward.wgsl" with { type: "text" };
import backwardInputCode from "../../kernels/conv2d_backward_input.wgsl" with { type: "text" };
import backwardWeightCode from "../../kernels/conv2d_backward_weight.wgsl" with { type: "text" };
import backwardBiasCode from "../../kernels/conv2d_backward_bias.wgsl" with { type: "text" };

const FORWARD = kernel("conv2d_forward", forwardCode);
const FORWARD_RELU = kernel("conv2d_forward_relu", forwardCode, { constants: { fuseRelu: 1 } });
const BACKWARD_INPUT = kernel("conv2d_backward_input", backwardInputCode);
/** The input gradient with 96 instead of 128 channels per workgroup, for layers where that wastes fewer lanes. */
const BACKWARD_INPUT_96 = kernel("conv2d_backward_input_96ch", backwardInputCode, {
  constants: { rowQuads: 3 },
});
const BACKWARD_WEIGHT = kernel("conv2d_backward_weight", backwardWeightCode);
// One invocation per output channel: eight per workgroup, few channels per layer.
const BACKWARD_BIAS = kernel("conv2d_backward_bias", backwardBiasCode, { constants: { WORKGROUP_SIZE: 8 } });
/** The bias gradient of the ReLU-fused layer, which also writes the masked output gradient. */
const BACKWARD_BIAS_RELU = kernel("conv2d_backward_bias_relu", backwardBiasCode, {
  constants: { WORKGROUP_SIZE: 8, masked: 1 },
});

/**
 * Workgroups of a GEMM of conv2d_common.wgsl over a `rows` x `columns` matrix: a workgroup's block is
 * 4 * rowQuads rows per invocation by COLUMNS_PER_WORKGROUP columns.
 */
function gemmWorkgroups(k: Kernel, rows: number, columns: number): number {
  return workgroupsFor(rows, k.workgroupSize * 4 * constantOf(k, "rowQuads")) *
    workgroupsFor(columns, constantOf(k, "COLUMNS_PER_WORKGROUP"));
}

/** The software-adapter family's convolution passes. */
export const SOFTWARE_CONV: ConvPasses = {
  /** The forward (bias, and ReLU when fused, in the epilogue). */
  forward: (g, relu) => ({
    kernel: relu ? FORWARD_RELU : FORWARD,
    params: convUniform(g),
    workgroups: gemmWorkgroups(FORWARD, g.outChannels, g.n * g.outHeight * g.outWidth),
  }),

  /**
   * Records the bias, weight and (when asked) input gradients. With a fused ReLU the bias kernel masks dy by
   * (output > 0) once, into a temporary the two GEMMs read.
   */
  backward({ gpu, geometry: g, x, dy, y, weight, dw, db, needInputGrad }): Tensor | null {
    const params = convUniform(g);
    const positions = g.outHeight * g.outWidth;
    // Without the ReLU the kernel's `saved` and `g` are placeholders it never touches.
    const masked = Tensor.empty(gpu, y ? dy.shape : [1], "workspace");
    gpu.dispatch(
      y ? BACKWARD_BIAS_RELU : BACKWARD_BIAS,
      { dy: dy.buffer, db: db.buffer, saved: (y ?? dy).buffer, g: masked.buffer },
      { n: g.n, count: g.outChannels, positions },
      workgroupsFor(g.outChannels, y ? BACKWARD_BIAS_RELU : BACKWARD_BIAS),
      dy.size,
    );
    const grad = y ? masked : dy;
    const columns = g.inChannels * g.kernel * g.kernel;
    gpu.dispatch(
      BACKWARD_WEIGHT,
      { x: x.buffer, g: grad.buffer, dw: dw.buffer },
      params,
      gemmWorkgroups(BACKWARD_WEIGHT, columns, g.outChannels),
      2 * convMacs(g),
    );
    let dx: Tensor | null = null;
    if (needInputGrad) {
      dx = Tensor.empty(gpu, x.shape, "activation gradients");
      // Pixels are numbered by residue class mod the stride, on a grid of ceil(h / s) x ceil(w / s) per class.
      const s = g.stride;
      const pixels = s * s * g.n * Math.ceil(g.height / s) * Math.ceil(g.width / s);
      // Blocks of 128 or 96 input channels, whichever leaves fewer idle (e.g. 96 for 96 channels).
      const idle = (block: number) => workgroupsFor(g.inChannels, block) * block - g.inChannels;
      const inputGrad = idle(96) < idle(128) ? BACKWARD_INPUT_96 : BACKWARD_INPUT;
      gpu.dispatch(
        inputGrad,
        { g: grad.buffer, w: weight.buffer, dx: dx.buffer },
        params,
        gemmWorkgroups(inputGrad, g.inChannels, pixels),
        2 * convMacs(g),
      );
    }
    // Safe to release now: later users of the pooled buffer are recorded after these dispatches.
    masked.dispose();
    return dx;
  },
};
