// Determinism: the same seed gives the same losses, accuracies and weights, bit for bit, on the same engine
// and adapter; another seed gives other numbers (so the comparison can fail).
import { assertJsonEqual as assertEquals, gpuTest } from "./util.ts";
import type { Gpu } from "../lib/gpu/device.ts";
import { fit } from "../lib/fit.ts";
import { nin } from "../lib/nin.ts";
import { SGD } from "../lib/optim.ts";
import type { Split } from "../lib/data/split.ts";
import { Random } from "../lib/random.ts";

function randomSplit(count: number, seed: number): Split {
  const rng = new Random(seed);
  return {
    images: Uint8Array.from({ length: count * 784 }, () => rng.int(256)),
    labels: Uint8Array.from({ length: count }, () => rng.int(10)),
    count,
    height: 28,
    width: 28,
  };
}

const data = { train: randomSplit(12, 1), test: randomSplit(4, 2) };

/** Two epochs of NiN at 67x67 with dropout, momentum and shuffling, all driven by `seed`. */
async function run(gpu: Gpu, seed: number, epochs = 2) {
  const net = nin(gpu, { seed, dropout: 0.5 });
  const optimizer = new SGD(net.parameters(), { lr: 0.05, momentum: 0.9 });
  const losses: number[] = [];
  const history = await fit(net, optimizer, data, {
    epochs,
    batchSize: 4,
    resize: 67,
    seed,
    onStep: (p) => losses.push(p.loss),
  });
  const weights = await Promise.all(net.parameters().map((p) => p.value.toArray()));
  net.dispose();
  optimizer.dispose();
  return { losses, epochs: history.map((m) => [m.loss, m.trainAcc, m.testAcc]), weights };
}

gpuTest("determinism: the same seed gives the same losses and weights, run twice", async (gpu) => {
  const first = await run(gpu, 3);
  const second = await run(gpu, 3);
  assertEquals(first.losses.length, 6, "steps");
  assertEquals(second.losses, first.losses, "per-step losses");
  assertEquals(second.epochs, first.epochs, "per-epoch loss, train acc, test acc");
  first.weights.forEach((w, i) => {
    if (w.some((v, j) => !Object.is(v, second.weights[i][j]))) throw new Error(`parameter ${i} differs`);
  });
  const other = await run(gpu, 4, 1);
  if (JSON.stringify(other.losses) === JSON.stringify(first.losses.slice(0, 3))) {
    throw new Error("another seed gave the same losses: the seed is not used");
  }
});
