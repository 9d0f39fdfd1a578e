/**
 * The counting device: the part of `GPUDevice` the runtime uses, executing nothing. Buffers exist only as
 * sizes, dispatches only as records, reads return zeros. Running the real model code on it (`nin()`,
 * `predictClasses`, `trainStep`) gives the exact peak memory and FLOPs of a configuration in milliseconds,
 * with no adapter: that is how `deno task resources` and `deno task bench --plan` get their figures.
 *
 * @module
 */
import { Gpu, type KernelChoice } from "./device.ts";

/** Options of {@link countingGpu}. */
export interface CountingOptions {
  /**
   * The device limits to pose with, e.g. a real device's (`countingLimits(gpu.limits)`) so that the plan
   * (GEMM candidates, micro-batches, texture use) is the one that device runs. Each one missing is WebGPU's
   * default limit where the toolkit asks for more (binding 128 MiB, workgroup memory 16 KiB).
   */
  limits?: Partial<CountingLimits>;
  /** Whether to pose as a software adapter (default false). */
  software?: boolean;
  /** Kernel family (default `auto`: follows `software`). */
  kernels?: KernelChoice;
  /**
   * Whether to pose as an adapter with read-only storage textures (default true: every engine here has
   * them, and so do current browsers); the software family's plan depends on it.
   */
  readOnlyStorageTextures?: boolean;
}

/** The limits the toolkit's plans read from a device. */
export type CountingLimits = Pick<
  GPUSupportedLimits,
  | "maxStorageBufferBindingSize"
  | "maxBufferSize"
  | "maxComputeWorkgroupsPerDimension"
  | "maxComputeWorkgroupStorageSize"
  | "maxComputeInvocationsPerWorkgroup"
  | "maxComputeWorkgroupSizeX"
  | "maxComputeWorkgroupSizeY"
  | "maxStorageBuffersPerShaderStage"
  | "maxStorageTexturesPerShaderStage"
  | "maxTextureDimension2D"
>;

/** WebGPU's default limits where the toolkit asks for more; the rest generous. */
const LIMITS: CountingLimits = {
  maxStorageBufferBindingSize: 134217728,
  maxBufferSize: 268435456,
  maxComputeWorkgroupsPerDimension: 65535,
  maxComputeWorkgroupStorageSize: 16384,
  maxComputeInvocationsPerWorkgroup: 256,
  maxComputeWorkgroupSizeX: 256,
  maxComputeWorkgroupSizeY: 256,
  maxStorageBuffersPerShaderStage: 8,
  maxStorageTexturesPerShaderStage: 4,
  maxTextureDimension2D: 8192,
};

/**
 * A {@link Gpu} on a device that counts instead of computing.
 *
 * @example
 * ```ts
 * import { countingGpu, nin, Tensor } from "@nin/webgpu";
 * const gpu = countingGpu();
 * const net = nin(gpu).eval();
 * const records = await gpu.trace(async () => net.forward(Tensor.zeros(gpu, [1, 1, 224, 224])).dispose());
 * console.log(records.length, gpu.memory.peakBytes);
 * ```
 */
export function countingGpu(options: CountingOptions = {}): Gpu {
  const limits = { ...LIMITS, ...options.limits };
  const software = options.software ?? false;
  return new Gpu(countingDevice(limits), {
    engine: "deno",
    adapterName: "counting device",
    isSoftware: software,
    kernels: options.kernels ?? "auto",
    key: `counting ${software ? "software" : "gpu"}`,
    readOnlyStorageTextures: options.readOnlyStorageTextures ?? true,
  });
}

/**
 * The limits of a real device that its plan depends on, to hand to {@link countingGpu}.
 *
 * @example
 * ```ts
 * import { countingGpu, countingLimits } from "@nin/webgpu";
 * const real = countingGpu({ limits: { maxComputeWorkgroupStorageSize: 32768 } });
 * const twin = countingGpu({ limits: countingLimits(real.limits) });
 * console.log(twin.limits.maxComputeWorkgroupStorageSize); // 32768
 * ```
 */
export function countingLimits(limits: GPUSupportedLimits): CountingLimits {
  const keys = Object.keys(LIMITS) as (keyof CountingLimits)[];
  return Object.fromEntries(keys.map((key) => [key, limits[key]])) as CountingLimits;
}

function countingBuffer(descriptor: GPUBufferDescriptor): GPUBuffer {
  let mapped: ArrayBuffer | null = descriptor.mappedAtCreation ? new ArrayBuffer(descriptor.size) : null;
  const buffer = {
    size: descriptor.size,
    usage: descriptor.usage,
    label: descriptor.label ?? "",
    mapState: "unmapped",
    mapAsync: () => {
      mapped = new ArrayBuffer(descriptor.size);
      return Promise.resolve();
    },
    getMappedRange: () => mapped ?? new ArrayBuffer(descriptor.size),
    unmap: () => void (mapped = null),
    destroy: () => {},
  };
  return buffer as unknown as GPUBuffer;
}

function countingTexture(descriptor: GPUTextureDescriptor): GPUTexture {
  const texture = { label: descriptor.label ?? "", createView: () => ({ label: "" }), destroy: () => {} };
  return texture as unknown as GPUTexture;
}

function countingDevice(limits: CountingLimits): GPUDevice {
  const pass = { setPipeline() {}, setBindGroup() {}, dispatchWorkgroups() {}, end() {} };
  const encoder = {
    beginComputePass: () => pass,
    clearBuffer() {},
    copyBufferToBuffer() {},
    finish: () => ({}),
  };
  const pipeline = { getBindGroupLayout: () => ({}) };
  const device = {
    limits,
    features: new Set<string>(),
    lost: new Promise<never>(() => {}),
    queue: { submit() {}, writeBuffer() {}, onSubmittedWorkDone: () => Promise.resolve() },
    addEventListener() {},
    createBuffer: countingBuffer,
    createTexture: countingTexture,
    createShaderModule: () => ({}),
    createComputePipeline: () => pipeline,
    createBindGroup: () => ({}),
    createCommandEncoder: () => encoder,
    destroy() {},
  };
  return device as unknown as GPUDevice;
}
