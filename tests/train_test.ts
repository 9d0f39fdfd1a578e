// trainStep as a whole: micro-batching equals the full batch, a small batch can be overfitted, and the
// checkpoint round trip restores a run exactly.
import { assertClose, assertRejectsWith, gpuTest, Tensor } from "./util.ts";
import { NinError } from "../lib/errors.ts";
import { nin, ninBlock } from "../lib/nin.ts";
import { SGD } from "../lib/optim.ts";
import { trainStep } from "../lib/train.ts";
import { Random } from "../lib/random.ts";
import { resizeImages } from "../lib/resize.ts";
import { readSafetensors } from "../lib/deno/safetensors_file.ts";
import { restoreCheckpoint } from "../lib/checkpoint.ts";
import { loadCheckpoint, saveCheckpoint } from "../lib/deno/checkpoint_file.ts";
import { Sequential } from "../lib/layers/sequential.ts";
import { MaxPool2d } from "../lib/layers/maxpool2d.ts";
import { Dropout } from "../lib/layers/dropout.ts";
import { AdaptiveAvgPool2d } from "../lib/layers/adaptive_avgpool2d.ts";
import { Flatten } from "../lib/layers/flatten.ts";
import type { Gpu } from "../lib/gpu/device.ts";
import type { Module } from "../lib/module.ts";

const fixture =
  (await readSafetensors(new URL("./fixtures/nin_r96_train.safetensors", import.meta.url).pathname))
    .tensors;
const images = fixture.get("images_u8")!.data as Uint8Array; // [4 * 8, 28, 28] real training images
const labels = fixture.get("labels")!.data as Int32Array;

async function parameterValues(net: Module): Promise<Float32Array[]> {
  return await Promise.all(net.parameters().map((p) => p.value.toArray()));
}

/** Two training steps of the chapter's model (dropout on) with the given micro-batch size. */
async function twoSteps(gpu: Gpu, microBatch: number) {
  const net = nin(gpu, { seed: 3, dropout: 0.5 });
  const opt = new SGD(net.parameters(), { lr: 0.1, momentum: 0.9 });
  const losses: number[] = [];
  for (let step = 0; step < 2; step++) {
    const x = resizeImages(gpu, images.subarray(step * 5 * 784, (step + 1) * 5 * 784), 5, 28, 28, 67);
    const r = await trainStep(net, opt, x, labels.subarray(step * 5, step * 5 + 5), { microBatch });
    if (r.microBatch !== microBatch) {
      throw new Error(`ran with micro-batch ${r.microBatch}, asked ${microBatch}`);
    }
    losses.push(r.loss);
    x.dispose();
  }
  const values = await parameterValues(net);
  opt.dispose();
  net.dispose();
  return { losses, values };
}

gpuTest(
  "a batch split into micro-batches (dropout on) gives the same losses and update as the whole",
  async (gpu) => {
    const whole = await twoSteps(gpu, 5);
    for (const micro of [1, 2]) {
      const split = await twoSteps(gpu, micro);
      assertClose(split.losses, whole.losses, { atol: 0, rtol: 1e-5 }, `losses with micro-batch ${micro}`);
      split.values.forEach((v, i) => {
        assertClose(
          v,
          whole.values[i],
          { atol: 1e-6, rtol: 1e-4 },
          `parameter ${i} with micro-batch ${micro}`,
        );
      });
    }
  },
);

gpuTest("a small NiN overfits 8 real images: the loss falls well below ln(10)", async (gpu) => {
  const rng = new Random(4);
  const net = new Sequential(
    ninBlock(gpu, 1, 32, 5, 2, 0, { rng }),
    new MaxPool2d(gpu, 3, 2),
    new Dropout(gpu, 0),
    ninBlock(gpu, 32, 10, 3, 1, 1, { rng }),
    new AdaptiveAvgPool2d(gpu, 1),
    new Flatten(gpu),
  );
  const opt = new SGD(net.parameters(), { lr: 0.05, momentum: 0.9 });
  const x = resizeImages(gpu, images.subarray(0, 8 * 784), 8, 28, 28, 28);
  let loss = Infinity;
  // About 160 steps reach 0.2 here; the bound leaves room for another engine's rounding.
  for (let step = 0; step < 400 && loss > 0.3; step++) {
    loss = (await trainStep(net, opt, x, labels.subarray(0, 8))).loss;
  }
  if (!(loss < 0.3)) throw new Error(`loss still ${loss} after 400 steps`);
  x.dispose();
  opt.dispose();
  net.dispose();
});

gpuTest("a checkpoint restores model and momentum so training continues identically", async (gpu) => {
  const path = await Deno.makeTempFile({ suffix: ".safetensors" });
  const batch = (step: number) =>
    resizeImages(gpu, images.subarray(step * 4 * 784, (step + 1) * 4 * 784), 4, 28, 28, 67);
  const run = async (restore: boolean) => {
    const net = nin(gpu, { seed: 5 });
    const opt = new SGD(net.parameters(), { lr: 0.05, momentum: 0.9, weightDecay: 1e-4 });
    const losses: number[] = [];
    for (let step = 0; step < 3; step++) {
      if (restore && step === 2) {
        await saveCheckpoint(net, path, { optimizer: opt, state: { epoch: 1, seed: 5 } });
        opt.dispose();
        net.dispose();
        return { losses, resumed: await resume(losses) };
      }
      const x = batch(step);
      losses.push((await trainStep(net, opt, x, labels.subarray(step * 4, step * 4 + 4))).loss);
      x.dispose();
    }
    const values = await parameterValues(net);
    opt.dispose();
    net.dispose();
    return { losses, resumed: values };
  };
  const resume = async (losses: number[]) => {
    const checkpoint = await loadCheckpoint(path);
    if (checkpoint.state.step !== 2) throw new Error(`checkpoint step ${checkpoint.state.step}`);
    // Same seed (dropout masks follow it) but fresh init weights: the trained ones must come from the file.
    const net = nin(gpu, { seed: checkpoint.state.seed });
    const opt = new SGD(net.parameters(), { lr: 0.05, momentum: 0.9, weightDecay: 1e-4 });
    restoreCheckpoint(checkpoint, net, opt);
    const x = batch(2);
    losses.push((await trainStep(net, opt, x, labels.subarray(8, 12))).loss);
    x.dispose();
    const values = await parameterValues(net);
    opt.dispose();
    net.dispose();
    return values;
  };
  const straight = await run(false);
  const resumed = await run(true);
  assertClose(resumed.losses, straight.losses, { atol: 0, rtol: 0 }, "losses");
  resumed.resumed.forEach((v, i) =>
    assertClose(v, straight.resumed[i], { atol: 0, rtol: 0 }, `parameter ${i}`)
  );
  await Deno.remove(path);
});

gpuTest("trainStep rejects labels that do not fit the batch or the classes", async (gpu) => {
  const net = nin(gpu);
  const opt = new SGD(net.parameters(), { lr: 0.1 });
  const x = Tensor.zeros(gpu, [2, 1, 67, 67]);
  const cases: [number[], string][] = [
    [[1], "expected 2 labels (one per image), got 1"],
    [[0, 10], "label 1 is 10"],
    [[-1, 0], "label 0 is -1"],
    [[0.5, 1], "label 0 is 0.5"],
  ];
  for (const [bad, message] of cases) {
    await assertRejectsWith(() => trainStep(net, opt, x, bad), NinError, message);
  }
  x.dispose();
  opt.dispose();
  net.dispose();
});
