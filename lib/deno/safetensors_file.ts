/**
 * Safetensors files on disk: reading and atomic writing around the core's parser and serializer
 * (lib/safetensors.ts).
 *
 * @module
 */
import { NinError } from "../errors.ts";
import {
  type HostTensor,
  parseSafetensors,
  type SafetensorsFile,
  serializeSafetensors,
} from "../safetensors.ts";
import { Tensor } from "../tensor.ts";
import { writeFileAtomic } from "./atomic_write.ts";

/**
 * Reads a safetensors file and returns its tensors by name (what `net.loadStateDict` accepts). Rejects a
 * bad file whole with a {@link NinError} naming the file and listing the problems.
 *
 * @example
 * ```ts
 * import { loadSafetensors, saveSafetensors } from "@nin/webgpu";
 * const path = (await Deno.makeTempDir()) + "/w.safetensors";
 * await saveSafetensors(path, new Map([["b", { dtype: "F32", shape: [1], data: new Float32Array([3]) }]]));
 * console.log((await loadSafetensors(path)).get("b")?.shape); // [1]
 * ```
 */
export async function loadSafetensors(path: string): Promise<Map<string, HostTensor>> {
  return (await readSafetensors(path)).tensors;
}

/**
 * Reads a safetensors file: tensors and `__metadata__`.
 *
 * @example
 * ```ts
 * import { readSafetensors, saveSafetensors } from "@nin/webgpu";
 * const path = (await Deno.makeTempDir()) + "/w.safetensors";
 * await saveSafetensors(path, new Map(), { epoch: "3" });
 * console.log((await readSafetensors(path)).metadata); // { epoch: "3" }
 * ```
 */
export async function readSafetensors(path: string): Promise<SafetensorsFile> {
  return parseSafetensors(await readFileBytes(path), path);
}

/**
 * A file's bytes; a {@link NinError} with a short reason (no such file, a directory, no permission) when
 * it cannot be read.
 *
 * @example
 * ```ts
 * import { readFileBytes } from "./safetensors_file.ts";
 * console.log((await readFileBytes("deno.json")).length > 0); // true
 * ```
 */
export async function readFileBytes(path: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    throw new NinError(`cannot read ${path}: ${readErrorText(e)}`);
  }
}

/**
 * Writes tensors (GPU {@link Tensor}s are downloaded, as F32) and metadata to a safetensors file that
 * PyTorch's `safetensors.torch.load_file` reads. The write is atomic: a temporary file in the same directory
 * is renamed over `path`, so an existing file is never left half-overwritten.
 *
 * @example
 * ```ts
 * import { requestGpu, saveSafetensors, Tensor } from "@nin/webgpu";
 * const gpu = await requestGpu();
 * const path = (await Deno.makeTempDir()) + "/w.safetensors";
 * await saveSafetensors(path, new Map([["w", Tensor.fromArray(gpu, [1, 2], [2])]]), { note: "demo" });
 * gpu.destroy();
 * ```
 */
export async function saveSafetensors(
  path: string,
  dict: ReadonlyMap<string, Tensor | HostTensor>,
  metadata?: Record<string, string>,
): Promise<void> {
  const host = new Map<string, HostTensor>();
  for (const [name, value] of dict) {
    host.set(
      name,
      value instanceof Tensor
        ? { dtype: "F32", shape: [...value.shape], data: await value.toArray() }
        : value,
    );
  }
  let bytes: Uint8Array;
  try {
    bytes = serializeSafetensors(host, metadata);
  } catch (e) {
    throw new NinError(`${path}: ${(e as Error).message}`);
  }
  await writeFileAtomic(path, bytes);
}

/** A short reason a file could not be read. */
function readErrorText(e: unknown): string {
  if (e instanceof Deno.errors.NotFound) return "no such file";
  if (e instanceof Deno.errors.IsADirectory) return "it is a directory";
  if (e instanceof Deno.errors.NotCapable) {
    return "Deno has no read permission for it (run with --allow-read)";
  }
  return e instanceof Error ? e.message.split("\n")[0] : String(e);
}
