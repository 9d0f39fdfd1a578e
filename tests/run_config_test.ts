// What tuning needs, below the tasks: the typed run configuration (and today's flag-keyed checkpoints read
// through it), learning-rate schedules (values worked out by hand; the GPU update follows them step by
// step), the seeded validation split, and the experiments' trials, shards and report.
import { assertClose, assertJsonEqual, assertThrowsWith, gpuTest, Tensor } from "./util.ts";
import { loadCheckpoint, saveCheckpoint } from "../lib/deno/checkpoint_file.ts";
import { configDifferences, readRunConfig, runConfig } from "../lib/config.ts";
import { encodeCheckpoint, parseCheckpoint } from "../lib/checkpoint.ts";
import { NinError } from "../lib/errors.ts";
import { buildExperiment, parseShard, shardTrials } from "../lib/experiment.ts";
import { experimentReport, type TrialResult } from "../lib/experiment_report.ts";
import { Parameter } from "../lib/module.ts";
import { countingGpu } from "../lib/gpu/counting.ts";
import { nin } from "../lib/nin.ts";
import { SGD } from "../lib/optim.ts";
import { learningRate } from "../lib/schedule.ts";
import { saveSafetensors } from "../lib/deno/safetensors_file.ts";
import { type Examples, holdOut } from "../lib/data/batches.ts";
import { featureStats } from "../lib/head_features.ts";

// The run state of a checkpoint written by today's `deno task train` (commit 0cdb600) on the software preset,
// copied verbatim from the file: configuration keyed by flag names, plot and metrics among them.
const TODAYS_STATE =
  `{"epoch":1,"step":6,"seed":0,"config":{"lr":0.05,"batch-size":4,"resize":67,"momentum":0,` +
  `"weight-decay":0,"dropout":0.5,"one-by-one-convs":2,"init":"kaiming","seed":0,"limit-train":32000,` +
  `"limit-test":null,"epochs":1,"plot":null,"metrics":"/tmp/tmp.AKWZWpsroE/m.jsonl"},"history":[{"epoch":1,` +
  `"loss":2.449983517328898,"trainAcc":0,"testAcc":0.125,"examplesPerSec":0.2959177962968034,` +
  `"trainSeconds":81.103604786,"step":6}],"curve":[{"x":0.5,"loss":2.522114356358846,"trainAcc":0}]}`;

Deno.test("today's checkpoints are read through RunConfig: flags become typed fields, outputs kept", async () => {
  const dir = await Deno.makeTempDir({ prefix: "nin_config_" });
  try {
    const path = `${dir}/today.safetensors`;
    const tensors = new Map([["0.0.bias", {
      dtype: "F32" as const,
      shape: [1],
      data: new Float32Array([1]),
    }]]);
    await saveSafetensors(path, tensors, { format: "nin-webgpu-checkpoint/1", state: TODAYS_STATE });
    const { state } = await loadCheckpoint(path);
    assertJsonEqual(state.config, {
      version: 2,
      seed: 0,
      model: {
        numClasses: 10,
        inChannels: 1,
        dropout: 0.5,
        oneByOneConvs: 2,
        init: "kaiming",
        head: "direct",
      },
      train: {
        lr: 0.05,
        schedule: { kind: "constant", warmupSteps: 0 },
        momentum: 0,
        weightDecay: 0,
        batchSize: 4,
        epochs: 1,
      },
      data: { resize: 67, limitTrain: 32000, limitTest: null, valid: 0 },
    }, "config");
    assertJsonEqual(state.history[0].testAcc, 0.125, "history");
    assertJsonEqual(state.outputs, { metrics: "/tmp/tmp.AKWZWpsroE/m.jsonl" }, "outputs");

    // A checkpoint written now carries the versioned object and reads back equal.
    const config = runConfig({
      seed: 3,
      model: { head: "gradual" },
      train: { schedule: { kind: "cosine", warmupSteps: 5 } },
    });
    const now = `${dir}/now.safetensors`;
    await saveCheckpoint(nin(countingGpu(), { oneByOneConvs: 0 }), now, {
      state: { config, history: state.history },
    });
    const read = await loadCheckpoint(now);
    assertJsonEqual(read.state.config, config, "round trip");
    assertJsonEqual(configDifferences(read.state.config!, config), [], "no differences");
    // Read and written again, a checkpoint is the same bytes (the page's Load then Save relies on it).
    const net = nin(countingGpu(), { oneByOneConvs: 0 });
    const bytes = await encodeCheckpoint(net, { state: { config, history: state.history } });
    assertJsonEqual(
      Array.from(await encodeCheckpoint(net, { state: parseCheckpoint(bytes, "again").state })),
      Array.from(bytes),
      "bytes after a round trip",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("RunConfig: defaults, differences, and bad files named", () => {
  const a = runConfig();
  assertJsonEqual(
    [a.train.lr, a.train.batchSize, a.data.resize, a.model.init],
    [0.1, 128, 224, "xavier"],
    "chapter",
  );
  assertJsonEqual(
    configDifferences(a, runConfig({ train: { lr: 0.05 }, model: { head: "gradual" } })),
    [{ path: "model.head", a: "direct", b: "gradual" }, { path: "train.lr", a: 0.1, b: 0.05 }],
    "differences",
  );
  assertJsonEqual(readRunConfig({}, "f"), null, "an empty configuration");
  assertThrowsWith(
    () => readRunConfig({ version: 99 }, "f.safetensors"),
    NinError,
    "f.safetensors",
    "version 99",
  );
  assertThrowsWith(() => readRunConfig({ lr: "fast" }, "f.safetensors"), NinError, 'lr is "fast"');
  assertThrowsWith(() => runConfig({ data: { valid: -1 } }), NinError, "valid must be an integer >= 0");
});

Deno.test("schedules: warm-up, cosine and step decay match the values worked out by hand", () => {
  const lrs = (kind: "constant" | "cosine" | "step", warmupSteps: number, total: number) =>
    Array.from({ length: total + 1 }, (_, s) => learningRate(0.1, { kind, warmupSteps }, s, total));
  assertClose(
    lrs("constant", 4, 6),
    [0.025, 0.05, 0.075, 0.1, 0.1, 0.1, 0.1],
    { atol: 1e-15, rtol: 0 },
    "warm-up",
  );
  // Cosine over the 4 steps after the warm-up: 0.1 * (1 + cos(pi t / 4)) / 2, never reaching 0.
  const c = 0.05 * Math.SQRT1_2;
  assertClose(
    lrs("cosine", 2, 6),
    [0.05, 0.1, 0.1, 0.05 + c, 0.05, 0.05 - c, 0.05 - c],
    { atol: 1e-15, rtol: 0 },
    "cosine",
  );
  // Step: x0.1 after each third of the 9 steps.
  assertClose(lrs("step", 0, 9).slice(0, 9), [0.1, 0.1, 0.1, 0.01, 0.01, 0.01, 0.001, 0.001, 0.001], {
    atol: 1e-15,
    rtol: 0,
  }, "step");
});

gpuTest("SGD.schedule: each step's update uses that step's rate", async (gpu) => {
  const p = new Parameter(Tensor.fromArray(gpu, [1], [1]));
  const rates = [0.5, 0.25, 0.125];
  const opt = new SGD([p], { lr: 1, schedule: (step) => rates[step] });
  for (let i = 0; i < 3; i++) {
    p.grad = Tensor.fromArray(gpu, [1], [1]);
    opt.step();
    opt.zeroGrad();
  }
  // w = 1 - sum of the rates, each step's gradient being 1.
  assertClose(await p.value.toArray(), [0.125], { atol: 1e-7, rtol: 0 }, "weight");
  assertJsonEqual(opt.lr, 0.125, "the last step's rate");
  opt.dispose();
  p.dispose();
});

Deno.test("holdOut: a seeded split, disjoint, covering the examples, each part in the original order", () => {
  const count = 50;
  const images = Uint8Array.from({ length: count * 2 }, (_, i) => Math.floor(i / 2));
  const examples: Examples = {
    images,
    labels: Uint8Array.from({ length: count }, (_, i) => i % 10),
    count,
    height: 1,
    width: 2,
  };
  const ids = (e: Examples) => Array.from({ length: e.count }, (_, i) => e.images[2 * i]);
  const { train, valid } = holdOut(examples, 10, 7);
  const [t, v] = [ids(train), ids(valid)];
  assertJsonEqual([t.length, v.length], [40, 10], "sizes");
  assertJsonEqual([...t, ...v].sort((a, b) => a - b), Array.from({ length: count }, (_, i) => i), "coverage");
  assertJsonEqual(
    [t, v].map((part) => part.every((x, i) => i === 0 || part[i - 1] < x)),
    [true, true],
    "order",
  );
  assertJsonEqual(Array.from(valid.labels), v.map((i) => i % 10), "labels follow their images");
  assertJsonEqual(ids(holdOut(examples, 10, 7).valid), v, "same seed, same split");
  if (JSON.stringify(ids(holdOut(examples, 10, 8).valid)) === JSON.stringify(v)) {
    throw new Error("seed ignored");
  }
  assertThrowsWith(
    () => holdOut(examples, 50, 0),
    NinError,
    "validation images",
    "the split has 50 examples",
  );
});

Deno.test("experiments: trials per variant and seed; shards cover every trial once", () => {
  const head = buildExperiment("head", { seeds: 2 });
  assertJsonEqual(head.trials.map((t) => t.id), [
    "head-direct-seed0",
    "head-direct-seed1",
    "head-gradual-seed0",
    "head-gradual-seed1",
  ], "head trials");
  assertJsonEqual(head.trials.map((t) => [t.config.seed, t.config.model.head]), [
    [0, "direct"],
    [1, "direct"],
    [0, "gradual"],
    [1, "gradual"],
  ], "configurations");
  const oneByOne = buildExperiment("one-by-one", { seeds: 3, scale: "chapter" });
  assertJsonEqual(oneByOne.variants.map((v) => v.config.model.oneByOneConvs), [2, 1, 0], "1x1 convs");
  assertJsonEqual([oneByOne.variants[0].config.data.resize, oneByOne.variants[0].config.train.batchSize], [
    224,
    128,
  ], "chapter");
  const shards = [0, 1, 2, 3].map((index) =>
    shardTrials(oneByOne.trials, { index, count: 4 }).map((t) => t.id)
  );
  assertJsonEqual(shards.flat().sort(), oneByOne.trials.map((t) => t.id).sort(), "shards cover the trials");
  assertJsonEqual(shards.map((s) => s.length), [3, 2, 2, 2], "shard sizes");
  assertThrowsWith(() => parseShard("4/4"), NinError, "0 <= i < n");
  const grid = buildExperiment("hyperparameters", {
    space: { lr: [0.01, 0.1], momentum: [0, 0.9] },
    seeds: 1,
  });
  assertJsonEqual(grid.variants.map((v) => v.id), [
    "lr0.01-momentum0",
    "lr0.01-momentum0.9",
    "lr0.1-momentum0",
    "lr0.1-momentum0.9",
  ], "grid");
  assertJsonEqual(grid.variants[0].config.data.valid > 0, true, "a validation split");
  const sample = buildExperiment("hyperparameters", {
    space: { lr: [0.01, 0.1], momentum: [0, 0.9] },
    trials: 2,
  });
  assertJsonEqual(sample.variants.length, 2, "random search");
});

Deno.test("experiment report: ranked by validation, test accuracy only for the chosen one, order-independent", () => {
  const e = buildExperiment("hyperparameters", { space: { lr: [0.01, 0.1] }, seeds: 2 });
  const result = (
    trial: string,
    variant: string,
    seed: number,
    validAcc: number,
    testAcc: number,
  ): TrialResult => ({
    trial,
    variant,
    seed,
    config: e.trials.find((t) => t.id === trial)!.config,
    history: [{
      epoch: 1,
      loss: 1,
      trainAcc: 0.5,
      testAcc,
      validAcc,
      examplesPerSec: 10,
      trainSeconds: 5,
      step: 3,
    }],
    curve: [{ examples: 50, loss: 1.5 }, { examples: 100, loss: 1 }],
    seconds: 9,
    device: "test",
  });
  const results = [
    result("lr0.01-seed0", "lr0.01", 0, 0.5, 0.51),
    result("lr0.01-seed1", "lr0.01", 1, 0.6, 0.61),
    result("lr0.1-seed0", "lr0.1", 0, 0.7, 0.71),
    result("lr0.1-seed1", "lr0.1", 1, 0.8, 0.81),
  ];
  const report = experimentReport(e, results, new Map());
  const rows = report.markdown.split("\n").filter((l) => l.startsWith("| lr"));
  // Mean 0.75 and sample sd 0.0707 of the best; the other's test accuracy is not shown.
  assertJsonEqual(rows.map((r) => r.split(" | ").slice(6, 8)), [
    ["0.750 ± 0.071", "0.760 ± 0.071"],
    ["0.550 ± 0.071", "(not looked at)"],
  ], "rows");
  assertJsonEqual(experimentReport(e, [...results].reverse(), new Map()), report, "order of results");
  if (!report.svg.includes("<polygon")) throw new Error("no band over seeds in the SVG");
});

Deno.test("head features: dead channels and effective rank of hand-made features", () => {
  // Variances 8 and 2 along two directions: singular values sqrt(8) and sqrt(2), shares 2/3 and 1/3, so the
  // effective rank is exp(-(2/3) ln(2/3) - (1/3) ln(1/3)) = 1.889882; the same rotated by 45 degrees.
  const expected = Math.exp(-(2 / 3) * Math.log(2 / 3) - (1 / 3) * Math.log(1 / 3));
  const axes = featureStats([2, 0, -2, 0, 0, 1, 0, -1], 4, 2, 1);
  const r = Math.SQRT1_2;
  const rotated = featureStats([2 * r, 2 * r, -2 * r, -2 * r, -r, r, r, -r], 4, 2, 1);
  assertClose(
    [axes.effectiveRank, rotated.effectiveRank],
    [expected, expected],
    { atol: 1e-9, rtol: 0 },
    "rank",
  );
  // Three channels of two positions; channel 1 is zero everywhere; the rest vary along one direction.
  const rows = [1, 2, 0, 0, 3, 3, 2, 4, 0, 0, 6, 6, 3, 6, 0, 0, 9, 9];
  const dead = featureStats(rows, 3, 3, 2);
  assertJsonEqual([dead.deadChannels, dead.maxRank], [1, 2], "dead channels and the rank bound");
  assertClose([dead.effectiveRank], [1], { atol: 1e-9, rtol: 0 }, "rank of features along one direction");
});
