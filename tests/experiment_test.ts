// The tasks with what tuning needs: the head variant through train, eval, shapes and resources; the
// validation split and fine-tuning on resume in train; and the three experiments end to end at a tiny size
// (67x67, a few steps): two shards as two processes merge into the report one process writes, a finished
// trial is skipped, a claimed one left alone, an interrupted one resumes to the uninterrupted numbers.
import { assertJsonEqual } from "./util.ts";
import { assertTaskError, runTask, startTask, taskTest, tinyDataDir } from "./subprocess.ts";
import { loadCheckpoint } from "../lib/deno/checkpoint_file.ts";

const TINY = ["--resize", "67", "--batch-size", "4", "--offline"];

async function withDirs(fn: (dir: string, data: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "nin_experiment_" });
  const data = await tinyDataDir(24, 8);
  try {
    await fn(dir, data);
  } finally {
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(data, { recursive: true });
  }
}

function ok(result: { code: number; stderr: string }, what: string): void {
  if (result.code !== 0) throw new Error(`${what} failed (exit ${result.code}):\n${result.stderr}`);
}

taskTest(
  "the gradual head in train, eval, shapes and resources; --valid and fine-tuning in train",
  async () => {
    await withDirs(async (dir, data) => {
      const checkpoint = `${dir}/gradual.safetensors`;
      const args = [...TINY, "--data-dir", data, "--checkpoint", checkpoint, "--lr", "0.05"];
      const first = await runTask("train", [...args, "--head", "gradual", "--valid", "4", "--epochs", "1"]);
      ok(first, "train --head gradual");
      if (!/valid acc \d/.test(first.stdout)) throw new Error(`no validation accuracy:\n${first.stdout}`);

      // Fine-tuning: a new rate and schedule from the next step on (20 training images: 5 steps an epoch).
      const tuned = await runTask("train", [
        ...args,
        "--resume",
        checkpoint,
        "--epochs",
        "2",
        "--lr",
        "0.01",
        "--lr-schedule",
        "cosine",
      ]);
      ok(tuned, "fine-tuning");
      const announced = "fine-tuning from step 6 on: --lr 0.05 -> 0.01, --lr-schedule constant -> cosine";
      if (!tuned.stderr.includes(announced)) throw new Error(`not announced:\n${tuned.stderr}`);
      const { state } = await loadCheckpoint(checkpoint);
      // Step 10 of 10 (index 9) of a cosine over 10 steps: 0.01 * (1 + cos(0.9 pi)) / 2.
      const expected = 0.01 * (1 + Math.cos(0.9 * Math.PI)) / 2;
      if (Math.abs(state.history[1].lr! - expected) > 1e-12) {
        throw new Error(`last rate ${state.history[1].lr}, expected ${expected}`);
      }
      assertJsonEqual(
        [
          state.config?.model.head,
          state.config?.data.valid,
          state.history.map((h) => h.validAcc !== undefined),
        ],
        ["gradual", 4, [true, true]],
        "the checkpoint's configuration and history",
      );

      const evaluated = await runTask("eval", ["--checkpoint", checkpoint, "--data-dir", data, "--offline"]);
      ok(evaluated, "eval of the gradual checkpoint");
      if (!evaluated.stdout.startsWith("test acc ")) throw new Error(evaluated.stdout);
      assertTaskError(
        await runTask("eval", [
          "--checkpoint",
          checkpoint,
          "--head",
          "direct",
          "--data-dir",
          data,
          "--offline",
        ]),
        2,
        "does not fit NiN with --one-by-one-convs 2 --head direct",
      );
      assertTaskError(
        await runTask("train", [...TINY, "--data-dir", data, "--valid", "24", "--epochs", "1"]),
        2,
        "--valid 24: validation images must be an integer from 1 to 23",
      );

      const shapes = await runTask("shapes", ["--head", "gradual", "--leaf"]);
      ok(shapes, "shapes --head gradual");
      for (
        const line of [
          "7.0 Conv2d output shape:\t [1, 384, 5, 5]",
          "7.2 Conv2d output shape:\t [1, 96, 5, 5]",
        ]
      ) {
        if (!shapes.stdout.includes(line)) throw new Error(`no "${line}" in:\n${shapes.stdout}`);
      }
      const resources = await runTask("resources", [
        "--no-measure",
        "--head",
        "gradual",
        "--json",
        "--batch-size",
        "1",
      ]);
      ok(resources, "resources --head gradual");
      // The chapter's 1,992,166 parameters, less its last 3x3 conv (384*10*9 + 10) and two 1x1 convs (2 * 110),
      // plus the gradual head's 384*384*9 + 384, 384*96 + 96 and 96*10 + 10.
      const expectedParams = 1992166 - 34790 + 1327488 + 36960 + 970;
      assertJsonEqual(JSON.parse(resources.stdout).params.count, expectedParams, "gradual head parameters");
    });
  },
);

/** The report's text without the columns that measure time (examples/s and time), which runs never share. */
function reportWithoutTimes(markdown: string): string {
  return markdown.split("\n").map((line) =>
    line.startsWith("|") ? line.split(" | ").slice(0, -2).join(" | ") : line
  )
    .join("\n");
}

taskTest(
  "experiments end to end: two shards merge into one process's report; hyperparameters ranks by validation",
  async () => {
    await withDirs(async (dir, data) => {
      const args = [
        ...TINY,
        "--data-dir",
        data,
        "--epochs",
        "1",
        "--limit-train",
        "8",
        "--limit-test",
        "4",
        "--seeds",
        "1",
      ];
      const shards = [0, 1].map((i) =>
        startTask("experiment", ["one-by-one", ...args, "--out", `${dir}/shards`, "--shard", `${i}/2`])
      );
      for (const [i, shard] of shards.entries()) ok(await shard.finish(), `shard ${i}/2`);
      const merged = await runTask("experiment", ["one-by-one", "--report", "--out", `${dir}/shards`]);
      ok(merged, "--report");
      ok(await runTask("experiment", ["one-by-one", ...args, "--out", `${dir}/one`]), "one process");
      const read = (root: string, file: string) => Deno.readTextFile(`${root}/one-by-one/${file}`);
      const [md1, mdN] = [await read(`${dir}/one`, "report.md"), await read(`${dir}/shards`, "report.md")];
      assertJsonEqual(reportWithoutTimes(mdN), reportWithoutTimes(md1), "report.md");
      assertJsonEqual(
        await read(`${dir}/shards`, "report.svg"),
        await read(`${dir}/one`, "report.svg"),
        "report.svg",
      );
      const rows = md1.split("\n").filter((l) => /^\| \d 1x1/.test(l));
      assertJsonEqual(rows.map((r) => r.split(" | ")[0]), [
        "| 2 1x1 convs (chapter)",
        "| 1 1x1 conv",
        "| 0 1x1 convs",
      ], "rows");

      const search = await runTask("experiment", [
        "hyperparameters",
        ...args,
        "--lr",
        "0.02,0.1",
        "--valid",
        "4",
        "--out",
        `${dir}/search`,
      ]);
      ok(search, "hyperparameters");
      const table = search.stdout.split("\n").filter((l) => l.startsWith("| lr"));
      assertJsonEqual(table.length, 2, "two configurations");
      if (!table[1].includes("(not looked at)") || table[0].includes("(not looked at)")) {
        throw new Error(`test accuracy must show for the chosen configuration only:\n${table.join("\n")}`);
      }
    });
  },
  // With the gpu kernels this also checks that `--report`, which opens no adapter, counts the trials' memory
  // for the kernels and limits they ran with (it once counted the software family's).
);

taskTest(
  "experiment head: a claimed trial is left alone, a finished one skipped, Ctrl-C resumes exactly",
  async () => {
    await withDirs(async (dir, data) => {
      // 4 steps an epoch: Ctrl-C after epoch 1 lands well inside epoch 2.
      const args = [
        "head",
        ...TINY,
        "--data-dir",
        data,
        "--epochs",
        "2",
        "--limit-train",
        "16",
        "--limit-test",
        "4",
        "--seeds",
        "1",
      ];
      // Uninterrupted, with the gradual trial claimed by a live process on this machine (this test).
      const root = `${dir}/plain/head`;
      await Deno.mkdir(`${root}/head-gradual-seed0`, { recursive: true });
      // The child cannot read /proc under the tasks' permissions: a claim of unknown boot is live while fresh.
      const boot = null;
      await Deno.writeTextFile(
        `${root}/head-gradual-seed0/claim`,
        JSON.stringify({ token: "t", pid: Deno.pid, boot }),
      );
      const claimed = await runTask("experiment", [...args, "--out", `${dir}/plain`]);
      ok(claimed, "run with a claimed trial");
      if (!claimed.stderr.includes("head-gradual-seed0: claimed by another live process, skipped")) {
        throw new Error(claimed.stderr);
      }
      await Deno.remove(`${root}/head-gradual-seed0/claim`);
      const rest = await runTask("experiment", [...args, "--out", `${dir}/plain`]);
      ok(rest, "the rest");
      if (!rest.stderr.includes("head-direct-seed0: already finished, skipped")) throw new Error(rest.stderr);

      // Interrupted after the direct trial's first epoch, then resumed.
      const task = startTask("experiment", [...args, "--out", `${dir}/cut`]);
      await task.waitForStderr("head-direct-seed0: epoch 1/2 loss");
      task.kill("SIGINT");
      const stopped = await task.finish();
      assertJsonEqual(stopped.code, 130, `exit code after Ctrl-C:\n${stopped.stderr}`);
      const resumed = await runTask("experiment", [...args, "--out", `${dir}/cut`]);
      ok(resumed, "resumed");
      if (!resumed.stderr.includes("head-direct-seed0: resuming after epoch 1")) {
        throw new Error(resumed.stderr);
      }
      for (const trial of ["head-direct-seed0", "head-gradual-seed0"]) {
        const figures = async (out: string) => {
          const r = JSON.parse(await Deno.readTextFile(`${out}/head/${trial}/result.json`));
          return {
            history: r.history.map((
              h: Record<string, number>,
            ) => [h.epoch, h.loss, h.trainAcc, h.testAcc, h.step]),
            curve: r.curve,
          };
        };
        assertJsonEqual(
          await figures(`${dir}/cut`),
          await figures(`${dir}/plain`),
          `${trial} after resuming`,
        );
        const { headFeatures } = JSON.parse(await Deno.readTextFile(`${dir}/cut/head/${trial}/result.json`));
        assertJsonEqual([headFeatures.images, headFeatures.channels], [4, 10], `${trial}: features measured`);
      }
    });
  },
);

taskTest("experiment: bad input ends in one line naming it", async () => {
  const cases: [string[], string][] = [
    [["bogus"], 'unknown experiment "bogus"; the experiments are hyperparameters, one-by-one, head'],
    [[], "name an experiment: hyperparameters, one-by-one, head (or pass --list)"],
    [["head", "--shard", "3/2"], "--shard: a shard is i/n with 0 <= i < n, got 3/2"],
    [["head", "--lr", "0.1,0.2"], "--lr takes one value for head (lists are for hyperparameters)"],
    [["hyperparameters", "--lr", "0.1,abc"], "--lr must be a number in (0, 100], got abc"],
  ];
  for (const [args, message] of cases) assertTaskError(await runTask("experiment", args), 2, message);
  const dir = await Deno.makeTempDir({ prefix: "nin_experiment_" });
  try {
    assertTaskError(
      await runTask("experiment", ["head", "--report", "--scale", "quick", "--out", dir]),
      1,
      `nothing to report: ${dir}/head holds no finished trial of head`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
