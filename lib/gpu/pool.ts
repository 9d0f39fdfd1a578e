/**
 * The buffer pool: storage buffers reused by size (and the software family's operand textures by their
 * extent), with the live-byte accounting that `deno task resources` reports (live, peak, and what was live
 * at the peak, by category and by the layer that allocated it).
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

/** Bytes of one texel of the pool's textures (`rgba32float`). */
export const TEXEL_BYTES = 16;

/** What the pool hands out: storage buffers, and `rgba32float` textures. */
export type Pooled = GPUBuffer | GPUTexture;

/**
 * Storage buffers by size class, textures by extent. `allocate` (`allocateTexture`) takes a free one of the
 * same size or creates one; `release` returns it. Nothing is destroyed before the device is.
 */
export class BufferPool {
  #free = new Map<number | string, Pooled[]>();
  #live = new Map<Pooled, LiveBuffer & { key: number | string }>();
  #stats = { liveBytes: 0, peakBytes: 0, pooledBytes: 0 };
  #atPeak: LiveBuffer[] = [];
  #owners = new WeakMap<Pooled, string>();

  /**
   * A pool creating its buffers with `create` and its textures with `createTexture` (a pool without it
   * hands out no textures).
   */
  constructor(
    readonly create: (size: number, label: string) => GPUBuffer,
    readonly createTexture?: (width: number, height: number, label: string) => GPUTexture,
  ) {}

  /** A buffer of {@link bufferSize}(bytes) bytes, accounted as live under `category`, `scope` and `phase`. */
  allocate(bytes: number, category: string, scope = "", phase: Phase = "other"): GPUBuffer {
    const size = bufferSize(bytes);
    const where = { category, scope, phase };
    return this.#take(size, size, where, () => this.create(size, category)) as GPUBuffer;
  }

  /** An `rgba32float` texture of `width` x `height` texels, accounted like a buffer of their bytes. */
  allocateTexture(
    width: number,
    height: number,
    category: string,
    scope = "",
    phase: Phase = "other",
  ): GPUTexture {
    const create = this.createTexture;
    if (!create) throw new Error("this pool makes no textures");
    const make = () => create(width, height, category);
    const where = { category, scope, phase };
    return this.#take(`${width}x${height}`, width * height * TEXEL_BYTES, where, make) as GPUTexture;
  }

  #take(
    key: number | string,
    size: number,
    where: Omit<LiveBuffer, "size">,
    create: () => Pooled,
  ): Pooled {
    // The free item this (scope, category, phase) held last, else the last one released: a step then gets
    // the same buffers as the step before it, so its bind groups can be reused.
    const owner = `${where.scope}|${where.category}|${where.phase}`;
    const free = this.#free.get(key);
    const index = free ? free.findLastIndex((b) => this.#owners.get(b) === owner) : -1;
    let item = index >= 0 ? free!.splice(index, 1)[0] : free?.pop();
    if (item) {
      this.#stats.pooledBytes -= size;
      item.label = where.category;
    } else {
      item = create();
    }
    this.#owners.set(item, owner);
    this.#live.set(item, { size, ...where, key });
    this.#stats.liveBytes += size;
    if (this.#stats.liveBytes > this.#stats.peakBytes) {
      this.#stats.peakBytes = this.#stats.liveBytes;
      this.#atPeak = this.live;
    }
    return item;
  }

  /** Returns a buffer from {@link BufferPool.allocate} (or a texture) for reuse. */
  release(item: Pooled): void {
    const live = this.#live.get(item);
    if (!live) throw new Error(`release of a buffer that is not live (${item.label})`);
    this.#live.delete(item);
    this.#stats.liveBytes -= live.size;
    this.#stats.pooledBytes += live.size;
    item.label = "pooled";
    const list = this.#free.get(live.key);
    if (list) list.push(item);
    else this.#free.set(live.key, [item]);
  }

  /** A copy of the current figures. */
  get memory(): MemoryStats {
    return { liveBuffers: this.#live.size, ...this.#stats };
  }

  /** The buffers live now, in the order they were allocated. */
  get live(): LiveBuffer[] {
    return [...this.#live.values()].map(({ size, category, scope, phase }) => ({
      size,
      category,
      scope,
      phase,
    }));
  }

  /** The buffers that were live when the peak was reached, in allocation order (the last one set it). */
  get atPeak(): readonly LiveBuffer[] {
    return this.#atPeak;
  }

  /** Starts peak tracking afresh from the current live bytes. */
  resetPeak(): void {
    this.#stats.peakBytes = this.#stats.liveBytes;
    this.#atPeak = this.live;
  }
}
