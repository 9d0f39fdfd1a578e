/**
 * The GPU context: one adapter's device, its health (errors, loss), and the runtime's parts, each in its own
 * file: the buffer pool with accounting (`pool.ts`), command recording (`recorder.ts`), profiling
 * (`profiler.ts`) and kernels read by name (`kernel.ts`). {@link requestGpu} opens a real adapter;
 * `countingGpu` (`counting.ts`) gives the same context on a device that only counts.
 *
 * @module
 */
import { NinError } from "../errors.ts";
import { type Kernel, packParams } from "./kernel.ts";
import { BufferPool, bufferSize, type LiveBuffer, type MemoryStats } from "./pool.ts";
import { Profiler, type TimingMethod } from "./profiler.ts";
import { CommandRecorder, encode, type ReadPart } from "./recorder.ts";
import { type DispatchRecord, type Phase, RecordStream } from "./records.ts";
import type { Tuning } from "../tuning.ts";

export type { DispatchRecord, Kernel, MemoryStats, Phase, ReadPart };

/**
 * Which WebGPU implementation to use: Deno's built-in (wgpu), Chrome's Dawn from `npm:webgpu` (Deno only:
 * the package's main entry supplies its adapter), or the browser's own `navigator.gpu`.
 */
export type Engine = "deno" | "dawn" | "browser";

/**
 * Opens an engine's adapter; `release` (if any) runs after the device is destroyed; `backend` is the graphics
 * API under it, where the engine tells it; `languageFeatures` its instance's `wgslLanguageFeatures`.
 */
export type OpenAdapter = (
  powerPreference: GPUPowerPreference,
) => Promise<{
  adapter: GPUAdapter;
  release?: () => void;
  backend?: string;
  languageFeatures?: ReadonlySet<string>;
}>;

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
  /** WebGPU implementation (default `"deno"` under Deno, else `"browser"`). */
  engine?: Engine;
  /**
   * Kernel family (default `"auto"`; the main entry's `requestGpu` reads the `NIN_KERNELS` environment
   * variable first).
   */
  kernels?: KernelChoice;
  /** Opens the adapter instead of `navigator.gpu` (the main entry passes Dawn's for engine `dawn`). */
  openAdapter?: OpenAdapter;
  /** Adapter preference passed to `requestAdapter` (default `"high-performance"`). */
  powerPreference?: GPUPowerPreference;
  /**
   * The graphics API under `navigator.gpu`'s adapters (`Vulkan`, `OpenGL`, ...), where the caller knows it
   * (the main entry reads `DENO_WEBGPU_BACKEND`); an `openAdapter` that reports one wins.
   */
  backend?: string;
}

/** What a {@link Gpu} is told about the adapter behind its device. */
export interface AdapterInfo {
  /** Which implementation runs it. */
  engine: Engine;
  /** Adapter description, e.g. `llvmpipe (LLVM 15.0.6, 256 bits)`. */
  adapterName: string;
  /** The graphics API under the adapter (`Vulkan`, `OpenGL`, `Metal`, `D3D12` ...), where the engine tells it. */
  backend?: string;
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

/** Bind groups kept for reuse; a NiN step at any size uses a few hundred. */
const MAX_BIND_GROUPS = 8192;

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
  /**
   * The graphics API under the adapter (`Vulkan`, `OpenGL`, `Metal`, `D3D12` ...), or undefined where the
   * engine does not tell it: Dawn always does; Deno only when `DENO_WEBGPU_BACKEND` names one backend.
   */
  readonly backend: string | undefined;
  /** True for software adapters (llvmpipe, SwiftShader, fallback adapters): slow, for correctness only. */
  readonly isSoftware: boolean;
  /** The kernel family layers use on this device. */
  readonly kernels: KernelFamily;
  /** Engine, vendor, architecture and driver: what a per-adapter cache is keyed by. */
  readonly adapterKey: string;
  /** The device's limits. */
  readonly limits: GPUSupportedLimits;
  /**
   * This adapter's tuned kernel choices (see lib/tuning.ts): empty until loaded from the per-adapter cache
   * or measured; layers read it through the kernel plan, never from module state.
   */
  tuning: Tuning = { choices: {}, cached: false };
  /** Whether kernels may read `texture_storage_2d<..., read>` bindings (see {@link AdapterInfo}). */
  readonly readOnlyStorageTextures: boolean;

  #pool: BufferPool;
  #recorder: CommandRecorder;
  #profiler: Profiler;
  #records = new RecordStream();
  /** Pipelines by kernel: variants of one kernel (a candidate's shape, a layer's constants) share its name. */
  #pipelines = new Map<Kernel, { pipeline: GPUComputePipeline; id: number }>();
  #bindGroups = new Map<string, GPUBindGroup>();
  #bufferIds = new WeakMap<GPUBuffer | GPUTextureView, number>();
  #views = new WeakMap<GPUTexture, GPUTextureView>();
  #nextBufferId = 0;
  #error: string | null = null;
  #lost: string | null = null;
  #destroyed = false;
  #onDestroy: () => void;

  /** Wraps a device; use {@link requestGpu} rather than calling this directly. */
  constructor(device: GPUDevice, info: AdapterInfo) {
    this.device = device;
    this.engine = info.engine;
    this.adapterName = info.adapterName;
    this.backend = info.backend;
    this.isSoftware = info.isSoftware;
    this.kernels = info.kernels === "auto" ? (info.isSoftware ? "software" : "gpu") : info.kernels;
    this.adapterKey = info.key;
    this.limits = device.limits;
    this.readOnlyStorageTextures = info.readOnlyStorageTextures === true;
    this.#onDestroy = info.onDestroy ?? (() => {});
    this.#pool = new BufferPool(
      (size, label) => device.createBuffer({ size, usage: STORAGE_USAGE, label }),
      (width, height, label) =>
        device.createTexture({ size: [width, height], format: "rgba32float", usage: TEXTURE_USAGE, label }),
    );
    this.#recorder = new CommandRecorder(device, async (e) => {
      await this.#settleLoss();
      this.checkHealthy();
      throw new NinError(`reading a GPU buffer failed: ${e.message.split("\n")[0]}`);
    });
    this.#profiler = new Profiler(device, this.#recorder, device.features.has("timestamp-query"));
    device.addEventListener("uncapturederror", (event) => {
      const message = (event as GPUUncapturedErrorEvent).error.message;
      this.#error ??= message.split("\n").map((l) => l.trim()).filter((l) => l).join(" ");
    });
    device.lost.then((info) => {
      if (!this.#destroyed) this.#lost = info.message || String(info.reason);
    });
  }

  /** `llvmpipe (...) (deno, Vulkan, software adapter, software kernels)`: the device line the tasks print. */
  describe(): string {
    const traits = [this.engine, this.backend, this.isSoftware ? "software adapter" : undefined];
    return `${this.adapterName} (${traits.filter((t) => t).join(", ")}, ${this.kernels} kernels)`;
  }

  /** Live and peak GPU bytes held by tensors and saved state (a copy). */
  get memory(): MemoryStats {
    return this.#pool.memory;
  }

  /** The buffers live now, in allocation order (size, category, scope, phase). */
  get liveBuffers(): LiveBuffer[] {
    return this.#pool.live;
  }

  /** The buffers that were live when the peak was reached, in allocation order (the last one set it). */
  get buffersAtPeak(): readonly LiveBuffer[] {
    return this.#pool.atPeak;
  }

  /** Starts peak tracking afresh from the current live bytes. */
  resetPeak(): void {
    this.#pool.resetPeak();
  }

  /** How {@link Gpu.trace} with `timed` times dispatches on this device. */
  get timingMethod(): TimingMethod {
    return this.#profiler.method;
  }

  /** The dotted name of the layer now running (`""` outside any layer). */
  get scope(): string {
    return this.#records.scope;
  }

  /** The phase now running (`other` outside any step part). */
  get phase(): Phase {
    return this.#records.phase;
  }

  /** Runs `work` with `name` appended to the scope that allocations and dispatches are attributed to. */
  inScope<T>(name: string, work: () => T): T {
    return this.#records.inScope(name, work);
  }

  /** Runs `work` with its dispatches and allocations attributed to `phase` (the innermost phase wins). */
  inPhase<T>(phase: Phase, work: () => T): T {
    return this.#records.inPhase(phase, work);
  }

  /**
   * Runs `work` and returns the record of every dispatch it recorded (kernel, candidate, workgroups, FLOPs,
   * scope, phase); with `timed`, each also gets its GPU time (see {@link Profiler}). Traces nest: a dispatch
   * is delivered to every trace open at the time.
   */
  async trace(work: () => unknown, options: { timed?: boolean } = {}): Promise<DispatchRecord[]> {
    const trace = this.#records.open(options.timed === true);
    try {
      await work();
    } finally {
      this.#records.close(trace);
    }
    if (trace.timed) await this.#profiler.collect();
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

  /** The compute pipeline for a kernel, compiled once per device and cached by kernel. */
  pipeline(k: Kernel): GPUComputePipeline {
    return this.#compiled(k).pipeline;
  }

  #compiled(k: Kernel): { pipeline: GPUComputePipeline; id: number } {
    let compiled = this.#pipelines.get(k);
    if (!compiled) {
      const module = this.device.createShaderModule({ label: k.name, code: k.code });
      const pipeline = this.device.createComputePipeline({
        label: k.name,
        layout: "auto",
        compute: { module, entryPoint: k.entryPoint, constants: k.constants },
      });
      compiled = { pipeline, id: this.#pipelines.size };
      this.#pipelines.set(k, compiled);
    }
    return compiled;
  }

  /**
   * A storage buffer of at least `bytes` bytes, from the pool when one of that size is free, accounted as
   * `what` in the current scope until {@link Gpu.release}. Its contents are undefined.
   */
  allocate(bytes: number, what = "tensor"): GPUBuffer {
    this.checkHealthy();
    if (bufferSize(bytes) > this.limits.maxStorageBufferBindingSize) {
      // Parameters and their gradients and momentum have the model's size whatever the batch and input.
      const fixed = /^(parameters|parameter gradients|momentum buffers)$/.test(what);
      const fix = fixed
        ? "their size does not depend on the batch or input size: this model needs a device with a larger " +
          "binding limit (or fewer channels)"
        : "use a smaller batch or input size (or --micro-batch)";
      throw new NinError(
        `${what}${this.scope ? ` of ${this.scope}` : ""}: ${mib(bufferSize(bytes))} in one buffer, but ` +
          `this device binds at most ${mib(this.limits.maxStorageBufferBindingSize)} ` +
          `(maxStorageBufferBindingSize); ${fix}`,
      );
    }
    return this.#pool.allocate(bytes, what, this.scope, this.phase);
  }

  /** Returns a buffer from {@link Gpu.allocate} (or a texture from {@link Gpu.allocateTexture}) to the pool. */
  release(buffer: GPUBuffer | GPUTexture): void {
    this.#pool.release(buffer);
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
    return this.#pool.allocateTexture(width, height, what, this.scope, this.phase);
  }

  /** The view of a texture that bindings use: one per texture, so bind groups over it can be reused. */
  view(texture: GPUTexture): GPUTextureView {
    let view = this.#views.get(texture);
    if (!view) {
      view = texture.createView();
      this.#views.set(texture, view);
    }
    return view;
  }

  /**
   * Records one dispatch: `params` fill the kernel's `Params` uniform by field name, `buffers` its storage
   * bindings (buffers, or views of storage textures) by variable name, and `workgroups` workgroups run. A
   * count above the per-dimension limit is folded into y; kernels recover the linear workgroup index from
   * `num_workgroups`. `flops`, `candidate` (the tuned variant, if any) and `executedFlops` (what its tiles
   * execute, padding included) go into the dispatch's record.
   */
  dispatch(
    k: Kernel,
    buffers: Readonly<Record<string, GPUBuffer | GPUTextureView>>,
    params: Readonly<Record<string, number>>,
    workgroups: number,
    flops = 0,
    candidate = "",
    executedFlops = flops,
  ): void {
    this.checkHealthy();
    const pipeline = this.pipeline(k);
    const uniform = k.params.length > 0 ? this.#recorder.uniform(packParams(k, params)) : null;
    const bindGroup = this.#bindGroup(k, pipeline, uniform, buffers);
    const maxPerDim = this.limits.maxComputeWorkgroupsPerDimension;
    const x = Math.min(workgroups, maxPerDim);
    const y = Math.ceil(workgroups / maxPerDim);
    if (y > maxPerDim) throw new NinError(`${k.name}: ${workgroups} workgroups is more than a device runs`);
    const { record, timed } = this.#records.add(
      k.name,
      candidate,
      workgroups,
      k.workgroupSize,
      flops,
      executedFlops,
    );
    const work = { pipeline, bindGroup, x, y };
    encode(timed && record ? this.#profiler.pass(record, work) : this.#recorder.pass(), work);
    if (timed) this.#recorder.endPass();
  }

  /**
   * The bind group of a dispatch, made once per (kernel, uniform, buffers): pooled buffers and cached
   * uniforms recur step after step, so a training step after the first creates none.
   */
  #bindGroup(
    k: Kernel,
    pipeline: GPUComputePipeline,
    uniform: GPUBuffer | null,
    buffers: Readonly<Record<string, GPUBuffer | GPUTextureView>>,
  ): GPUBindGroup {
    const entries: GPUBindGroupEntry[] = uniform ? [{ binding: 0, resource: { buffer: uniform } }] : [];
    for (const [name, buffer] of Object.entries(buffers)) {
      const binding = k.bindings.get(name);
      if (binding === undefined) throw new Error(`${k.name}: no binding named ${name}`);
      entries.push({ binding, resource: isBuffer(buffer) ? { buffer } : buffer });
    }
    const key = this.#compiled(k).id +
      entries.map((e) => `,${e.binding}:${this.#bufferId(bound(e.resource))}`).join("");
    let bindGroup = this.#bindGroups.get(key);
    if (!bindGroup) {
      // Bounded: keys of buffers that are gone never recur, so an overfull cache is simply started afresh.
      if (this.#bindGroups.size >= MAX_BIND_GROUPS) this.#bindGroups.clear();
      bindGroup = this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
      this.#bindGroups.set(key, bindGroup);
    }
    return bindGroup;
  }

  /** A number naming `buffer` for the life of this context. */
  #bufferId(buffer: GPUBuffer | GPUTextureView): number {
    let id = this.#bufferIds.get(buffer);
    if (id === undefined) {
      id = this.#nextBufferId++;
      this.#bufferIds.set(buffer, id);
    }
    return id;
  }

  /** Records zero-filling of a buffer, ordered with the dispatches around it. */
  clear(buffer: GPUBuffer, bytes?: number): void {
    this.#recorder.clear(buffer, bytes);
  }

  /** Records a buffer-to-buffer copy (offsets in bytes, multiples of 4), ordered with the dispatches around it. */
  copy(source: GPUBuffer, target: GPUBuffer, bytes: number, sourceOffset = 0, targetOffset = 0): void {
    this.#recorder.copy(source, target, bytes, sourceOffset, targetOffset);
  }

  /** Records a write of host data into a buffer, ordered with the dispatches around it. */
  write(buffer: GPUBuffer, data: ArrayBufferView): void {
    this.checkHealthy();
    this.#recorder.write(buffer, data);
  }

  /** Submits everything recorded so far (does not wait for it). */
  flush(): void {
    this.checkHealthy();
    this.#recorder.flush();
  }

  /** Submits pending work and waits until the GPU has finished it; throws if the device reported an error. */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    this.checkHealthy();
  }

  /** Copies `bytes` bytes of a buffer back to the host after all recorded work (`bytes` rounded up to 4). */
  async read(buffer: GPUBuffer, bytes: number): Promise<ArrayBuffer> {
    const out = await this.readParts([{ buffer, bytes: Math.ceil(bytes / 4) * 4 }]);
    return out.slice(0, bytes);
  }

  /**
   * Copies the first bytes of several buffers back to the host after all recorded work, with one map (one
   * wait on the host, however many parts), concatenated in order.
   */
  async readParts(parts: readonly ReadPart[]): Promise<ArrayBuffer> {
    this.checkHealthy();
    const out = await this.#recorder.read(parts);
    this.checkHealthy();
    return out;
  }

  /** Releases the device and everything on it. The context cannot be used afterwards. */
  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#recorder.abandon();
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

/** The object a bind group entry binds: its buffer, or the texture view itself. */
function bound(resource: GPUBindingResource): GPUBuffer | GPUTextureView {
  return (resource as GPUBufferBinding).buffer ?? (resource as GPUTextureView);
}

/** A buffer, as told from a texture view (engines differ in their classes, so by its methods). */
function isBuffer(resource: GPUBuffer | GPUTextureView): resource is GPUBuffer {
  return typeof (resource as GPUBuffer).mapAsync === "function";
}

/**
 * Formats a byte count as MiB with one decimal, or as KiB or bytes where that would print 0.0 MiB.
 *
 * @example
 * ```ts
 * import { mib } from "./device.ts";
 * console.log(mib(3 * 2 ** 20), mib(2048), mib(16)); // 3.0 MiB 2.0 KiB 16 B
 * ```
 */
export function mib(bytes: number): string {
  if (bytes >= 2 ** 20 / 20) return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  return bytes >= 1024 ? `${(bytes / 1024).toFixed(1)} KiB` : `${bytes} B`;
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
 * The kernel family asked for: `requested`, else `auto`; throws a {@link NinError} (exit 2) for an unknown
 * name.
 */
export function kernelChoice(requested: string | undefined): KernelChoice {
  const choice = requested;
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
  const engine = options.engine ?? ("Deno" in globalThis ? "deno" : "browser");
  const kernels = kernelChoice(options.kernels);
  const powerPreference = options.powerPreference ?? "high-performance";
  if (!["deno", "dawn", "browser"].includes(engine)) {
    throw new NinError(`unknown GPU engine "${engine}"; use "deno" or "dawn"`, 2);
  }
  let adapter: GPUAdapter | null;
  let onDestroy: (() => void) | undefined;
  let backend = options.backend;
  let languageFeatures: ReadonlySet<string> | undefined;
  if (options.openAdapter) {
    const opened = await options.openAdapter(powerPreference);
    ({ adapter, release: onDestroy, languageFeatures } = opened);
    backend = opened.backend ?? backend;
  } else if (engine === "dawn") {
    throw new NinError("the dawn engine runs under Deno only: use requestGpu from the package's main entry");
  } else {
    const gpuApi = (globalThis.navigator as { gpu?: GPU } | undefined)?.gpu;
    if (!gpuApi) {
      throw new NinError(
        engine === "deno"
          ? "this Deno has no WebGPU (navigator.gpu); use Deno 2.9 or newer"
          : "this browser has no WebGPU (navigator.gpu); use a recent Chrome, Edge or Safari 26, or Firefox 141+ on Windows",
      );
    }
    languageFeatures = wgslLanguageFeatures(gpuApi);
    adapter = await gpuApi.requestAdapter({ powerPreference });
    if (!adapter) {
      const hint = engine === "deno" ? "check the GPU driver or try --gpu dawn" : "check the GPU driver";
      throw new NinError(`no WebGPU adapter found (engine ${engine}); ${hint}`);
    }
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
  // `device` and the driver (e.g. "OpenGL version 4.5 (Core Profile) Mesa 22.3.6") in `description`;
  // Chromium leaves both empty and names only the vendor and architecture ("google", "swiftshader").
  const names = [info.device, info.description].filter((s) => s && !/^\d+$/.test(s));
  const adapterName = names.map((s) => s.replace(/-+$/, "")).join(", ") ||
    [info.vendor, info.architecture].filter((s) => s).join(" ") || "unknown adapter";
  const isFallback = (info as { isFallbackAdapter?: boolean }).isFallbackAdapter === true;
  const allInfo = [info.vendor, info.architecture, info.device, info.description].join(" ");
  return new Gpu(device, {
    engine,
    adapterName,
    backend,
    isSoftware: isFallback || SOFTWARE_ADAPTERS.test(allInfo),
    kernels,
    key: [engine, backend ?? "", info.vendor, info.architecture, info.device, info.description].join("|"),
    readOnlyStorageTextures: languageFeatures?.has("readonly_and_readwrite_storage_textures") === true,
    onDestroy,
  });
}
