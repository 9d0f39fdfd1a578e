/**
 * The replay behind `analyzeResources`: a bookkeeping-only twin of the toolkit's runtime that performs the
 * same buffer allocations and releases, in the same order, as `predictClasses` and `trainStep`, and declares
 * the same FLOPs per dispatch. Every class below mirrors one file of lib/ line by line where buffers are
 * allocated or released and where dispatches declare FLOPs; keep them in step (tests/resources_test.ts
 * compares the replay with a real run byte for byte).
 *
 * @module
 */
import { type LayerSpec, specMicroBatch, specOutputShape } from "./model_spec.ts";
import { shapeSize } from "./tensor.ts";

/** What a buffer holds, for the breakdown of the peak. */
export type MemoryCategory =
  | "parameters"
  | "parameter gradients"
  | "momentum buffers"
  | "input batch"
  | "micro-batch copies"
  | "labels and statistics"
  | "activations"
  | "maxpool indices"
  | "activation gradients"
  | "logits gradient"
  | "workspace";

/** What a dispatch's FLOPs are counted as. */
export type FlopPhase = "forward" | "input gradient" | "weight gradient" | "loss" | "optimizer";

interface SimBuffer {
  size: number;
  category: MemoryCategory;
  owner: string;
  live: boolean;
}

interface SimTensor {
  shape: readonly number[];
  storage: { buffer: SimBuffer; refs: number };
}

/** One dispatch of the replay. */
export interface Dispatch {
  layer: string;
  phase: FlopPhase;
  flops: number;
  macs: number;
}

/**
 * Mirrors `Gpu`'s accounting (`allocate`, `release`, `memory`, `resetPeak`) and its FLOP counter.
 *
 * @example
 * ```ts
 * import { Ledger } from "./buffer_replay.ts";
 * const ledger = new Ledger();
 * ledger.release(ledger.allocate(10, "workspace"));
 * console.log(ledger.peak, ledger.live); // 16 0
 * ```
 */
export class Ledger {
  live = 0;
  peak = 0;
  peakAt = "";
  peakParts: Partial<Record<MemoryCategory, number>> = {};
  where = "setup";
  /** Appended to `where` in the peak's location, e.g. ` (micro-batch 1 of 2)`. */
  context = "";
  /** Largest number of bytes of temporary workspace live at once. */
  workspacePeak = 0;
  dispatches: Dispatch[] = [];
  #buffers = new Set<SimBuffer>();

  allocate(bytes: number, category: MemoryCategory, owner = ""): SimBuffer {
    const buffer = { size: Math.max(16, Math.ceil(bytes / 16) * 16), category, owner, live: true };
    this.#buffers.add(buffer);
    this.live += buffer.size;
    if (this.live > this.peak) {
      this.peak = this.live;
      this.peakAt = this.where + this.context;
      this.peakParts = this.parts();
    }
    if (category === "workspace") {
      this.workspacePeak = Math.max(this.workspacePeak, this.parts().workspace ?? 0);
    }
    return buffer;
  }

  release(buffer: SimBuffer): void {
    if (!buffer.live) throw new Error("resources replay: a buffer was released twice");
    buffer.live = false;
    this.#buffers.delete(buffer);
    this.live -= buffer.size;
  }

  resetPeak(): void {
    this.peak = this.live;
    this.peakAt = this.where + this.context;
    this.peakParts = this.parts();
    this.workspacePeak = this.peakParts.workspace ?? 0;
    this.dispatches = [];
  }

  parts(): Partial<Record<MemoryCategory, number>> {
    const out: Partial<Record<MemoryCategory, number>> = {};
    for (const b of this.#buffers) out[b.category] = (out[b.category] ?? 0) + b.size;
    return out;
  }

  /** Bytes of live buffers per owner, for the given categories. */
  liveByOwner(categories: MemoryCategory[]): Map<string, number> {
    const out = new Map<string, number>();
    for (const b of this.#buffers) {
      if (categories.includes(b.category)) out.set(b.owner, (out.get(b.owner) ?? 0) + b.size);
    }
    return out;
  }

  dispatch(layer: string, phase: FlopPhase, flops: number, macs = 0): void {
    this.dispatches.push({ layer, phase, flops, macs });
  }

  // Tensor: empty / reshape / dispose with a shared, refcounted storage.
  empty(shape: readonly number[], category: MemoryCategory, owner = ""): SimTensor {
    return { shape, storage: { buffer: this.allocate(shapeSize(shape) * 4, category, owner), refs: 1 } };
  }

  reshape(t: SimTensor, shape: readonly number[]): SimTensor {
    t.storage.refs += 1;
    return { shape, storage: t.storage };
  }

  dispose(t: SimTensor): void {
    t.storage.refs -= 1;
    if (t.storage.refs === 0) this.release(t.storage.buffer);
  }
}

/** `Parameter`: value allocated up front, gradient on first use (`gradOrZeros`). */
class SimParameter {
  value: SimTensor;
  grad: SimTensor | null = null;
  constructor(readonly ledger: Ledger, readonly shape: number[], readonly owner: string) {
    this.value = ledger.empty(shape, "parameters", owner);
  }
  gradOrZeros(): SimTensor {
    this.grad ??= this.ledger.empty(this.shape, "parameter gradients", this.owner);
    return this.grad;
  }
}

abstract class SimModule {
  training = true;
  constructor(readonly ledger: Ledger, readonly name: string) {}
  abstract forward(x: SimTensor): SimTensor;
  abstract backward(gradOutput: SimTensor, needInputGrad: boolean): SimTensor | null;
  parameters(): SimParameter[] {
    return [];
  }
  modules(): SimModule[] {
    return [this];
  }
  clearSaved(): void {}
  protected at(what: string): void {
    this.ledger.where = `${what} of ${this.name}`;
  }
}

/** lib/layers/conv2d.ts */
class SimConv2d extends SimModule {
  fuseRelu = false;
  readonly weight: SimParameter;
  readonly bias: SimParameter;
  #input: SimTensor | null = null;
  constructor(ledger: Ledger, name: string, readonly spec: Extract<LayerSpec, { type: "Conv2d" }>) {
    super(ledger, name);
    this.weight = new SimParameter(
      ledger,
      [spec.outChannels, spec.inChannels, spec.kernelSize, spec.kernelSize],
      name,
    );
    this.bias = new SimParameter(ledger, [spec.outChannels], name);
  }
  override parameters(): SimParameter[] {
    return [this.weight, this.bias];
  }
  #macs(outShape: readonly number[]): number {
    return shapeSize(outShape) * this.spec.inChannels * this.spec.kernelSize * this.spec.kernelSize;
  }
  forward(x: SimTensor): SimTensor {
    this.at("forward");
    const shape = specOutputShape(this.spec, x.shape, this.name);
    const y = this.ledger.empty(shape, "activations", this.name);
    const macs = this.#macs(shape);
    this.ledger.dispatch(this.name, "forward", 2 * macs, macs);
    this.#input = this.training ? x : null;
    return y;
  }
  backward(gradOutput: SimTensor, needInputGrad: boolean): SimTensor | null {
    this.at("backward");
    const x = this.#input!;
    this.#input = null;
    const macs = this.#macs(gradOutput.shape);
    // With the fused ReLU the bias kernel writes dy masked by (output > 0) into a temporary the GEMMs read.
    const masked = this.fuseRelu ? this.ledger.empty(gradOutput.shape, "workspace", this.name) : null;
    this.bias.gradOrZeros();
    this.ledger.dispatch(this.name, "weight gradient", shapeSize(gradOutput.shape));
    this.weight.gradOrZeros();
    this.ledger.dispatch(this.name, "weight gradient", 2 * macs);
    let dx: SimTensor | null = null;
    if (needInputGrad) {
      dx = this.ledger.empty(x.shape, "activation gradients", this.name);
      this.ledger.dispatch(this.name, "input gradient", 2 * macs);
    }
    if (masked) this.ledger.dispose(masked);
    return dx;
  }
  override clearSaved(): void {
    this.#input = null;
  }
}

/** lib/layers/relu.ts (only when not fused into a convolution; the ReLU kernels declare no FLOPs). */
class SimReLU extends SimModule {
  forward(x: SimTensor): SimTensor {
    this.at("forward");
    const y = this.ledger.empty(x.shape, "activations", this.name);
    this.ledger.dispatch(this.name, "forward", 0);
    return y;
  }
  backward(gradOutput: SimTensor, needInputGrad: boolean): SimTensor | null {
    this.at("backward");
    if (!needInputGrad) return null;
    const dx = this.ledger.empty(gradOutput.shape, "activation gradients", this.name);
    this.ledger.dispatch(this.name, "input gradient", 0);
    return dx;
  }
}

/** lib/layers/maxpool2d.ts */
class SimMaxPool2d extends SimModule {
  #saved: { indices: SimBuffer; inputShape: readonly number[] } | null = null;
  constructor(ledger: Ledger, name: string, readonly spec: Extract<LayerSpec, { type: "MaxPool2d" }>) {
    super(ledger, name);
  }
  forward(x: SimTensor): SimTensor {
    this.at("forward");
    const shape = specOutputShape(this.spec, x.shape, this.name);
    this.clearSaved();
    const y = this.ledger.empty(shape, "activations", this.name);
    const indices = this.ledger.allocate(
      this.training ? shapeSize(shape) * 4 : 16,
      this.training ? "maxpool indices" : "workspace",
      this.name,
    );
    this.ledger.dispatch(
      this.name,
      "forward",
      shapeSize(shape) * this.spec.kernelSize * this.spec.kernelSize,
    );
    if (this.training) this.#saved = { indices, inputShape: x.shape };
    else this.ledger.release(indices);
    return y;
  }
  backward(gradOutput: SimTensor, needInputGrad: boolean): SimTensor | null {
    this.at("backward");
    let dx: SimTensor | null = null;
    if (needInputGrad) {
      dx = this.ledger.empty(this.#saved!.inputShape, "activation gradients", this.name);
      this.ledger.dispatch(this.name, "input gradient", shapeSize(gradOutput.shape));
    }
    this.clearSaved();
    return dx;
  }
  override clearSaved(): void {
    if (this.#saved) this.ledger.release(this.#saved.indices);
    this.#saved = null;
  }
}

/** lib/layers/dropout.ts (the mask is recomputed in backward: nothing saved on the GPU). */
class SimDropout extends SimModule {
  constructor(ledger: Ledger, name: string, readonly p: number) {
    super(ledger, name);
  }
  forward(x: SimTensor): SimTensor {
    this.at("forward");
    if (!this.training || this.p === 0) return this.ledger.reshape(x, x.shape);
    const y = this.ledger.empty(x.shape, "activations", this.name);
    this.ledger.dispatch(this.name, "forward", shapeSize(x.shape));
    return y;
  }
  backward(gradOutput: SimTensor, needInputGrad: boolean): SimTensor | null {
    this.at("backward");
    if (!needInputGrad) return null;
    if (this.p === 0) return this.ledger.reshape(gradOutput, gradOutput.shape);
    const dx = this.ledger.empty(gradOutput.shape, "activation gradients", this.name);
    this.ledger.dispatch(this.name, "input gradient", shapeSize(gradOutput.shape));
    return dx;
  }
}

/** Sum over output cells of their window's area, as lib/layers/adaptive_avgpool2d.ts counts it. */
function windowArea(inputShape: readonly number[], outputSize: [number, number]): number {
  const lengths = (length: number, out: number) => {
    let total = 0;
    for (let o = 0; o < out; o++) {
      total += Math.ceil(((o + 1) * length) / out) - Math.floor((o * length) / out);
    }
    return total;
  };
  return lengths(inputShape[2], outputSize[0]) * lengths(inputShape[3], outputSize[1]);
}

/** lib/layers/adaptive_avgpool2d.ts */
class SimAdaptiveAvgPool2d extends SimModule {
  #inputShape: readonly number[] = [];
  constructor(
    ledger: Ledger,
    name: string,
    readonly spec: Extract<LayerSpec, { type: "AdaptiveAvgPool2d" }>,
  ) {
    super(ledger, name);
  }
  forward(x: SimTensor): SimTensor {
    this.at("forward");
    const shape = specOutputShape(this.spec, x.shape, this.name);
    const y = this.ledger.empty(shape, "activations", this.name);
    const planes = shape[0] * shape[1];
    this.ledger.dispatch(
      this.name,
      "forward",
      planes * (windowArea(x.shape, this.spec.outputSize) + shape[2] * shape[3]),
    );
    this.#inputShape = x.shape;
    return y;
  }
  backward(_gradOutput: SimTensor, needInputGrad: boolean): SimTensor | null {
    this.at("backward");
    if (!needInputGrad) return null;
    const shape = this.#inputShape;
    const dx = this.ledger.empty(shape, "activation gradients", this.name);
    this.ledger.dispatch(
      this.name,
      "input gradient",
      2 * shape[0] * shape[1] * windowArea(shape, this.spec.outputSize),
    );
    return dx;
  }
}

/** lib/layers/flatten.ts: views only. */
class SimFlatten extends SimModule {
  #inputShape: readonly number[] = [];
  forward(x: SimTensor): SimTensor {
    this.#inputShape = x.shape;
    return this.ledger.reshape(x, specOutputShape({ type: "Flatten" }, x.shape));
  }
  backward(gradOutput: SimTensor, needInputGrad: boolean): SimTensor | null {
    return needInputGrad ? this.ledger.reshape(gradOutput, this.#inputShape) : null;
  }
}

/** lib/layers/sequential.ts: Conv2d+ReLU fusion, intermediates kept until the end of backward. */
class SimSequential extends SimModule {
  #ran: SimModule[] = [];
  #saved: SimTensor[] = [];
  constructor(ledger: Ledger, name: string, readonly layers: SimModule[]) {
    super(ledger, name);
  }
  override parameters(): SimParameter[] {
    return this.layers.flatMap((layer) => layer.parameters());
  }
  override modules(): SimModule[] {
    return [this, ...this.layers.flatMap((layer) => layer.modules())];
  }
  forward(x: SimTensor): SimTensor {
    this.clearSaved();
    let current = x;
    for (let i = 0; i < this.layers.length; i++) {
      const layer = this.layers[i];
      const fuse = layer instanceof SimConv2d && this.layers[i + 1] instanceof SimReLU;
      if (layer instanceof SimConv2d) layer.fuseRelu = fuse;
      const next = layer.forward(current);
      if (fuse) i += 1;
      if (current !== x) {
        if (this.training) this.#saved.push(current);
        else this.ledger.dispose(current);
      }
      if (this.training) this.#ran.push(layer);
      current = next;
    }
    return current;
  }
  backward(gradOutput: SimTensor, needInputGrad: boolean): SimTensor | null {
    let grad: SimTensor | null = gradOutput;
    for (let i = this.#ran.length - 1; i >= 0; i--) {
      const next: SimTensor | null = this.#ran[i].backward(grad!, i > 0 || needInputGrad);
      if (grad !== gradOutput) this.ledger.dispose(grad!);
      grad = next;
    }
    this.clearSaved();
    return grad;
  }
  override clearSaved(): void {
    for (const t of this.#saved) this.ledger.dispose(t);
    this.#saved = [];
    this.#ran = [];
    for (const layer of this.layers) layer.clearSaved();
  }
}

function build(ledger: Ledger, spec: LayerSpec, name: string): SimModule {
  const child = (i: number) => (name === "" ? `${i}` : `${name}.${i}`);
  switch (spec.type) {
    case "Conv2d":
      return new SimConv2d(ledger, name, spec);
    case "ReLU":
      return new SimReLU(ledger, name);
    case "MaxPool2d":
      return new SimMaxPool2d(ledger, name, spec);
    case "Dropout":
      return new SimDropout(ledger, name, spec.p);
    case "AdaptiveAvgPool2d":
      return new SimAdaptiveAvgPool2d(ledger, name, spec);
    case "Flatten":
      return new SimFlatten(ledger, name);
    case "Sequential":
      return new SimSequential(ledger, name, spec.layers.map((layer, i) => build(ledger, layer, child(i))));
  }
}

/** Hyperparameters of the optimizer that change memory or FLOPs (as `SGDOptions`). */
export interface OptimizerSpec {
  /** Momentum factor (> 0 keeps one momentum buffer per parameter). */
  momentum?: number;
  /** Weight decay (adds 2 FLOPs per element). */
  weightDecay?: number;
  /** Nesterov momentum (adds 2 FLOPs per element). */
  nesterov?: boolean;
}

/** lib/optim.ts, in its steady state (momentum buffers already started, as after the first step). */
class SimSGD {
  readonly #buffers: SimTensor[];
  constructor(readonly ledger: Ledger, readonly params: SimParameter[], readonly options: OptimizerSpec) {
    this.#buffers = (options.momentum ?? 0) === 0
      ? []
      : params.map((p) => ledger.empty(p.shape, "momentum buffers", p.owner));
  }
  zeroGrad(): void {
    for (const p of this.params) {
      if (p.grad) this.ledger.dispose(p.grad);
      p.grad = null;
    }
  }
  step(): void {
    this.ledger.where = "optimizer step";
    const useMomentum = (this.options.momentum ?? 0) !== 0;
    const placeholder = useMomentum ? null : this.ledger.allocate(16, "workspace");
    let perElement = 2;
    if ((this.options.weightDecay ?? 0) !== 0) perElement += 2;
    if (useMomentum) perElement += 3 + (this.options.nesterov ? 2 : 0);
    for (const p of this.params) {
      if (p.grad) this.ledger.dispatch(p.owner, "optimizer", shapeSize(p.shape) * perElement);
    }
    if (placeholder) this.ledger.release(placeholder);
  }
}

const LOSS_FLOPS_PER_LOGIT = 7;

function microBatchContext(start: number, micro: number, n: number): string {
  const count = Math.ceil(n / micro);
  return count === 1 ? "" : ` (micro-batch ${start / micro + 1} of ${count})`;
}

/** lib/predict.ts `predictClasses`. */
function replayPredict(ledger: Ledger, net: SimModule, images: SimTensor, micro: number): void {
  for (const m of net.modules()) m.training = false;
  const [n, ...sample] = images.shape;
  for (let start = 0; start < n; start += micro) {
    const count = Math.min(micro, n - start);
    ledger.where = "micro-batch copy";
    ledger.context = microBatchContext(start, micro, n);
    const chunk = count === n ? images : ledger.empty([count, ...sample], "micro-batch copies");
    const logits = net.forward(chunk);
    ledger.dispose(logits);
    if (chunk !== images) ledger.dispose(chunk);
  }
}

/** lib/train.ts `trainStep` (runBatches with `train`, then the optimizer step and the statistics read). */
function replayTrainStep(
  ledger: Ledger,
  net: SimModule,
  optimizer: SimSGD,
  images: SimTensor,
  micro: number,
  onForwardDone: (firstMicroBatch: boolean) => void,
): void {
  optimizer.zeroGrad();
  for (const m of net.modules()) m.training = true;
  const [n, ...sample] = images.shape;
  ledger.where = "step setup";
  const labels = ledger.allocate(n * 4, "labels and statistics");
  const stats = ledger.allocate(16, "labels and statistics");
  for (let start = 0; start < n; start += micro) {
    const count = Math.min(micro, n - start);
    ledger.where = "micro-batch copy";
    ledger.context = microBatchContext(start, micro, n);
    const chunk = count === n ? images : ledger.empty([count, ...sample], "micro-batch copies");
    const chunkLabels = start === 0 ? labels : ledger.allocate(count * 4, "labels and statistics");
    const logits = net.forward(chunk);
    onForwardDone(start === 0);
    ledger.where = "loss";
    const grad = ledger.empty(logits.shape, "logits gradient");
    ledger.dispatch("loss", "loss", LOSS_FLOPS_PER_LOGIT * shapeSize(logits.shape));
    net.backward(grad, false);
    ledger.dispose(grad);
    ledger.dispose(logits);
    if (chunk !== images) ledger.dispose(chunk);
    if (chunkLabels !== labels) ledger.release(chunkLabels);
  }
  ledger.context = "";
  ledger.release(labels);
  optimizer.step();
  ledger.release(stats);
}

/** What {@link replay} leaves: one ledger per pass, the micro-batch sizes, and what each layer saved. */
export interface Replay {
  /** The ledger of the prediction pass (peak and dispatches counted from the start of the pass). */
  inference: Ledger;
  /** Micro-batch size of the prediction pass. */
  inferenceMicro: number;
  /** The ledger of the training step (peak and dispatches counted from the start of the step). */
  training: Ledger;
  /** Micro-batch size of the training step. */
  trainMicro: number;
  /** Bytes of activations and max-pool indices each layer keeps for backward (after the first micro-batch). */
  saved: Map<string, number>;
}

/**
 * Replays model creation, a prediction pass and a training step on a fresh ledger.
 *
 * @example
 * ```ts
 * import { replay } from "./buffer_replay.ts";
 * import { ninSpec } from "./model_spec.ts";
 * const r = replay(ninSpec(), [128, 1, 224, 224], { momentum: 0.9 }, 134217728);
 * console.log(r.trainMicro, r.training.peak);
 * ```
 */
export function replay(
  spec: LayerSpec,
  inputShape: number[],
  options: OptimizerSpec & { microBatch?: number },
  maxBindingBytes: number,
): Replay {
  const [n, ...sample] = inputShape;
  // Prediction: the model and the input batch exist before the pass (predictClasses picks its own split).
  const inference = new Ledger();
  const inferenceNet = build(inference, spec, "");
  const inferenceImages = inference.empty(inputShape, "input batch");
  const inferenceMicro = specMicroBatch(spec, sample, n, maxBindingBytes);
  inference.resetPeak();
  replayPredict(inference, inferenceNet, inferenceImages, inferenceMicro);

  // Training: model, input batch and optimizer exist before the step.
  const training = new Ledger();
  const net = build(training, spec, "");
  const images = training.empty(inputShape, "input batch");
  const optimizer = new SimSGD(training, net.parameters(), options);
  const trainMicro = specMicroBatch(spec, sample, n, maxBindingBytes, options.microBatch);
  training.resetPeak();
  let saved = new Map<string, number>();
  replayTrainStep(training, net, optimizer, images, trainMicro, (first) => {
    if (first) saved = training.liveByOwner(["activations", "maxpool indices"]);
  });
  return { inference, inferenceMicro, training, trainMicro, saved };
}
