/**
 * What a training run derives from its {@link RunConfig} and the data set: the splits (validation images held
 * out, limits applied), the steps per epoch, the learning rate of every step, the options of `fit`, and the
 * validation accuracy after an epoch. `train` and the experiments' trials both run through these, so a run
 * means the same whichever started it.
 *
 * @module
 */
import type { RunConfig } from "./config.ts";
import { evaluate, type FitOptions, type TestProgress } from "./fit.ts";
import type { Module } from "./module.ts";
import { learningRate } from "./schedule.ts";
import { batchesPerEpoch, holdOut } from "./data/batches.ts";
import type { Split } from "./data/split.ts";

/** The data of a run, from {@link runSplits}. */
export interface RunSplits {
  /** What `fit` trains and tests on (the training split without the validation images). */
  data: { train: Split; test: Split };
  /** The held-out validation images, or null without `data.valid`. */
  valid: Split | null;
  /** Training images per epoch (the limit, or the whole split when it is smaller). */
  trainCount: number;
  /** Test images evaluated after each epoch. */
  testCount: number;
  /** Optimizer steps per epoch. */
  steps: number;
}

/**
 * The splits of a run: `data.valid` images held out of the training split (seeded by the run's seed), then
 * the limits; a limit beyond a split means all of it. A validation count that leaves no training image throws
 * a `NinError`.
 *
 * @example
 * ```ts
 * import { loadFashionMnist, runConfig, runSplits } from "@nin/webgpu";
 * const splits = runSplits(runConfig({ data: { valid: 5000, limitTrain: 2000 } }), await loadFashionMnist());
 * console.log(splits.trainCount, splits.valid?.count, splits.steps); // 2000 5000 16
 * ```
 */
export function runSplits(config: RunConfig, loaded: { train: Split; test: Split }): RunSplits {
  const held = config.data.valid > 0 ? holdOut(loaded.train, config.data.valid, config.seed) : null;
  const train = held?.train ?? loaded.train;
  const trainCount = Math.min(config.data.limitTrain ?? Infinity, train.count);
  return {
    data: { train, test: loaded.test },
    valid: held?.valid ?? null,
    trainCount,
    testCount: Math.min(config.data.limitTest ?? Infinity, loaded.test.count),
    steps: batchesPerEpoch(trainCount, config.train.batchSize),
  };
}

/**
 * The learning rate of every step of the run (an `SGD.schedule`), for `steps` steps per epoch.
 *
 * @example
 * ```ts
 * import { runConfig, runSchedule } from "@nin/webgpu";
 * const lr = runSchedule(runConfig({ train: { schedule: { kind: "cosine", warmupSteps: 0 } } }), 100);
 * console.log(lr(0), lr(500)); // 0.1 0.05
 * ```
 */
export function runSchedule(config: RunConfig, steps: number): (step: number) => number {
  const { lr, schedule, epochs } = config.train;
  return (step) => learningRate(lr, schedule, step, epochs * steps);
}

/** The options of `fit` for the run (callbacks, start epoch and stopping are the caller's). */
export function runFitOptions(
  config: RunConfig,
  splits: RunSplits,
  microBatch?: number,
): Pick<FitOptions, "epochs" | "batchSize" | "resize" | "seed" | "limitTrain" | "limitTest" | "microBatch"> {
  return {
    epochs: config.train.epochs,
    batchSize: config.train.batchSize,
    resize: config.data.resize,
    seed: config.seed,
    limitTrain: splits.trainCount,
    limitTest: splits.testCount,
    microBatch,
  };
}

/**
 * Accuracy on the run's validation images (undefined without them), leaving `net` in training mode, as `fit`
 * expects between epochs.
 */
export async function validationAccuracy(
  net: Module,
  config: RunConfig,
  splits: RunSplits,
  options: { microBatch?: number; onBatch?: (progress: TestProgress) => void } = {},
): Promise<number | undefined> {
  if (!splits.valid) return undefined;
  const result = await evaluate(net, splits.valid, {
    batchSize: config.train.batchSize,
    resize: config.data.resize,
    ...options,
  });
  net.train();
  return result.accuracy;
}
