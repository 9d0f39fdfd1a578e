// IDX (+gzip) parsing: good files, and every broken case ends in a NinError that names the file.
import { gzipSync } from "node:zlib";
import {
  encodeIdxImages,
  encodeIdxLabels,
  gunzip,
  isGzip,
  parseIdxImages,
  readIdxImages,
  readIdxLabels,
} from "../lib/deno/idx.ts";
import { readIdxSplit } from "../lib/deno/fashion_mnist.ts";
import { NinError } from "../lib/errors.ts";
import { Random } from "../lib/random.ts";
import { deepStrictEqual } from "node:assert/strict";
import { assertJsonEqual, assertRejectsWith, assertThrowsWith } from "./util.ts";

function randomImages(count: number, rows: number, cols: number, seed: number): Uint8Array {
  const rng = new Random(seed);
  return Uint8Array.from({ length: count * rows * cols }, () => rng.int(256));
}

/** Runs `fn` with a fresh temporary directory, removed afterwards. */
async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "nin_idx_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("IDX: good files, gzipped or not, parse to the same images and labels", async () => {
  await withTempDir(async (dir) => {
    const pixels = randomImages(3, 28, 28, 1);
    const labels = new Uint8Array([9, 0, 4]);
    const imagesIdx = encodeIdxImages(pixels, 3, 28, 28);
    const labelsIdx = encodeIdxLabels(labels);
    // The header is big-endian: magic 2051, then count, rows, cols.
    assertJsonEqual(
      [...imagesIdx.subarray(0, 16)],
      [0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 28, 0, 0, 0, 28],
      "header",
    );
    await Deno.writeFile(`${dir}/images`, imagesIdx);
    await Deno.writeFile(`${dir}/labels`, labelsIdx);
    await Deno.writeFile(`${dir}/images.gz`, gzipSync(imagesIdx));
    await Deno.writeFile(`${dir}/labels.gz`, gzipSync(labelsIdx));
    for (const ext of ["", ".gz"]) {
      const images = await readIdxImages(`${dir}/images${ext}`);
      assertJsonEqual([images.count, images.rows, images.cols], [3, 28, 28], `shape${ext}`);
      deepStrictEqual(images.data, pixels, `images${ext}`);
      deepStrictEqual(await readIdxLabels(`${dir}/labels${ext}`), labels, `labels${ext}`);
      const split = await readIdxSplit(`${dir}/images${ext}`, `${dir}/labels${ext}`);
      assertJsonEqual([split.count, split.height, split.width], [3, 28, 28], `split${ext}`);
    }
    // Non-square images parse too (only the Fashion-MNIST split insists on 28x28).
    const odd = parseIdxImages(encodeIdxImages(randomImages(2, 3, 5, 2), 2, 3, 5), "odd");
    assertJsonEqual([odd.count, odd.rows, odd.cols, odd.data.length], [2, 3, 5, 30], "3x5 images");
    assertJsonEqual([isGzip(gzipSync(labelsIdx)), isGzip(labelsIdx)], [true, false], "gzip detection");
  });
});

Deno.test("IDX: truncated files are errors naming the file", async () => {
  await withTempDir(async (dir) => {
    const imagesIdx = encodeIdxImages(randomImages(2, 28, 28, 3), 2, 28, 28);
    await Deno.writeFile(`${dir}/short-body`, imagesIdx.subarray(0, imagesIdx.length - 100));
    await assertRejectsWith(
      () => readIdxImages(`${dir}/short-body`),
      NinError,
      `${dir}/short-body: truncated: the header says 2 images of 28x28 (1568 bytes) but only 1468 bytes follow`,
    );
    await Deno.writeFile(`${dir}/short-header`, imagesIdx.subarray(0, 10));
    await assertRejectsWith(
      () => readIdxImages(`${dir}/short-header`),
      NinError,
      `${dir}/short-header: truncated IDX image file: 10 bytes, shorter than its 16-byte header`,
    );
    const labelsIdx = encodeIdxLabels(new Uint8Array([1, 2, 3]));
    await Deno.writeFile(`${dir}/labels`, labelsIdx.subarray(0, labelsIdx.length - 1));
    await assertRejectsWith(
      () => readIdxLabels(`${dir}/labels`),
      NinError,
      `${dir}/labels: truncated`,
      "3 labels",
    );
    const gz = gzipSync(imagesIdx);
    await Deno.writeFile(`${dir}/cut.gz`, gz.subarray(0, gz.length - 30));
    await assertRejectsWith(
      () => readIdxImages(`${dir}/cut.gz`),
      NinError,
      `${dir}/cut.gz: corrupt or truncated gzip data`,
    );
    await Deno.writeFile(`${dir}/long`, new Uint8Array([...labelsIdx, 7, 7]));
    await assertRejectsWith(
      () => readIdxLabels(`${dir}/long`),
      NinError,
      `${dir}/long: 2 unexpected bytes after the 3 labels`,
    );
    await assertRejectsWith(
      () => readIdxLabels(`${dir}/missing.gz`),
      NinError,
      `cannot read ${dir}/missing.gz`,
    );
  });
});

Deno.test("IDX: wrong magic, not gzip and corrupt gzip are errors naming the file", async () => {
  await withTempDir(async (dir) => {
    const labelsIdx = encodeIdxLabels(new Uint8Array([1, 2]));
    await Deno.writeFile(`${dir}/labels.gz`, gzipSync(labelsIdx));
    await assertRejectsWith(
      () => readIdxImages(`${dir}/labels.gz`),
      NinError,
      `${dir}/labels.gz: wrong magic number 2049, expected 2051 for an IDX image file`,
      "swapped?",
    );
    await Deno.writeFile(`${dir}/text.gz`, new TextEncoder().encode("<html>not found</html>"));
    await assertRejectsWith(
      () => readIdxLabels(`${dir}/text.gz`),
      NinError,
      `${dir}/text.gz: wrong magic number`,
      "neither gzip nor an IDX file",
    );
    assertThrowsWith(() => gunzip(labelsIdx, "plain.idx"), NinError, "plain.idx: not gzip data");
    const corrupt = gzipSync(encodeIdxImages(randomImages(4, 28, 28, 4), 4, 28, 28));
    for (let i = 20; i < 40; i++) corrupt[i] ^= 0x5a;
    await Deno.writeFile(`${dir}/corrupt.gz`, corrupt);
    await assertRejectsWith(
      () => readIdxImages(`${dir}/corrupt.gz`),
      NinError,
      `${dir}/corrupt.gz: corrupt or truncated gzip data`,
    );
  });
});

Deno.test("IDX split: image/label count mismatch, bad labels and wrong image size name the files", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeFile(`${dir}/images`, encodeIdxImages(randomImages(3, 28, 28, 5), 3, 28, 28));
    await Deno.writeFile(`${dir}/labels`, encodeIdxLabels(new Uint8Array([1, 2])));
    await assertRejectsWith(
      () => readIdxSplit(`${dir}/images`, `${dir}/labels`),
      NinError,
      `${dir}/images has 3 images but ${dir}/labels has 2 labels; they must match`,
    );
    await Deno.writeFile(`${dir}/bad-labels`, encodeIdxLabels(new Uint8Array([1, 12, 3])));
    await assertRejectsWith(
      () => readIdxSplit(`${dir}/images`, `${dir}/bad-labels`),
      NinError,
      `${dir}/bad-labels: label 12 at index 1 is not a class 0-9`,
    );
    await Deno.writeFile(`${dir}/small`, encodeIdxImages(randomImages(2, 5, 5, 6), 2, 5, 5));
    await assertRejectsWith(
      () => readIdxSplit(`${dir}/small`, `${dir}/labels`),
      NinError,
      `${dir}/small: images are 5x5, Fashion-MNIST's are 28x28`,
    );
  });
});
