/**
 * The software family's convolution candidates: one table, read by the plan (which candidate a layer's pass
 * gets by default), by `deno task bench --tune` (which measures them) and by the tests (which run each one
 * against the float64 reference). A candidate is either today's storage-buffer kernels or a texture-fed
 * kernel with a block shape: 4 * rowQuads output positions x 4 * columnQuads output channels per invocation.
 * Texture candidates need read-only storage textures (`Gpu.readOnlyStorageTextures`) and textures within the
 * device's `maxTextureDimension2D`; where either is missing the plan picks the buffer candidate. A pinned
 * candidate that cannot run is an error, never a silent fallback.
 *
 * @module
 */
import type { Gpu } from "./gpu/device.ts";
import { NinError } from "./errors.ts";

/** Where a candidate's kernels read their operands from. */
export type Operands = "buffer" | "texture";

/** One candidate of the software family's convolutions. */
export interface SoftwareConvCandidate {
  /** Its name, e.g. `texture 16x32` (positions x channels per invocation) or `buffer`. */
  readonly name: string;
  /** Storage buffers (today's kernels) or read-only storage textures. */
  readonly operands: Operands;
  /** Quads of output positions per invocation (texture candidates; 1 to 4). */
  readonly rowQuads: number;
  /** Quads of output channels per workgroup (texture candidates; 1 to 8). */
  readonly columnQuads: number;
}

/**
 * Every candidate, buffer first. (16 x 32 and 16 x 16 blocks were tried: slower than these on every NiN layer
 * measured here, and 2-5 minutes each to compile on Mesa's OpenGL path.)
 */
export const SOFTWARE_CONV_CANDIDATES: readonly SoftwareConvCandidate[] = [
  { name: "buffer", operands: "buffer", rowQuads: 4, columnQuads: 8 },
  { name: "texture 12x8", operands: "texture", rowQuads: 3, columnQuads: 2 },
  { name: "texture 8x12", operands: "texture", rowQuads: 2, columnQuads: 3 },
  { name: "texture 8x16", operands: "texture", rowQuads: 2, columnQuads: 4 },
  { name: "texture 4x32", operands: "texture", rowQuads: 1, columnQuads: 8 },
];

/** The candidate called `name`; throws a {@link NinError} naming the others for an unknown one. */
export function candidateNamed(name: string): SoftwareConvCandidate {
  const found = SOFTWARE_CONV_CANDIDATES.find((c) => c.name === name);
  if (!found) {
    const names = SOFTWARE_CONV_CANDIDATES.map((c) => c.name).join(", ");
    throw new NinError(`unknown software conv candidate "${name}"; use one of ${names}`, 2);
  }
  return found;
}

/** The candidate pinned on a device (tests, `bench --tune`), by device. */
const PINNED = new WeakMap<Gpu, SoftwareConvCandidate>();

/**
 * Makes every software convolution on `gpu` use `candidate` (undefined: back to the plan's choice). A
 * pass the candidate cannot run then fails with a {@link NinError} saying why.
 *
 * @example
 * ```ts
 * import { countingGpu } from "@nin/webgpu";
 * import { candidateNamed, pinCandidate } from "./kernel_candidates.ts";
 * const gpu = countingGpu({ kernels: "software" });
 * pinCandidate(gpu, candidateNamed("texture 12x8"));
 * ```
 */
export function pinCandidate(gpu: Gpu, candidate: SoftwareConvCandidate | undefined): void {
  if (candidate) PINNED.set(gpu, candidate);
  else PINNED.delete(gpu);
}

/** A texture's extent, width x height in texels. */
export type Extent = readonly [number, number];

/**
 * Why texture candidates cannot run a pass whose packed operands have these `extents` on `gpu`, or undefined
 * when they can.
 */
export function texturesUnsupported(gpu: Gpu, extents: readonly Extent[]): string | undefined {
  if (!gpu.readOnlyStorageTextures) {
    return "this adapter has no read-only storage textures (WGSL readonly_and_readwrite_storage_textures)";
  }
  const side = gpu.limits.maxTextureDimension2D;
  const largest = Math.max(...extents.flat());
  if (largest > side) return `a packed operand needs ${largest} texels a side, this device allows ${side}`;
  return undefined;
}

/**
 * The plan's candidate for a pass whose packed operands would have these `extents` on `gpu` and whose
 * channels fill `fill` of the texels' four lanes (e.g. 0.25 for one input channel): the pinned one (a
 * {@link NinError} if it cannot run), else the `tuned` one (`bench --tune`'s choice for the pass, by name)
 * where it can run, else the default texture block where the adapter allows it and the texels are at least
 * half full, else the buffer candidate (a one-channel first layer would do four times the work and hold four
 * times the bytes in textures).
 */
export function chooseCandidate(
  gpu: Gpu,
  extents: readonly Extent[],
  fill = 1,
  tuned?: string,
): SoftwareConvCandidate {
  const unsupported = texturesUnsupported(gpu, extents);
  const pinned = PINNED.get(gpu);
  if (pinned) {
    if (pinned.operands === "texture" && unsupported) {
      throw new NinError(`software conv candidate "${pinned.name}" cannot run here: ${unsupported}`);
    }
    return pinned;
  }
  const choice = tuned === undefined ? undefined : candidateNamed(tuned);
  if (choice && !(choice.operands === "texture" && unsupported)) return choice;
  if (unsupported || fill < 0.5) return SOFTWARE_CONV_CANDIDATES[0];
  return candidateNamed(DEFAULT_TEXTURE_CANDIDATE);
}

/** The share of a packed texel's four lanes that `channels` fill. */
export function texelFill(channels: number): number {
  return channels / (4 * Math.ceil(channels / 4));
}

/** The texture candidate the plan uses by default. */
const DEFAULT_TEXTURE_CANDIDATE = "texture 12x8";
