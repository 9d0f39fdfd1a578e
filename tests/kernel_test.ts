// Every WGSL file under kernels/ is valid WGSL once its `//!include` lines are resolved (the one include step,
// lib/gpu/kernel.ts), and the runtime can read its layout: Params fields are snake_case scalars.
import assert, { deepStrictEqual, strictEqual } from "node:assert/strict";
import { kernel, packParams, paramFields, resolveIncludes } from "../lib/gpu/kernel.ts";
import { gpuTest } from "./util.ts";

const KERNELS = new URL("../kernels/", import.meta.url);

async function kernelFiles(dir = KERNELS, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isDirectory) {
      out.push(...await kernelFiles(new URL(`${entry.name}/`, dir), `${prefix}${entry.name}/`));
    } else if (entry.name.endsWith(".wgsl")) out.push(prefix + entry.name);
  }
  return out.sort();
}

gpuTest("every kernel file compiles on its own after the include step", async (gpu) => {
  const files = await kernelFiles();
  assert(files.length >= 15, `found only ${files.length} kernel files`);
  for (const file of files) {
    const code = resolveIncludes(await Deno.readTextFile(new URL(file, KERNELS)), file);
    const module = gpu.device.createShaderModule({ label: file, code });
    const errors = (await module.getCompilationInfo()).messages.filter((m) => m.type === "error");
    deepStrictEqual(errors.map((m) => `${m.lineNum}: ${m.message}`), [], `${file} does not compile`);
    for (const { name } of paramFields(code, file)) {
      assert(/^[a-z][a-z0-9_]*$/.test(name), `${file}: Params field ${name} is not snake_case`);
    }
  }
});

Deno.test("kernel() reads params, bindings and workgroup size from the WGSL; packParams packs by name", () => {
  const k = kernel(
    "scale",
    `struct Params { count: u32, offset: i32, factor: f32 }
     @group(0) @binding(0) var<uniform> p: Params;
     @group(0) @binding(1) var<storage, read> x: array<f32>;
     @group(0) @binding(2) var<storage, read_write> y: array<f32>;
     override TILE: u32 = 4u;
     @compute @workgroup_size(16, TILE)
     fn main() {}`,
    { constants: { TILE: 8 } },
  );
  strictEqual(k.workgroupSize, 128);
  deepStrictEqual([...k.bindings], [["x", 1], ["y", 2]]);
  const words = packParams(k, { factor: 0.5, count: 7, offset: -2 });
  deepStrictEqual([...words.slice(0, 2)], [7, 0xfffffffe]);
  strictEqual(new Float32Array(words.buffer)[2], 0.5);
  assert.throws(() => packParams(k, { count: 1, offset: 0 }), /missing param factor/);
  assert.throws(() => packParams(k, { count: 1, offset: 0, factor: 1, extra: 2 }), /unknown param extra/);
  assert.throws(() => packParams(k, { count: 1.5, offset: 0, factor: 1 }), /not integral/);
});
