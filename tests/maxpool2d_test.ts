import {
  assertClose,
  assertJsonEqual as assertEquals,
  assertThrowsWith as assertThrows,
  download,
  gpuTest,
  Tensor,
} from "./util.ts";
import { MaxPool2d } from "../lib/layers/maxpool2d.ts";
import { NinError } from "../lib/errors.ts";
import type { Gpu } from "../lib/gpu/device.ts";
import { Random } from "../lib/random.ts";
import { maxPool2dBackwardRef, maxPool2dForwardRef, type PoolGeometry } from "./reference/maxpool2d.ts";
import { finiteDifferenceGrad } from "./reference/finite_diff.ts";
import { checkMaxPool2dAgainstReference } from "./layer_checks.ts";

const GEOMETRIES: PoolGeometry[] = [
  { n: 1, c: 3, h: 7, w: 7, kernel: 3, stride: 2, padding: 0 },
  { n: 2, c: 5, h: 9, w: 11, kernel: 3, stride: 2, padding: 1 },
  { n: 3, c: 1, h: 8, w: 5, kernel: 2, stride: 3, padding: 0 }, // stride > kernel
  { n: 2, c: 6, h: 13, w: 10, kernel: 3, stride: 1, padding: 1 },
  { n: 1, c: 7, h: 12, w: 9, kernel: 5, stride: 2, padding: 2 },
  { n: 2, c: 3, h: 4, w: 6, kernel: 1, stride: 1, padding: 0 },
  { n: 2, c: 10, h: 27, w: 27, kernel: 3, stride: 2, padding: 0 }, // a NiN-like 27 -> 13 pooling
];

function poolOf(gpu: Gpu, g: PoolGeometry): MaxPool2d {
  return new MaxPool2d(gpu, g.kernel, g.stride, g.padding);
}

/** Distinct values (a shuffled grid 0.01 apart), so no window has a tie and small probes keep the argmax. */
function distinctValues(rng: Random, count: number): Float32Array {
  return Float32Array.from(rng.permutation(count), (k) => (k - count / 2) * 0.01);
}

gpuTest("MaxPool2d forward and backward match the float64 reference", async (gpu) => {
  const rng = new Random(11);
  for (const g of GEOMETRIES) {
    await checkMaxPool2dAgainstReference(gpu, g, rng, JSON.stringify(g));
  }
});

gpuTest("MaxPool2d ties: the first maximum of each window (row-major) gets the gradient", async (gpu) => {
  const rng = new Random(12);
  for (const g of [GEOMETRIES[1], GEOMETRIES[3], GEOMETRIES[4]]) {
    const pool = poolOf(gpu, g);
    const size = g.n * g.c * g.h * g.w;
    // All equal, then a plateau of two values so windows straddle ties of the maximum too.
    for (
      const xs of [
        new Float32Array(size).fill(0.5),
        Float32Array.from({ length: size }, (_, i) => i % 3 === 0 ? 1 : 0),
      ]
    ) {
      const x = Tensor.fromArray(gpu, xs, [g.n, g.c, g.h, g.w]);
      const y = pool.forward(x);
      const ref = maxPool2dForwardRef(xs, g);
      const dys = rng.uniformArray(ref.y.length);
      const dy = Tensor.fromArray(gpu, dys, y.shape);
      const dx = pool.backward(dy)!;
      assertClose(await download(y), ref.y, { atol: 0, rtol: 0 }, "tie forward");
      assertClose(
        await download(dx),
        maxPool2dBackwardRef(ref.argmax, dys, g),
        { atol: 1e-6, rtol: 1e-6 },
        "ties",
      );
      x.dispose();
      dy.dispose();
    }
  }
  // With no padding and stride = kernel, each window's gradient lands exactly on its top-left element.
  const pool = new MaxPool2d(gpu, 2);
  const x = Tensor.fromArray(gpu, new Float32Array(16).fill(3), [1, 1, 4, 4]);
  pool.forward(x).dispose();
  const dy = Tensor.fromArray(gpu, [1, 2, 3, 4], [1, 1, 2, 2]);
  const dx = await download(pool.backward(dy)!);
  assertEquals(Array.from(dx), [1, 0, 2, 0, 0, 0, 0, 0, 3, 0, 4, 0, 0, 0, 0, 0]);
  x.dispose();
  dy.dispose();
});

gpuTest("MaxPool2d backward matches central finite differences", async (gpu) => {
  const rng = new Random(13);
  for (const g of [GEOMETRIES[1], GEOMETRIES[2], GEOMETRIES[4]]) {
    const xs = distinctValues(rng, g.n * g.c * g.h * g.w);
    const pool = poolOf(gpu, g);
    const x = Tensor.fromArray(gpu, xs, [g.n, g.c, g.h, g.w]);
    const y = pool.forward(x);
    const dys = rng.uniformArray(y.size);
    const dy = Tensor.fromArray(gpu, dys, y.shape);
    const dx = await download(pool.backward(dy)!);
    const loss = (v: Float64Array) =>
      maxPool2dForwardRef(v, g).y.reduce((acc, yi, i) => acc + yi * dys[i], 0);
    const numeric = finiteDifferenceGrad(loss, Float64Array.from(xs), 1e-4);
    assertClose(dx, numeric, { atol: 1e-6, rtol: 1e-5 }, `finite differences ${JSON.stringify(g)}`);
    for (const t of [x, y, dy]) t.dispose();
  }
});

gpuTest("MaxPool2d propagates NaN like PyTorch", async (gpu) => {
  const x = Tensor.fromArray(gpu, [1, NaN, 3, 4, 5, 6, 7, 8, 9], [1, 1, 3, 3]);
  const y = await download(new MaxPool2d(gpu, 2, 1).eval().forward(x));
  x.dispose();
  assertEquals(Number.isNaN(y[0]) && Number.isNaN(y[1]), true, `windows with a NaN give NaN, got ${y}`);
  assertEquals(Array.from(y.slice(2)), [8, 9]);
});

gpuTest("MaxPool2d: eval mode saves nothing, training state is freed, errors name the layer", async (gpu) => {
  const x = Tensor.fromArray(gpu, new Random(14).uniformArray(2 * 3 * 9 * 9), [2, 3, 9, 9]);
  const before = gpu.memory;
  const pool = new MaxPool2d(gpu, 3, 2, 1);
  pool.eval().forward(x).dispose();
  assertEquals(gpu.memory.liveBuffers, before.liveBuffers);
  assertThrows(() => pool.backward(x), NinError, "without a training-mode forward");
  pool.train();
  const y = pool.forward(x);
  assertEquals(gpu.memory.liveBuffers, before.liveBuffers + 2, "output and argmax indices are live");
  pool.clearSaved();
  y.dispose();
  assertEquals(gpu.memory.liveBuffers, before.liveBuffers);
  const y2 = pool.forward(x);
  const dx = pool.backward(y2, false);
  assertEquals(dx, null);
  y2.dispose();
  assertEquals(gpu.memory.liveBuffers, before.liveBuffers);
  x.dispose();
  await gpu.sync();

  assertThrows(
    () => new MaxPool2d(gpu, 3, 2, 2),
    NinError,
    "padding must be at most half the kernel size (1)",
  );
  assertThrows(() => new MaxPool2d(gpu, 0), NinError, "kernel size");
  assertThrows(() => new MaxPool2d(gpu, 3, 1.5), NinError, "stride");
  assertThrows(
    () => new MaxPool2d(gpu, 3, 2).outputShape([1, 384, 2, 2]),
    NinError,
    "MaxPool2d(3, stride=2): input [1, 384, 2, 2] gives an empty output; needs H, W >= 3",
  );
  assertThrows(
    () => new MaxPool2d(gpu, 3, 2).outputShape([384, 5, 5]),
    NinError,
    "MaxPool2d(3, stride=2) expects",
  );
  assertEquals(new MaxPool2d(gpu, 3, 2, 1).outputShape([1, 1, 2, 2]), [1, 1, 1, 1]);
  assertEquals(new MaxPool2d(gpu, 3, 2).outputShape([1, 96, 54, 54]), [1, 96, 26, 26]);
});
