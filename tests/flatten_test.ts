import {
  assertClose,
  assertJsonEqual as assertEquals,
  assertThrowsWith as assertThrows,
  download,
  gpuTest,
  Tensor,
  withFlops,
} from "./util.ts";
import { Flatten } from "../lib/layers/flatten.ts";
import { NinError } from "../lib/errors.ts";
import { Random } from "../lib/random.ts";

gpuTest("Flatten is a reshape view forward and backward", async (gpu) => {
  const rng = new Random(31);
  for (const shape of [[1, 10, 1, 1], [3, 5, 2, 7], [2, 9]]) {
    const size = shape.reduce((a, b) => a * b);
    const xs = rng.uniformArray(size);
    const x = Tensor.fromArray(gpu, xs, shape);
    const before = gpu.memory.liveBuffers;
    const flatten = new Flatten(gpu);
    const forward = await withFlops(gpu, () => flatten.forward(x));
    const y = forward.value;
    assertEquals(y.shape, [shape[0], size / shape[0]], "flattened shape");
    assertEquals(gpu.memory.liveBuffers, before, "forward allocates nothing (a view)");
    assertClose(await y.toArray(), xs, { atol: 0, rtol: 0 }, "flattened data");
    const dys = rng.uniformArray(size);
    const dy = Tensor.fromArray(gpu, dys, y.shape);
    const backward = await withFlops(gpu, () => flatten.backward(dy)!);
    const dx = backward.value;
    assertEquals(dx.shape, shape, "gradient shape");
    dy.dispose(); // the view keeps the data alive
    assertClose(await download(dx), dys, { atol: 0, rtol: 0 }, "gradient data");
    assertEquals(forward.flops + backward.flops, 0, "no kernel runs");
    x.dispose();
    assertClose(await download(y), xs, { atol: 0, rtol: 0 }, "view outlives its source tensor object");
    assertEquals(gpu.memory.liveBuffers, before - 1, "all buffers released");
  }
});

gpuTest("Flatten validates its input and its protocol", async (gpu) => {
  const flatten = new Flatten(gpu);
  assertThrows(() => flatten.outputShape([7]), NinError, "Flatten expects at least a 2-d input");
  const x = Tensor.zeros(gpu, [2, 3, 4]);
  assertThrows(() => flatten.backward(x), NinError, "without a training-mode forward");
  const y = flatten.forward(x);
  const wrong = Tensor.zeros(gpu, [2, 11]);
  assertThrows(() => flatten.backward(wrong), NinError, "gradient shape [2, 11] != output shape [2, 12]");
  flatten.forward(x).dispose();
  assertEquals(flatten.backward(y, false), null);
  flatten.eval().forward(x).dispose();
  assertThrows(() => flatten.backward(y), NinError, "without a training-mode forward");
  for (const t of [x, y, wrong]) t.dispose();
  await gpu.sync();
});
