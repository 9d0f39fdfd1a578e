// Shared test helpers: one GPU per test process, tolerance checks, and a Deno.test wrapper for GPU tests.
import type { Engine, Gpu, KernelChoice, KernelFamily } from "../lib/gpu/device.ts";
import { kernelChoice, requestGpu } from "../lib/deno/gpu.ts";
import { Tensor } from "../lib/tensor.ts";
import { NinError } from "../lib/errors.ts";

const devices = new Map<string, Promise<Gpu>>();

/** The engine the suite runs on: NIN_TEST_ENGINE=dawn runs the kernel tests on Dawn. */
export const testEngine: Engine = (Deno.env.get("NIN_TEST_ENGINE") as Engine | undefined) ?? "deno";

/** The kernel family the suite runs on: NIN_KERNELS=gpu runs the layer tests on the gpu family. */
export const testKernels: KernelChoice = kernelChoice(undefined);

/**
 * One device per kernel family for the whole test process (shader compilation is slow on llvmpipe; compile
 * once): the suite's family ({@link testKernels}), or `kernels` for tests of one family.
 */
export function testGpu(kernels: KernelChoice = testKernels): Promise<Gpu> {
  let device = devices.get(kernels);
  if (!device) {
    device = requestGpu({ engine: testEngine, kernels });
    devices.set(kernels, device);
  }
  return device;
}

/**
 * Whether this pass is Deno's WebGPU over OpenGL, where llvmpipe compiles the gpu family's GEMM candidates so
 * slowly (naga's zero-initialisation of their workgroup memory: tools/workgroup_compile.ts) that their tests
 * would take hours: CI runs the gpu family's tests over Vulkan and on Dawn. NIN_TEST_SLOW_GL=1 runs them
 * over OpenGL anyway (README, Development).
 */
const GPU_KERNELS_TOO_SLOW = testEngine === "deno" && Deno.env.get("DENO_WEBGPU_BACKEND") === "gl" &&
  Deno.env.get("NIN_TEST_SLOW_GL") !== "1";

/**
 * A Deno.test that gets the shared GPU and skips resource/op sanitizers (the device outlives tests); with
 * `options.kernels`, the device of that kernel family.
 */
export function gpuTest(
  name: string,
  fn: (gpu: Gpu) => Promise<void> | void,
  options: { kernels?: KernelFamily } = {},
): void {
  const kernels = options.kernels ?? testKernels;
  Deno.test({
    name: `${name} [${testEngine}${kernels === "auto" ? "" : `, ${kernels} kernels`}]`,
    ignore: kernels === "gpu" && GPU_KERNELS_TOO_SLOW,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => await fn(await testGpu(kernels)),
  });
}

/**
 * Asserts |actual - expected| <= atol + rtol * |expected| elementwise, naming the first bad index.
 */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: { atol: number; rtol: number },
  what = "values",
): void {
  if (actual.length !== expected.length) {
    throw new Error(`${what}: length ${actual.length} != expected ${expected.length}`);
  }
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < actual.length; i++) {
    const bound = tol.atol + tol.rtol * Math.abs(expected[i]);
    const diff = Math.abs(actual[i] - expected[i]);
    const excess = Number.isNaN(diff) ? Infinity : diff - bound;
    if (excess > worstExcess) {
      worstExcess = excess;
      worst = i;
    }
  }
  if (worst >= 0) {
    throw new Error(
      `${what}: index ${worst} is ${actual[worst]}, expected ${expected[worst]} ` +
        `(atol ${tol.atol}, rtol ${tol.rtol})`,
    );
  }
}

/** Uploads, runs `fn`, downloads, disposes the inputs and the result. */
export async function download(t: Tensor): Promise<Float32Array> {
  const data = await t.toArray();
  t.dispose();
  return data;
}

export { Tensor };

/** Asserts two values are equal as JSON (shapes, arrays of numbers, plain objects). */
export function assertJsonEqual(actual: unknown, expected: unknown, what = "value"): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${what}: got ${a}, expected ${e}`);
}

/** An error class, e.g. `NinError`. */
type ErrorClass<E extends Error> = abstract new (...args: never[]) => E;

/** Checks a caught value: of class `type`, a one-line message for a NinError, and every one of `parts` in it. */
function checkError<E extends Error>(e: unknown, type: ErrorClass<E>, parts: string[]): E {
  if (!(e instanceof type)) throw new Error(`expected a ${type.name}, got ${e}`);
  for (const part of parts) {
    if (!e.message.includes(part)) throw new Error(`expected "${part}" in the message, got "${e.message}"`);
  }
  // A NinError is what a task prints as its one `error: ...` line.
  if (e instanceof NinError && e.message.includes("\n")) {
    throw new Error(`the message is not one line: ${e.message}`);
  }
  return e;
}

function nothingThrown(type: ErrorClass<Error>, parts: string[]): Error {
  return new Error(
    `expected a ${type.name} containing ${parts.map((p) => `"${p}"`).join(", ")}, nothing was thrown`,
  );
}

/**
 * Asserts `fn` throws an error of class `type` (a NinError's message one line) whose message contains
 * every one of `parts`; returns the error.
 */
export function assertThrowsWith<E extends Error>(
  fn: () => unknown,
  type: ErrorClass<E>,
  ...parts: string[]
): E {
  try {
    fn();
  } catch (e) {
    return checkError(e, type, parts);
  }
  throw nothingThrown(type, parts);
}

/**
 * Awaits `fn` and asserts it rejects (or throws) an error of class `type` (a NinError's message one line)
 * whose message contains every one of `parts`; returns the error.
 */
export async function assertRejectsWith<E extends Error>(
  fn: () => unknown,
  type: ErrorClass<E>,
  ...parts: string[]
): Promise<E> {
  try {
    await fn();
  } catch (e) {
    return checkError(e, type, parts);
  }
  throw nothingThrown(type, parts);
}

/** A safetensors file laid out by hand: u64 LE header length, the header text as given (no padding), data. */
export function handBuilt(header: string, data: number[] | Uint8Array = []): Uint8Array {
  const json = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

/** Runs `work` inside a trace and returns its value and the FLOPs its dispatches declared. */
export async function withFlops<T>(gpu: Gpu, work: () => T): Promise<{ value: Awaited<T>; flops: number }> {
  let value: Awaited<T> | undefined;
  const records = await gpu.trace(async () => value = await work());
  return { value: value as Awaited<T>, flops: records.reduce((sum, r) => sum + r.flops, 0) };
}
