/**
 * The GPU context: one adapter's device, its health (errors, loss), and the runtime's parts, each in its own
 * file: the buffer pool with accounting (`pool.ts`), command recording (`recorder.ts`), profiling
 * (`profiler.ts`) and kernels read by name (`kernel.ts`). {@link requestGpu} opens a real adapter;
 * `countingGpu` (`counting.ts`) gives the same context on a device that only counts.
 *
 * @module
 */
import { NinError } from "../errors.ts";
import { readEnv } from "../env.ts";
import { type Kernel, packParams } from "./kernel.ts";
import { BufferPool, bufferSize, type MemoryStats } from "./pool.ts";
import { type DispatchRecord, Profiler } from "./profiler.ts";
import { CommandRecorder, encode } from "./recorder.ts";

export type { DispatchRecord, Kernel, MemoryStats };

/** Which WebGPU implementation to use: Deno's built-in (wgpu) or Chrome's Dawn from `npm:webgpu`. */
export type Engine = "deno" | "dawn";

/**
 * The two kernel families: `software` is shaped for a CPU software adapter (a workgroup is one CPU thread,
 * its invocations SIMD lanes: few, large register blocks), `gpu` for real GPUs (many workgroups of 64-256
 * invocations, tiles staged in workgroup memory, split-K reductions).
 */
export type KernelFamily = "software" | "gpu";

/** A kernel family, or `auto`: `software` on software adapters, `gpu` otherwise. */
export type KernelChoice = "auto" | KernelFamily;

/** Options for {@link requestGpu}. */
export interface GpuOptions {
  /** WebGPU implementation (default `"deno"`). */
  engine?: Engine;
  /** Kernel family (default: the `NIN_KERNELS` environment variable if readable, else `"auto"`). */
  kernels?: KernelChoice;
  /** Adapter preference passed to `requestAdapter` (default `"high-performance"`). */
  powerPreference?: GPUPowerPreference;
}

/** What a {@link Gpu} is told about the adapter behind its device. */
export interface AdapterInfo {
  /** Which implementation runs it. */
  engine: Engine;
  /** Adapter description, e.g. `llvmpipe (LLVM 15.0.6, 256 bits)`. */
  adapterName: string;
  /** True for software adapters. */
  isSoftware: boolean;
  /** The kernel family asked for. */
  kernels: KernelChoice;
  /** Vendor, architecture and driver, for caches kept per adapter. */
  key: string;
  /**
   * Whether WGSL's `readonly_and_readwrite_storage_textures` language feature is there (read-only storage
   * textures, the software family's fastest operand path on llvmpipe); default false.
   */
  readOnlyStorageTextures?: boolean;
  /** Called after the device is destroyed (drops the Dawn instance). */
  onDestroy?: () => void;
}

const STORAGE_USAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
const TEXTURE_USAGE = GPUTextureUsage.STORAGE_BINDING;

/**
 * A WebGPU device with the toolkit's bookkeeping. Get one with {@link requestGpu}.
 *
 * @example
 * ```ts
 * import { requestGpu } from "@nin/webgpu";
 * const gpu = await requestGpu();
 * console.log(gpu.adapterName, gpu.isSoftware, gpu.kernels, gpu.limits.maxStorageBufferBindingSize);
 * gpu.destroy();
 * ```
 */
export class Gpu {
  /** The WebGPU device. */
  readonly device: GPUDevice;
  /** Which implementation runs it. */
  readonly engine: Engine;
  /** Adapter description, e.g. `llvmpipe (LLVM 15.0.6, 256 bits)`. */
  readonly adapterName: string;
  /** True for software adapters (llvmpipe, SwiftShader, fallback adapters): slow, for correctness only. */
  readonly isSoftware: boolean;
  /** The kernel family layers use on this device. */
  readonly kernels: KernelFamily;
  /** Engine, vendor, architecture and driver: what a per-adapter cache is keyed by. */
  readonly adapterKey: string;
  /** The device's limits. */
  readonly limits: GPUSupportedLimits;
  /** Whether kernels may read `texture_storage_2d<..., read>` bindings (see {@link AdapterInfo}). */
  readonly readOnlyStorageTextures: boolean;
  /** Storage buffers, reused by size, with live and peak accounting. */
  readonly pool: BufferPool;
  /** The command stream being recorded. */
  readonly recorder: CommandRecorder;
  /** Per-dispatch timing, for {@link Gpu.trace} with `timed`. */
  readonly profiler: Profiler;
  /** Running total of FLOPs of all dispatches recorded so far. */
  flopsDispatched = 0;

  #pipelines = new Map<string, GPUComputePipeline>();
  #scopes: string[] = [];
  #trace: { records: DispatchRecord[]; timed: boolean } | null = null;
  #error: string | null = null;
  #lost: string | null = null;
  #destroyed = false;
  #onDestroy: () => void;

  /** Wraps a device; use {@link requestGpu} rather than calling this directly. */
  constructor(device: GPUDevice, info: AdapterInfo) {
    this.device = device;
    this.engine = info.engine;
    this.adapterName = info.adapterName;
    this.isSoftware = info.isSoftware;
    this.kernels = info.kernels === "auto" ? (info.isSoftware ? "software" : "gpu") : info.kernels;
    this.adapterKey = info.key;
    this.limits = device.limits;
    this.readOnlyStorageTextures = info.readOnlyStorageTextures === true;
    this.#onDestroy = info.onDestroy ?? (() => {});
    this.pool = new BufferPool(
      (size, label) => device.createBuffer({ size, usage: STORAGE_USAGE, label }),
      (width, height, label) =>
        device.createTexture({ size: [width, height], format: "rgba32float", usage: TEXTURE_USAGE, label }),
    );
    this.recorder = new CommandRecorder(device, async (e) => {
      await this.#settleLoss();
      this.checkHealthy();
      throw new NinError(`reading a GPU buffer failed: ${e.message.split("\n")[0]}`);
    });
    this.profiler = new Profiler(device, this.recorder, device.features.has("timestamp-query"));
    device.addEventListener("uncapturederror", (event) => {
      const message = (event as GPUUncapturedErrorEvent).error.message;
      this.#error ??= message.split("\n").map((l) => l.trim()).filter((l) => l).join(" ");
    });
    device.lost.then((info) => {
      if (!this.#destroyed) this.#lost = info.message || String(info.reason);
    });
  }

  /** `llvmpipe (...) (deno, software adapter, software kernels)`: the device line the tasks print. */
  describe(): string {
    return `${this.adapterName} (${this.engine}${
      this.isSoftware ? ", software adapter" : ""
    }, ${this.kernels} kernels)`;
  }

  /** Live and peak GPU bytes held by tensors and saved state (a copy). */
  get memory(): MemoryStats {
    return this.pool.memory;
  }

  /** Starts peak tracking afresh from the current live bytes. */
  resetPeak(): void {
    this.pool.resetPeak();
  }

  /** The dotted name of the layer now running (`""` outside any layer). */
  get scope(): string {
    return this.#scopes.join(".");
  }

  /** Runs `work` with `name` appended to the scope that allocations and dispatches are attributed to. */
  inScope<T>(name: string, work: () => T): T {
    this.#scopes.push(name);
    try {
      return work();
    } finally {
      this.#scopes.pop();
    }
  }

  /**
   * Runs `work` and returns the dispatches it recorded (kernel, workgroups, workgroup size, FLOPs, scope);
   * with `timed`, each also gets its GPU time (see {@link Profiler}).
   */
  async trace(work: () => Promise<unknown>, options: { timed?: boolean } = {}): Promise<DispatchRecord[]> {
    const trace = { records: [] as DispatchRecord[], timed: options.timed === true };
    this.#trace = trace;
    try {
      await work();
    } finally {
      this.#trace = null;
    }
    if (trace.timed) await this.profiler.collect();
    return trace.records;
  }

  /** Throws a {@link NinError} if the device was lost or a validation error was reported. */
  checkHealthy(): void {
    if (this.#destroyed) throw new NinError("the GPU context was already destroyed");
    if (this.#lost !== null) {
      throw new NinError(
        `the GPU device was lost (${this.#lost}); restart the run (use --resume to continue)`,
      );
    }
    if (this.#error !== null) {
      const message = this.#error;
      this.#error = null;
      throw new NinError(`GPU error: ${message}`);
    }
  }

  /**
   * Runs `work`; when it fails with anything but a {@link NinError}, waits briefly for the device's `lost`
   * promise, so a device lost mid-step is reported as such rather than as whatever invalid-object error
   * the engine raised first. Other errors are rethrown unchanged.
   */
  async guard<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (e) {
      if (e instanceof NinError) throw e;
      await this.#settleLoss();
      this.checkHealthy();
      throw e;
    }
  }

  /** Gives the `lost` promise up to 100 ms to settle (it resolves a moment after the loss itself). */
  async #settleLoss(): Promise<void> {
    if (this.#destroyed || this.#lost !== null) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([this.device.lost, new Promise((resolve) => timer = setTimeout(resolve, 100))]);
    clearTimeout(timer);
  }

  /** The compute pipeline for a kernel, compiled once per device and cached by name. */
  pipeline(k: Kernel): GPUComputePipeline {
    let pipeline = this.#pipelines.get(k.name);
    if (!pipeline) {
      const module = this.device.createShaderModule({ label: k.name, code: k.code });
      pipeline = this.device.createComputePipeline({
        label: k.name,
        layout: "auto",
        compute: { module, entryPoint: k.entryPoint, constants: k.constants },
      });
      this.#pipelines.set(k.name, pipeline);
    }
    return pipeline;
  }

  /**
   * A storage buffer of at least `bytes` bytes, from the pool when one of that size is free, accounted as
   * `what` in the current scope until {@link Gpu.release}. Its contents are undefined.
   */
  allocate(bytes: number, what = "tensor"): GPUBuffer {
    this.checkHealthy();
    if (bufferSize(bytes) > this.limits.maxStorageBufferBindingSize) {
      throw new NinError(
        `${what} needs ${mib(bufferSize(bytes))} but this device binds at most ${
          mib(this.limits.maxStorageBufferBindingSize)
        } per buffer (maxStorageBufferBindingSize); use a smaller batch or input size`,
      );
    }
    return this.pool.allocate(bytes, what, this.scope);
  }

  /** Returns a buffer from {@link Gpu.allocate} (or a texture from {@link Gpu.allocateTexture}) to the pool. */
  release(buffer: GPUBuffer | GPUTexture): void {
    this.pool.release(buffer);
  }

  /**
   * A 2-d `rgba32float` texture of `width` x `height` texels that kernels write as a storage texture and read
   * as a read-only one, from the pool like {@link Gpu.allocate}'s buffers and accounted the same way (16
   * bytes a texel) until {@link Gpu.release}. Its contents are undefined.
   */
  allocateTexture(width: number, height: number, what = "texture"): GPUTexture {
    this.checkHealthy();
    const side = this.limits.maxTextureDimension2D;
    if (width > side || height > side) {
      throw new Error(`${what}: a ${width} x ${height} texture is over this device's ${side} texels a side`);
    }
    return this.pool.allocateTexture(width, height, what, this.scope);
  }

  /**
   * Records one dispatch: `params` fill the kernel's `Params` uniform by field name, `buffers` its storage
   * bindings (buffers, or views of storage textures) by variable name, and `workgroups` workgroups run. A count above the per-dimension limit is
   * folded into y; kernels recover the linear workgroup index from `num_workgroups`.
   */
  dispatch(
    k: Kernel,
    buffers: Readonly<Record<string, GPUBuffer | GPUTextureView>>,
    params: Readonly<Record<string, number>>,
    workgroups: number,
    flops = 0,
  ): void {
    this.checkHealthy();
    const pipeline = this.pipeline(k);
    const entries: GPUBindGroupEntry[] = [];
    if (k.params.length > 0) {
      entries.push({ binding: 0, resource: { buffer: this.recorder.uniform(packParams(k, params)) } });
    }
    for (const [name, buffer] of Object.entries(buffers)) {
      const binding = k.bindings.get(name);
      if (binding === undefined) throw new Error(`${k.name}: no binding named ${name}`);
      entries.push({ binding, resource: isBuffer(buffer) ? { buffer } : buffer });
    }
    const bindGroup = this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
    const maxPerDim = this.limits.maxComputeWorkgroupsPerDimension;
    const x = Math.min(workgroups, maxPerDim);
    const y = Math.ceil(workgroups / maxPerDim);
    if (y > maxPerDim) throw new NinError(`${k.name}: ${workgroups} workgroups is more than a device runs`);
    this.flopsDispatched += flops;
    const trace = this.#trace;
    const record = trace &&
      { kernel: k.name, workgroups, workgroupSize: k.workgroupSize, flops, scope: this.scope, ns: NaN };
    if (record) trace.records.push(record);
    const work = { pipeline, bindGroup, x, y };
    const timed = trace?.timed ? record : null;
    encode(timed ? this.profiler.pass(timed, work) : this.recorder.pass(), work);
    if (timed) this.recorder.endPass();
  }

  /** Records zero-filling of a buffer, ordered with the dispatches around it. */
  clear(buffer: GPUBuffer, bytes?: number): void {
    this.recorder.clear(buffer, bytes);
  }

  /** Records a buffer-to-buffer copy (offsets in bytes, multiples of 4), ordered with the dispatches around it. */
  copy(source: GPUBuffer, target: GPUBuffer, bytes: number, sourceOffset = 0, targetOffset = 0): void {
    this.recorder.copy(source, target, bytes, sourceOffset, targetOffset);
  }

  /** Records a write of host data into a buffer, ordered with the dispatches around it. */
  write(buffer: GPUBuffer, data: ArrayBufferView): void {
    this.checkHealthy();
    this.recorder.write(buffer, data);
  }

  /** Submits everything recorded so far (does not wait for it). */
  flush(): void {
    this.checkHealthy();
    this.recorder.flush();
  }

  /** Submits pending work and waits until the GPU has finished it; throws if the device reported an error. */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    this.checkHealthy();
  }

  /** Copies `bytes` bytes of a buffer back to the host after all recorded work. */
  async read(buffer: GPUBuffer, bytes: number): Promise<ArrayBuffer> {
    this.checkHealthy();
    const out = await this.recorder.read(buffer, bytes);
    this.checkHealthy();
    return out;
  }

  /** Releases the device and everything on it. The context cannot be used afterwards. */
  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.recorder.abandon();
    this.device.destroy();
    this.#onDestroy();
  }
}

/**
 * `GPU.wgslLanguageFeatures` (the standard's, missing from Deno's type declarations), or undefined where the
 * implementation has none.
 */
export function wgslLanguageFeatures(gpu: GPU): ReadonlySet<string> | undefined {
  return (gpu as { wgslLanguageFeatures?: ReadonlySet<string> }).wgslLanguageFeatures;
}

/** A buffer, as told from a texture view (engines differ in their classes, so by its methods). */
function isBuffer(resource: GPUBuffer | GPUTextureView): resource is GPUBuffer {
  return typeof (resource as GPUBuffer).mapAsync === "function";
}

/** Formats a byte count as MiB with one decimal. */
export function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

const SOFTWARE_ADAPTERS = /llvmpipe|lavapipe|swiftshader|softpipe|warp|basic render/i;

/** The limits the toolkit asks for at the adapter's own maximum. */
const WANTED_LIMITS = [
  "maxStorageBufferBindingSize",
  "maxBufferSize",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupSizeY",
  "maxStorageBuffersPerShaderStage",
  "maxStorageTexturesPerShaderStage",
  "maxTextureDimension2D",
] as const;

const KERNEL_CHOICES: readonly KernelChoice[] = ["auto", "software", "gpu"];

/**
 * The kernel family asked for: `requested`, else `NIN_KERNELS` where the environment may be read, else
 * `auto`; throws a {@link NinError} (exit 2) for an unknown name.
 */
export function kernelChoice(requested: KernelChoice | undefined): KernelChoice {
  const choice: string | undefined = requested ?? readEnv("NIN_KERNELS");
  if (choice !== undefined && !KERNEL_CHOICES.includes(choice as KernelChoice)) {
    throw new NinError(`unknown kernel family "${choice}"; use auto, software or gpu`, 2);
  }
  return (choice ?? "auto") as KernelChoice;
}

/**
 * Opens a WebGPU adapter and device with the adapter's maximum binding and workgroup limits, and picks the
 * kernel family (`auto`: software kernels on software adapters, GPU kernels otherwise).
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
  const engine = options.engine ?? "deno";
  const kernels = kernelChoice(options.kernels);
  const powerPreference = options.powerPreference ?? "high-performance";
  let adapter: GPUAdapter | null;
  let onDestroy: (() => void) | undefined;
  let languageFeatures: ReadonlySet<string> | undefined;
  if (engine === "dawn") {
    const { requestDawnAdapter } = await import("../dawn.ts");
    ({ adapter, release: onDestroy, languageFeatures } = await requestDawnAdapter(powerPreference));
  } else if (engine === "deno") {
    const gpuApi = (globalThis.navigator as { gpu?: GPU } | undefined)?.gpu;
    if (!gpuApi) throw new NinError("this Deno has no WebGPU (navigator.gpu); use Deno 2.9 or newer");
    languageFeatures = wgslLanguageFeatures(gpuApi);
    adapter = await gpuApi.requestAdapter({ powerPreference });
    if (!adapter) {
      throw new NinError("no WebGPU adapter found (engine deno); check the GPU driver or try --gpu dawn");
    }
  } else {
    throw new NinError(`unknown GPU engine "${engine}"; use "deno" or "dawn"`, 2);
  }
  const requiredLimits: Record<string, number> = {};
  for (const name of WANTED_LIMITS) requiredLimits[name] = adapter.limits[name];
  const requiredFeatures: GPUFeatureName[] = adapter.features.has("timestamp-query")
    ? ["timestamp-query"]
    : [];
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
  } catch (e) {
    onDestroy?.();
    throw new NinError(`the WebGPU adapter refused a device: ${(e as Error).message.split("\n")[0]}`);
  }
  const info = adapter.info;
  // wgpu puts the adapter's name in `description` and a numeric id in `device`; Dawn puts the name in
  // `device` and the driver (e.g. "OpenGL version 4.5 (Core Profile) Mesa 22.3.6") in `description`.
  const names = [info.device, info.description].filter((s) => s && !/^\d+$/.test(s));
  const adapterName = names.map((s) => s.replace(/-+$/, "")).join(", ") || "unknown adapter";
  const isFallback = (info as { isFallbackAdapter?: boolean }).isFallbackAdapter === true;
  const allInfo = [info.vendor, info.architecture, info.device, info.description].join(" ");
  return new Gpu(device, {
    engine,
    adapterName,
    isSoftware: isFallback || SOFTWARE_ADAPTERS.test(allInfo),
    kernels,
    key: [engine, info.vendor, info.architecture, info.device, info.description].join("|"),
    readOnlyStorageTextures: languageFeatures?.has("readonly_and_readwrite_storage_textures") === true,
    onDestroy,
  });
}
