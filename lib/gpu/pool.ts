/**
 * The buffer pool: storage buffers reused by size, with the live-byte accounting that `deno task resources`
 * reports (live, peak, and what was live at the peak, by category and by the layer that allocated it).
 *
 * @module
 */
import type { Phase } from "./records.ts";

/** Live GPU memory as the tensor layer sees it. */
export interface MemoryStats {
  /** Buffers handed out and not yet released. */
  liveBuffers: number;
  /** Bytes of those buffers. */
  liveBytes: number;
  /** Highest `liveBytes` since the last {@link BufferPool.resetPeak}. */
  peakBytes: number;
  /** Bytes held by the pool for reuse (allocated on the device, not live). */
  pooledBytes: number;
}

/** One live buffer, as accounted: its size, what it holds and which layer allocated it. */
export interface LiveBuffer {
  /** Bytes (the request rounded up to 16). */
  size: number;
  /** What it holds, e.g. `activations` or `gradient` (the label given to `allocate`). */
  category: string;
  /** Dotted name of the layer running when it was allocated (`""` outside any layer). */
  scope: string;
  /** The step part running when it was allocated. */
  phase: Phase;
}

/** Bytes of a buffer for a request: at least 16, a multiple of 16. */
export function bufferSize(bytes: number): number {
  return Math.max(16, Math.ceil(bytes / 16) * 16);
}

/**
 * Storage buffers by size class. `allocate` takes a free one of the same size or creates one; `release`
 * returns it. Nothing is destroyed before the device is.
 */
export class BufferPool {
  #free = new Map<number, GPUBuffer[]>();
  #live = new Map<GPUBuffer, LiveBuffer>();
  #stats = { liveBytes: 0, peakBytes: 0, pooledBytes: 0 };
  #atPeak: LiveBuffer[] = [];
  #owners = new WeakMap<GPUBuffer, string>();

  /** A pool creating its buffers with `create`. */
  constructor(readonly create: (size: number, label: string) => GPUBuffer) {}

  /** A buffer of {@link bufferSize}(bytes) bytes, accounted as live under `category`, `scope` and `phase`. */
  allocate(bytes: number, category: string, scope = "", phase: Phase = "other"): GPUBuffer {
    const size = bufferSize(bytes);
    const free = this.#free.get(size);
    // The free buffer this (scope, category, phase) held last, else the last one released: a step then
    // gets the same buffers as the step before it, so its bind groups can be reused.
    const owner = `${scope}|${category}|${phase}`;
    const index = free ? free.findLastIndex((b) => this.#owners.get(b) === owner) : -1;
    let buffer = index >= 0 ? free!.splice(index, 1)[0] : free?.pop();

    if (buffer) {
      this.#stats.pooledBytes -= size;
      buffer.label = category;
    } else {
      buffer = this.create(size, category);
    }
    this.#owners.set(buffer, owner);
    this.#live.set(buffer, { size, category, scope, phase });
    this.#stats.liveBytes += size;
    if (this.#stats.liveBytes > this.#stats.peakBytes) {
      this.#stats.peakBytes = this.#stats.liveBytes;
      this.#atPeak = [...this.#live.values()];
    }
    return buffer;
  }

  /** Returns a buffer from {@link BufferPool.allocate} for reuse. */
  release(buffer: GPUBuffer): void {
    const live = this.#live.get(buffer);
    if (!live) throw new Error(`release of a buffer that is not live (${buffer.label})`);
    this.#live.delete(buffer);
    this.#stats.liveBytes -= live.size;
    this.#stats.pooledBytes += live.size;
    buffer.label = "pooled";
    const list = this.#free.get(live.size);
    if (list) list.push(buffer);
    else this.#free.set(live.size, [buffer]);
  }

  /** A copy of the current figures. */
  get memory(): MemoryStats {
    return { liveBuffers: this.#live.size, ...this.#stats };
  }

  /** The buffers live now, in the order they were allocated. */
  get live(): LiveBuffer[] {
    return [...this.#live.values()];
  }

  /** The buffers that were live when the peak was reached, in allocation order (the last one set it). */
  get atPeak(): readonly LiveBuffer[] {
    return this.#atPeak;
  }

  /** Starts peak tracking afresh from the current live bytes. */
  resetPeak(): void {
    this.#stats.peakBytes = this.#stats.liveBytes;
    this.#atPeak = [...this.#live.values()];
  }
}
