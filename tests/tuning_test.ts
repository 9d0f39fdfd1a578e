// Per-adapter tuning of the gpu family: choices are measured, cached per adapter, loaded, and change the
// weight gradient's split-K.
import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { countingGpu } from "../lib/gpu/counting.ts";
import type { DispatchRecord, Gpu } from "../lib/gpu/device.ts";
import { Conv2d } from "../lib/layers/conv2d.ts";
import type { ConvGeometry } from "../lib/layers/conv2d_passes.ts";
import { Tensor } from "../lib/tensor.ts";
import {
  geometryKey,
  SPLIT_TARGETS,
  splitCandidate,
  tunedTarget,
  WEIGHT_GRADIENT_KERNELS,
} from "../lib/tuning.ts";
import { loadTuning, tuneConvolutions, tuningPath } from "../lib/deno/tuning_cache.ts";

// 8 x 16 x 16 = 2048 output positions: a split of up to 8 slices of 256.
const G: ConvGeometry = {
  n: 8,
  inChannels: 4,
  height: 16,
  width: 16,
  outChannels: 8,
  outHeight: 16,
  outWidth: 16,
  kernel: 3,
  stride: 1,
  padding: 1,
};

async function backward(gpu: Gpu, g: ConvGeometry): Promise<string[]> {
  const conv = new Conv2d(gpu, g.inChannels, g.outChannels, g.kernel, g.stride, g.padding);
  const x = Tensor.zeros(gpu, [g.n, g.inChannels, g.height, g.width]);
  const dy = Tensor.zeros(gpu, [g.n, g.outChannels, g.outHeight, g.outWidth]);
  const records = await gpu.trace(async () => {
    conv.forward(x, { training: true, step: 0, sampleOffset: 0 }).dispose();
    conv.backward(dy)!.dispose();
    await gpu.sync();
  });
  for (const t of [x, dy]) t.dispose();
  conv.dispose();
  return records.filter((r) => r.kernel.startsWith(WEIGHT_GRADIENT_KERNELS)).map((r) =>
    `${r.kernel}:${r.workgroups}`
  );
}

Deno.test("tuning: a cached choice for this adapter is loaded and sets the weight gradient's split", async () => {
  const cacheDir = await Deno.makeTempDir();
  try {
    const gpu = countingGpu({ kernels: "gpu" });
    strictEqual(await loadTuning(gpu, cacheDir), undefined, "nothing cached yet");
    const split = await backward(gpu, G); // default target 1056: 8 slices of 256 and a reduce
    deepStrictEqual(split, ["conv2d_gpu_backward_weight:8", "conv2d_gpu_backward_weight_reduce:2"]);
    const path = tuningPath(gpu, cacheDir);
    await Deno.mkdir(`${cacheDir}/tuning`);
    await Deno.writeTextFile(
      path,
      JSON.stringify({ adapter: gpu.adapterKey, targets: { [geometryKey(G)]: 1 } }),
    );
    const tuning = await loadTuning(gpu, cacheDir);
    ok(tuning?.cached, "read from the cache");
    strictEqual(tunedTarget(gpu, G), 1);
    deepStrictEqual(
      await backward(gpu, G),
      ["conv2d_gpu_backward_weight:1"],
      "no split",
    );
    // Another adapter's file, or a damaged one, is not used.
    const other = countingGpu({ kernels: "gpu", software: true });
    await Deno.writeTextFile(tuningPath(other, cacheDir), "{ not json");
    strictEqual(await loadTuning(other, cacheDir), undefined, "damaged cache ignored");
  } finally {
    await Deno.remove(cacheDir, { recursive: true });
  }
});

// The tuner's choice is checked against a timer whose figures the test sets: the split target that was
// in force shows in the weight gradient's record (its candidate), and the tuner must keep the fastest.
for (const fastest of [SPLIT_TARGETS[1], SPLIT_TARGETS.at(-1)!]) {
  Deno.test(`tuning: --tune keeps the fastest split-K target (${fastest}) and caches it`, async () => {
    const cacheDir = await Deno.makeTempDir();
    try {
      const gpu = countingGpu({ kernels: "gpu" });
      const timed: string[] = [];
      const time = (records: DispatchRecord[]) => {
        const candidate = records.find((r) => r.kernel === WEIGHT_GRADIENT_KERNELS)!.candidate;
        timed.push(candidate);
        return candidate === splitCandidate(fastest) ? 1 : 100 + timed.length; // the rest all slower
      };
      const tuning = await tuneConvolutions(gpu, [G], async (g) => void await backward(gpu, g), {
        repeats: 1,
        cacheDir,
        time,
      });
      deepStrictEqual(timed, SPLIT_TARGETS.map(splitCandidate), "every candidate measured, in order");
      strictEqual(tuning.targets[geometryKey(G)], fastest, "the fastest kept");
      strictEqual(tunedTarget(gpu, G), fastest, "in force on the device");
      strictEqual(tuning.cached, false);
      const saved = JSON.parse(await Deno.readTextFile(tuningPath(gpu, cacheDir)));
      deepStrictEqual(saved, { adapter: gpu.adapterKey, targets: tuning.targets }, "written per adapter");
      // A fresh device of the same adapter loads it; a file naming another adapter is ignored.
      const again = countingGpu({ kernels: "gpu" });
      strictEqual((await loadTuning(again, cacheDir))?.targets[geometryKey(G)], fastest);
      await Deno.writeTextFile(
        tuningPath(gpu, cacheDir),
        JSON.stringify({ adapter: "another adapter", targets: tuning.targets }),
      );
      const third = countingGpu({ kernels: "gpu" });
      strictEqual(await loadTuning(third, cacheDir), undefined, "another adapter's file ignored");
      strictEqual(tunedTarget(third, G), undefined);
    } finally {
      await Deno.remove(cacheDir, { recursive: true });
    }
  });
}
