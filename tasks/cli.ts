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
  : string;

/** Parsed flags: defaulted flags are always set, others may be undefined. */
export type Flags<T extends Record<string, FlagSpec>> = {
  [K in keyof T]: T[K] extends { default: unknown } ? FlagValue<T[K]> : FlagValue<T[K]> | undefined;
};

/** The `--gpu` flag every task takes. */
export const GPU_FLAG = {
  type: "string",
  default: "deno",
  choices: ["deno", "dawn"],
  help: "WebGPU engine: deno (built-in wgpu) or dawn (npm:webgpu)",
} as const satisfies FlagSpec;

/**
 * The `--kernels` flag every task takes: the kernel family, passed to `requestGpu` (absent: `NIN_KERNELS`,
 * else `auto`).
 */
export const KERNELS_FLAG = {
  type: "string",
  choices: ["auto", "software", "gpu"],
  help: "kernel family: software (for CPU adapters), gpu, or auto (by adapter; default $NIN_KERNELS or auto)",
} as const satisfies FlagSpec;

/** Help text for a task. */
export function helpText(usage: string, summary: string, specs: Record<string, FlagSpec>): string {
  const lines = [`Usage: ${usage}`, "", summary, "", "Options:"];
  for (const [name, spec] of Object.entries(specs)) {
    const arg = spec.type === "boolean"
      ? ""
      : spec.choices
      ? ` <${spec.choices.join("|")}>`
      : ` <${spec.type}>`;
    const def = spec.default !== undefined && spec.type !== "boolean" ? ` (default ${spec.default})` : "";
    lines.push(`  --${name}${arg}`.padEnd(32) + ` ${spec.help}${def}`);
  }
  lines.push(`  --help`.padEnd(32) + " show this help");
  return lines.join("\n");
}

/** Parses `args`; returns null after printing help for `--help`. Bad flags throw a NinError with exit 2. */
export function parseFlags<T extends Record<string, FlagSpec>>(
  usage: string,
  summary: string,
  specs: T,
  args: string[],
): Flags<T> | null {
  const options: Record<string, { type: "string" | "boolean" }> = { help: { type: "boolean" } };
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
  if (values.help) {
    console.log(helpText(usage, summary, specs));
    return null;
  }
  const out: Record<string, number | string | boolean | undefined> = {};
  for (const [name, spec] of Object.entries(specs)) {
    const raw = values[name];
    out[name] = raw === undefined ? spec.default : convert(name, spec, raw);
  }
  return out as Flags<T>;
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
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
      return new NinError(`unknown flag ${flag}; the flags are ${known} and --help`, 2);
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
 * import { layerShapes, nin, requestGpu } from "../mod.ts";
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

/**
 * Runs a task's main function: a NinError (or any error) becomes `error: <one line>` on stderr and its exit
 * code; success exits 0 explicitly, so a GPU engine holding the event loop cannot keep the process alive.
 * Set NIN_DEBUG=1 to see stack traces.
 */
export async function runTask(main: () => Promise<void>): Promise<never> {
  try {
    await main();
  } catch (e) {
    const error = e instanceof Error ? e : new Error(String(e));
    console.error(`error: ${error.message.split("\n")[0]}`);
    if (Deno.env.get("NIN_DEBUG")) console.error(error.stack);
    Deno.exit(e instanceof NinError ? e.exitCode : 1);
  }
  Deno.exit(0);
}
