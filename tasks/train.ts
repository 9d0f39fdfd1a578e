/**
 * `deno task train`: the chapter's training run (d2l defaults: lr 0.1, 10 epochs, batch 128, resize 224)
 * on WGSL kernels, with checkpoints, resume, an SVG plot and JSONL metrics. On a software adapter, flags
 * that size the run default to a software preset instead, and the first line says so.
 *
 * @module
 */
import { checkFlag, type Flags, listenForInterrupt, pickFlags, runTask } from "./cli.ts";
import {
  type Checkpoint,
  type CurvePoint,
  loadCheckpoint,
  restoreCheckpoint,
  saveCheckpoint,
} from "../lib/checkpoint.ts";
import { NinError } from "../lib/errors.ts";
import { type EpochMetrics, fit } from "../lib/fit.ts";
import { requestGpu } from "../lib/gpu/device.ts";
import { loadTuning } from "../lib/tuning.ts";
import { layerShapes, nin } from "../lib/nin.ts";
import { SGD } from "../lib/optim.ts";
import { lineChartSvg } from "../lib/svg_plot.ts";
import { batchesPerEpoch } from "../lib/data/batches.ts";
import { writeFileAtomic } from "../lib/data/atomic_write.ts";
import { formatDuration, Progress } from "./progress.ts";
import { prepareOutput } from "./outputs.ts";
import { loadTaskData } from "./data.ts";

/** Flags that define the run; a resumed run takes them from the checkpoint (a different value is an error). */
const RUN_FLAGS = [
  "lr",
  "batch-size",
  "resize",
  "momentum",
  "weight-decay",
  "dropout",
  "one-by-one-convs",
  "head",
  "init",
  "seed",
  "limit-train",
  "limit-test",
] as const;

/** The task's `--help` and flags. */
const TASK = {
  usage: "deno task train [options]",
  summary:
    "Trains NiN on Fashion-MNIST like d2l's train_ch6 and prints loss, train acc, test acc and examples/sec.\n" +
    "On a software adapter, the flags that size the run default to a preset that finishes in about 20 minutes.",
  flags: pickFlags([
    ...RUN_FLAGS,
    "epochs",
    "data-dir",
    "offline",
    "micro-batch",
    "checkpoint",
    "resume",
    "plot",
    "metrics",
    "gpu",
    "kernels",
  ]),
};

type TrainFlags = Flags<typeof TASK.flags>;

/**
 * What `deno task train` runs on a software adapter (llvmpipe, SwiftShader) for every one of these flags
 * not given on the command line: the chapter's configuration would take days there. Measured on a 2-core
 * llvmpipe machine (README, "The software preset"): 1,000 steps of batch 32 at 72x72 fit in about 20
 * minutes with one evaluation of the 10,000 test images. The chapter's Xavier init sits on the ln 10 plateau
 * for hundreds of steps (it did not move in 150 steps with momentum either), Kaiming (He) init leaves it;
 * plain SGD at lr 0.05 left it fastest over the seeds tried.
 */
const SOFTWARE_PRESET = {
  resize: 72,
  "batch-size": 32,
  epochs: 1,
  "limit-train": 32000,
  lr: 0.05,
  init: "kaiming",
} as const satisfies Partial<TrainFlags>;

/** The chapter's full run, spelled out so that it also overrides the software preset. */
const CHAPTER_COMMAND =
  "deno task train --resize 224 --batch-size 128 --epochs 10 --lr 0.1 --init xavier --limit-train 60000";

/** Outputs a resumed run continues when the command line names none (its checkpoint is the one resumed). */
const CONTINUED_OUTPUTS = ["plot", "metrics"] as const;

/** The flags that name an output file. */
const OUTPUT_FLAGS = ["checkpoint", ...CONTINUED_OUTPUTS] as const;

/** d2l's Animator adds a point of the training curves this many times per epoch. */
const POINTS_PER_EPOCH = 5;

if (import.meta.main) {
  await runTask(TASK, async (parsedFlags, given) => {
    const flags: TrainFlags = { ...parsedFlags };
    let resumed: Checkpoint | null = null;
    if (flags.resume) {
      resumed = await loadCheckpoint(flags.resume);
      applyCheckpointConfig(flags, given, resumed, flags.resume);
    }
    // Everything that can fail cheaply is checked before the data and the GPU are touched.
    for (const name of OUTPUT_FLAGS) {
      const path = flags[name];
      if (path) await prepareOutput(path);
    }
    const gpu = await requestGpu({ engine: flags.gpu, kernels: flags.kernels });
    if (gpu.isSoftware && !resumed) {
      const applied = Object.entries(SOFTWARE_PRESET).filter(([name]) =>
        !given.has(name as keyof TrainFlags)
      );
      if (applied.length > 0) {
        Object.assign(flags, Object.fromEntries(applied));
        console.error(
          `${gpu.adapterName} is a software adapter, so this runs the software preset ` +
            `${applied.map(([name, value]) => `--${name} ${value}`).join(" ")}` +
            `${
              given.size ? " with the flags given" : ""
            }; the chapter's full run (a GPU job, days here) is: ` +
            CHAPTER_COMMAND,
        );
      }
    }
    const net = nin(gpu, {
      dropout: flags.dropout,
      oneByOneConvs: flags["one-by-one-convs"],
      head: flags.head,
      init: flags.init,
      seed: flags.seed,
    });
    checkFlag("--resize", flags.resize, () => layerShapes(net, [1, 1, flags.resize, flags.resize]));
    const optimizer = new SGD(net.parameters(), {
      lr: flags.lr,
      momentum: flags.momentum,
      weightDecay: flags["weight-decay"],
    });
    const config: Record<string, unknown> = Object.fromEntries(
      [...RUN_FLAGS, "epochs" as const, ...CONTINUED_OUTPUTS].map((name) => [name, flags[name] ?? null]),
    );
    const history: Record<string, number>[] = [];
    const curve: CurvePoint[] = [];
    const startEpoch = resumed?.state.epoch ?? 0;
    if (resumed) {
      restoreCheckpoint(resumed, net, optimizer);
      history.push(...resumed.state.history);
      curve.push(...(resumed.state.curve ?? []));
      console.error(
        `resuming ${flags.resume} after epoch ${startEpoch} (step ${resumed.state.step}), ` +
          `training to epoch ${flags.epochs}`,
      );
    }
    const data = await loadTaskData(flags);
    const tuning = gpu.kernels === "gpu" ? await loadTuning(gpu) : undefined;
    console.error(`device: ${gpu.describe()}${tuning ? `, tuned choices from ${tuning.path}` : ""}`);

    // A limit beyond the split (e.g. the preset's on a small data set) means the whole split.
    const trainCount = Math.min(flags["limit-train"] ?? Infinity, data.train.count);
    const testCount = Math.min(flags["limit-test"] ?? Infinity, data.test.count);
    const steps = batchesPerEpoch(trainCount, flags["batch-size"]);
    const testBatches = batchesPerEpoch(testCount, flags["batch-size"]);
    const epochsLeft = flags.epochs - startEpoch;
    const progress = new Progress(Deno.stderr.isTerminal(), {
      trainSteps: epochsLeft * steps,
      testBatches: epochsLeft * testBatches,
    });
    const interrupt = listenForInterrupt(() =>
      progress.note("stopping after this step (Ctrl-C again to quit at once)...")
    );
    console.error(
      `training ${epochsLeft} epoch${epochsLeft === 1 ? "" : "s"} of ${steps} steps (batch ${
        flags["batch-size"]
      }, ${trainCount} images at ${flags.resize}x${flags.resize}, lr ${flags.lr})`,
    );
    console.error(
      `compiling kernels and running the first step${
        gpu.isSoftware ? " (on a software adapter this can take a few minutes)" : ""
      }...`,
    );
    let estimated = false;
    const every = Math.max(1, Math.floor(steps / POINTS_PER_EPOCH));
    const writePlot = async () => {
      if (flags.plot) await writeFileAtomic(flags.plot, new TextEncoder().encode(plotSvg(curve, history)));
    };
    await fit(net, optimizer, data, {
      epochs: flags.epochs,
      batchSize: flags["batch-size"],
      resize: flags.resize,
      seed: flags.seed,
      limitTrain: trainCount,
      limitTest: testCount,
      microBatch: flags["micro-batch"],
      startEpoch,
      shouldStop: () => interrupt.requested,
      onStep: (p) => {
        const milestone = p.batch === 1 || p.batch === p.batches ||
          p.batch % Math.max(1, Math.round(p.batches / 10)) === 0;
        progress.trainStep(
          `epoch ${p.epoch} ${p.batch}/${p.batches} loss ${p.loss.toFixed(3)}`,
          p.seconds,
          p.batch / p.batches,
          milestone,
        );
        if (p.batch % every === 0 || p.batch === p.batches) {
          curve.push({ x: p.epoch - 1 + p.batch / p.batches, loss: p.epochLoss, trainAcc: p.epochAcc });
        }
        // The second step is the first without shader compilation: a fair base for the estimate.
        if (!estimated && p.batch === Math.min(2, p.batches)) {
          estimated = true;
          progress.note(
            `note: ${progress.secondsPerStep.toFixed(2)} s/step on ${gpu.adapterName}; the rest of the run ` +
              `(${epochsLeft * steps - p.batch} steps and ${epochsLeft} test evaluation${
                epochsLeft === 1 ? "" : "s"
              }) needs about ${formatDuration(progress.eta)}`,
          );
        }
      },
      onTestBatch: (t) =>
        progress.testBatch(`test ${t.batch}/${t.batches}`, t.seconds, t.batch / t.batches, t.batch === 1),
      onEpoch: async (m: EpochMetrics) => {
        progress.clear();
        const record = { ...m };
        history.push(record);
        console.log(
          `epoch ${m.epoch}/${flags.epochs}: loss ${m.loss.toFixed(3)}, train acc ${
            m.trainAcc.toFixed(3)
          }, ` +
            `test acc ${m.testAcc.toFixed(3)}, ${m.examplesPerSec.toFixed(1)} examples/sec`,
        );
        if (flags.checkpoint) {
          await saveCheckpoint(net, flags.checkpoint, {
            optimizer,
            state: { epoch: m.epoch, step: optimizer.stepCount, seed: flags.seed, config, history, curve },
          });
        }
        if (flags.metrics) {
          await Deno.writeTextFile(flags.metrics, JSON.stringify(record) + "\n", { append: true });
        }
        await writePlot();
      },
    });
    interrupt.remove();
    progress.clear();
    if (interrupt.requested) {
      const where = flags.checkpoint ? `; resume with --resume ${flags.checkpoint}` : "";
      throw new NinError(`interrupted during epoch ${history.length + 1}${where}`, 130);
    }
    const last = history[history.length - 1];
    if (last) {
      const totalSeconds = history.reduce((s, m) => s + m.trainSeconds, 0);
      const examples = history.reduce((s, m) => s + m.examplesPerSec * m.trainSeconds, 0);
      console.log(
        `loss ${last.loss.toFixed(3)}, train acc ${last.trainAcc.toFixed(3)}, test acc ${
          last.testAcc.toFixed(3)
        }`,
      );
      console.log(`${(examples / totalSeconds).toFixed(1)} examples/sec on ${gpu.adapterName}`);
    }
    for (const name of OUTPUT_FLAGS) {
      if (flags[name]) console.error(`${name}: ${flags[name]}`);
    }
    net.dispose();
    gpu.destroy();
  });
}

/**
 * A resumed run keeps the checkpoint's configuration: a run flag given with another value is a usage
 * error naming both values; `--epochs` may grow (train further); outputs continue where the run wrote them.
 */
function applyCheckpointConfig(
  flags: TrainFlags,
  given: ReadonlySet<string>,
  resumed: Checkpoint,
  path: string,
): void {
  const saved = resumed.state.config;
  const target = flags as Record<string, unknown>;
  for (const name of RUN_FLAGS) {
    if (!(name in saved)) continue;
    const value = saved[name] ?? undefined;
    if (given.has(name) && target[name] !== value) {
      throw new NinError(
        `--${name} ${target[name]} conflicts with ${path}, which was trained with ` +
          `${value === undefined ? `no --${name}` : `--${name} ${value}`}; a resumed run keeps its ` +
          `configuration: drop --${name}, or start a new run without --resume`,
        2,
      );
    }
    target[name] = value;
  }
  if (!given.has("epochs") && typeof saved.epochs === "number") flags.epochs = saved.epochs;
  if (flags.epochs <= resumed.state.epoch) {
    throw new NinError(
      `nothing left to train: ${path} is at epoch ${resumed.state.epoch} and the run has --epochs ${flags.epochs}; ` +
        `pass --epochs ${resumed.state.epoch + 1} or more to train further`,
      2,
    );
  }
  for (const name of CONTINUED_OUTPUTS) {
    if (!given.has(name) && typeof saved[name] === "string") target[name] = saved[name];
  }
  if (!given.has("checkpoint")) flags.checkpoint = path;
}

/** d2l's Animator: train loss and train acc several times per epoch, test acc once per epoch. */
function plotSvg(curve: CurvePoint[], history: Record<string, number>[]): string {
  const x = curve.map((p) => p.x);
  return lineChartSvg([
    { name: "train loss", x, values: curve.map((p) => p.loss) },
    { name: "train acc", x, values: curve.map((p) => p.trainAcc) },
    { name: "test acc", x: history.map((m) => m.epoch), values: history.map((m) => m.testAcc) },
  ]);
}
