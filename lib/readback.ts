/**
 * Reading small per-step results (loss sums, correct counts, predictions) without leaving the GPU idle. A
 * map on the host costs ~10 ms on Deno's engine however little it reads, so results are not read after every
 * step: each step's result buffers are gathered into one read per tick, issued while the next steps are
 * queued, and a tick is sized from the measured step time to about one read per second. At most
 * `maxPending` reads are in flight: the host waits only when it is that far ahead of the GPU.
 *
 * @module
 */
import type { Gpu, ReadPart } from "./gpu/device.ts";

/** A queued item once its read has completed: its decoded value and the wall seconds it took. */
export interface Completed<T> {
  /** What `decode` made of the item's bytes. */
  value: T;
  /** Wall seconds of GPU progress attributed to this item (its tick's span, shared by its items). */
  seconds: number;
}

/** Options of {@link Readback}. */
export interface ReadbackOptions {
  /** Seconds of work per read once the step time is known (default 1). */
  tickSeconds?: number;
  /** Reads in flight before the host waits for the oldest (default 2). */
  maxPending?: number;
  /** Most items per read (default 256). */
  maxItemsPerRead?: number;
  /** The wall clock in milliseconds (default `performance.now`); tests pass a fake one. */
  clock?: () => number;
}

interface Item<T> {
  parts: ReadPart[];
  decode: (bytes: ArrayBuffer) => T;
  release: () => void;
}

interface PendingRead<T> {
  items: Item<T>[];
  /** Settles to the bytes or the error, so a read nobody awaits any more cannot reject unhandled. */
  result: Promise<{ bytes: ArrayBuffer } | { error: unknown }>;
}

/**
 * A queue of recorded items whose results are read back in ticks.
 *
 * @example
 * ```ts
 * import { Readback, requestGpu } from "@nin/webgpu";
 * const gpu = await requestGpu();
 * const queue = new Readback<number>(gpu);
 * for (let step = 0; step < 3; step++) {
 *   const buffer = gpu.allocate(4, "labels and statistics");
 *   gpu.write(buffer, new Uint32Array([step]));
 *   queue.add([{ buffer, bytes: 4 }], (b) => new Uint32Array(b)[0], () => gpu.release(buffer));
 *   for (const done of await queue.poll()) console.log(done.value);
 * }
 * for (const done of await queue.drain()) console.log(done.value);
 * gpu.destroy();
 * ```
 */
export class Readback<T> {
  #gpu: Gpu;
  #tickSeconds: number;
  #maxPending: number;
  #maxItems: number;
  #gathering: Item<T>[] = [];
  #pending: PendingRead<T>[] = [];
  #clock: () => number;
  /** Items per read: 1 until a step time was measured. */
  #itemsPerRead = 1;
  #lastDone: number;
  #lastIssue: number;
  /** Reads issued so far. */
  reads = 0;
  /** Seconds the host spent waiting for reads to complete. */
  waitSeconds = 0;

  /** A queue reading from `gpu`. */
  constructor(gpu: Gpu, options: ReadbackOptions = {}) {
    this.#gpu = gpu;
    this.#tickSeconds = options.tickSeconds ?? 1;
    this.#maxPending = options.maxPending ?? 2;
    this.#maxItems = options.maxItemsPerRead ?? 256;
    this.#clock = options.clock ?? (() => performance.now());
    this.#lastDone = this.#lastIssue = this.#clock();
  }

  /** Restarts the wall clock that the first completed read's seconds and the next tick count from. */
  restartClock(): void {
    this.#lastDone = this.#lastIssue = this.#clock();
  }

  /**
   * Adds a recorded item: the buffer parts holding its result, how to decode their bytes (concatenated), and
   * how to release the buffers once the copy is recorded.
   */
  add(parts: ReadPart[], decode: (bytes: ArrayBuffer) => T, release: () => void): void {
    this.#gathering.push({ parts, decode, release });
  }

  /**
   * Issues a read when a tick's worth of items is gathered; then, while more than `maxPending` reads are in
   * flight, waits for the oldest. Returns the items completed, in order.
   */
  async poll(): Promise<Completed<T>[]> {
    if (this.#gathering.length >= this.#itemsPerRead) this.#issue();
    const done: Completed<T>[] = [];
    while (this.#pending.length > this.#maxPending) done.push(...await this.#complete());
    return done;
  }

  /** Reads everything still queued and returns it, in order. */
  async drain(): Promise<Completed<T>[]> {
    this.#issue();
    const done: Completed<T>[] = [];
    while (this.#pending.length > 0) done.push(...await this.#complete());
    return done;
  }

  /**
   * Records the copies of the gathered items into one read and starts it, and sizes the next ticks from the
   * time since the last read was started: it covers recording these items, running them where the submit
   * runs them (llvmpipe over OpenGL) and any wait for the GPU since, so it gives the step time whether the
   * host or the GPU is the slower. (The span between two completed reads does not: where the host is
   * slower, a read completes at once and that span times the items recorded meanwhile, not the read's own,
   * so the tick swung between 1 and 80 steps on llvmpipe.)
   */
  #issue(): void {
    if (this.#gathering.length === 0) return;
    const items = this.#gathering;
    this.#gathering = [];
    const parts = items.flatMap((item) => item.parts);
    let result: PendingRead<T>["result"];
    try {
      result = this.#gpu.readParts(parts).then((bytes) => ({ bytes }), (error) => ({ error }));
    } finally {
      // The copies are recorded: later users of the pooled buffers are recorded after them.
      for (const item of items) item.release();
    }
    this.#pending.push({ items, result });
    this.reads += 1;
    const now = this.#clock();
    const seconds = (now - this.#lastIssue) / 1000 / items.length;
    this.#lastIssue = now;
    if (seconds > 0) {
      this.#itemsPerRead = Math.max(1, Math.min(this.#maxItems, Math.round(this.#tickSeconds / seconds)));
    }
  }

  /** Waits for the oldest read and decodes its items, sharing the span since the last completion. */
  async #complete(): Promise<Completed<T>[]> {
    const read = this.#pending.shift()!;
    const waitStart = this.#clock();
    const result = await read.result;
    if ("error" in result) throw result.error;
    const now = this.#clock();
    this.waitSeconds += (now - waitStart) / 1000;
    const seconds = (now - this.#lastDone) / 1000 / read.items.length;
    this.#lastDone = now;
    let offset = 0;
    return read.items.map((item) => {
      const bytes = item.parts.reduce((sum, part) => sum + part.bytes, 0);
      const value = item.decode(result.bytes.slice(offset, offset + bytes));
      offset += bytes;
      return { value, seconds };
    });
  }
}
