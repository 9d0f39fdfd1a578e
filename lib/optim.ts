/**
 * Stochastic gradient descent with PyTorch's momentum, dampening, Nesterov and weight decay, updating
 * parameters in place on the GPU.
 *
 * @module
 */
import type { Gpu } from "./gpu/device.ts";
import { kernel } from "./gpu/kernel.ts";
import { type Parameter, workgroupsFor } from "./module.ts";
import { Tensor } from "./tensor.ts";
import { formatShape, NinError } from "./errors.ts";
import sgdCode from "../kernels/sgd_step.wgsl" with { type: "text" };

const SGD_STEP = kernel("sgd_step", sgdCode);

/** Hyperparameters of {@link SGD}, with PyTorch's names and defaults. */
export interface SGDOptions {
  /** Learning rate (> 0). */
  lr: number;
  /** Momentum factor in [0, 1) (default 0: no momentum buffers). */
  momentum?: number;
  /** L2 penalty added to the gradient as `weightDecay * w` (default 0). */
  weightDecay?: number;
  /** Dampening of the momentum in [0, 1] (default 0). */
  dampening?: number;
  /** Nesterov momentum (default false; needs momentum > 0 and dampening 0, as in PyTorch). */
  nesterov?: boolean;
  /**
   * The learning rate of each step, from the step count before it (0 for the first step), e.g. a
   * `learningRate` schedule; when set, {@link SGD.step} sets {@link SGD.lr} from it before updating.
   */
  schedule?: (step: number) => number;
}

/**
 * `torch.optim.SGD` on the GPU. Per parameter with a gradient, one kernel computes
 * `g = grad + weightDecay * w`; with momentum `buf = g` on the parameter's first step and
 * `buf = momentum * buf + (1 - dampening) * g` afterwards, then `g = nesterov ? g + momentum * buf : buf`;
 * finally `w -= lr * g`. Parameters whose `grad` is null are skipped, as in PyTorch.
 *
 * {@link SGD.zeroGrad} frees the gradients (PyTorch's default `set_to_none=True`); the next backward
 * allocates them again as zeros through `Parameter.gradOrZeros`.
 *
 * FLOPs passed to `gpu.dispatch`, per element: 2 for the update, +2 with weight decay, +3 for the momentum
 * buffer (0 on the first step, which copies), +2 for Nesterov.
 *
 * @example
 * ```ts
 * import { Parameter, requestGpu, SGD, Tensor } from "@nin/webgpu";
 * const gpu = await requestGpu();
 * const p = new Parameter(Tensor.fromArray(gpu, [1, 2], [2]));
 * p.grad = Tensor.fromArray(gpu, [0.5, -0.5], [2]);
 * const opt = new SGD([p], { lr: 0.1, momentum: 0.9 });
 * opt.step();
 * console.log(await p.value.toArray()); // Float32Array [0.95, 2.05]
 * opt.dispose();
 * p.dispose();
 * gpu.destroy();
 * ```
 */
export class SGD {
  /** The parameters updated, in order. */
  readonly params: Parameter[];
  /** Momentum factor. */
  readonly momentum: number;
  /** Weight decay (L2 penalty). */
  readonly weightDecay: number;
  /** Momentum dampening. */
  readonly dampening: number;
  /** Whether Nesterov momentum is used. */
  readonly nesterov: boolean;
  /** Number of {@link SGD.step} calls so far (restored by {@link SGD.loadState}). */
  stepCount = 0;
  readonly #gpu: Gpu;
  /** The schedule the learning rate follows (see {@link SGDOptions.schedule}); may be replaced between steps. */
  schedule: ((step: number) => number) | undefined;
  #lr: number;
  /** Momentum buffers in parameter order (empty when momentum is 0). */
  #buffers: Tensor[];
  /** Whether each momentum buffer holds a value yet (PyTorch creates it on the parameter's first step). */
  #started: boolean[];
  #disposed = false;

  /** An optimizer over `params`; throws a {@link NinError} for out-of-range hyperparameters. */
  constructor(params: Parameter[], options: SGDOptions) {
    if (params.length === 0) throw new NinError("SGD got an empty parameter list");
    this.params = [...params];
    this.#gpu = params[0].value.gpu;
    this.#lr = checkLr(options.lr);
    this.schedule = options.schedule;
    this.momentum = options.momentum ?? 0;
    this.weightDecay = options.weightDecay ?? 0;
    this.dampening = options.dampening ?? 0;
    this.nesterov = options.nesterov ?? false;
    if (!(this.momentum >= 0 && this.momentum < 1)) {
      throw new NinError(`SGD: momentum must be in [0, 1), got ${this.momentum}`);
    }
    if (!(this.weightDecay >= 0 && Number.isFinite(this.weightDecay))) {
      throw new NinError(`SGD: weight decay must be a finite number >= 0, got ${this.weightDecay}`);
    }
    if (!(this.dampening >= 0 && this.dampening <= 1)) {
      throw new NinError(`SGD: dampening must be in [0, 1], got ${this.dampening}`);
    }
    if (this.nesterov && (this.momentum === 0 || this.dampening !== 0)) {
      throw new NinError("SGD: Nesterov momentum requires a momentum > 0 and zero dampening");
    }
    this.#buffers = this.momentum === 0
      ? []
      : this.params.map((p) => Tensor.zeros(this.#gpu, p.value.shape, "momentum buffers"));
    this.#started = this.params.map(() => false);
  }

  /** Learning rate; may be changed between steps (e.g. by a schedule), must stay positive and finite. */
  get lr(): number {
    return this.#lr;
  }

  set lr(value: number) {
    this.#lr = checkLr(value);
  }

  /** Records the update of every parameter that has a gradient (no readback). */
  step(): void {
    if (this.#disposed) throw new NinError("SGD.step called after dispose()");
    // The rate is a per-dispatch uniform, so a schedule costs nothing on the GPU.
    if (this.schedule) this.lr = this.schedule(this.stepCount);
    const gpu = this.#gpu;
    const useMomentum = this.momentum !== 0;
    // Without momentum the kernel's buffer binding is never touched; bind a 16-byte placeholder.
    const placeholder = useMomentum ? null : gpu.allocate(16, "workspace");
    try {
      this.params.forEach((param, i) => {
        if (!param.grad) return;
        const first = useMomentum && !this.#started[i];
        const count = param.value.size;
        gpu.dispatch(
          SGD_STEP,
          { w: param.value.buffer, grad: param.grad.buffer, buf: placeholder ?? this.#buffers[i].buffer },
          {
            count,
            lr: this.#lr,
            momentum: this.momentum,
            dampening: this.dampening,
            weight_decay: this.weightDecay,
            nesterov: this.nesterov ? 1 : 0,
            first_step: first ? 1 : 0,
          },
          workgroupsFor(count, SGD_STEP),
          count * this.#flopsPerElement(first),
        );
        if (useMomentum) this.#started[i] = true;
      });
    } finally {
      if (placeholder) gpu.release(placeholder);
    }
    this.stepCount += 1;
  }

  /** Frees every parameter's gradient (`set_to_none`), ready for the next accumulation. */
  zeroGrad(): void {
    for (const p of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** The live momentum buffers in parameter order (empty without momentum), e.g. for a checkpoint. */
  state(): Tensor[] {
    return [...this.#buffers];
  }

  /**
   * Restores momentum buffers (one per parameter, in order; none when momentum is 0) and the step count
   * of a checkpoint. With `steps > 0` every buffer counts as started, as after an uninterrupted run.
   */
  loadState(buffers: Float32Array[], steps: number): void {
    if (this.#disposed) throw new NinError("SGD.loadState called after dispose()");
    if (!Number.isInteger(steps) || steps < 0) {
      throw new NinError(`SGD.loadState: steps must be a non-negative integer, got ${steps}`);
    }
    if (buffers.length !== this.#buffers.length) {
      throw new NinError(
        `SGD.loadState: got ${buffers.length} momentum buffers, this optimizer has ${this.#buffers.length}`,
      );
    }
    buffers.forEach((data, i) => {
      if (data.length !== this.#buffers[i].size) {
        throw new NinError(
          `SGD.loadState: momentum buffer ${i} has ${data.length} values, parameter ${
            formatShape(this.#buffers[i].shape)
          } needs ${this.#buffers[i].size}`,
        );
      }
    });
    buffers.forEach((data, i) => this.#gpu.write(this.#buffers[i].buffer, data as Float32Array<ArrayBuffer>));
    this.#started = this.params.map(() => steps > 0 && this.#buffers.length > 0);
    this.stepCount = steps;
  }

  /** Frees the momentum buffers (parameters and gradients belong to the model). */
  dispose(): void {
    for (const b of this.#buffers) b.dispose();
    this.#buffers = [];
    this.#disposed = true;
  }

  #flopsPerElement(first: boolean): number {
    let flops = 2;
    if (this.weightDecay !== 0) flops += 2;
    if (this.momentum !== 0) flops += (first ? 0 : 3) + (this.nesterov ? 2 : 0);
    return flops;
  }
}

function checkLr(lr: number): number {
  if (!(Number.isFinite(lr) && lr > 0)) {
    throw new NinError(`SGD: lr must be a positive finite number, got ${lr}`);
  }
  return lr;
}
