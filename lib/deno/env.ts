/**
 * The environment, read without prompting: a variable this process may not read counts as unset.
 *
 * @module
 */
import { join } from "node:path";
import { NinError } from "../errors.ts";

/** Whether this process may read and write an environment variable (no prompt). */
export function canUseEnv(variable: string): boolean {
  return Deno.permissions.querySync({ name: "env", variable }).state === "granted";
}

/** An environment variable, or undefined when it is unset, empty or not readable under the granted permissions. */
export function readEnv(variable: string): string | undefined {
  return canUseEnv(variable) ? Deno.env.get(variable) || undefined : undefined;
}

/**
 * The toolkit's cache root (data, tuning): `$NIN_CACHE_DIR`, else `$XDG_CACHE_HOME/nin-webgpu`, else
 * `~/.cache/nin-webgpu` (variables Deno may not read are skipped). With none of them usable, a
 * {@link NinError} says which permission is missing, or that all are unset.
 *
 * @example
 * ```ts
 * import { defaultCacheDir } from "./env.ts";
 * console.log(defaultCacheDir()); // e.g. /home/me/.cache/nin-webgpu
 * ```
 */
export function defaultCacheDir(): string {
  const explicit = readEnv("NIN_CACHE_DIR");
  if (explicit) return explicit;
  const xdg = readEnv("XDG_CACHE_HOME");
  if (xdg) return join(xdg, "nin-webgpu");
  const home = readEnv("HOME") ?? readEnv("USERPROFILE");
  if (home) return join(home, ".cache", "nin-webgpu");
  const looked = ["NIN_CACHE_DIR", "XDG_CACHE_HOME", "HOME"];
  const denied = looked.filter((v) => !canUseEnv(v));
  if (denied.length > 0) {
    throw new NinError(
      `no cache directory: Deno may not read ${denied.join(", ")}; run with --allow-env=${
        looked.join(",")
      } ` +
        "(or pass a cache directory explicitly)",
    );
  }
  throw new NinError(
    "no cache directory: NIN_CACHE_DIR, XDG_CACHE_HOME and HOME are all unset; set NIN_CACHE_DIR " +
      "(or pass a cache directory explicitly)",
  );
}
