/**
 * Dawn (Chrome's WebGPU) from `npm:webgpu`, as a second engine next to Deno's built-in wgpu.
 *
 * Backend choice: `NIN_DAWN_BACKEND` (`vulkan`, `metal`, `d3d12`, `d3d11`, `opengl`, `opengles`) forces
 * one. Otherwise Dawn's native backend for the platform is tried first (Vulkan on Linux, Metal on macOS,
 * D3D12 on Windows) and, on Linux only, OpenGL through EGL's surfaceless platform in WebGPU
 * "compatibility" mode is the fallback, which is what a machine without a Vulkan driver (a CI box,
 * llvmpipe) needs. Dawn reads `EGL_PLATFORM` when it opens its OpenGL backend, so setting it here,
 * before the first adapter request, is early enough.
 *
 * Permissions: `--allow-ffi` (Dawn is a native Node-API library) and `--allow-env` (to read
 * `NIN_DAWN_BACKEND` and set `EGL_PLATFORM`); `--allow-env=EGL_PLATFORM,NIN_DAWN_BACKEND` is enough.
 *
 * @module
 */
import { NinError } from "../errors.ts";
import { canUseEnv, readEnv } from "./env.ts";
import { wgslLanguageFeatures } from "../gpu/device.ts";

/** What {@link requestDawnAdapter} hands to `requestGpu`. */
export interface DawnAdapter {
  /** The adapter Dawn picked. */
  adapter: GPUAdapter;
  /** The graphics API Dawn runs it on, as the device line names it: `Vulkan`, `OpenGL`, `Metal`, `D3D12` ... */
  backend: string;
  /** The WGSL language features of the Dawn instance (`navigator.gpu.wgslLanguageFeatures` in a browser). */
  languageFeatures?: ReadonlySet<string>;
  /** Drops the Dawn instance; call it after destroying the device. */
  release: () => void;
}

/** Backends Dawn's Node binding accepts for `backend=`, with the names the device line gives them. */
const BACKEND_NAMES: Record<string, string> = {
  vulkan: "Vulkan",
  metal: "Metal",
  d3d12: "D3D12",
  d3d11: "D3D11",
  opengl: "OpenGL",
  opengles: "OpenGL ES",
};
const BACKENDS = Object.keys(BACKEND_NAMES);

/** Backends that only offer WebGPU's "compatibility" feature level. */
const COMPATIBILITY_BACKENDS = new Set(["opengl", "opengles", "d3d11"]);

/** The native backend Dawn picks when given none. */
const NATIVE_BACKEND: Record<string, string> = { linux: "vulkan", darwin: "metal", windows: "d3d12" };

interface DawnModule {
  create(flags: string[]): GPU;
  globals: Record<string, unknown>;
}

/**
 * Loads Dawn and requests an adapter, trying the platform's native backend before the OpenGL fallback
 * (see the module doc). Throws a one-line {@link NinError} saying what to do when Dawn cannot start.
 *
 * @example
 * ```ts
 * import { requestDawnAdapter } from "./dawn.ts";
 * const dawn = await requestDawnAdapter("high-performance");
 * console.log(dawn.backend, dawn.adapter.info.device); // e.g. "OpenGL", "llvmpipe-llvm-15-0-6-256-bits-"
 * dawn.release();
 * ```
 */
export async function requestDawnAdapter(powerPreference: GPUPowerPreference): Promise<DawnAdapter> {
  const forced = readEnv("NIN_DAWN_BACKEND")?.trim().toLowerCase() || undefined;
  if (forced !== undefined && !BACKENDS.includes(forced)) {
    throw new NinError(`NIN_DAWN_BACKEND must be one of ${BACKENDS.join(", ")}, got "${forced}"`, 2);
  }
  const linux = Deno.build.os === "linux";
  const envWritable = canUseEnv("EGL_PLATFORM");
  // Without a display, Mesa's EGL must be told to use no window system at all.
  if (linux && envWritable && !Deno.env.get("EGL_PLATFORM")) Deno.env.set("EGL_PLATFORM", "surfaceless");
  const dawn = await loadDawn();

  const attempts: string[] = [];
  if (forced !== undefined) attempts.push(forced);
  else {
    const native = NATIVE_BACKEND[Deno.build.os];
    if (native && (native !== "vulkan" || hasVulkanLoader())) attempts.push(native);
    if (linux) attempts.push("opengl");
  }
  for (const backend of attempts) {
    let instance: GPU | null = dawn.create([`backend=${backend}`]);
    const options = {
      powerPreference,
      ...(COMPATIBILITY_BACKENDS.has(backend) ? { featureLevel: "compatibility" } : {}),
    } as GPURequestAdapterOptions;
    const adapter = await withoutNativeWarnings(() => instance!.requestAdapter(options).catch(() => null));
    if (adapter) {
      return {
        adapter,
        backend: BACKEND_NAMES[backend],
        languageFeatures: wgslLanguageFeatures(instance),
        release: () => {
          instance = null;
        },
      };
    }
    instance = null;
  }
  const hint = linux && !envWritable
    ? "run with --allow-env so EGL_PLATFORM=surfaceless can be set (or export it)"
    : forced !== undefined
    ? "unset NIN_DAWN_BACKEND to let Dawn choose"
    : "check the GPU driver";
  const tried = attempts.join(", ") || "none";
  throw new NinError(`Dawn found no WebGPU adapter (tried backend ${tried}); ${hint}, or use --gpu deno`);
}

/** Imports `npm:webgpu` and exposes its WebGPU constants where this runtime has none. */
async function loadDawn(): Promise<DawnModule> {
  let dawn: DawnModule;
  try {
    // A full specifier, not the import map's "webgpu": a project that imports this toolkit has no such entry.
    // deno-lint-ignore no-import-prefix
    dawn = await import("npm:webgpu@^0.6.2") as unknown as DawnModule;
  } catch (e) {
    const message = (e as Error).message.split("\n")[0];
    if (e instanceof Deno.errors.NotCapable || /--allow-ffi/.test(message)) {
      throw new NinError(
        "the Dawn engine loads a native library (npm:webgpu) and needs --allow-ffi; add --allow-ffi, or use --gpu deno",
      );
    }
    throw new NinError(
      `the Dawn engine could not load npm:webgpu (${message}); run \`deno install\` in the project, or use --gpu deno`,
    );
  }
  for (const [name, value] of Object.entries(dawn.globals)) {
    if (!(name in globalThis)) (globalThis as Record<string, unknown>)[name] = value;
  }
  return dawn;
}

/**
 * Runs `fn` with the process's stderr (fd 2) pointed at /dev/null, on Linux. Dawn's OpenGL backend prints two
 * warnings from native code while it builds an adapter ("maxDynamicUniformBuffersPerPipelineLayout
 * artificially reduced from 90 to 16 ...", the same for storage buffers): it caps limits for dynamic
 * offsets, which this toolkit never uses, so they are harmless. Anything else is reported by the caller.
 * Without libc (other platforms, or no --allow-ffi) `fn` simply runs.
 */
async function withoutNativeWarnings<T>(fn: () => Promise<T>): Promise<T> {
  if (Deno.build.os !== "linux") return await fn();
  let libc;
  try {
    libc = Deno.dlopen("libc.so.6", {
      dup: { parameters: ["i32"], result: "i32" },
      dup2: { parameters: ["i32", "i32"], result: "i32" },
      open: { parameters: ["buffer", "i32"], result: "i32" },
      close: { parameters: ["i32"], result: "i32" },
    });
  } catch {
    return await fn();
  }
  const { dup, dup2, open, close } = libc.symbols;
  const saved = dup(2);
  const devNull = open(new TextEncoder().encode("/dev/null\0"), 1 /* O_WRONLY */);
  const muted = saved >= 0 && devNull >= 0 && dup2(devNull, 2) >= 0;
  try {
    return await fn();
  } finally {
    if (muted) dup2(saved, 2);
    if (saved >= 0) close(saved);
    if (devNull >= 0) close(devNull);
    libc.close();
  }
}

/** Whether Vulkan's loader library is present; without it Dawn's Vulkan backend only prints a warning. */
function hasVulkanLoader(): boolean {
  try {
    Deno.dlopen("libvulkan.so.1", {}).close();
    return true;
  } catch {
    return false;
  }
}
