/**
 * The access probe (`deno task bench --probe`): what one operand access costs on this adapter inside a
 * register-blocked GEMM loop, by kind of access (storage buffer or read-only storage texture, vec4 or four
 * scalars), next to what the loop's arithmetic costs. On llvmpipe the kind of load, not the FMAs, sets the
 * software kernels' speed; the probe shows a user on another CPU or Mesa version why their figures differ.
 *
 * @module
 */
import type { Gpu } from "./gpu/device.ts";
import { kernel } from "./gpu/kernel.ts";
import { median } from "./median.ts";
import code from "../kernels/access_probe.wgsl" with { type: "text" };

/** The kinds of access probed (entry points of kernels/access_probe.wgsl), `none` first: the baseline. */
export const ACCESS_KINDS = [
  "none",
  "buffer_vec4",
  "buffer_scalar",
  "texture_rgba32float",
  "texture_r32float",
] as const;

/** One kind of access and what it cost. */
export interface AccessCost {
  /** The kind, e.g. `texture_rgba32float`. */
  kind: (typeof ACCESS_KINDS)[number];
  /** Median seconds of the probe dispatch. */
  seconds: number;
  /**
   * Nanoseconds one vec4 operand access adds to the loop, per invocation-step over the adapter's
   * `threads` (0 for `none`; may dip below 0 by noise when an access is nearly free).
   */
  nsPerAccess: number;
}

/** Result of {@link probeAccessCosts}. */
export interface AccessProbe {
  /** Every kind measured (textures only where the adapter reads them). */
  costs: AccessCost[];
  /** Nanoseconds of one four-wide multiply-add per invocation-step (the `none` loop's time over its FMAs). */
  nsPerFma: number;
  /** Invocations x steps each kind ran. */
  steps: number;
}

/** Operand quads a probe step reads: three that differ per lane, two the same in every lane. */
const ACCESSES_PER_STEP = 5;
/** Four-wide multiply-adds a probe step does (a 12 x 8 block: 3 x 2 quads of 4 x 4). */
const FMAS_PER_STEP = 3 * 2 * 4;
const WORKGROUPS = 64;
/** The probe's block: 12 positions x 8 channels, as the plan's default texture candidate. */
const BLOCK = { rowQuads: 3, columnQuads: 2 };

/**
 * Times each kind of access (median of `repeats` after a warm-up) over `iterations` steps per invocation.
 * Costs are per invocation-step, as if the work ran on one thread; on llvmpipe a SIMD instruction covers
 * eight lanes and the threads run side by side, so multiply by (threads x 8) / 8 to compare with per-SIMD
 * figures.
 *
 * @example
 * ```ts
 * import { requestGpu } from "@nin/webgpu";
 * import { probeAccessCosts } from "./probe.ts";
 * const gpu = await requestGpu();
 * console.log((await probeAccessCosts(gpu, 1024, 1)).costs);
 * gpu.destroy();
 * ```
 */
export async function probeAccessCosts(gpu: Gpu, iterations = 1 << 14, repeats = 3): Promise<AccessProbe> {
  const kinds = ACCESS_KINDS.filter((k) => gpu.readOnlyStorageTextures || !k.startsWith("texture"));
  const buffer = gpu.allocate(256 * 16, "probe");
  const out = gpu.allocate(WORKGROUPS * 8 * 12 * 8 * 4, "probe");
  const texel4 = gpu.readOnlyStorageTextures ? gpu.device.createTexture(texture("rgba32float")) : undefined;
  const texel1 = gpu.readOnlyStorageTextures ? gpu.device.createTexture(texture("r32float")) : undefined;
  try {
    gpu.clear(buffer);
    const seconds = new Map<string, number>();
    for (const kind of kinds) {
      const k = kernel(`access_probe_${kind}`, code, { entryPoint: kind, constants: BLOCK });
      const bindings: Record<string, GPUBuffer | GPUTextureView> = { out };
      if (kind === "buffer_vec4") bindings.b4 = buffer;
      if (kind === "buffer_scalar") bindings.b1 = buffer;
      if (kind === "texture_rgba32float") bindings.t4 = texel4!.createView();
      if (kind === "texture_r32float") bindings.t1 = texel1!.createView();
      const params = {
        n: iterations,
        in_channels: 0,
        height: 0,
        width: 0,
        out_channels: 0,
        out_height: 0,
        out_width: 0,
        kernel: 0,
        stride: 0,
        padding: 0,
        grad_padding: 0,
      };
      const times: number[] = [];
      for (let i = 0; i <= repeats; i++) {
        const start = performance.now();
        gpu.dispatch(k, bindings, params, WORKGROUPS);
        await gpu.sync();
        if (i > 0) times.push((performance.now() - start) / 1000);
      }
      seconds.set(kind, median(times));
    }
    const steps = WORKGROUPS * 8 * iterations;
    const base = seconds.get("none")!;
    return {
      costs: kinds.map((kind) => ({
        kind,
        seconds: seconds.get(kind)!,
        nsPerAccess: (seconds.get(kind)! - base) * 1e9 / steps / ACCESSES_PER_STEP,
      })),
      nsPerFma: base * 1e9 / steps / FMAS_PER_STEP,
      steps,
    };
  } finally {
    gpu.release(buffer);
    gpu.release(out);
    texel4?.destroy();
    texel1?.destroy();
  }
}

function texture(format: GPUTextureFormat): GPUTextureDescriptor {
  return { size: [1024, 1], format, usage: GPUTextureUsage.STORAGE_BINDING };
}
