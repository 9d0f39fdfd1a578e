/**
 * Fashion-MNIST for the tasks that read it (train, eval): loaded from `--data-dir` or the cache, downloaded
 * unless `--offline`, with progress and the source used on stderr.
 *
 * @module
 */
import type { FashionMnist } from "../lib/data/split.ts";
import { loadFashionMnist } from "../lib/deno/fashion_mnist.ts";

/**
 * Prints a data-loading message on stderr; when the official files could not be had and the run was not
 * `--offline`, adds that `--offline` skips the download attempt.
 *
 * @example
 * ```ts
 * import { printDataProgress } from "./data.ts";
 * printDataProgress("converting the npm copy...", false);
 * ```
 */
export function printDataProgress(message: string, offline: boolean): void {
  const hint = !offline && message.includes("IDX files not used")
    ? " (--offline skips the download attempt)"
    : "";
  console.error(message + hint);
}

/**
 * Loads Fashion-MNIST as a task's `--data-dir` and `--offline` say, printing progress (see
 * {@link printDataProgress}) and then `data: <source>` on stderr.
 *
 * @example
 * ```ts
 * import { loadTaskData } from "./data.ts";
 * const data = await loadTaskData({ "data-dir": undefined, offline: true });
 * console.log(data.test.count);
 * ```
 */
export async function loadTaskData(flags: { "data-dir"?: string; offline: boolean }): Promise<FashionMnist> {
  const data = await loadFashionMnist({
    dataDir: flags["data-dir"],
    download: !flags.offline,
    onProgress: (message) => printDataProgress(message, flags.offline),
  });
  console.error(`data: ${data.source.split("; ")[0]}`);
  return data;
}
