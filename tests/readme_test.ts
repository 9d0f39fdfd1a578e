// The README's commands, run in order as a new user would (shrunk so the suite stays fast) in a fresh copy
// of the repository's tracked files with an empty cache, so the user's runs/ and cache are never touched:
// each succeeds (or fails the way the README says), and afterwards nothing new shows in the copy's
// `git status` and `deno fmt --check` still passes, because every file they write goes under the ignored
// runs/.
import { assertJsonEqual as assertEquals } from "./util.ts";
import { ROOT, SCRATCH, taskTest } from "./subprocess.ts";

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

/**
 * Every `deno task ...` command in the README, in order: code-block lines and inline code spans with
 * arguments (an inline span with none, e.g. "`deno task eval` loads it", names the task; it is no command).
 */
export function readmeCommands(text: string): string[] {
  const commands: string[] = [];
  for (const line of text.split("\n")) {
    const block = /^(?:\$ )?(deno task [a-z]+[^#`]*?)\s*(?:#.*)?$/.exec(line);
    if (block) commands.push(block[1].trim());
    for (const inline of line.matchAll(/`(deno task [a-z]+ [^`]+)`/g)) commands.push(inline[1].trim());
  }
  return commands;
}

/** Whether a command can run as written: not the suite itself, and no placeholder such as PATH. */
function runnable(command: string): boolean {
  const [, , task] = command.split(" ");
  return task in SHRINK && !/\b[A-Z]{4,}\b|<|\.\.\./.test(command);
}

async function git(cwd: string, ...args: string[]): Promise<string> {
  const out = await new Deno.Command("git", { args, cwd, stdout: "piped", stderr: "piped" }).output();
  if (out.code !== 0) throw new Error(`git ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  return new TextDecoder().decode(out.stdout);
}

/**
 * A copy of the repository's tracked files (as in the working tree) in a new git repository with one
 * commit, sharing the clone's node_modules; returns its path.
 */
async function copyRepository(): Promise<string> {
  const copy = await Deno.makeTempDir({ dir: SCRATCH, prefix: "clone_" });
  for (const file of (await git(ROOT, "ls-files", "-z")).split("\0").filter(Boolean)) {
    const slash = file.lastIndexOf("/");
    if (slash > 0) await Deno.mkdir(`${copy}/${file.slice(0, slash)}`, { recursive: true });
    await Deno.copyFile(`${ROOT}${file}`, `${copy}/${file}`).catch((e) => {
      if (!(e instanceof Deno.errors.NotFound)) throw e; // deleted in the working tree, not yet committed
    });
  }
  await Deno.symlink(`${ROOT}node_modules`, `${copy}/node_modules`);
  const who = ["-c", "user.name=test", "-c", "user.email=test@localhost"];
  await git(copy, "init", "-q");
  // A link is not the directory that .gitignore's `node_modules/` names.
  await Deno.writeTextFile(`${copy}/.git/info/exclude`, "/node_modules\n");
  await git(copy, "add", "-A");
  await git(copy, ...who, "commit", "-q", "-m", "copy");
  return copy;
}

Deno.test("readme: the command extractor finds code-block and inline commands", () => {
  assertEquals(
    readmeCommands(
      "```\n$ deno task shapes --leaf\ndeno task train   # note\n```\nrun `deno task eval --checkpoint PATH`; " +
        "`deno task eval` is a name",
    ),
    ["deno task shapes --leaf", "deno task train", "deno task eval --checkpoint PATH"],
    "commands",
  );
});

taskTest("readme: every runnable command works as written; git status and deno fmt stay clean", async () => {
  const commands = [...new Set(readmeCommands(README))].filter(runnable);
  if (commands.length < 8) throw new Error(`found only ${commands.length} commands:\n${commands.join("\n")}`);
  const copy = await copyRepository();
  for (const command of commands) {
    const [, , task, ...args] = command.split(/\s+/);
    const extra = [...(task === "train" || task === "eval" ? ["--offline"] : []), ...SHRINK[task]];
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["task", "--quiet", task, ...args, ...extra],
      cwd: copy,
      env: { NIN_DEBUG: "", NO_COLOR: "1", NIN_CACHE_DIR: `${copy}.cache` },
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
  assertEquals(await git(copy, "status", "--porcelain"), "", "git status after the README's commands");
  const fmt = await new Deno.Command(Deno.execPath(), {
    args: ["fmt", "--check"],
    cwd: copy,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(fmt.code, 0, `deno fmt --check: ${new TextDecoder().decode(fmt.stderr)}`);
});
