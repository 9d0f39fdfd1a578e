// Every WGSL file under kernels/ is valid WGSL once its `//!include` lines are resolved (the one include step,
// lib/gpu/kernel.ts), and the runtime can read its layout: Params fields are snake_case scalars.
import assert, { deepStrictEqual, strictEqual } from "node:assert/strict";
import {
  constantOf,
  includedFiles,
  kernel,
  packParams,
  paramFields,
  resolveIncludes,
} from "../lib/gpu/kernel.ts";
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
  const sources = new Map<string, string>();
  for (const file of await kernelFiles()) sources.set(file, await Deno.readTextFile(new URL(file, KERNELS)));
  // Snippets (the files some kernel includes) define hooks their includers fill, so they compile as part of
  // those kernels; every snippet is included somewhere.
  const included = new Set(
    [...sources.values()].flatMap(includedFiles),
  );
  for (const snippet of included) assert(sources.has(snippet), `include of a missing file ${snippet}`);
  const kernels = [...sources.keys()].filter((file) => !included.has(file));
  assert(kernels.length >= 15, `found only ${kernels.length} kernel files`);
  for (const file of kernels) {
    const code = resolveIncludes(sources.get(file)!, file);
    const module = gpu.device.createShaderModule({ label: file, code });
    const errors = (await module.getCompilationInfo()).messages.filter((m) => m.type === "error");
    deepStrictEqual(errors.map((m) => `${m.lineNum}: ${m.message}`), [], `${file} does not compile`);
    for (const { name } of paramFields(code, file)) {
      assert(/^[a-z][a-z0-9_]*$/.test(name), `${file}: Params field ${name} is not snake_case`);
    }
  }
});

Deno.test("kernel() reads params, bindings, workgroup size and constants from the WGSL; packParams packs by name", () => {
  const k = kernel(
    "scale",
    `struct Params { count: u32, offset: i32, factor: f32 }
     @group(0) @binding(0) var<uniform> p: Params;
     @group(0) @binding(1) var<storage, read> x: array<f32>;
     @group(0) @binding(2) var<storage, read_write> y: array<f32>;
     override TILE: u32 = 4u;
     const CHUNK = 16u;
     @compute @workgroup_size(16, TILE)
     fn main() {}`,
    { constants: { TILE: 8 } },
  );
  strictEqual(k.workgroupSize, 128);
  strictEqual(constantOf(k, "TILE"), 8);
  strictEqual(constantOf(k, "CHUNK"), 16);
  assert.throws(() => constantOf(k, "WIDTH"), /no numeric const or override WIDTH/);
  deepStrictEqual([...k.bindings], [["x", 1], ["y", 2]]);
  const words = packParams(k, { factor: 0.5, count: 7, offset: -2 });
  deepStrictEqual([...words.slice(0, 2)], [7, 0xfffffffe]);
  strictEqual(new Float32Array(words.buffer)[2], 0.5);
  assert.throws(() => packParams(k, { count: 1, offset: 0 }), /missing param factor/);
  assert.throws(() => packParams(k, { count: 1, offset: 0, factor: 1, extra: 2 }), /unknown param extra/);
  assert.throws(() => packParams(k, { count: 1.5, offset: 0, factor: 1 }), /not integral/);
});
