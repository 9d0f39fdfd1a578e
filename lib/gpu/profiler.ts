/**
 * Per-dispatch GPU times for `deno task bench`: timestamp queries where the device has them; elsewhere
 * (Dawn on OpenGL) each recorded dispatch is run again alone after the step, submitted and awaited to
 * completion, so every figure is a measured one.
 *
 * @module
 */
import { type CommandRecorder, type Dispatch, encode } from "./recorder.ts";
import { median } from "../median.ts";
import type { DispatchRecord } from "./records.ts";

/** How a profile was timed. */
export type TimingMethod = "GPU timestamps" | "each dispatch alone, awaited to completion";

const CAPACITY = 2048; // wgpu allows at most 4096 queries per set, two per dispatch
const REPLAYS = 3;

interface Replay {
  record: DispatchRecord;
  dispatch: Dispatch;
}

/** Times the dispatches recorded while it is on. */
export class Profiler {
  /** How this device's dispatches are timed. */
  readonly method: TimingMethod;
  #timed: DispatchRecord[] = [];
  #replays: Replay[] = [];
  #queries: { set: GPUQuerySet; resolve: GPUBuffer } | null = null;

  /** A profiler recording through `recorder`. */
  constructor(readonly device: GPUDevice, readonly recorder: CommandRecorder, hasTimestamps: boolean) {
    this.method = hasTimestamps ? "GPU timestamps" : "each dispatch alone, awaited to completion";
  }

  /**
   * The pass for `record`'s dispatch (the caller encodes the dispatch and ends the pass): a new one with
   * timestamp writes, or the open one with the dispatch kept for a replay.
   */
  pass(record: DispatchRecord, dispatch: Dispatch): GPUComputePassEncoder {
    if (this.method === "GPU timestamps" && this.#timed.length < CAPACITY) {
      this.#queries ??= {
        set: this.device.createQuerySet({ type: "timestamp", count: CAPACITY * 2 }),
        resolve: this.device.createBuffer({
          size: CAPACITY * 16,
          usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
        }),
      };
      const slot = this.#timed.length;
      this.#timed.push(record);
      return this.recorder.pass({
        querySet: this.#queries.set,
        beginningOfPassWriteIndex: 2 * slot,
        endOfPassWriteIndex: 2 * slot + 1,
      });
    }
    if (this.method !== "GPU timestamps") this.#replays.push({ record, dispatch });
    return this.recorder.pass();
  }

  /** Fills in the `ns` of the records dispatched since the last call (waits for the GPU). */
  async collect(): Promise<void> {
    if (this.#queries && this.#timed.length > 0) {
      const count = this.#timed.length * 2;
      this.recorder.encoder().resolveQuerySet(this.#queries.set, 0, count, this.#queries.resolve, 0);
      const times = new BigInt64Array(
        await this.recorder.read([{ buffer: this.#queries.resolve, bytes: count * 8 }]),
      );
      this.#timed.forEach((r, i) => r.ns = Number(times[2 * i + 1] - times[2 * i]));
    }
    if (this.#replays.length > 0) {
      // The step's own work first, so that no replay is timed with it.
      this.recorder.flush();
      await this.device.queue.onSubmittedWorkDone();
    }
    for (const replay of this.#replays) {
      const times: number[] = [];
      for (let i = 0; i < REPLAYS; i++) {
        const encoder = this.device.createCommandEncoder();
        const pass = encoder.beginComputePass();
        encode(pass, replay.dispatch);
        pass.end();
        const start = performance.now();
        this.device.queue.submit([encoder.finish()]);
        await this.device.queue.onSubmittedWorkDone();
        times.push(performance.now() - start);
      }
      replay.record.ns = median(times) * 1e6;
    }
    this.#timed = [];
    this.#replays = [];
  }
}
