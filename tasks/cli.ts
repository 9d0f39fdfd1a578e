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

/** Help text for a task. */
export function helpText(usage: string, summary: string, specs: Record<string, FlagSpec>): string {
  const lines = [`Usage: ${usage}`, "", summary, "", "Options:"];
  for (const [name, spec] of Object.entries(specs)) {
    const arg = spec.type === "boolean" ? "" : spec.choices ? ` <${spec.choices.join("|")}>` : ` <${spec.type}>`;
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
    ({ values } = parseArgs({ args, options, strict: true, allowPositionals: false }));
  } catch (e) {
    const message = (e as Error).message.split(/(?<=\.) /)[0].replace(/\.$/, "");
    throw new NinError(`${message} (see --help)`, 2);
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
