/**
 * Mini-batches for one epoch, like PyTorch's `DataLoader(shuffle=True, drop_last=False)`: a fresh order
 * every epoch, the last smaller batch kept. The order of epoch `e` depends only on `(seed, e)`, so a run
 * resumed at epoch `e` sees exactly the batches an uninterrupted run would.
 *
 * @module
 */
import { NinError } from "../errors.ts";
import { Random } from "../random.ts";

/** Labelled images in host memory (a Fashion-MNIST `Split` is one). */
export interface Examples {
  /** `count * height * width` pixel values, image after image. */
  images: Uint8Array;
  /** `count` class labels. */
  labels: Uint8Array;
  /** Number of examples. */
  count: number;
  /** Image height. */
  height: number;
  /** Image width. */
  width: number;
}

/** One mini-batch. */
export interface Batch {
  /** `count * height * width` pixel values 0-255. */
  images: Uint8Array;
  /** `count` labels, as the loss expects them. */
  labels: Int32Array;
  /** Examples in this batch (`batchSize`, or fewer for the last one). */
  count: number;
  /** Position of this batch in the epoch, from 0. */
  index: number;
}

/** Options for {@link epochBatches}. */
export interface EpochOptions {
  /** Examples per batch (the last batch may be smaller). */
  batchSize: number;
  /** Shuffle the order (default true); false keeps the split's order (for evaluation). */
  shuffle?: boolean;
  /** Seed of the run; with `epoch` it fixes the order (default 0). */
  seed?: number;
  /** Epoch number from 0; every epoch has its own order (default 0). */
  epoch?: number;
  /** Use only the first `limit` examples of the split (taken before shuffling). */
  limit?: number;
  /** Skip the batches before this one (default 0). */
  startBatch?: number;
}

/**
 * The shuffled order of `count` examples in epoch `epoch` of a run seeded with `seed`: a permutation of
 * `0..count-1` that depends on nothing else.
 *
 * @example
 * ```ts
 * import { epochOrder } from "@nin/webgpu";
 * console.log(epochOrder(5, 42, 0), epochOrder(5, 42, 1)); // two different permutations of 0..4
 * ```
 */
export function epochOrder(count: number, seed: number, epoch: number): Int32Array {
  checkInteger("seed", seed, -(2 ** 53), 2 ** 53);
  checkInteger("epoch", epoch, 0, 2 ** 31);
  return new Random(epochSeed(seed, epoch)).permutation(count);
}

/**
 * How many batches an epoch of `count` examples has (the last partial batch counts).
 *
 * @example
 * ```ts
 * import { batchesPerEpoch } from "@nin/webgpu";
 * console.log(batchesPerEpoch(1000, 128)); // 8
 * ```
 */
export function batchesPerEpoch(count: number, batchSize: number): number {
  return Math.ceil(count / batchSize);
}

/**
 * How many batches {@link epochBatches} yields for `examples` with these options: an epoch of the first
 * `limit` examples, or all of them (a limit past their count, which `epochBatches` refuses, counts as none).
 */
export function epochBatchCount(examples: Examples, options: EpochOptions): number {
  return batchesPerEpoch(Math.min(options.limit ?? Infinity, examples.count), options.batchSize);
}

/**
 * Yields one epoch's mini-batches from `examples`.
 *
 * @example
 * ```ts
 * import { epochBatches } from "@nin/webgpu";
 * const examples = { images: new Uint8Array(5 * 4), labels: new Uint8Array([0, 1, 2, 3, 4]), count: 5, height: 2, width: 2 };
 * for (const batch of epochBatches(examples, { batchSize: 2, seed: 1, epoch: 0 })) {
 *   console.log(batch.index, batch.count, batch.labels); // batches of 2, 2, 1
 * }
 * ```
 */
export function* epochBatches(examples: Examples, options: EpochOptions): Generator<Batch> {
  const { batchSize, shuffle = true, seed = 0, epoch = 0, startBatch = 0 } = options;
  checkInteger("batch size", batchSize, 1, 2 ** 31);
  const limit = options.limit ?? examples.count;
  if (examples.count < 1) throw new NinError("cannot make batches from an empty split");
  checkInteger("limit", limit, 1, examples.count, ` (the split has ${examples.count} examples)`);
  const total = epochBatchCount(examples, options);
  checkInteger("start batch", startBatch, 0, total);
  const order = shuffle ? epochOrder(limit, seed, epoch) : null;
  const pixels = examples.height * examples.width;
  if (examples.images.length !== examples.count * pixels || examples.labels.length !== examples.count) {
    throw new NinError(
      `split of ${examples.count} examples of ${examples.height}x${examples.width} has ${examples.images.length} pixels and ${examples.labels.length} labels`,
    );
  }
  for (let b = startBatch; b < total; b++) {
    const first = b * batchSize;
    const count = Math.min(batchSize, limit - first);
    const images = new Uint8Array(count * pixels);
    const labels = new Int32Array(count);
    for (let k = 0; k < count; k++) {
      const i = order ? order[first + k] : first + k;
      images.set(examples.images.subarray(i * pixels, (i + 1) * pixels), k * pixels);
      labels[k] = examples.labels[i];
    }
    yield { images, labels, count, index: b };
  }
}

/** What {@link holdOut} returns: the examples trained on and the held-out validation examples. */
export interface HeldOut<T extends Examples> {
  /** The examples not held out, in their original order. */
  train: T;
  /** The held-out examples, in their original order. */
  valid: T;
}

/**
 * Holds `count` examples out of `examples` as a validation split, chosen by a permutation seeded with
 * `seed` (the same seed gives the same split; it shares nothing with the epochs' shuffles). Both parts keep
 * the original order, so a `limit` on the training part still takes "the first N".
 *
 * @example
 * ```ts
 * import { holdOut } from "@nin/webgpu";
 * const examples = { images: new Uint8Array(10 * 4), labels: new Uint8Array(10), count: 10, height: 2, width: 2 };
 * const { train, valid } = holdOut(examples, 3, 0);
 * console.log(train.count, valid.count); // 7 3
 * ```
 */
export function holdOut<T extends Examples>(examples: T, count: number, seed: number): HeldOut<T> {
  checkInteger(
    "validation images",
    count,
    1,
    examples.count - 1,
    ` (the split has ${examples.count} examples)`,
  );
  // Not epoch 0's shuffle: that order would then put the validation images first in epoch 1.
  const order = new Random(epochSeed(seed, 0) ^ 0x7a11d).permutation(examples.count);
  const held = new Uint8Array(examples.count);
  for (let k = 0; k < count; k++) held[order[k]] = 1;
  const pixels = examples.height * examples.width;
  const pick = (want: number, n: number): T => {
    const images = new Uint8Array(n * pixels);
    const labels = new Uint8Array(n);
    let j = 0;
    for (let i = 0; i < examples.count; i++) {
      if (held[i] !== want) continue;
      images.set(examples.images.subarray(i * pixels, (i + 1) * pixels), j * pixels);
      labels[j++] = examples.labels[i];
    }
    return { ...examples, images, labels, count: n };
  };
  return { train: pick(0, examples.count - count), valid: pick(1, count) };
}

/** A 32-bit seed for one epoch: both inputs go through a hash, so nearby (seed, epoch) pairs share nothing. */
function epochSeed(seed: number, epoch: number): number {
  const low = seed >>> 0;
  const high = Math.floor(seed / 2 ** 32) >>> 0;
  const s = mix32((mix32(low) ^ Math.imul(high, 0x27d4eb2f)) >>> 0);
  return mix32((s + Math.imul(epoch + 1, 0x165667b1)) >>> 0);
}

/** MurmurHash3's 32-bit finalizer: a bijection that spreads every input bit over the output. */
function mix32(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

function checkInteger(name: string, value: number, min: number, max: number, note = ""): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new NinError(`${name} must be an integer from ${min} to ${max}${note}, got ${value}`);
  }
}
