/**
 * The configuration of a training run, typed: the model, the optimizer's hyperparameters and the data
 * settings. `train` writes it into every checkpoint (versioned), `eval`, `--resume` and the experiments
 * rebuild from it, and a resumed run compares against it. Checkpoints written before it existed (their
 * configuration keyed by the train task's flag names) are read through {@link readRunConfig}.
 *
 * @module
 */
import { NinError } from "./errors.ts";
import type { EpochMetrics } from "./fit.ts";
import { ninConfig, type NinOptions } from "./nin.ts";
import { checkSchedule, CONSTANT_SCHEDULE, type LrSchedule } from "./schedule.ts";

/** The version of {@link RunConfig} this code writes. */
export const RUN_CONFIG_VERSION = 2;

/** The model: every {@link NinOptions} field but the seed (the run's, see {@link RunConfig.seed}). */
export type ModelConfig = Omit<Required<NinOptions>, "seed">;

/** The optimizer and the length of the run. */
export interface TrainConfig {
  /** Base learning rate (the schedule scales it). */
  lr: number;
  /** Learning-rate schedule (the chapter's: constant). */
  schedule: LrSchedule;
  /** SGD momentum. */
  momentum: number;
  /** L2 weight decay. */
  weightDecay: number;
  /** Mini-batch size. */
  batchSize: number;
  /** Epochs in all. */
  epochs: number;
}

/** What the run reads: input size and how much of each split. */
export interface DataConfig {
  /** Side of the square input after bilinear resizing. */
  resize: number;
  /** Train on the first N images of the training split (after the validation images are held out); null: all. */
  limitTrain: number | null;
  /** Test on the first N test images; null: all. */
  limitTest: number | null;
  /** Training images held out (seeded) as a validation split; 0: none. */
  valid: number;
}

/** A run's whole configuration. */
export interface RunConfig {
  /** {@link RUN_CONFIG_VERSION} when written. */
  version: number;
  /** Seed of the initialisation, shuffling, dropout and the validation split. */
  seed: number;
  /** The model. */
  model: ModelConfig;
  /** Optimizer and length. */
  train: TrainConfig;
  /** Data settings. */
  data: DataConfig;
}

/** A {@link RunConfig} in parts, each part partial (what a caller sets; the rest takes the defaults). */
export interface RunConfigInput {
  /** See {@link RunConfig.seed}. */
  seed?: number;
  /** See {@link RunConfig.model}. */
  model?: Partial<ModelConfig>;
  /** See {@link RunConfig.train}. */
  train?: Partial<TrainConfig>;
  /** See {@link RunConfig.data}. */
  data?: Partial<DataConfig>;
}

/** Figures of one finished epoch as a run records them: the loop's, plus validation accuracy when held out. */
export interface EpochRecord extends EpochMetrics {
  /** Accuracy on the held-out validation images after the epoch (runs with a validation split). */
  validAcc?: number;
  /** Learning rate of the epoch's last step. */
  lr?: number;
  /** Wall-clock seconds since the run started (evaluations and earlier attempts included). */
  elapsedSeconds?: number;
}

/**
 * A complete, checked configuration: the chapter's defaults (lr 0.1 constant, batch 128, 10 epochs,
 * resize 224, NiN with Xavier init, no validation split) where `input` sets nothing.
 *
 * @example
 * ```ts
 * import { runConfig } from "@nin/webgpu";
 * const config = runConfig({ model: { head: "gradual" }, train: { lr: 0.05 } });
 * console.log(config.model.head, config.train.batchSize); // gradual 128
 * ```
 */
export function runConfig(input: RunConfigInput = {}): RunConfig {
  const seed = input.seed ?? 0;
  const { seed: _seed, ...model } = ninConfig({ ...input.model, seed });
  const train: TrainConfig = {
    lr: 0.1,
    schedule: CONSTANT_SCHEDULE,
    momentum: 0,
    weightDecay: 0,
    batchSize: 128,
    epochs: 10,
    ...defined(input.train),
  };
  const data: DataConfig = {
    resize: 224,
    limitTrain: null,
    limitTest: null,
    valid: 0,
    ...defined(input.data),
  };
  const positive = (name: string, v: number) => {
    if (!(Number.isFinite(v) && v > 0)) throw new NinError(`${name} must be a positive number, got ${v}`);
  };
  const integer = (name: string, v: number | null, min: number) => {
    if (v !== null && !(Number.isInteger(v) && v >= min)) {
      throw new NinError(`${name} must be an integer >= ${min}, got ${v}`);
    }
  };
  positive("lr", train.lr);
  checkSchedule(train.schedule);
  if (!(train.momentum >= 0 && train.momentum < 1)) {
    throw new NinError(`momentum must be in [0, 1), got ${train.momentum}`);
  }
  if (!(train.weightDecay >= 0 && train.weightDecay <= 1)) {
    throw new NinError(`weight decay must be in [0, 1], got ${train.weightDecay}`);
  }
  integer("batch size", train.batchSize, 1);
  integer("epochs", train.epochs, 1);
  integer("resize", data.resize, 1);
  integer("limit-train", data.limitTrain, 1);
  integer("limit-test", data.limitTest, 1);
  integer("valid", data.valid, 0);
  return { version: RUN_CONFIG_VERSION, seed, model, train, data };
}

/** The {@link NinOptions} of a run: its model with its seed. */
export function ninOptions(config: RunConfig): Required<NinOptions> {
  return { ...config.model, seed: config.seed };
}

/**
 * The configuration a checkpoint carries, whichever version wrote it: this version's object, or the flag-keyed
 * object of checkpoints written before it (`{"lr": 0.05, "batch-size": 32, "one-by-one-convs": 2, ...}`, keys
 * missing in older files taking the train task's defaults of the time). Null for none (an empty object, e.g.
 * a model-only checkpoint or a PyTorch file). Anything else throws a {@link NinError} naming `source`.
 *
 * @example
 * ```ts
 * import { readRunConfig } from "@nin/webgpu";
 * const legacy = readRunConfig({ lr: 0.05, "batch-size": 32, resize: 72, init: "kaiming", seed: 0 }, "old file");
 * console.log(legacy?.train.batchSize, legacy?.model.init); // 32 kaiming
 * ```
 */
export function readRunConfig(raw: unknown, source: string): RunConfig | null {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new NinError(`${source}: the run configuration is not an object`);
  }
  const o = raw as Record<string, unknown>;
  if (Object.keys(o).length === 0) return null;
  try {
    if ("version" in o) {
      if (o.version !== RUN_CONFIG_VERSION) {
        throw new NinError(`version ${o.version} is not one this toolkit reads (${RUN_CONFIG_VERSION})`);
      }
      const c = o as unknown as RunConfig;
      return runConfig({ seed: c.seed, model: c.model, train: c.train, data: c.data });
    }
    return legacyRunConfig(o);
  } catch (e) {
    if (!(e instanceof NinError)) throw e;
    throw new NinError(`${source}: the run configuration is invalid: ${e.message}`);
  }
}

/** Today's flag-keyed configuration (before {@link RUN_CONFIG_VERSION} 2) as a {@link RunConfig}. */
function legacyRunConfig(o: Record<string, unknown>): RunConfig {
  const num = (key: string) => {
    const v = o[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "number") throw new NinError(`${key} is ${JSON.stringify(v)}, not a number`);
    return v;
  };
  const limit = (key: string) => num(key) ?? null;
  const init = o.init ?? "xavier";
  if (init !== "xavier" && init !== "kaiming") throw new NinError(`init is ${JSON.stringify(init)}`);
  return runConfig({
    seed: num("seed"),
    model: { dropout: num("dropout"), oneByOneConvs: num("one-by-one-convs"), init },
    train: {
      lr: num("lr"),
      momentum: num("momentum"),
      weightDecay: num("weight-decay"),
      batchSize: num("batch-size"),
      epochs: num("epochs"),
    },
    data: { resize: num("resize"), limitTrain: limit("limit-train"), limitTest: limit("limit-test") },
  });
}

/**
 * A checkpoint's per-epoch history as typed records; each entry must hold the figures every epoch has.
 *
 * @example
 * ```ts
 * import { readHistory } from "@nin/webgpu";
 * const h = readHistory([{ epoch: 1, loss: 2.3, trainAcc: 0.1, testAcc: 0.1, examplesPerSec: 9, trainSeconds: 60, step: 6 }], "file");
 * console.log(h[0].testAcc);
 * ```
 */
export function readHistory(raw: unknown, source: string): EpochRecord[] {
  if (!Array.isArray(raw)) throw new NinError(`${source}: the run's history is not a list`);
  const required = ["epoch", "loss", "trainAcc", "testAcc", "examplesPerSec", "trainSeconds", "step"];
  return raw.map((entry, i) => {
    const bad = required.find((key) => typeof entry?.[key] !== "number");
    if (bad) throw new NinError(`${source}: epoch record ${i + 1} has no number ${bad}`);
    return entry as EpochRecord;
  });
}

/** One field where two configurations differ: its dotted path (e.g. `train.lr`) and both values. */
export interface ConfigDifference {
  /** Dotted path, e.g. `model.head`. */
  path: string;
  /** The first configuration's value. */
  a: unknown;
  /** The second's. */
  b: unknown;
}

/**
 * Every leaf field where `a` and `b` differ (the version aside), in field order.
 *
 * @example
 * ```ts
 * import { configDifferences, runConfig } from "@nin/webgpu";
 * console.log(configDifferences(runConfig(), runConfig({ train: { lr: 0.05 } }))); // [{ path: "train.lr", a: 0.1, b: 0.05 }]
 * ```
 */
export function configDifferences(a: RunConfig, b: RunConfig): ConfigDifference[] {
  const out: ConfigDifference[] = [];
  const walk = (x: unknown, y: unknown, path: string) => {
    const isObject = (v: unknown) => typeof v === "object" && v !== null;
    if (isObject(x) && isObject(y)) {
      const keys = new Set([...Object.keys(x as object), ...Object.keys(y as object)]);
      for (const key of keys) {
        walk(
          (x as Record<string, unknown>)[key],
          (y as Record<string, unknown>)[key],
          path ? `${path}.${key}` : key,
        );
      }
    } else if (x !== y && path !== "version") out.push({ path, a: x, b: y });
  };
  walk(a, b, "");
  return out;
}

/**
 * A configuration in one line, for logs and report tables, e.g.
 * `2 1x1, direct head, kaiming, dropout 0.5 | lr 0.05 constant, batch 32, momentum 0, wd 0, 1 epoch | 72px, 3000 train, 1000 test`.
 *
 * @example
 * ```ts
 * import { describeRunConfig, runConfig } from "@nin/webgpu";
 * console.log(describeRunConfig(runConfig()));
 * ```
 */
export function describeRunConfig(c: RunConfig): string {
  const { model: m, train: t, data: d } = c;
  const schedule = t.schedule.kind === "constant" && t.schedule.warmupSteps === 0
    ? ""
    : ` ${t.schedule.kind}${t.schedule.warmupSteps ? `+${t.schedule.warmupSteps} warm-up` : ""}`;
  return [
    `${m.oneByOneConvs} 1x1, ${m.head} head, ${m.init}, dropout ${m.dropout}`,
    `lr ${t.lr}${schedule}, batch ${t.batchSize}, momentum ${t.momentum}, wd ${t.weightDecay}, ` +
    `${t.epochs} epoch${t.epochs === 1 ? "" : "s"}`,
    `${d.resize}px, ${d.limitTrain ?? "all"} train, ${d.valid ? `${d.valid} valid, ` : ""}${
      d.limitTest ?? "all"
    } test`,
  ].join(" | ");
}

/** `value` without its undefined fields, so spreading it keeps defaults. */
function defined<T extends object>(value: T | undefined): Partial<T> {
  return Object.fromEntries(Object.entries(value ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>;
}
