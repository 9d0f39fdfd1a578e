// The engine switch of requestGpu: Deno's wgpu, Dawn from npm:webgpu, and the errors when an engine cannot
// start. Each test opens and destroys its own GPU (the shared test GPU is one device per process); the exit
// and permission checks run a child Deno so they see a fresh process.
import { match } from "node:assert/strict";
import { assertClose, assertJsonEqual, assertRejectsWith, assertThrowsWith, Tensor } from "./util.ts";
import type { Engine, Gpu } from "../lib/gpu/device.ts";
import { requestGpu } from "../lib/deno/gpu.ts";
import { requestGpu as requestCoreGpu } from "../lib/gpu/device.ts";
import { denoBackend } from "../lib/deno/backend.ts";
import { NinError } from "../lib/errors.ts";
import { ReLU } from "../lib/layers/relu.ts";
import { reluForwardRef } from "./reference/relu.ts";

const PROJECT_ROOT = new URL("..", import.meta.url);
const GPU_MODULE = new URL("../lib/deno/gpu.ts", import.meta.url).href;
const canLoadDawn = Deno.permissions.querySync({ name: "ffi" }).state === "granted";
const SOFTWARE = /llvmpipe|lavapipe|swiftshader|softpipe/i;

/** Runs a ReLU on the device and checks it against the CPU reference. */
async function checkRelu(gpu: Gpu): Promise<void> {
  const xs = [-2, -0.5, 0, 0.25, 3, -7, 0.125];
  const x = Tensor.fromArray(gpu, xs, [xs.length]);
  const y = new ReLU(gpu).eval().forward(x);
  assertClose(await y.toArray(), reluForwardRef(xs), { atol: 0, rtol: 0 }, `relu on ${gpu.engine}`);
  x.dispose();
  y.dispose();
}

/**
 * Checks what every engine must report: its name, the device's limits (the adapter's maximum binding size,
 * where `adapterLimits` gives an adapter to compare with), and that buffer checks use them.
 */
function checkReported(gpu: Gpu, engine: Engine, adapterLimits?: GPUSupportedLimits): void {
  assertJsonEqual(gpu.engine, engine, "engine");
  if (!gpu.adapterName || gpu.adapterName === "unknown adapter") {
    throw new Error(`${engine}: no adapter name, got "${gpu.adapterName}"`);
  }
  if (SOFTWARE.test(gpu.adapterName) && !gpu.isSoftware) {
    throw new Error(`${engine}: "${gpu.adapterName}" should count as a software adapter`);
  }
  const limit = gpu.limits.maxStorageBufferBindingSize;
  if (adapterLimits) {
    // Asked for at the adapter's maximum, not WebGPU's 128 MiB default.
    assertJsonEqual(
      [limit, gpu.limits.maxBufferSize],
      [adapterLimits.maxStorageBufferBindingSize, adapterLimits.maxBufferSize],
      "device limits are the adapter's maximum",
    );
  }
  if (!(limit >= 2 ** 20)) throw new Error(`${engine}: maxStorageBufferBindingSize ${limit}`);
  assertThrowsWith(() => gpu.allocate(limit + 16, "too big"), NinError, "maxStorageBufferBindingSize");
}

/**
 * Runs `script` in a child `deno run` with the given permission flags and environment, from the project
 * root (so deno.json maps `webgpu`), killing it after `limitMs`. Returns its stdout, exit code and wall time.
 */
async function runChild(
  script: string,
  permissions: string[],
  env: Record<string, string> = {},
  limitMs = 60_000,
): Promise<{ stdout: string; code: number; ms: number }> {
  const start = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", ...permissions, "-"],
    cwd: PROJECT_ROOT,
    env,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped", // Dawn prints its warnings here
    signal: AbortSignal.timeout(limitMs),
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(script));
  await writer.close();
  const { code, stdout, stderr } = await child.output();
  const text = new TextDecoder().decode(stdout);
  if (code !== 0 && !text) {
    throw new Error(`child deno failed (${code}): ${new TextDecoder().decode(stderr)}`);
  }
  return { stdout: text, code, ms: performance.now() - start };
}

/** A child script that opens a Dawn GPU, runs a kernel, destroys it, and prints the outcome. */
const DAWN_CHILD = `
import { requestGpu } from "${GPU_MODULE}";
try {
  const gpu = await requestGpu({ engine: "dawn" });
  const buffer = gpu.allocate(16);
  gpu.write(buffer, new Float32Array([1, 2, 3, 4]));
  const data = new Float32Array(await gpu.read(buffer, 16));
  gpu.destroy();
  console.log("ok " + data.join(","));
} catch (e) {
  console.log(e.name + ": " + e.message);
}
`;

Deno.test({
  name: "engine deno: Deno's built-in WebGPU opens, reports its adapter and limits, and runs a kernel",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const gpu = await requestGpu({ engine: "deno" });
    try {
      const adapter = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
      if (!adapter) throw new Error("no second adapter to compare the limits with");
      checkReported(gpu, "deno", adapter.limits);
      await checkRelu(gpu);
    } finally {
      gpu.destroy();
    }
  },
});

/** A child script that opens Deno's WebGPU and prints the backend it reports and the device line. */
const DENO_CHILD = `
import { requestGpu } from "${GPU_MODULE}";
const gpu = await requestGpu({ engine: "deno" });
console.log(JSON.stringify([gpu.backend, gpu.describe()]));
gpu.destroy();
`;

// Deno runs on exactly the backends DENO_WEBGPU_BACKEND names (wgpu's rule), so a child given one name
// gets an adapter of that backend or none; the Vulkan case needs a Vulkan driver (mesa-vulkan-drivers
// here, which the README's set-up and CI install).
Deno.test("engine deno: the device line names the backend DENO_WEBGPU_BACKEND chose", async () => {
  for (const [asked, api] of [["gl", "OpenGL"], [" VK ", "Vulkan"]]) {
    const child = await runChild(DENO_CHILD, ["--allow-env", "--allow-read"], { DENO_WEBGPU_BACKEND: asked });
    if (child.code !== 0) {
      throw new Error(`DENO_WEBGPU_BACKEND=${asked}: no ${api} adapter:\n${child.stdout}`);
    }
    const [backend, line] = JSON.parse(child.stdout);
    assertJsonEqual(backend, api, `backend for DENO_WEBGPU_BACKEND=${asked}`);
    match(line, new RegExp(`^.+ \\(deno, ${api}, .*kernels\\)$`));
  }
});

Deno.test("engine deno: the backend is known only when DENO_WEBGPU_BACKEND names exactly one", () => {
  const previous = Deno.env.get("DENO_WEBGPU_BACKEND");
  const cases: [string | undefined, string | undefined][] = [
    [undefined, undefined], // Deno tries every backend: it does not say which answered
    ["metal", "Metal"],
    ["Dx12", "D3D12"],
    ["gles,opengl", "OpenGL"], // two names of one backend
    ["vulkan,gl", undefined],
    ["vulkan,webgpu", undefined], // a name the table lacks could be another backend
    [" ", undefined],
  ];
  try {
    for (const [env, expected] of cases) {
      if (env === undefined) Deno.env.delete("DENO_WEBGPU_BACKEND");
      else Deno.env.set("DENO_WEBGPU_BACKEND", env);
      assertJsonEqual(denoBackend(), expected, `DENO_WEBGPU_BACKEND=${env}`);
    }
  } finally {
    if (previous === undefined) Deno.env.delete("DENO_WEBGPU_BACKEND");
    else Deno.env.set("DENO_WEBGPU_BACKEND", previous);
  }
});

Deno.test("engine: an unknown engine name is a usage error (exit code 2)", async () => {
  const error = await assertRejectsWith(
    () => requestGpu({ engine: "vulkan" as Engine }),
    NinError,
    '"deno" or "dawn"',
  );
  assertJsonEqual(error.exitCode, 2, "exit code");
});

Deno.test("engine: the core's requestGpu opens Dawn only through an adapter opener (the Deno entry's)", async () => {
  await assertRejectsWith(
    () => requestCoreGpu({ engine: "dawn" }),
    NinError,
    "the dawn engine runs under Deno only: use requestGpu from the package's main entry",
  );
  let asked: GPUPowerPreference | undefined;
  const opener = async (preference: GPUPowerPreference) => {
    asked = preference;
    const adapter = await navigator.gpu.requestAdapter();
    if (!adapter) throw new Error("no adapter");
    return { adapter };
  };
  const gpu = await requestCoreGpu({ engine: "dawn", openAdapter: opener, powerPreference: "low-power" });
  assertJsonEqual([gpu.engine, asked], ["dawn", "low-power"], "the opener's adapter, named as asked");
  gpu.destroy();
});

Deno.test({
  name: "engine dawn: Dawn from npm:webgpu opens, reports its adapter and limits, and runs a kernel",
  ignore: !canLoadDawn,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const gpu = await requestGpu({ engine: "dawn" });
    try {
      checkReported(gpu, "dawn");
      // Dawn's OpenGL backend describes itself as "OpenGL version ..."; the backend comes from what was asked.
      assertJsonEqual(
        [gpu.backend === "OpenGL", gpu.describe().includes(`(dawn, ${gpu.backend}, `)],
        [/OpenGL version/.test(gpu.adapterName), true],
        `Dawn's backend ${gpu.backend} on ${gpu.adapterName}`,
      );
      await checkRelu(gpu);
    } finally {
      gpu.destroy();
    }
  },
});

Deno.test({
  name: "engine dawn: a script that opens and destroys a Dawn GPU exits by itself",
  ignore: !canLoadDawn,
  fn: async () => {
    const { stdout, code, ms } = await runChild(DAWN_CHILD, ["--allow-ffi", "--allow-env"]);
    assertJsonEqual(stdout.trim(), "ok 1,2,3,4", "child output");
    assertJsonEqual(code, 0, "exit code");
    // Startup plus one tiny round trip takes well under a second here; a hang runs into the kill timeout.
    if (ms > 20_000) throw new Error(`the child took ${(ms / 1000).toFixed(1)} s to exit`);
  },
});

Deno.test({
  name: "engine dawn: failures are one-line NinErrors saying what to do",
  ignore: !canLoadDawn,
  fn: async () => {
    const noFfi = await runChild(DAWN_CHILD, ["--allow-env"]);
    const lines = noFfi.stdout.trim().split("\n");
    assertJsonEqual(lines.length, 1, `one line without --allow-ffi: ${noFfi.stdout}`);
    match(lines[0], /^NinError: .*add --allow-ffi.*--gpu deno/);

    // A backend this platform does not have: Dawn finds no adapter.
    const absent = Deno.build.os === "windows" ? "metal" : "d3d12";
    const noAdapter = await runChild(DAWN_CHILD, ["--allow-ffi", "--allow-env"], {
      NIN_DAWN_BACKEND: absent,
    });
    assertJsonEqual(
      noAdapter.stdout.trim(),
      `NinError: Dawn found no WebGPU adapter (tried backend ${absent}); unset NIN_DAWN_BACKEND to let Dawn ` +
        "choose, or use --gpu deno",
      "no adapter",
    );

    const previous = Deno.env.get("NIN_DAWN_BACKEND");
    Deno.env.set("NIN_DAWN_BACKEND", "directx9");
    try {
      const error = await assertRejectsWith(() => requestGpu({ engine: "dawn" }), NinError);
      assertJsonEqual(error.exitCode, 2, "exit code for a bad NIN_DAWN_BACKEND");
      match(error.message, /^NIN_DAWN_BACKEND must be one of vulkan, metal/);
    } finally {
      if (previous === undefined) Deno.env.delete("NIN_DAWN_BACKEND");
      else Deno.env.set("NIN_DAWN_BACKEND", previous);
    }
  },
});
