/**
 * The chapter's model: NiN blocks (one k x k convolution, then 1x1 convolutions acting as per-pixel MLPs),
 * max pooling between them, dropout, a last block with one channel per class, and global average pooling.
 *
 * @module
 */
import type { Gpu } from "./gpu/device.ts";
import { NinError } from "./errors.ts";
import type { Module } from "./module.ts";
import { Random } from "./random.ts";
import { AdaptiveAvgPool2d } from "./layers/adaptive_avgpool2d.ts";
import { Conv2d, CONV_INITS, type ConvInit } from "./layers/conv2d.ts";
import { Dropout } from "./layers/dropout.ts";
import { Flatten } from "./layers/flatten.ts";
import { MaxPool2d } from "./layers/maxpool2d.ts";
import { ReLU } from "./layers/relu.ts";
import { Sequential } from "./layers/sequential.ts";

/** Options of {@link ninBlock}. */
export interface NinBlockOptions {
  /** Number of 1x1 convolutions after the first one (2 in the chapter; 1 or 0 for exercise 2). */
  oneByOneConvs?: number;
  /** Generator for the weight initialisation (shared across blocks so a model is seeded once). */
  rng?: Random;
  /** Weight initialisation of the convolutions (default `"xavier"`, the chapter's). */
  init?: ConvInit;
}

/**
 * A NiN block: `Conv2d(k, stride, padding)`, ReLU, then `oneByOneConvs` times (1x1 Conv2d, ReLU).
 *
 * @example
 * ```ts
 * import { ninBlock, requestGpu } from "@nin/webgpu";
 * const gpu = await requestGpu();
 * const block = ninBlock(gpu, 1, 96, 11, 4, 0, { init: "kaiming" });
 * console.log(block.outputShape([1, 1, 224, 224])); // [1, 96, 54, 54]
 * gpu.destroy();
 * ```
 */
export function ninBlock(
  gpu: Gpu,
  inChannels: number,
  outChannels: number,
  kernelSize: number,
  strides: number,
  padding: number,
  options?: NinBlockOptions,
): Sequential {
  const rng = options?.rng ?? new Random(0);
  const init = options?.init ?? "xavier";
  const layers: Module[] = [
    new Conv2d(gpu, inChannels, outChannels, kernelSize, strides, padding, { rng, init }),
    new ReLU(gpu),
  ];
  for (let i = 0; i < (options?.oneByOneConvs ?? 2); i++) {
    layers.push(new Conv2d(gpu, outChannels, outChannels, 1, 1, 0, { rng, init }), new ReLU(gpu));
  }
  return new Sequential(...layers);
}

/**
 * The form of NiN's last block: `"direct"` is the chapter's (a 3x3 convolution from 384 channels straight to
 * one per class, then the block's 1x1 convolutions at that width); `"gradual"` reduces in steps (exercise 4):
 * a 3x3 convolution keeping 384 channels, then 1x1 convolutions 384 -> 96 -> classes, each followed by a ReLU
 * as in every NiN block. The gradual head always has those two 1x1 convolutions (`oneByOneConvs` sizes the
 * other blocks), so its PyTorch names are those of a two-1x1 block (`7.0`, `7.2`, `7.4`) with other shapes.
 */
export type NinHead = "direct" | "gradual";

/** Every {@link NinHead}, in the order the tasks list them. */
export const NIN_HEADS: readonly NinHead[] = ["direct", "gradual"];

/** Channels the gradual head's first 1x1 convolution reduces 384 to (the first block's width). */
const GRADUAL_WIDTH = 96;

/** Options of {@link nin}. */
export interface NinOptions {
  /** Output classes (10 for Fashion-MNIST). */
  numClasses?: number;
  /** Input channels (1 for grayscale). */
  inChannels?: number;
  /** Dropout probability before the last block (0.5 in the chapter). */
  dropout?: number;
  /** 1x1 convolutions per block: 2 as in the chapter, 1 or 0 for its exercise 2. */
  oneByOneConvs?: number;
  /** Seed of the weight initialisation and the dropout masks. */
  seed?: number;
  /**
   * Convolution weight initialisation: `"xavier"` (default, the chapter's) or `"kaiming"` (He-uniform,
   * bound `sqrt(6 / fan_in)`, which keeps the signal of the 12 ReLU convolutions from vanishing).
   */
  init?: ConvInit;
  /** The last block's form: the chapter's `"direct"` (default) or `"gradual"` (see {@link NinHead}). */
  head?: NinHead;
}

/**
 * The options of {@link nin} with defaults filled in where a value is missing or undefined; other keys of
 * `options` (a larger options object passed through) are left out.
 */
export function ninConfig(options?: NinOptions): Required<NinOptions> {
  const config: Required<NinOptions> = {
    numClasses: options?.numClasses ?? 10,
    inChannels: options?.inChannels ?? 1,
    dropout: options?.dropout ?? 0.5,
    oneByOneConvs: options?.oneByOneConvs ?? 2,
    seed: options?.seed ?? 0,
    init: options?.init ?? "xavier",
    head: options?.head ?? "direct",
  };
  const positiveInt = (name: string, v: number, min: number) => {
    if (!Number.isInteger(v) || v < min) {
      throw new NinError(`nin: ${name} must be an integer >= ${min}, got ${v}`);
    }
  };
  positiveInt("numClasses", config.numClasses, 1);
  positiveInt("inChannels", config.inChannels, 1);
  positiveInt("oneByOneConvs", config.oneByOneConvs, 0);
  positiveInt("seed", config.seed, 0);
  if (!(config.dropout >= 0 && config.dropout < 1)) {
    throw new NinError(`nin: dropout must be in [0, 1), got ${config.dropout}`);
  }
  if (!CONV_INITS.includes(config.init)) {
    throw new NinError(`nin: init must be one of ${CONV_INITS.join(", ")}, got ${config.init}`);
  }
  if (!NIN_HEADS.includes(config.head)) {
    throw new NinError(`nin: head must be one of ${NIN_HEADS.join(", ")}, got ${config.head}`);
  }
  return config;
}

/**
 * The chapter's NiN as an `nn.Sequential` with PyTorch's parameter names (`0.0.weight` ... `7.4.bias`),
 * Xavier-uniform (or, with `init: "kaiming"`, He-uniform) convolution weights and PyTorch-default biases
 * from `seed`; `head: "gradual"` swaps the last block for a stepwise reduction (see {@link NinHead}).
 *
 * @example
 * ```ts
 * import { nin, requestGpu, Tensor } from "@nin/webgpu";
 * const gpu = await requestGpu();
 * const net = nin(gpu, { seed: 0, init: "kaiming" }).eval();
 * const logits = net.forward(Tensor.zeros(gpu, [1, 1, 96, 96]));
 * console.log(logits.shape); // [1, 10]
 * gpu.destroy();
 * ```
 */
export function nin(gpu: Gpu, options?: NinOptions): Sequential {
  const { numClasses, inChannels, dropout, oneByOneConvs, seed, init, head } = ninConfig(options);
  const rng = new Random(seed);
  const block = (i: number, o: number, k: number, s: number, p: number) =>
    ninBlock(gpu, i, o, k, s, p, { oneByOneConvs, rng, init });
  const conv = (
    i: number,
    o: number,
    k: number,
    p: number,
  ) => [new Conv2d(gpu, i, o, k, 1, p, { rng, init }), new ReLU(gpu)];
  // Built in its place among the blocks: the weights are drawn from one generator in layer order.
  const last = () =>
    head === "direct" ? block(384, numClasses, 3, 1, 1) : new Sequential(
      ...conv(384, 384, 3, 1),
      ...conv(384, GRADUAL_WIDTH, 1, 0),
      ...conv(GRADUAL_WIDTH, numClasses, 1, 0),
    );
  return new Sequential(
    block(inChannels, 96, 11, 4, 0),
    new MaxPool2d(gpu, 3, 2),
    block(96, 256, 5, 1, 2),
    new MaxPool2d(gpu, 3, 2),
    block(256, 384, 3, 1, 1),
    new MaxPool2d(gpu, 3, 2),
    new Dropout(gpu, dropout, { seed: (seed + 0x5eed) >>> 0 }),
    last(),
    new AdaptiveAvgPool2d(gpu, 1),
    new Flatten(gpu),
  );
}

/**
 * The 1x1 convolutions per block and the head of the NiN a state dict belongs to, read from its names and
 * shapes (block 0 holds `0.0`, `0.2`, ... weights; a gradual head's `7.0` keeps its input channels), or
 * null for what is not a NiN state dict; for a plain PyTorch file, which carries no configuration.
 *
 * @example
 * ```ts
 * import { countingGpu, nin, ninShapeOptions } from "@nin/webgpu";
 * const net = nin(countingGpu(), { oneByOneConvs: 1, head: "gradual" });
 * const shapes = new Map(net.namedParameters().map(([name, p]) => [name, p.value]));
 * console.log(ninShapeOptions(shapes)); // { oneByOneConvs: 1, head: "gradual" }
 * ```
 */
export function ninShapeOptions(
  tensors: ReadonlyMap<string, { shape: readonly number[] }>,
): { oneByOneConvs: number; head: NinHead } | null {
  const convs = [...tensors.keys()].filter((name) => /^0\.\d+\.weight$/.test(name)).length;
  const headShape = tensors.get("7.0.weight")?.shape;
  if (convs === 0 || !headShape || headShape.length !== 4) return null;
  return { oneByOneConvs: convs - 1, head: headShape[0] === headShape[1] ? "gradual" : "direct" };
}
