/**
 * The one stream of dispatch records. Every dispatch yields one {@link DispatchRecord} (kernel, candidate,
 * workgroups, FLOPs, layer scope, phase), delivered to every open trace; FLOP totals, launch plans,
 * `resources`' phases and the profiler's tables are all views of it.
 *
 * @module
 */

/**
 * What a dispatch is part of. A backward pass is its input gradients (the chain through the layers) and its
 * weight gradients (weights and biases); `other` is work outside a step's parts (resizing, copies).
 */
export type Phase = "forward" | "loss" | "input gradient" | "weight gradient" | "optimizer" | "other";

/** Every {@link Phase}, in the order a training step runs them. */
export const PHASES: readonly Phase[] = [
  "forward",
  "loss",
  "input gradient",
  "weight gradient",
  "optimizer",
  "other",
];

/** One recorded dispatch. */
export interface DispatchRecord {
  /** Kernel name. */
  kernel: string;
  /** The tuned variant that ran (tile, block, split), or `""` for a kernel with one form. */
  candidate: string;
  /** Workgroups launched (all dimensions together). */
  workgroups: number;
  /** Invocations per workgroup. */
  workgroupSize: number;
  /** Floating-point operations the caller declares for this dispatch. */
  flops: number;
  /**
   * Floating-point operations the launched tiles execute, padding included (a tiled GEMM's partial tiles);
   * `flops` for a dispatch that declares none. `flops / executedFlops` is its tile efficiency.
   */
  executedFlops: number;
  /** Dotted name of the layer that recorded it (`""` outside any layer). */
  scope: string;
  /** The part of a step it belongs to. */
  phase: Phase;
  /** GPU time in nanoseconds once profiled, else NaN. */
  ns: number;
}

/** An open trace: the records delivered to it, and whether its dispatches are to be timed. */
export interface Trace {
  /** Records in dispatch order. */
  readonly records: DispatchRecord[];
  /** Whether the dispatches are timed. */
  readonly timed: boolean;
}

/**
 * The scope and phase stacks that attribute each dispatch, and the stack of open traces that receive it.
 *
 * @example
 * ```ts
 * import { RecordStream } from "./records.ts";
 * const stream = new RecordStream();
 * const outer = stream.open(false);
 * stream.inPhase("forward", () => stream.inScope("0", () => stream.add("relu", "", 4, 64, 256)));
 * stream.close(outer);
 * console.log(outer.records[0].scope, outer.records[0].phase); // "0" "forward"
 * ```
 */
export class RecordStream {
  #scopes: string[] = [];
  #phases: Phase[] = [];
  #traces: Trace[] = [];

  /** The dotted name of the layer now running (`""` outside any layer). */
  get scope(): string {
    return this.#scopes.join(".");
  }

  /** The innermost phase now running (`other` outside any). */
  get phase(): Phase {
    return this.#phases.at(-1) ?? "other";
  }

  /** Runs `work` with `name` appended to the scope. */
  inScope<T>(name: string, work: () => T): T {
    return withPushed(this.#scopes, name, work);
  }

  /** Runs `work` in `phase` (the innermost phase wins). */
  inPhase<T>(phase: Phase, work: () => T): T {
    return withPushed(this.#phases, phase, work);
  }

  /** Opens a trace; every record added until {@link RecordStream.close} is delivered to it. */
  open(timed: boolean): Trace {
    const trace: Trace = { records: [], timed };
    this.#traces.push(trace);
    return trace;
  }

  /** Closes `trace` (traces may close in any order). */
  close(trace: Trace): void {
    const i = this.#traces.lastIndexOf(trace);
    if (i >= 0) this.#traces.splice(i, 1);
  }

  /**
   * Adds the record of one dispatch to every open trace; returns it (null when no trace is open) and
   * whether any open trace times it.
   */
  add(
    kernel: string,
    candidate: string,
    workgroups: number,
    workgroupSize: number,
    flops: number,
    executedFlops = flops,
  ): { record: DispatchRecord | null; timed: boolean } {
    if (this.#traces.length === 0) return { record: null, timed: false };
    const record: DispatchRecord = {
      kernel,
      candidate,
      workgroups,
      workgroupSize,
      flops,
      executedFlops,
      scope: this.scope,
      phase: this.phase,
      ns: NaN,
    };
    for (const trace of this.#traces) trace.records.push(record);
    return { record, timed: this.#traces.some((t) => t.timed) };
  }
}

/** Runs `work` with `value` on top of `stack`, popped again however `work` ends. */
function withPushed<V, T>(stack: V[], value: V, work: () => T): T {
  stack.push(value);
  try {
    return work();
  } finally {
    stack.pop();
  }
}

/** Sum of the FLOPs of `records`, of one phase when given. */
export function totalFlops(records: readonly DispatchRecord[], phase?: Phase): number {
  return records.reduce((sum, r) => sum + (phase === undefined || r.phase === phase ? r.flops : 0), 0);
}
