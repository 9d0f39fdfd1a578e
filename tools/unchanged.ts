/**
 * Runs a command (the test suite) and fails if it changed the user's files: `runs/` (relative to the
 * working directory) or the toolkit cache (`$NIN_CACHE_DIR`, `$XDG_CACHE_HOME/nin-webgpu` or
 * `~/.cache/nin-webgpu`). Every file's size and modification time are compared before and after; a file
 * added, removed or rewritten is named.
 *
 * ```sh
 * deno run --allow-read --allow-env --allow-run tools/unchanged.ts deno test -A tests/
 * ```
 *
 * @module
 */
import { join } from "node:path";
import { defaultCacheDir } from "../lib/deno/env.ts";

/** Path (relative to the snapshot's root) to `size:mtime` of every file under a directory. */
export type Snapshot = Map<string, string>;

/**
 * Size and modification time of every file under `dir` (empty when `dir` does not exist).
 *
 * @example
 * ```ts
 * import { snapshot } from "./unchanged.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/a`, "x");
 * console.log([...(await snapshot(dir)).keys()]); // ["a"]
 * ```
 */
export async function snapshot(dir: string): Promise<Snapshot> {
  const out: Snapshot = new Map();
  const walk = async (rel: string) => {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(join(dir, rel)));
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return;
      throw e;
    }
    for (const entry of entries) {
      const path = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory) await walk(path);
      else {
        const info = await Deno.lstat(join(dir, path));
        out.set(path, `${info.size}:${info.mtime?.getTime()}`);
      }
    }
  };
  await walk("");
  return out;
}

/**
 * The files added, removed or changed between two snapshots, one description each.
 *
 * @example
 * ```ts
 * import { differences } from "./unchanged.ts";
 * console.log(differences(new Map([["a", "1:0"]]), new Map([["a", "2:5"], ["b", "1:5"]])));
 * // ["a changed", "b added"]
 * ```
 */
export function differences(before: Snapshot, after: Snapshot): string[] {
  const out: string[] = [];
  for (const [path, stamp] of after) {
    if (!before.has(path)) out.push(`${path} added`);
    else if (before.get(path) !== stamp) out.push(`${path} changed`);
  }
  for (const path of before.keys()) if (!after.has(path)) out.push(`${path} removed`);
  return out.sort();
}

if (import.meta.main) {
  const [program, ...args] = Deno.args;
  if (!program) {
    console.error("usage: tools/unchanged.ts COMMAND [ARGS...]");
    Deno.exit(2);
  }
  const guarded = ["runs", defaultCacheDir()];
  const before = await Promise.all(guarded.map(snapshot));
  const status = await new Deno.Command(program, { args, stdin: "inherit" }).spawn().status;
  const changed: string[] = [];
  for (const [i, dir] of guarded.entries()) {
    for (const d of differences(before[i], await snapshot(dir))) changed.push(join(dir, d));
  }
  if (changed.length > 0) {
    console.error(
      `error: the command changed the user's files (tests must write only under temporary directories): ` +
        changed.join(", "),
    );
    Deno.exit(1);
  }
  Deno.exit(status.code);
}
