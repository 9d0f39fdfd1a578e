/**
 * `requestGpu` for Deno: the core's, plus what only Deno has: the `dawn` engine (lib/deno/dawn.ts) and
 * the `NIN_KERNELS` environment variable as the default kernel family.
 *
 * @module
 */
import {
  type Gpu,
  type GpuOptions,
  type KernelChoice,
  kernelChoice as coreKernelChoice,
  requestGpu as requestCoreGpu,
} from "../gpu/device.ts";
import { requestDawnAdapter } from "./dawn.ts";
import { readEnv } from "./env.ts";
import { denoBackend } from "./backend.ts";

/**
 * The kernel family asked for: `requested`, else `NIN_KERNELS` where the environment may be read, else
 * `auto`; throws a `NinError` (exit 2) for an unknown name.
 *
 * @example
 * ```ts
 * import { kernelChoice } from "./gpu.ts";
 * console.log(kernelChoice("gpu")); // gpu
 * ```
 */
export function kernelChoice(requested: KernelChoice | undefined): KernelChoice {
  return coreKernelChoice(requested ?? readEnv("NIN_KERNELS"));
}

/**
 * Opens a WebGPU adapter and device as the core's `requestGpu` does; under Deno the engine may also be
 * `dawn`, and the kernel family defaults to `NIN_KERNELS` where the environment may be read.
 *
 * @example
 * ```ts
 * import { requestGpu } from "@nin/webgpu";
 * const gpu = await requestGpu({ engine: "deno", kernels: "auto" });
 * console.log(gpu.describe());
 * gpu.destroy();
 * ```
 */
export async function requestGpu(options: GpuOptions = {}): Promise<Gpu> {
  const openAdapter = options.openAdapter ?? (options.engine === "dawn" ? requestDawnAdapter : undefined);
  return await requestCoreGpu({
    ...options,
    kernels: kernelChoice(options.kernels),
    openAdapter,
    backend: options.backend ?? denoBackend(),
  });
}
