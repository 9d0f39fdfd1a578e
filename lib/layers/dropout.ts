/**
 * Dropout: in training, zero each element with probability `p` and scale the rest by `1 / (1 - p)`; in
 * evaluation, the identity.
 *
 * @module
 */
import { f32Bits, type Gpu, type Kernel } from "../gpu.ts";
import { Module, workgroupsFor } from "../module.ts";
import { Tensor } from "../tensor.ts";
import { formatShape, NinError } from "../errors.ts";
import forwardCode from "../../kernels/dropout_forward.wgsl" with { type: "text" };
import backwardCode from "../../kernels/dropout_backward.wgsl" with { type: "text" };
import maskCode from "../../kernels/dropout_mask.wgsl" with { type: "text" };

const DROPOUT_FORWARD: Kernel = { name: "dropout_forward", code: maskCode + forwardCode };
const DROPOUT_BACKWARD: Kernel = { name: "dropout_backward", code: maskCode + backwardCode };

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
 * `sampleOffset * (elements per sample) + local index`. A trainer that splits a batch into micro-batches sets
 * `sampleOffset` to each micro-batch's first sample and `step` to the batch's step, and every micro-batch
 * then gets exactly the slice of the mask the whole batch would get.
 *
 * - Eval mode (and `p = 0`): the identity, returned as a reshape view of the input (a new `Tensor` object
 *   sharing the input's buffer; dispose it as usual), with no GPU work.
 * - Training mode: after each forward, `step` increases by 1 (a trainer may overwrite it before the next).
 * - Backward recomputes the mask from the saved `(step, sampleOffset, shape)`, so it saves 0 bytes on the
 *   GPU.
 *
 * FLOPs passed to `gpu.dispatch`: one multiplication per element, forward and backward (the hash is not
 * counted).
 *
 * @example
 * ```ts
 * import { Dropout, requestGpu, Tensor } from "../../mod.ts";
 * const gpu = await requestGpu();
 * const dropout = new Dropout(gpu, 0.5, { seed: 1 });
 * const y = dropout.forward(Tensor.fromArray(gpu, [1, 2, 3, 4], [1, 4]));
 * console.log(await y.toArray()); // each element dropped or doubled: Float32Array [2, 4, 6, 0]
 * gpu.destroy();
 * ```
 */
export class Dropout extends Module {
  /** Probability of zeroing an element, in [0, 1). */
  readonly p: number;
  /** Seed of the mask hash (a u32). */
  readonly seed: number;
  /** Step counter hashed into the mask; increases by 1 after each training-mode forward. */
  step = 0;
  /** Index within the full batch of this forward's first sample (for micro-batches; 0 otherwise). */
  sampleOffset = 0;
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
  forward(x: Tensor): Tensor {
    this.outputShape(x.shape);
    this.#saved = null;
    if (!this.training) return x.reshape(x.shape);
    const saved: Saved = { shape: x.shape, step: this.step, sampleOffset: this.sampleOffset };
    this.#checkCounters(saved);
    this.#saved = saved;
    this.step += 1;
    if (this.p === 0) return x.reshape(x.shape);
    const y = Tensor.empty(this.gpu, x.shape, "dropout output");
    this.gpu.dispatch(
      DROPOUT_FORWARD,
      [x.buffer, y.buffer],
      this.#params(saved),
      workgroupsFor(x.size, 64),
      x.size,
    );
    return y;
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
    if (this.p === 0) return gradOutput.reshape(gradOutput.shape);
    const dx = Tensor.empty(this.gpu, saved.shape, "dropout input gradient");
    this.gpu.dispatch(
      DROPOUT_BACKWARD,
      [gradOutput.buffer, dx.buffer],
      this.#params(saved),
      workgroupsFor(dx.size, 64),
      dx.size,
    );
    return dx;
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

  #params(saved: Saved): number[] {
    const count = saved.shape.reduce((a, b) => a * b, 1);
    const perSample = count / saved.shape[0];
    const threshold = Math.min(Math.round(this.p * 2 ** 32), 0xffffffff);
    return [
      count,
      saved.sampleOffset,
      perSample,
      this.seed,
      saved.step,
      threshold,
      f32Bits(1 / (1 - this.p)),
    ];
  }
}
