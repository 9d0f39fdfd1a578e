/**
 * Writing files so that a reader (or a crash) never sees half of one: the bytes go to a temporary file in
 * the same directory, are flushed to disk, and the temporary file is renamed over the target in one step.
 *
 * @module
 */
import { NinError } from "../errors.ts";

/**
 * Writes `bytes` to `path` atomically: either the old file (or none) or the complete new file exists,
 * never a partial one. On any failure the temporary file is removed and a {@link NinError} names the path.
 *
 * @example
 * ```ts
 * import { writeFileAtomic } from "./atomic_write.ts";
 * const path = await Deno.makeTempFile();
 * await writeFileAtomic(path, new TextEncoder().encode("hello"));
 * console.log(await Deno.readTextFile(path)); // hello
 * ```
 */
export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const temp = temporaryName(path);
  try {
    // Exclusive create, so two writers never share a temporary file.
    const file = await Deno.open(temp, { write: true, createNew: true, mode: 0o644 });
    try {
      let written = 0;
      while (written < bytes.length) written += await file.write(bytes.subarray(written));
      // Flush before the rename, or a crash could leave the new name pointing at unwritten blocks.
      await file.syncData();
    } finally {
      file.close();
    }
    await Deno.rename(temp, path);
  } catch (e) {
    await Deno.remove(temp).catch(() => {});
    throw new NinError(`cannot write ${path}: ${describeFsError(e)}`);
  }
}

/**
 * Throws a {@link NinError} unless a file can be created next to `path` (its directory exists and is
 * writable), so a long job can fail before it starts instead of when it first saves.
 *
 * @example
 * ```ts
 * import { checkWritable } from "./atomic_write.ts";
 * await checkWritable(await Deno.makeTempDir() + "/model.safetensors"); // ok
 * ```
 */
export async function checkWritable(path: string): Promise<void> {
  const temp = temporaryName(path);
  try {
    // The rename at the end would fail on a directory: say so now, not after the work.
    if ((await Deno.stat(path).catch(() => null))?.isDirectory) throw new Deno.errors.IsADirectory();
    const file = await Deno.open(temp, { write: true, createNew: true });
    file.close();
  } catch (e) {
    throw new NinError(`cannot write ${path}: ${describeFsError(e)}`);
  } finally {
    await Deno.remove(temp).catch(() => {});
  }
}

/** A short explanation of a file-system error, e.g. "directory /x does not exist". */
export function describeFsError(e: unknown): string {
  if (e instanceof NinError) return e.message;
  if (e instanceof Deno.errors.NotFound) return "the file or its directory does not exist";
  if (e instanceof Deno.errors.NotADirectory) {
    return "a component of its directory is a file, not a directory";
  }
  if (e instanceof Deno.errors.IsADirectory) return "it is a directory";
  if (e instanceof Deno.errors.PermissionDenied) return "permission denied by the file system";
  if (e instanceof Deno.errors.NotCapable) {
    return "Deno has no permission for it (run with --allow-read and --allow-write)";
  }
  return e instanceof Error ? e.message.split("\n")[0] : String(e);
}

/** `dir/.name.tmp-<pid>-<random>`: hidden, in the target's directory so the rename stays on one volume. */
function temporaryName(path: string): string {
  const { dir, base } = splitPath(path);
  const tag = `${Deno.pid}-${Math.floor(Math.random() * 2 ** 32).toString(16)}`;
  return `${dir}.${base}.tmp-${tag}`;
}

function splitPath(path: string): { dir: string; base: string } {
  const slash = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  return { dir: slash >= 0 ? path.slice(0, slash + 1) : "", base: path.slice(slash + 1) };
}

/**
 * Removes the temporary files that atomic writes of `path` left behind (a process killed in the middle of a
 * write) and returns their names. Only safe while no other process writes `path`: call it holding the
 * path's lock.
 *
 * @example
 * ```ts
 * import { removeLeftovers } from "./atomic_write.ts";
 * console.log(await removeLeftovers(await Deno.makeTempDir() + "/model.safetensors")); // []
 * ```
 */
export async function removeLeftovers(path: string): Promise<string[]> {
  const { dir, base } = splitPath(path);
  const prefix = `.${base}.tmp-`;
  const removed: string[] = [];
  for await (const entry of Deno.readDir(dir || ".")) {
    if (!entry.isFile || !entry.name.startsWith(prefix)) continue;
    await Deno.remove(`${dir}${entry.name}`);
    removed.push(`${dir}${entry.name}`);
  }
  return removed;
}
