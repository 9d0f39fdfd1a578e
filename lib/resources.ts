/**
 * What NiN costs, worked out without a GPU: parameters, MACs and FLOPs per layer, and the peak GPU memory
 * of a prediction pass and of a training step at a batch size, as the toolkit really schedules its buffers.
 *
 * The memory figures come from replaying the toolkit's own buffer schedule on a model of it: the same
 * allocations and releases, in the same order, as `predictClasses` and `trainStep` run them (micro-batch
 * copies, labels, the statistics buffer, every activation `Sequential` keeps until backward, the u32 argmax
 * indices of max pooling, weight gradients allocated on first use, the gradients in flight during backward,
 * momentum buffers, the 16-byte placeholders, all rounded up to 16 bytes as `Gpu.allocate` does). The FLOP
 * figures are what every dispatch of that replay declares, with each layer's documented convention, so the
 * dispatched total of a real pass equals them exactly. `lib/measure.ts` checks both against a real run.
 *
 * Convention: 1 MAC (multiply-accumulate) = 1 multiply + 1 add = 2 FLOPs.
 *
 * @module
 */
import { formatShape, NinError } from "./errors.ts";
import { ninConfig, type NinOptions } from "./nin.ts";

/** The convention every figure of this module follows, in words. */
export const MAC_CONVENTION = "1 MAC = 1 multiply + 1 add = 2 FLOPs";

/** WebGPU's default `maxStorageBufferBindingSize` (128 MiB), assumed when no device is at hand. */
export const DEFAULT_MAX_BINDING_BYTES = 134217728;

/** A layer of the model, described by its configuration alone (no GPU tensors). */
export type LayerSpec =
  | {
    type: "Conv2d";
    inChannels: number;
    outChannels: number;
    kernelSize: number;
    stride: number;
    padding: number;
  }
  | { type: "ReLU" }
  | { type: "MaxPool2d"; kernelSize: number; stride: number; padding: number }
  | { type: "Dropout"; p: number }
  | { type: "AdaptiveAvgPool2d"; outputSize: [number, number] }
  | { type: "Flatten" }
  | { type: "Sequential"; layers: LayerSpec[] };

/**
 * The layers `nin(gpu, options)` builds, as plain data in the same order and nesting (blocks are nested
 * `Sequential`s, so PyTorch indices are `0.0`, ..., `9`).
 *
 * @example
 * ```ts
 * import { ninSpec } from "./resources.ts";
 * const net = ninSpec({ oneByOneConvs: 2 });
 * console.log(net.type, net.type === "Sequential" ? net.layers.length : 0); // Sequential 10
 * ```
 */
export function ninSpec(options: NinOptions = {}): LayerSpec {
  const { numClasses, inChannels, dropout, oneByOneConvs } = ninConfig(options);
  const conv = (i: number, o: number, k: number, s: number, p: number): LayerSpec => ({
    type: "Conv2d",
    inChannels: i,
    outChannels: o,
    kernelSize: k,
    stride: s,
    padding: p,
  });
  const block = (i: number, o: number, k: number, s: number, p: number): LayerSpec => {
    const layers: LayerSpec[] = [conv(i, o, k, s, p), { type: "ReLU" }];
    for (let j = 0; j < oneByOneConvs; j++) layers.push(conv(o, o, 1, 1, 0), { type: "ReLU" });
    return { type: "Sequential", layers };
  };
  const pool: LayerSpec = { type: "MaxPool2d", kernelSize: 3, stride: 2, padding: 0 };
  return {
    type: "Sequential",
    layers: [
      block(inChannels, 96, 11, 4, 0),
      pool,
      block(96, 256, 5, 1, 2),
      pool,
      block(256, 384, 3, 1, 1),
      pool,
      { type: "Dropout", p: dropout },
      block(384, numClasses, 3, 1, 1),
      { type: "AdaptiveAvgPool2d", outputSize: [1, 1] },
      { type: "Flatten" },
    ],
  };
}

/**
 * Output shape of a layer for an input shape (the same rules as the layers' `outputShape`); throws a
 * {@link NinError} naming the layer when the input does not fit.
 *
 * @example
 * ```ts
 * import { ninSpec, specOutputShape } from "./resources.ts";
 * console.log(specOutputShape(ninSpec(), [128, 1, 224, 224])); // [128, 10]
 * ```
 */
export function specOutputShape(spec: LayerSpec, inputShape: readonly number[], name = "model"): number[] {
  const [n, c, h, w] = inputShape;
  const spatial = (k: number, s: number, p: number) =>
    [h, w].map((size) => Math.floor((size + 2 * p - k) / s) + 1) as [number, number];
  switch (spec.type) {
    case "Conv2d": {
      if (inputShape.length !== 4 || c !== spec.inChannels) {
        throw new NinError(
          `layer ${name} (Conv2d) expects [N, ${spec.inChannels}, H, W], got ${formatShape(inputShape)}`,
        );
      }
      const [oh, ow] = spatial(spec.kernelSize, spec.stride, spec.padding);
      if (oh < 1 || ow < 1) {
        throw new NinError(
          `layer ${name} (Conv2d) would produce an empty output for ${formatShape(inputShape)}`,
        );
      }
      return [n, spec.outChannels, oh, ow];
    }
    case "MaxPool2d": {
      if (inputShape.length !== 4) {
        throw new NinError(`layer ${name} (MaxPool2d) expects [N, C, H, W], got ${formatShape(inputShape)}`);
      }
      if (h + 2 * spec.padding < spec.kernelSize || w + 2 * spec.padding < spec.kernelSize) {
        throw new NinError(
          `layer ${name} (MaxPool2d) would produce an empty output for ${formatShape(inputShape)}`,
        );
      }
      return [n, c, ...spatial(spec.kernelSize, spec.stride, spec.padding)];
    }
    case "AdaptiveAvgPool2d":
      if (inputShape.length !== 4) {
        throw new NinError(
          `layer ${name} (AdaptiveAvgPool2d) expects [N, C, H, W], got ${formatShape(inputShape)}`,
        );
      }
      return [n, c, ...spec.outputSize];
    case "Flatten":
      return [n, inputShape.slice(1).reduce((a, b) => a * b, 1)];
    case "ReLU":
    case "Dropout":
      return [...inputShape];
    case "Sequential":
      return spec.layers.reduce(
        (shape, layer, i) => specOutputShape(layer, shape, name === "model" ? `${i}` : `${name}.${i}`),
        [...inputShape],
      );
  }
}

/**
 * Parameter count of a layer (weights and biases; 0 for the others), summed over a `Sequential`.
 *
 * @example
 * ```ts
 * import { ninSpec, specParams } from "./resources.ts";
 * console.log(specParams(ninSpec())); // 1992166
 * ```
 */
export function specParams(spec: LayerSpec): number {
  if (spec.type === "Conv2d") {
    return spec.outChannels * spec.inChannels * spec.kernelSize * spec.kernelSize + spec.outChannels;
  }
  if (spec.type === "Sequential") return spec.layers.reduce((sum, layer) => sum + specParams(layer), 0);
  return 0;
}

/**
 * The leaf layers with their dotted PyTorch names, in execution order.
 *
 * @example
 * ```ts
 * import { ninSpec, specLeaves } from "./resources.ts";
 * console.log(specLeaves(ninSpec()).map((l) => `${l.name} ${l.spec.type}`).slice(0, 3));
 * // ["0.0 Conv2d", "0.1 ReLU", "0.2 Conv2d"]
 * ```
 */
export function specLeaves(spec: LayerSpec, prefix = ""): { name: string; spec: LayerSpec }[] {
  if (spec.type !== "Sequential") return [{ name: prefix.replace(/\.$/, ""), spec }];
  return spec.layers.flatMap((layer, i) => specLeaves(layer, `${prefix}${i}.`));
}

/**
 * The micro-batch size `trainStep` and `predictClasses` use (the same rule as `microBatchSize` in
 * `lib/microbatch.ts`): the whole batch when the largest per-sample tensor (input or any layer's output)
 * times the batch fits one binding, else as many samples as fit, or `requested` when smaller. Throws a
 * {@link NinError} when not even one sample fits.
 *
 * @example
 * ```ts
 * import { ninSpec, specMicroBatch } from "./resources.ts";
 * console.log(specMicroBatch(ninSpec(), [1, 224, 224], 128, 134217728)); // 119
 * ```
 */
export function specMicroBatch(
  spec: LayerSpec,
  sampleShape: readonly number[],
  batch: number,
  maxBindingBytes: number,
  requested?: number,
): number {
  let largest = sampleShape.reduce((a, b) => a * b, 1) * 4;
  let shape = [1, ...sampleShape];
  for (const leaf of specLeaves(spec)) {
    shape = specOutputShape(leaf.spec, shape, leaf.name);
    largest = Math.max(largest, shape.reduce((a, b) => a * b, 1) * 4);
  }
  const fits = Math.floor(maxBindingBytes / largest);
  if (fits < 1) {
    const shapeText = formatShape(sampleShape);
    throw new NinError(
      `one sample of shape ${shapeText} needs ${largest} bytes in one binding but the device binds at most ` +
        `${maxBindingBytes}; use a smaller --resize`,
    );
  }
  return Math.max(1, Math.min(batch, fits, requested ?? batch));
}

// ---------------------------------------------------------------------------------------------------------
// The replay: a bookkeeping-only twin of the toolkit's runtime. Every class below mirrors one file of lib/
// line by line where buffers are allocated or released and where dispatches declare FLOPs; keep them in step
// (tests/resources_test.ts compares the replay with a real run byte for byte).

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
interface Dispatch {
  layer: string;
  phase: FlopPhase;
  flops: number;
  macs: number;
}

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** Mirrors `Gpu`'s accounting (`allocate`, `release`, `memory`, `resetPeak`) and its FLOP counter. */
class Ledger {
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
    return { shape, storage: { buffer: this.allocate(size(shape) * 4, category, owner), refs: 1 } };
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
    return size(outShape) * this.spec.inChannels * this.spec.kernelSize * this.spec.kernelSize;
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
    this.ledger.dispatch(this.name, "weight gradient", size(gradOutput.shape));
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
      this.training ? size(shape) * 4 : 16,
      this.training ? "maxpool indices" : "workspace",
      this.name,
    );
    this.ledger.dispatch(this.name, "forward", size(shape) * this.spec.kernelSize * this.spec.kernelSize);
    if (this.training) this.#saved = { indices, inputShape: x.shape };
    else this.ledger.release(indices);
    return y;
  }
  backward(gradOutput: SimTensor, needInputGrad: boolean): SimTensor | null {
    this.at("backward");
    let dx: SimTensor | null = null;
    if (needInputGrad) {
      dx = this.ledger.empty(this.#saved!.inputShape, "activation gradients", this.name);
      this.ledger.dispatch(this.name, "input gradient", size(gradOutput.shape));
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
    this.ledger.dispatch(this.name, "forward", size(x.shape));
    return y;
  }
  backward(gradOutput: SimTensor, needInputGrad: boolean): SimTensor | null {
    this.at("backward");
    if (!needInputGrad) return null;
    if (this.p === 0) return this.ledger.reshape(gradOutput, gradOutput.shape);
    const dx = this.ledger.empty(gradOutput.shape, "activation gradients", this.name);
    this.ledger.dispatch(this.name, "input gradient", size(gradOutput.shape));
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
      if (p.grad) this.ledger.dispatch(p.owner, "optimizer", size(p.shape) * perElement);
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
  const stats = ledger.allocate(16, "labels and statistics");
  const labels = ledger.allocate(n * 4, "labels and statistics");
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
    ledger.dispatch("loss", "loss", LOSS_FLOPS_PER_LOGIT * size(logits.shape));
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

// ---------------------------------------------------------------------------------------------------------
// The report.

/** What {@link analyzeResources} works out, for a model configuration and a batch. */
export interface ResourceOptions extends NinOptions, OptimizerSpec {
  /** Images per batch (B). */
  batchSize: number;
  /** Input height and width. */
  resize: number;
  /** The device's `maxStorageBufferBindingSize`, which decides the micro-batching (default 128 MiB). */
  maxBindingBytes?: number;
  /** Largest micro-batch to train with (`StepOptions.microBatch`); default: what fits the binding. */
  microBatch?: number;
}

/** One row of the per-layer table. */
export interface LayerResources {
  /** Dotted PyTorch index, e.g. `0.2`. */
  index: string;
  /** PyTorch class name. */
  type: string;
  /** Output shape at batch B. */
  outputShape: number[];
  /** Parameters owned by the layer. */
  params: number;
  /** Multiply-accumulates of the forward pass per image (convolutions only). */
  macs: number;
  /** FLOPs of the inference forward pass per image, as the layer's kernels declare them. */
  flops: number;
  /** FLOPs of a training step per image: training-mode forward + input gradient + weight gradients. */
  trainFlops: number;
  /** Bytes the layer leaves alive for backward in one training micro-batch (output and saved indices). */
  savedBytes: number;
  /** For a ReLU run inside the preceding convolution's kernels: that convolution's index. */
  fusedInto?: string;
}

/** A predicted peak of live GPU memory. */
export interface MemoryPrediction {
  /** Peak live bytes (as `gpu.memory.peakBytes` counts them: every buffer rounded up to 16 bytes). */
  bytes: number;
  /** What the live bytes at the peak consist of. */
  breakdown: Partial<Record<MemoryCategory, number>>;
  /** Where the peak is reached, e.g. `backward of 0.2 (micro-batch 1 of 2)`. */
  peakAt: string;
  /**
   * The largest temporary workspace live at once: buffers a pass allocates for its own use and frees again
   * (today only 16-byte placeholders bound where a kernel needs a binding it does not use; the convolutions
   * are implicit GEMMs without an im2col buffer).
   */
  workspaceBytes: number;
  /** Micro-batch size used. */
  microBatch: number;
  /** Number of micro-batches. */
  microBatches: number;
  /** FLOPs the pass's dispatches declare in total. */
  flops: number;
}

/** FLOPs of one training step, by kind. */
export interface TrainStepFlops {
  /** Training-mode forward pass (includes the dropout mask multiply). */
  forward: number;
  /** Gradients with respect to the layers' inputs (none for the first convolution). */
  inputGradients: number;
  /** Gradients with respect to weights and biases. */
  weightGradients: number;
  /** Softmax cross-entropy and its gradient. */
  loss: number;
  /** SGD update of every parameter. */
  optimizer: number;
  /** All of the above: what a real step's dispatches add up to. */
  total: number;
}

/** Everything {@link analyzeResources} reports. */
export interface Resources {
  /** The options, with defaults filled in. */
  options: Required<Omit<ResourceOptions, "microBatch">> & { microBatch: number | null };
  /** The input shape `[B, C, resize, resize]`. */
  inputShape: number[];
  /** Per-layer table (every leaf, PyTorch order). */
  layers: LayerResources[];
  /** Parameter count and float32 bytes. */
  params: { count: number; bytes: number };
  /** Inference forward pass: MACs and FLOPs per image and per batch. */
  forward: { macsPerImage: number; flopsPerImage: number; macs: number; flops: number };
  /** FLOPs of one training step on the whole batch. */
  trainStep: TrainStepFlops;
  /** Peak GPU memory of a prediction pass (`predictClasses`) and of a training step (`trainStep`). */
  memory: { inference: MemoryPrediction; training: MemoryPrediction };
}

function fits(spec: LayerSpec, inputShape: number[]): boolean {
  try {
    specOutputShape(spec, inputShape);
    return true;
  } catch {
    return false;
  }
}

function sum(
  dispatches: Dispatch[],
  pick: (d: Dispatch) => number,
  filter: (d: Dispatch) => boolean,
): number {
  return dispatches.filter(filter).reduce((total, d) => total + pick(d), 0);
}

/** Replays model creation, a prediction pass and a training step on a fresh ledger. */
function replay(spec: LayerSpec, inputShape: number[], options: ResourceOptions, maxBindingBytes: number) {
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

/**
 * Parameters, MACs, FLOPs and peak memory of NiN for a batch, worked out from the configuration alone
 * (no GPU needed). FLOP counts are those the kernels declare to `gpu.dispatch`; memory counts what
 * `gpu.memory` would report at the peak of `predictClasses` and of `trainStep` with a fresh model, the
 * input batch already on the GPU and, for training, an `SGD` optimizer in its steady state.
 *
 * @example
 * ```ts
 * import { analyzeResources } from "./resources.ts";
 * const r = analyzeResources({ batchSize: 128, resize: 224 });
 * console.log(r.params.count, r.forward.macsPerImage, r.memory.training.bytes);
 * ```
 */
export function analyzeResources(options: ResourceOptions): Resources {
  const { batchSize, resize } = options;
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new NinError(`batch size must be a positive integer, got ${batchSize}`);
  }
  if (!Number.isInteger(resize) || resize < 1) {
    throw new NinError(`resize must be a positive integer, got ${resize}`);
  }
  if (
    options.microBatch !== undefined && !(Number.isInteger(options.microBatch) && options.microBatch >= 1)
  ) {
    throw new NinError(`micro-batch must be a positive integer, got ${options.microBatch}`);
  }
  // Only the model's own options, without undefined ones (ninConfig would take an explicit undefined as a value).
  const { numClasses, inChannels, dropout, oneByOneConvs, seed } = options;
  const config = ninConfig(
    Object.fromEntries(
      Object.entries({ numClasses, inChannels, dropout, oneByOneConvs, seed }).filter(([, v]) =>
        v !== undefined
      ),
    ),
  );
  const maxBindingBytes = options.maxBindingBytes ?? DEFAULT_MAX_BINDING_BYTES;
  const spec = ninSpec(config);
  const inputShape = [batchSize, config.inChannels, resize, resize];
  const perImage = [1, config.inChannels, resize, resize];
  try {
    specOutputShape(spec, inputShape);
  } catch (e) {
    if (!(e instanceof NinError)) throw e;
    let smallest = resize + 1;
    while (smallest <= 4096 && !fits(spec, [1, config.inChannels, smallest, smallest])) smallest++;
    if (smallest > 4096) throw e;
    throw new NinError(
      `input ${formatShape(inputShape)} is too small: ${e.message}; the smallest input that works is ` +
        `${smallest}x${smallest}`,
    );
  }

  const full = replay(spec, inputShape, options, maxBindingBytes);
  const one = replay(spec, perImage, options, maxBindingBytes);

  const leaves = specLeaves(spec);
  let shape = inputShape;
  const layers: LayerResources[] = leaves.map((leaf, i) => {
    shape = specOutputShape(leaf.spec, shape, leaf.name);
    const previous = leaves[i - 1];
    const fused = leaf.spec.type === "ReLU" && previous?.spec.type === "Conv2d" &&
      previous.name.split(".").slice(0, -1).join(".") === leaf.name.split(".").slice(0, -1).join(".");
    const mine = (d: Dispatch) => d.layer === leaf.name;
    const trainDispatches = one.training.dispatches;
    return {
      index: leaf.name,
      type: leaf.spec.type,
      outputShape: shape,
      params: specParams(leaf.spec),
      macs: sum(one.inference.dispatches, (d) => d.macs, mine),
      flops: sum(one.inference.dispatches, (d) => d.flops, mine),
      trainFlops: sum(trainDispatches, (d) => d.flops, (d) => mine(d) && d.phase !== "optimizer"),
      savedBytes: full.saved.get(leaf.name) ?? 0,
      ...(fused ? { fusedInto: previous.name } : {}),
    };
  });

  const params = specParams(spec);
  const forwardDispatches = full.inference.dispatches;
  const trainDispatches = full.training.dispatches;
  const phase = (p: FlopPhase) => sum(trainDispatches, (d) => d.flops, (d) => d.phase === p);
  const trainStep: TrainStepFlops = {
    forward: phase("forward"),
    inputGradients: phase("input gradient"),
    weightGradients: phase("weight gradient"),
    loss: phase("loss"),
    optimizer: phase("optimizer"),
    total: sum(trainDispatches, (d) => d.flops, () => true),
  };
  const prediction = (ledger: Ledger, micro: number): MemoryPrediction => ({
    bytes: ledger.peak,
    breakdown: ledger.peakParts,
    peakAt: ledger.peakAt,
    workspaceBytes: ledger.workspacePeak,
    microBatch: micro,
    microBatches: Math.ceil(batchSize / micro),
    flops: sum(ledger.dispatches, (d) => d.flops, () => true),
  });
  return {
    options: {
      ...config,
      batchSize,
      resize,
      momentum: options.momentum ?? 0,
      weightDecay: options.weightDecay ?? 0,
      nesterov: options.nesterov ?? false,
      maxBindingBytes,
      microBatch: options.microBatch ?? null,
    },
    inputShape,
    layers,
    params: { count: params, bytes: params * 4 },
    forward: {
      macsPerImage: sum(one.inference.dispatches, (d) => d.macs, () => true),
      flopsPerImage: sum(one.inference.dispatches, (d) => d.flops, () => true),
      macs: sum(forwardDispatches, (d) => d.macs, () => true),
      flops: sum(forwardDispatches, (d) => d.flops, () => true),
    },
    trainStep,
    memory: {
      inference: prediction(full.inference, full.inferenceMicro),
      training: prediction(full.training, full.trainMicro),
    },
  };
}
