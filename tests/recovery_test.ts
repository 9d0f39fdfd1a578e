// Subprocess tests of `tasks/train.ts` under faults: an unwritable checkpoint path, SIGINT and SIGKILL
// during an epoch, a diverging loss, no WebGPU adapter and a device lost mid-run. Each must end in one
// error line, keep the last complete checkpoint intact, and (where it makes sense) resume to exactly the
// numbers of an uninterrupted run. Runs NiN at 67x67 (the smallest size it accepts) on 24 random images.
import { deepStrictEqual } from "node:assert/strict";
import { assertJsonEqual as assertEquals } from "./util.ts";
import {
  assertTaskError,
  fileTaskTest,
  runTask,
  startTask,
  type TaskResult,
  tinyDataDir,
} from "./subprocess.ts";
import { type SafetensorsFile, serializeSafetensors } from "../lib/safetensors.ts";
import { readSafetensors } from "../lib/deno/safetensors_file.ts";

const TRAIN_IMAGES = 24;
const TEST_IMAGES = 8;
const BATCH = 4;
const STEPS_PER_EPOCH = TRAIN_IMAGES / BATCH;

/** A run with dropout (step-dependent masks) and momentum (optimizer state), so resuming has state to get right. */
function trainArgs(dataDir: string, checkpoint: string, epochs = 2): string[] {
  return [
    "--resize=67",
    `--batch-size=${BATCH}`,
    `--epochs=${epochs}`,
    "--momentum=0.9",
    "--lr=0.05",
    `--data-dir=${dataDir}`,
    "--offline",
    `--checkpoint=${checkpoint}`,
    `--metrics=${checkpoint}.jsonl`,
    // Mid-epoch checkpoints only where a test asks for them (by steps), so where a run stops is certain.
    "--checkpoint-minutes=1000",
  ];
}

/** A temporary directory with the tiny data set in `data/` and room for checkpoints; removed after `fn`. */
async function withRunDir(fn: (dir: string, dataDir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "nin_recovery_" });
  const dataDir = await tinyDataDir(TRAIN_IMAGES, TEST_IMAGES);
  try {
    await fn(dir, dataDir);
  } finally {
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(dataDir, { recursive: true });
  }
}

/** What two runs must agree on: final tensors bit for bit, run state, per-epoch figures, the summary. */
interface Outcome {
  tensors: Map<string, Uint8Array>;
  state: { epoch: number; step: number; history: Record<string, number>[] };
  metrics: Record<string, number>[];
  summary: string;
}

const FIGURES = ["epoch", "loss", "trainAcc", "testAcc", "step"];

function figures(records: Record<string, number>[]): Record<string, number>[] {
  return records.map((r) => Object.fromEntries(FIGURES.map((k) => [k, r[k]])));
}

async function outcome(checkpoint: string, result: TaskResult): Promise<Outcome> {
  const file: SafetensorsFile = await readSafetensors(checkpoint);
  const state = JSON.parse(file.metadata.state);
  const metrics = (await Deno.readTextFile(`${checkpoint}.jsonl`)).trim().split("\n").map((l) =>
    JSON.parse(l)
  );
  return {
    tensors: new Map([...file.tensors].map(([name, t]) => [name, new Uint8Array(t.data.buffer)])),
    state: { epoch: state.epoch, step: state.step, history: figures(state.history) },
    metrics: figures(metrics),
    summary: result.stdout.split("\n").find((l) => l.startsWith("loss ")) ?? "(no summary line)",
  };
}

function assertSameOutcome(actual: Outcome, expected: Outcome, what: string): void {
  assertEquals(
    [...actual.tensors.keys()].sort(),
    [...expected.tensors.keys()].sort(),
    `${what}: tensor names`,
  );
  for (const [name, bytes] of expected.tensors) {
    deepStrictEqual(
      actual.tensors.get(name),
      bytes,
      `${what}: tensor ${name} differs from the uninterrupted run's`,
    );
  }
  assertEquals(actual.state, expected.state, `${what}: run state`);
  assertEquals(actual.metrics, expected.metrics, `${what}: metrics lines`);
  assertEquals(actual.summary, expected.summary, `${what}: summary line`);
}

let reference: Promise<Outcome> | null = null;

/** The uninterrupted two-epoch run every resumed run must reproduce (run once per test process). */
function uninterrupted(): Promise<Outcome> {
  reference ??= (async () => {
    let result: Outcome | null = null;
    await withRunDir(async (dir, dataDir) => {
      const checkpoint = `${dir}/reference.safetensors`;
      const run = await runTask("train", trainArgs(dataDir, checkpoint));
      if (run.code !== 0) throw new Error(`the reference run failed:\n${run.stderr}`);
      result = await outcome(checkpoint, run);
    });
    assertEquals(result!.state.epoch, 2, "reference epochs");
    return result!;
  })();
  return reference;
}

/** Checks `checkpoint` holds exactly epoch 1 (a complete, parseable file) and nothing else is in `dir`. */
async function assertEpochOneCheckpoint(dir: string, checkpoint: string): Promise<void> {
  const file = await readSafetensors(checkpoint);
  const state = JSON.parse(file.metadata.state);
  assertEquals([state.epoch, state.step], [1, STEPS_PER_EPOCH], "the checkpoint holds epoch 1");
  // A killed run leaves its lock file (stale, taken over by the next run); nothing else.
  const names = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => !n.endsWith(".lock")).sort();
  assertEquals(
    names,
    [checkpoint.split("/").pop(), `${checkpoint.split("/").pop()}.jsonl`],
    "files in the run dir",
  );
}

/**
 * Interrupts a run during epoch 2 with `signal` once stderr shows `waitFor`, checks what it left with
 * `check` (which returns how the resumed run must say where it resumes), then resumes it and compares with
 * the uninterrupted run, bit for bit.
 */
async function interruptAndResume(
  signal: Deno.Signal,
  waitFor: string,
  check: (stopped: TaskResult, dir: string, checkpoint: string) => Promise<string>,
  extraArgs: string[] = [],
) {
  const expected = await uninterrupted();
  await withRunDir(async (dir, dataDir) => {
    const checkpoint = `${dir}/run.safetensors`;
    const task = startTask("train", [...trainArgs(dataDir, checkpoint), ...extraArgs]);
    await task.waitForStderr(waitFor);
    task.kill(signal);
    const stopped = await task.finish();
    if (stopped.stdout.includes("epoch 2/2")) throw new Error(`epoch 2 finished despite ${signal}`);
    const where = await check(stopped, dir, checkpoint);

    const resumed = await runTask("train", [...trainArgs(dataDir, checkpoint), `--resume=${checkpoint}`]);
    if (resumed.code !== 0) throw new Error(`the resumed run failed:\n${resumed.stderr}`);
    if (!resumed.stderr.includes(`resuming ${checkpoint} ${where}`)) {
      throw new Error(`the resumed run did not say "${where}":\n${resumed.stderr}`);
    }
    assertSameOutcome(await outcome(checkpoint, resumed), expected, `resumed after ${signal}`);
  });
}

/** The position inside epoch 2 that a mid-epoch checkpoint holds (epoch 1 done, some steps of epoch 2). */
async function midEpochPosition(checkpoint: string): Promise<number> {
  const state = JSON.parse((await readSafetensors(checkpoint)).metadata.state);
  assertEquals([state.epoch, state.position?.epoch], [1, 2], "epoch 1 done, inside epoch 2");
  const batch = state.position.batch;
  // Steps queued before the stop are still run and counted: the stop point can be as late as the epoch end.
  if (!(batch >= 1 && batch <= STEPS_PER_EPOCH)) throw new Error(`position ${batch} is not in the epoch`);
  assertEquals(state.step, STEPS_PER_EPOCH + batch, "optimizer steps");
  return batch;
}

fileTaskTest(
  "train: SIGINT mid-epoch saves the exact stop point and prints a resume command for it; --resume ends " +
    "bit for bit like an uninterrupted run",
  async () => {
    await interruptAndResume("SIGINT", `epoch 2 1/${STEPS_PER_EPOCH}`, async (stopped, _, checkpoint) => {
      assertTaskError(
        stopped,
        130,
        `interrupted in epoch 2; saved ${checkpoint}; resume with: deno task train --resume ${checkpoint}`,
      );
      return `in epoch 2 after ${await midEpochPosition(checkpoint)} of its steps`;
    });
  },
);

fileTaskTest(
  "train: SIGKILL after a mid-epoch checkpoint (--checkpoint-steps 2); --resume continues mid-epoch and " +
    "ends bit for bit like an uninterrupted run",
  async () => {
    await interruptAndResume(
      "SIGKILL",
      `at epoch 2, step 2/${STEPS_PER_EPOCH}`,
      async (stopped, _, checkpoint) => {
        assertEquals(stopped.code, 137, "killed");
        return `in epoch 2 after ${await midEpochPosition(checkpoint)} of its steps`;
      },
      ["--checkpoint-steps=2"],
    );
  },
);

fileTaskTest(
  "train: SIGKILL during an epoch leaves the last checkpoint intact; --resume ends exactly like an uninterrupted run",
  async () => {
    await interruptAndResume("SIGKILL", `epoch 2 1/${STEPS_PER_EPOCH}`, async (stopped, dir, checkpoint) => {
      assertEquals(stopped.code, 137, "killed");
      await assertEpochOneCheckpoint(dir, checkpoint);
      return `after epoch 1 (step ${STEPS_PER_EPOCH})`;
    });
  },
);

fileTaskTest(
  "train: a checkpoint path in a missing, file-blocked or unwritable directory fails before training starts",
  async () => {
    await withRunDir(async (dir, dataDir) => {
      await Deno.writeTextFile(`${dir}/file.txt`, "not a directory");
      const cases: [string, string[], string][] = [
        [`${dir}/missing/c.safetensors`, [], "the file or its directory does not exist"],
        [`${dir}/file.txt/c.safetensors`, [], "a component of its directory is a file, not a directory"],
        [dataDir, [], "it is a directory"],
        // Read-only for this process: Deno may write only into the data directory. (Tests run as root in CI,
        // where a chmod'ed directory would not stop the write; the permission sandbox does.)
        [
          `${dir}/readonly/c.safetensors`,
          ["--allow-read", `--allow-write=${dataDir}`, "--allow-env"],
          "Deno has no permission for it",
        ],
      ];
      await Deno.mkdir(`${dir}/readonly`);
      for (const [checkpoint, permissions, reason] of cases) {
        const args = trainArgs(dataDir, checkpoint, 1).filter((a) => !a.startsWith("--metrics"));
        const result = await runTask("train", args, permissions.length ? { permissions } : {});
        assertTaskError(result, 1, `cannot write ${checkpoint}: ${reason}`);
        assertEquals(result.stdout, "", `${checkpoint}: no epoch ran`);
        if (result.stderr.includes("data:")) throw new Error(`${checkpoint}: the data were loaded first`);
      }
      assertEquals(
        [...Deno.readDirSync(`${dir}/readonly`)],
        [],
        "nothing written into the read-only directory",
      );
    });
  },
);

// A chmod'ed directory only stops a user without CAP_DAC_OVERRIDE; probe whether this one is stopped.
const chmodStopsWrites = (() => {
  const dir = Deno.makeTempDirSync({ prefix: "nin_chmod_probe_" });
  try {
    Deno.chmodSync(dir, 0o555);
    Deno.writeFileSync(`${dir}/probe`, new Uint8Array(1));
    return false;
  } catch {
    return true;
  } finally {
    Deno.chmodSync(dir, 0o755);
    Deno.removeSync(dir, { recursive: true });
  }
})();

fileTaskTest(
  "train: a checkpoint path in a chmod 555 directory fails before training starts (not as root)",
  async () => {
    await withRunDir(async (dir, dataDir) => {
      await Deno.mkdir(`${dir}/locked`);
      await Deno.chmod(`${dir}/locked`, 0o555);
      try {
        const checkpoint = `${dir}/locked/c.safetensors`;
        const result = await runTask("train", trainArgs(dataDir, checkpoint, 1).slice(0, -1));
        assertTaskError(result, 1, `cannot write ${checkpoint}: permission denied by the file system`);
        assertEquals(result.stdout, "", "no epoch ran");
      } finally {
        await Deno.chmod(`${dir}/locked`, 0o755);
      }
    });
  },
  { ignore: !chmodStopsWrites },
);

fileTaskTest(
  "train: a non-finite loss stops the run with the step and a learning-rate hint; the last checkpoint is kept",
  async () => {
    await withRunDir(async (dir, dataDir) => {
      const checkpoint = `${dir}/run.safetensors`;
      const first = await runTask("train", trainArgs(dataDir, checkpoint, 1));
      if (first.code !== 0) throw new Error(`epoch 1 failed:\n${first.stderr}`);
      // Make epoch 2 diverge for certain: an infinite bias in the last convolution gives infinite logits,
      // whose softmax cross-entropy is NaN at the first step (a large --lr diverges too, but depending on the
      // seed its ReLUs may die first and leave the loss finite).
      const saved = await readSafetensors(checkpoint);
      saved.tensors.get("7.4.bias")!.data.fill(Infinity);
      const poisoned = serializeSafetensors(saved.tensors, saved.metadata);
      await Deno.writeFile(checkpoint, poisoned);

      const result = await runTask("train", [...trainArgs(dataDir, checkpoint), `--resume=${checkpoint}`]);
      assertTaskError(
        result,
        1,
        `at step ${STEPS_PER_EPOCH + 1} (epoch 2, batch 1)`,
        "the learning rate 0.05 is probably too high: try a smaller --lr",
      );
      if (!/the loss became (NaN|Infinity|-Infinity) /.test(result.stderr)) {
        throw new Error(`the error does not say the loss became non-finite:\n${result.stderr}`);
      }
      const after = await Deno.readFile(checkpoint);
      deepStrictEqual(after, poisoned, "the checkpoint of the last complete epoch is untouched");
      assertEquals(result.stdout, "", "no epoch line for the diverged epoch");
      await assertEpochOneCheckpoint(dir, checkpoint);
    });
  },
);

fileTaskTest(
  "train and shapes: no WebGPU adapter is one error line saying so; nothing is written",
  async () => {
    await withRunDir(async (dir, dataDir) => {
      const fault = { preload: "tests/fault_injection.ts", env: { NIN_FAULT: "no-adapter" } };
      const train = await runTask("train", trainArgs(dataDir, `${dir}/c.safetensors`), fault);
      assertTaskError(
        train,
        1,
        "no WebGPU adapter found (engine deno); check the GPU driver or try --gpu dawn",
      );
      assertEquals([...Deno.readDirSync(dir)], [], "nothing written");
      const shapes = await runTask("shapes", [], fault);
      assertTaskError(shapes, 1, "no WebGPU adapter found");
      assertEquals(shapes.stdout, "", "shapes printed nothing");
    });
  },
);

fileTaskTest(
  "train: a device lost mid-run is one error line saying so; the last checkpoint is intact and resumable",
  async () => {
    const expected = await uninterrupted();
    await withRunDir(async (dir, dataDir) => {
      const checkpoint = `${dir}/run.safetensors`;
      const fault = { preload: "tests/fault_injection.ts", env: { NIN_FAULT: "lose-on-sigusr2" } };
      const task = startTask("train", trainArgs(dataDir, checkpoint), fault);
      await task.waitForStderr(`epoch 2 1/${STEPS_PER_EPOCH}`);
      task.kill("SIGUSR2");
      const lost = await task.finish();
      assertTaskError(lost, 1, "the GPU device was lost", "restart the run (use --resume to continue)");
      await assertEpochOneCheckpoint(dir, checkpoint);
      const resumed = await runTask("train", [...trainArgs(dataDir, checkpoint), `--resume=${checkpoint}`]);
      if (resumed.code !== 0) throw new Error(`the resumed run failed:\n${resumed.stderr}`);
      assertSameOutcome(await outcome(checkpoint, resumed), expected, "resumed after a lost device");
    });
  },
);

fileTaskTest(
  "train and eval: a damaged or mismatched checkpoint, or a damaged data file, is an error naming the file",
  async () => {
    await withRunDir(async (dir, dataDir) => {
      const checkpoint = `${dir}/run.safetensors`;
      const first = await runTask("train", [...trainArgs(dataDir, checkpoint, 1), "--one-by-one-convs=1"]);
      if (first.code !== 0) throw new Error(`epoch 1 failed:\n${first.stderr}`);
      const bytes = await Deno.readFile(checkpoint);

      // Truncated: rejected whole before any training, and left as it was.
      await Deno.writeFile(`${dir}/cut.safetensors`, bytes.subarray(0, bytes.length - 100));
      const cut = await runTask("train", [
        ...trainArgs(dataDir, `${dir}/cut.safetensors`),
        `--resume=${dir}/cut.safetensors`,
      ]);
      assertTaskError(cut, 1, `${dir}/cut.safetensors: not a valid safetensors file:`, "end beyond the");
      assertEquals(
        [cut.stdout, (await Deno.stat(`${dir}/cut.safetensors`)).size],
        ["", bytes.length - 100],
        "untouched",
      );

      // The eval task builds the model the checkpoint's config names; told otherwise, it lists the mismatch.
      const evalArgs = [`--checkpoint=${checkpoint}`, `--data-dir=${dataDir}`, "--offline"];
      const mismatched = await runTask("eval", [...evalArgs, "--one-by-one-convs=2"]);
      assertTaskError(
        mismatched,
        2,
        `${checkpoint} does not fit NiN with --one-by-one-convs 2 --head direct: `,
        "state dict does not fit the model: missing 0.4.weight; missing 0.4.bias",
      );
      const evaluated = await runTask("eval", evalArgs);
      assertEquals(
        [evaluated.code, evaluated.stdout.includes("test acc")],
        [0, true],
        `eval: ${evaluated.stderr}`,
      );

      // A truncated IDX file: the error names it.
      const images = `${dataDir}/t10k-images-idx3-ubyte`;
      const idx = await Deno.readFile(images);
      await Deno.writeFile(images, idx.subarray(0, idx.length - 1));
      const damaged = await runTask("eval", evalArgs);
      assertTaskError(damaged, 1, images);
    });
  },
);

fileTaskTest(
  "train --resume: a conflicting flag names both values; nothing left to train exits 2; plot and metrics " +
    "continue; a fresh run starts its metrics anew, every line with the run's id and configuration",
  async () => {
    await withRunDir(async (dir, dataDir) => {
      const checkpoint = `${dir}/run.safetensors`;
      const args = [...trainArgs(dataDir, checkpoint, 1), `--plot=${dir}/run.svg`];
      await Deno.writeTextFile(`${checkpoint}.jsonl`, `{"run":"an-older-run","epoch":1}\n`);
      const first = await runTask("train", args);
      if (first.code !== 0) throw new Error(`epoch 1 failed:\n${first.stderr}`);
      const [line] = (await Deno.readTextFile(`${checkpoint}.jsonl`)).trim().split("\n").map((l) =>
        JSON.parse(l)
      );
      const run = line.run;
      assertEquals(
        [
          /^\d{8}-\d{6}-[0-9a-f]{4}$/.test(run),
          line.epoch,
          line.config.train.lr,
          line.config.train.batchSize,
        ],
        [true, 1, 0.05, BATCH],
        "the fresh run's one metrics line (the older run's line is gone)",
      );
      const resume = [`--resume=${checkpoint}`, `--data-dir=${dataDir}`, "--offline"];
      assertTaskError(
        await runTask("train", [...resume, "--momentum", "0"]),
        2,
        `--momentum 0 conflicts with ${checkpoint}, which was trained with --momentum 0.9`,
      );
      assertTaskError(
        await runTask("train", resume),
        2,
        `nothing left to train: ${checkpoint} is at epoch 1 and the run has --epochs 1; pass --epochs 2`,
      );
      const more = await runTask("train", [...resume, "--epochs", "2"]);
      if (more.code !== 0) throw new Error(`the resumed run failed:\n${more.stderr}`);
      const metrics = (await Deno.readTextFile(`${checkpoint}.jsonl`)).trim().split("\n");
      assertEquals(
        metrics.map((l) => [JSON.parse(l).run, JSON.parse(l).epoch]),
        [[run, 1], [run, 2]],
        "metrics continued in the same file, under the same run id",
      );
      const svg = await Deno.readTextFile(`${dir}/run.svg`);
      // Test accuracy has one triangle per epoch: the plot holds the checkpoint's epoch and the new one.
      assertEquals(
        svg.match(/<path d="M[^"]*Z" fill="none" stroke="#2ca02c"/g)?.length,
        2 + 1,
        "test acc markers (+ legend)",
      );
    });
  },
);
