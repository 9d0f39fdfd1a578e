/**
 * Which graphics API Deno's WebGPU runs on. Deno's `GPUAdapterInfo` does not say (wgpu knows, Deno does not
 * pass it on), but Deno builds its wgpu instance with only the backends `DENO_WEBGPU_BACKEND` names (a comma
 * list, all backends when unset), so when that list names exactly one, every adapter Deno returns runs on it.
 * Dawn's backend is the one `lib/deno/dawn.ts` asked Dawn for.
 *
 * @module
 */
import { readEnv } from "./env.ts";

/** wgpu's names in `DENO_WEBGPU_BACKEND` (case and spaces ignored), as the device line prints them. */
const WGPU_BACKENDS: Record<string, string> = {
  vulkan: "Vulkan",
  vk: "Vulkan",
  metal: "Metal",
  mtl: "Metal",
  dx12: "D3D12",
  d3d12: "D3D12",
  opengl: "OpenGL",
  gles: "OpenGL",
  gl: "OpenGL",
};

/**
 * The graphics API Deno's WebGPU adapters run on (`Vulkan`, `Metal`, `D3D12`, `OpenGL`) when
 * `DENO_WEBGPU_BACKEND` names exactly one, else undefined (unset, several, unknown names, or not readable
 * under the granted `--allow-env`).
 *
 * @example
 * ```ts
 * import { denoBackend } from "./backend.ts";
 * Deno.env.set("DENO_WEBGPU_BACKEND", "vulkan");
 * console.log(denoBackend()); // "Vulkan"
 * ```
 */
export function denoBackend(): string | undefined {
  const list = readEnv("DENO_WEBGPU_BACKEND");
  if (list === undefined) return undefined;
  const named = list.split(",").map((name) => name.trim().toLowerCase()).filter((name) => name !== "");
  // An unknown name might be a backend this table lacks, so it makes the answer unknown too.
  const apis = new Set(named.map((name) => WGPU_BACKENDS[name]));
  return apis.size === 1 ? [...apis][0] : undefined;
}
