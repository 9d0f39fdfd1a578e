import {
  assertClose,
  assertJsonEqual as assertEquals,
  assertRejectsWith,
  assertThrowsWith as assertThrows,
  download,
  gpuTest,
  Tensor,
  withFlops,
} from "./util.ts";
import { crossEntropyLoss, softmaxCrossEntropy, validateLabels } from "../lib/loss.ts";
import type { Gpu } from "../lib/gpu/device.ts";
import { NinError } from "../lib/errors.ts";
import { Random } from "../lib/random.ts";
import { crossEntropyGradRef, crossEntropyRef } from "./reference/cross_entropy.ts";
import { finiteDifferenceGrad } from "./reference/finite_diff.ts";

/** Runs the fused kernel once into fresh stats; returns the gradient and the stats words. */
async function run(
  gpu: Gpu,
  logits: Float32Array,
  labels: Int32Array<ArrayBuffer>,
  classes: number,
  gradScale: number,
) {
  const n = labels.length;
  const z = Tensor.fromArray(gpu, logits, [n, classes]);
  const labelBuffer = gpu.allocate(n * 4, "labels");
  gpu.write(labelBuffer, labels);
  const stats = gpu.allocate(16, "stats");
  gpu.clear(stats);
  const grad = await download(softmaxCrossEntropy(z, labelBuffer, gradScale, stats));
  const words = await gpu.read(stats, 8);
  z.dispose();
  gpu.release(labelBuffer);
  gpu.release(stats);
  return { grad, lossSum: new Float32Array(words, 0, 1)[0], correct: new Uint32Array(words, 4, 1)[0] };
}

function randomLabels(rng: Random, n: number, classes: number): Int32Array<ArrayBuffer> {
  return Int32Array.from({ length: n }, () => rng.int(classes));
}

gpuTest(
  "softmaxCrossEntropy matches the float64 reference (loss sum, correct count, gradient)",
  async (gpu) => {
    const rng = new Random(51);
    for (
      const [n, classes, scale] of [[1, 10, 1], [5, 3, 0.2], [128, 10, 1 / 128], [300, 7, 1 / 600], [4, 1, 1]]
    ) {
      const logits = rng.uniformArray(n * classes, -4, 4);
      const labels = randomLabels(rng, n, classes);
      const before = gpu.memory.liveBuffers;
      const { value: { grad, lossSum, correct }, flops } = await withFlops(
        gpu,
        () => run(gpu, logits, labels, classes, scale),
      );
      assertEquals(gpu.memory.liveBuffers, before, "no leaks");
      assertEquals(flops, 7 * n * classes, "FLOPs");
      const ref = crossEntropyRef(logits, labels, classes);
      const refSum = ref.losses.reduce((a, b) => a + b, 0);
      assertClose([lossSum], [refSum], { atol: 1e-5, rtol: 1e-5 }, `loss sum n=${n} classes=${classes}`);
      assertEquals(correct, labels.filter((l, s) => ref.argmax[s] === l).length, "correct count");
      assertClose(
        grad,
        crossEntropyGradRef(logits, labels, classes, scale),
        { atol: 1e-7, rtol: 1e-5 },
        "gradient",
      );
    }
  },
);

gpuTest("softmaxCrossEntropy is stable for huge logits and counts ties as torch.argmax", async (gpu) => {
  const classes = 4;
  const logits = Float32Array.from([
    ...[1000, 0, -1000, 999], // huge: a naive exp overflows
    ...[-1000, -1000, -999, -1001], // hugely negative: a naive sum underflows to 0
    ...[5, 5, 5, 5], // all tied: argmax is class 0
    ...[1, 7, 7, 2], // tie between 1 and 2: argmax is 1
    ...[88.8, 88.7, 0, 0], // just past exp's float32 range
  ]);
  const labels = Int32Array.from([3, 2, 0, 1, 1]);
  const { grad, lossSum, correct } = await run(gpu, logits, labels, classes, 0.5);
  const ref = crossEntropyRef(logits, labels, classes);
  assertClose([lossSum], [ref.losses.reduce((a, b) => a + b, 0)], { atol: 1e-5, rtol: 1e-6 }, "loss sum");
  if (!grad.every(Number.isFinite)) throw new Error(`non-finite gradient ${grad}`);
  assertClose(
    grad,
    crossEntropyGradRef(logits, labels, classes, 0.5),
    { atol: 1e-7, rtol: 1e-5 },
    "gradient",
  );
  assertEquals(correct, 3, "correct: rows 1, 2 and 3 (ties go to the first maximum)");
});

gpuTest("softmaxCrossEntropy accumulates into stats and is deterministic", async (gpu) => {
  const rng = new Random(52);
  const n = 200;
  const logits = rng.uniformArray(n * 10, -3, 3);
  const labels = randomLabels(rng, n, 10);
  const z = Tensor.fromArray(gpu, logits, [n, 10]);
  const labelBuffer = gpu.allocate(n * 4, "labels");
  gpu.write(labelBuffer, labels);
  const stats = gpu.allocate(16, "stats");
  gpu.clear(stats);
  const g1 = softmaxCrossEntropy(z, labelBuffer, 1, stats);
  const once = new Uint32Array(await gpu.read(stats, 8));
  const g2 = softmaxCrossEntropy(z, labelBuffer, 1, stats);
  const twice = await gpu.read(stats, 8);
  assertEquals(new Uint32Array(twice, 4, 1)[0], 2 * once[1], "correct count accumulates");
  const single = new Float32Array(once.buffer, 0, 1)[0];
  assertEquals(new Float32Array(twice, 0, 1)[0], Math.fround(single + single), "loss sum accumulates");
  assertEquals(Array.from(await download(g1)), Array.from(await download(g2)), "bitwise identical gradients");
  // A second run from zero gives bitwise the same loss sum (fixed reduction order).
  gpu.clear(stats);
  softmaxCrossEntropy(z, labelBuffer, 1, stats).dispose();
  assertEquals(new Uint32Array(await gpu.read(stats, 4))[0], once[0], "bitwise identical loss sum");
  z.dispose();
  gpu.release(labelBuffer);
  gpu.release(stats);
});

gpuTest("softmaxCrossEntropy gradient matches central finite differences", async (gpu) => {
  const rng = new Random(53);
  const [n, classes, scale] = [6, 5, 1 / 6];
  const logits = rng.uniformArray(n * classes, -2, 2);
  const labels = randomLabels(rng, n, classes);
  const { grad } = await run(gpu, logits, labels, classes, scale);
  const loss = (z: Float64Array) =>
    scale * crossEntropyRef(z, labels, classes).losses.reduce((a, b) => a + b, 0);
  assertClose(
    grad,
    finiteDifferenceGrad(loss, Float64Array.from(logits)),
    { atol: 1e-6, rtol: 1e-4 },
    "dlogits",
  );
});

gpuTest("crossEntropyLoss is the mean like F.cross_entropy; labels are validated", async (gpu) => {
  const rng = new Random(54);
  const logits = rng.uniformArray(9 * 10, -5, 5);
  const labels = randomLabels(rng, 9, 10);
  const z = Tensor.fromArray(gpu, logits, [9, 10]);
  const before = gpu.memory.liveBuffers;
  const mean = crossEntropyRef(logits, labels, 10).losses.reduce((a, b) => a + b, 0) / 9;
  assertClose([await crossEntropyLoss(z, labels)], [mean], { atol: 1e-6, rtol: 1e-6 }, "mean loss");
  assertClose(
    [await crossEntropyLoss(z, Array.from(labels))],
    [mean],
    { atol: 1e-6, rtol: 1e-6 },
    "array labels",
  );
  assertEquals(gpu.memory.liveBuffers, before, "no leaks");
  const uniform = Tensor.zeros(gpu, [2, 10]);
  assertClose([await crossEntropyLoss(uniform, [3, 4])], [Math.log(10)], { atol: 1e-6, rtol: 0 }, "ln 10");
  uniform.dispose();
  await assertRejectsWith(
    () => crossEntropyLoss(z, [1, 2]),
    NinError,
    "expected 9 labels (one per image), got 2",
  );
  await assertRejectsWith(() => crossEntropyLoss(z, [...labels.slice(1), 10]), NinError, "label 8 is 10");
  const flat = z.reshape([90]);
  await assertRejectsWith(
    () => crossEntropyLoss(flat, labels),
    NinError,
    "expects logits [N, classes], got shape [90]",
  );
  flat.dispose();
  z.dispose();
  assertEquals(gpu.memory.liveBuffers, before - 1, "no leaks after errors");

  assertEquals(Array.from(validateLabels([0, 9, 3], 3, 10)), [0, 9, 3]);
  assertThrows(
    () => validateLabels([0, 1.5], 2, 10),
    NinError,
    "label 1 is 1.5; labels must be integers in [0, 10)",
  );
  assertThrows(() => validateLabels([-1], 1, 10), NinError, "label 0 is -1");
  assertThrows(() => validateLabels(new Int32Array(3), 4, 10), NinError, "expected 4 labels");
  const small = gpu.allocate(4, "labels");
  const stats = gpu.allocate(16, "stats");
  const big = Tensor.zeros(gpu, [8, 10]);
  assertThrows(() => softmaxCrossEntropy(big, small, 1, stats), NinError, "holds 4 labels, need 8");
  big.dispose();
  gpu.release(small);
  gpu.release(stats);
  await gpu.sync();
});
