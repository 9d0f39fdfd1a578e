// Fashion-MNIST in memory (lib/data/split.ts): a split checks its labels and size, and survives the trip
// through safetensors tensors that the npm cache and the web page's data files take.
import { strictEqual } from "node:assert/strict";
import { makeSplit, splitFromTensors, splitTensors } from "../lib/data/split.ts";
import { parseSafetensors, serializeSafetensors } from "../lib/safetensors.ts";
import { NinError } from "../lib/errors.ts";
import { assertJsonEqual, assertThrowsWith } from "./util.ts";

const images = Uint8Array.from({ length: 3 * 784 }, (_, i) => (i * 7) % 256);

Deno.test("split: makeSplit rejects a label outside 0-9 and images that do not match the labels", () => {
  strictEqual(makeSplit(images, new Uint8Array([0, 9, 4]), "demo").count, 3);
  assertThrowsWith(
    () => makeSplit(images, new Uint8Array([0, 10, 4]), "demo"),
    NinError,
    "demo: label 10 at index 1 is not a class 0-9",
  );
  assertThrowsWith(
    () => makeSplit(images.subarray(1), new Uint8Array([0, 1, 4]), "demo"),
    NinError,
    "demo: 2351 pixel values do not make 3 28x28 images",
  );
});

Deno.test("split: splitTensors and splitFromTensors round-trip through safetensors bytes, under a prefix", () => {
  const split = makeSplit(images, new Uint8Array([3, 1, 4]), "demo");
  const bytes = serializeSafetensors(splitTensors(split, "test."));
  const back = splitFromTensors(parseSafetensors(bytes).tensors, "test.", "file");
  assertJsonEqual([back.count, back.height, back.width, [...back.labels]], [3, 28, 28, [3, 1, 4]], "split");
  strictEqual(back.images.every((v, i) => v === images[i]), true, "pixels");
});

Deno.test("split: splitFromTensors names what is missing or misshapen", () => {
  const tensors = splitTensors(makeSplit(images, new Uint8Array([3, 1, 4]), "demo"));
  assertThrowsWith(
    () => splitFromTensors(tensors, "train.", "f"),
    NinError,
    "f: no U8 tensors train.images and train.labels",
  );
  const wrong = new Map(tensors);
  wrong.set("images", { dtype: "U8", shape: [3, 28, 28], data: images.subarray(0, 784 * 2) });
  wrong.set("labels", { dtype: "U8", shape: [2], data: new Uint8Array([1, 2]) });
  assertThrowsWith(
    () => splitFromTensors(wrong, "", "f"),
    NinError,
    "f: images [3,28,28] do not match the labels",
  );
});
