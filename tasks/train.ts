/**
 * `deno task train`: the chapter's training run (d2l defaults: lr 0.1, 10 epochs, batch 128, resize 224)
 * on WGSL kernels, with checkpoints, resume, an SVG plot and JSONL metrics. On a software adapter, flags
 * that size the run default to a software preset instead, and the first line says so.
 *
 * @module
 */
import { checkFlag, type Flags, type HelpDefaults, listenForInterrupt, pickFlags, runTask } from "./cli.ts";
import { type Checkpoint, type CurvePoint, restoreCheckpoint } from "../lib/checkpoint.ts";
import { loadCheckpoint, saveCheckpoint } from "../lib/deno/checkpoint_file.ts";
import { type EpochRecord, ninOptions, type RunConfig, runConfig } from "../lib/config.ts";
import { NinError } from "../lib/errors.ts";
import { type EpochMetrics, type EpochPosition, fit } from "../lib/fit.ts";
import { requestGpu } from "../lib/deno/gpu.ts";
import { loadTuning } from "../lib/deno/tuning_cache.ts";
import { nin } from "../lib/nin.ts";
import { layerShapes } from "../lib/shapes.ts";
import { SGD } from "../lib/optim.ts";
import { describeSchedule } from "../lib/schedule.ts";
import { runFitOptions, runSchedule, runSplits, validationAccuracy } from "../lib/run.ts";
import { type ChartOptions, lineChartSvg } from "../lib/svg_plot.ts";
import { batchesPerEpoch } from "../lib/data/batches.ts";
import { writeFileAtomic } from "../lib/deno/atomic_write.ts";
import { formatDuration, Progress } from "./progress.ts";
import { appendLine, lockOutput, newRunId, prepareOutput } from "./outputs.ts";
import { loadTaskData } from "./data.ts";
import { resumedConfig, RUN_FLAGS, withFlags } from "./run_flags.ts";

/** The task's `--help` and flags. */
const TASK = {
  usage: "deno task train [options]",
  summary:
    "Trains NiN on Fashion-MNIST like d2l's train_ch6 and prints loss, train acc, test acc and examples/sec.\n" +
    "On a software adapter, the flags that size the run default to a preset (1,000 steps and one evaluation of\n" +
    "the 10,000 test images: 8-10 min over Vulkan, 15 min over OpenGL on a quiet 2-core llvmpipe machine,\n" +
    "up to twice that under load).",
  helpDefaults: presetHelp,
  flags: pickFlags([
    ...RUN_FLAGS,
    "data-dir",
    "offline",
    "micro-batch",
    "checkpoint",
    "checkpoint-minutes",
    "checkpoint-steps",
    "resume",
    "plot",
    "plot-size",
    "metrics",
    "gpu",
    "kernels",
  ]),
};

type TrainFlags = Flags<typeof TASK.flags>;

/**
 * What `deno task train` runs on a software adapter (llvmpipe, SwiftShader) for every one of these flags
 * not given on the command line: the chapter's configuration would take days there. Measured on a 2-core
 * llvmpipe machine (README, "The software preset"): 1,000 steps of batch 32 at 72x72 and one evaluation of
 * the 10,000 test images took 7 min 54 s and 9 min 59 s over Vulkan on two days (15 min 12 s over OpenGL). The
 * chapter's Xavier init sits on the ln 10 plateau for hundreds of steps (it did not move in 150 steps with
 * momentum either), Kaiming (He) init leaves it; plain SGD at lr 0.05 left it fastest over the seeds tried.
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
    let config: RunConfig | null = null;
    let changes: string[] = [];
    if (flags.resume) {
      resumed = await loadCheckpoint(flags.resume);
      ({ config, changes } = resumeRun(flags, given, resumed, flags.resume));
    }
    // Everything that can fail cheaply is checked before the data and the GPU are touched.
    const plotSize = parsePlotSize(flags["plot-size"]);
    const runId = resumed?.state.runId ?? newRunId();
    // Progress is never only in memory: without --checkpoint the run still writes one, under runs/.
    const defaultCheckpoint = !flags.checkpoint;
    flags.checkpoint ??= `runs/train-${runId}.safetensors`;
    for (const name of OUTPUT_FLAGS) {
      const path = flags[name];
      if (path) await prepareOutput(path);
    }
    // One run per checkpoint: a second would overwrite the first's progress with its own.
    using _lock = flags.checkpoint ? await lockOutput(flags.checkpoint, (note) => console.error(note)) : null;
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
    config ??= withFlags(runConfig(), flags);
    const { train: hyper, data: dataConfig } = config;
    const net = nin(gpu, ninOptions(config));
    checkFlag(
      "--resize",
      dataConfig.resize,
      () => layerShapes(net, [1, 1, dataConfig.resize, dataConfig.resize]),
    );
    const optimizer = new SGD(net.parameters(), {
      lr: hyper.lr,
      momentum: hyper.momentum,
      weightDecay: hyper.weightDecay,
    });
    const outputs = { plot: flags.plot, metrics: flags.metrics };
    // A fresh run's first metrics line replaces the file (atomically); a resumed run's lines continue it.
    let metricsStarted = resumed !== null;
    const history: EpochRecord[] = [];
    const curve: CurvePoint[] = [];
    const startEpoch = resumed?.state.epoch ?? 0;
    const startPosition = resumed?.state.position ?? undefined;
    if (resumed) {
      restoreCheckpoint(resumed, net, optimizer);
      history.push(...resumed.state.history);
      curve.push(...(resumed.state.curve ?? []));
      const where = startPosition
        ? `in epoch ${startPosition.epoch} after ${startPosition.batch} of its steps`
        : `after epoch ${startEpoch}`;
      console.error(
        `resuming ${flags.resume} ${where} (step ${resumed.state.step}), training to epoch ${hyper.epochs}`,
      );
      if (changes.length > 0) {
        console.error(`fine-tuning from step ${resumed.state.step + 1} on: ${changes.join(", ")}`);
      }
    }
    const loaded = await loadTaskData(flags);
    const splits = checkFlag("--valid", dataConfig.valid, () => runSplits(config, loaded));
    const { data, valid, trainCount, testCount, steps } = splits;
    const tuning = await loadTuning(gpu, undefined, (note) => console.error(note));
    console.error(`device: ${gpu.describe()}${tuning ? `, tuned choices from ${tuning.path}` : ""}`);

    const testBatches = batchesPerEpoch(testCount, hyper.batchSize) +
      (valid ? batchesPerEpoch(valid.count, hyper.batchSize) : 0);
    const epochsLeft = hyper.epochs - startEpoch;
    const stepsLeft = epochsLeft * steps - (startPosition?.batch ?? 0);
    optimizer.schedule = runSchedule(config, steps);
    const progress = new Progress(Deno.stderr.isTerminal(), {
      trainSteps: stepsLeft,
      testBatches: epochsLeft * testBatches,
    });
    const interrupt = listenForInterrupt(() =>
      progress.note("stopping after this step (Ctrl-C again to quit at once)...")
    );
    console.error(
      `training ${epochsLeft} epoch${
        epochsLeft === 1 ? "" : "s"
      } of ${steps} steps (batch ${hyper.batchSize}, ` +
        `${trainCount} images at ${dataConfig.resize}x${dataConfig.resize}, lr ${hyper.lr} ` +
        `${describeSchedule(hyper.schedule)}${valid ? `, ${valid.count} held out for validation` : ""})`,
    );
    const minutes = flags["checkpoint-minutes"], everySteps = flags["checkpoint-steps"];
    console.error(
      `checkpoint: ${flags.checkpoint}, written after every epoch and during one every ${
        minutes === 1 ? "minute" : `${minutes} minutes`
      }${everySteps ? ` or ${everySteps} steps` : ""} of training${
        defaultCheckpoint ? " (--checkpoint PATH to choose the file)" : ""
      }`,
    );
    console.error(
      `compiling kernels and running the first step${
        gpu.isSoftware ? " (on a software adapter this can take a few minutes)" : ""
      }...`,
    );
    let stepsRun = 0, estimated = false;
    let lastSave = { time: performance.now(), batch: startPosition?.batch ?? 0 };
    const save = async (epoch: number, position: EpochPosition | null) => {
      await saveCheckpoint(net, flags.checkpoint!, {
        optimizer,
        state: {
          epoch,
          position,
          step: optimizer.stepCount,
          seed: config.seed,
          runId,
          config,
          history,
          curve,
          outputs,
        },
      });
      lastSave = { time: performance.now(), batch: position?.batch ?? 0 };
    };
    const every = Math.max(1, Math.floor(steps / POINTS_PER_EPOCH));
    const writePlot = async () => {
      if (!flags.plot) return;
      const title =
        `NiN, ${config.model.init} init, lr ${hyper.lr}, momentum ${hyper.momentum}, batch ${hyper.batchSize}, ${dataConfig.resize}x${dataConfig.resize}, ${trainCount} images, seed ${config.seed}`;
      const svg = plotSvg(curve, history, { title, ...plotSize });
      await writeFileAtomic(flags.plot, new TextEncoder().encode(svg));
    };
    await fit(net, optimizer, data, {
      ...runFitOptions(config, splits, flags["micro-batch"]),
      startEpoch,
      startPosition,
      shouldStop: () => interrupt.requested,
      checkpointDue: (batch) =>
        performance.now() - lastSave.time >= minutes * 60_000 ||
        (everySteps !== undefined && batch - lastSave.batch >= everySteps),
      onCheckpoint: async (position) => {
        await save(position.epoch - 1, position);
        progress.note(
          `saved ${flags.checkpoint} at epoch ${position.epoch}, step ${position.batch}/${steps}`,
        );
      },
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
        // The first step compiles the kernels and is left out; steps are read in ticks and share a tick's time, so a few seconds of steps make a fair base.
        stepsRun += 1;
        const timed = Number.isFinite(progress.secondsPerStep);
        if (!estimated && timed && (progress.timedTrainSeconds >= 5 || stepsRun === stepsLeft)) {
          estimated = true;
          progress.note(
            `note: ${progress.secondsPerStep.toFixed(2)} s/step on ${gpu.adapterName}; the rest of the run ` +
              `(${stepsLeft - stepsRun} steps and ${epochsLeft} test evaluation${
                epochsLeft === 1 ? "" : "s"
              }) needs about ${formatDuration(progress.eta)}`,
          );
        }
      },
      onTestBatch: (t) =>
        progress.testBatch(`test ${t.batch}/${t.batches}`, t.seconds, t.batch / t.batches, t.batch === 1),
      onEpoch: async (m: EpochMetrics) => {
        const record: EpochRecord = { ...m, lr: optimizer.lr };
        record.validAcc = await validationAccuracy(net, config, splits, {
          microBatch: flags["micro-batch"],
          onBatch: (t) => progress.testBatch(`valid ${t.batch}/${t.batches}`, t.seconds, 0, false),
        });
        progress.clear();
        history.push(record);
        console.log(
          `epoch ${m.epoch}/${hyper.epochs}: loss ${m.loss.toFixed(3)}, train acc ${
            m.trainAcc.toFixed(3)
          }, ` +
            `${record.validAcc === undefined ? "" : `valid acc ${record.validAcc.toFixed(3)}, `}` +
            `test acc ${m.testAcc.toFixed(3)}, ${m.examplesPerSec.toFixed(1)} examples/sec`,
        );
        await save(m.epoch, null);
        if (flags.metrics) {
          const line = JSON.stringify({ run: runId, ...record, config });
          if (metricsStarted) await appendLine(flags.metrics, line);
          else await writeFileAtomic(flags.metrics, new TextEncoder().encode(line + "\n"));
          metricsStarted = true;
        }
        await writePlot();
      },
    });
    interrupt.remove();
    progress.clear();
    if (interrupt.requested) {
      // The stop point was saved; the command is printed only for a file that is there to resume.
      const saved = await Deno.stat(flags.checkpoint).then(() => true, () => false);
      throw new NinError(
        `interrupted in epoch ${history.length + 1}; ` +
          (saved
            ? `saved ${flags.checkpoint}; resume with: deno task train --resume ${flags.checkpoint}`
            : "no checkpoint was written"),
        130,
      );
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
 * A resumed run keeps the checkpoint's configuration: a run flag given with another value is a usage error
 * naming both values, except the rate and its schedule (fine-tuning, returned as `changes`) and `--epochs`,
 * which may grow (train further); outputs continue where the run wrote them.
 */
function resumeRun(
  flags: TrainFlags,
  given: ReadonlySet<string>,
  resumed: Checkpoint,
  path: string,
): { config: RunConfig; changes: string[] } {
  const saved = resumed.state.config;
  if (!saved) {
    throw new NinError(`${path} holds no run configuration (a model-only file); it cannot be resumed`, 2);
  }
  const resumedRun = resumedConfig(saved, flags, given, path);
  if (resumedRun.config.train.epochs <= resumed.state.epoch) {
    throw new NinError(
      `nothing left to train: ${path} is at epoch ${resumed.state.epoch} and the run has --epochs ` +
        `${resumedRun.config.train.epochs}; pass --epochs ${
          resumed.state.epoch + 1
        } or more to train further`,
      2,
    );
  }
  const outputs = resumed.state.outputs ?? {};
  for (const name of CONTINUED_OUTPUTS) {
    if (!given.has(name) && typeof outputs[name] === "string") flags[name] = outputs[name];
  }
  if (!given.has("checkpoint")) flags.checkpoint = path;
  return resumedRun;
}

/** d2l's Animator: train loss and train acc several times per epoch, test acc once per epoch. */
function plotSvg(curve: CurvePoint[], history: EpochRecord[], options: ChartOptions): string {
  const x = curve.map((p) => p.x);
  return lineChartSvg([
    { name: "train loss", x, values: curve.map((p) => p.loss) },
    { name: "train acc", x, values: curve.map((p) => p.trainAcc) },
    { name: "test acc", x: history.map((m) => m.epoch), values: history.map((m) => m.testAcc) },
  ], options);
}

/** `--plot-size WIDTHxHEIGHT` as numbers; anything else is a usage error. */
function parsePlotSize(text: string): { width: number; height: number } {
  const match = /^(\d+)x(\d+)$/.exec(text);
  const [width, height] = match ? [Number(match[1]), Number(match[2])] : [NaN, NaN];
  if (!(width >= 240 && width <= 4000 && height >= 240 && height <= 4000)) {
    throw new NinError(`--plot-size must be WIDTHxHEIGHT, each 240 to 4000 (e.g. 640x400), got ${text}`, 2);
  }
  return { width, height };
}

/**
 * `--help`'s defaults on this machine: on a software adapter the preset's value of each flag it sets, next
 * to the chapter's; on a GPU the flags' own defaults, which are the chapter's.
 */
async function presetHelp(): Promise<HelpDefaults> {
  let gpu;
  try {
    gpu = await requestGpu();
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    return {
      defaults: {},
      note: `The defaults above are the chapter's; no adapter to check for the preset: ${why}`,
    };
  }
  const { isSoftware, adapterName } = gpu;
  gpu.destroy();
  if (!isSoftware) {
    return { defaults: {}, note: `On this adapter, ${adapterName}, the chapter's defaults apply.` };
  }
  const chapter = (name: string) =>
    (TASK.flags as Record<string, { default?: unknown }>)[name].default ?? "all";
  return {
    defaults: Object.fromEntries(
      Object.entries(SOFTWARE_PRESET).map((
        [name, value],
      ) => [name, `default here ${value}; the chapter's ${chapter(name)}`]),
    ),
    note:
      `"here": ${adapterName} is a software adapter, so flags not given take the software preset's values.`,
  };
}
