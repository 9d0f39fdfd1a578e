// Helpers for subprocess tests of the tasks: run `deno run <permissions> tasks/<task>.ts <args>` in a scratch
// directory with a scratch cache (never the user's `runs/` or cache), capture its output, optionally signal it when a line shows up, and a tiny IDX data set
// so training runs take seconds.
import { encodeIdxImages, encodeIdxLabels } from "../lib/deno/idx.ts";
import { Random } from "../lib/random.ts";
import { testEngine, testKernels } from "./util.ts";

/**
 * A Deno.test of a task run as a subprocess. The tasks run on their default engine whatever
 * NIN_TEST_ENGINE says (the fault injector patches Deno's built-in WebGPU), so these run in the default
 * pass only and are reported as ignored in the Dawn pass.
 */
export function taskTest(name: string, fn: () => Promise<void>, options: { ignore?: boolean } = {}): void {
  Deno.test({ name, ignore: options.ignore || testEngine !== "deno", fn });
}

/**
 * A {@link taskTest} whose subject (files, signals, locks, checkpoints) does not depend on the kernel family:
 * it runs in the software-kernel legs only, which keeps the gpu family's leg within CI's time.
 */
export function fileTaskTest(
  name: string,
  fn: () => Promise<void>,
  options: { ignore?: boolean } = {},
): void {
  taskTest(name, fn, { ignore: options.ignore || testKernels === "gpu" });
}

/** The repository root (the tasks resolve imports through its deno.json). */
export const ROOT = new URL("..", import.meta.url).pathname;

/**
 * A fresh directory per test process in which the tasks run (their default outputs, `runs/...`, land
 * here) with `cache/` as their NIN_CACHE_DIR: a test never touches the user's `runs/` or cache. Removed when
 * the process ends.
 */
export const SCRATCH = await Deno.makeTempDir({ prefix: "nin_test_scratch_" });

/** The toolkit cache of the tasks the tests start (see {@link SCRATCH}). */
export const TEST_CACHE_DIR = `${SCRATCH}/cache`;

globalThis.addEventListener("unload", () => {
  try {
    Deno.removeSync(SCRATCH, { recursive: true });
  } catch { /* already gone */ }
});

/** What the tasks need: files and environment, nothing else (no network, no subprocesses, no FFI). */
export const TASK_PERMISSIONS = ["--allow-read", "--allow-write", "--allow-env"];

/** Options of {@link runTask} and {@link startTask}. */
export interface TaskOptions {
  /** Permission flags for the child (default {@link TASK_PERMISSIONS}). */
  permissions?: string[];
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** A module to load before the task (`--preload`), e.g. the fault injector. */
  preload?: string;
}

/** A finished task run. */
export interface TaskResult {
  /** Exit code (128 + signal number when killed by a signal). */
  code: number;
  /** Everything the task printed on stdout. */
  stdout: string;
  /** What the task printed on stderr, less the lines a graphics driver prints by itself ({@link DRIVER_LINES}). */
  stderr: string;
}

/**
 * Lines a graphics driver prints on stderr by itself, whatever the task does: Mesa's Vulkan driver (lavapipe)
 * prints the first, twice, in every process that opens it while XDG_RUNTIME_DIR is unset. The tests judge
 * the task's own output, so {@link runTask} and {@link startTask} leave these out of `stderr`.
 */
export const DRIVER_LINES: readonly RegExp[] = [
  /^error: XDG_RUNTIME_DIR is invalid or not set in the environment\.$/,
];

/** `stderr` without the lines of {@link DRIVER_LINES}. */
export function withoutDriverLines(stderr: string): string {
  return stderr.split("\n").filter((line) => !DRIVER_LINES.some((known) => known.test(line))).join("\n");
}

function command(task: string, args: string[], options: TaskOptions): Deno.Command {
  const flags = [...(options.permissions ?? TASK_PERMISSIONS)];
  if (options.preload) flags.push(`--preload=${ROOT}${options.preload}`);
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", `--config=${ROOT}deno.json`, ...flags, `${ROOT}tasks/${task}.ts`, ...args],
    cwd: SCRATCH,
    // NIN_DEBUG would add stack traces; the tests check that there are none.
    env: { NIN_DEBUG: "", NO_COLOR: "1", NIN_CACHE_DIR: TEST_CACHE_DIR, ...options.env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

/** Runs a task to the end. */
export async function runTask(task: string, args: string[], options: TaskOptions = {}): Promise<TaskResult> {
  const out = await command(task, args, options).output();
  const decoder = new TextDecoder();
  return {
    code: out.signal ? 128 + signalNumber(out.signal) : out.code,
    stdout: decoder.decode(out.stdout),
    stderr: withoutDriverLines(decoder.decode(out.stderr)),
  };
}

/** A running task whose stderr can be watched. */
export interface RunningTask {
  /** The task's process id. */
  readonly pid: number;
  /** Resolves once stderr contains `text` (rejects if the task ends first). */
  waitForStderr(text: string): Promise<void>;
  /** Sends a signal to the task. */
  kill(signal: Deno.Signal): void;
  /** Waits for the task to end. */
  finish(): Promise<TaskResult>;
}

/** Starts a task in the background. */
export function startTask(task: string, args: string[], options: TaskOptions = {}): RunningTask {
  const child = command(task, args, options).spawn();
  let stderr = "";
  let waiters: { text: string; resolve: () => void }[] = [];
  const check = () => {
    waiters = waiters.filter((w) => {
      if (stderr.includes(w.text)) w.resolve();
      return !stderr.includes(w.text);
    });
  };
  const stderrDone = (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      stderr += chunk;
      check();
    }
  })();
  const stdoutText = new Response(child.stdout).text();
  const status = child.status;
  return {
    pid: child.pid,
    waitForStderr: (text) =>
      new Promise<void>((resolve, reject) => {
        waiters.push({ text, resolve });
        check();
        stderrDone.then(() => {
          if (!stderr.includes(text)) {
            reject(new Error(`the task ended without printing "${text}":\n${stderr}`));
          }
        });
      }),
    kill: (signal) => child.kill(signal),
    finish: async () => {
      const [s, stdout] = await Promise.all([status, stdoutText, stderrDone]);
      const code = s.signal ? 128 + signalNumber(s.signal) : s.code;
      return { code, stdout, stderr: withoutDriverLines(stderr) };
    },
  };
}

function signalNumber(signal: Deno.Signal): number {
  return ({ SIGINT: 2, SIGKILL: 9, SIGTERM: 15, SIGUSR2: 12 } as Record<string, number>)[signal] ?? 0;
}

/**
 * Writes a tiny Fashion-MNIST look-alike (random 28x28 images and labels, uncompressed IDX files under the
 * official names) into a new temporary directory and returns it.
 */
export async function tinyDataDir(trainCount: number, testCount: number, seed = 1): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "nin_tiny_data_" });
  const rng = new Random(seed);
  const images = (n: number) => Uint8Array.from({ length: n * 784 }, () => rng.int(256));
  const labels = (n: number) => Uint8Array.from({ length: n }, () => rng.int(10));
  await Deno.writeFile(
    `${dir}/train-images-idx3-ubyte`,
    encodeIdxImages(images(trainCount), trainCount, 28, 28),
  );
  await Deno.writeFile(`${dir}/train-labels-idx1-ubyte`, encodeIdxLabels(labels(trainCount)));
  await Deno.writeFile(
    `${dir}/t10k-images-idx3-ubyte`,
    encodeIdxImages(images(testCount), testCount, 28, 28),
  );
  await Deno.writeFile(`${dir}/t10k-labels-idx1-ubyte`, encodeIdxLabels(labels(testCount)));
  return dir;
}

/** The lines of a task's stderr that say what went wrong: exactly one `error: ...` line, and no stack trace. */
export function errorLine(result: TaskResult): string {
  const lines = result.stderr.split("\n").filter((l) => l.trim() !== "");
  const errors = lines.filter((l) => l.startsWith("error: "));
  if (errors.length !== 1) throw new Error(`expected one "error:" line on stderr, got:\n${result.stderr}`);
  if (lines.some((l) => /^\s+at /.test(l))) throw new Error(`stderr has a stack trace:\n${result.stderr}`);
  if (lines[lines.length - 1] !== errors[0]) {
    throw new Error(`the error line is not the last thing printed:\n${result.stderr}`);
  }
  return errors[0];
}

/** Asserts a task failed with exit code `code` and an error line containing every string of `parts`. */
export function assertTaskError(result: TaskResult, code: number, ...parts: string[]): string {
  const line = errorLine(result);
  if (result.code !== code) {
    throw new Error(`expected exit code ${code}, got ${result.code}; stderr:\n${result.stderr}`);
  }
  for (const part of parts) {
    if (!line.includes(part)) throw new Error(`expected the error to contain "${part}", got:\n${line}`);
  }
  return line;
}
