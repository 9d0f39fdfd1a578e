/**
 * nin-webgpu: the *Network in Network* CNN (Lin, Chen & Yan 2013, as in d2l's NiN chapter) trained and
 * run on hand-written WGSL compute kernels through WebGPU, with a PyTorch-like API.
 *
 * This entry is the core (`core.ts`, which runs wherever WebGPU runs, a browser included) plus the Deno
 * edge: files (safetensors, checkpoints), Fashion-MNIST's loader and cache, and the Dawn engine.
 *
 * @example
 * ```ts
 * import { nin, requestGpu, SGD, Tensor, trainStep } from "@nin/webgpu";
 * const gpu = await requestGpu();
 * const net = nin(gpu, { seed: 0 });
 * const opt = new SGD(net.parameters(), { lr: 0.1 });
 * const images = Tensor.zeros(gpu, [8, 1, 96, 96]);
 * const { loss } = await trainStep(net, opt, images, new Int32Array(8));
 * console.log(loss);
 * ```
 *
 * @module
 */
export * from "./core.ts";
// The Deno edge; its requestGpu (Dawn, NIN_KERNELS) takes the place of the core's.
export { requestGpu } from "./lib/deno/gpu.ts";
export { loadSafetensors, readSafetensors, saveSafetensors } from "./lib/deno/safetensors_file.ts";
export { loadCheckpoint, saveCheckpoint } from "./lib/deno/checkpoint_file.ts";
export {
  type FashionMnistFile,
  loadFashionMnist,
  type LoadFashionMnistOptions,
} from "./lib/deno/fashion_mnist.ts";
