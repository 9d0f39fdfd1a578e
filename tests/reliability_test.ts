// API-level reliability: shape and label mismatches, state dicts that do not fit, batches too large for the
// device, a lost device, no adapter, diverged parameters and hostile safetensors files. Every case must be a
// NinError saying what is wrong, leave the parameters as they were and leak no GPU buffer.
import { deepStrictEqual } from "node:assert/strict";
import {
  assertJsonEqual as assertEquals,
  assertRejectsWith,
  assertThrowsWith as assertThrows,
  gpuTest,
  handBuilt,
  Tensor,
  testEngine,
} from "./util.ts";
import { NinError } from "../lib/errors.ts";
import type { Gpu } from "../lib/gpu/device.ts";
import { requestGpu } from "../lib/deno/gpu.ts";
import type { Module } from "../lib/module.ts";
import { nin, ninBlock } from "../lib/nin.ts";
import { layerShapes } from "../lib/shapes.ts";
import { SGD } from "../lib/optim.ts";
import { evalStep, trainStep } from "../lib/train.ts";
import { microBatchSize } from "../lib/microbatch.ts";
import { restoreCheckpoint } from "../lib/checkpoint.ts";
import { loadCheckpoint, saveCheckpoint } from "../lib/deno/checkpoint_file.ts";
import { parseSafetensors, serializeSafetensors } from "../lib/safetensors.ts";
import { AdaptiveAvgPool2d } from "../lib/layers/adaptive_avgpool2d.ts";
import { Conv2d } from "../lib/layers/conv2d.ts";
import { Dropout } from "../lib/layers/dropout.ts";
import { Flatten } from "../lib/layers/flatten.ts";
import { MaxPool2d } from "../lib/layers/maxpool2d.ts";
import { ReLU } from "../lib/layers/relu.ts";
import { Sequential } from "../lib/layers/sequential.ts";
import { Random } from "../lib/random.ts";

/** Every parameter's values, to check a failed call changed nothing. */
async function snapshot(net: Module): Promise<Float32Array[]> {
  return await Promise.all(net.parameters().map((p) => p.value.toArray()));
}

/** A NiN-shaped network small enough to train in milliseconds (16x16 inputs, 10 classes). */
function tinyNet(gpu: Gpu, seed = 0): Sequential {
  const rng = new Random(seed);
  return new Sequential(
    ninBlock(gpu, 1, 6, 5, 2, 0, { oneByOneConvs: 1, rng }),
    new MaxPool2d(gpu, 3, 2),
    new Dropout(gpu, 0.5, { seed }),
    ninBlock(gpu, 6, 10, 3, 1, 1, { oneByOneConvs: 1, rng }),
    new AdaptiveAvgPool2d(gpu, 1),
    new Flatten(gpu),
  );
}

gpuTest("shape mismatches name the layer, the expected and the actual shape; nothing leaks", async (gpu) => {
  const net = nin(gpu, { seed: 0 });
  const optimizer = new SGD(net.parameters(), { lr: 0.1 });
  const before = await snapshot(net);
  const live = gpu.memory.liveBuffers;
  const cases: [number[], string[], string[]][] = [
    [
      [2, 3, 67, 67],
      ["Conv2d(1, 96, k=11, s=4, p=0) expects 1 input channels, got 3 (input shape [2, 3, 67, 67])"],
      ["input [2, 3, 67, 67] does not fit layer 0.0 (Conv2d)", "expects 1 input channels, got 3"],
    ],
    [
      [2, 1, 66, 66],
      ["MaxPool2d(3, stride=2): input [2, 384, 2, 2] gives an empty output; needs H, W >= 3"],
      ["input [2, 1, 66, 66] is too small for layer 5 (MaxPool2d)", "the smallest input that works is 67x67"],
    ],
    [
      [67, 67],
      ["Conv2d(1, 96, k=11, s=4, p=0) expects a 4-d input [N, C, H, W], got shape [67, 67]"],
      ["expected images of shape [N, C, H, W], got [67, 67]"],
    ],
  ];
  for (const [shape, forwardParts, stepParts] of cases) {
    const x = Tensor.zeros(gpu, shape);
    for (const mode of [true, false]) {
      net.train(mode);
      await assertRejectsWith(() => net.forward(x), NinError, ...forwardParts);
    }
    await assertRejectsWith(() => trainStep(net, optimizer, x, [1, 2]), NinError, ...stepParts);
    await assertRejectsWith(() => evalStep(net, x, [1, 2]), NinError, ...stepParts);
    x.dispose();
    assertEquals(gpu.memory.liveBuffers, live, `live buffers after the errors for ${JSON.stringify(shape)}`);
  }
  assertEquals(optimizer.stepCount, 0, "no step was taken");
  deepStrictEqual(await snapshot(net), before, "after shape errors");

  // Mid-network mismatches: a Sequential names the offending layer; the API checks ranks too.
  const chain = new Sequential(new Conv2d(gpu, 1, 4, 3), new ReLU(gpu), new Conv2d(gpu, 8, 2, 3)).train();
  const x = Tensor.zeros(gpu, [1, 1, 8, 8]);
  const liveChain = gpu.memory.liveBuffers;
  await assertRejectsWith(
    () => chain.forward(x),
    NinError,
    "Conv2d(8, 2, k=3, s=1, p=0) expects 8 input channels, got 4",
  );
  assertEquals(gpu.memory.liveBuffers, liveChain, "a forward failing mid-way frees what ran before");
  await assertRejectsWith(
    () => evalStep(chain, x, [0]),
    NinError,
    "input [1, 1, 8, 8] does not fit layer 2 (Conv2d)",
    "expects 8 input channels, got 4",
  );
  assertThrows(
    () => new MaxPool2d(gpu, 3, 2).outputShape([4, 9, 9]),
    NinError,
    "MaxPool2d(3, stride=2) expects a 4-d input [N, C, H, W], got shape [4, 9, 9]",
  );
  assertThrows(() => new AdaptiveAvgPool2d(gpu, 1).outputShape([9]), NinError, "got shape [9]");
  x.dispose();
  chain.dispose();
  net.dispose();
  optimizer.dispose();
});

gpuTest("labels out of range or not one per image are errors; the step changes nothing", async (gpu) => {
  const net = tinyNet(gpu);
  const optimizer = new SGD(net.parameters(), { lr: 0.5, momentum: 0.9 });
  const images = Tensor.fromArray(gpu, new Random(1).uniformArray(3 * 256), [3, 1, 16, 16]);
  await trainStep(net, optimizer, images, [0, 1, 2]); // momentum buffers exist now
  const before = await snapshot(net);
  const live = gpu.memory.liveBuffers;
  const cases: [ArrayLike<number>, string][] = [
    [[0, 10, 2], "label 1 is 10; labels must be integers in [0, 10)"],
    [[-1, 0, 0], "label 0 is -1; labels must be integers in [0, 10)"],
    [[0, 1, 2.5], "label 2 is 2.5"],
    [[0, NaN, 1], "label 1 is NaN"],
    [[0, 1], "expected 3 labels (one per image), got 2"],
    [new Int32Array(4), "expected 3 labels (one per image), got 4"],
  ];
  for (const [labels, message] of cases) {
    await assertRejectsWith(
      () => trainStep(net, optimizer, images, labels, { microBatch: 2 }),
      NinError,
      message,
    );
    await assertRejectsWith(() => evalStep(net, images, labels), NinError, message);
  }
  assertEquals(gpu.memory.liveBuffers, live, "live buffers after label errors");
  assertEquals(optimizer.stepCount, 1, "no step was taken");
  deepStrictEqual(await snapshot(net), before, "after label errors");
  images.dispose();
  net.dispose();
  optimizer.dispose();
});

gpuTest(
  "a state dict or checkpoint that does not fit the model lists every problem and loads nothing",
  async (gpu) => {
    const net = nin(gpu, { seed: 0 });
    const before = await snapshot(net);
    const dict = new Map(
      net.namedParameters().map((
        [name, p],
        i,
      ) => [name, { shape: [...p.value.shape], data: before[i].map((v) => v + 1) }]),
    );
    dict.delete("2.0.bias");
    dict.set("0.0.weight", { shape: [96, 1, 5, 5], data: new Float32Array(96 * 25) });
    dict.set("head.weight", { shape: [1], data: new Float32Array(1) });
    await assertRejectsWith(
      () => net.loadStateDict(dict),
      NinError,
      "state dict does not fit the model",
      "0.0.weight has shape [96, 1, 5, 5], expected [96, 1, 11, 11]",
      "missing 2.0.bias",
      "unexpected head.weight",
    );
    deepStrictEqual(await snapshot(net), before, "after a rejected state dict");

    // A checkpoint of a different configuration (one 1x1 convolution per block) into the default model.
    const dir = await Deno.makeTempDir({ prefix: "nin_reliability_" });
    try {
      const other = nin(gpu, { seed: 1, oneByOneConvs: 1 });
      const otherOptimizer = new SGD(other.parameters(), { lr: 0.1, momentum: 0.9 });
      await saveCheckpoint(other, `${dir}/other.safetensors`, {
        optimizer: otherOptimizer,
        state: { epoch: 1, step: 3, seed: 1 },
      });
      const checkpoint = await loadCheckpoint(`${dir}/other.safetensors`);
      const optimizer = new SGD(net.parameters(), { lr: 0.1, momentum: 0.9 });
      await assertRejectsWith(
        () => restoreCheckpoint(checkpoint, net, optimizer),
        NinError,
        "state dict does not fit the model: missing 0.4.weight; missing 0.4.bias; missing 2.4.weight",
      );
      assertEquals(optimizer.stepCount, 0, "the optimizer state was not restored either");
      deepStrictEqual(await snapshot(net), before, "after a checkpoint of another model");
      other.dispose();
      otherOptimizer.dispose();
      optimizer.dispose();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
    net.dispose();
  },
);

gpuTest(
  "a batch too large for the device even one sample at a time is an error with the estimate",
  async (gpu) => {
    const net = nin(gpu, { seed: 0 });
    // One sample at 224x224: layer 0.0's output, 96 x 54 x 54 floats = 1.07 MiB, is the largest tensor.
    const oneMiB = 2 ** 20;
    const input = [128, 1, 224, 224];
    await assertRejectsWith(
      () => microBatchSize(layerShapes(net, input, true), input, oneMiB),
      NinError,
      "one sample of shape [1, 224, 224] is too large for this device",
      "layer 0.0 needs 1.1 MiB per sample but a binding holds at most 1.0 MiB",
      "use a smaller --resize",
    );
    assertEquals(
      microBatchSize(layerShapes(net, input, true), input, 3 * 96 * 54 * 54 * 4),
      3,
      "three samples fit",
    );

    // The same through trainStep, on a device that binds at most 1 MiB per buffer.
    const limits = gpu.limits;
    const small = Object.create(limits, { maxStorageBufferBindingSize: { value: oneMiB } });
    const optimizer = new SGD(net.parameters(), { lr: 0.1 });
    const images = Tensor.zeros(gpu, [2, 1, 224, 224]);
    const live = gpu.memory.liveBuffers;
    Object.defineProperty(gpu, "limits", { value: small, configurable: true });
    try {
      await assertRejectsWith(
        () => trainStep(net, optimizer, images, [0, 1]),
        NinError,
        "layer 0.0 needs 1.1 MiB per sample",
      );
    } finally {
      Object.defineProperty(gpu, "limits", { value: limits, configurable: true });
    }
    assertEquals([gpu.memory.liveBuffers, optimizer.stepCount], [live, 0], "nothing leaked, no step taken");
    images.dispose();
    net.dispose();
    optimizer.dispose();
  },
);

Deno.test({
  name:
    `a device lost mid-run: the next step is a NinError saying so and no checkpoint is half-written [${testEngine}]`,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    // A device of its own: the shared test device must survive.
    const gpu = await requestGpu({ engine: testEngine });
    const dir = await Deno.makeTempDir({ prefix: "nin_lost_" });
    try {
      const net = tinyNet(gpu);
      const optimizer = new SGD(net.parameters(), { lr: 0.1, momentum: 0.9 });
      const images = Tensor.zeros(gpu, [2, 1, 16, 16]);
      await trainStep(net, optimizer, images, [1, 2]);
      const state = { epoch: 1, step: 1, seed: 0, config: null, history: [] };
      await saveCheckpoint(net, `${dir}/good.safetensors`, { optimizer, state });
      const good = await Deno.readFile(`${dir}/good.safetensors`);

      gpu.device.destroy(); // what a driver reset or a removed GPU looks like to WebGPU
      await assertRejectsWith(
        () => trainStep(net, optimizer, images, [1, 2]),
        NinError,
        "the GPU device was lost",
      );
      await assertRejectsWith(() => evalStep(net, images, [1, 2]), NinError, "the GPU device was lost");
      await assertRejectsWith(
        () => saveCheckpoint(net, `${dir}/good.safetensors`, { optimizer, state }),
        NinError,
        "GPU device",
      );
      await assertRejectsWith(
        () => saveCheckpoint(net, `${dir}/new.safetensors`, { optimizer, state }),
        NinError,
        "GPU device",
      );
      assertEquals(
        [...Deno.readDirSync(dir)].map((e) => e.name),
        ["good.safetensors"],
        "files after the loss",
      );
      const after = await Deno.readFile(`${dir}/good.safetensors`);
      deepStrictEqual(after, good, "checkpoint intact");
    } finally {
      gpu.destroy();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("no WebGPU adapter, or no WebGPU at all, is a NinError saying so", async () => {
  const own = Object.getOwnPropertyDescriptor(navigator, "gpu");
  try {
    Object.defineProperty(navigator, "gpu", {
      value: { requestAdapter: () => Promise.resolve(null) },
      configurable: true,
    });
    await assertRejectsWith(
      () => requestGpu(),
      NinError,
      "no WebGPU adapter found (engine deno); check the GPU driver or try --gpu dawn",
    );
    Object.defineProperty(navigator, "gpu", { value: undefined, configurable: true });
    await assertRejectsWith(() => requestGpu(), NinError, "this Deno has no WebGPU (navigator.gpu)");
  } finally {
    if (own) Object.defineProperty(navigator, "gpu", own);
    else delete (navigator as { gpu?: unknown }).gpu;
  }
});

gpuTest(
  "a diverged run never replaces the last good checkpoint: NaN or infinite parameters are refused",
  async (gpu) => {
    const dir = await Deno.makeTempDir({ prefix: "nin_nan_" });
    try {
      const net = tinyNet(gpu);
      const optimizer = new SGD(net.parameters(), { lr: 0.1 });
      const state = { epoch: 1, step: 0, seed: 0, config: null, history: [] };
      const path = `${dir}/c.safetensors`;
      await saveCheckpoint(net, path, { optimizer, state });
      const good = await Deno.readFile(path);
      for (const bad of [NaN, Infinity]) {
        const bias = net.namedParameters().find(([name]) => name === "3.2.bias")![1];
        gpu.write(bias.value.buffer, new Float32Array(bias.value.size).fill(bad));
        await assertRejectsWith(
          () => saveCheckpoint(net, path, { optimizer, state: { ...state, epoch: 2 } }),
          NinError,
          `not saving ${path}: 3.2.bias holds NaN or infinite values`,
          "the file keeps its previous contents",
        );
      }
      const after = await Deno.readFile(path);
      deepStrictEqual(after, good, "file unchanged");
      assertEquals([...Deno.readDirSync(dir)].length, 1, "no temporary file left");
      net.dispose();
      optimizer.dispose();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test("safetensors never reads outside the file: offsets past its end fail even when memory follows it", () => {
  const file = handBuilt('{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', new Uint8Array(8));
  // The file sits inside a larger buffer whose next bytes would satisfy an out-of-bounds offset.
  const memory = new Uint8Array(file.length + 64).fill(0x7f);
  memory.set(file);
  const longer = handBuilt('{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}', new Uint8Array(8));
  const view = new Uint8Array(longer.length + 64).fill(0x7f);
  view.set(longer);
  assertThrows(
    () => parseSafetensors(view.subarray(0, longer.length), "shifted.safetensors"),
    NinError,
    'shifted.safetensors: not a valid safetensors file: tensor "w" data_offsets [0, 16] end beyond the 8-byte data section',
  );
  const header = handBuilt("{}");
  new DataView(header.buffer).setBigUint64(0, 40n, true);
  const padded = new Uint8Array(header.length + 64).fill(0x20);
  padded.set(header);
  assertThrows(
    () => parseSafetensors(padded.subarray(0, header.length)),
    NinError,
    "header length 40 runs past the end of the file (10 bytes)",
  );
  // What is returned is a copy: changing the file's bytes afterwards changes no tensor.
  const parsed = parseSafetensors(memory.subarray(0, file.length)).tensors.get("w")!;
  memory.fill(0xff);
  assertEquals(Array.from(parsed.data), [0, 0], "tensor data are copied out of the file");
  if (parsed.data.buffer === memory.buffer) throw new Error("the tensor aliases the file's memory");
});

Deno.test("safetensors never executes anything from the file: names and metadata stay plain data", () => {
  const hostile = [
    '"__proto__":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}',
    '"constructor":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}',
    '"\\"); globalThis.ninPwned = 1; (\\"":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}',
    '"__metadata__":{"__proto__":"{\\"polluted\\":1}","toString":"globalThis.ninPwned = 2","valueOf":"x"}',
  ];
  const { tensors, metadata } = parseSafetensors(
    handBuilt(`{${hostile.join(",")}}`, new Uint8Array([1, 2, 3])),
  );
  assertEquals([...tensors.keys()], ["__proto__", "constructor", '"); globalThis.ninPwned = 1; ("'], "names");
  assertEquals(Array.from(tensors.get("__proto__")!.data), [1], "__proto__ is an ordinary tensor");
  assertEquals(Object.getPrototypeOf(metadata), Object.prototype, "metadata prototype untouched");
  assertEquals(
    Object.keys(metadata).sort(),
    ["__proto__", "toString", "valueOf"],
    "metadata keys are own data",
  );
  assertEquals(metadata.toString, "globalThis.ninPwned = 2", "a metadata string is only a string");
  const probe: Record<string, unknown> = {};
  assertEquals(
    [probe.polluted, (globalThis as Record<string, unknown>).ninPwned],
    [undefined, undefined],
    "no effect",
  );
  // And writing such names back round-trips them unchanged.
  const again = parseSafetensors(serializeSafetensors(tensors, metadata));
  assertEquals([...again.tensors.keys()].sort(), [...tensors.keys()].sort(), "round trip");
});
