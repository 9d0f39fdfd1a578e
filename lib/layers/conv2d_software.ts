/**
 * Conv2d's passes in the software-adapter kernel family: register-blocked implicit GEMMs shaped for
 * llvmpipe, where a workgroup of 8 invocations is one CPU thread and its invocations are SIMD lanes, so each
 * invocation owns a large block of outputs and loops over the whole reduction itself.
 *
 * @module
 */
import { kernel } from "../gpu/kernel.ts";
import { workgroupsFor } from "../module.ts";
import { Tensor } from "../tensor.ts";
import {
  type ConvBackward,
  type ConvForward,
  convMacs,
  type ConvPasses,
  convUniform,
} from "./conv2d_passes.ts";
import forwardCode from "../../kernels/conv2d_forward.wgsl" with { type: "text" };
import backwardInputCode from "../../kernels/conv2d_backward_input.wgsl" with { type: "text" };
import backwardWeightCode from "../../kernels/conv2d_backward_weight.wgsl" with { type: "text" };
import backwardBiasCode from "../../kernels/conv2d_backward_bias.wgsl" with { type: "text" };

const FORWARD = kernel("conv2d_forward", forwardCode);
const FORWARD_RELU = kernel("conv2d_forward_relu", forwardCode, { constants: { fuseRelu: 1 } });
const BACKWARD_INPUT = kernel("conv2d_backward_input", backwardInputCode);
/** The input gradient with 96 instead of 128 channels per workgroup, for layers where that wastes fewer lanes. */
const BACKWARD_INPUT_96 = kernel("conv2d_backward_input_96ch", backwardInputCode, {
  constants: { channelQuads: 3 },
});
const BACKWARD_WEIGHT = kernel("conv2d_backward_weight", backwardWeightCode);
const BACKWARD_BIAS = kernel("conv2d_backward_bias", backwardBiasCode);
/** The bias gradient of the ReLU-fused layer, which also writes the masked output gradient. */
const BACKWARD_BIAS_RELU = kernel("conv2d_backward_bias_relu", backwardBiasCode, {
  constants: { masked: 1 },
});

// Output block of one workgroup, as fixed by the kernels' constants.
const FORWARD_BLOCK = { channels: 128, positions: 32 };
const BACKWARD_INPUT_BLOCK = { pixels: 32 };
const BACKWARD_WEIGHT_BLOCK = { columns: 128, channels: 32 };

/** Records a convolution's forward (bias, and ReLU when fused, in the epilogue). */
function forward({ gpu, geometry: g, x, weight, bias, relu }: ConvForward): Tensor {
  const y = Tensor.empty(gpu, [g.n, g.outChannels, g.outHeight, g.outWidth], "activations");
  gpu.dispatch(
    relu ? FORWARD_RELU : FORWARD,
    { x: x.buffer, w: weight.buffer, bias: bias.buffer, y: y.buffer },
    convUniform(g),
    workgroupsFor(g.outChannels, FORWARD_BLOCK.channels) *
      workgroupsFor(g.n * g.outHeight * g.outWidth, FORWARD_BLOCK.positions),
    2 * convMacs(g),
  );
  return y;
}

/**
 * Records the bias, weight and (when asked) input gradients. With a fused ReLU the bias kernel masks dy by
 * (output > 0) once, into a temporary the two GEMMs read.
 */
function backward(
  { gpu, geometry: g, x, dy, y, weight, dw, db, needInputGrad }: ConvBackward,
): Tensor | null {
  const params = convUniform(g);
  const positions = g.outHeight * g.outWidth;
  // Without the ReLU the kernel's `saved` and `g` are placeholders it never touches.
  const masked = Tensor.empty(gpu, y ? dy.shape : [1], "workspace");
  gpu.dispatch(
    y ? BACKWARD_BIAS_RELU : BACKWARD_BIAS,
    { dy: dy.buffer, db: db.buffer, saved: (y ?? dy).buffer, g: masked.buffer },
    { n: g.n, channels: g.outChannels, positions },
    workgroupsFor(g.outChannels, y ? BACKWARD_BIAS_RELU : BACKWARD_BIAS),
    dy.size,
  );
  const grad = y ? masked : dy;
  const columns = g.inChannels * g.kernel * g.kernel;
  gpu.dispatch(
    BACKWARD_WEIGHT,
    { x: x.buffer, g: grad.buffer, dw: dw.buffer },
    params,
    workgroupsFor(columns, BACKWARD_WEIGHT_BLOCK.columns) *
      workgroupsFor(g.outChannels, BACKWARD_WEIGHT_BLOCK.channels),
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
    const channels = idle(96) < idle(128) ? 96 : 128;
    gpu.dispatch(
      channels === 96 ? BACKWARD_INPUT_96 : BACKWARD_INPUT,
      { g: grad.buffer, w: weight.buffer, dx: dx.buffer },
      params,
      workgroupsFor(g.inChannels, channels) * workgroupsFor(pixels, BACKWARD_INPUT_BLOCK.pixels),
      2 * convMacs(g),
    );
  }
  // Safe to release now: later users of the pooled buffer are recorded after these dispatches.
  masked.dispose();
  return dx;
}

/** The software-adapter family's convolution passes. */
export const SOFTWARE_CONV: ConvPasses = { forward, backward };
