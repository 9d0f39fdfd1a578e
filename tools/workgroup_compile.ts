/**
 * How long a compute pipeline with one workgroup array of N vec4s takes to compile and run once (not a CI
 * test). It isolates why the gpu family's GEMM candidates compile so slowly on Deno over OpenGL (README,
 * Development): WGSL zero-initialises workgroup memory; over OpenGL naga writes that as one assignment of a
 * constant array, which llvmpipe compiles into N masked stores, and its compile time grows with about the
 * square of N. Vulkan (lavapipe) zero-initialises natively and Dawn writes a loop, so both stay flat.
 * Disable Mesa's shader cache, or a second run only reads the cache:
 *
 * ```sh
 * MESA_SHADER_CACHE_DISABLE=true DENO_WEBGPU_BACKEND=gl deno run -A tools/workgroup_compile.ts 256 512 1024
 * ```
 *
 * @module
 */
import { requestGpu } from "../lib/deno/gpu.ts";

const sizes = Deno.args.length > 0 ? Deno.args.map(Number) : [128, 256, 512, 1024];
if (sizes.some((n) => !Number.isInteger(n) || n < 64)) {
  console.error("error: each size is a whole number of vec4s, at least 64");
  Deno.exit(2);
}
const gpu = await requestGpu();
console.log(`device: ${gpu.describe()}`);
const out = gpu.device.createBuffer({ size: 256, usage: GPUBufferUsage.STORAGE });
for (const n of sizes) {
  // 64 invocations; each writes its own element, then reads another's, so the array cannot be removed.
  const code = `var<workgroup> stage: array<vec4f, ${n}>;
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(local_invocation_index) i: u32) {
  stage[i * ${Math.floor(n / 64)}u] = vec4f(f32(i));
  workgroupBarrier();
  out[i] = stage[(63u - i) * ${Math.floor(n / 64)}u].x;
}`;
  const start = performance.now();
  const pipeline = gpu.device.createComputePipeline({
    layout: "auto",
    compute: { module: gpu.device.createShaderModule({ code }), entryPoint: "main" },
  });
  const bindGroup = gpu.device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [{ binding: 0, resource: { buffer: out } }],
  });
  const encoder = gpu.device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup);
  pass.dispatchWorkgroups(1);
  pass.end();
  gpu.device.queue.submit([encoder.finish()]);
  await gpu.device.queue.onSubmittedWorkDone();
  const ms = performance.now() - start;
  console.log(
    `${String(n).padStart(5)} vec4s (${(n * 16 / 1024).toFixed(0).padStart(2)} KiB): ${ms.toFixed(0)} ms`,
  );
}
out.destroy();
gpu.destroy();
