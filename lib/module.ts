/**
 * The layer protocol shared by every module: forward, backward, parameters, train/eval mode and
 * PyTorch-style state dicts.
 *
 * @module
 */
import { formatShape, NinError } from "./errors.ts";
import type { Kernel } from "./gpu/kernel.ts";
import { Tensor } from "./tensor.ts";

/**
 * A trainable tensor and its gradient. `grad` is allocated on the first backward pass and accumulates
 * until the optimizer's `zeroGrad()`, so micro-batches can add into it.
 *
 * @example
 * ```ts
 * import { Parameter, requestGpu, Tensor } from "@nin/webgpu";
 * const gpu = await requestGpu();
 * const p = new Parameter(Tensor.zeros(gpu, [4]));
 * console.log(p.value.shape, p.grad); // [4] null
 * p.dispose();
 * gpu.destroy();
 * ```
 */
export class Parameter {
  /** The parameter's current value. */
  value: Tensor;
  /** Accumulated gradient, or null before the first backward pass. */
  grad: Tensor | null = null;

  /** Wraps a tensor as a parameter. */
  constructor(value: Tensor) {
    this.value = value;
  }

  /** The gradient tensor, created as zeros when missing (for kernels that accumulate into it). */
  gradOrZeros(): Tensor {
    this.grad ??= Tensor.zeros(this.value.gpu, this.value.shape, "parameter gradients");
    return this.grad;
  }

  /** Frees value and gradient. */
  dispose(): void {
    this.value.dispose();
    this.grad?.dispose();
    this.grad = null;
  }
}

/**
 * What a forward call needs to know beyond its input, passed explicitly from the caller (`trainStep` makes
 * one per micro-batch) down through containers to every layer.
 */
export interface ForwardContext {
  /** Training mode: dropout active, state saved for backward. */
  readonly training: boolean;
  /** Optimizer step of this forward (dropout masks hash it, so each step draws new masks). */
  readonly step: number;
  /** Index within the whole batch of this (micro-)batch's first sample (dropout masks hash it too). */
  readonly sampleOffset: number;
}

/**
 * Base class of all layers. A layer computes `forward(x)`; in training mode it remembers what its
 * `backward(gradOutput)` needs, which returns the gradient with respect to the input and adds parameter
 * gradients into {@link Parameter.grad}.
 *
 * Ownership: `forward` never disposes its input and returns a new tensor the caller owns; `backward`
 * never disposes `gradOutput`. Saved state (masks, indices) belongs to the layer and is freed by `backward`
 * or {@link Module.clearSaved}.
 *
 * @example
 * ```ts
 * import { ReLU, requestGpu, Tensor } from "@nin/webgpu";
 * const gpu = await requestGpu();
 * const relu = new ReLU(gpu);
 * const y = relu.forward(Tensor.fromArray(gpu, [-1, 2], [2]));
 * console.log(await y.toArray()); // Float32Array [0, 2]
 * gpu.destroy();
 * ```
 */
export abstract class Module {
  /** The mode of a `forward` called without a context (set by {@link Module.train} and {@link Module.eval}). */
  training = true;

  /** The context of a `forward` called without one: this module's mode, step 0, sample offset 0. */
  context(): ForwardContext {
    return { training: this.training, step: 0, sampleOffset: 0 };
  }

  /**
   * Runs the layer on `x`. `ctx` says whether this is a training-mode call (save state for backward, apply
   * dropout) and where it sits in training (step, first sample); containers pass it to their children.
   */
  abstract forward(x: Tensor, ctx?: ForwardContext): Tensor;

  /**
   * Backpropagates `gradOutput` through the last training-mode forward call. Returns the gradient with
   * respect to that call's input, or null when `needInputGrad` is false (e.g. the first layer).
   */
  abstract backward(gradOutput: Tensor, needInputGrad?: boolean): Tensor | null;

  /** The output shape for an input shape, without GPU work; throws a {@link NinError} if it would be empty. */
  abstract outputShape(inputShape: readonly number[]): number[];

  /** Direct children with their PyTorch names (empty for leaf layers). */
  children(): [string, Module][] {
    return [];
  }

  /** This module's own parameters with their PyTorch names (`weight`, `bias`). */
  ownParameters(): [string, Parameter][] {
    return [];
  }

  /** Every parameter below this module, with dotted PyTorch names such as `0.0.weight`. */
  namedParameters(prefix = ""): [string, Parameter][] {
    const out: [string, Parameter][] = this.ownParameters().map(([n, p]) => [prefix + n, p]);
    for (const [name, child] of this.children()) out.push(...child.namedParameters(`${prefix}${name}.`));
    return out;
  }

  /** Every parameter below this module, in PyTorch order (what an optimizer takes). */
  parameters(): Parameter[] {
    return this.namedParameters().map(([, p]) => p);
  }

  /** This module and all below it, depth first, with their dotted names (`""` for this one). */
  modules(prefix = ""): [string, Module][] {
    const out: [string, Module][] = [[prefix.replace(/\.$/, ""), this]];
    for (const [name, child] of this.children()) out.push(...child.modules(`${prefix}${name}.`));
    return out;
  }

  /** Sets training mode (default) or evaluation mode, recursively. Returns this. */
  train(mode = true): this {
    for (const [, m] of this.modules()) m.training = mode;
    return this;
  }

  /** Sets evaluation mode, recursively. Returns this. */
  eval(): this {
    return this.train(false);
  }

  /** Name -> the live parameter tensor, with PyTorch's names and OIHW layout. */
  stateDict(): Map<string, Tensor> {
    return new Map(this.namedParameters().map(([n, p]) => [n, p.value]));
  }

  /**
   * Copies parameters from a state dict (e.g. what `loadSafetensors` returns). Checks every name and shape
   * first and loads nothing if anything is missing, extra or misshaped.
   */
  loadStateDict(
    dict: ReadonlyMap<string, Tensor | { shape: readonly number[]; data: ArrayLike<number> }>,
  ): void {
    const params = new Map(this.namedParameters());
    const problems: string[] = [];
    for (const [name, p] of params) {
      const entry = dict.get(name);
      if (!entry) problems.push(`missing ${name}`);
      else if (formatShape(entry.shape) !== formatShape(p.value.shape)) {
        problems.push(
          `${name} has shape ${formatShape(entry.shape)}, expected ${formatShape(p.value.shape)}`,
        );
      } else if (!(entry instanceof Tensor) && !(entry.data instanceof Float32Array)) {
        problems.push(`${name} is not floating-point data`);
      }
    }
    for (const name of dict.keys()) if (!params.has(name)) problems.push(`unexpected ${name}`);
    if (problems.length > 0) throw new NinError(`state dict does not fit the model: ${problems.join("; ")}`);
    for (const [name, p] of params) {
      const entry = dict.get(name)!;
      if (entry instanceof Tensor) p.value.gpu.copy(entry.buffer, p.value.buffer, p.value.byteLength);
      else p.value.gpu.write(p.value.buffer, entry.data as Float32Array<ArrayBuffer>);
    }
  }

  /** Frees state saved by a training-mode forward that will not be backpropagated. */
  clearSaved(): void {
    for (const [, child] of this.children()) child.clearSaved();
  }

  /** Frees all parameters and saved state. */
  dispose(): void {
    this.clearSaved();
    for (const p of this.parameters()) p.dispose();
  }
}

/** Throws a {@link NinError} naming the layer when `x` is not of rank `rank`. */
export function expectRank(
  layer: string,
  x: { shape: readonly number[] },
  rank: number,
  layout: string,
): void {
  if (x.shape.length !== rank) {
    throw new NinError(`${layer} expects a ${rank}-d input ${layout}, got shape ${formatShape(x.shape)}`);
  }
}

/** Workgroups needed to cover `count` items, `perWorkgroup` each (default: one per invocation of `k`). */
export function workgroupsFor(count: number, perWorkgroup: number | Kernel): number {
  return Math.ceil(count / (typeof perWorkgroup === "number" ? perWorkgroup : perWorkgroup.workgroupSize));
}
