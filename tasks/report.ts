/**
 * `deno task report`: everything to measure the day a real GPU is lent, in one command. For each WebGPU
 * engine, in a process of its own, on the adapter it finds: adapter, backend and limits; `bench` for both
 * kernel families (training and inference examples/s with wall, GPU and host-wait figures, per-kernel
 * tables); the gpu family's tuning; inference at two batch sizes; one epoch of the chapter's run with its loss
 * curve and test accuracy; and the paper estimate for an H200 beside the measured figures. Writes
 * `report.json` and `report.md` to `--out` (default `runs/report/`). `--quick` shrinks every size so that a
 * software adapter finishes in minutes.
 *
 * @module
 */
import { pickFlags, runTask } from "./cli.ts";
import { benchmark, type BenchResult, launchPlan, timeLoop } from "./bench.ts";
import { loadTaskData } from "./data.ts";
import { NinError } from "../lib/errors.ts";
import type { Engine, Gpu, KernelFamily } from "../lib/gpu/device.ts";
import { requestGpu } from "../lib/deno/gpu.ts";
import { countingGpu, countingLimits } from "../lib/gpu/counting.ts";
import { nin } from "../lib/nin.ts";
import { SGD } from "../lib/optim.ts";
import { fit } from "../lib/fit.ts";
import { Random } from "../lib/random.ts";
import { Tensor } from "../lib/tensor.ts";
import { recordEvalStep } from "../lib/train.ts";
import { PLAN_BINDING_BYTES } from "../lib/plan.ts";
import { writeFileAtomic } from "../lib/deno/atomic_write.ts";

/** The task's `--help` and flags. */
const TASK = {
  usage: "deno task report [--quick] [--out DIR] [--gpu deno|dawn]",
  summary:
    "Measures what a GPU does with NiN (both engines, both kernel families) and writes report.json/.md.",
  flags: pickFlags(["quick", "out", "gpu", "data-dir", "offline"], { gpu: undefined, out: "runs/report" }),
};

/** Sizes of a report: the chapter's on a GPU, small ones with `--quick`. */
const SCALES = {
  chapter: {
    resize: 224,
    batch: 128,
    steps: 5,
    warmup: 2,
    rooflineSize: 1024,
    inferenceBatches: [128, 1024],
    epoch: { batchSize: 128, resize: 224, lr: 0.1, limitTrain: undefined, limitTest: undefined },
  },
  quick: {
    resize: 67,
    batch: 8,
    steps: 2,
    warmup: 1,
    rooflineSize: 512,
    inferenceBatches: [8, 16],
    epoch: { batchSize: 16, resize: 67, lr: 0.05, limitTrain: 64, limitTest: 32 },
  },
};

/**
 * The paper estimate for an H200 on Deno's engine (issue 16: the gpu family's launch plan and a per-kernel
 * model), shown beside what a GPU measures; the chapter's PyTorch figure for scale.
 */
const PAPER_ESTIMATE = {
  adapter: "NVIDIA H200, Deno's engine, gpu kernels, 224x224, batch 128",
  train_examples_per_s: [1700, 3100],
  infer_examples_per_s: [4400, 6400],
  pytorch_chapter_train_examples_per_s: 5721,
};

const ENGINES: readonly Engine[] = ["deno", "dawn"];
/** What one engine's process runs with: the tasks' permission set of the package's deno.json. */
const CHILD_PERMISSIONS = [
  "--quiet",
  "--config",
  new URL("../deno.json", import.meta.url).pathname,
  "--permission-set=tasks",
];
const FAMILIES: readonly KernelFamily[] = ["software", "gpu"];

/** Inference examples/s at `batch` (queued like `evaluate`, read in ticks). */
async function inferenceRate(gpu: Gpu, batch: number, resize: number, steps: number): Promise<number> {
  const net = nin(gpu, { seed: 0 }).eval();
  const rng = new Random(2);
  const images = Tensor.fromArray(gpu, rng.uniformArray(batch * resize * resize, 0, 1), [
    batch,
    1,
    resize,
    resize,
  ]);
  const labels = new Int32Array(batch);
  const loop = await timeLoop(
    gpu,
    1,
    steps,
    () => recordEvalStep(net, images, labels, { predictions: true }),
  );
  images.dispose();
  net.dispose();
  return batch * 1000 / loop.wallMs;
}

/** Everything one engine measures, in this process. */
async function measureEngine(engine: Engine, quick: boolean, data: Parameters<typeof fit>[2]) {
  const scale = quick ? SCALES.quick : SCALES.chapter;
  const started = performance.now();
  const families: Record<string, BenchResult & { inference: { batch: number; examples_per_s: number }[] }> =
    {};
  let adapter: Record<string, unknown> = {};
  for (const kernels of FAMILIES) {
    const gpu = await requestGpu({ engine, kernels });
    console.error(
      `report: ${gpu.describe()}: bench at ${scale.resize}x${scale.resize}, batch ${scale.batch}`,
    );
    adapter = {
      name: gpu.adapterName,
      backend: gpu.backend ?? "not told by the engine",
      is_software: gpu.isSoftware,
      limits: countingLimits(gpu.limits),
    };
    const bench = await benchmark(gpu, { ...scale, size: scale.resize, tune: kernels === "gpu" && !quick });
    const inference = [];
    for (const batch of scale.inferenceBatches) {
      inference.push({ batch, examples_per_s: await inferenceRate(gpu, batch, scale.resize, scale.steps) });
    }
    families[kernels] = { ...bench, inference };
    gpu.destroy();
  }
  const gpu = await requestGpu({ engine });
  console.error(`report: one epoch with ${gpu.kernels} kernels`);
  const net = nin(gpu, { seed: 0, init: quick ? "kaiming" : "xavier" });
  const opt = new SGD(net.parameters(), { lr: scale.epoch.lr });
  const losses: number[] = [];
  const epochStart = performance.now();
  const [epoch] = await fit(net, opt, data, {
    ...scale.epoch,
    epochs: 1,
    seed: 0,
    onStep: (p) => losses.push(p.loss),
  });
  const epochSeconds = (performance.now() - epochStart) / 1000;
  const chapterRun = {
    kernel_family: gpu.kernels,
    ...scale.epoch,
    steps: losses.length,
    loss_curve: losses,
    epoch_loss: epoch.loss,
    train_acc: epoch.trainAcc,
    test_acc: epoch.testAcc,
    examples_per_s: epoch.examplesPerSec,
    seconds: epochSeconds,
  };
  opt.dispose();
  net.dispose();
  gpu.destroy();
  return {
    engine,
    adapter,
    families,
    chapter_run: chapterRun,
    seconds: (performance.now() - started) / 1000,
  };
}

/**
 * The launch plan of one gpu-family step at the report's size (counting device): its FLOPs, the share meeting
 * the launch rule, and the paper estimate of the step on an H200 per GEMM candidate.
 */
async function planFigures(quick: boolean) {
  const scale = quick ? SCALES.quick : SCALES.chapter;
  const gpu = countingGpu({ kernels: "gpu", limits: { maxStorageBufferBindingSize: PLAN_BINDING_BYTES } });
  const plan = await launchPlan(gpu, scale.batch, scale.resize, undefined);
  return {
    gflop_per_training_step: plan.total_flops / 1e9,
    dispatches: plan.dispatches.length,
    flops_share_meeting_launch_rule: plan.flops_share_meeting_rule,
    paper_estimate_per_candidate: plan.paper_estimate,
  };
}

/** One row of the plan's paper estimate. */
interface StepEstimate {
  candidate: string;
  step_ms: number;
  train_examples_per_s: number;
}

/** report.md from the engines' figures. */
function markdown(
  report: { engines: Awaited<ReturnType<typeof measureEngine>>[] } & Record<string, unknown>,
) {
  const lines = [`# NiN on WebGPU: report (${report.scale})`, ""];
  const est = PAPER_ESTIMATE;
  lines.push(
    `Paper estimate (${est.adapter}): training ${est.train_examples_per_s.join("-")} examples/s, ` +
      `inference ${est.infer_examples_per_s.join("-")}; the chapter's PyTorch trained at ` +
      `${est.pytorch_chapter_train_examples_per_s}.`,
    "",
  );
  const perCandidate = (report.plan as { paper_estimate_per_candidate?: { steps: StepEstimate[] } })
    .paper_estimate_per_candidate;
  if (perCandidate) {
    lines.push("Model of the GPU work alone per GEMM candidate (lib/layers/conv2d_gpu_candidates.ts):", "");
    lines.push("| candidate | ms/step | train examples/s |", "|---|---|---|");
    for (const e of perCandidate.steps) {
      lines.push(`| ${e.candidate} | ${e.step_ms.toFixed(1)} | ${e.train_examples_per_s.toFixed(0)} |`);
    }
    lines.push("");
  }
  for (const e of report.engines) {
    lines.push(
      `## ${e.engine}: ${e.adapter.name} (${e.adapter.backend}${
        e.adapter.is_software ? ", software adapter" : ""
      })`,
      "",
    );
    lines.push(
      "| kernels | train ex/s | wall ms/step | GPU ms/step | host wait ms/step | infer ex/s | inference at other batches |",
      "|---|---|---|---|---|---|---|",
    );
    for (const [family, f] of Object.entries(e.families)) {
      const { train } = f.loops;
      lines.push(
        `| ${family} | ${f.train_examples_per_s.toFixed(1)} | ${train.wallMs.toFixed(1)} | ${
          train.gpuMs.toFixed(1)
        } | ${train.hostWaitMs.toFixed(1)} | ${f.infer_examples_per_s.toFixed(1)} | ${
          f.inference.map((i: { batch: number; examples_per_s: number }) =>
            `batch ${i.batch}: ${i.examples_per_s.toFixed(1)}`
          ).join(", ")
        } |`,
      );
    }
    const c = e.chapter_run;
    lines.push(
      "",
      `One epoch (${c.kernel_family} kernels, ${c.steps} steps of ${c.batchSize} at ${c.resize}x${c.resize}, lr ${c.lr}): ` +
        `loss ${c.epoch_loss.toFixed(3)}, train acc ${c.train_acc.toFixed(3)}, test acc ${
          c.test_acc.toFixed(3)
        }, ` +
        `${c.examples_per_s.toFixed(1)} examples/s, ${c.seconds.toFixed(0)} s.`,
      "",
    );
    for (const [family, f] of Object.entries(e.families)) {
      lines.push(`### ${family} kernels: per-kernel GPU time of one training step (${f.timing})`, "");
      lines.push("| kernel | calls | ms | GFLOP/s |", "|---|---|---|---|");
      for (const k of f.kernels.filter((k: { phase: string }) => k.phase === "train").slice(0, 12)) {
        lines.push(`| ${k.name} | ${k.calls} | ${k.ms.toFixed(2)} | ${k.gflops.toFixed(1)} |`);
      }
      if (f.tuning) lines.push("", `Tuning: ${JSON.stringify(f.tuning)}`);
      lines.push("");
    }
  }
  return lines.join("\n") + "\n";
}

if (import.meta.main) {
  await runTask(TASK, async (flags) => {
    const quick = flags.quick;
    const out = flags.out;
    if (flags.gpu) {
      const data = await loadTaskData(flags);
      // One engine, in this process: the figures go to OUT/ENGINE.json for the parent to merge.
      const figures = await measureEngine(flags.gpu, quick, data);
      await Deno.mkdir(out, { recursive: true });
      await writeFileAtomic(`${out}/${flags.gpu}.json`, new TextEncoder().encode(JSON.stringify(figures)));
      return;
    }
    const started = performance.now();
    const engines = [];
    for (const engine of ENGINES) {
      const child = await new Deno.Command(Deno.execPath(), {
        args: ["run", ...CHILD_PERMISSIONS, new URL(import.meta.url).pathname, ...Deno.args, "--gpu", engine],
        stdout: "inherit",
        stderr: "inherit",
      }).output();
      if (!child.success) {
        throw new NinError(`report: the ${engine} engine's measurements failed (see above)`);
      }
      engines.push(JSON.parse(await Deno.readTextFile(`${out}/${engine}.json`)));
      await Deno.remove(`${out}/${engine}.json`);
    }
    const report = {
      scale: quick ? "quick" : "chapter",
      paper_estimate: PAPER_ESTIMATE,
      plan: await planFigures(quick),
      engines,
      seconds: (performance.now() - started) / 1000,
    };
    await writeFileAtomic(
      `${out}/report.json`,
      new TextEncoder().encode(JSON.stringify(report, null, 2) + "\n"),
    );
    await writeFileAtomic(`${out}/report.md`, new TextEncoder().encode(markdown(report)));
    console.log(`report: ${out}/report.json and ${out}/report.md (${report.seconds.toFixed(0)} s)`);
  });
}
