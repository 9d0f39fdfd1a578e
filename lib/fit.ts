/**
 * The epoch loop of d2l's `train_ch6`: shuffled mini-batches resized on the GPU, one SGD step each, test
 * accuracy after every epoch. Reports through callbacks; never prints. The GPU is never left waiting for
 * the host: steps are queued ahead and their loss and correct counts are read in ticks of about a second
 * (lib/readback.ts), so progress callbacks come in small bursts.
 *
 * @module
 */
import { NinError } from "./errors.ts";
import type { Module } from "./module.ts";
import type { SGD } from "./optim.ts";
import { Readback } from "./readback.ts";
import { resizeImages } from "./resize.ts";
import {
  decodeStep,
  type EvalStepResult,
  type RecordedStep,
  recordEvalStep,
  recordTrainStep,
} from "./train.ts";
import { type Batch, epochBatchCount, epochBatches, type EpochOptions } from "./data/batches.ts";
import type { Split } from "./data/split.ts";
import type { Tensor } from "./tensor.ts";

/** Figures of one finished epoch (d2l's Animator plots loss, train acc and test acc). */
export interface EpochMetrics {
  /** Epoch number, from 1. */
  epoch: number;
  /** Mean training loss over the epoch's examples. */
  loss: number;
  /** Training accuracy over the epoch (with dropout active, as d2l measures it). */
  trainAcc: number;
  /** Test accuracy after the epoch. */
  testAcc: number;
  /** Training examples per second of step time (d2l's figure). */
  examplesPerSec: number;
  /** Seconds of training steps in this epoch. */
  trainSeconds: number;
  /** Optimizer steps completed after this epoch. */
  step: number;
}

/** Progress of one training step. */
export interface StepProgress {
  /** Epoch number, from 1. */
  epoch: number;
  /** Step within the epoch, from 1. */
  batch: number;
  /** Steps per epoch. */
  batches: number;
  /** This step's mean loss. */
  loss: number;
  /** Mean loss over the epoch's examples so far (d2l's Animator plots this running mean). */
  epochLoss: number;
  /** Training accuracy over the epoch's examples so far. */
  epochAcc: number;
  /**
   * Wall seconds of this step: its share of the span between two reads of step results (steps run queued,
   * so a single step's own time is not observed).
   */
  seconds: number;
  /** Micro-batch size the step ran with. */
  microBatch: number;
}

/**
 * Where a run stands inside an epoch, at a point where the model holds exactly the steps done: with the
 * running sums of the epoch's figures, enough for {@link fit} to continue it with the same numbers.
 */
export interface EpochPosition {
  /** The epoch, from 1. */
  epoch: number;
  /** Steps of it done. */
  batch: number;
  /** Sum of loss x examples over those steps. */
  lossSum: number;
  /** Correct predictions over them. */
  correct: number;
  /** Examples seen. */
  seen: number;
  /** Seconds of training steps so far in the epoch. */
  seconds: number;
}

/** Options of {@link fit}. */
export interface FitOptions {
  /** Total epochs of the run (a resumed run continues to this number). */
  epochs: number;
  /** Mini-batch size. */
  batchSize: number;
  /** Side of the square input images after bilinear resizing. */
  resize: number;
  /** Seed of the per-epoch shuffles. */
  seed: number;
  /** Use only the first N training examples. */
  limitTrain?: number;
  /** Use only the first N test examples. */
  limitTest?: number;
  /** Largest micro-batch (default: what fits the device). */
  microBatch?: number;
  /** Epochs already done (when resuming). */
  startEpoch?: number;
  /** Where to continue inside epoch `startEpoch + 1` (a run resumed from a checkpoint written mid-epoch). */
  startPosition?: EpochPosition;
  /**
   * Polled before each step with the steps of the epoch recorded so far; true makes fit wait for the
   * queued steps and call `onCheckpoint`.
   */
  checkpointDue?: (batch: number) => boolean;
  /**
   * Called inside an epoch where the model holds exactly the steps reported (write a checkpoint here):
   * when `checkpointDue` says so, and when `shouldStop` ended the run mid-epoch; awaited.
   */
  onCheckpoint?: (position: EpochPosition) => Promise<void> | void;
  /** Called after every step. */
  onStep?: (progress: StepProgress) => void;
  /** Called after every epoch (write checkpoints here); awaited. */
  onEpoch?: (metrics: EpochMetrics) => Promise<void> | void;
  /** Called after every batch of the test evaluation at the end of an epoch. */
  onTestBatch?: (progress: TestProgress) => void;
  /**
   * Polled between steps and between test batches; returning true ends the run early without finishing
   * the epoch (nothing is reported for it).
   */
  shouldStop?: () => boolean;
}

/** Progress of an evaluation: batches done out of all, and the seconds the last one took. */
export interface TestProgress {
  /** Batches evaluated, from 1. */
  batch: number;
  /** Batches in all. */
  batches: number;
  /** Wall seconds of this batch (its share of the span between two reads of results). */
  seconds: number;
}

/**
 * Runs `record` on every batch of a split in order (images resized on the GPU to `resize`), reading each
 * batch's result in ticks while later batches are queued, and hands `onResult` the results in order. Stops
 * between batches once `shouldStop` returns true; what was queued by then is still read and reported.
 * Returns whether it stopped early. The one loop over a split's batches: training epochs and evaluations
 * both run it.
 */
async function runSplit(
  net: Module,
  split: Split,
  batches: EpochOptions,
  resize: number,
  record: (images: Tensor, batch: Batch) => RecordedStep,
  onResult: (result: EvalStepResult, seconds: number) => void,
  shouldStop?: () => boolean,
  pause?: { due: (batch: number) => boolean; run: () => Promise<void> | void },
): Promise<boolean> {
  const gpu = net.parameters()[0].value.gpu;
  const readback = new Readback<EvalStepResult>(gpu);
  const report = (done: { value: EvalStepResult; seconds: number }[]) => {
    for (const { value, seconds } of done) onResult(value, seconds);
  };
  let stopped = false;
  // Guarded as a whole: a device lost between steps first shows in the resize's upload or in a read.
  await gpu.guard(async () => {
    for (const b of epochBatches(split, batches)) {
      if (shouldStop?.()) {
        stopped = true;
        break;
      }
      if (pause?.due(b.index)) {
        report(await readback.drain());
        await pause.run();
      }
      const images = resizeImages(gpu, b.images, b.count, split.height, split.width, resize);
      let step: RecordedStep;
      try {
        step = record(images, b);
      } finally {
        images.dispose();
      }
      readback.add(step.parts, (bytes) => decodeStep(step, bytes), step.release);
      report(await readback.poll());
    }
    report(await readback.drain());
  });
  return stopped;
}

/**
 * Trains `net` for the remaining epochs and returns the metrics of each epoch run. A non-finite loss ends
 * the run with a {@link NinError} naming the step, at the first read of results after it (within about a
 * second of steps).
 *
 * @example
 * ```ts
 * import { fit, loadFashionMnist, nin, requestGpu, SGD } from "@nin/webgpu";
 * const gpu = await requestGpu();
 * const data = await loadFashionMnist();
 * const net = nin(gpu);
 * const opt = new SGD(net.parameters(), { lr: 0.1 });
 * const history = await fit(net, opt, data, { epochs: 1, batchSize: 16, resize: 96, seed: 0, limitTrain: 64, limitTest: 32 });
 * console.log(history[0].testAcc);
 * gpu.destroy();
 * ```
 */
export async function fit(
  net: Module,
  optimizer: SGD,
  data: { train: Split; test: Split },
  options: FitOptions,
): Promise<EpochMetrics[]> {
  const history: EpochMetrics[] = [];
  for (let epoch = (options.startEpoch ?? 0) + 1; epoch <= options.epochs; epoch++) {
    const start = options.startPosition?.epoch === epoch ? options.startPosition : undefined;
    let lossSum = start?.lossSum ?? 0, correct = start?.correct ?? 0, seen = start?.seen ?? 0;
    let seconds = start?.seconds ?? 0, batch = start?.batch ?? 0;
    const position = (): EpochPosition => ({ epoch, batch, lossSum, correct, seen, seconds });
    const epochOptions = {
      batchSize: options.batchSize,
      seed: options.seed,
      epoch: epoch - 1,
      limit: options.limitTrain,
      startBatch: batch,
    };
    const total = epochBatchCount(data.train, epochOptions);
    // The optimizer's step count when each queued step was recorded, to name a step whose loss is bad.
    const stepNumbers: number[] = [];
    const stopped = await runSplit(
      net,
      data.train,
      epochOptions,
      options.resize,
      (images, b) => {
        const step = recordTrainStep(net, optimizer, images, b.labels, { microBatch: options.microBatch });
        stepNumbers.push(optimizer.stepCount);
        return step;
      },
      (result, stepSeconds) => {
        seconds += stepSeconds;
        batch += 1;
        const stepNumber = stepNumbers.shift();
        if (!Number.isFinite(result.loss)) {
          throw new NinError(
            `the loss became ${result.loss} at step ${stepNumber} (epoch ${epoch}, batch ${batch}); ` +
              `the learning rate ${optimizer.lr} is probably too high: try a smaller --lr`,
          );
        }
        lossSum += result.loss * result.count;
        correct += result.correct;
        seen += result.count;
        options.onStep?.({
          epoch,
          batch,
          batches: total,
          loss: result.loss,
          epochLoss: lossSum / seen,
          epochAcc: correct / seen,
          seconds: stepSeconds,
          microBatch: result.microBatch,
        });
      },
      options.shouldStop,
      options.checkpointDue && options.onCheckpoint
        ? { due: options.checkpointDue, run: () => options.onCheckpoint!(position()) }
        : undefined,
    );
    if (stopped) {
      await options.onCheckpoint?.(position());
      return history;
    }
    const test = await evaluate(net, data.test, {
      ...options,
      onBatch: options.onTestBatch,
    });
    net.train();
    if (options.shouldStop?.()) {
      await options.onCheckpoint?.(position());
      return history;
    }
    const metrics: EpochMetrics = {
      epoch,
      loss: lossSum / seen,
      trainAcc: correct / seen,
      testAcc: test.accuracy,
      examplesPerSec: seen / seconds,
      trainSeconds: seconds,
      step: optimizer.stepCount,
    };
    history.push(metrics);
    await options.onEpoch?.(metrics);
  }
  return history;
}

/** Accuracy and mean loss on a split, in evaluation mode. */
export interface Evaluation {
  /** Fraction of correct predictions. */
  accuracy: number;
  /** Mean cross-entropy. */
  loss: number;
  /** Number of examples evaluated. */
  count: number;
  /** Predicted class of each example evaluated, in split order (with `predictions: true`). */
  predictions?: Int32Array;
}

/** Options of {@link evaluate}. */
export interface EvaluateOptions {
  /** Batch size. */
  batchSize: number;
  /** Side of the square input images after bilinear resizing. */
  resize: number;
  /** Use only the first N examples. */
  limitTest?: number;
  /** Largest micro-batch (default: what fits the device). */
  microBatch?: number;
  /** Also return each example's predicted class (for a confusion matrix). */
  predictions?: boolean;
  /** Called after every batch. */
  onBatch?: (progress: TestProgress) => void;
  /** Polled between batches; returning true ends the evaluation early (over the batches done so far). */
  shouldStop?: () => boolean;
}

/**
 * Evaluates `net` on a split (in order, no shuffling) at the given input size, with the batches queued
 * ahead of their reads.
 *
 * @example
 * ```ts
 * import { evaluate, loadFashionMnist, nin, requestGpu } from "@nin/webgpu";
 * const gpu = await requestGpu();
 * const { test } = await loadFashionMnist();
 * console.log(await evaluate(nin(gpu), test, { batchSize: 64, resize: 96, limitTest: 128 }));
 * gpu.destroy();
 * ```
 */
export async function evaluate(
  net: Module,
  split: Split,
  options: EvaluateOptions,
): Promise<Evaluation> {
  net.eval();
  let lossSum = 0, correct = 0, count = 0, batch = 0;
  const predictions: Int32Array[] = [];
  const epochOptions = { batchSize: options.batchSize, limit: options.limitTest, shuffle: false };
  const batches = epochBatchCount(split, epochOptions);
  const stepOptions = { microBatch: options.microBatch, predictions: options.predictions };
  await runSplit(
    net,
    split,
    epochOptions,
    options.resize,
    (images, b) => recordEvalStep(net, images, b.labels, stepOptions),
    (r, seconds) => {
      lossSum += r.loss * r.count;
      correct += r.correct;
      count += r.count;
      if (r.predictions) predictions.push(r.predictions);
      options.onBatch?.({ batch: ++batch, batches, seconds });
    },
    options.shouldStop,
  );
  const evaluation: Evaluation = { accuracy: correct / count, loss: lossSum / count, count };
  if (options.predictions) {
    evaluation.predictions = new Int32Array(count);
    let offset = 0;
    for (const p of predictions) {
      evaluation.predictions.set(p, offset);
      offset += p.length;
    }
  }
  return evaluation;
}
