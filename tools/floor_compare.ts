/**
 * Training and inference examples/s through the library's own loops (`fit`, `evaluate`) for the checkout at
 * ROOT, at one small size where the host's readback floor shows (issue 16). Run it for two checkouts in
 * turn, interleaved, on a quiet machine, and compare the ratios:
 *
 *   deno run -A tools/floor_compare.ts ROOT [--resize 67] [--batch-size 1] [--train 64] [--test 128]
 *
 * Prints one JSON line. Wall time includes the host waits the loops make; the first epoch's shader
 * compilation is left out by a warm-up run of each loop.
 *
 * @module
 */
import { parseArgs } from "node:util";

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    resize: { type: "string", default: "67" },
    "batch-size": { type: "string", default: "1" },
    train: { type: "string", default: "64" },
    test: { type: "string", default: "128" },
  },
});
const root = positionals[0] ?? ".";
const lib = await import(new URL(`${root.replace(/\/$/, "")}/mod.ts`, `file://${Deno.cwd()}/`).href);
const resize = Number(values.resize), batchSize = Number(values["batch-size"]);
const limitTrain = Number(values.train), limitTest = Number(values.test);

const gpu = await lib.requestGpu();
const data = await lib.loadFashionMnist({ download: false });
const net = lib.nin(gpu, { seed: 0, init: "kaiming" });
const opt = new lib.SGD(net.parameters(), { lr: 0.01 });
const fitOptions = { epochs: 1, batchSize, resize, seed: 0, limitTrain, limitTest: batchSize };

const timed = async (work: () => Promise<unknown>) => {
  const start = performance.now();
  await work();
  return (performance.now() - start) / 1000;
};
// Warm-up: compiles every kernel of both loops.
await lib.fit(net, opt, data, { ...fitOptions, limitTrain: 2 * batchSize });
await lib.evaluate(net, data.test, { batchSize, resize, limitTest: 2 * batchSize });
// fit's epoch also evaluates limitTest = one batch; its examples/s counts the training steps only.
const history = await lib.fit(net, opt, data, fitOptions);
const inferSeconds = await timed(() => lib.evaluate(net, data.test, { batchSize, resize, limitTest }));
console.log(JSON.stringify({
  root,
  adapter: gpu.adapterName,
  resize,
  batch_size: batchSize,
  train_examples_per_s: history[0].examplesPerSec,
  infer_examples_per_s: limitTest / inferSeconds,
}));
gpu.destroy();
