/**
 * Dawn (Chrome's WebGPU) from `npm:webgpu`, as a second engine next to Deno's built-in wgpu.
 *
 * @module
 */
import { NinError } from "./errors.ts";

/** What {@link openDawn} hands to `requestGpu`. */
export interface DawnHandle {
  /** Dawn's `navigator.gpu` equivalent. */
  gpu: GPU;
  /** Drops Dawn's instance so the process can exit. */
  onDestroy: () => void;
  /** Adapter feature level to ask for ("compatibility" on OpenGL backends). */
  featureLevel?: string;
}

/**
 * Loads Dawn. On Linux without a display it needs EGL's surfaceless platform and the OpenGL backend;
 * `NIN_DAWN_BACKEND` picks another backend (e.g. `vulkan`) on machines with a real GPU.
 */
export async function openDawn(): Promise<DawnHandle> {
  if (Deno.build.os === "linux" && !Deno.env.get("EGL_PLATFORM")) Deno.env.set("EGL_PLATFORM", "surfaceless");
  let mod: { create: (flags: string[]) => GPU; globals: Record<string, unknown> };
  try {
    mod = await import("webgpu") as unknown as typeof mod;
  } catch (e) {
    throw new NinError(
      `the Dawn engine could not load (npm:webgpu): ${
        (e as Error).message.split("\n")[0]
      }; run with --allow-ffi --allow-env and "nodeModulesDir": "auto", or use --gpu deno`,
    );
  }
  for (const [name, value] of Object.entries(mod.globals)) {
    if (!(name in globalThis)) (globalThis as Record<string, unknown>)[name] = value;
  }
  const backend = Deno.env.get("NIN_DAWN_BACKEND") ?? (Deno.build.os === "linux" ? "opengl" : "");
  let gpu: GPU | null = mod.create(backend ? [`backend=${backend}`] : []);
  return {
    gpu,
    onDestroy: () => {
      gpu = null;
    },
    featureLevel: backend === "opengl" ? "compatibility" : undefined,
  };
}
