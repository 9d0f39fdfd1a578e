/**
 * NiN described by its configuration alone, as plain data (no GPU tensors): the layers `nin()` builds, their
 * output shapes, parameter counts and leaves, and the micro-batch size the toolkit would pick for them.
 *
 * @module
 */
import { formatShape, NinError } from "./errors.ts";
import { ninConfig, type NinOptions } from "./nin.ts";
import { shapeSize } from "./tensor.ts";

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
 * import { ninSpec } from "./model_spec.ts";
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
 * import { ninSpec, specOutputShape } from "./model_spec.ts";
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
      return [n, shapeSize(inputShape.slice(1))];
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
 * import { ninSpec, specParams } from "./model_spec.ts";
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
 * import { ninSpec, specLeaves } from "./model_spec.ts";
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
 * import { ninSpec, specMicroBatch } from "./model_spec.ts";
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
  let largest = shapeSize(sampleShape) * 4;
  let shape = [1, ...sampleShape];
  for (const leaf of specLeaves(spec)) {
    shape = specOutputShape(leaf.spec, shape, leaf.name);
    largest = Math.max(largest, shapeSize(shape) * 4);
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
