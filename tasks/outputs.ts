/**
 * Where the tasks' output files go: `runs/` (ignored by git) is the one directory for them, created on
 * first use; any other directory must already exist.
 *
 * @module
 */
import { dirname, normalize } from "node:path";

/** The directory for outputs (checkpoints, plots, metrics) of the README's commands. */
export const RUNS_DIR = "runs";

/**
 * Returns `path` unchanged, creating `runs/` first when `path` is directly inside it.
 *
 * @example
 * ```ts
 * import { outputPath } from "./outputs.ts";
 * console.log(await outputPath("/tmp/model.safetensors")); // /tmp/model.safetensors
 * ```
 */
export async function outputPath(path: string): Promise<string> {
  if (normalize(dirname(path)) === RUNS_DIR) {
    await Deno.mkdir(RUNS_DIR, { recursive: true }).catch(() => {});
  }
  return path;
}
