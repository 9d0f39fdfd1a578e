import { assertClose, download, gpuTest, Tensor } from "./util.ts";
import { ReLU } from "../lib/layers/relu.ts";
import { Random } from "../lib/random.ts";
import { reluBackwardRef, reluForwardRef } from "./reference/relu.ts";

gpuTest("ReLU forward and backward match the CPU reference", async (gpu) => {
  const rng = new Random(1);
  for (const shape of [[1], [3, 5, 7], [2, 3, 17, 13], [70001]]) {
    const n = shape.reduce((a, b) => a * b);
    const xs = rng.uniformArray(n);
    const dys = rng.uniformArray(n);
    const relu = new ReLU(gpu);
    const x = Tensor.fromArray(gpu, xs, shape);
    const y = relu.forward(x);
    const dy = Tensor.fromArray(gpu, dys, shape);
    const yData = await y.toArray();
    assertClose(yData, reluForwardRef(xs), { atol: 0, rtol: 0 }, `relu forward ${shape}`);
    const dx = relu.backward(dy)!;
    assertClose(
      await download(dx),
      reluBackwardRef(yData, dys),
      { atol: 0, rtol: 0 },
      `relu backward ${shape}`,
    );
    for (const t of [x, y, dy]) t.dispose();
  }
  const before = gpu.memory.liveBuffers;
  new ReLU(gpu).eval().forward(Tensor.fromArray(gpu, [1], [1])).dispose();
  if (gpu.memory.liveBuffers !== before + 1) throw new Error("expected exactly the input to stay live");
});
