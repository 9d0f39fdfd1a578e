/**
 * The epoch loop of d2l's `train_ch6`: shuffled mini-batches resized on the GPU, one SGD step each, test
 * accuracy after every epoch. Reports through callbacks; never prints.
 *
 * @module
 */
import { NinError } from "./errors.ts";
import type { Module } from "./module.ts";
import type { SGD } from "./optim.ts";
import { resizeImages } from "./resize.ts";
import { evalStep, trainStep } from "./train.ts";
import { epochBatchCount, epochBatches } from "./data/batches.ts";
import type { Split } from "./data/fashion_mnist.ts";

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
  /** Seconds this step took, wall clock. */
  seconds: number;
  /** Micro-batch size the step ran with. */
  microBatch: number;
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
  /** Seconds this batch took, wall clock. */
  seconds: number;
}

/**
 * Trains `net` for the remaining epochs and returns the metrics of each epoch run. A non-finite loss ends
 * the run with a {@link NinError} naming the step.
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
  const gpu = net.parameters()[0].value.gpu;
  const history: EpochMetrics[] = [];
  for (let epoch = (options.startEpoch ?? 0) + 1; epoch <= options.epochs; epoch++) {
    let lossSum = 0, correct = 0, seen = 0, seconds = 0, batch = 0;
    const epochOptions = {
      batchSize: options.batchSize,
      seed: options.seed,
      epoch: epoch - 1,
      limit: options.limitTrain,
    };
    const total = epochBatchCount(data.train, epochOptions);
    for (const b of epochBatches(data.train, epochOptions)) {
      if (options.shouldStop?.()) return history;
      const started = performance.now();
      // Guarded as a whole: a device lost between steps first shows in the resize's upload.
      const result = await gpu.guard(async () => {
        const images = resizeImages(
          gpu,
          b.images,
          b.count,
          data.train.height,
          data.train.width,
          options.resize,
        );
        try {
          return await trainStep(net, optimizer, images, b.labels, { microBatch: options.microBatch });
        } finally {
          images.dispose();
        }
      });
      const stepSeconds = (performance.now() - started) / 1000;
      seconds += stepSeconds;
      batch += 1;
      if (!Number.isFinite(result.loss)) {
        throw new NinError(
          `the loss became ${result.loss} at step ${optimizer.stepCount} (epoch ${epoch}, batch ${batch}); ` +
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
    }
    const test = await evaluate(net, data.test, {
      ...options,
      onBatch: options.onTestBatch,
    });
    net.train();
    if (options.shouldStop?.()) return history;
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
  /** Called after every batch. */
  onBatch?: (progress: TestProgress) => void;
  /** Polled between batches; returning true ends the evaluation early (over the batches done so far). */
  shouldStop?: () => boolean;
}

/**
 * Evaluates `net` on a split (in order, no shuffling) at the given input size.
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
  const gpu = net.parameters()[0].value.gpu;
  net.eval();
  let lossSum = 0, correct = 0, count = 0, batch = 0;
  const epochOptions = { batchSize: options.batchSize, limit: options.limitTest };
  const batches = epochBatchCount(split, epochOptions);
  for (const b of epochBatches(split, epochOptions)) {
    if (options.shouldStop?.()) break;
    const started = performance.now();
    const r = await gpu.guard(async () => {
      const images = resizeImages(gpu, b.images, b.count, split.height, split.width, options.resize);
      try {
        return await evalStep(net, images, b.labels, { microBatch: options.microBatch });
      } finally {
        images.dispose();
      }
    });
    lossSum += r.loss * r.count;
    correct += r.correct;
    count += r.count;
    options.onBatch?.({ batch: ++batch, batches, seconds: (performance.now() - started) / 1000 });
  }
  return { accuracy: correct / count, loss: lossSum / count, count };
}
