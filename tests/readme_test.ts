// The README's commands, run in order as a new user would (shrunk so the suite stays fast): each succeeds
// (or fails the way the README says), and afterwards nothing new shows in `git status` and
// `deno fmt --check` still passes, because every file they write goes under the ignored runs/.
import { assertJsonEqual as assertEquals } from "./util.ts";
import { ROOT, taskTest } from "./subprocess.ts";

const README = await Deno.readTextFile(`${ROOT}README.md`);

/** Appended to a README command of each task so it runs in seconds (later flags win). */
const SHRINK: Record<string, string[]> = {
  train: [
    "--limit-train",
    "32",
    "--limit-test",
    "16",
    "--epochs",
    "1",
    "--resize",
    "67",
    "--batch-size",
    "16",
  ],
  eval: ["--limit-test", "16"],
  shapes: [],
  resources: ["--measure-batch-size", "1"],
  bench: ["--resize", "67", "--batch-size", "2", "--steps", "1", "--warmup", "1", "--roofline-size", "512"],
};

/** Commands the README shows failing on purpose, with their exit code. */
const EXPECTED_FAILURES: Record<string, number> = { "deno task shapes --resize 64": 2 };

/** Every `deno task ...` command in the README, in order: code-block lines and inline code spans. */
export function readmeCommands(text: string): string[] {
  const commands: string[] = [];
  for (const line of text.split("\n")) {
    const block = /^(?:\$ )?(deno task [a-z]+[^#`]*?)\s*(?:#.*)?$/.exec(line);
    if (block) commands.push(block[1].trim());
    for (const inline of line.matchAll(/`(deno task [a-z]+[^`]*)`/g)) commands.push(inline[1].trim());
  }
  return commands;
}

/** Whether a command can run as written: not the suite itself, and no placeholder such as PATH. */
function runnable(command: string): boolean {
  const [, , task] = command.split(" ");
  return task in SHRINK && !/\b[A-Z]{4,}\b|<|\.\.\./.test(command);
}

async function git(...args: string[]): Promise<string> {
  const out = await new Deno.Command("git", { args, cwd: ROOT, stdout: "piped", stderr: "piped" }).output();
  return new TextDecoder().decode(out.stdout);
}

Deno.test("readme: the command extractor finds code-block and inline commands", () => {
  assertEquals(
    readmeCommands(
      "```\n$ deno task shapes --leaf\ndeno task train   # note\n```\nrun `deno task eval --checkpoint PATH`",
    ),
    ["deno task shapes --leaf", "deno task train", "deno task eval --checkpoint PATH"],
    "commands",
  );
});

taskTest("readme: every runnable command works as written; git status and deno fmt stay clean", async () => {
  const commands = [...new Set(readmeCommands(README))].filter(runnable);
  if (commands.length < 8) throw new Error(`found only ${commands.length} commands:\n${commands.join("\n")}`);
  const before = await git("status", "--porcelain");
  for (const command of commands) {
    const [, , task, ...args] = command.split(/\s+/);
    const extra = [...(task === "train" || task === "eval" ? ["--offline"] : []), ...SHRINK[task]];
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["task", "--quiet", task, ...args, ...extra],
      cwd: ROOT,
      env: { NIN_DEBUG: "", NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const expected = EXPECTED_FAILURES[command] ?? 0;
    if (out.code !== expected) {
      throw new Error(
        `${command} exited ${out.code}, expected ${expected}:\n${new TextDecoder().decode(out.stderr)}`,
      );
    }
  }
  assertEquals(await git("status", "--porcelain"), before, "git status after the README's commands");
  const fmt = await new Deno.Command(Deno.execPath(), {
    args: ["fmt", "--check"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(fmt.code, 0, `deno fmt --check: ${new TextDecoder().decode(fmt.stderr)}`);
});
