// lib/resources.ts: the real model, predictClasses and trainStep on the counting device against the same run
// on the test GPU (to the byte and to the dispatch), the chapter's figures, the FLOP conventions, PyTorch's
// parameter and MAC counts, and the resources task.
import { assertJsonEqual as assertEquals, assertRejectsWith, gpuTest } from "./util.ts";
import { runTask, taskTest } from "./subprocess.ts";
import { countingGpu, countingLimits } from "../lib/gpu/counting.ts";
import type { Gpu } from "../lib/gpu/device.ts";
import { NinError } from "../lib/errors.ts";
import {
  analyzeResources,
  MAC_CONVENTION,
  type PassResources,
  type ResourceOptions,
  type ResourceRun,
  runResources,
} from "../lib/resources.ts";

const MIB = (bytes: number) => (bytes / 2 ** 20).toFixed(1);

/** What must be equal between two runs of the same configuration. */
function accounted(run: ResourceRun) {
  const pass = (p: PassResources) => ({
    bytes: p.bytes,
    breakdown: p.breakdown,
    peakAt: p.peakAt,
    split: [p.microBatch, p.microBatches],
    flops: p.flops,
    dispatches: p.dispatches.map((d) => [d.kernel, d.workgroups, d.workgroupSize, d.flops, d.scope]),
  });
  return { inference: pass(run.inference), training: pass(run.training), saved: [...run.saved] };
}

// Small configurations covering momentum, a split forced by the binding limit and by --micro-batch, dropout 0
// and the 1x1 variants. `binding` (bytes) lowers the binding limit both devices plan micro-batches for.
const CONFIGS: (ResourceOptions & { binding?: number })[] = [
  { batchSize: 2, resize: 72 },
  { batchSize: 4, resize: 96, momentum: 0.9 },
  // A binding as large as the largest parameter (4.0's weight, 384 x 256 x 3 x 3 floats) holds 28 samples of
  // the largest activation at 80x80 (conv 0.0's output, 96 x 18 x 18 floats): 29 = 28 + 1.
  { batchSize: 29, resize: 80, binding: 384 * 256 * 9 * 4 },
  { batchSize: 3, resize: 80, momentum: 0.5, microBatch: 2, oneByOneConvs: 1 },
  { batchSize: 2, resize: 67, dropout: 0, oneByOneConvs: 0 },
];

for (const { binding, ...options } of CONFIGS) {
  gpuTest(
    `resources: the counting device equals the GPU ${JSON.stringify({ ...options, binding })}`,
    async (gpu) => {
      const limit = binding ?? gpu.limits.maxStorageBufferBindingSize;
      const counting = countingGpu({
        kernels: gpu.kernels,
        limits: { ...countingLimits(gpu.limits), maxStorageBufferBindingSize: limit },
      });
      const counted = await runResources(counting, options);
      // The runtime reads the binding limit from gpu.limits only (allocate, microBatchSize): lowering it there
      // makes the real device run the micro-batched schedule for real.
      const real = gpu as { limits: GPUSupportedLimits };
      const limits = real.limits;
      const lowered = new Proxy(limits, {
        get: (target, key) =>
          key === "maxStorageBufferBindingSize" ? limit : target[key as keyof typeof target],
      });
      real.limits = lowered;
      let measured: ResourceRun;
      try {
        measured = await runResources(gpu, options);
      } finally {
        real.limits = limits;
      }
      const [c, m] = [accounted(counted), accounted(measured)];
      for (const what of ["inference", "training"] as const) {
        assertEquals(m[what].bytes, c[what].bytes, `${what} peak bytes`);
        assertEquals(m[what].breakdown, c[what].breakdown, `${what} breakdown`);
        assertEquals(m[what].flops, c[what].flops, `${what} FLOPs`);
        assertEquals(m[what].dispatches, c[what].dispatches, `${what} dispatches`);
      }
      assertEquals(m, c, "everything");
      if (binding) {
        assertEquals([c.inference.split, c.training.split], [[28, 2], [28, 2]], "split by the binding");
      }
      if (options.microBatch) assertEquals(c.training.split, [2, 2], "split by --micro-batch");
      if (options.momentum) {
        assertEquals(c.training.breakdown["momentum buffers"], c.training.breakdown.parameters, "momentum");
      }
    },
  );
}

async function chapter(maxBindingBytes?: number) {
  return await Promise.all(
    [2, 1, 0].map((oneByOneConvs) =>
      analyzeResources({ batchSize: 128, resize: 224, oneByOneConvs, maxBindingBytes, kernels: "software" })
    ),
  );
}

Deno.test("resources: the chapter's figures (software kernels, 128 MiB and 4 GiB bindings)", async () => {
  const [r, one, none] = await chapter();
  assertEquals([r.params.count, one.params.count, none.params.count], [1992166, 1769112, 1546058], "params");
  assertEquals(r.forward.macsPerImage, 762297352, "MACs per image");
  assertEquals([(r.trainStep.total / 1e9).toFixed(1), r.trainStep.total], ["577.1", 577117436364], "step");
  assertEquals([MIB(r.run.training.bytes), MIB(r.run.inference.bytes)], ["1551.6", "436.2"], "memory");
  assertEquals([r.run.training.microBatch, r.run.training.microBatches], [119, 2], "split");
  assertEquals(r.run.training.peakAt, "input gradient of 2.2 (micro-batch 1 of 2)", "training peak");
  assertEquals(r.run.inference.peakAt, "forward of 0.2 (micro-batch 1 of 2)", "prediction peak");
  assertEquals(MIB(r.single.inference.bytes), "11.8", "one image");
  const whole = await chapter(4294967295);
  assertEquals(whole.map((v) => [MIB(v.run.training.bytes), MIB(v.run.inference.bytes)]), [
    ["1641.5", "442.2"],
    ["1197.5", "441.3"],
    ["733.0", "198.8"],
  ], "one pass");
  // The GPU kernel family does the same FLOPs; the software family holds its texture-fed convolutions'
  // packed operands besides (a copy of the layer's input, the weights), and the gpu family its split-K
  // partials and flipped weights: the counting-vs-real test checks each to the byte.
  const gpuFamily = await analyzeResources({ batchSize: 128, resize: 224, kernels: "gpu" });
  assertEquals(gpuFamily.trainStep.total, r.trainStep.total, "gpu kernels: FLOPs");
  assertEquals(
    [MIB(gpuFamily.run.training.bytes), MIB(gpuFamily.run.inference.bytes)],
    ["1148.1", "309.0"],
    "gpu kernels: memory",
  );
});

Deno.test("resources: FLOP conventions per layer", async () => {
  const r = await analyzeResources({ batchSize: 4, resize: 224 });
  const layer = (index: string) => r.layers.find((l) => l.name === index)!;
  // Convolutions: 2 FLOPs per MAC forward; training adds the weight gradient (2/MAC), the bias gradient
  // (1 per output element) and, except for the first layer, the input gradient (2/MAC).
  for (const l of r.layers.filter((l) => l.type === "Conv2d")) {
    assertEquals(l.flops, 2 * l.macsPerImage, `${l.name} forward`);
  }
  const first = layer("0.0");
  assertEquals(first.trainFlops, 4 * first.macsPerImage + 96 * 54 * 54, "0.0 train (no input gradient)");
  const second = layer("2.0");
  assertEquals(second.trainFlops, 6 * second.macsPerImage + 256 * 26 * 26, "2.0 train");
  assertEquals(layer("0.1").fusedInto, "0.0", "ReLU fused");
  assertEquals([layer("0.1").flops, layer("0.1").trainFlops, layer("0.1").savedBytes], [0, 0, 0], "fused");
  // Max pooling: 9 comparisons per output forward, 1 add per output backward; dropout 1 multiply each way
  // in training, nothing in inference.
  assertEquals([layer("1").flops, layer("1").trainFlops], [96 * 26 * 26 * 9, 96 * 26 * 26 * 10], "maxpool");
  assertEquals([layer("6").flops, layer("6").trainFlops], [0, 2 * 384 * 5 * 5], "dropout");
  // Kept for backward: the max pooling output and its u32 indices.
  assertEquals(layer("1").savedBytes, 2 * 4 * 96 * 26 * 26 * 4, "maxpool kept");
  // The step: forward + input gradients + weight gradients + loss (7 per logit) + SGD (2 per parameter).
  const t = r.trainStep;
  assertEquals(t.loss, 7 * 4 * 10, "loss FLOPs");
  assertEquals(t.optimizer, 2 * r.params.count, "SGD FLOPs");
  assertEquals(t.total, t.forward + t.inputGradients + t.weightGradients + t.loss + t.optimizer, "total");
  const perLayer = r.layers.reduce((s, l) => s + l.trainFlops, 0);
  assertEquals(t.total, 4 * perLayer + t.loss + t.optimizer, "per layer");
  // Weight and bias gradients: 2 per MAC and 1 per output element of every convolution.
  const convs = r.layers.filter((l) => l.type === "Conv2d");
  const size = (shape: number[]) => shape.slice(1).reduce((x, y) => x * y, 1);
  const perImage = convs.reduce((s, l) => s + 2 * l.macsPerImage + size(l.outputShape), 0);
  assertEquals(t.weightGradients, 4 * perImage, "weight and bias gradients");
  const withMomentum = await analyzeResources({ batchSize: 4, resize: 224, momentum: 0.9 });
  assertEquals(withMomentum.trainStep.optimizer, 5 * r.params.count, "SGD with momentum FLOPs");
  assertEquals(MAC_CONVENTION, "1 MAC = 1 multiply + 1 add = 2 FLOPs", "convention");
});

Deno.test("resources: per-layer parameters, MACs and shapes match the PyTorch fixture", async () => {
  const fixture = JSON.parse(
    await Deno.readTextFile(new URL("fixtures/resources_torch.json", import.meta.url)),
  );
  for (const config of fixture.configs) {
    const [n, channels, size] = config.input_shape;
    const options = {
      batchSize: n,
      resize: size,
      inChannels: channels,
      oneByOneConvs: config.one_by_one_convs,
    };
    const r = await analyzeResources(options);
    const what = `torch ${config.one_by_one_convs} 1x1 convs at ${size}`;
    assertEquals(r.params.count, config.params, `${what}: params`);
    assertEquals(r.forward.macs, config.conv_macs, `${what}: MACs`);
    assertEquals(
      r.layers.map((l) => [l.name, l.type, l.outputShape, l.params, l.macsPerImage]),
      config.layers.map((l: Record<string, unknown>) => [l.index, l.type, l.output_shape, l.params, l.macs]),
      `${what}: layers`,
    );
  }
});

Deno.test("resources: a split lowers the peak, not the FLOPs; bad input is one NinError", async () => {
  const base: ResourceOptions = { batchSize: 8, resize: 96 };
  const plain = await analyzeResources(base);
  const split = await analyzeResources({ ...base, microBatch: 3 });
  assertEquals([split.run.training.microBatch, split.run.training.microBatches], [3, 3], "split");
  assertEquals(split.run.training.bytes < plain.run.training.bytes, true, "a split lowers the peak");
  assertEquals(split.trainStep.total, plain.trainStep.total, "a split does not change the FLOPs");
  assertEquals(plain.run.inference.bytes < plain.run.training.bytes, true, "inference < training");
  const gpu = (): Gpu => countingGpu();
  const kaiming = await runResources(gpu(), { batchSize: 1, resize: 96, init: "kaiming" });
  assertEquals(kaiming.options.init, "kaiming", "every model option is carried through, init included");
  await assertRejectsWith(() => runResources(gpu(), { batchSize: 0, resize: 224 }), NinError, "batch size");
  await assertRejectsWith(
    () => runResources(gpu(), { batchSize: 1, resize: 50 }),
    NinError,
    "smallest input that works is 67x67",
  );
  await assertRejectsWith(
    () => runResources(gpu(), { batchSize: 1, resize: 96, oneByOneConvs: -1 }),
    NinError,
    "oneByOneConvs",
  );
  await assertRejectsWith(
    () => runResources(gpu(), { batchSize: 1, resize: 96, microBatch: 0 }),
    NinError,
    "micro-batch",
  );
  // Parameters do not shrink with the batch: the error says so, in a unit that is not 0.0 MiB.
  await assertRejectsWith(
    () => analyzeResources({ batchSize: 1, resize: 224, maxBindingBytes: 1000 }),
    NinError,
    "parameters: 45.4 KiB in one buffer, but this device binds at most 1000 B (maxStorageBufferBindingSize); " +
      "their size does not depend on the batch or input size: this model needs a device with a larger binding",
  );
  await assertRejectsWith(
    () => analyzeResources({ batchSize: 128, resize: 224, maxBindingBytes: 8_000_000 }),
    NinError,
    "input batch: 24.5 MiB in one buffer, but this device binds at most 7.6 MiB",
    "use a smaller batch or input size",
  );
});

// No Vulkan driver and the Vulkan backend only: Deno's WebGPU finds no adapter at all.
const NO_ADAPTER = {
  VK_ICD_FILENAMES: "/nonexistent",
  VK_DRIVER_FILES: "/nonexistent",
  DENO_WEBGPU_BACKEND: "vulkan",
};

taskTest("resources task: --no-measure needs no adapter; --json holds the text's figures", async () => {
  const start = performance.now();
  const json = await runTask("resources", ["--no-measure", "--json"], { env: NO_ADAPTER });
  const seconds = (performance.now() - start) / 1000;
  assertEquals(json.code, 0, `exit code (stderr: ${json.stderr})`);
  assertEquals(seconds < 10, true, `--no-measure took ${seconds.toFixed(1)} s`);
  const o = JSON.parse(json.stdout);
  assertEquals(Object.keys(o), [
    "convention",
    "config",
    "params",
    "layers",
    "forward",
    "train_step",
    "memory",
    "measurement",
  ], "keys");
  assertEquals(
    [o.params.count, o.config.input_shape, o.measurement],
    [1992166, [128, 1, 224, 224], null],
    "config",
  );
  assertEquals(
    [o.train_step.flops, MIB(o.memory.training.predicted_bytes)],
    [577117436364, "1551.6"],
    "figures",
  );
  assertEquals(o.memory.training.measured_bytes, null, "not measured");
  const text = await runTask("resources", ["--no-measure"], { env: NO_ADAPTER });
  for (const part of [MAC_CONVENTION, "Exercise 3", "1,992,166", "577.1 GFLOPs", "1551.6 MiB", "436.2 MiB"]) {
    assertEquals(text.stdout.includes(part), true, `text has ${part}`);
  }
  const compare = await runTask("resources", [
    "--no-measure",
    "--json",
    "--compare",
    "--max-binding-bytes",
    "4294967295",
  ], { env: NO_ADAPTER });
  const variants = JSON.parse(compare.stdout).variants;
  assertEquals(variants.map((v: { params: { count: number } }) => v.params.count), [
    1992166,
    1769112,
    1546058,
  ], "variants");
  assertEquals(MIB(variants[0].memory.training.predicted_bytes), "1641.5", "one pass");
  const bad = await runTask("resources", ["--no-measure", "--resize", "40"], { env: NO_ADAPTER });
  assertEquals(bad.code, 2, "bad --resize exit code");
  assertEquals(bad.stderr.includes("--resize 40") && bad.stderr.includes("67x67"), true, bad.stderr);
  assertEquals(bad.stderr.trim().split("\n").length, 1, "one line");
});

taskTest("resources task: a measured run matches the counting device", async () => {
  const { code, stdout, stderr } = await runTask("resources", [
    "--batch-size",
    "2",
    "--resize",
    "72",
    "--json",
  ]);
  assertEquals(code, 0, `exit code (stderr: ${stderr})`);
  const o = JSON.parse(stdout);
  assertEquals(o.measurement.batch_size, 2, "measured batch");
  for (const pass of ["inference", "training"]) {
    const m = o.measurement[pass];
    assertEquals([m.measured_bytes, m.dispatched_flops, m.same_dispatches], [
      m.predicted_bytes,
      m.predicted_flops,
      true,
    ], pass);
    assertEquals(o.memory[pass].measured_bytes, o.memory[pass].predicted_bytes, `${pass} memory`);
  }
});
