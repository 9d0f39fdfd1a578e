/**
 * Where the tasks' output files go: `runs/` (ignored by git) is the one directory for them, created on
 * first use; any other directory must already exist.
 *
 * @module
 */
import { dirname, normalize } from "node:path";
import { checkWritable } from "../lib/deno/atomic_write.ts";

/** The directory for outputs (checkpoints, plots, metrics) of the README's commands. */
const RUNS_DIR = "runs";

/**
 * Readies `path` for a task's output before any work is done: creates `runs/` first when `path` is directly
 * inside it, then checks that the file can be written there (an error naming it if not).
 *
 * @example
 * ```ts
 * import { prepareOutput } from "./outputs.ts";
 * await prepareOutput("runs/model.safetensors"); // runs/ now exists
 * ```
 */
export async function prepareOutput(path: string): Promise<void> {
  if (normalize(dirname(path)) === RUNS_DIR) {
    await Deno.mkdir(RUNS_DIR, { recursive: true }).catch(() => {});
  }
  await checkWritable(path);
}
