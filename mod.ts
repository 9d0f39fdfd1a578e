/**
 * nin-webgpu: the *Network in Network* CNN (Lin, Chen & Yan 2013, as in d2l's NiN chapter) trained and
 * run on hand-written WGSL compute kernels through WebGPU, with a PyTorch-like API.
 *
 * @example
 * ```ts
 * import { nin, requestGpu, SGD, Tensor, trainStep } from "jsr:@nin/webgpu";
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
  requestGpu,
} from "./lib/gpu/device.ts";
export { formatShape, NinError } from "./lib/errors.ts";
export { Tensor } from "./lib/tensor.ts";
export { type ForwardContext, Module, Parameter } from "./lib/module.ts";
export { type BufferPool, type LiveBuffer, type Pooled } from "./lib/gpu/pool.ts";
export { type CommandRecorder, type Dispatch } from "./lib/gpu/recorder.ts";
export { type Profiler, type TimingMethod } from "./lib/gpu/profiler.ts";
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
  type LayerShape,
  layerShapes,
  nin,
  ninBlock,
  type NinBlockOptions,
  ninConfig,
  type NinOptions,
  smallestInputSize,
} from "./lib/nin.ts";
export { crossEntropyLoss, softmaxCrossEntropy, validateLabels } from "./lib/loss.ts";
export { SGD, type SGDOptions } from "./lib/optim.ts";
export { evalStep, type StepOptions, type StepResult, trainStep } from "./lib/train.ts";
export { type LargestActivation, largestActivation, microBatchSize } from "./lib/microbatch.ts";
export { resizeImages } from "./lib/resize.ts";
export {
  type Dtype,
  type HostTensor,
  loadSafetensors,
  parseSafetensors,
  readSafetensors,
  type SafetensorsFile,
  saveSafetensors,
  serializeSafetensors,
} from "./lib/safetensors.ts";
export {
  type Checkpoint,
  type CurvePoint,
  loadCheckpoint,
  restoreCheckpoint,
  type RunState,
  saveCheckpoint,
  type SaveCheckpointOptions,
} from "./lib/checkpoint.ts";
export { lineChartSvg, niceTicks, type Series, SERIES_STYLES, type SeriesStyle } from "./lib/svg_plot.ts";
export {
  type EpochMetrics,
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
  type FashionMnistFile,
  loadFashionMnist,
  type LoadFashionMnistOptions,
  type Split,
} from "./lib/data/fashion_mnist.ts";
export {
  type Batch,
  batchesPerEpoch,
  epochBatches,
  type EpochOptions,
  epochOrder,
  type Examples,
} from "./lib/data/batches.ts";
// Exercise 3's resource analysis is public as a whole: its options, results and the two runs.
export * from "./lib/resources.ts";
export { ModelSummary, summary, type SummaryRow } from "./lib/summary.ts";
export { countingGpu, type CountingOptions } from "./lib/gpu/counting.ts";
