/**
 * The launch plan of one training step: every dispatch it records, traced (on a counting device: no adapter,
 * no kernel runs), and the share of its FLOPs in launches big enough to fill a large GPU
 * ({@link LAUNCH_RULE}). `deno task bench --plan` prints it; the gpu kernel family is held to the rule.
 *
 * @module
 */
import type { DispatchRecord, Gpu } from "./gpu/device.ts";
import { totalFlops } from "./gpu/records.ts";
import { WAVE_WORKGROUPS } from "./gpu/wave.ts";
import type { Module } from "./module.ts";
import { SGD } from "./optim.ts";
import { Tensor } from "./tensor.ts";
import { trainStep } from "./train.ts";

/** The launch rule: dispatches big enough to fill a large GPU (one wave of workgroups of >= 64 invocations). */
export const LAUNCH_RULE = { minWorkgroups: WAVE_WORKGROUPS, minWorkgroupSize: 64 } as const;

/**
 * The binding limit a plan assumes: a large GPU's (an H200 binds about 4 GiB), so a batch runs as one
 * micro-batch unless one is asked for.
 */
export const PLAN_BINDING_BYTES = 4 * 2 ** 30;

/** One training step's dispatches and how many of them, and of their FLOPs, meet {@link LAUNCH_RULE}. */
export interface LaunchPlan {
  /** The micro-batch the step ran with. */
  microBatch: number;
  /** Every dispatch, in order. */
  dispatches: DispatchRecord[];
  /** FLOPs of all dispatches. */
  totalFlops: number;
  /** The share of {@link LaunchPlan.totalFlops} in dispatches meeting the rule (1 when there are none). */
  flopsShareMeetingRule: number;
  /** How many dispatches meet the rule. */
  dispatchesMeetingRule: number;
}

/** Whether a dispatch meets {@link LAUNCH_RULE}. */
export function meetsLaunchRule(d: Pick<DispatchRecord, "workgroups" | "workgroupSize">): boolean {
  return d.workgroups >= LAUNCH_RULE.minWorkgroups && d.workgroupSize >= LAUNCH_RULE.minWorkgroupSize;
}

/**
 * Traces one `trainStep` of `net` (SGD, zero images of `inputShape`, label 0) on `gpu` and measures it
 * against {@link LAUNCH_RULE}. Everything it creates is freed again; `net` stays the caller's.
 *
 * @example
 * ```ts
 * import { countingGpu, nin } from "@nin/webgpu";
 * import { planTrainingStep, PLAN_BINDING_BYTES } from "./plan.ts";
 * const gpu = countingGpu({ kernels: "gpu", limits: { maxStorageBufferBindingSize: PLAN_BINDING_BYTES } });
 * const net = nin(gpu, { seed: 0 });
 * const plan = await planTrainingStep(gpu, net, [128, 1, 224, 224]);
 * console.log(plan.dispatches.length, plan.flopsShareMeetingRule);
 * ```
 */
export async function planTrainingStep(
  gpu: Gpu,
  net: Module,
  inputShape: readonly number[],
  microBatch?: number,
): Promise<LaunchPlan> {
  const batch = inputShape[0];
  const opt = new SGD(net.parameters(), { lr: 0.01 });
  const images = Tensor.zeros(gpu, inputShape);
  try {
    let micro = 0;
    const dispatches = await gpu.trace(async () => {
      micro = (await trainStep(net, opt, images, new Int32Array(batch), { microBatch })).microBatch;
    });
    const meeting = dispatches.filter(meetsLaunchRule);
    const total = totalFlops(dispatches);
    return {
      microBatch: micro,
      dispatches,
      totalFlops: total,
      flopsShareMeetingRule: total > 0 ? totalFlops(meeting) / total : 1,
      dispatchesMeetingRule: meeting.length,
    };
  } finally {
    images.dispose();
    opt.dispose();
  }
}
