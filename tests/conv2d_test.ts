import { assertClose, assertThrowsWith, download, gpuTest, Tensor, withFlops } from "./util.ts";
import type { Gpu } from "../lib/gpu/device.ts";
import { Conv2d, convWeightBound } from "../lib/layers/conv2d.ts";
import { ReLU } from "../lib/layers/relu.ts";
import { NinError } from "../lib/errors.ts";
import { Random } from "../lib/random.ts";
import {
  conv2dBackwardBiasRef,
  conv2dBackwardInputRef,
  conv2dBackwardWeightRef,
  conv2dForwardRef,
  type ConvCase,
  convCase,
  convOutputShape,
} from "./reference/conv2d.ts";
import { finiteDifferenceGrad } from "./reference/finite_diff.ts";
import { checkConv2dAgainstReference, computesInputGrad } from "./layer_checks.ts";

function makeConv(gpu: Gpu, g: ConvCase, seed: number): Conv2d {
  return new Conv2d(gpu, g.input[1], g.outChannels, g.kernel, g.stride, g.padding, {
    rng: new Random(seed),
  });
}

// Odd and non-square sizes, channel counts that are not multiples of 4, 1x1, stride > kernel, padding > 0,
// batch 1 and > 1, the NiN first layer's 11/4/0, blocks of channels and positions beyond one workgroup, and
// input channel counts that select each input-gradient variant (blocks of 96: 131, 70...; of 128: 250).
const CONFIGS: ConvCase[] = [
  convCase([2, 3, 7, 5], 5, 3, 1, 1),
  convCase([1, 1, 23, 25], 6, 11, 4, 0),
  convCase([3, 5, 6, 6], 3, 1, 1, 0),
  convCase([2, 3, 9, 8], 4, 2, 3, 1),
  convCase([2, 4, 8, 9], 9, 3, 2, 2),
  convCase([1, 7, 6, 5], 2, 5, 1, 2),
  convCase([2, 70, 5, 4], 67, 3, 1, 1),
  convCase([4, 9, 3, 3], 17, 1, 1, 0),
  convCase([1, 2, 1, 1], 3, 3, 1, 1),
  convCase([2, 131, 3, 4], 129, 3, 1, 1),
  convCase([2, 250, 3, 2], 7, 3, 2, 1),
];

// float32 sums of up to ~600 products of values in [-1, 1]: errors stay far below 1e-4 relative.
const TOL = { atol: 1e-4, rtol: 1e-4 };

gpuTest("Conv2d forward and gradients match the float64 reference", async (gpu) => {
  const rng = new Random(7);
  for (const g of CONFIGS) {
    await checkConv2dAgainstReference(gpu, g, rng, { seed: 3, what: `Conv2d ${JSON.stringify(g)}` });
  }
});

gpuTest("Conv2d gradients agree with central finite differences of sum(dy * conv(x))", async (gpu) => {
  const g = convCase([2, 2, 5, 4], 3, 3, 2, 1);
  const rng = new Random(11);
  const xs = Float64Array.from(rng.uniformArray(shapeSize(g.input)));
  const ws = Float64Array.from(rng.uniformArray(g.outChannels * g.input[1] * g.kernel * g.kernel));
  const bs = Float64Array.from(rng.uniformArray(g.outChannels));
  const dys = Float64Array.from(rng.uniformArray(shapeSize(convOutputShape(g))));
  const loss = (x: Float64Array, w: Float64Array, b: Float64Array) =>
    conv2dForwardRef(g, x, w, b).reduce((sum, v, i) => sum + v * dys[i], 0);
  const eps = 1e-5;
  // The loss is linear in each argument, so central differences are exact up to rounding (1e-9 or so).
  const fdTol = { atol: 1e-7, rtol: 1e-7 };
  const fdX = finiteDifferenceGrad((x) => loss(x, ws, bs), xs, eps);
  const fdW = finiteDifferenceGrad((w) => loss(xs, w, bs), ws, eps);
  const fdB = finiteDifferenceGrad((b) => loss(xs, ws, b), bs, eps);
  assertClose(
    conv2dBackwardInputRef(g, dys, ws),
    fdX,
    fdTol,
    "reference input gradient vs finite differences",
  );
  assertClose(
    conv2dBackwardWeightRef(g, xs, dys),
    fdW,
    fdTol,
    "reference weight gradient vs finite differences",
  );
  assertClose(conv2dBackwardBiasRef(g, dys), fdB, fdTol, "reference bias gradient vs finite differences");

  const conv = makeConv(gpu, g, 0);
  gpu.write(conv.weight.value.buffer, Float32Array.from(ws));
  gpu.write(conv.bias.value.buffer, Float32Array.from(bs));
  const x = Tensor.fromArray(gpu, xs, g.input);
  const y = conv.forward(x);
  const dy = Tensor.fromArray(gpu, dys, y.shape);
  // The gpu family has no strided input gradient (checkConv2dAgainstReference checks that it says so).
  const dx = conv.backward(dy, computesInputGrad(gpu, g));
  // float32 inputs and sums against float64 differences.
  const gpuTol = { atol: 1e-5, rtol: 1e-5 };
  if (dx) assertClose(await download(dx), fdX, gpuTol, "GPU input gradient vs finite differences");
  assertClose(await conv.weight.grad!.toArray(), fdW, gpuTol, "GPU weight gradient vs finite differences");
  assertClose(await conv.bias.grad!.toArray(), fdB, gpuTol, "GPU bias gradient vs finite differences");
  for (const t of [x, y, dy]) t.dispose();
  conv.dispose();
});

gpuTest("Conv2d with fuseRelu equals Conv2d followed by ReLU", async (gpu) => {
  const rng = new Random(5);
  for (const g of [convCase([2, 3, 7, 6], 70, 3, 1, 1), convCase([3, 66, 4, 5], 5, 1, 1, 0)]) {
    const what = `fused ${JSON.stringify(g)}`;
    const fused = makeConv(gpu, g, 1);
    const plain = makeConv(gpu, g, 1);
    const relu = new ReLU(gpu);
    const x = Tensor.fromArray(gpu, rng.uniformArray(shapeSize(g.input)), g.input);
    const yFused = fused.forwardRelu(x);
    const z = plain.forward(x);
    const yPlain = relu.forward(z);
    const yData = await yFused.toArray();
    assertClose(yData, await yPlain.toArray(), { atol: 0, rtol: 0 }, `${what} forward`);
    if (!yData.some((v) => v === 0) || !yData.some((v) => v > 0)) {
      throw new Error(`${what}: ReLU never clipped`);
    }
    const dy = Tensor.fromArray(gpu, rng.uniformArray(yFused.size), yFused.shape);
    const dxFused = fused.backward(dy)!;
    const dz = relu.backward(dy)!;
    const dxPlain = plain.backward(dz)!;
    assertClose(await download(dxFused), await download(dxPlain), TOL, `${what} input gradient`);
    assertClose(
      await fused.weight.grad!.toArray(),
      await plain.weight.grad!.toArray(),
      TOL,
      `${what} weight gradient`,
    );
    assertClose(
      await fused.bias.grad!.toArray(),
      await plain.bias.grad!.toArray(),
      TOL,
      `${what} bias gradient`,
    );
    for (const t of [x, yFused, z, yPlain, dy, dz]) t.dispose();
    fused.dispose();
    plain.dispose();
  }
});

gpuTest("Conv2d backward accumulates parameter gradients and can skip the input gradient", async (gpu) => {
  const g = convCase([2, 3, 6, 5], 4, 3, 1, 1);
  const rng = new Random(9);
  const conv = makeConv(gpu, g, 2);
  const x = Tensor.fromArray(gpu, rng.uniformArray(shapeSize(g.input)), g.input);
  const y = conv.forward(x);
  const dy = Tensor.fromArray(gpu, rng.uniformArray(y.size), y.shape);
  (conv.backward(dy) as Tensor).dispose();
  const dw1 = await conv.weight.grad!.toArray();
  const db1 = await conv.bias.grad!.toArray();
  conv.forward(x).dispose();
  const { value: skipped, flops } = await withFlops(gpu, () => conv.backward(dy, false));
  if (skipped !== null) throw new Error("backward(dy, false) must return null");
  // Only the weight gradient (2 per MAC) and the bias gradient (one add per element) were dispatched.
  const macs = y.size * g.input[1] * g.kernel * g.kernel;
  if (flops !== 2 * macs + y.size) {
    throw new Error(
      `unexpected FLOP count ${flops}, expected ${2 * macs + y.size}`,
    );
  }
  assertClose(
    await conv.weight.grad!.toArray(),
    dw1.map((v) => 2 * v),
    TOL,
    "weight gradient after two passes",
  );
  assertClose(await conv.bias.grad!.toArray(), db1.map((v) => 2 * v), TOL, "bias gradient after two passes");
  for (const t of [x, y, dy]) t.dispose();
  conv.dispose();
});

gpuTest("Conv2d initialises like d2l from its generator", async (gpu) => {
  const conv = new Conv2d(gpu, 3, 5, 2, 1, 0, { rng: new Random(42) });
  const rng = new Random(42);
  const weightBound = Math.sqrt(6 / (3 * 4 + 5 * 4));
  const expectedW = rng.uniformArray(5 * 3 * 4, -weightBound, weightBound);
  const expectedB = rng.uniformArray(5, -1 / Math.sqrt(12), 1 / Math.sqrt(12));
  assertClose(await conv.weight.value.toArray(), expectedW, { atol: 0, rtol: 0 }, "weights");
  assertClose(await conv.bias.value.toArray(), expectedB, { atol: 0, rtol: 0 }, "biases");
  if (conv.weight.value.shape.join() !== "5,3,2,2") {
    throw new Error(`weight shape ${conv.weight.value.shape}`);
  }
  // Without a generator: the same draws from the documented default, new Random(0).
  const defaults = new Conv2d(gpu, 3, 5, 2);
  const seed0 = new Random(0);
  const defaultW = seed0.uniformArray(5 * 3 * 4, -weightBound, weightBound);
  const defaultB = seed0.uniformArray(5, -1 / Math.sqrt(12), 1 / Math.sqrt(12));
  assertClose(await defaults.weight.value.toArray(), defaultW, { atol: 0, rtol: 0 }, "default weights");
  assertClose(await defaults.bias.value.toArray(), defaultB, { atol: 0, rtol: 0 }, "default biases");
  conv.dispose();
  defaults.dispose();
});

gpuTest(
  "Conv2d kaiming init is He-uniform: weights within sqrt(6 / fan_in), biases unchanged",
  async (gpu) => {
    // fan_in = 96 * 3 * 3 = 864, fan_out = 64 * 9: bound sqrt(6 / 864) = 0.0833 (Xavier's would be 0.0645).
    const kaiming = new Conv2d(gpu, 96, 64, 3, 1, 1, { rng: new Random(5), init: "kaiming" });
    const xavier = new Conv2d(gpu, 96, 64, 3, 1, 1, { rng: new Random(5) });
    const bound = Math.sqrt(6 / 864);
    if (convWeightBound("kaiming", 864, 576) !== bound) {
      throw new Error(
        "kaiming bound is not sqrt(6 / fan_in)",
      );
    }
    const weights = await kaiming.weight.value.toArray();
    const maxAbs = weights.reduce((m, w) => Math.max(m, Math.abs(w)), 0);
    // 55,296 uniform draws: the largest is within 0.1% of the bound with overwhelming probability.
    if (!(maxAbs <= bound && maxAbs > 0.999 * bound)) {
      throw new Error(`max |w| ${maxAbs} should be just below the bound ${bound}`);
    }
    // Same draws, scaled: Kaiming is Xavier times sqrt((fan_in + fan_out) / fan_in).
    const ratio = bound / Math.sqrt(6 / (864 + 576));
    const xavierWeights = await xavier.weight.value.toArray();
    assertClose(weights, xavierWeights.map((w) => w * ratio), { atol: 1e-7, rtol: 1e-5 }, "scaled weights");
    assertClose(
      await kaiming.bias.value.toArray(),
      await xavier.bias.value.toArray(),
      { atol: 0, rtol: 0 },
      "biases",
    );
    assertThrowsWith(
      () => new Conv2d(gpu, 3, 8, 3, 1, 0, { init: "he" as "kaiming" }),
      NinError,
      "init",
      "xavier, kaiming",
    );
    kaiming.dispose();
    xavier.dispose();
  },
);

gpuTest("Conv2d rejects bad shapes and arguments with NinError", (gpu) => {
  const conv = new Conv2d(gpu, 3, 8, 5, 2, 1);
  assertThrowsWith(() => conv.outputShape([1, 3, 8]), NinError, "Conv2d", "4-d", "[1, 3, 8]");
  assertThrowsWith(
    () => conv.outputShape([1, 4, 9, 9]),
    NinError,
    "Conv2d",
    "3 input channels",
    "got 4",
    "[1, 4, 9, 9]",
  );
  assertThrowsWith(
    () => conv.outputShape([1, 3, 2, 9]),
    NinError,
    "Conv2d",
    "empty",
    "[1, 3, 2, 9]",
    "at least 3",
  );
  const x = Tensor.zeros(gpu, [1, 4, 9, 9]);
  assertThrowsWith(() => conv.forward(x), NinError, "Conv2d", "expects 3 input channels", "got 4");
  x.dispose();
  const good = Tensor.zeros(gpu, [1, 3, 9, 9]);
  const y = conv.forward(good);
  const wrong = Tensor.zeros(gpu, [1, 8, 5, 4]);
  assertThrowsWith(() => conv.backward(wrong), NinError, "Conv2d", "[1, 8, 4, 4]", "[1, 8, 5, 4]");
  conv.backward(y, false);
  assertThrowsWith(() => conv.backward(y), NinError, "Conv2d", "without a training-mode forward");
  assertThrowsWith(() => new Conv2d(gpu, 3, 8, 0), NinError, "Conv2d", "kernelSize", "got 0");
  assertThrowsWith(() => new Conv2d(gpu, 3, 8, 3, 1, -1), NinError, "Conv2d", "padding", "got -1");
  for (const t of [good, y, wrong]) t.dispose();
  conv.dispose();
  if (conv.outputShape([2, 3, 9, 7]).join() !== "2,8,4,3") throw new Error("outputShape");
});

gpuTest("Conv2d forward and backward leak no buffers", async (gpu) => {
  for (const fuseRelu of [false, true]) {
    const conv = new Conv2d(gpu, 3, 4, 3, 1, 1);
    const x = Tensor.zeros(gpu, [2, 3, 5, 5]);
    const dy = Tensor.zeros(gpu, [2, 4, 5, 5]);
    const pass = () => {
      const y = fuseRelu ? conv.forwardRelu(x) : conv.forward(x);
      conv.backward(dy)!.dispose();
      y.dispose();
    };
    pass(); // allocates the parameter gradients
    const before = gpu.memory.liveBuffers;
    pass();
    conv.eval().forward(x).dispose();
    await gpu.sync();
    if (gpu.memory.liveBuffers !== before) {
      throw new Error(`live buffers went from ${before} to ${gpu.memory.liveBuffers} (fuseRelu ${fuseRelu})`);
    }
    x.dispose();
    dy.dispose();
    conv.dispose();
  }
});

function shapeSize(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
