import {
  assertClose,
  assertJsonEqual as assertEquals,
  assertThrowsWith as assertThrows,
  download,
  gpuTest,
  Tensor,
  withFlops,
} from "./util.ts";
import { AdaptiveAvgPool2d } from "../lib/layers/adaptive_avgpool2d.ts";
import { NinError } from "../lib/errors.ts";
import { Random } from "../lib/random.ts";
import {
  adaptiveAvgPool2dBackwardRef,
  adaptiveAvgPool2dForwardRef,
  adaptiveWindow,
} from "./reference/adaptive_avgpool2d.ts";
import { finiteDifferenceGrad } from "./reference/finite_diff.ts";
import { checkPoolBackward } from "./layer_checks.ts";

// [input shape, output size]: global pooling as in NiN, non-square, overlapping windows (7 -> 3, 5 -> 4),
// output larger than the input (3 -> 5), batch 1 and > 1, channel counts that are not multiples of 4.
const CASES: [number[], number | [number, number]][] = [
  [[1, 10, 5, 5], 1],
  [[3, 10, 5, 5], 1],
  [[2, 3, 7, 9], [3, 4]],
  [[2, 5, 5, 11], [4, 3]],
  [[1, 6, 3, 4], [5, 2]],
  [[2, 7, 13, 6], 2],
  [[1, 1, 1, 1], 1],
];

gpuTest("AdaptiveAvgPool2d forward and backward match the float64 reference", async (gpu) => {
  const rng = new Random(21);
  for (const [shape, outputSize] of CASES) {
    const what = `${JSON.stringify(shape)} -> ${JSON.stringify(outputSize)}`;
    const pool = new AdaptiveAvgPool2d(gpu, outputSize);
    const out = pool.outputSize;
    const xs = rng.uniformArray(shape.reduce((a, b) => a * b));
    const x = Tensor.fromArray(gpu, xs, shape);
    const { value: y, flops } = await withFlops(gpu, () => pool.forward(x));
    assertEquals(y.shape, [shape[0], shape[1], ...out], `${what} shape`);
    const area = (size: number, o: number) => {
      let total = 0;
      for (let i = 0; i < o; i++) total += adaptiveWindow(i, size, o)[1] - adaptiveWindow(i, size, o)[0];
      return total;
    };
    const windows = shape[0] * shape[1] * area(shape[2], out[0]) * area(shape[3], out[1]);
    assertEquals(flops, windows + y.size, `${what} forward FLOPs`);
    assertClose(
      await download(y),
      adaptiveAvgPool2dForwardRef(xs, shape, out),
      { atol: 1e-6, rtol: 1e-6 },
      `${what} forward`,
    );
    const dys = rng.uniformArray(shape[0] * shape[1] * out[0] * out[1]);
    await checkPoolBackward(gpu, pool, x, dys, (dys) => adaptiveAvgPool2dBackwardRef(dys, shape, out), what);
  }
});

gpuTest("AdaptiveAvgPool2d backward matches central finite differences", async (gpu) => {
  const rng = new Random(22);
  for (const [shape, outputSize] of [CASES[1], CASES[2], CASES[4]]) {
    const pool = new AdaptiveAvgPool2d(gpu, outputSize);
    const xs = rng.uniformArray(shape.reduce((a, b) => a * b));
    const x = Tensor.fromArray(gpu, xs, shape);
    const y = pool.forward(x);
    const dys = rng.uniformArray(y.size);
    const dy = Tensor.fromArray(gpu, dys, y.shape);
    const dx = await download(pool.backward(dy)!);
    const loss = (v: Float64Array) =>
      adaptiveAvgPool2dForwardRef(v, shape, pool.outputSize).reduce((acc, yi, i) => acc + yi * dys[i], 0);
    assertClose(
      dx,
      finiteDifferenceGrad(loss, Float64Array.from(xs)),
      { atol: 1e-6, rtol: 1e-5 },
      "gradient check",
    );
    for (const t of [x, y, dy]) t.dispose();
  }
});

gpuTest("AdaptiveAvgPool2d: no leaks, errors name the layer", async (gpu) => {
  const x = Tensor.fromArray(gpu, new Random(23).uniformArray(2 * 10 * 5 * 5), [2, 10, 5, 5]);
  const before = gpu.memory.liveBuffers;
  const pool = new AdaptiveAvgPool2d(gpu);
  const y = pool.forward(x);
  const dx = pool.backward(y);
  dx!.dispose();
  y.dispose();
  pool.eval().forward(x).dispose();
  assertEquals(gpu.memory.liveBuffers, before, "live buffers");
  assertThrows(() => pool.backward(x), NinError, "without a training-mode forward");
  x.dispose();
  await gpu.sync();
  assertThrows(
    () => pool.outputShape([10, 5, 5]),
    NinError,
    "AdaptiveAvgPool2d(output_size=(1, 1)) expects a 4-d",
  );
  assertThrows(() => new AdaptiveAvgPool2d(gpu, 0), NinError, "output size must be a positive integer");
  assertThrows(() => new AdaptiveAvgPool2d(gpu, [2, 1.5]), NinError, "output size");
  assertEquals(pool.outputShape([4, 10, 5, 5]), [4, 10, 1, 1]);
});
