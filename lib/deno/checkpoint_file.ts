/**
 * Checkpoint files: the core's checkpoint bytes (lib/checkpoint.ts) written atomically and read back.
 *
 * @module
 */
import {
  type Checkpoint,
  encodeCheckpoint,
  parseCheckpoint,
  type SaveCheckpointOptions,
} from "../checkpoint.ts";
import type { Module } from "../module.ts";
import { writeFileAtomic } from "./atomic_write.ts";
import { readFileBytes } from "./safetensors_file.ts";

/**
 * Writes `net`'s parameters (under PyTorch's names) to `path` atomically (a crash leaves the previous file
 * intact); with `optimizer` and `state`, also what a trainer needs to resume. A parameter or momentum buffer
 * holding NaN or infinity is refused before anything is written, so a diverged run never replaces the last
 * good checkpoint.
 *
 * @example
 * ```ts
 * import { nin, requestGpu, saveCheckpoint, SGD } from "@nin/webgpu";
 * const gpu = await requestGpu();
 * const net = nin(gpu);
 * await saveCheckpoint(net, "/tmp/nin.safetensors"); // the model only
 * const optimizer = new SGD(net.parameters(), { lr: 0.1 });
 * await saveCheckpoint(net, "/tmp/run.safetensors", { optimizer, state: { epoch: 1, seed: 0 } });
 * gpu.destroy();
 * ```
 */
export async function saveCheckpoint(
  net: Module,
  path: string,
  options?: SaveCheckpointOptions,
): Promise<void> {
  await writeFileAtomic(path, await encodeCheckpoint(net, options, path));
}

/**
 * Reads a checkpoint written by {@link saveCheckpoint}; a plain safetensors state dict (e.g. from
 * PyTorch) loads too, with an empty state.
 *
 * @example
 * ```ts
 * import { loadCheckpoint } from "@nin/webgpu";
 * const ckpt = await loadCheckpoint("/tmp/nin.safetensors");
 * console.log(ckpt.state.epoch, ckpt.model.size);
 * ```
 */
export async function loadCheckpoint(path: string): Promise<Checkpoint> {
  return parseCheckpoint(await readFileBytes(path), path);
}
