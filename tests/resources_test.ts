// lib/resources.ts (with lib/model_spec.ts and lib/buffer_replay.ts) and lib/measure.ts: counts against plain
// arithmetic and PyTorch, the replayed memory schedule against the GPU's own accounting, and the resources
// task's --json output.
import { assertJsonEqual as assertEquals, assertThrowsWith as assertThrows, gpuTest } from "./util.ts";
import {
  analyzeResources,
  DEFAULT_MAX_BINDING_BYTES,
  MAC_CONVENTION,
  type ResourceOptions,
} from "../lib/resources.ts";
import { ninSpec, specLeaves, specMicroBatch } from "../lib/model_spec.ts";
import { measureResources } from "../lib/measure.ts";
import { layerShapes, nin } from "../lib/nin.ts";
import { microBatchSize } from "../lib/microbatch.ts";
import { NinError } from "../lib/errors.ts";

const ROOT = new URL("../", import.meta.url);

/**
 * Parameters and multiply-accumulates of NiN per image, counted straight from the chapter's definition:
 * blocks (out channels, kernel, stride, padding) with `oneByOne` 1x1 convs each, 3x3/2 max pooling after
 * the first three.
 */
function countByHand(resize: number, oneByOne: number, inChannels = 1, classes = 10) {
  const out = (size: number, k: number, s: number, p: number) => Math.floor((size + 2 * p - k) / s) + 1;
  const blocks = [[96, 11, 4, 0], [256, 5, 1, 2], [384, 3, 1, 1], [classes, 3, 1, 1]];
  let size = resize;
  let channels = inChannels;
  let params = 0;
  let macs = 0;
  blocks.forEach(([o, k, s, p], b) => {
    size = out(size, k, s, p);
    params += o * channels * k * k + o;
    macs += o * size * size * channels * k * k;
    for (let j = 0; j < oneByOne; j++) {
      params += o * o + o;
      macs += o * size * size * o;
    }
    channels = o;
    if (b < 3) size = out(size, 3, 2, 0);
  });
  return { params, macs };
}

Deno.test("resources: parameter and MAC counts equal the arithmetic of the layer definitions", () => {
  const configs = [
    { resize: 224, oneByOne: 2 },
    { resize: 224, oneByOne: 1 },
    { resize: 224, oneByOne: 0 },
    { resize: 96, oneByOne: 2 },
    { resize: 67, oneByOne: 3 },
    { resize: 131, oneByOne: 2, inChannels: 3, classes: 5 },
  ];
  for (const c of configs) {
    const expected = countByHand(c.resize, c.oneByOne, c.inChannels, c.classes);
    const r = analyzeResources({
      batchSize: 3,
      resize: c.resize,
      oneByOneConvs: c.oneByOne,
      inChannels: c.inChannels,
      numClasses: c.classes,
    });
    const what = JSON.stringify(c);
    assertEquals(r.params.count, expected.params, `${what} params`);
    assertEquals(r.params.bytes, 4 * expected.params, `${what} param bytes`);
    assertEquals(r.layers.reduce((s, l) => s + l.params, 0), expected.params, `${what} per-layer params`);
    assertEquals(r.forward.macsPerImage, expected.macs, `${what} MACs per image`);
    assertEquals(r.forward.macs, 3 * expected.macs, `${what} MACs per batch`);
    assertEquals(r.layers.reduce((s, l) => s + l.macs, 0), expected.macs, `${what} per-layer MACs`);
  }
  // The chapter's numbers, written out.
  const chapter = analyzeResources({ batchSize: 128, resize: 224 });
  assertEquals(chapter.params.count, 1992166, "chapter params");
  assertEquals(chapter.forward.macsPerImage, 762297352, "chapter MACs");
});

Deno.test("resources: per-layer parameters, MACs and shapes match the PyTorch fixture", async () => {
  const fixture = JSON.parse(await Deno.readTextFile(new URL("tests/fixtures/resources_torch.json", ROOT)));
  assertEquals(fixture.configs.length >= 4, true, "fixture configurations");
  for (const config of fixture.configs) {
    const [n, channels, size] = config.input_shape;
    const r = analyzeResources({
      batchSize: n,
      resize: size,
      inChannels: channels,
      oneByOneConvs: config.one_by_one_convs,
    });
    const what = `torch ${config.one_by_one_convs} 1x1 convs at ${size}`;
    assertEquals(r.params.count, config.params, `${what}: params`);
    assertEquals(r.forward.macs, config.conv_macs, `${what}: MACs`);
    assertEquals(
      r.layers.map((l) => [l.index, l.type, l.outputShape, l.params, l.macs]),
      config.layers.map((l: Record<string, unknown>) => [l.index, l.type, l.output_shape, l.params, l.macs]),
      `${what}: layers`,
    );
  }
});

Deno.test("resources: FLOP conventions per layer", () => {
  const r = analyzeResources({ batchSize: 4, resize: 224 });
  const layer = (index: string) => r.layers.find((l) => l.index === index)!;
  // Convolutions: 2 FLOPs per MAC forward; training adds the weight gradient (2/MAC), the bias gradient
  // (1 per output element) and, except for the first layer, the input gradient (2/MAC).
  const first = layer("0.0");
  assertEquals(first.flops, 2 * first.macs, "0.0 forward");
  assertEquals(first.trainFlops, 4 * first.macs + 96 * 54 * 54, "0.0 train (no input gradient)");
  const second = layer("2.0");
  assertEquals(second.trainFlops, 6 * second.macs + 256 * 26 * 26, "2.0 train");
  assertEquals(layer("0.1").fusedInto, "0.0", "ReLU fused");
  assertEquals(
    [layer("0.1").flops, layer("0.1").trainFlops, layer("0.1").savedBytes],
    [0, 0, 0],
    "fused ReLU",
  );
  // Max pooling: 9 comparisons per output forward, 1 add per output backward; dropout 1 multiply each way
  // in training, nothing in inference.
  assertEquals([layer("1").flops, layer("1").trainFlops], [96 * 26 * 26 * 9, 96 * 26 * 26 * 10], "maxpool");
  assertEquals([layer("6").flops, layer("6").trainFlops], [0, 2 * 384 * 5 * 5], "dropout");
  // The step: forward + input gradients + weight gradients + loss (7 per logit) + SGD (2 per parameter).
  const t = r.trainStep;
  assertEquals(t.loss, 7 * 4 * 10, "loss FLOPs");
  assertEquals(t.optimizer, 2 * r.params.count, "SGD FLOPs");
  assertEquals(t.total, t.forward + t.inputGradients + t.weightGradients + t.loss + t.optimizer, "total");
  assertEquals(
    t.total,
    4 * r.layers.reduce((s, l) => s + l.trainFlops, 0) + t.loss + t.optimizer,
    "per layer",
  );
  const withMomentum = analyzeResources({ batchSize: 4, resize: 224, momentum: 0.9 });
  assertEquals(withMomentum.trainStep.optimizer, 5 * r.params.count, "SGD with momentum FLOPs");
  assertEquals(MAC_CONVENTION, "1 MAC = 1 multiply + 1 add = 2 FLOPs", "convention");
});

Deno.test("resources: memory predictions follow the batch, the split and the optimizer", () => {
  const base: ResourceOptions = { batchSize: 8, resize: 96 };
  const plain = analyzeResources(base);
  const momentum = analyzeResources({ ...base, momentum: 0.9 });
  // Momentum buffers are as large as the parameters, rounded like them.
  assertEquals(
    momentum.memory.training.bytes - plain.memory.training.bytes,
    momentum.memory.training.breakdown["momentum buffers"],
    "momentum buffers",
  );
  assertEquals(
    momentum.memory.training.breakdown["momentum buffers"],
    plain.memory.training.breakdown.parameters,
    "momentum = parameters",
  );
  const split = analyzeResources({ ...base, microBatch: 3 });
  assertEquals([split.memory.training.microBatch, split.memory.training.microBatches], [3, 3], "split");
  assertEquals(split.memory.training.bytes < plain.memory.training.bytes, true, "a split lowers the peak");
  assertEquals(split.trainStep.total, plain.trainStep.total, "a split does not change the FLOPs");
  // A binding limit that holds 5 samples of the largest activation (96 x 22 x 22 floats) splits 8 into 5 + 3.
  const limited = analyzeResources({ ...base, maxBindingBytes: 5 * 96 * 22 * 22 * 4 + 100 });
  assertEquals(limited.memory.inference.microBatch, 5, "inference split by the binding");
  assertEquals(limited.memory.training.microBatches, 2, "training split by the binding");
  assertEquals(plain.options.maxBindingBytes, DEFAULT_MAX_BINDING_BYTES, "default binding");
  assertEquals(plain.memory.inference.bytes < plain.memory.training.bytes, true, "inference < training");
});

Deno.test("resources: bad configurations are NinErrors naming the problem", () => {
  assertThrows(() => analyzeResources({ batchSize: 0, resize: 224 }), NinError, "batch size");
  assertThrows(
    () => analyzeResources({ batchSize: 1, resize: 50 }),
    NinError,
    "smallest input that works is 67x67",
  );
  assertThrows(
    () => analyzeResources({ batchSize: 1, resize: 96, oneByOneConvs: -1 }),
    NinError,
    "oneByOneConvs",
  );
  assertThrows(() => analyzeResources({ batchSize: 1, resize: 96, microBatch: 0 }), NinError, "micro-batch");
  assertThrows(
    () => analyzeResources({ batchSize: 1, resize: 224, maxBindingBytes: 1000 }),
    NinError,
    "smaller --resize",
  );
});

gpuTest("resources: the configuration-only model is the one nin() builds", (gpu) => {
  for (const options of [{}, { oneByOneConvs: 0 }, { oneByOneConvs: 3, numClasses: 7, inChannels: 3 }]) {
    const net = nin(gpu, options);
    const spec = ninSpec(options);
    const input = [2, options.inChannels ?? 1, 99, 99];
    const real = layerShapes(net, input, true);
    const r = analyzeResources({ ...options, batchSize: 2, resize: 99 });
    const what = JSON.stringify(options);
    assertEquals(specLeaves(spec).map((l) => l.name), real.map((row) => row.name), `${what} names`);
    assertEquals(
      r.layers.map((l) => [l.index, l.type, l.outputShape]),
      real.map((row) => [row.name, row.layer.constructor.name, row.shape]),
      `${what} layers`,
    );
    const own = new Map(real.map((row) => [
      row.name,
      row.layer.ownParameters().reduce((s, [, p]) => s + p.value.size, 0),
    ]));
    assertEquals(r.layers.map((l) => l.params), r.layers.map((l) => own.get(l.index)), `${what} params`);
    // Same split (or the same refusal) for limits that fit everything, some samples, one, or none.
    const outcome = (split: () => number) => {
      try {
        return split();
      } catch (e) {
        if (e instanceof NinError) return "refused";
        throw e;
      }
    };
    for (const binding of [DEFAULT_MAX_BINDING_BYTES, 1_000_000, 250_000, 40_000]) {
      for (const requested of [undefined, 1, 100]) {
        assertEquals(
          outcome(() => specMicroBatch(spec, input.slice(1), 16, binding, requested)),
          outcome(() => microBatchSize(net, input.slice(1), 16, binding, requested)),
          `${what} micro-batch at ${binding}, requested ${requested}`,
        );
      }
    }
    net.dispose();
  }
});

// Small configurations (resize <= 96) covering momentum, a forced split, dropout 0 and the 1x1 variants.
const MEASURED: ResourceOptions[] = [
  { batchSize: 2, resize: 72 },
  { batchSize: 4, resize: 96, momentum: 0.9 },
  { batchSize: 4, resize: 72, microBatch: 3 },
  { batchSize: 3, resize: 80, momentum: 0.5, microBatch: 2, oneByOneConvs: 1 },
  { batchSize: 2, resize: 67, dropout: 0, oneByOneConvs: 0 },
];

for (const options of MEASURED) {
  gpuTest(
    `resources: predicted memory and FLOPs equal a real run ${JSON.stringify(options)}`,
    async (gpu) => {
      const m = await measureResources(gpu, options);
      for (const [what, pass] of [["prediction", m.inference], ["training", m.training]] as const) {
        const relative = Math.abs(pass.measuredBytes - pass.predictedBytes) / pass.predictedBytes;
        if (relative > 0.05) {
          throw new Error(
            `${what}: predicted ${pass.predictedBytes} B, measured ${pass.measuredBytes} B (> 5% off)`,
          );
        }
        // The replay mirrors the toolkit's buffer schedule exactly; any difference means a layer, the trainer or
        // a kernel's workspace changed how it allocates and lib/buffer_replay.ts must follow.
        assertEquals(pass.measuredBytes, pass.predictedBytes, `${what}: measured bytes (exact)`);
        assertEquals(pass.dispatchedFlops, pass.predictedFlops, `${what}: dispatched FLOPs`);
      }
      assertEquals(m.training.microBatch, m.resources.memory.training.microBatch, "training micro-batch");
      assertEquals(m.inference.microBatch, m.resources.memory.inference.microBatch, "inference micro-batch");
    },
  );
}

async function runTask(args: string[], env: Record<string, string> = {}) {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-env", "tasks/resources.ts", ...args],
    cwd: ROOT,
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code, stdout: new TextDecoder().decode(stdout), stderr: new TextDecoder().decode(stderr) };
}

const JSON_KEYS = [
  "convention",
  "config",
  "params",
  "layers",
  "forward",
  "train_step",
  "memory",
  "measurement",
];
const MEMORY_KEYS = ["predicted_bytes", "measured_bytes", "micro_batch", "micro_batches", "peak_at"];

function checkJson(object: Record<string, unknown>, measured: boolean): void {
  for (const key of JSON_KEYS) assertEquals(key in object, true, `key ${key}`);
  const o = object as {
    params: { count: number; bytes: number };
    layers: Record<string, unknown>[];
    forward: Record<string, number>;
    train_step: Record<string, number>;
    memory: Record<string, Record<string, number | null>>;
    measurement: Record<string, Record<string, number>> | null;
  };
  assertEquals(typeof o.params.count, "number", "params.count");
  assertEquals(o.layers.length > 0 && "index" in o.layers[0] && "saved_bytes" in o.layers[0], true, "layers");
  assertEquals(typeof o.forward.macs === "number" && typeof o.forward.flops === "number", true, "forward");
  assertEquals(typeof o.train_step.flops, "number", "train_step.flops");
  for (const pass of ["inference", "training"]) {
    for (const key of MEMORY_KEYS) assertEquals(key in o.memory[pass], true, `memory.${pass}.${key}`);
    assertEquals(typeof o.memory[pass].predicted_bytes, "number", `memory.${pass}.predicted_bytes`);
    assertEquals(o.memory[pass].measured_bytes === null, !measured, `memory.${pass}.measured_bytes`);
    if (measured) {
      assertEquals(
        o.memory[pass].measured_bytes,
        o.memory[pass].predicted_bytes,
        `${pass} measured == predicted`,
      );
      assertEquals(
        o.measurement![pass].dispatched_flops,
        o.measurement![pass].predicted_flops,
        `${pass} FLOPs`,
      );
    }
  }
  assertEquals(o.measurement === null, !measured, "measurement");
}

Deno.test("resources task: --no-measure --json is valid JSON with the documented keys, with no GPU adapter", async () => {
  // No Vulkan driver and the Vulkan backend only: Deno's WebGPU finds no adapter at all.
  const noAdapter = {
    VK_ICD_FILENAMES: "/nonexistent",
    VK_DRIVER_FILES: "/nonexistent",
    DENO_WEBGPU_BACKEND: "vulkan",
  };
  const { code, stdout, stderr } = await runTask(["--no-measure", "--json"], noAdapter);
  assertEquals(code, 0, `exit code (stderr: ${stderr})`);
  const object = JSON.parse(stdout);
  checkJson(object, false);
  assertEquals(object.params.count, 1992166, "params");
  assertEquals(object.config.batch_size, 128, "default batch");
  assertEquals(object.config.input_shape, [128, 1, 224, 224], "default input");
  const compare = JSON.parse((await runTask(["--no-measure", "--json", "--compare"], noAdapter)).stdout);
  assertEquals(
    compare.variants.map((v: { config: { one_by_one_convs: number } }) => v.config.one_by_one_convs),
    [
      2,
      1,
      0,
    ],
    "compare variants",
  );
  const text = await runTask(["--no-measure"], noAdapter);
  assertEquals(text.stdout.includes(MAC_CONVENTION), true, "text states the convention");
  assertEquals(text.stdout.includes("Exercise 3"), true, "text answers exercise 3");
  const bad = await runTask(["--no-measure", "--resize", "40"], noAdapter);
  assertEquals(bad.code, 2, "bad --resize exit code");
  assertEquals(bad.stderr.includes("--resize 40") && bad.stderr.includes("67x67"), true, bad.stderr);
});

gpuTest("resources task: a measured run's --json agrees with itself", async () => {
  const { code, stdout, stderr } = await runTask(["--batch-size", "2", "--resize", "72", "--json"]);
  assertEquals(code, 0, `exit code (stderr: ${stderr})`);
  const object = JSON.parse(stdout);
  checkJson(object, true);
  assertEquals(object.measurement.batch_size, 2, "measured batch");
});
