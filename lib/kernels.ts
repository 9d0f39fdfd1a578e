/**
 * The kernel plan: which implementation of a layer's passes a device uses. Layers ask here and never branch
 * on the adapter themselves; the family is chosen once per device (`Gpu.kernels`).
 *
 * @module
 */
import type { Gpu } from "./gpu/device.ts";
import type { ConvPasses } from "./layers/conv2d_passes.ts";
import { GPU_CONV } from "./layers/conv2d_gpu.ts";
import { SOFTWARE_CONV } from "./layers/conv2d_software.ts";

/** The Conv2d passes of the device's kernel family. */
export function convPasses(gpu: Gpu): ConvPasses {
  return gpu.kernels === "gpu" ? GPU_CONV : SOFTWARE_CONV;
}

/**
 * How MaxPool2d's backward runs on the device's family: the gpu family gathers one input element per
 * invocation (parallel enough for a GPU); the software family scatters one plane per invocation, which on
 * llvmpipe's few lanes does a quarter of the loads and no per-element division. Both give the same bits.
 */
export function maxpoolBackwardLayout(gpu: Gpu): "elements" | "planes" {
  return gpu.kernels === "gpu" ? "elements" : "planes";
}
