// The tasks' successful output: the chapter's shape table, and bench's JSON figures.
import { assertJsonEqual, gpuTest } from "./util.ts";
import { runTask, taskTest } from "./subprocess.ts";
import { GEMM_CANDIDATES } from "../lib/layers/conv2d_gpu_candidates.ts";
import { measureRoofline } from "../lib/roofline.ts";

// The chapter's PyTorch output for a 1x1x224x224 input (d2l, NiN section).
const CHAPTER_TABLE = [
  "Sequential output shape:\t [1, 96, 54, 54]",
  "MaxPool2d output shape:\t [1, 96, 26, 26]",
  "Sequential output shape:\t [1, 256, 26, 26]",
  "MaxPool2d output shape:\t [1, 256, 12, 12]",
  "Sequential output shape:\t [1, 384, 12, 12]",
  "MaxPool2d output shape:\t [1, 384, 5, 5]",
  "Dropout output shape:\t [1, 384, 5, 5]",
  "Sequential output shape:\t [1, 10, 5, 5]",
  "AdaptiveAvgPool2d output shape:\t [1, 10, 1, 1]",
  "Flatten output shape:\t [1, 10]",
];

taskTest("shapes: the GPU forward pass prints the chapter's table row for row", async () => {
  const result = await runTask("shapes", []);
  if (result.code !== 0) throw new Error(result.stderr);
  assertJsonEqual(result.stdout.trimEnd().split("\n"), CHAPTER_TABLE, "shape table");
  const leaf = await runTask("shapes", ["--leaf", "--one-by-one-convs", "1", "--batch-size", "2"]);
  const lines = leaf.stdout.trimEnd().split("\n");
  assertJsonEqual([lines.length, lines[0], lines.at(-1)], [
    4 * 4 + 6, // four blocks of conv, relu, 1x1 conv, relu, plus 3 pools, dropout, avgpool, flatten
    "0.0 Conv2d output shape:\t [2, 96, 54, 54]",
    "9 Flatten output shape:\t [2, 10]",
  ], "--leaf rows");
});

taskTest("bench --json: throughput, roofline and per-kernel figures with the documented keys", async () => {
  const args = [
    "--resize",
    "67",
    "--batch-size",
    "2",
    "--steps",
    "1",
    "--warmup",
    "1",
    "--roofline-size",
    "512",
  ];
  const result = await runTask("bench", [...args, "--json"]);
  if (result.code !== 0) throw new Error(result.stderr);
  const figures = JSON.parse(result.stdout);
  for (const key of ["train_examples_per_s", "infer_examples_per_s", "roofline_gflops"]) {
    if (!(figures[key] > 0)) throw new Error(`${key} is ${figures[key]}`);
  }
  const names = new Set(figures.kernels.map((k: { name: string }) => k.name));
  // The child inherits NIN_KERNELS (auto: the software family on llvmpipe, the gpu family on a GPU).
  const family = figures.kernel_family === "gpu"
    ? ["conv2d_gpu_forward_relu", "conv2d_gpu_backward_weight", "maxpool2d_backward"]
    : ["conv2d_forward_relu", "conv2d_backward_weight", "maxpool2d_backward_planes"];
  for (const name of [...family, "sgd_step"]) {
    if (!names.has(name)) throw new Error(`no ${name} in ${[...names]}`);
  }
  for (const k of figures.kernels) {
    if (!(k.calls > 0 && k.ms >= 0 && Number.isFinite(k.roofline_share))) throw new Error(JSON.stringify(k));
  }
});

taskTest("bench --plan --json: every dispatch of one training step, from the counting device", async () => {
  const plans: Record<string, Record<string, unknown>> = {};
  for (const kernels of ["gpu", "software"]) {
    // No adapter is opened: the plan runs without --allow-ffi.
    const result = await runTask("bench", [
      "--plan",
      "--json",
      "--kernels",
      kernels,
      "--resize",
      "224",
      "--batch-size",
      "128",
    ], {
      permissions: ["--allow-env"],
    });
    if (result.code !== 0) throw new Error(result.stderr);
    plans[kernels] = JSON.parse(result.stdout);
  }
  const { gpu, software } = plans as Record<
    string,
    { dispatches: Record<string, number>[] } & Record<string, number>
  >;
  assertJsonEqual(
    Object.keys(gpu.dispatches[0]),
    [
      "kernel",
      "candidate",
      "phase",
      "workgroups",
      "workgroup_size",
      "flops",
      "executed_flops",
      "tile_efficiency",
    ],
    "dispatch keys",
  );
  // Every GEMM dispatch names its candidate and a tile efficiency in (0, 1]; the paper estimate has a row for
  // the choices in force and one per candidate.
  const gemms = gpu.dispatches.filter((d) => d.candidate as unknown as string !== "");
  if (gemms.length === 0) throw new Error("no GEMM dispatch names a candidate");
  for (const d of gemms) {
    if (!(d.tile_efficiency > 0 && d.tile_efficiency <= 1)) throw new Error(JSON.stringify(d));
  }
  const estimate = (gpu as unknown as { paper_estimate: { steps: { candidate: string; step_ms: number }[] } })
    .paper_estimate.steps;
  assertJsonEqual(
    estimate.map((e) => e.candidate),
    ["in force", ...GEMM_CANDIDATES.map((c) => c.name)],
    "rows",
  );
  for (const e of estimate) if (!(e.step_ms > 0)) throw new Error(JSON.stringify(e));
  // Every part of a step appears, in the order each first runs (resizing is not part of the plan).
  const phases = [...new Set(gpu.dispatches.map((d) => d.phase as unknown as string))];
  assertJsonEqual(phases, ["forward", "loss", "input gradient", "weight gradient", "optimizer"], "phases");
  assertJsonEqual(
    [gpu.kernel_family, software.kernel_family, gpu.micro_batch],
    ["gpu", "software", 128],
    "plan",
  );
  const total = (p: typeof gpu) => p.dispatches.reduce((s, d) => s + d.flops, 0);
  // The same model arithmetic in both families: the training step's FLOPs of tests/resources_test.ts.
  assertJsonEqual(
    [gpu.total_flops, total(gpu), total(software)],
    [577117436364, 577117436364, 577117436364],
    "total FLOPs",
  );
  // The share itself is held to the rule in tests/conv2d_gpu_test.ts; here, that the JSON reports it.
  assertJsonEqual(gpu.rule, { min_workgroups: 528, min_workgroup_size: 64 }, "rule");
  for (const p of [gpu, software]) {
    const share = p.flops_share_meeting_rule;
    if (!(share >= 0 && share <= 1)) throw new Error(`${p.kernel_family} share ${share}`);
  }
});

gpuTest(
  "every roofline candidate computes the product it times; the fastest is the roofline",
  async (gpu) => {
    const roofline = await measureRoofline(gpu, 96, 1);
    const texture = roofline.candidates.filter((c) => c.name.startsWith("texture"));
    if (texture.length === 0 && gpu.readOnlyStorageTextures && gpu.kernels === "software") {
      throw new Error("no texture-fed candidate measured");
    }
    for (const c of roofline.candidates) {
      if (!(c.maxError < 1e-3 && c.gflops > 0 && c.gflops <= roofline.gflops)) {
        throw new Error(
          JSON.stringify(c),
        );
      }
    }
  },
  { kernels: "software" },
);
