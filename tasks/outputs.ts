/**
 * Where the tasks' output files go: `runs/` (ignored by git) is the one directory for them, created on
 * first use; any other directory must already exist.
 *
 * @module
 */
import { dirname, normalize } from "node:path";
import { checkWritable, describeFsError, removeLeftovers } from "../lib/deno/atomic_write.ts";
import { NinError } from "../lib/errors.ts";

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

/**
 * Appends `line` and a newline to `path` (created if missing) so that a reader never sees half a line: when
 * the write fails (a full disk), the file is cut back to its previous length and a {@link NinError} names
 * the path.
 *
 * @example
 * ```ts
 * import { appendLine } from "./outputs.ts";
 * const path = await Deno.makeTempFile();
 * await appendLine(path, JSON.stringify({ epoch: 1 }));
 * ```
 */
export async function appendLine(path: string, line: string): Promise<void> {
  let file: Deno.FsFile | undefined;
  let size = 0;
  try {
    file = await Deno.open(path, { append: true, create: true });
    size = (await file.stat()).size;
    const bytes = new TextEncoder().encode(line + "\n");
    for (let written = 0; written < bytes.length;) written += await file.write(bytes.subarray(written));
    await file.syncData();
  } catch (e) {
    await file?.truncate(size).catch(() => {});
    throw new NinError(`cannot write ${path}: ${describeFsError(e)}; the file keeps its previous lines`);
  } finally {
    file?.close();
  }
}

/**
 * A new run's id: UTC start time and a random suffix, e.g. `20261203-142501-3fa9`, carried by every metrics
 * line and the checkpoint so lines of different runs can be told apart.
 *
 * @example
 * ```ts
 * import { newRunId } from "./outputs.ts";
 * console.log(newRunId());
 * ```
 */
export function newRunId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  return `${stamp}-${Math.floor(Math.random() * 0x10000).toString(16).padStart(4, "0")}`;
}

/** A held lock on an output file, from {@link lockOutput}; `using` releases it at the end of the scope. */
export interface OutputLock extends Disposable {
  /** The lock file, next to the output: `<path>.lock`. */
  readonly path: string;
  /** Removes the lock file (once; later calls do nothing). */
  release(): void;
}

/**
 * Takes the lock on `path` for this process: an exclusive OS lock on `<path>.lock`, which holds this
 * process's PID. If another running process holds it, throws a {@link NinError} naming that PID. The OS
 * drops the lock when its process ends, however it ends, so a lock file left by a killed run is stale: it
 * is taken over, and `onStale` says so (as it does for the unfinished temporary files of a killed write of
 * `path`, which are removed).
 *
 * @example
 * ```ts
 * import { lockOutput } from "./outputs.ts";
 * const lock = await lockOutput(await Deno.makeTempDir() + "/run.safetensors");
 * lock.release();
 * ```
 */
export async function lockOutput(path: string, onStale?: (message: string) => void): Promise<OutputLock> {
  const lockPath = `${path}.lock`;
  let file: Deno.FsFile;
  try {
    file = await Deno.open(lockPath, { read: true, write: true, create: true });
  } catch (e) {
    throw new NinError(`cannot write ${lockPath}: ${describeFsError(e)}`);
  }
  const previous = new TextDecoder().decode(await readAll(file)).trim();
  if (!(await file.tryLock(true))) {
    file.close();
    throw new NinError(
      `${path} is in use by another run (PID ${previous || "unknown"}, lock file ${lockPath}); wait for it ` +
        `to end, or write to another --checkpoint`,
    );
  }
  if (previous) onStale?.(`note: took over the stale lock ${lockPath} (PID ${previous} is not running)`);
  // Holding the lock, no other run writes `path`: temporary files next to it are a killed write's leftovers.
  for (const leftover of await removeLeftovers(path)) {
    onStale?.(`note: removed ${leftover}, a write to ${path} that a killed run left unfinished`);
  }
  await file.truncate(0);
  await file.seek(0, Deno.SeekMode.Start);
  await file.write(new TextEncoder().encode(`${Deno.pid}\n`));
  let held = true;
  const release = () => {
    if (!held) return;
    held = false;
    // Removed first, then unlocked: a run starting in between finds no stale PID to report.
    Deno.removeSync(lockPath);
    file.close();
  };
  return { path: lockPath, release, [Symbol.dispose]: release };
}

async function readAll(file: Deno.FsFile): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const buffer = new Uint8Array(64);
  for (let n = await file.read(buffer); n !== null && chunks.length < 16; n = await file.read(buffer)) {
    chunks.push(buffer.slice(0, n));
  }
  return new Uint8Array(chunks.flatMap((c) => [...c]));
}
