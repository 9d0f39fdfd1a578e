// No leaks: 200 training steps and 200 inference passes leave exactly the GPU memory the first one left,
// and the buffer pool stops growing once the first steps have sized it.
import { assertJsonEqual as assertEquals, gpuTest } from "./util.ts";
import type { Gpu, MemoryStats } from "../lib/gpu/device.ts";
import { ninBlock } from "../lib/nin.ts";
import { SGD } from "../lib/optim.ts";
import { resizeImages } from "../lib/resize.ts";
import { evalStep, trainStep } from "../lib/train.ts";
import { predictClasses } from "../lib/predict.ts";
import { AdaptiveAvgPool2d } from "../lib/layers/adaptive_avgpool2d.ts";
import { Dropout } from "../lib/layers/dropout.ts";
import { Flatten } from "../lib/layers/flatten.ts";
import { MaxPool2d } from "../lib/layers/maxpool2d.ts";
import { Sequential } from "../lib/layers/sequential.ts";
import { Random } from "../lib/random.ts";

/** NiN's layer kinds (fused conv + ReLU, 1x1 convs, max pooling, dropout, global pooling) at a tiny size. */
function tinyNin(gpu: Gpu): Sequential {
  const rng = new Random(5);
  return new Sequential(
    ninBlock(gpu, 1, 8, 5, 2, 0, { oneByOneConvs: 2, rng }),
    new MaxPool2d(gpu, 3, 2),
    new Dropout(gpu, 0.5, { seed: 5 }),
    ninBlock(gpu, 8, 10, 3, 1, 1, { oneByOneConvs: 1, rng }),
    new AdaptiveAvgPool2d(gpu, 1),
    new Flatten(gpu),
  );
}

function live(m: MemoryStats): [number, number] {
  return [m.liveBuffers, m.liveBytes];
}

const STEPS = 200;

gpuTest(
  `no leaks: ${STEPS} training steps and ${STEPS} inference passes end with the memory of the first`,
  async (gpu) => {
    const rng = new Random(9);
    const count = 3;
    const pixels = Uint8Array.from({ length: count * 28 * 28 }, () => rng.int(256));
    const labels = [3, 1, 4];
    const net = tinyNin(gpu);
    const optimizer = new SGD(net.parameters(), { lr: 0.01, momentum: 0.9 });
    // The real step: resize the uint8 batch on the GPU, train (every other step split into micro-batches).
    const step = async (i: number) => {
      const images = resizeImages(gpu, pixels, count, 28, 28, 20);
      try {
        const r = await trainStep(net, optimizer, images, labels, {
          microBatch: i % 2 === 0 ? undefined : 2,
        });
        if (!Number.isFinite(r.loss)) throw new Error(`step ${i}: loss ${r.loss}`);
      } finally {
        images.dispose();
      }
    };
    await step(0);
    const afterFirstStep = live(gpu.memory);
    await step(1);
    const pooledAfterWarmup = gpu.memory.pooledBytes;
    for (let i = 2; i < STEPS; i++) await step(i);
    assertEquals(live(gpu.memory), afterFirstStep, `live [buffers, bytes] after ${STEPS} training steps`);
    assertEquals(gpu.memory.pooledBytes, pooledAfterWarmup, "pooled bytes after the warm-up steps");

    const infer = async (i: number) => {
      const images = resizeImages(gpu, pixels, count, 28, 28, 20);
      try {
        if (i % 2 === 0) await evalStep(net, images, labels, { microBatch: i % 4 === 0 ? 1 : undefined });
        else await predictClasses(net, images);
      } finally {
        images.dispose();
      }
    };
    await infer(0);
    const afterFirstPass = live(gpu.memory);
    assertEquals(
      afterFirstPass,
      afterFirstStep,
      "inference keeps nothing beyond the parameters and optimizer state",
    );
    // Inference has buffer sizes of its own (eval-mode placeholders, micro-batches of 1): a warm-up of one
    // pass of each kind sizes the pool, which must not grow after that.
    for (let i = 1; i < 4; i++) await infer(i);
    const pooledAfterInferenceWarmup = gpu.memory.pooledBytes;
    for (let i = 4; i < STEPS; i++) await infer(i);
    assertEquals(live(gpu.memory), afterFirstPass, `live [buffers, bytes] after ${STEPS} inference passes`);
    assertEquals(gpu.memory.pooledBytes, pooledAfterInferenceWarmup, "pooled bytes after inference");

    net.dispose();
    optimizer.dispose();
  },
);
