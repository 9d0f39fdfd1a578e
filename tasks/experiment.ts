/**
 * `deno task experiment NAME`: the chapter's exercises 1, 2 and 4 as experiments (`hyperparameters`,
 * `one-by-one`, `head`), each a list of trials (configuration x seed) run in one process on one device, or
 * shared out with `--shard i/n` over processes and machines that see one output directory; `--report` merges
 * whatever has finished into `report.md` and `report.svg`.
 *
 * @module
 */
import { type FlagName, listenForInterrupt, listFlags, parseFlagList, pickFlags, runTask } from "./cli.ts";
import type { RunConfigInput } from "../lib/config.ts";
import { NinError } from "../lib/errors.ts";
import {
  buildExperiment,
  type Experiment,
  EXPERIMENT_NAMES,
  type ExperimentName,
  type ExperimentOptions,
  parseShard,
  type Scale,
  type SearchSpace,
  shardTrials,
  type Trial,
} from "../lib/experiment.ts";
import { experimentReport, type TrialResult, type VariantCost } from "../lib/experiment_report.ts";
import type { Gpu } from "../lib/gpu/device.ts";
import { analyzeResources } from "../lib/resources.ts";
import { ninOptions } from "../lib/config.ts";
import { writeFileAtomic } from "../lib/deno/atomic_write.ts";
import { loadTaskData } from "./data.ts";
import { formatDuration } from "./progress.ts";
import { median } from "../lib/median.ts";
import { readTrialResult, runTrial } from "./experiment_trial.ts";

/** Flags that take a list: the hyperparameters a search varies (one value: fixed for every trial). */
const LIST_FLAGS = ["lr", "batch-size", "init", "momentum", "weight-decay", "dropout", "epochs"] as const;

/** The {@link SearchSpace} field of each list flag. */
const SPACE_FIELDS: Record<(typeof LIST_FLAGS)[number], keyof SearchSpace> = {
  "lr": "lr",
  "batch-size": "batchSize",
  "init": "init",
  "momentum": "momentum",
  "weight-decay": "weightDecay",
  "dropout": "dropout",
  "epochs": "epochs",
};

/** The task's `--help` and flags. */
const TASK = {
  usage: "deno task experiment NAME [options]   (NAME: hyperparameters, one-by-one or head)",
  summary:
    "Runs one of the chapter's exercises as an experiment: every configuration with --seeds seeds, each " +
    "trial in\n<out>/NAME/<trial>/ (metrics, checkpoint, result), then report.md and report.svg. A finished " +
    "trial is skipped,\nan interrupted one resumes; --shard i/n shares the trials out over processes or machines.",
  flags: {
    ...listFlags(LIST_FLAGS),
    ...pickFlags(
      [
        "resize",
        "limit-train",
        "limit-test",
        "valid",
        "lr-schedule",
        "warmup-steps",
        "one-by-one-convs",
        "head",
        "scale",
        "seeds",
        "trials",
        "shard",
        "out",
        "list",
        "report",
        "micro-batch",
        "data-dir",
        "offline",
        "gpu",
        "kernels",
      ],
      {
        resize: undefined,
        valid: undefined,
        "lr-schedule": undefined,
        "warmup-steps": undefined,
        "one-by-one-convs": undefined,
        head: undefined,
        out: "runs/experiments",
      },
    ),
  },
};

/**
 * Sustained FLOP rates for the `--list` estimates: llvmpipe on a 2-core CPU (measured with the quick
 * scale here, about 10 GFLOP/s through whole trials), and an H200-class GPU from the paper estimate of
 * 1,700 training examples/s at 224x224 (4.6 GFLOPs each).
 */
const ESTIMATED_FLOPS_PER_SECOND = { software: 1e10, gpu: 8e12 };

if (import.meta.main) {
  const positional = Deno.args[0] !== undefined && !Deno.args[0].startsWith("-") ? Deno.args[0] : undefined;
  await runTask(TASK, async (flags, given) => {
    if (positional !== undefined && !EXPERIMENT_NAMES.includes(positional as ExperimentName)) {
      throw new NinError(
        `unknown experiment "${positional}"; the experiments are ${EXPERIMENT_NAMES.join(", ")}`,
        2,
      );
    }
    const name = positional as ExperimentName | undefined;
    if (!name && !flags.list) {
      throw new NinError(`name an experiment: ${EXPERIMENT_NAMES.join(", ")} (or pass --list)`, 2);
    }
    const shard = flags.shard === undefined
      ? { index: 0, count: 1 }
      : usage("--shard", () => parseShard(flags.shard!));
    let gpu: Gpu | null = null;
    const device = async () => {
      if (!gpu) {
        const { requestGpu } = await import("../lib/deno/gpu.ts");
        gpu = await requestGpu({ engine: flags.gpu, kernels: flags.kernels });
      }
      return gpu;
    };
    const defaultScale = async (): Promise<Scale> =>
      flags.scale ?? ((await device()).isSoftware ? "quick" : "chapter");
    const definitionFrom = async (n: ExperimentName): Promise<Definition> => ({
      name: n,
      ...experimentOptions(n, flags, given, await defaultScale()),
    });

    if (flags.list) {
      const g = await device();
      for (const n of name ? [name] : EXPERIMENT_NAMES) {
        const experiment = buildExperiment(n, await definitionFrom(n));
        console.log(await listing(experiment, g, `${flags.out}/${n}`));
      }
      return;
    }
    const root = `${flags.out}/${name}`;
    const saved = await readDefinition(root);
    const definition = flags.report && saved && !definitionGiven(given) ? saved : await definitionFrom(name!);
    if (saved && JSON.stringify(saved) !== JSON.stringify(definition)) {
      throw new NinError(
        `${root} holds ${name} run with other settings (${root}/experiment.json); use the same flags, ` +
          `another --out, or delete ${root}`,
        2,
      );
    }
    const experiment = buildExperiment(definition.name, definition);
    if (!flags.report) {
      await Deno.mkdir(root, { recursive: true });
      if (!saved) await writeJson(`${root}/experiment.json`, definition);
      const g = await device();
      const trials = shardTrials(experiment.trials, shard);
      console.error(
        `${experiment.name}: ${trials.length} of ${experiment.trials.length} trials${
          shard.count > 1 ? ` (shard ${shard.index}/${shard.count})` : ""
        } at the ${experiment.scale} scale on ${g.describe()}; trial directories under ${root}/`,
      );
      const data = await loadTaskData(flags);
      const interrupt = listenForInterrupt(() =>
        console.error(
          "stopping after this step, keeping the trial's last checkpoint (Ctrl-C again to quit at once)...",
        )
      );
      const outcomes = new Map<string, number>();
      for (const trial of trials) {
        if (interrupt.requested) break;
        const outcome = await runTrial(trial, `${root}/${trial.id}`, {
          gpu: g,
          data,
          microBatch: flags["micro-batch"],
          shouldStop: () => interrupt.requested,
          log: (line) => console.error(line),
        });
        outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
        if (outcome !== "finished") console.error(`${trial.id}: ${describeOutcome(outcome)}`);
      }
      interrupt.remove();
      console.error(
        `trials: ${[...outcomes].map(([what, n]) => `${n} ${what}`).join(", ") || "none run"}`,
      );
      if (interrupt.requested) {
        throw new NinError(`interrupted; rerun the same command to continue (finished trials are kept)`, 130);
      }
    }
    const results = await readResults(root, experiment.trials);
    if (flags.report && results.length === 0) {
      throw new NinError(`nothing to report: ${root} holds no finished trial of ${experiment.name}`);
    }
    const report = experimentReport(experiment, results, await variantCosts(experiment, results));
    await writeFileAtomic(`${root}/report.md`, new TextEncoder().encode(report.markdown));
    await writeFileAtomic(`${root}/report.svg`, new TextEncoder().encode(report.svg));
    console.log(report.markdown.split("\n## Configurations")[0].trimEnd());
    console.error(
      `report: ${root}/report.md, ${root}/report.svg (${results.length} of ${experiment.trials.length} trials)`,
    );
    (gpu as Gpu | null)?.destroy();
  }, positional === undefined ? Deno.args : Deno.args.slice(1));
}

/** What defines an experiment's trials: written to `experiment.json`, so every shard and the report agree. */
interface Definition extends ExperimentOptions {
  /** The experiment. */
  name: ExperimentName;
}

type ExperimentFlags = Record<string, unknown> & { scale?: string; seeds: number; trials?: number };

/** The experiment's options from the flags: list flags with several values search; single values override. */
function experimentOptions(
  name: ExperimentName,
  flags: ExperimentFlags,
  given: ReadonlySet<string>,
  scale: Scale,
): ExperimentOptions {
  const space: SearchSpace = {};
  const single: Record<string, number | string> = {};
  for (const flag of LIST_FLAGS) {
    if (!given.has(flag)) continue;
    const values = parseFlagList(flag as FlagName, String(flags[flag]));
    if (values.length === 1) single[flag] = values[0];
    else if (name !== "hyperparameters") {
      throw new NinError(`--${flag} takes one value for ${name} (lists are for hyperparameters)`, 2);
    } else (space as Record<string, unknown>)[SPACE_FIELDS[flag]] = values;
  }
  const value = <T>(flag: string): T | undefined => (single[flag] ?? flags[flag]) as T | undefined;
  const overrides: RunConfigInput = {
    model: {
      init: value("init"),
      dropout: value("dropout"),
      oneByOneConvs: value("one-by-one-convs"),
      head: value("head"),
    },
    train: {
      lr: value("lr"),
      batchSize: value("batch-size"),
      momentum: value("momentum"),
      weightDecay: value("weight-decay"),
      epochs: value("epochs"),
      ...(flags["lr-schedule"] !== undefined || flags["warmup-steps"] !== undefined
        ? {
          schedule: {
            kind: (flags["lr-schedule"] ?? "constant") as "constant",
            warmupSteps: (flags["warmup-steps"] ?? 0) as number,
          },
        }
        : {}),
    },
    data: {
      resize: value("resize"),
      limitTrain: value("limit-train"),
      limitTest: value("limit-test"),
      valid: value("valid"),
    },
  };
  const searched = Object.keys(space).length > 0;
  return JSON.parse(JSON.stringify({
    scale,
    seeds: flags.seeds,
    overrides,
    ...(searched ? { space } : {}),
    ...(flags.trials !== undefined ? { trials: flags.trials } : {}),
  }));
}

/** Whether any flag that shapes the trials was given (then `--report` builds the definition from the flags). */
function definitionGiven(given: ReadonlySet<string>): boolean {
  const layout = new Set(["out", "report", "shard", "data-dir", "offline", "gpu", "kernels", "micro-batch"]);
  return [...given].some((flag) => !layout.has(flag));
}

async function readDefinition(root: string): Promise<Definition | null> {
  try {
    return JSON.parse(await Deno.readTextFile(`${root}/experiment.json`));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw new NinError(`${root}/experiment.json is not valid JSON; delete it (or ${root}) to start anew`);
  }
}

async function writeJson(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, new TextEncoder().encode(JSON.stringify(value, null, 1) + "\n"));
}

/** The finished trials' results, in the experiment's trial order. */
async function readResults(root: string, trials: readonly Trial[]): Promise<TrialResult[]> {
  const results: TrialResult[] = [];
  for (const trial of trials) {
    const result = await readTrialResult(`${root}/${trial.id}`);
    if (result) results.push(result);
  }
  return results;
}

/**
 * Parameters, FLOPs and training memory of every variant, from the counting device (no adapter needed),
 * posing as the device the variant's first finished trial ran on (software kernels at WebGPU's default
 * limits when none has finished).
 */
async function variantCosts(
  experiment: Experiment,
  results: TrialResult[] = [],
): Promise<Map<string, VariantCost>> {
  const costs = new Map<string, VariantCost>();
  for (const variant of experiment.variants) {
    const { train, data } = variant.config;
    const ran = results.find((r) => r.variant === variant.id);
    const r = await analyzeResources({
      ...ninOptions(variant.config),
      batchSize: train.batchSize,
      resize: data.resize,
      momentum: train.momentum,
      weightDecay: train.weightDecay,
      kernels: ran?.kernels ?? "software",
      ...(ran?.limits ? { limits: ran.limits, maxBindingBytes: ran.limits.maxStorageBufferBindingSize } : {}),
    });
    const head = r.layers.filter((l) => l.name.startsWith("7."));
    costs.set(variant.id, {
      params: r.params.count,
      flopsPerImage: r.forward.flopsPerImage,
      trainingBytes: r.run.training.bytes,
      headParams: head.reduce((s, l) => s + l.params, 0),
      headFlopsPerImage: head.reduce((s, l) => s + l.flops, 0),
      trainFlopsPerImage: r.trainStep.total / train.batchSize,
    });
  }
  return costs;
}

/** `--list`: the experiment, its trials and the estimated time of each on this adapter. */
async function listing(experiment: Experiment, gpu: Gpu, root: string): Promise<string> {
  const costs = await variantCosts(experiment);
  const measured = await measuredRate(experiment, root, costs);
  const rate = measured?.rate ??
    (gpu.isSoftware ? ESTIMATED_FLOPS_PER_SECOND.software : ESTIMATED_FLOPS_PER_SECOND.gpu);
  let total = 0;
  const lines = [`${experiment.name} (${experiment.scale} scale): ${experiment.question}`];
  for (const trial of experiment.trials) {
    const cost = costs.get(trial.variant.id)!;
    const { train, data } = trial.config;
    const trainImages = Math.min(data.limitTrain ?? 60000 - data.valid, 60000 - data.valid);
    const evalImages = Math.min(data.limitTest ?? 10000, 10000) + data.valid;
    const flops = train.epochs * (trainImages * cost.trainFlopsPerImage + evalImages * cost.flopsPerImage);
    const seconds = flops / rate;
    total += seconds;
    lines.push(`  ${trial.id.padEnd(28)} ${trial.variant.label.padEnd(28)} about ${formatDuration(seconds)}`);
  }
  lines.push(
    `  ${experiment.trials.length} trials, about ${formatDuration(total)} on ${gpu.adapterName} ` +
      `(at ${(rate / 1e9).toPrecision(3)} GFLOP/s, ${
        measured
          ? `the median training rate of the ${measured.epochs} epoch(s) already run in ${root}`
          : gpu.isSoftware
          ? "a quiet 2-core CPU's llvmpipe; a busy machine takes longer"
          : "an H200-class GPU's paper estimate"
      })`,
  );
  return lines.join("\n");
}

/** The median training FLOP rate of the epochs already run under `root`, if any (a busy machine shows here). */
async function measuredRate(
  experiment: Experiment,
  root: string,
  costs: Map<string, VariantCost>,
): Promise<{ rate: number; epochs: number } | null> {
  const rates: number[] = [];
  for (const trial of experiment.trials) {
    let text: string;
    try {
      text = await Deno.readTextFile(`${root}/${trial.id}/metrics.jsonl`);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) continue;
      throw e;
    }
    for (const line of text.split("\n").filter((l) => l.includes('"kind":"epoch"'))) {
      rates.push(JSON.parse(line).examplesPerSec * costs.get(trial.variant.id)!.trainFlopsPerImage);
    }
  }
  if (rates.length === 0) return null;
  return { rate: median(rates), epochs: rates.length };
}

function describeOutcome(outcome: string): string {
  return outcome === "skipped"
    ? "already finished, skipped"
    : outcome === "busy"
    ? "claimed by another live process, skipped"
    : "stopped; its last checkpoint is kept";
}

function usage<T>(flag: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof NinError) throw new NinError(`${flag}: ${e.message}`, 2);
    throw e;
  }
}
