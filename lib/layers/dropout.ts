/**
 * Dropout: in training, zero each element with probability `p` and scale the rest by `1 / (1 - p)`; in
 * evaluation, the identity.
 *
 * @module
 */
import type { Gpu } from "../gpu/device.ts";
import { kernel } from "../gpu/kernel.ts";
import { type ForwardContext, Module, workgroupsFor } from "../module.ts";
import { Tensor } from "../tensor.ts";
import { formatShape, NinError } from "../errors.ts";
import dropoutCode from "../../kernels/dropout.wgsl" with { type: "text" };

/** One kernel both ways: the backward applies the forward's mask (recomputed from its hash) to dy. */
const DROPOUT = kernel("dropout", dropoutCode);

/** Options for {@link Dropout}. */
export interface DropoutOptions {
  /** Seed of the mask hash (default 0). */
  seed?: number;
}

/** The mask coordinates of a training-mode forward, enough for backward to recompute the mask. */
interface Saved {
  shape: readonly number[];
  step: number;
  sampleOffset: number;
}

/**
 * Inverted dropout, as `torch.nn.Dropout(p)`, with a mask that is a pure function of
 * `(seed, step, global element index)`: a counter-based hash evaluated on the GPU, where the global index is
 * `sampleOffset * (elements per sample) + local index`, with `step` and `sampleOffset` from the forward's
 * {@link ForwardContext}. A trainer that splits a batch into micro-batches passes each micro-batch's first
 * sample and the batch's step, and every micro-batch then gets exactly the slice of the mask the whole batch
 * would get. (A forward without a context uses step 0: pass `step` to draw new masks.)
 *
 * - Eval mode (and `p = 0`): the identity, returned as a reshape view of the input (a new `Tensor` object
 *   sharing the input's buffer; dispose it as usual), with no GPU work.
 * - Backward recomputes the mask from the saved `(step, sampleOffset, shape)`, so it saves 0 bytes on the
 *   GPU.
 *
 * FLOPs passed to `gpu.dispatch`: one multiplication per element, forward and backward (the hash is not
 * counted).
 *
 * @example
 * ```ts
 * import { Dropout, requestGpu, Tensor } from "@nin/webgpu";
 * const gpu = await requestGpu();
 * const dropout = new Dropout(gpu, 0.5, { seed: 1 });
 * const y = dropout.forward(Tensor.fromArray(gpu, [1, 2, 3, 4], [1, 4]), { training: true, step: 7, sampleOffset: 0 });
 * console.log(await y.toArray()); // each element dropped or doubled: Float32Array [2, 4, 6, 0]
 * gpu.destroy();
 * ```
 */
export class Dropout extends Module {
  /** Probability of zeroing an element, in [0, 1). */
  readonly p: number;
  /** Seed of the mask hash (a u32). */
  readonly seed: number;
  #saved: Saved | null = null;

  /** A dropout layer dropping with probability `p`. */
  constructor(readonly gpu: Gpu, p = 0.5, options: DropoutOptions = {}) {
    super();
    if (!(p >= 0 && p < 1)) throw new NinError(`Dropout: p must be in [0, 1), got ${p}`);
    const seed = options.seed ?? 0;
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
      throw new NinError(`Dropout: seed must be an integer in [0, 2^32), got ${seed}`);
    }
    this.p = p;
    this.seed = seed;
  }

  /** PyTorch-like description, e.g. `Dropout(p=0.5)`. */
  override toString(): string {
    return `Dropout(p=${this.p})`;
  }

  /** Same as the input (at least 1-d; the first dimension is the batch). */
  outputShape(inputShape: readonly number[]): number[] {
    if (inputShape.length < 1) throw new NinError(`${this} expects at least a 1-d input [N, ...], got []`);
    return [...inputShape];
  }

  /** Masks and scales `x` in training mode; a view of `x` in eval mode. */
  forward(x: Tensor, ctx: ForwardContext = this.context()): Tensor {
    this.outputShape(x.shape);
    this.#saved = null;
    if (!ctx.training) return x.reshape(x.shape);
    const saved: Saved = { shape: x.shape, step: ctx.step, sampleOffset: ctx.sampleOffset };
    this.#checkCounters(saved);
    this.#saved = saved;
    return this.#apply(x, saved, "activations");
  }

  /** `gradOutput` times the forward's mask and scale, from the recomputed mask. */
  backward(gradOutput: Tensor, needInputGrad = true): Tensor | null {
    const saved = this.#saved;
    if (!saved) throw new NinError(`${this}.backward called without a training-mode forward`);
    this.#saved = null;
    if (formatShape(gradOutput.shape) !== formatShape(saved.shape)) {
      throw new NinError(
        `${this}.backward: gradient shape ${formatShape(gradOutput.shape)} != input shape ${
          formatShape(saved.shape)
        }`,
      );
    }
    if (!needInputGrad) return null;
    return this.#apply(gradOutput, saved, "activation gradients");
  }

  /** `input * mask / (1 - p)` with the mask of `saved` (a view of `input` when p = 0). */
  #apply(input: Tensor, saved: Saved, what: string): Tensor {
    if (this.p === 0) return input.reshape(input.shape);
    const output = Tensor.empty(this.gpu, input.shape, what);
    this.gpu.dispatch(
      DROPOUT,
      { input: input.buffer, output: output.buffer },
      this.#params(saved),
      workgroupsFor(input.size, DROPOUT),
      input.size,
    );
    return output;
  }

  /** Forgets the last forward's mask coordinates. */
  override clearSaved(): void {
    this.#saved = null;
  }

  #checkCounters(saved: Saved): void {
    const perSample = saved.shape.slice(1).reduce((a, b) => a * b, 1);
    if (!Number.isInteger(saved.step) || saved.step < 0 || saved.step > 0xffffffff) {
      throw new NinError(`${this}: step must be an integer in [0, 2^32), got ${saved.step}`);
    }
    if (!Number.isInteger(saved.sampleOffset) || saved.sampleOffset < 0) {
      throw new NinError(`${this}: sampleOffset must be a non-negative integer, got ${saved.sampleOffset}`);
    }
    if ((saved.sampleOffset + saved.shape[0]) * perSample > 2 ** 32) {
      throw new NinError(`${this}: sampleOffset ${saved.sampleOffset} puts element indices beyond 2^32`);
    }
  }

  #params(saved: Saved): Record<string, number> {
    const count = saved.shape.reduce((a, b) => a * b, 1);
    return {
      count,
      sample_offset: saved.sampleOffset,
      per_sample: count / saved.shape[0],
      seed: this.seed,
      step: saved.step,
      threshold: Math.min(Math.round(this.p * 2 ** 32), 0xffffffff),
      scale: 1 / (1 - this.p),
    };
  }
}
