// The pipelined loops: fit and evaluate queue steps ahead and read results in ticks, yet report exactly
// what step-by-step calls report; results come back in order; a step after the first makes no bind groups.
import { assertJsonEqual as assertEquals, gpuTest, Tensor } from "./util.ts";
import { nin } from "../lib/nin.ts";
import { SGD } from "../lib/optim.ts";
import { trainStep } from "../lib/train.ts";
import { evaluate, fit, type StepProgress } from "../lib/fit.ts";
import { predictClasses } from "../lib/predict.ts";
import { resizeImages } from "../lib/resize.ts";
import { Readback } from "../lib/readback.ts";
import type { Gpu } from "../lib/gpu/device.ts";
import { readSafetensors } from "../lib/deno/safetensors_file.ts";
import { epochBatches } from "../lib/data/batches.ts";
import type { Split } from "../lib/data/split.ts";
import { countingGpu } from "../lib/gpu/counting.ts";

const fixture =
  (await readSafetensors(new URL("./fixtures/nin_r96_train.safetensors", import.meta.url).pathname))
    .tensors;
const split: Split = {
  images: fixture.get("images_u8")!.data as Uint8Array, // 32 real training images, 28x28
  labels: Uint8Array.from(fixture.get("labels")!.data as Int32Array),
  count: 32,
  height: 28,
  width: 28,
};
const RESIZE = 67;

gpuTest("fit reports per step exactly what step-by-step trainStep calls give, in order", async (gpu) => {
  const options = { epochs: 1, batchSize: 4, resize: RESIZE, seed: 5, limitTrain: 24, limitTest: 8 };
  const piped: StepProgress[] = [];
  const a = nin(gpu, { seed: 1, init: "kaiming" });
  const optA = new SGD(a.parameters(), { lr: 0.05 });
  const [metrics] = await fit(a, optA, { train: split, test: split }, {
    ...options,
    onStep: (p) => piped.push(p),
  });
  const b = nin(gpu, { seed: 1, init: "kaiming" }).train();
  const optB = new SGD(b.parameters(), { lr: 0.05 });
  const losses: number[] = [];
  for (const batch of epochBatches(split, { batchSize: 4, seed: 5, epoch: 0, limit: 24 })) {
    const x = resizeImages(gpu, batch.images, batch.count, 28, 28, RESIZE);
    losses.push((await trainStep(b, optB, x, batch.labels)).loss);
    x.dispose();
  }
  assertEquals(piped.map((p) => p.batch), [1, 2, 3, 4, 5, 6], "every step reported once, in order");
  assertEquals(piped.map((p) => p.loss), losses, "the same losses, bit for bit");
  assertEquals(metrics.step, 6, "six optimizer steps");
  const weightsA = await a.parameters()[0].value.toArray();
  const weightsB = await b.parameters()[0].value.toArray();
  assertEquals(Array.from(weightsA), Array.from(weightsB), "the same weights after the epoch");
  for (const o of [optA, optB]) o.dispose();
  for (const n of [a, b]) n.dispose();
});

gpuTest("evaluate's predictions equal predictClasses batch by batch, in split order", async (gpu) => {
  const net = nin(gpu, { seed: 2, init: "kaiming" });
  const result = await evaluate(net, split, {
    batchSize: 5,
    resize: RESIZE,
    limitTest: 17,
    predictions: true,
  });
  const x = resizeImages(gpu, split.images.subarray(0, 17 * 784), 17, 28, 28, RESIZE);
  const expected = await predictClasses(net, x);
  x.dispose();
  assertEquals(Array.from(result.predictions!), Array.from(expected), "predicted classes");
  const correct = expected.filter((c, i) => c === split.labels[i]).length;
  assertEquals(result.count, 17, "examples");
  assertEquals(result.accuracy, correct / 17, "accuracy from the same predictions");
  net.dispose();
});

Deno.test("Readback sizes its reads to about one per tick where the host is slower than the GPU", async () => {
  // Reads complete at once (the host is the bottleneck, as on llvmpipe over OpenGL); a step takes 200 ms.
  let now = 0;
  const gpu = {
    readParts: (parts: { bytes: number }[]) => Promise.resolve(new ArrayBuffer(parts.length * 4)),
  };
  const queue = new Readback<number>(gpu as unknown as Gpu, { clock: () => now });
  const sizes: number[] = [];
  for (let step = 0; step < 200; step++) {
    now += 200;
    queue.add([{ buffer: undefined as unknown as GPUBuffer, bytes: 4 }], () => step, () => {});
    const done = await queue.poll();
    if (done.length > 0) sizes.push(done.length);
  }
  await queue.drain();
  // The first read holds one step (no step time yet); from then on, 5 steps = 1 s per read.
  assertEquals(sizes.slice(1), sizes.slice(1).map(() => 5), `items per completed read: ${sizes}`);
});

gpuTest("Readback returns every item in order with fewer reads than items", async (gpu) => {
  const queue = new Readback<number>(gpu, { tickSeconds: 10 });
  const values: number[] = [];
  for (let i = 0; i < 40; i++) {
    const buffer = gpu.allocate(4, "labels and statistics");
    gpu.write(buffer, new Uint32Array([i * 7]));
    queue.add([{ buffer, bytes: 4 }], (bytes) => new Uint32Array(bytes)[0], () => gpu.release(buffer));
    for (const done of await queue.poll()) values.push(done.value);
  }
  for (const done of await queue.drain()) values.push(done.value);
  assertEquals(values, Array.from({ length: 40 }, (_, i) => i * 7), "values in order");
  if (queue.reads >= 10) throw new Error(`${queue.reads} reads for 40 items: no batching`);
});

Deno.test("steady training steps create bind groups only for per-step uniforms (dropout's step)", async () => {
  const gpu = countingGpu({ software: true });
  let created = 0;
  const device = gpu.device as unknown as { createBindGroup: (d: unknown) => unknown };
  const create = device.createBindGroup.bind(device);
  device.createBindGroup = (d) => (created++, create(d));
  const net = nin(gpu, { seed: 0 });
  const opt = new SGD(net.parameters(), { lr: 0.1 });
  const images = Tensor.zeros(gpu, [2, 1, RESIZE, RESIZE]);
  const perStep: number[] = [];
  for (let step = 0; step < 6; step++) {
    const before = created;
    await trainStep(net, opt, images, [1, 2]);
    perStep.push(created - before);
  }
  if (perStep[0] < 40) throw new Error(`the first step created only ${perStep[0]} bind groups`);
  // Once the pool has handed every buffer and texture its owner again (a step or two), only the dropout
  // layer's forward and backward, whose uniform holds the step.
  assertEquals(perStep.slice(3), [2, 2, 2], `bind groups created by steps 4 to 6 (all steps: ${perStep})`);
});

Deno.test("a long run stops creating bind groups and buffers once the uniform cache is full", async () => {
  const gpu = countingGpu({ software: true });
  const created = { bindGroups: 0, buffers: 0 };
  const device = gpu.device as unknown as {
    createBindGroup: (d: unknown) => unknown;
    createBuffer: (d: GPUBufferDescriptor) => unknown;
  };
  const [bindGroup, buffer] = [device.createBindGroup.bind(device), device.createBuffer.bind(device)];
  device.createBindGroup = (d) => (created.bindGroups++, bindGroup(d));
  // A read's staging buffer is made and destroyed per read; every other buffer is kept.
  device.createBuffer = (d) => (created.buffers += d.usage & GPUBufferUsage.MAP_READ ? 0 : 1, buffer(d));
  const net = nin(gpu, { seed: 0 });
  const opt = new SGD(net.parameters(), { lr: 0.1 });
  const images = Tensor.zeros(gpu, [2, 1, RESIZE, RESIZE]);
  // Dropout's new uniform each step fills the cache within a few hundred steps; after that, nothing new.
  let steadyFrom = -1;
  for (let step = 0; step < 800 && steadyFrom < 0; step++) {
    const before = { ...created };
    await trainStep(net, opt, images, [1, 2]);
    if (created.bindGroups === before.bindGroups && created.buffers === before.buffers) steadyFrom = step;
  }
  if (steadyFrom < 0) throw new Error(`steps still created bind groups or buffers after 800 steps`);
  const before = { ...created };
  for (let step = 0; step < 50; step++) await trainStep(net, opt, images, [1, 2]);
  assertEquals(created, before, `50 more steps from step ${steadyFrom}: nothing created`);
  net.dispose();
  opt.dispose();
});
