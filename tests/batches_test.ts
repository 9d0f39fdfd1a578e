// Epoch batches: reproducible shuffles from (seed, epoch), limit, the last partial batch, bad options.
import { type Batch, batchesPerEpoch, epochBatches, epochOrder, type Examples } from "../lib/data/batches.ts";
import { NinError } from "../lib/errors.ts";
import { assertJsonEqual, assertThrowsWith } from "./util.ts";

/** `count` 2x3 images whose pixels all equal the example's index (mod 256) and label index % 10. */
function numbered(count: number): Examples {
  const images = new Uint8Array(count * 6);
  for (let i = 0; i < count; i++) images.fill(i % 256, i * 6, (i + 1) * 6);
  return { images, labels: Uint8Array.from({ length: count }, (_, i) => i % 10), count, height: 2, width: 3 };
}

/** The example indices a batch holds, read back from its pixels, checking labels and pixels agree. */
function indicesOf(batch: Batch): number[] {
  const out: number[] = [];
  for (let k = 0; k < batch.count; k++) {
    const i = batch.images[k * 6];
    if (batch.images.subarray(k * 6, (k + 1) * 6).some((v) => v !== i)) throw new Error("image was mixed up");
    if (batch.labels[k] !== i % 10) {
      throw new Error(`label ${batch.labels[k]} does not belong to example ${i}`);
    }
    out.push(i);
  }
  return out;
}

function epoch(examples: Examples, options: Parameters<typeof epochBatches>[1]): number[][] {
  return [...epochBatches(examples, options)].map(indicesOf);
}

Deno.test("batches: every example once per epoch, last partial batch kept, labels as Int32Array", () => {
  const batches = [...epochBatches(numbered(10), { batchSize: 4, seed: 3, epoch: 0 })];
  assertJsonEqual(batches.map((b) => b.count), [4, 4, 2], "batch sizes");
  assertJsonEqual(batches.map((b) => b.index), [0, 1, 2], "batch indices");
  assertJsonEqual(batches.map((b) => b.images.length), [24, 24, 12], "pixels per batch");
  if (!(batches[0].labels instanceof Int32Array)) throw new Error("labels must be an Int32Array");
  assertJsonEqual(
    batches.flatMap(indicesOf).sort((a, b) => a - b),
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    "coverage",
  );
  assertJsonEqual(batchesPerEpoch(10, 4), 3, "batchesPerEpoch");
  assertJsonEqual(batchesPerEpoch(8, 4), 2, "exact multiple");
});

Deno.test("batches: the order depends on (seed, epoch) only, so a resumed run sees the same batches", () => {
  const data = numbered(200);
  const run = (seed: number, e: number) => epoch(data, { batchSize: 32, seed, epoch: e });
  // Same (seed, epoch), computed at different times and in a different sequence: identical.
  const e0 = run(5, 0);
  const e1 = run(5, 1);
  assertJsonEqual(run(5, 1), e1, "epoch 1 again");
  assertJsonEqual(run(5, 0), e0, "epoch 0 after epoch 1");
  // Different epochs and different seeds shuffle differently, and the order is really shuffled.
  if (JSON.stringify(e0) === JSON.stringify(e1)) throw new Error("epochs 0 and 1 have the same order");
  if (JSON.stringify(run(6, 0)) === JSON.stringify(e0)) throw new Error("seeds 5 and 6 give the same order");
  const identity = Array.from({ length: 200 }, (_, i) => i);
  if (JSON.stringify(e0.flat()) === JSON.stringify(identity)) throw new Error("epoch 0 is not shuffled");
  // Resuming at batch 3 yields the rest of the same epoch.
  assertJsonEqual(epoch(data, { batchSize: 32, seed: 5, epoch: 1, startBatch: 3 }), e1.slice(3), "resume");
  assertJsonEqual([...epochOrder(200, 5, 1)], e1.flat(), "epochOrder matches the batches");
  // Large and negative seeds work and differ from each other.
  const far = [...epochOrder(50, 2 ** 40 + 5, 0)].join();
  if (far === [...epochOrder(50, 5, 0)].join()) throw new Error("seed 2^40+5 collides with seed 5");
  if ([...epochOrder(50, -1, 0)].join() === far) throw new Error("seed -1 collides");
});

Deno.test("batches: limit takes the first N examples before shuffling; shuffle false keeps the order", () => {
  const data = numbered(100);
  const limited = epoch(data, { batchSize: 8, seed: 1, epoch: 2, limit: 20 });
  assertJsonEqual(limited.map((b) => b.length), [8, 8, 4], "batch sizes with limit 20");
  assertJsonEqual(limited.flat().sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i), "first 20");
  assertJsonEqual(
    epoch(data, { batchSize: 7, shuffle: false, limit: 16 }),
    [[0, 1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12, 13], [14, 15]],
    "unshuffled",
  );
  assertJsonEqual(epoch(data, { batchSize: 1000, shuffle: false, limit: 3 }), [[0, 1, 2]], "batch > limit");
});

Deno.test("batches: bad options are NinErrors naming the option", () => {
  const data = numbered(10);
  const first = (options: Parameters<typeof epochBatches>[1]) => epochBatches(data, options).next();
  assertThrowsWith(() => first({ batchSize: 0 }), NinError, "batch size must be an integer from 1");
  assertThrowsWith(() => first({ batchSize: 2.5 }), NinError, "batch size must be an integer from 1");
  assertThrowsWith(
    () => first({ batchSize: 2, limit: 11 }),
    NinError,
    "limit must be an integer from 1 to 10 (the split has 10 examples), got 11",
  );
  assertThrowsWith(
    () => first({ batchSize: 2, limit: 0 }),
    NinError,
    "limit must be an integer from 1 to 10",
  );
  assertThrowsWith(() => first({ batchSize: 2, epoch: -1 }), NinError, "epoch must be an integer from 0");
  assertThrowsWith(() => first({ batchSize: 2, seed: 0.5 }), NinError, "seed must be an integer");
  assertThrowsWith(
    () => first({ batchSize: 2, startBatch: 6 }),
    NinError,
    "start batch must be an integer from 0 to 5",
  );
  assertThrowsWith(
    () => epochBatches({ ...data, labels: new Uint8Array(9) }, { batchSize: 2 }).next(),
    NinError,
    "has 60 pixels and 9 labels",
  );
});
