import {
  assertClose,
  assertJsonEqual as assertEquals,
  assertThrowsWith as assertThrows,
  download,
  gpuTest,
  Tensor,
  withFlops,
} from "./util.ts";
import { Dropout } from "../lib/layers/dropout.ts";
import { NinError } from "../lib/errors.ts";
import { Random } from "../lib/random.ts";
import { dropoutApplyRef, dropoutMaskRef } from "./reference/dropout.ts";
import { finiteDifferenceGrad } from "./reference/finite_diff.ts";

gpuTest("Dropout forward and backward use the seeded mask of the reference hash", async (gpu) => {
  const rng = new Random(41);
  for (
    const [shape, p, seed] of [[[2, 384, 5, 5], 0.5, 7], [[3, 7, 3], 0.3, 123], [
      [1, 13],
      0.9,
      0xffffffff,
    ]] as const
  ) {
    const size = shape.reduce((a: number, b: number) => a * b, 1);
    const dropout = new Dropout(gpu, p, { seed });
    const xs = rng.uniformArray(size);
    const x = Tensor.fromArray(gpu, xs, shape);
    const forward = await withFlops(
      gpu,
      () => dropout.forward(x, { training: true, step: 5, sampleOffset: 0 }),
    );
    const y = forward.value;
    const mask = dropoutMaskRef(seed, 5, p, 0, size);
    assertClose(await download(y), dropoutApplyRef(xs, mask, p), { atol: 0, rtol: 1e-6 }, `forward p=${p}`);
    const dys = rng.uniformArray(size);
    const dy = Tensor.fromArray(gpu, dys, shape);
    const backward = await withFlops(gpu, () => dropout.backward(dy)!);
    assertClose(
      await download(backward.value),
      dropoutApplyRef(dys, mask, p),
      { atol: 0, rtol: 1e-6 },
      "backward",
    );
    assertEquals(forward.flops + backward.flops, 2 * size, "one multiply per element each way");
    x.dispose();
    dy.dispose();
  }
});

gpuTest(
  "Dropout: masks stay right once its step uniforms are rewritten in place (a full uniform cache)",
  async (gpu) => {
    // Each step's uniform is new; past the cache's size (512) the least recently used ones are rewritten
    // between submits. 700 steps, each submitted on its own, all read at the end in one map.
    const [p, seed, size, steps] = [0.5, 11, 13, 700];
    const dropout = new Dropout(gpu, p, { seed });
    const xs = new Random(43).uniformArray(size);
    const x = Tensor.fromArray(gpu, xs, [1, size]);
    const outputs: Tensor[] = [];
    for (let step = 0; step < steps; step++) {
      outputs.push(dropout.forward(x, { training: true, step: 10_000 + step, sampleOffset: 0 }));
      gpu.flush();
    }
    const all = new Float32Array(
      await gpu.readParts(outputs.map((t) => ({ buffer: t.buffer, bytes: 4 * size }))),
    );
    for (let step = 0; step < steps; step++) {
      const got = all.subarray(size * step, size * (step + 1));
      const mask = dropoutMaskRef(seed, 10_000 + step, p, 0, size);
      assertClose(got, dropoutApplyRef(xs, mask, p), { atol: 0, rtol: 1e-6 }, `step ${10_000 + step}`);
    }
    for (const t of [x, ...outputs]) t.dispose();
  },
);

gpuTest("Dropout: a batch split into micro-batches gets the whole batch's mask", async (gpu) => {
  const shape = [7, 3, 4, 5];
  const perSample = 60;
  const xs = new Random(42).uniformArray(7 * perSample, 0.5, 1.5);
  const whole = new Dropout(gpu, 0.5, { seed: 9 });
  const x = Tensor.fromArray(gpu, xs, shape);
  const expected = await download(whole.forward(x, { training: true, step: 3, sampleOffset: 0 }));
  const gradExpected = await download(whole.backward(x)!);
  const split = new Dropout(gpu, 0.5, { seed: 9 });
  const parts: number[] = [];
  const gradParts: number[] = [];
  for (const [start, count] of [[0, 3], [3, 1], [4, 3]]) {
    const chunk = Tensor.fromArray(gpu, xs.subarray(start * perSample, (start + count) * perSample), [
      count,
      3,
      4,
      5,
    ]);
    parts.push(...await download(split.forward(chunk, { training: true, step: 3, sampleOffset: start })));
    gradParts.push(...await download(split.backward(chunk)!));
    chunk.dispose();
  }
  assertClose(parts, expected, { atol: 0, rtol: 0 }, "micro-batch forward");
  assertClose(gradParts, gradExpected, { atol: 0, rtol: 0 }, "micro-batch backward");
  x.dispose();
});

gpuTest("Dropout keeps about 1 - p of the elements, and a new step draws a new mask", async (gpu) => {
  const size = 1 << 20;
  const x = Tensor.fromArray(gpu, new Float32Array(size).fill(1), [64, size / 64]);
  for (const p of [0.1, 0.5, 0.9]) {
    const dropout = new Dropout(gpu, p, { seed: 1 });
    const first = await download(dropout.forward(x, { training: true, step: 0, sampleOffset: 0 }));
    const second = await download(dropout.forward(x, { training: true, step: 1, sampleOffset: 0 }));
    let kept = 0;
    let agree = 0;
    for (let i = 0; i < size; i++) {
      kept += first[i] !== 0 ? 1 : 0;
      agree += (first[i] !== 0) === (second[i] !== 0) ? 1 : 0;
      if (first[i] !== 0 && Math.abs(first[i] - 1 / (1 - p)) > 1e-6) {
        throw new Error(`kept value ${first[i]}`);
      }
    }
    // Five standard deviations of a binomial proportion: fails by chance with probability < 1e-6.
    const tol = 5 * Math.sqrt((p * (1 - p)) / size);
    const keep = kept / size;
    if (Math.abs(keep - (1 - p)) > tol) throw new Error(`p=${p}: kept ${keep}, expected ${1 - p} +- ${tol}`);
    const independent = p * p + (1 - p) * (1 - p);
    if (Math.abs(agree / size - independent) > 2 * tol) {
      throw new Error(
        `p=${p}: consecutive masks agree on ${agree / size}, independent masks would on ${independent}`,
      );
    }
  }
  x.dispose();
});

gpuTest("Dropout: reproducible from the seed, different seeds differ", async (gpu) => {
  const xs = new Random(43).uniformArray(4 * 100, 0.5, 1);
  const x = Tensor.fromArray(gpu, xs, [4, 100]);
  const run = async (seed: number) => await download(new Dropout(gpu, 0.5, { seed }).forward(x));
  const a = await run(77);
  assertClose(await run(77), a, { atol: 0, rtol: 0 }, "same seed");
  const b = await run(78);
  const differing = a.filter((v, i) => (v === 0) !== (b[i] === 0)).length;
  if (differing < 100) throw new Error(`seeds 77 and 78 differ in only ${differing} of 400 mask bits`);
  x.dispose();
});

gpuTest("Dropout backward matches central finite differences", async (gpu) => {
  const rng = new Random(44);
  const shape = [3, 5, 2];
  const xs = rng.uniformArray(30);
  const dys = rng.uniformArray(30);
  const dropout = new Dropout(gpu, 0.4, { seed: 2 });
  const x = Tensor.fromArray(gpu, xs, shape);
  const dy = Tensor.fromArray(gpu, dys, shape);
  dropout.forward(x).dispose();
  const dx = await download(dropout.backward(dy)!);
  const mask = dropoutMaskRef(2, 0, 0.4, 0, 30);
  const loss = (v: Float64Array) =>
    dropoutApplyRef(v, mask, 0.4).reduce((acc, yi, i) => acc + yi * dys[i], 0);
  assertClose(
    dx,
    finiteDifferenceGrad(loss, Float64Array.from(xs)),
    { atol: 1e-6, rtol: 1e-5 },
    "gradient check",
  );
  x.dispose();
  dy.dispose();
});

gpuTest("Dropout: eval mode and p = 0 are identity views; errors and ownership", async (gpu) => {
  const xs = new Random(45).uniformArray(24);
  const x = Tensor.fromArray(gpu, xs, [2, 12]);
  const before = gpu.memory.liveBuffers;
  const dropout = new Dropout(gpu, 0.5).eval();
  const y = dropout.forward(x);
  assertEquals(gpu.memory.liveBuffers, before, "eval forward is a view, no new buffer");
  assertClose(await download(y), xs, { atol: 0, rtol: 0 }, "eval identity");
  assertThrows(() => dropout.backward(x), NinError, "without a training-mode forward");

  const none = new Dropout(gpu, 0);
  const z = none.forward(x);
  assertEquals(gpu.memory.liveBuffers, before, "p = 0 is a view");
  assertClose(await z.toArray(), xs, { atol: 0, rtol: 0 }, "p = 0 identity");
  const dz = none.backward(z)!;
  z.dispose();
  assertClose(await download(dz), xs, { atol: 0, rtol: 0 }, "p = 0 backward identity");

  const trained = new Dropout(gpu, 0.5);
  trained.forward(x).dispose();
  assertEquals(trained.backward(x, false), null);
  trained.forward(x).dispose();
  const wrong = Tensor.zeros(gpu, [3, 8]);
  assertThrows(() => trained.backward(wrong), NinError, "gradient shape [3, 8] != input shape [2, 12]");
  wrong.dispose();
  assertEquals(gpu.memory.liveBuffers, before, "no leaks");
  x.dispose();
  await gpu.sync();

  for (const p of [1, -0.1, NaN, 1.5]) {
    assertThrows(() => new Dropout(gpu, p), NinError, "p must be in [0, 1)");
  }
  assertThrows(() => new Dropout(gpu, 0.5, { seed: -1 }), NinError, "seed");
});
