/**
 * The NiN a checkpoint holds: its input size and number of 1x1 convolutions (given, else saved in the
 * checkpoint, else inferred), and the model built with the checkpoint's weights. `deno task eval` and the web
 * page share these rules and their messages.
 *
 * @module
 */
import type { Checkpoint } from "./checkpoint.ts";
import { NinError } from "./errors.ts";
import type { Gpu } from "./gpu/device.ts";
import type { Sequential } from "./layers/sequential.ts";
import { nin } from "./nin.ts";
import { layerShapes } from "./shapes.ts";
import type { HostTensor } from "./safetensors.ts";

/** Input size and 1x1 convolutions asked for; undefined: from the checkpoint. */
export interface CheckpointNinOptions {
  /** Input height and width the images are resized to. */
  resize?: number;
  /** 1x1 convolutions per NiN block. */
  oneByOneConvs?: number;
}

/** A checkpoint's model, ready to evaluate. */
export interface CheckpointNin {
  /** The model, holding the checkpoint's weights. */
  net: Sequential;
  /** Input size to resize images to. */
  resize: number;
  /** Where {@link CheckpointNin.resize} came from, for the user. */
  resizeFrom: string;
  /** 1x1 convolutions per block. */
  oneByOneConvs: number;
}

/**
 * Builds the NiN of `checkpoint` (named `what` in errors) on `gpu`: the resize is `options.resize`, else the
 * checkpoint's training size, else 224 (a plain state dict says none); the 1x1 convolutions are
 * `options.oneByOneConvs`, else the checkpoint's, else counted from its parameter names, else 2. Weights
 * that do not fit, or a resize too small for the model, are a {@link NinError} (exit 2 when the user gave
 * the value).
 *
 * @example
 * ```ts
 * import { encodeCheckpoint, nin, ninFromCheckpoint, parseCheckpoint, requestGpu } from "@nin/webgpu";
 * const gpu = await requestGpu();
 * const bytes = await encodeCheckpoint(nin(gpu, { oneByOneConvs: 1 }), { state: { config: { resize: 96 } } });
 * const { resize, oneByOneConvs } = ninFromCheckpoint(gpu, parseCheckpoint(bytes, "demo"), "demo");
 * console.log(resize, oneByOneConvs); // 96 1
 * gpu.destroy();
 * ```
 */
export function ninFromCheckpoint(
  gpu: Gpu,
  checkpoint: Checkpoint,
  what: string,
  options: CheckpointNinOptions = {},
): CheckpointNin {
  const config = checkpoint.state.config;
  const savedResize = typeof config.resize === "number" ? config.resize : undefined;
  const savedConvs = typeof config["one-by-one-convs"] === "number" ? config["one-by-one-convs"] : undefined;
  const resize = options.resize ?? savedResize ?? 224;
  const resizeFrom = options.resize !== undefined
    ? "--resize"
    : savedResize !== undefined
    ? "the checkpoint's training size"
    : "assumed: the file is a plain state dict without a training size; pass --resize if it was trained at another";
  const oneByOneConvs = options.oneByOneConvs ?? savedConvs ?? convsFromNames(checkpoint.model) ?? 2;
  const net = nin(gpu, { oneByOneConvs });
  try {
    net.loadStateDict(checkpoint.model);
  } catch (e) {
    net.dispose();
    if (!(e instanceof NinError)) throw e;
    const given = options.oneByOneConvs !== undefined;
    throw new NinError(
      `${what} does not fit NiN with --one-by-one-convs ${oneByOneConvs}${
        given ? "" : " (the default)"
      }: ${e.message}`,
      given ? 2 : 1,
    );
  }
  try {
    layerShapes(net, [1, 1, resize, resize]);
  } catch (e) {
    net.dispose();
    if (!(e instanceof NinError)) throw e;
    throw new NinError(`--resize ${resize}: ${e.message}`, 2);
  }
  return { net, resize, resizeFrom, oneByOneConvs };
}

/** 1x1 convolutions per block of a state dict, from its names (block 0 holds `0.0`, `0.2`, ... weights). */
function convsFromNames(model: Map<string, HostTensor>): number | undefined {
  const convs = [...model.keys()].filter((name) => /^0\.\d+\.weight$/.test(name)).length;
  return convs > 0 ? convs - 1 : undefined;
}
