/**
 * The chapter's exercises as experiments: which configurations each one compares, at which scale, with
 * which seeds, as a list of trials (one configuration and one seed each) that any number of processes or
 * machines can share (`shardTrials`). Pure: running a trial and writing its files is the task's business.
 *
 * @module
 */
import { type RunConfig, runConfig, type RunConfigInput, type TrainConfig } from "./config.ts";
import { NinError } from "./errors.ts";
import type { ConvInit } from "./layers/conv2d.ts";
import { NIN_HEADS } from "./nin.ts";
import { Random } from "./random.ts";

/** The experiments, by the chapter's exercise they answer. */
export type ExperimentName = "hyperparameters" | "one-by-one" | "head";

/** Every {@link ExperimentName}, in the chapter's order. */
export const EXPERIMENT_NAMES: readonly ExperimentName[] = ["hyperparameters", "one-by-one", "head"];

/** How big every trial is. */
export type Scale = "quick" | "chapter";

/** Every {@link Scale}. */
export const SCALES: readonly Scale[] = ["quick", "chapter"];

/**
 * The base configuration of each scale. `chapter` is d2l's run (224x224, batch 128, 10 epochs, lr 0.1, Xavier,
 * all 60,000 images). `quick` is sized for a 2-core CPU's software adapter (a whole experiment in about 30
 * minutes there): 67x67 (the smallest input NiN takes), batch 32, 2 epochs of 6,000 training images (375
 * steps: 2 epochs of 2,000 left every variant near chance, still on the loss plateau), 1,000 test images,
 * and the software preset's lessons: Kaiming init (the chapter's Xavier init sits on the ln 10 plateau for
 * hundreds of steps at this size) and plain SGD at lr 0.05.
 */
export const SCALE_CONFIGS: Readonly<Record<Scale, RunConfigInput>> = {
  quick: {
    model: { init: "kaiming" },
    train: { lr: 0.05, batchSize: 32, epochs: 2 },
    data: { resize: 67, limitTrain: 6000, limitTest: 1000 },
  },
  chapter: {
    model: { init: "xavier" },
    train: { lr: 0.1, batchSize: 128, epochs: 10 },
    data: { resize: 224, limitTrain: null, limitTest: null },
  },
};

/** Validation images `hyperparameters` holds out of the training split at each scale. */
const VALIDATION_IMAGES: Readonly<Record<Scale, number>> = { quick: 500, chapter: 5000 };

/** The values a hyperparameter search tries for each field (one value: that field is fixed). */
export interface SearchSpace {
  /** Base learning rates. */
  lr?: number[];
  /** Batch sizes. */
  batchSize?: number[];
  /** Weight initialisations. */
  init?: ConvInit[];
  /** SGD momenta. */
  momentum?: number[];
  /** Weight decays. */
  weightDecay?: number[];
  /** Dropout probabilities. */
  dropout?: number[];
  /** Epochs. */
  epochs?: number[];
}

/**
 * The default search of `hyperparameters`: learning rate and momentum, the two that move NiN's accuracy
 * most at a fixed budget, around the scale's base rate.
 */
export function defaultSpace(scale: Scale): SearchSpace {
  const lr = scale === "quick" ? [0.02, 0.05, 0.1] : [0.05, 0.1, 0.2];
  return { lr, momentum: [0, 0.9] };
}

/** Random-search trials `hyperparameters` samples from the grid by default at each scale (null: the whole grid). */
export const DEFAULT_SEARCH_TRIALS: Readonly<Record<Scale, number | null>> = { quick: 3, chapter: null };

/** A configuration under test; it runs once per seed. */
export interface Variant {
  /** Short, file-name-safe id, e.g. `1x1-0` or `lr0.05-momentum0.9`. */
  id: string;
  /** What it is, in words, for the report's legend. */
  label: string;
  /** Its configuration (seed 0; each trial sets its own). */
  config: RunConfig;
}

/** One run: a variant with one seed. */
export interface Trial {
  /** `<variant id>-seed<seed>`, the name of its directory. */
  id: string;
  /** The variant it runs. */
  variant: Variant;
  /** Its seed. */
  seed: number;
  /** Its whole configuration (the variant's with this seed). */
  config: RunConfig;
}

/** An experiment: the question, its variants and their trials. */
export interface Experiment {
  /** Which experiment. */
  name: ExperimentName;
  /** The chapter's exercise, in words. */
  question: string;
  /** The scale its trials run at. */
  scale: Scale;
  /** The configurations compared, in the report's default order. */
  variants: Variant[];
  /** Every trial: each variant with each seed, variant after variant. */
  trials: Trial[];
  /** Whether the variants are ranked by validation accuracy (hyperparameters) rather than listed in order. */
  rankByValidation: boolean;
}

/** Options of {@link buildExperiment}. */
export interface ExperimentOptions {
  /** The scale (default `quick`). */
  scale?: Scale;
  /** Seeds per variant (default 2): seeds 0 .. seeds-1. */
  seeds?: number;
  /** Fields set for every variant over the scale's (e.g. from flags given). */
  overrides?: RunConfigInput;
  /** `hyperparameters`: the values to search (default {@link defaultSpace}). */
  space?: SearchSpace;
  /**
   * `hyperparameters`: sample this many configurations of the grid at random (seeded by `searchSeed`); null:
   * the whole grid. Default: {@link DEFAULT_SEARCH_TRIALS} for the default space, the whole grid of a given one.
   */
  trials?: number | null;
  /** Seed of the random search's sample (default 0). */
  searchSeed?: number;
}

const QUESTIONS: Record<ExperimentName, string> = {
  "hyperparameters": "Exercise 1: tune NiN's hyperparameters to improve the classification accuracy.",
  "one-by-one":
    "Exercise 2: why are there two 1x1 convolutional layers in the NiN block? Remove one (and both), and observe.",
  "head":
    "Exercise 4: what goes wrong when the 384x5x5 representation is reduced to 10x5x5 in one step? The chapter's " +
    "last block (3x3 conv 384->10) against a gradual one (3x3 conv 384->384, 1x1 384->96, 1x1 96->10).",
};

/**
 * The trials of an experiment at a scale: `one-by-one` compares 2 (the chapter), 1 and 0 1x1 convolutions per
 * block; `head` the chapter's direct last block and the gradual one; `hyperparameters` searches `space` (a
 * grid, or `trials` random points of it), ranking by validation accuracy on images held out of the training
 * split. All variants of an experiment share the scale's budget and seeds.
 *
 * @example
 * ```ts
 * import { buildExperiment } from "@nin/webgpu";
 * const e = buildExperiment("head", { scale: "quick", seeds: 2 });
 * console.log(e.trials.map((t) => t.id)); // ["head-direct-seed0", "head-direct-seed1", "head-gradual-seed0", "head-gradual-seed1"]
 * ```
 */
export function buildExperiment(name: ExperimentName, options: ExperimentOptions = {}): Experiment {
  if (!EXPERIMENT_NAMES.includes(name)) {
    throw new NinError(`unknown experiment "${name}"; the experiments are ${EXPERIMENT_NAMES.join(", ")}`);
  }
  const scale = options.scale ?? "quick";
  const seeds = options.seeds ?? 2;
  if (!Number.isInteger(seeds) || seeds < 1) {
    throw new NinError(`seeds must be an integer >= 1, got ${seeds}`);
  }
  const validation = name === "hyperparameters" ? { valid: VALIDATION_IMAGES[scale] } : {};
  const base = merge(merge(SCALE_CONFIGS[scale], { data: validation }), options.overrides ?? {});
  const variant = (id: string, label: string, input: RunConfigInput): Variant => ({
    id,
    label,
    config: runConfig(merge(base, input)),
  });
  let variants: Variant[];
  if (name === "one-by-one") {
    variants = [2, 1, 0].map((n) =>
      variant(`1x1-${n}`, `${n} 1x1 conv${n === 1 ? "" : "s"}${n === 2 ? " (chapter)" : ""}`, {
        model: { oneByOneConvs: n },
      })
    );
  } else if (name === "head") {
    variants = NIN_HEADS.map((head) =>
      variant(`head-${head}`, head === "direct" ? "direct head (chapter)" : "gradual head", {
        model: { head },
      })
    );
  } else {
    const space = options.space ?? defaultSpace(scale);
    const count = options.trials !== undefined
      ? options.trials
      : options.space
      ? null
      : DEFAULT_SEARCH_TRIALS[scale];
    variants = searchPoints(space, count, options.searchSeed ?? 0).map((point) => {
      // Named by the fields the search varies; a fixed field is the same in every variant.
      const varied = Object.entries(point).filter(([key]) => space[key as keyof SearchSpace]!.length > 1);
      const id = varied.length ? varied.map(([key, value]) => `${key}${value}`).join("-") : "base";
      const label = varied.length ? varied.map(([key, value]) => `${key} ${value}`).join(", ") : "base";
      const { init, dropout, ...train } = point;
      return variant(id, label, {
        model: { init: init as ConvInit | undefined, dropout: dropout as number | undefined },
        train: train as Partial<TrainConfig>,
      });
    });
  }
  const trials = variants.flatMap((v) =>
    Array.from({ length: seeds }, (_, seed) => ({
      id: `${v.id}-seed${seed}`,
      variant: v,
      seed,
      config: { ...v.config, seed },
    }))
  );
  return {
    name,
    question: QUESTIONS[name],
    scale,
    variants,
    trials,
    rankByValidation: name === "hyperparameters",
  };
}

/** The configurations of a search: the grid of `space`, or `count` of its points drawn without replacement. */
function searchPoints(
  space: SearchSpace,
  count: number | null | undefined,
  seed: number,
): Record<string, number | string>[] {
  const keys = (Object.keys(space) as (keyof SearchSpace)[]).filter((k) => space[k] !== undefined);
  let points: Record<string, number | string>[] = [{}];
  for (const key of keys) {
    const values = space[key]!;
    if (values.length === 0) throw new NinError(`the search space's ${key} has no values`);
    points = points.flatMap((p) => values.map((v) => ({ ...p, [key]: v })));
  }
  if (count !== null && count !== undefined) {
    if (!Number.isInteger(count) || count < 1) {
      throw new NinError(`trials must be an integer >= 1, got ${count}`);
    }
    if (count < points.length) {
      const order = new Random(seed).permutation(points.length);
      points = Array.from(order.subarray(0, count)).sort((a, b) => a - b).map((i) => points[i]);
    }
  }
  return points;
}

/**
 * Every `count`-th trial from the `index`-th (from 0): the trials shard `index` of `count` runs, so a Slurm job
 * array, a Kubernetes Indexed Job or GNU parallel covers an experiment with one shard per worker.
 *
 * @example
 * ```ts
 * import { buildExperiment, shardTrials } from "@nin/webgpu";
 * const { trials } = buildExperiment("one-by-one");
 * console.log(shardTrials(trials, { index: 1, count: 2 }).map((t) => t.id)); // the 2nd, 4th and 6th
 * ```
 */
export function shardTrials(trials: readonly Trial[], shard: { index: number; count: number }): Trial[] {
  const { index, count } = shard;
  if (!Number.isInteger(count) || count < 1 || !Number.isInteger(index) || index < 0 || index >= count) {
    throw new NinError(`a shard is i/n with 0 <= i < n, got ${index}/${count}`);
  }
  return trials.filter((_, i) => i % count === index);
}

/**
 * Parses `i/n` (e.g. `0/4`, the form `--shard` takes) into a shard.
 *
 * @example
 * ```ts
 * import { parseShard } from "@nin/webgpu";
 * console.log(parseShard("1/4")); // { index: 1, count: 4 }
 * ```
 */
export function parseShard(text: string): { index: number; count: number } {
  const match = /^(\d+)\/(\d+)$/.exec(text.trim());
  if (!match) throw new NinError(`a shard is written i/n (e.g. 0/4), got "${text}"`);
  const shard = { index: Number(match[1]), count: Number(match[2]) };
  shardTrials([], shard);
  return shard;
}

/** `base` with the fields of `over` set over it, part by part (undefined fields of `over` keep `base`'s). */
function merge(base: RunConfigInput, over: RunConfigInput): RunConfigInput {
  const part = <T extends object>(a?: T, b?: T): T =>
    ({ ...a, ...Object.fromEntries(Object.entries(b ?? {}).filter(([, v]) => v !== undefined)) }) as T;
  return {
    seed: over.seed ?? base.seed,
    model: part(base.model, over.model),
    train: part(base.train, over.train),
    data: part(base.data, over.data),
  };
}
