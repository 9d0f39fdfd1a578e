/**
 * Image preprocessing on the GPU: uint8 grayscale images to float32 `[n, 1, size, size]` in [0, 1] with a
 * bilinear resize, as d2l's pipeline.
 *
 * @module
 */
import type { Gpu } from "./gpu/device.ts";
import { kernel } from "./gpu/kernel.ts";
import { workgroupsFor } from "./module.ts";
import { Tensor } from "./tensor.ts";
import { NinError } from "./errors.ts";
import resizeCode from "../kernels/resize_bilinear.wgsl" with { type: "text" };

const RESIZE_BILINEAR = kernel("resize_bilinear", resizeCode);

/**
 * Uploads `n` uint8 grayscale images of `height` x `width` (row-major, one after another) and returns them
 * as a `[n, 1, size, size]` tensor of `pixels / 255` resized bilinearly as
 * `F.interpolate(x, size, mode="bilinear", align_corners=False)` (no antialias), in one kernel.
 * `size === height === width` is an exact copy scaled to [0, 1]. The pixels travel packed four per u32 word
 * (the upload is padded to a multiple of 4 bytes). Preprocessing is not model compute: the dispatch passes
 * 0 FLOPs.
 *
 * @example
 * ```ts
 * import { requestGpu, resizeImages } from "@nin/webgpu";
 * const gpu = await requestGpu();
 * const images = resizeImages(gpu, new Uint8Array(2 * 28 * 28).fill(255), 2, 28, 28, 96);
 * console.log(images.shape); // [2, 1, 96, 96], all ones
 * images.dispose();
 * gpu.destroy();
 * ```
 */
export function resizeImages(
  gpu: Gpu,
  pixels: Uint8Array,
  n: number,
  height: number,
  width: number,
  size: number,
): Tensor {
  for (const [name, value] of [["n", n], ["height", height], ["width", width], ["size", size]] as const) {
    if (!Number.isInteger(value) || value < 1) {
      throw new NinError(`resizeImages: ${name} must be a positive integer, got ${value}`);
    }
  }
  if (pixels.length !== n * height * width) {
    throw new NinError(
      `resizeImages: ${pixels.length} bytes are not ${n} images of ${height}x${width} (${
        n * height * width
      })`,
    );
  }
  const packed = new Uint8Array(Math.ceil(pixels.length / 4) * 4);
  packed.set(pixels);
  const upload = gpu.allocate(packed.length, "workspace");
  try {
    gpu.write(upload, packed);
    const out = Tensor.empty(gpu, [n, 1, size, size], "input batch");
    gpu.dispatch(
      RESIZE_BILINEAR,
      { pixels: upload, out: out.buffer },
      { count: out.size, height, width, size, scale_y: height / size, scale_x: width / size },
      workgroupsFor(out.size, RESIZE_BILINEAR),
      0,
    );
    return out;
  } finally {
    // Released once recorded: a later user of this pooled buffer writes it only after this dispatch ran.
    gpu.release(upload);
  }
}
