/**
 * The flags that set a run's configuration and the {@link RunConfig} field each one sets: one table, so
 * `train`, `experiment` and the resume check agree on what a flag means.
 *
 * @module
 */
import { configDifferences, type RunConfig, runConfig } from "../lib/config.ts";
import { NinError } from "../lib/errors.ts";

/** Each run flag and the path of the {@link RunConfig} field it sets. */
export const RUN_CONFIG_FLAGS = {
  "lr": ["train", "lr"],
  "batch-size": ["train", "batchSize"],
  "resize": ["data", "resize"],
  "momentum": ["train", "momentum"],
  "weight-decay": ["train", "weightDecay"],
  "dropout": ["model", "dropout"],
  "one-by-one-convs": ["model", "oneByOneConvs"],
  "head": ["model", "head"],
  "init": ["model", "init"],
  "seed": ["seed"],
  "limit-train": ["data", "limitTrain"],
  "limit-test": ["data", "limitTest"],
  "epochs": ["train", "epochs"],
  "lr-schedule": ["train", "schedule", "kind"],
  "warmup-steps": ["train", "schedule", "warmupSteps"],
  "valid": ["data", "valid"],
} as const;

/** A flag of {@link RUN_CONFIG_FLAGS}. */
export type RunFlag = keyof typeof RUN_CONFIG_FLAGS;

/** Every run flag, in the table's order. */
export const RUN_FLAGS = Object.keys(RUN_CONFIG_FLAGS) as RunFlag[];

/** Fields a resumed run may change: the rate and its schedule (fine-tuning) and the number of epochs. */
const RESUMABLE_CHANGES = /^train\.(lr|schedule\.|epochs$)/;

/**
 * `config` with the value of every flag in `names` (default: all run flags) set from `flags`, checked; a
 * flag whose value is undefined (an absent `--limit-train`) sets null.
 *
 * @example
 * ```ts
 * import { runConfig } from "../lib/config.ts";
 * import { withFlags } from "./run_flags.ts";
 * console.log(withFlags(runConfig(), { lr: 0.05, head: "gradual" }, ["lr", "head"]).model.head); // gradual
 * ```
 */
export function withFlags(
  config: RunConfig,
  flags: Partial<Record<RunFlag, unknown>>,
  names: Iterable<string> = RUN_FLAGS,
): RunConfig {
  const out = structuredClone(config) as unknown as Record<string, unknown>;
  for (const name of names) {
    const path = RUN_CONFIG_FLAGS[name as RunFlag] as readonly string[] | undefined;
    if (!path) continue;
    let target = out;
    for (const key of path.slice(0, -1)) target = target[key] as Record<string, unknown>;
    target[path[path.length - 1]] = flags[name as RunFlag] ?? null;
  }
  const c = out as unknown as RunConfig;
  return runConfig({ seed: c.seed, model: c.model, train: c.train, data: c.data });
}

/** The flag that sets the field at `path` (e.g. `--lr` for `train.lr`), or the path itself. */
export function flagOf(path: string): string {
  const entry = Object.entries(RUN_CONFIG_FLAGS).find(([, p]) => p.join(".") === path);
  return entry ? `--${entry[0]}` : path;
}

/**
 * The configuration of a resumed run: the checkpoint's, with the flags given on the command line applied.
 * A flag that would change anything but the rate, its schedule or the epochs is a usage error naming both
 * values; the changes made (fine-tuning) are returned for the task to announce.
 */
export function resumedConfig(
  saved: RunConfig,
  flags: Partial<Record<RunFlag, unknown>>,
  given: ReadonlySet<string>,
  path: string,
): { config: RunConfig; changes: string[] } {
  const config = withFlags(saved, flags, given);
  const changes: string[] = [];
  for (const d of configDifferences(saved, config)) {
    const flag = flagOf(d.path);
    if (!RESUMABLE_CHANGES.test(d.path)) {
      throw new NinError(
        `${flag} ${d.b} conflicts with ${path}, which was trained with ` +
          `${d.a === null ? `no ${flag}` : `${flag} ${d.a}`}; a resumed run keeps its configuration ` +
          `(only --lr, --lr-schedule, --warmup-steps and --epochs may change): drop ${flag}, or start a new run ` +
          `without --resume`,
        2,
      );
    }
    if (d.path !== "train.epochs") changes.push(`${flag} ${d.a} -> ${d.b}`);
  }
  return { config, changes };
}
