/**
 * Kernels: a WGSL source, its one include step, and the layout the runtime reads from the WGSL itself
 * (the `Params` struct's fields, the bindings' names, the workgroup size), so that TypeScript passes
 * parameters and buffers by name and no fact of the contract is written in both languages.
 *
 * The include step: a line `//!include name.wgsl` is replaced by that file of `kernels/` (the snippets in
 * {@link SNIPPETS}). A kernel file is valid WGSL once its includes are in; `tests/kernel_test.ts` compiles
 * every file of `kernels/` that way.
 *
 * @module
 */
import conv2dCommon from "../../kernels/conv2d_common.wgsl" with { type: "text" };
import conv2dTaps from "../../kernels/conv2d_taps.wgsl" with { type: "text" };
import conv2dTexels from "../../kernels/conv2d_texels.wgsl" with { type: "text" };
import conv2dReluMask from "../../kernels/conv2d_relu_mask.wgsl" with { type: "text" };
import perElement from "../../kernels/per_element.wgsl" with { type: "text" };
import maxpool2dParams from "../../kernels/maxpool2d_params.wgsl" with { type: "text" };
import adaptivePoolWindow from "../../kernels/adaptive_pool_window.wgsl" with { type: "text" };
import conv2dGpuCommon from "../../kernels/gpu/conv2d_gpu_common.wgsl" with { type: "text" };
import conv2dGpuGemm from "../../kernels/gpu/conv2d_gpu_gemm.wgsl" with { type: "text" };
import conv2dGpuOutput from "../../kernels/gpu/conv2d_gpu_output.wgsl" with { type: "text" };

/** The shared WGSL snippets a kernel may include, by path under `kernels/`. */
const SNIPPETS: Readonly<Record<string, string>> = {
  "conv2d_common.wgsl": conv2dCommon,
  "conv2d_taps.wgsl": conv2dTaps,
  "conv2d_texels.wgsl": conv2dTexels,
  "conv2d_relu_mask.wgsl": conv2dReluMask,
  "per_element.wgsl": perElement,
  "maxpool2d_params.wgsl": maxpool2dParams,
  "adaptive_pool_window.wgsl": adaptivePoolWindow,
  "gpu/conv2d_gpu_common.wgsl": conv2dGpuCommon,
  "gpu/conv2d_gpu_gemm.wgsl": conv2dGpuGemm,
  "gpu/conv2d_gpu_output.wgsl": conv2dGpuOutput,
};

/** A scalar field of a kernel's `Params` uniform. */
export interface ParamField {
  /** Field name, as in the WGSL struct. */
  name: string;
  /** WGSL scalar type. */
  type: "u32" | "i32" | "f32";
}

/** A compute kernel: WGSL source plus what the runtime reads from it. Make one with {@link kernel}. */
export interface Kernel {
  /** Stable, unique name (a variant with other constants or entry point has its own), e.g. `conv2d_forward`. */
  readonly name: string;
  /** WGSL source with its includes resolved. */
  readonly code: string;
  /** Entry point (default `main`). */
  readonly entryPoint: string;
  /** Values for the shader's `override` constants. */
  readonly constants: Readonly<Record<string, number>>;
  /** Every numeric module-scope `const` and `override` of the WGSL, with `constants` applied. */
  readonly values: ReadonlyMap<string, number>;
  /** Fields of `struct Params` (bound at binding 0 as a uniform), in WGSL order; empty without one. */
  readonly params: readonly ParamField[];
  /** Binding index of every storage buffer and storage texture, by its WGSL variable name. */
  readonly bindings: ReadonlyMap<string, number>;
  /** Invocations per workgroup (the product of the entry point's `@workgroup_size`). */
  readonly workgroupSize: number;
}

/** Options of {@link kernel}. */
export interface KernelOptions {
  /** Entry point (default `main`). */
  entryPoint?: string;
  /** Values for `override` constants (they also resolve a workgroup size given by an override). */
  constants?: Record<string, number>;
}

/**
 * Makes a kernel from WGSL source: resolves `//!include` lines and reads the params, bindings and
 * workgroup size. Throws for a source the runtime cannot read (a programming error, not user input).
 */
export function kernel(name: string, source: string, options: KernelOptions = {}): Kernel {
  const code = resolveIncludes(source, name);
  const entryPoint = options.entryPoint ?? "main";
  const constants = options.constants ?? {};
  const values = valuesOf(code, constants);
  return {
    name,
    code,
    entryPoint,
    constants,
    values,
    params: paramFields(code, name),
    bindings: bindingsOf(code),
    workgroupSize: workgroupSizeOf(code, entryPoint, values, name),
  };
}

/** A `//!include file.wgsl` line; the file is the first group. */
const INCLUDE_LINE = /^\/\/!include\s+(\S+)\s*$/gm;

/** The files a source includes, in order. */
export function includedFiles(source: string): string[] {
  return [...source.matchAll(INCLUDE_LINE)].map((m) => m[1]);
}

/** Replaces every `//!include file.wgsl` line by that snippet (snippets include nothing themselves). */
export function resolveIncludes(source: string, name = "kernel"): string {
  return source.replace(INCLUDE_LINE, (_, file: string) => {
    const snippet = SNIPPETS[file];
    if (snippet === undefined) throw new Error(`${name}: unknown include ${file}`);
    return snippet;
  });
}

/**
 * The uniform words of `values` in the order of the kernel's `Params` fields: u32 and i32 as integers, f32
 * as their bit patterns. Every field must be given and nothing else.
 */
export function packParams(k: Kernel, values: Readonly<Record<string, number>>): Uint32Array {
  const words = new Uint32Array(Math.max(4, Math.ceil(k.params.length / 4) * 4));
  const view = new DataView(words.buffer);
  k.params.forEach((field, i) => {
    const value = values[field.name];
    if (value === undefined) throw new Error(`${k.name}: missing param ${field.name}`);
    if (field.type === "f32") view.setFloat32(i * 4, value, true);
    else if (!Number.isInteger(value)) {
      throw new Error(`${k.name}: param ${field.name} = ${value} is not integral`);
    } else if (field.type === "i32") view.setInt32(i * 4, value, true);
    else view.setUint32(i * 4, value, true);
  });
  // Every field was found above, so an extra key is one that names no field.
  if (Object.keys(values).length !== k.params.length) {
    const unknown = Object.keys(values).find((name) => !k.params.some((f) => f.name === name));
    throw new Error(`${k.name}: unknown param ${unknown}`);
  }
  return words;
}

/** The fields of the source's `struct Params`, in order (empty without one). */
export function paramFields(code: string, name = "kernel"): ParamField[] {
  const body = /struct\s+Params\s*\{([^}]*)\}/.exec(code)?.[1];
  if (body === undefined) return [];
  // Comments go first: they may contain commas.
  return body.replace(/\/\/.*$/gm, "").split(",").map((f) => f.trim()).filter((f) => f).map((field) => {
    const match = /^(\w+)\s*:\s*(u32|i32|f32)$/.exec(field);
    if (!match) throw new Error(`${name}: Params field "${field}" is not a u32, i32 or f32 scalar`);
    return { name: match[1], type: match[2] as ParamField["type"] };
  });
}

function bindingsOf(code: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of code.matchAll(/@binding\((\d+)\)\s*var<storage[^>]*>\s*(\w+)/g)) {
    out.set(m[2], Number(m[1]));
  }
  for (const m of code.matchAll(/@binding\((\d+)\)\s*var\s+(\w+)\s*:\s*texture_storage_2d/g)) {
    out.set(m[2], Number(m[1]));
  }
  return out;
}

/** The literal initializers of numeric `const`s and `override`s, then the given `constants` over them. */
function valuesOf(code: string, constants: Readonly<Record<string, number>>): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of code.matchAll(/\b(?:const|override)\s+(\w+)\s*(?::\s*[iu]32)?\s*=\s*(\d+)[iu]?\s*;/g)) {
    out.set(m[1], Number(m[2]));
  }
  for (const [name, value] of Object.entries(constants)) out.set(name, value);
  return out;
}

/**
 * The value of a kernel's numeric `const` or `override` (its constants first, then the WGSL's literal
 * initializer), so that sizes the TypeScript side needs, like a tile's width, are written once.
 */
export function constantOf(k: Kernel, name: string): number {
  const value = k.values.get(name);
  if (value === undefined) throw new Error(`${k.name}: no numeric const or override ${name}`);
  return value;
}

function workgroupSizeOf(
  code: string,
  entryPoint: string,
  values: ReadonlyMap<string, number>,
  name: string,
): number {
  const match = new RegExp(`@workgroup_size\\(([^)]*)\\)\\s*fn\\s+${entryPoint}\\b`).exec(code);
  if (!match) throw new Error(`${name}: no @workgroup_size on entry point ${entryPoint}`);
  return match[1].split(",").map((term) => term.trim()).filter((t) => t).reduce((product, term) => {
    const value = /^\d+u?$/.test(term) ? parseInt(term) : values.get(term);
    if (value === undefined) throw new Error(`${name}: cannot resolve workgroup size term ${term}`);
    return product * value;
  }, 1);
}
