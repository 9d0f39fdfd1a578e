/**
 * Float32 tensors on the GPU in contiguous NCHW layout.
 *
 * @module
 */
import type { Gpu } from "./gpu.ts";
import { formatShape, NinError } from "./errors.ts";

/** Reference-counted GPU storage so that reshaped views share one buffer. */
class Storage {
  refs = 1;
  constructor(readonly gpu: Gpu, readonly buffer: GPUBuffer) {}
}

/**
 * An N-d float32 tensor whose data lives in a GPU storage buffer.
 *
 * @example
 * ```ts
 * import { requestGpu, Tensor } from "@nin/webgpu";
 * const gpu = await requestGpu();
 * const t = Tensor.fromArray(gpu, [1, 2, 3, 4, 5, 6], [2, 3]);
 * console.log(t.shape, t.strides, await t.toArray()); // [2, 3] [3, 1] Float32Array(6)
 * t.dispose();
 * gpu.destroy();
 * ```
 */
export class Tensor {
  /** The device the data lives on. */
  readonly gpu: Gpu;
  /** Dimensions, outermost first (NCHW for images). */
  readonly shape: readonly number[];
  /** Number of elements. */
  readonly size: number;
  #storage: Storage | null;

  /** Wraps existing storage; use the static constructors instead. */
  private constructor(gpu: Gpu, shape: readonly number[], storage: Storage) {
    this.gpu = gpu;
    this.shape = Object.freeze([...shape]);
    this.size = shapeSize(shape);
    this.#storage = storage;
  }

  /** A tensor with undefined contents (for kernels that overwrite every element). */
  static empty(gpu: Gpu, shape: readonly number[], what = "tensor"): Tensor {
    const size = checkShape(shape);
    const buffer = gpu.allocate(size * 4, `${what} ${formatShape(shape)}`);
    return new Tensor(gpu, shape, new Storage(gpu, buffer));
  }

  /** A tensor of zeros. */
  static zeros(gpu: Gpu, shape: readonly number[], what = "tensor"): Tensor {
    const t = Tensor.empty(gpu, shape, what);
    gpu.clear(t.buffer);
    return t;
  }

  /** Uploads host data (any numbers, converted to float32) as a tensor of the given shape. */
  static fromArray(gpu: Gpu, data: ArrayLike<number>, shape: readonly number[]): Tensor {
    const size = checkShape(shape);
    if (data.length !== size) {
      throw new NinError(
        `Tensor.fromArray: ${data.length} values do not fill shape ${formatShape(shape)} (${size})`,
      );
    }
    const t = Tensor.empty(gpu, shape);
    const floats = data instanceof Float32Array ? data : Float32Array.from(data);
    gpu.write(t.buffer, floats as Float32Array<ArrayBuffer>);
    return t;
  }

  /** The GPU buffer holding the data (may be larger than `size * 4` bytes). */
  get buffer(): GPUBuffer {
    if (!this.#storage) throw new NinError(`tensor ${formatShape(this.shape)} was used after dispose()`);
    return this.#storage.buffer;
  }

  /** Element strides of the contiguous layout, e.g. `[C*H*W, H*W, W, 1]`. */
  get strides(): number[] {
    const strides = new Array(this.shape.length).fill(1);
    for (let i = this.shape.length - 2; i >= 0; i--) strides[i] = strides[i + 1] * this.shape[i + 1];
    return strides;
  }

  /** Bytes of data (`size * 4`). */
  get byteLength(): number {
    return this.size * 4;
  }

  /** Whether {@link Tensor.dispose} was called. */
  get disposed(): boolean {
    return this.#storage === null;
  }

  /** A view of the same data with another shape of equal size; dispose it separately. */
  reshape(shape: readonly number[]): Tensor {
    const storage = this.#storage;
    if (!storage) throw new NinError(`tensor ${formatShape(this.shape)} was used after dispose()`);
    if (checkShape(shape) !== this.size) {
      throw new NinError(`cannot reshape ${formatShape(this.shape)} to ${formatShape(shape)}`);
    }
    storage.refs += 1;
    return new Tensor(this.gpu, shape, storage);
  }

  /** Copies the data back to the host once all recorded GPU work is done. */
  async toArray(): Promise<Float32Array> {
    return new Float32Array(await this.gpu.read(this.buffer, this.byteLength));
  }

  /** Releases the GPU buffer (to the pool) once no view uses it. Safe to call twice. */
  dispose(): void {
    const storage = this.#storage;
    if (!storage) return;
    this.#storage = null;
    storage.refs -= 1;
    if (storage.refs === 0) storage.gpu.release(storage.buffer);
  }
}

/** Number of elements of a shape. */
export function shapeSize(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function checkShape(shape: readonly number[]): number {
  if (!shape.every((d) => Number.isInteger(d) && d > 0)) {
    throw new NinError(
      `invalid tensor shape ${formatShape(shape)}: every dimension must be a positive integer`,
    );
  }
  return shapeSize(shape);
}
