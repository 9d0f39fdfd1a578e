/**
 * The tuning cache on disk: one JSON file per adapter and kernel family under the toolkit's cache directory, read into and
 * written from the core's tuning state (lib/tuning.ts).
 *
 * @module
 */
import type { Gpu } from "../gpu/device.ts";
import type { ConvGeometry } from "../layers/conv2d_passes.ts";
import { applyTuning, measureTuning, type TuneOptions, type Tuning, tuningText } from "../tuning.ts";
import { writeFileAtomic } from "./atomic_write.ts";
import { defaultCacheDir } from "./env.ts";

/**
 * The cache file for this device's adapter and kernel family.
 *
 * @example
 * ```ts
 * import { requestGpu } from "./gpu.ts";
 * import { tuningPath } from "./tuning_cache.ts";
 * const gpu = await requestGpu();
 * console.log(tuningPath(gpu, "/tmp/cache"));
 * gpu.destroy();
 * ```
 */
export function tuningPath(gpu: Gpu, cacheDir = defaultCacheDir()): string {
  const name = gpu.adapterKey.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "").slice(0, 120);
  return `${cacheDir}/tuning/${name || "adapter"}.${gpu.kernels}.json`;
}

/**
 * Reads this adapter's cached choices, if a file exists, and puts them in force on `gpu`. A damaged file
 * (not JSON) is removed and `onNote` says so: the defaults apply until `deno task bench --tune` rebuilds it.
 *
 * @example
 * ```ts
 * import { requestGpu } from "./gpu.ts";
 * import { loadTuning } from "./tuning_cache.ts";
 * const gpu = await requestGpu();
 * console.log(await loadTuning(gpu, await Deno.makeTempDir())); // undefined
 * gpu.destroy();
 * ```
 */
export async function loadTuning(
  gpu: Gpu,
  cacheDir?: string,
  onNote?: (message: string) => void,
): Promise<Tuning | undefined> {
  const path = tuningPath(gpu, cacheDir);
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch {
    return undefined;
  }
  try {
    JSON.parse(text);
  } catch (e) {
    await Deno.remove(path).catch(() => {});
    onNote?.(
      `note: removed the damaged tuning cache ${path} (${(e as Error).message.split("\n")[0]}); the ` +
        "default GEMM choices apply until `deno task bench --tune` measures them again",
    );
    return undefined;
  }
  return applyTuning(gpu, text, path);
}

/**
 * Measures the candidates as the core's `measureTuning` does (`options.cacheDir`: the cache root, by
 * default the toolkit's), puts the fastest in force on `gpu` and writes them to the cache. `run(g)` must record one backward of a layer of geometry `g`.
 *
 * @example
 * ```ts
 * import { requestGpu } from "./gpu.ts";
 * import { tuneConvolutions } from "./tuning_cache.ts";
 * const gpu = await requestGpu();
 * const tuning = await tuneConvolutions(gpu, [], async () => {}, { cacheDir: await Deno.makeTempDir() });
 * console.log(tuning.path);
 * gpu.destroy();
 * ```
 */
export async function tuneConvolutions(
  gpu: Gpu,
  geometries: readonly ConvGeometry[],
  run: (g: ConvGeometry) => Promise<void>,
  options: TuneOptions & { cacheDir?: string } = {},
): Promise<Tuning> {
  const path = tuningPath(gpu, options.cacheDir);
  const tuning = await measureTuning(gpu, geometries, run, path, options);
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  await writeFileAtomic(path, new TextEncoder().encode(tuningText(gpu, tuning)));
  return tuning;
}
