/**
 * Per-dispatch GPU times for `deno task bench`: timestamp queries where the device has them; elsewhere
 * (Dawn on OpenGL) each recorded dispatch is run again alone after the step, submitted and awaited to
 * completion, so every figure is a measured one.
 *
 * @module
 */
import type { CommandRecorder } from "./recorder.ts";
import { median } from "../median.ts";

/** One recorded dispatch: what the counting device, `bench --plan` and the profiler report. */
export interface DispatchRecord {
  /** Kernel name. */
  kernel: string;
  /** Workgroups launched (all dimensions together). */
  workgroups: number;
  /** Invocations per workgroup. */
  workgroupSize: number;
  /** Floating-point operations the caller declares for this dispatch. */
  flops: number;
  /** Dotted name of the layer that recorded it (`""` outside any layer). */
  scope: string;
  /** GPU time in nanoseconds once profiled, else NaN. */
  ns: number;
}

/** How a profile was timed. */
export type TimingMethod = "GPU timestamps" | "each dispatch alone, awaited to completion";

const CAPACITY = 2048; // wgpu allows at most 4096 queries per set, two per dispatch
const REPLAYS = 3;

interface Replay {
  record: DispatchRecord;
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
  x: number;
  y: number;
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

  /** Records `record`'s dispatch in a pass of its own that will be timed. */
  dispatch(
    record: DispatchRecord,
    pipeline: GPUComputePipeline,
    bindGroup: GPUBindGroup,
    x: number,
    y: number,
  ) {
    let pass: GPUComputePassEncoder;
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
      pass = this.recorder.pass({
        querySet: this.#queries.set,
        beginningOfPassWriteIndex: 2 * slot,
        endOfPassWriteIndex: 2 * slot + 1,
      });
    } else {
      pass = this.recorder.pass();
      if (this.method !== "GPU timestamps") this.#replays.push({ record, pipeline, bindGroup, x, y });
    }
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y);
    this.recorder.endPass();
  }

  /** Fills in the `ns` of the records dispatched since the last call (waits for the GPU). */
  async collect(): Promise<void> {
    if (this.#queries && this.#timed.length > 0) {
      const count = this.#timed.length * 2;
      this.recorder.encoder().resolveQuerySet(this.#queries.set, 0, count, this.#queries.resolve, 0);
      const times = new BigInt64Array(await this.recorder.read(this.#queries.resolve, count * 8));
      this.#timed.forEach((r, i) => r.ns = Number(times[2 * i + 1] - times[2 * i]));
    }
    this.recorder.flush();
    await this.device.queue.onSubmittedWorkDone();
    for (const replay of this.#replays) {
      const times: number[] = [];
      for (let i = 0; i < REPLAYS; i++) {
        const encoder = this.device.createCommandEncoder();
        const pass = encoder.beginComputePass();
        pass.setPipeline(replay.pipeline);
        pass.setBindGroup(0, replay.bindGroup);
        pass.dispatchWorkgroups(replay.x, replay.y);
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
