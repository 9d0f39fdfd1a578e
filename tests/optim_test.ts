import {
  assertClose,
  assertJsonEqual as assertEquals,
  assertThrowsWith as assertThrows,
  gpuTest,
  Tensor,
  withFlops,
} from "./util.ts";
import { SGD, type SGDOptions } from "../lib/optim.ts";
import { Parameter } from "../lib/module.ts";
import type { Gpu } from "../lib/gpu/device.ts";
import { NinError } from "../lib/errors.ts";
import { Random } from "../lib/random.ts";
import { sgdStepRef } from "./reference/sgd.ts";

const SHAPES = [[7, 3, 3, 3], [7], [5, 11]];
const STEPS = 4;

/** Runs `STEPS` GPU steps with fresh random gradients each step and checks every weight after each step. */
async function checkAgainstReference(gpu: Gpu, options: SGDOptions, seed: number): Promise<void> {
  const rng = new Random(seed);
  const what = JSON.stringify(options);
  const weights = SHAPES.map((s) => Float64Array.from(rng.uniformArray(s.reduce((a, b) => a * b))));
  const params = SHAPES.map((s, i) => new Parameter(Tensor.fromArray(gpu, weights[i], s)));
  const opt = new SGD(params, options);
  const ref = {
    lr: options.lr,
    momentum: options.momentum ?? 0,
    weightDecay: options.weightDecay ?? 0,
    dampening: options.dampening ?? 0,
    nesterov: options.nesterov ?? false,
  };
  const buffers: (Float64Array | null)[] = SHAPES.map(() => null);
  for (let step = 0; step < STEPS; step++) {
    opt.zeroGrad();
    params.forEach((p, i) => {
      // Gradients are float32 on the GPU; the reference uses the same rounded values.
      const grad = rng.uniformArray(p.value.size);
      p.grad = Tensor.fromArray(gpu, grad, p.value.shape);
      buffers[i] = sgdStepRef(weights[i], grad, buffers[i], ref);
    });
    opt.step();
    for (let i = 0; i < params.length; i++) {
      assertClose(
        await params[i].value.toArray(),
        weights[i],
        { atol: 1e-6, rtol: 1e-5 },
        `${what} step ${step}`,
      );
    }
  }
  assertEquals(opt.stepCount, STEPS, "step count");
  const state = opt.state();
  assertEquals(state.length, ref.momentum === 0 ? 0 : params.length, "momentum buffers");
  for (let i = 0; i < state.length; i++) {
    assertClose(await state[i].toArray(), buffers[i]!, { atol: 1e-6, rtol: 1e-5 }, `${what} momentum buffer`);
  }
  opt.dispose();
  for (const p of params) p.dispose();
}

gpuTest("SGD matches torch.optim.SGD's formulas over several steps", async (gpu) => {
  const before = gpu.memory.liveBuffers;
  await checkAgainstReference(gpu, { lr: 0.1 }, 61);
  await checkAgainstReference(gpu, { lr: 0.05, momentum: 0.9 }, 62);
  await checkAgainstReference(gpu, { lr: 0.1, weightDecay: 1e-2 }, 63);
  await checkAgainstReference(gpu, { lr: 0.02, momentum: 0.8, weightDecay: 5e-3, nesterov: true }, 64);
  await checkAgainstReference(gpu, { lr: 0.3, momentum: 0.5, dampening: 0.3, weightDecay: 1e-3 }, 65);
  assertEquals(gpu.memory.liveBuffers, before, "no leaks");
});

gpuTest("SGD: hand-computed momentum steps, skipped parameters, FLOPs, zeroGrad", async (gpu) => {
  const p = new Parameter(Tensor.fromArray(gpu, [1, -2], [2]));
  const idle = new Parameter(Tensor.fromArray(gpu, [5], [1]));
  const opt = new SGD([p, idle], { lr: 0.5, momentum: 0.5, weightDecay: 0.5 });
  p.grad = Tensor.fromArray(gpu, [1, 1], [2]);
  const { flops } = await withFlops(gpu, () => opt.step());
  // g = 1 + 0.5 * w = [1.5, 0]; buf = g; w = [1 - 0.75, -2 - 0] = [0.25, -2].
  assertClose(await p.value.toArray(), [0.25, -2], { atol: 0, rtol: 0 }, "step 1");
  assertEquals(flops, 2 * (2 + 2), "FLOPs of a first momentum step with decay");
  opt.step();
  // g = 1 + 0.5 * w = [1.125, 0]; buf = 0.5 * [1.5, 0] + g = [1.875, 0]; w = [0.25 - 0.9375, -2].
  assertClose(await p.value.toArray(), [-0.6875, -2], { atol: 0, rtol: 0 }, "step 2");
  assertClose(
    await idle.value.toArray(),
    [5],
    { atol: 0, rtol: 0 },
    "a parameter without gradient is untouched",
  );
  opt.zeroGrad();
  assertEquals(p.grad, null, "zeroGrad frees gradients (set_to_none)");
  opt.step();
  assertClose(await p.value.toArray(), [-0.6875, -2], { atol: 0, rtol: 0 }, "no gradient, no update");
  assertEquals(opt.stepCount, 3, "stepCount");
  // A new learning rate applies from the next step: g = 1 + 0.5 * w = [0.65625, 0];
  // buf = 0.5 * [1.875, 0] + g = [1.59375, 0]; w = [-0.6875 - 0.25 * 1.59375, -2].
  opt.lr = 0.25;
  p.grad = Tensor.fromArray(gpu, [1, 1], [2]);
  opt.step();
  assertClose(await p.value.toArray(), [-1.0859375, -2], { atol: 0, rtol: 0 }, "step 4 with lr 0.25");
  assertThrows(() => (opt.lr = 0), NinError, "lr must be a positive finite number");
  opt.dispose();
  assertThrows(() => opt.step(), NinError, "after dispose");
  p.dispose();
  idle.dispose();
});

gpuTest("SGD state round-trips through loadState, continuing exactly", async (gpu) => {
  const rng = new Random(66);
  const shapes = [[4, 3], [4]];
  const init = shapes.map((s) => rng.uniformArray(s.reduce((a, b) => a * b)));
  const grads = [0, 1, 2].map(() => shapes.map((s) => rng.uniformArray(s.reduce((a, b) => a * b))));
  const options = { lr: 0.1, momentum: 0.9, dampening: 0.1 };
  const make = () => shapes.map((s, i) => new Parameter(Tensor.fromArray(gpu, init[i], s)));
  const setGrads = (params: Parameter[], step: number) =>
    params.forEach((p, i) => {
      p.grad?.dispose();
      p.grad = Tensor.fromArray(gpu, grads[step][i], shapes[i]);
    });
  // Uninterrupted: three steps.
  const a = make();
  const optA = new SGD(a, options);
  for (let s = 0; s < 3; s++) {
    setGrads(a, s);
    optA.step();
  }
  // Interrupted after two steps, state saved to host and loaded into a fresh optimizer.
  const b = make();
  const optB = new SGD(b, options);
  for (let s = 0; s < 2; s++) {
    setGrads(b, s);
    optB.step();
  }
  const saved = await Promise.all(optB.state().map((t) => t.toArray()));
  const weights = await Promise.all(b.map((p) => p.value.toArray()));
  const c = shapes.map((s, i) => new Parameter(Tensor.fromArray(gpu, weights[i], s)));
  const optC = new SGD(c, options);
  optC.loadState(saved, optB.stepCount);
  assertEquals(optC.stepCount, 2, "restored step count");
  setGrads(c, 2);
  optC.step();
  for (let i = 0; i < shapes.length; i++) {
    assertClose(
      await c[i].value.toArray(),
      await a[i].value.toArray(),
      { atol: 0, rtol: 0 },
      "resumed == uninterrupted",
    );
  }
  assertThrows(() => optC.loadState([saved[0]], 2), NinError, "got 1 momentum buffers, this optimizer has 2");
  assertThrows(() => optC.loadState([saved[1], saved[0]], 2), NinError, "momentum buffer 0 has 4 values");
  assertThrows(() => new SGD(c, { lr: 0.1 }).loadState(saved, 1), NinError, "this optimizer has 0");
  for (const opt of [optA, optB, optC]) opt.dispose();
  for (const p of [...a, ...b, ...c]) p.dispose();
});

gpuTest("SGD rejects bad hyperparameters", async (gpu) => {
  const p = new Parameter(Tensor.zeros(gpu, [3]));
  const bad: [SGDOptions, string][] = [
    [{ lr: 0 }, "lr must be a positive finite number, got 0"],
    [{ lr: -1 }, "lr must be"],
    [{ lr: NaN }, "lr must be"],
    [{ lr: Infinity }, "lr must be"],
    [{ lr: 0.1, momentum: 1 }, "momentum must be in [0, 1), got 1"],
    [{ lr: 0.1, momentum: -0.1 }, "momentum must be in [0, 1)"],
    [{ lr: 0.1, weightDecay: -1 }, "weight decay must be a finite number >= 0"],
    [{ lr: 0.1, momentum: 0.9, dampening: 2 }, "dampening must be in [0, 1]"],
    [{ lr: 0.1, nesterov: true }, "Nesterov momentum requires a momentum > 0 and zero dampening"],
    [{ lr: 0.1, momentum: 0.9, dampening: 0.5, nesterov: true }, "Nesterov"],
  ];
  for (const [options, message] of bad) assertThrows(() => new SGD([p], options), NinError, message);
  assertThrows(() => new SGD([], { lr: 0.1 }), NinError, "empty parameter list");
  p.dispose();
  await gpu.sync();
});
