/**
 * The core of nin-webgpu: everything that runs wherever WebGPU runs (Deno, Dawn, a browser): no file
 * system, environment, FFI or `node:` modules. The package's main entry (`mod.ts`) is this core plus the
 * Deno edge (files, the data cache, Dawn); a web page imports this core (bundled as `/nin.js` by
 * `deno task web`).
 *
 * @example
 * ```ts
 * import { nin, requestGpu, SGD, Tensor, trainStep } from "@nin/webgpu/core";
 * const gpu = await requestGpu();
 * const net = nin(gpu, { seed: 0 });
 * const opt = new SGD(net.parameters(), { lr: 0.1 });
 * const images = Tensor.zeros(gpu, [8, 1, 96, 96]);
 * const { loss } = await trainStep(net, opt, images, new Int32Array(8));
 * console.log(loss);
 * ```
 *
 * @module
 */
export {
  type DispatchRecord,
  type Engine,
  Gpu,
  type GpuOptions,
  type Kernel,
  type KernelChoice,
  type KernelFamily,
  type MemoryStats,
  type OpenAdapter,
  type Phase,
  type ReadPart,
  requestGpu,
} from "./lib/gpu/device.ts";
export { PHASES, totalFlops } from "./lib/gpu/records.ts";
export { type LayerChoices, type PassChoice, type Tuning } from "./lib/tuning.ts";
export { type GemmPass } from "./lib/layers/conv2d_gpu_candidates.ts";
export { formatShape, NinError } from "./lib/errors.ts";
export { Tensor } from "./lib/tensor.ts";
export { type ForwardContext, Module, Parameter } from "./lib/module.ts";
export { type LiveBuffer } from "./lib/gpu/pool.ts";
export { type TimingMethod } from "./lib/gpu/profiler.ts";
export { type ParamField } from "./lib/gpu/kernel.ts";
export { Random } from "./lib/random.ts";
export {
  Conv2d,
  type Conv2dOptions,
  CONV_INITS,
  type ConvInit,
  convWeightBound,
} from "./lib/layers/conv2d.ts";
export { type ConvGeometry } from "./lib/layers/conv2d_passes.ts";
export { ReLU } from "./lib/layers/relu.ts";
export { MaxPool2d } from "./lib/layers/maxpool2d.ts";
export { Dropout, type DropoutOptions } from "./lib/layers/dropout.ts";
export { AdaptiveAvgPool2d } from "./lib/layers/adaptive_avgpool2d.ts";
export { Flatten } from "./lib/layers/flatten.ts";
export { Sequential } from "./lib/layers/sequential.ts";
export {
  nin,
  NIN_HEADS,
  ninBlock,
  type NinBlockOptions,
  ninConfig,
  type NinHead,
  type NinOptions,
  ninShapeOptions,
} from "./lib/nin.ts";
export { type LayerShape, layerShapes, smallestInputSize } from "./lib/shapes.ts";
export { crossEntropyLoss, softmaxCrossEntropy, validateLabels } from "./lib/loss.ts";
export { SGD, type SGDOptions } from "./lib/optim.ts";
export {
  decodeStep,
  evalStep,
  type EvalStepOptions,
  type EvalStepResult,
  readStep,
  type RecordedStep,
  recordEvalStep,
  recordTrainStep,
  type StepOptions,
  type StepResult,
  trainStep,
} from "./lib/train.ts";
export { type Completed, Readback, type ReadbackOptions } from "./lib/readback.ts";
export {
  forEachMicroBatch,
  type LargestActivation,
  largestActivation,
  microBatchSize,
} from "./lib/microbatch.ts";
export { resizeImages } from "./lib/resize.ts";
export {
  type Dtype,
  type HostTensor,
  parseSafetensors,
  type SafetensorsFile,
  serializeSafetensors,
} from "./lib/safetensors.ts";
export {
  type Checkpoint,
  type CurvePoint,
  encodeCheckpoint,
  parseCheckpoint,
  restoreCheckpoint,
  type RunState,
  type SaveCheckpointOptions,
} from "./lib/checkpoint.ts";
export { type CheckpointNin, type CheckpointNinOptions, ninFromCheckpoint } from "./lib/nin_checkpoint.ts";
export {
  type ChartOptions,
  lineChartSvg,
  niceTicks,
  type Series,
  SERIES_STYLES,
  type SeriesStyle,
} from "./lib/svg_plot.ts";
export {
  type EpochMetrics,
  type EpochPosition,
  evaluate,
  type EvaluateOptions,
  type Evaluation,
  fit,
  type FitOptions,
  type StepProgress,
  type TestProgress,
} from "./lib/fit.ts";
export { confusionMatrix, predictClasses } from "./lib/predict.ts";
export { measureRoofline, type Roofline, type RooflineCandidate } from "./lib/roofline.ts";
export {
  CLASS_NAMES,
  type FashionMnist,
  IMAGE_SIZE,
  makeSplit,
  type Split,
  splitFromTensors,
  splitTensors,
} from "./lib/data/split.ts";
export {
  type Batch,
  batchesPerEpoch,
  epochBatches,
  type EpochOptions,
  epochOrder,
  type Examples,
  type HeldOut,
  holdOut,
} from "./lib/data/batches.ts";
// Exercise 3's resource analysis is public as a whole: its options, results and the two runs.
export * from "./lib/resources.ts";
export { ModelSummary, summary, type SummaryRow } from "./lib/summary.ts";
export {
  countingGpu,
  type CountingLimits,
  countingLimits,
  type CountingOptions,
} from "./lib/gpu/counting.ts";
export {
  type ConfigDifference,
  configDifferences,
  type DataConfig,
  describeRunConfig,
  type EpochRecord,
  type ModelConfig,
  ninOptions,
  readHistory,
  readRunConfig,
  RUN_CONFIG_VERSION,
  type RunConfig,
  runConfig,
  type RunConfigInput,
  type TrainConfig,
} from "./lib/config.ts";
export {
  checkSchedule,
  CONSTANT_SCHEDULE,
  describeSchedule,
  learningRate,
  type LrSchedule,
  SCHEDULE_KINDS,
  type ScheduleKind,
} from "./lib/schedule.ts";
export { runFitOptions, runSchedule, type RunSplits, runSplits, validationAccuracy } from "./lib/run.ts";
export {
  buildExperiment,
  DEFAULT_SEARCH_TRIALS,
  defaultSpace,
  type Experiment,
  EXPERIMENT_NAMES,
  type ExperimentName,
  type ExperimentOptions,
  parseShard,
  type Scale,
  SCALE_CONFIGS,
  SCALES,
  type SearchSpace,
  shardTrials,
  type Trial,
  type Variant,
} from "./lib/experiment.ts";
export {
  type ExamplesPoint,
  type ExperimentReport,
  experimentReport,
  type TrialResult,
  type VariantCost,
} from "./lib/experiment_report.ts";
export { featureStats, type HeadFeatureStats, headFeatureStats } from "./lib/head_features.ts";
