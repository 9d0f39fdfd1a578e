// tools/unchanged.ts, the guard around the test suite: a command that writes to runs/ or the cache fails
// the run with the files named; one that writes elsewhere passes with its own exit code.
import { deepStrictEqual, match, strictEqual } from "node:assert/strict";
import { differences, snapshot } from "../tools/unchanged.ts";
import { ROOT } from "./subprocess.ts";

Deno.test("unchanged: snapshots tell added, changed and removed files apart", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/sub`);
    await Deno.writeTextFile(`${dir}/sub/a`, "1");
    await Deno.writeTextFile(`${dir}/b`, "1");
    const before = await snapshot(dir);
    deepStrictEqual([...before.keys()].sort(), ["b", "sub/a"]);
    await Deno.writeTextFile(`${dir}/sub/a`, "22");
    await Deno.remove(`${dir}/b`);
    await Deno.writeTextFile(`${dir}/c`, "1");
    deepStrictEqual(differences(before, await snapshot(dir)), ["b removed", "c added", "sub/a changed"]);
    deepStrictEqual(await snapshot(`${dir}/missing`), new Map());
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("unchanged: a command that writes to runs/ or the cache fails naming the files", async () => {
  const dir = await Deno.makeTempDir();
  const guard = (script: string) =>
    new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read",
        "--allow-env",
        "--allow-run",
        `${ROOT}tools/unchanged.ts`,
        "sh",
        "-c",
        script,
      ],
      cwd: dir,
      env: { NIN_CACHE_DIR: `${dir}/cache` },
      stdout: "piped",
      stderr: "piped",
    }).output();
  try {
    await Deno.mkdir(`${dir}/runs`);
    await Deno.writeTextFile(`${dir}/runs/nin.jsonl`, "{}\n");
    const quiet = await guard("mkdir -p elsewhere && echo x > elsewhere/f");
    strictEqual(quiet.code, 0, new TextDecoder().decode(quiet.stderr));
    const failing = await guard("exit 3");
    strictEqual(failing.code, 3, "the command's own exit code");
    const writes = await guard("echo y >> runs/nin.jsonl && mkdir -p cache/x && echo z > cache/x/t");
    strictEqual(writes.code, 1);
    match(
      new TextDecoder().decode(writes.stderr),
      new RegExp(
        `^error: the command changed the user's files .*: runs/nin.jsonl changed, ${dir}/cache/x/t added\n$`,
      ),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
