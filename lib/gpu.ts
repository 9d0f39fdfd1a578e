/**
 * The GPU runtime: one adapter and device, their limits, a pipeline cache, a buffer pool with live-byte
 * accounting, and a command encoder that collects dispatches until someone needs a result.
 *
 * Dispatches are only recorded; nothing is submitted until {@link Gpu.flush} (or a read) so a whole training
 * step goes to the queue as one command buffer, and no `await` sits between layers.
 *
 * @module
 */
import { NinError } from "./errors.ts";

/** Which WebGPU implementation to use: Deno's built-in (wgpu) or Chrome's Dawn from `npm:webgpu`. */
export type Engine = "deno" | "dawn";

/** Options for {@link requestGpu}. */
export interface GpuOptions {
  /** WebGPU implementation (default `"deno"`). */
  engine?: Engine;
  /** Adapter preference passed to `requestAdapter` (default `"high-performance"`). */
  powerPreference?: GPUPowerPreference;
}

/** A compute kernel: WGSL source plus the name used for caching, profiling and error messages. */
export interface Kernel {
  /** Stable name, e.g. `conv2d_forward`. */
  readonly name: string;
  /** WGSL source with an entry point called `main`. */
  readonly code: string;
  /** Values for the shader's `override` constants (a specialised variant needs its own `name`). */
  readonly constants?: Record<string, number>;
  /** Entry point when the module has several (default `main`; another entry point needs its own `name`). */
  readonly entryPoint?: string;
}

/** Live GPU memory as the tensor layer sees it. */
export interface MemoryStats {
  /** Buffers handed out and not yet released. */
  liveBuffers: number;
  /** Bytes of those buffers. */
  liveBytes: number;
  /** Highest `liveBytes` since the last {@link Gpu.resetPeak}. */
  peakBytes: number;
  /** Bytes held by the pool for reuse (allocated on the device, not live). */
  pooledBytes: number;
}

/** Per-kernel record kept while {@link Gpu.profile} is on. */
export interface DispatchRecord {
  /** Kernel name. */
  kernel: string;
  /** Floating-point operations the caller says this dispatch performs. */
  flops: number;
  /** GPU time in nanoseconds (filled after {@link Gpu.collectProfile}), or NaN if not measured. */
  ns: number;
}

const STORAGE_USAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
const MAX_UNIFORM_CACHE = 4096;

/**
 * A WebGPU device with the toolkit's bookkeeping. Get one with {@link requestGpu}.
 *
 * @example
 * ```ts
 * import { requestGpu } from "./gpu.ts";
 * const gpu = await requestGpu();
 * console.log(gpu.adapterName, gpu.isSoftware, gpu.limits.maxStorageBufferBindingSize);
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
  /** The device's limits (the adapter's maxima for the limits the toolkit needs). */
  readonly limits: GPUSupportedLimits;
  /** Whether `timestamp-query` is enabled, so dispatches can be timed on the GPU. */
  readonly hasTimestamps: boolean;
  /** Running total of FLOPs of all dispatches recorded so far (what the kernels account for). */
  flopsDispatched = 0;
  /** When true, every dispatch is recorded in {@link Gpu.records} and timed where possible. */
  profile = false;
  /** Dispatch records gathered while profiling. */
  records: DispatchRecord[] = [];

  #pipelines = new Map<string, GPUComputePipeline>();
  #uniforms = new Map<string, GPUBuffer>();
  #retired: GPUBuffer[] = [];
  #pool = new Map<number, GPUBuffer[]>();
  #memory: MemoryStats = { liveBuffers: 0, liveBytes: 0, peakBytes: 0, pooledBytes: 0 };
  #encoder: GPUCommandEncoder | null = null;
  #pass: GPUComputePassEncoder | null = null;
  #error: string | null = null;
  #lost: string | null = null;
  #destroyed = false;
  #timing: { querySet: GPUQuerySet; resolve: GPUBuffer; records: DispatchRecord[] } | null = null;
  #submissionTimes: Promise<number>[] = [];
  #onDestroy: () => void;

  /** Wraps a device; use {@link requestGpu} rather than calling this directly. */
  constructor(
    device: GPUDevice,
    info: { engine: Engine; adapterName: string; isSoftware: boolean; onDestroy?: () => void },
  ) {
    this.device = device;
    this.engine = info.engine;
    this.adapterName = info.adapterName;
    this.isSoftware = info.isSoftware;
    this.limits = device.limits;
    this.hasTimestamps = device.features.has("timestamp-query");
    this.#onDestroy = info.onDestroy ?? (() => {});
    device.addEventListener("uncapturederror", (event) => {
      const message = (event as GPUUncapturedErrorEvent).error.message;
      this.#error ??= message.split("\n").map((l) => l.trim()).filter((l) => l).join(" ");
    });
    device.lost.then((info) => {
      if (!this.#destroyed) this.#lost = info.message || String(info.reason);
    });
  }

  /** Live and peak GPU bytes held by tensors and saved state (a copy). */
  get memory(): MemoryStats {
    return { ...this.#memory };
  }

  /** Starts peak tracking afresh from the current live bytes. */
  resetPeak(): void {
    this.#memory.peakBytes = this.#memory.liveBytes;
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
   * promise, so a device lost mid-step is reported as such (a NinError saying so) rather than as whatever
   * invalid-object error the engine raised first. Other errors are rethrown unchanged.
   *
   * @example
   * ```ts
   * import { requestGpu } from "./gpu.ts";
   * const gpu = await requestGpu();
   * const bytes = await gpu.guard(() => gpu.read(gpu.allocate(16), 16));
   * console.log(bytes.byteLength); // 16
   * gpu.destroy();
   * ```
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
  pipeline(kernel: Kernel): GPUComputePipeline {
    let pipeline = this.#pipelines.get(kernel.name);
    if (!pipeline) {
      const module = this.device.createShaderModule({ label: kernel.name, code: kernel.code });
      pipeline = this.device.createComputePipeline({
        label: kernel.name,
        layout: "auto",
        compute: { module, entryPoint: kernel.entryPoint ?? "main", constants: kernel.constants },
      });
      this.#pipelines.set(kernel.name, pipeline);
    }
    return pipeline;
  }

  /**
   * A storage buffer of at least `bytes` bytes, from the pool when one of that size is free. Counts towards
   * live memory until {@link Gpu.release}. Its contents are undefined.
   */
  allocate(bytes: number, what = "tensor"): GPUBuffer {
    this.checkHealthy();
    const size = Math.max(16, Math.ceil(bytes / 16) * 16);
    if (size > this.limits.maxStorageBufferBindingSize) {
      throw new NinError(
        `${what} needs ${mib(size)} but this device binds at most ${
          mib(this.limits.maxStorageBufferBindingSize)
        } per buffer (maxStorageBufferBindingSize); use a smaller batch or input size`,
      );
    }
    const pooled = this.#pool.get(size);
    let buffer = pooled?.pop();
    if (buffer) {
      this.#memory.pooledBytes -= size;
      if (pooled!.length === 0) this.#pool.delete(size);
      buffer.label = what;
    } else {
      buffer = this.device.createBuffer({ size, usage: STORAGE_USAGE, label: what });
    }
    this.#memory.liveBuffers += 1;
    this.#memory.liveBytes += size;
    this.#memory.peakBytes = Math.max(this.#memory.peakBytes, this.#memory.liveBytes);
    return buffer;
  }

  /** Returns a buffer from {@link Gpu.allocate} to the pool. */
  release(buffer: GPUBuffer): void {
    this.#memory.liveBuffers -= 1;
    this.#memory.liveBytes -= buffer.size;
    this.#memory.pooledBytes += buffer.size;
    buffer.label = "pooled";
    const list = this.#pool.get(buffer.size);
    if (list) list.push(buffer);
    else this.#pool.set(buffer.size, [buffer]);
  }

  /** Frees every pooled buffer on the device (live buffers are untouched). */
  trimPool(): void {
    for (const list of this.#pool.values()) for (const buffer of list) this.#retired.push(buffer);
    this.#pool.clear();
    this.#memory.pooledBytes = 0;
  }

  /**
   * Records one compute dispatch: binds `params` (u32 words; use {@link f32Bits} for floats) as the uniform
   * at binding 0 and `buffers` at bindings 1..n, and runs `workgroups` workgroups. A count above the
   * per-dimension limit is folded into y; kernels recover the linear index from `num_workgroups`.
   */
  dispatch(
    kernel: Kernel,
    buffers: GPUBuffer[],
    params: ArrayLike<number>,
    workgroups: number,
    flops = 0,
  ): void {
    this.checkHealthy();
    const pipeline = this.pipeline(kernel);
    const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: this.#uniform(params) } }];
    buffers.forEach((buffer, i) => entries.push({ binding: i + 1, resource: { buffer } }));
    const bindGroup = this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
    const maxPerDim = this.limits.maxComputeWorkgroupsPerDimension;
    const x = Math.min(workgroups, maxPerDim);
    const y = Math.ceil(workgroups / maxPerDim);
    if (y > maxPerDim) {
      throw new NinError(`${kernel.name}: ${workgroups} workgroups is more than a device runs`);
    }
    this.flopsDispatched += flops;
    const pass = this.profile ? this.#profiledPass(kernel.name, flops) : this.#computePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y);
    if (this.profile) this.#endPass();
    if (this.profile && !this.hasTimestamps) this.#timeBySubmission(this.records[this.records.length - 1]);
  }

  /**
   * Without timestamp queries each profiled dispatch is submitted alone; the queue runs submissions in
   * order, so a dispatch's time is its completion minus the later of its submission and the previous
   * completion.
   */
  #timeBySubmission(record: DispatchRecord): void {
    this.flush();
    const submitted = performance.now();
    const previous = this.#submissionTimes.at(-1) ?? Promise.resolve(submitted);
    this.#submissionTimes.push(
      Promise.all([previous, this.device.queue.onSubmittedWorkDone()]).then(([before]) => {
        const done = performance.now();
        record.ns = (done - Math.max(before, submitted)) * 1e6;
        return done;
      }),
    );
  }

  /** Records zero-filling of a buffer, ordered with the dispatches around it. */
  clear(buffer: GPUBuffer, bytes?: number): void {
    this.#endPass();
    this.#commandEncoder().clearBuffer(buffer, 0, bytes === undefined ? undefined : Math.ceil(bytes / 4) * 4);
  }

  /** Records a buffer-to-buffer copy (offsets in bytes, multiples of 4), ordered with the dispatches around it. */
  copy(source: GPUBuffer, target: GPUBuffer, bytes: number, sourceOffset = 0, targetOffset = 0): void {
    this.#endPass();
    this.#commandEncoder().copyBufferToBuffer(
      source,
      sourceOffset,
      target,
      targetOffset,
      Math.ceil(bytes / 4) * 4,
    );
  }

  /**
   * Records a write of host data into a buffer, ordered with the dispatches around it: the bytes go into a
   * mapped staging buffer whose copy is part of the same command stream, so uploads inside a training step
   * need no extra submit (a queue write would land before everything already recorded).
   */
  write(buffer: GPUBuffer, data: ArrayBufferView): void {
    this.checkHealthy();
    const size = Math.ceil(data.byteLength / 4) * 4;
    const staging = this.device.createBuffer({
      size,
      usage: GPUBufferUsage.COPY_SRC,
      mappedAtCreation: true,
    });
    new Uint8Array(staging.getMappedRange()).set(
      new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    );
    staging.unmap();
    this.#endPass();
    this.#commandEncoder().copyBufferToBuffer(staging, 0, buffer, 0, size);
    this.#retired.push(staging); // destroyed after the submit that uses it
  }

  /** Submits everything recorded so far (does not wait for it). */
  flush(): void {
    this.checkHealthy();
    this.#endPass();
    if (this.#encoder) {
      this.device.queue.submit([this.#encoder.finish()]);
      this.#encoder = null;
    }
    for (const buffer of this.#retired) buffer.destroy();
    this.#retired = [];
  }

  /** Submits pending work and waits until the GPU has finished it; throws if the device reported an error. */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    this.checkHealthy();
  }

  /** Copies `bytes` bytes of a buffer back to the host after all recorded work. */
  async read(buffer: GPUBuffer, bytes: number): Promise<ArrayBuffer> {
    const size = Math.ceil(bytes / 4) * 4;
    const staging = this.device.createBuffer({
      size,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    this.#endPass();
    this.#commandEncoder().copyBufferToBuffer(buffer, 0, staging, 0, size);
    this.flush();
    try {
      await staging.mapAsync(GPUMapMode.READ);
    } catch (e) {
      await this.#settleLoss();
      this.checkHealthy();
      throw new NinError(`reading a GPU buffer failed: ${(e as Error).message.split("\n")[0]}`);
    }
    const out = staging.getMappedRange().slice(0, bytes);
    staging.unmap();
    staging.destroy();
    this.checkHealthy();
    return out;
  }

  /**
   * Resolves the times of the dispatches recorded while {@link Gpu.profile} was on and returns the records:
   * GPU timestamps where the adapter has them, else completion times of one submission per dispatch.
   */
  async collectProfile(): Promise<DispatchRecord[]> {
    const timing = this.#timing;
    const records = this.records;
    this.records = [];
    if (timing && timing.records.length > 0) {
      const count = timing.records.length * 2;
      this.#commandEncoder().resolveQuerySet(timing.querySet, 0, count, timing.resolve, 0);
      const times = new BigInt64Array(await this.read(timing.resolve, count * 8));
      timing.records.forEach((r, i) => r.ns = Number(times[2 * i + 1] - times[2 * i]));
      timing.records = [];
    } else await this.sync();
    await Promise.all(this.#submissionTimes);
    this.#submissionTimes = [];
    return records;
  }

  /** Releases the device and everything on it. The context cannot be used afterwards. */
  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#endPass();
    this.#encoder = null;
    this.device.destroy();
    this.#onDestroy();
  }

  #commandEncoder(): GPUCommandEncoder {
    this.#encoder ??= this.device.createCommandEncoder();
    return this.#encoder;
  }

  #computePass(): GPUComputePassEncoder {
    this.#pass ??= this.#commandEncoder().beginComputePass();
    return this.#pass;
  }

  #endPass(): void {
    this.#pass?.end();
    this.#pass = null;
  }

  #profiledPass(kernel: string, flops: number): GPUComputePassEncoder {
    this.#endPass();
    const record: DispatchRecord = { kernel, flops, ns: NaN };
    this.records.push(record);
    if (!this.hasTimestamps) return this.#computePass();
    const capacity = 2048; // wgpu allows at most 4096 queries per set, two per dispatch
    this.#timing ??= {
      querySet: this.device.createQuerySet({ type: "timestamp", count: capacity * 2 }),
      resolve: this.device.createBuffer({
        size: capacity * 16,
        usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
      }),
      records: [],
    };
    const slot = this.#timing.records.length;
    if (slot >= capacity) return this.#computePass();
    this.#timing.records.push(record);
    this.#pass = this.#commandEncoder().beginComputePass({
      timestampWrites: {
        querySet: this.#timing.querySet,
        beginningOfPassWriteIndex: 2 * slot,
        endOfPassWriteIndex: 2 * slot + 1,
      },
    });
    return this.#pass;
  }

  /** Uniform buffers are cached by content: a training step reuses the same few hundred every time. */
  #uniform(params: ArrayLike<number>): GPUBuffer {
    const words = new Uint32Array(Math.max(4, Math.ceil(params.length / 4) * 4));
    words.set(params);
    const key = words.join(",");
    let buffer = this.#uniforms.get(key);
    if (!buffer) {
      if (this.#uniforms.size >= MAX_UNIFORM_CACHE) {
        for (const old of this.#uniforms.values()) this.#retired.push(old);
        this.#uniforms.clear();
      }
      buffer = this.device.createBuffer({
        size: words.byteLength,
        usage: GPUBufferUsage.UNIFORM,
        mappedAtCreation: true,
      });
      new Uint32Array(buffer.getMappedRange()).set(words);
      buffer.unmap();
      this.#uniforms.set(key, buffer);
    }
    return buffer;
  }
}

/** The bit pattern of a float32, for passing floats through a kernel's u32 params (`bitcast<f32>`). */
export function f32Bits(value: number): number {
  return new Uint32Array(new Float32Array([value]).buffer)[0];
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
] as const;

/**
 * Opens a WebGPU adapter and device with the adapter's maximum binding and workgroup limits.
 *
 * @example
 * ```ts
 * import { requestGpu } from "./gpu.ts";
 * const gpu = await requestGpu({ engine: "deno" });
 * console.log(`${gpu.adapterName} (software: ${gpu.isSoftware})`);
 * gpu.destroy();
 * ```
 */
export async function requestGpu(options: GpuOptions = {}): Promise<Gpu> {
  const engine = options.engine ?? "deno";
  const powerPreference = options.powerPreference ?? "high-performance";
  let adapter: GPUAdapter | null;
  let onDestroy: (() => void) | undefined;
  if (engine === "dawn") {
    const { requestDawnAdapter } = await import("./dawn.ts");
    ({ adapter, release: onDestroy } = await requestDawnAdapter(powerPreference));
  } else if (engine === "deno") {
    const gpuApi = (globalThis.navigator as { gpu?: GPU } | undefined)?.gpu;
    if (!gpuApi) throw new NinError("this Deno has no WebGPU (navigator.gpu); use Deno 2.9 or newer");
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
    onDestroy,
  });
}
