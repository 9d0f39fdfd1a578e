// Subprocess tests of the tasks' flag handling: a bad flag is one line naming the flag and what it takes,
// exit code 2, before any data or GPU work; `--resize` too small names the layer and the smallest size.
import { assertJsonEqual as assertEquals } from "./util.ts";
import { assertTaskError, runTask, type TaskResult, taskTest, withoutDriverLines } from "./subprocess.ts";

/** Every case fails while parsing, so the task prints nothing but the error line. */
const BAD_FLAGS: [string[], string[]][] = [
  [["--bogus"], [
    "unknown flag --bogus",
    "the flags are --lr, --batch-size, --resize",
    "--gpu, --kernels and --help",
  ]],
  [["--epohcs", "2"], ["unknown flag --epohcs; did you mean --epochs?"]],
  [["--limit"], ["unknown flag --limit; did you mean --limit-train?"]],
  [["--learning-rate", "0.1"], ["unknown flag --learning-rate; did you mean --lr?"]],
  [["--batch", "32"], ["unknown flag --batch; did you mean --batch-size?"]],
  [["--epoch=3"], ["unknown flag --epoch; did you mean --epochs?"]],
  [["--batch_size", "32"], ["unknown flag --batch_size; did you mean --batch-size?"]],
  [["--lr"], ["--lr needs a value: a number in (0, 100]"]],
  [["--lr", "--epochs", "2"], ["--lr needs a value: a number in (0, 100]"]],
  [["--lr", "-1"], ["--lr must be a number in (0, 100], got -1"]],
  [["--lr=-1"], ["--lr must be a number in (0, 100], got -1"]],
  [["--lr", "nan"], ["--lr must be a number in (0, 100], got nan"]],
  [["--lr", "0.1x"], ["--lr must be a number in (0, 100], got 0.1x"]],
  [["--lr", "1e400"], ["--lr must be a number in (0, 100], got 1e400"]],
  [["--batch-size", "0"], ["--batch-size must be an integer in [1, 65536], got 0"]],
  [["--epochs", "1.5"], ["--epochs must be an integer in [1, 10000], got 1.5"]],
  [["--dropout", "1"], ["--dropout must be a number in [0, 1), got 1"]],
  [["--seed", "-3"], ["--seed must be an integer in [0, 4294967295], got -3"]],
  [["--gpu", "metal"], ['--gpu must be one of deno, dawn, got "metal"']],
  [["--kernels", "cuda"], ['--kernels must be one of auto, software, gpu, got "cuda"']],
  [["--init", "he"], ['--init must be one of xavier, kaiming, got "he"']],
  [["--offline=yes"], ["--offline takes no value"]],
  [["--checkpoint-steps", "0"], ["--checkpoint-steps must be an integer >= 1, got 0"]],
  [["--checkpoint-minutes", "0"], ["--checkpoint-minutes must be a number in (0, 1440], got 0"]],
  [["--plot-size", "10x10"], [
    "--plot-size must be WIDTHxHEIGHT, each 240 to 4000 (e.g. 640x400), got 10x10",
  ]],
  [["--plot-size", "big"], ["--plot-size must be WIDTHxHEIGHT"]],
  [["extra"], ['unexpected argument "extra"']],
];

taskTest("train: a bad flag is one line naming the flag and its allowed range, exit code 2", async () => {
  for (const [args, parts] of BAD_FLAGS) {
    const result = await runTask("train", args);
    assertTaskError(result, 2, ...parts);
    assertEquals(result.stdout, "", `stdout of train ${args.join(" ")}`);
    assertEquals(result.stderr.trim().split("\n").length, 1, `stderr lines of train ${args.join(" ")}`);
  }
});

taskTest("shapes and eval: bad flags are usage errors too; eval requires --checkpoint", async () => {
  assertTaskError(
    await runTask("shapes", ["--resize", "0"]),
    2,
    "--resize must be an integer in [1, 4096], got 0",
  );
  assertTaskError(
    await runTask("shapes", ["--batch-size"]),
    2,
    "--batch-size needs a value: an integer in [1, 65536]",
  );
  assertTaskError(
    await runTask("eval", ["--limit-test", "-5"]),
    2,
    "--limit-test must be an integer >= 1, got -5",
  );
  assertTaskError(await runTask("eval", []), 2, "--checkpoint PATH is required");
});

taskTest("--help and -h print the flags with their defaults and exit 0", async () => {
  for (const flag of ["--help", "-h"]) {
    const result = await runTask("train", [flag]);
    assertEquals(result.code, 0, `exit code of ${flag}`);
    for (const part of ["Usage: deno task train", "--lr <float>", "--resume <string>", "(default 480x320)"]) {
      if (!result.stdout.includes(part)) throw new Error(`${flag} lacks "${part}":\n${result.stdout}`);
    }
    // The values in effect on this adapter: the software preset's next to the chapter's, or the chapter's.
    const software = /is a software adapter, so flags not given take the software preset's values\.$/m;
    const lr = software.test(result.stdout) ? "(default here 0.05; the chapter's 0.1)" : "(default 0.1)";
    if (!result.stdout.split("\n").some((l) => l.startsWith("  --lr <float>") && l.endsWith(lr))) {
      throw new Error(`${flag}: the --lr line does not end in "${lr}":\n${result.stdout}`);
    }
  }
});

taskTest("a flag has the same range in every task (one registry)", async () => {
  for (const task of ["train", "shapes", "bench", "resources"]) {
    assertTaskError(
      await runTask(task, ["--resize", "0"]),
      2,
      "--resize must be an integer in [1, 4096], got 0",
    );
  }
  assertTaskError(
    await runTask("bench", ["--roofline-size", "256"]),
    2,
    "--roofline-size must be an integer in [512, 8192], got 256",
  );
});

// 66 is one short of what NiN's three stride-2 poolings need; the error comes from the analytic shape walk,
// so no layer runs: shapes prints no layer, train loads no data.
taskTest(
  "--resize too small names the layer and the smallest size that works, before any GPU work",
  async () => {
    const expected = [
      "--resize 66: input [1, 1, 66, 66] is too small for layer 5 (MaxPool2d)",
      "MaxPool2d(3, stride=2): input [1, 384, 2, 2] gives an empty output",
      "the smallest input that works is 67x67",
    ];
    const shapes = await runTask("shapes", ["--resize", "66"]);
    assertTaskError(shapes, 2, ...expected);
    assertEquals(shapes.stdout, "", "shapes printed no layer (no forward pass ran)");

    const small = await runTask("shapes", ["--resize", "10", "--leaf"]);
    assertTaskError(
      small,
      2,
      "--resize 10: input [1, 1, 10, 10] is too small for layer 0.0 (Conv2d)",
      "67x67",
    );

    const dir = await Deno.makeTempDir({ prefix: "nin_cli_" });
    try {
      // No --data-dir and --offline: were the data loaded first, this would read the npm copy (slow).
      const train = await runTask("train", [
        "--resize",
        "66",
        "--offline",
        "--checkpoint",
        `${dir}/c.safetensors`,
      ]);
      assertTaskError(train, 2, ...expected);
      assertEquals([train.stdout, train.stderr.includes("data:")], ["", false], "train loaded no data");
      assertEquals([...Deno.readDirSync(dir)], [], "no checkpoint written");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

// What lavapipe printed here, verbatim, around a task's own error line (XDG_RUNTIME_DIR unset): the tests
// must see the task's one line, and a line of the task's own that merely starts the same way must stay.
Deno.test("a Vulkan driver's stray stderr lines are not the task's output", () => {
  const driver = "error: XDG_RUNTIME_DIR is invalid or not set in the environment.";
  const own = "error: --lr must be a number in (0, 100], got 0";
  const raw = `${driver}\n${driver}\n${own}\n`;
  const result: TaskResult = { code: 2, stdout: "", stderr: withoutDriverLines(raw) };
  assertEquals(assertTaskError(result, 2, "--lr"), own, "the task's error line");
  assertEquals(result.stderr.trim().split("\n").length, 1, "one line left");
  const lookalike = `${driver} (said the task)`;
  assertEquals(withoutDriverLines(`${lookalike}\n`), `${lookalike}\n`, "only the driver's exact line goes");
});
