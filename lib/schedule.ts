/**
 * Learning-rate schedules: the chapter's constant rate, cosine decay and step decay, each after an optional
 * linear warm-up. A schedule is a pure function of the step number, so a resumed run continues it exactly.
 *
 * @module
 */
import { NinError } from "./errors.ts";

/** The shape of a schedule after its warm-up. */
export type ScheduleKind = "constant" | "cosine" | "step";

/** Every {@link ScheduleKind}, in the order the tasks list them. */
export const SCHEDULE_KINDS: readonly ScheduleKind[] = ["constant", "cosine", "step"];

/** A learning-rate schedule relative to the run's base rate. */
export interface LrSchedule {
  /**
   * `"constant"` (the chapter's), `"cosine"` (half a cosine from the base rate towards 0 over the steps
   * after the warm-up) or `"step"` (the base rate times `gamma` after every `stepSize` steps).
   */
  kind: ScheduleKind;
  /** Steps of linear warm-up: step s (from 0) of them runs at `lr * (s + 1) / warmupSteps` (0: none). */
  warmupSteps: number;
  /** `"step"` only: steps between decays (default: a third of the steps after the warm-up). */
  stepSize?: number;
  /** `"step"` only: factor of each decay (default 0.1). */
  gamma?: number;
}

/** The chapter's schedule: a constant rate, no warm-up. */
export const CONSTANT_SCHEDULE: LrSchedule = { kind: "constant", warmupSteps: 0 };

/**
 * Checks a schedule, throwing a {@link NinError} naming the bad field.
 *
 * @example
 * ```ts
 * import { checkSchedule } from "@nin/webgpu";
 * checkSchedule({ kind: "cosine", warmupSteps: 10 }); // fine
 * ```
 */
export function checkSchedule(schedule: LrSchedule): LrSchedule {
  if (!SCHEDULE_KINDS.includes(schedule.kind)) {
    throw new NinError(`lr schedule must be one of ${SCHEDULE_KINDS.join(", ")}, got ${schedule.kind}`);
  }
  if (!Number.isInteger(schedule.warmupSteps) || schedule.warmupSteps < 0) {
    throw new NinError(`warm-up steps must be an integer >= 0, got ${schedule.warmupSteps}`);
  }
  if (schedule.stepSize !== undefined && !(Number.isInteger(schedule.stepSize) && schedule.stepSize >= 1)) {
    throw new NinError(`the step schedule's step size must be an integer >= 1, got ${schedule.stepSize}`);
  }
  if (schedule.gamma !== undefined && !(schedule.gamma > 0 && schedule.gamma <= 1)) {
    throw new NinError(`the step schedule's gamma must be in (0, 1], got ${schedule.gamma}`);
  }
  return schedule;
}

/**
 * The learning rate of step `step` (from 0) of a run of `totalSteps` steps at base rate `lr`. Always
 * positive: cosine stops one step short of 0, so its last step still learns a little.
 *
 * @example
 * ```ts
 * import { learningRate } from "@nin/webgpu";
 * const cosine = { kind: "cosine", warmupSteps: 2 } as const;
 * console.log([0, 1, 2, 6].map((s) => learningRate(0.1, cosine, s, 10))); // [0.05, 0.1, 0.1, 0.05]
 * ```
 */
export function learningRate(lr: number, schedule: LrSchedule, step: number, totalSteps: number): number {
  const { kind, warmupSteps } = schedule;
  if (step < warmupSteps) return lr * (step + 1) / warmupSteps;
  const t = step - warmupSteps;
  const span = Math.max(1, totalSteps - warmupSteps);
  switch (kind) {
    case "constant":
      return lr;
    case "cosine":
      return lr * 0.5 * (1 + Math.cos(Math.PI * Math.min(t, span - 1) / span));
    case "step": {
      const size = schedule.stepSize ?? Math.max(1, Math.ceil(span / 3));
      return lr * (schedule.gamma ?? 0.1) ** Math.floor(t / size);
    }
  }
}

/**
 * A schedule in words, e.g. `cosine after 100 warm-up steps`, for logs and reports.
 *
 * @example
 * ```ts
 * import { describeSchedule } from "@nin/webgpu";
 * console.log(describeSchedule({ kind: "step", warmupSteps: 0, gamma: 0.5 })); // step (x0.5 every third)
 * ```
 */
export function describeSchedule(schedule: LrSchedule): string {
  const decay = schedule.kind !== "step"
    ? schedule.kind
    : `step (x${schedule.gamma ?? 0.1} every ${
      schedule.stepSize === undefined ? "third" : `${schedule.stepSize} steps`
    })`;
  return schedule.warmupSteps > 0 ? `${decay} after ${schedule.warmupSteps} warm-up steps` : decay;
}
