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
import { nin, type NinHead, ninShapeOptions } from "./nin.ts";
import { layerShapes } from "./shapes.ts";

/** Input size and model form asked for; undefined: from the checkpoint. */
export interface CheckpointNinOptions {
  /** Input height and width the images are resized to. */
  resize?: number;
  /** 1x1 convolutions per NiN block. */
  oneByOneConvs?: number;
  /** The last block's form. */
  head?: NinHead;
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
  /** The last block's form. */
  head: NinHead;
}

/**
 * Builds the NiN of `checkpoint` (named `what` in errors) on `gpu`: the resize is `options.resize`, else the
 * checkpoint's training size, else 224 (a plain state dict says none); the 1x1 convolutions and the head are
 * the options', else the checkpoint's run configuration's, else read from its parameter names and shapes
 * (`ninShapeOptions`), else 2 and direct. Weights
 * that do not fit, or a resize too small for the model, are a {@link NinError} (exit 2 when the user gave
 * the value).
 *
 * @example
 * ```ts
 * import { encodeCheckpoint, nin, ninFromCheckpoint, parseCheckpoint, requestGpu, runConfig } from "@nin/webgpu";
 * const gpu = await requestGpu();
 * const config = runConfig({ model: { oneByOneConvs: 1 }, data: { resize: 96 } });
 * const bytes = await encodeCheckpoint(nin(gpu, { oneByOneConvs: 1 }), { state: { config } });
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
  const savedResize = config?.data.resize;
  const fromNames = ninShapeOptions(checkpoint.model);
  const resize = options.resize ?? savedResize ?? 224;
  const resizeFrom = options.resize !== undefined
    ? "--resize"
    : savedResize !== undefined
    ? "the checkpoint's training size"
    : "assumed: the file is a plain state dict without a training size; pass --resize if it was trained at another";
  const oneByOneConvs = options.oneByOneConvs ?? config?.model.oneByOneConvs ?? fromNames?.oneByOneConvs ?? 2;
  const head = options.head ?? config?.model.head ?? fromNames?.head ?? "direct";
  const net = nin(gpu, { oneByOneConvs, head });
  try {
    net.loadStateDict(checkpoint.model);
  } catch (e) {
    net.dispose();
    if (!(e instanceof NinError)) throw e;
    const given = options.oneByOneConvs !== undefined || options.head !== undefined;
    throw new NinError(
      `${what} does not fit NiN with --one-by-one-convs ${oneByOneConvs} --head ${head}${
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
  return { net, resize, resizeFrom, oneByOneConvs, head };
}
