import {
  assertClose,
  assertJsonEqual as assertEquals,
  assertThrowsWith as assertThrows,
  download,
  gpuTest,
} from "./util.ts";
import { resizeImages } from "../lib/resize.ts";
import { NinError } from "../lib/errors.ts";
import { Random } from "../lib/random.ts";
import { resizeBilinearRef } from "./reference/resize.ts";

function randomImages(rng: Random, count: number): Uint8Array {
  return Uint8Array.from({ length: count }, () => rng.int(256));
}

gpuTest("resizeImages matches PyTorch's bilinear align_corners=False formula", async (gpu) => {
  const rng = new Random(71);
  // [n, height, width, size]: the d2l upsamplings, odd sizes (odd byte counts exercise the u32 padding),
  // non-square inputs, a downsampling, and 1-pixel edge cases.
  const cases = [[2, 28, 28, 96], [1, 28, 28, 224], [3, 7, 5, 13], [1, 13, 9, 6], [2, 3, 3, 1], [1, 1, 1, 5]];
  for (const [n, h, w, size] of cases) {
    const pixels = randomImages(rng, n * h * w);
    const before = gpu.memory.liveBuffers;
    const t = resizeImages(gpu, pixels, n, h, w, size);
    assertEquals(t.shape, [n, 1, size, size], "shape");
    const out = await download(t);
    assertEquals(gpu.memory.liveBuffers, before, "the upload buffer is released");
    // Float32 source coordinates and weights vs float64: a few ulps of a value in [0, 1].
    assertClose(
      out,
      resizeBilinearRef(pixels, n, h, w, size),
      { atol: 2e-6, rtol: 0 },
      `${n}x${h}x${w} -> ${size}`,
    );
  }
});

gpuTest("resizeImages at the same size is an exact copy of pixels / 255", async (gpu) => {
  const pixels = Uint8Array.from({ length: 3 * 28 * 28 }, (_, i) => (i * 37) % 256);
  const out = await download(resizeImages(gpu, pixels, 3, 28, 28, 28));
  assertClose(out, Float32Array.from(pixels, (v) => v / 255), { atol: 0, rtol: 0 }, "same-size copy");
  const extremes = await download(resizeImages(gpu, Uint8Array.from([0, 255, 255, 0]), 1, 2, 2, 7));
  if (extremes.some((v) => v < 0 || v > 1)) throw new Error(`values outside [0, 1]: ${extremes}`);
});

gpuTest("resizeImages validates its arguments", async (gpu) => {
  assertThrows(
    () => resizeImages(gpu, new Uint8Array(10), 1, 3, 3, 4),
    NinError,
    "10 bytes are not 1 images of 3x3 (9)",
  );
  assertThrows(
    () => resizeImages(gpu, new Uint8Array(9), 1, 3, 3, 0),
    NinError,
    "size must be a positive integer",
  );
  assertThrows(
    () => resizeImages(gpu, new Uint8Array(0), 0, 3, 3, 4),
    NinError,
    "n must be a positive integer",
  );
  await gpu.sync();
});
