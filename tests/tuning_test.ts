// Per-adapter tuning: the gpu family's choices (GEMM candidate per pass, split-K target) and the software
// family's (convolution candidate per pass) are measured, cached per adapter and family, loaded, and change
// what the passes run.
import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { countingGpu } from "../lib/gpu/counting.ts";
import type { DispatchRecord, Gpu } from "../lib/gpu/device.ts";
import { Conv2d } from "../lib/layers/conv2d.ts";
import type { ConvGeometry } from "../lib/layers/conv2d_passes.ts";
import { appliesTo, fitsDevice, GEMM_CANDIDATES } from "../lib/layers/conv2d_gpu_candidates.ts";
import { defaultChoice } from "../lib/layers/conv2d_gpu.ts";
import { Tensor } from "../lib/tensor.ts";
import { SOFTWARE_CONV_CANDIDATES } from "../lib/kernel_candidates.ts";
import {
  applyTuning,
  choiceName,
  GEMM_PASSES,
  geometryKey,
  type PassChoice,
  SPLIT_TARGETS,
  tunedChoice,
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

/** One forward and backward of a layer of geometry `g`, each GEMM pass in its phase; returns the records. */
async function step(gpu: Gpu, g: ConvGeometry): Promise<DispatchRecord[]> {
  const conv = new Conv2d(gpu, g.inChannels, g.outChannels, g.kernel, g.stride, g.padding);
  const x = Tensor.zeros(gpu, [g.n, g.inChannels, g.height, g.width]);
  const dy = Tensor.zeros(gpu, [g.n, g.outChannels, g.outHeight, g.outWidth]);
  const records = await gpu.trace(async () => {
    gpu.inPhase("forward", () => conv.forward(x, { training: true, step: 0, sampleOffset: 0 }).dispose());
    gpu.inPhase("input gradient", () => conv.backward(dy)!.dispose());
    await gpu.sync();
  });
  for (const t of [x, dy]) t.dispose();
  conv.dispose();
  return records;
}

/** The weight gradient's dispatches as `kernel:workgroups:candidate`. */
async function weightGradient(gpu: Gpu, g: ConvGeometry): Promise<string[]> {
  return (await step(gpu, g)).filter((r) => r.kernel.startsWith("conv2d_gpu_backward_weight")).map((r) =>
    `${r.kernel}:${r.workgroups}:${r.candidate}`
  );
}

Deno.test("tuning: a cached choice for this adapter is loaded and sets the weight gradient's candidate and split", async () => {
  const cacheDir = await Deno.makeTempDir();
  try {
    const gpu = countingGpu({ kernels: "gpu" });
    strictEqual(await loadTuning(gpu, cacheDir), undefined, "nothing cached yet");
    const model = defaultChoice(gpu, G, "weight gradient");
    strictEqual((await weightGradient(gpu, G))[0].split(":")[2], choiceName(model), "the model's default");
    const path = tuningPath(gpu, cacheDir);
    await Deno.mkdir(`${cacheDir}/tuning`);
    const chosen = { candidate: GEMM_CANDIDATES[0].name, target: 1 };
    await Deno.writeTextFile(
      path,
      JSON.stringify({
        adapter: gpu.adapterKey,
        kernels: "gpu",
        choices: { [geometryKey(G)]: { "weight gradient": chosen } },
      }),
    );
    const tuning = await loadTuning(gpu, cacheDir);
    ok(tuning?.cached, "read from the cache");
    deepStrictEqual(tunedChoice(gpu, G, "weight gradient"), chosen);
    // 36 columns x 8 channels in one 64 x 64 tile, no split: one dispatch straight into dw.
    deepStrictEqual(await weightGradient(gpu, G), [
      `conv2d_gpu_backward_weight:1:${GEMM_CANDIDATES[0].name} split-K 1`,
    ]);
    // A choice this device cannot run (workgroup memory over its 16 KiB), an unknown name or split-K target,
    // is dropped.
    const big = GEMM_CANDIDATES.find((c) => !fitsDevice(c, gpu.limits))!;
    await Deno.writeTextFile(
      path,
      JSON.stringify({
        adapter: gpu.adapterKey,
        kernels: "gpu",
        choices: {
          [geometryKey(G)]: {
            forward: { candidate: big.name, target: 1 },
            "input gradient": { candidate: "9x9", target: 1 },
            "weight gradient": { candidate: GEMM_CANDIDATES[0].name, target: 7 },
          },
        },
      }),
    );
    deepStrictEqual((await loadTuning(gpu, cacheDir))?.choices, {}, "unusable choices dropped");
    // Another adapter's file, or a damaged one, is not used.
    const other = countingGpu({ kernels: "gpu", software: true });
    const damaged = tuningPath(other, cacheDir);
    await Deno.writeTextFile(damaged, "{ not json");
    const notes: string[] = [];
    strictEqual(await loadTuning(other, cacheDir, (n) => notes.push(n)), undefined, "damaged cache not used");
    strictEqual(notes.length, 1, "one note");
    ok(
      notes[0].startsWith(`note: removed the damaged tuning cache ${damaged} (`) &&
        notes[0].endsWith("until `deno task bench --tune` measures them again"),
      notes[0],
    );
    strictEqual(await Deno.stat(damaged).catch(() => null), null, "removed, so --tune writes it anew");
  } finally {
    await Deno.remove(cacheDir, { recursive: true });
  }
});

// The tuner's choice is checked against a timer whose figures the test sets: the candidate (and split-K
// target) in force shows in each GEMM dispatch's record, and the tuner must keep, per pass, the fastest.
const RUNNABLE = GEMM_CANDIDATES.filter((c) =>
  fitsDevice(c, countingGpu({ kernels: "gpu" }).limits) && appliesTo(c, G, "forward")
);
for (
  const [forward, input, weight] of [
    [
      { candidate: RUNNABLE[1].name, target: SPLIT_TARGETS[0] },
      { candidate: RUNNABLE.at(-1)!.name, target: SPLIT_TARGETS[2] },
      { candidate: RUNNABLE[0].name, target: SPLIT_TARGETS[1] },
    ],
    [
      { candidate: RUNNABLE[0].name, target: SPLIT_TARGETS[3] },
      { candidate: RUNNABLE[1].name, target: SPLIT_TARGETS[0] },
      { candidate: RUNNABLE.at(-1)!.name, target: SPLIT_TARGETS.at(-1)! },
    ],
  ] as const
) {
  const fastest: Record<string, PassChoice> = {
    "forward": forward,
    "input gradient": input,
    "weight gradient": weight,
  };
  Deno.test(`tuning: --tune keeps the fastest candidate per pass (${Object.values(fastest).map(choiceName).join(", ")}) and caches it`, async () => {
    const cacheDir = await Deno.makeTempDir();
    try {
      const gpu = countingGpu({ kernels: "gpu" });
      const timed: Record<string, string[]> = { "forward": [], "input gradient": [], "weight gradient": [] };
      const time = (records: DispatchRecord[]) => {
        const gemm = records.find((r) => r.candidate !== "")!;
        const pass = gemm.phase;
        timed[pass].push(gemm.candidate);
        // The fastest at 1 ns; the rest all slower, each differently.
        return gemm.candidate === choiceName(fastest[pass]) ? 1 : 100 + timed[pass].length;
      };
      const every = RUNNABLE.flatMap((c) =>
        SPLIT_TARGETS.map((target) => choiceName({ candidate: c.name, target }))
      );
      const tuning = await tuneConvolutions(gpu, [G], async (g) => void await step(gpu, g), {
        repeats: 1,
        cacheDir,
        time,
      });
      deepStrictEqual(
        timed,
        {
          "forward": every,
          "input gradient": every,
          "weight gradient": every,
        },
        "every runnable candidate and split-K target measured, in order; none beyond the device's limits",
      );
      deepStrictEqual(tuning.choices[geometryKey(G)], fastest, "the fastest kept, per pass");
      for (const pass of GEMM_PASSES) deepStrictEqual(tunedChoice(gpu, G, pass), fastest[pass], "in force");
      // What runs now is the tuned choice.
      const ran = (await step(gpu, G)).filter((r) => r.candidate !== "").map((r) => [r.phase, r.candidate]);
      deepStrictEqual(
        Object.fromEntries(ran),
        Object.fromEntries(GEMM_PASSES.map((pass) => [pass, choiceName(fastest[pass])])),
        "the tuned candidates run",
      );
      strictEqual(tuning.cached, false);
      const saved = JSON.parse(await Deno.readTextFile(tuningPath(gpu, cacheDir)));
      deepStrictEqual(
        saved,
        { adapter: gpu.adapterKey, kernels: "gpu", choices: tuning.choices },
        "written per adapter and family",
      );
      // A fresh device of the same adapter loads it; a file naming another adapter is ignored.
      const again = countingGpu({ kernels: "gpu" });
      deepStrictEqual((await loadTuning(again, cacheDir))?.choices[geometryKey(G)], fastest);
      await Deno.writeTextFile(
        tuningPath(gpu, cacheDir),
        JSON.stringify({ adapter: "another adapter", kernels: "gpu", choices: tuning.choices }),
      );
      const third = countingGpu({ kernels: "gpu" });
      strictEqual(await loadTuning(third, cacheDir), undefined, "another adapter's file ignored");
      strictEqual(tunedChoice(third, G, "forward"), undefined);
    } finally {
      await Deno.remove(cacheDir, { recursive: true });
    }
  });
}

// The software family tunes the same way: each convolution candidate (lib/kernel_candidates.ts) per pass,
// unsplit. Its GEMM kernels are named by candidate: `..._RxC` for a texture block, no suffix for buffers.
function softwareCandidateOf(records: DispatchRecord[]): string {
  const gemm = records.find((r) =>
    /^conv2d_(texture_)?(forward|backward_input|backward_weight)/.test(r.kernel)
  );
  const block = gemm?.kernel.match(/_(\d+x\d+)$/)?.[1];
  return block ? `texture ${block}` : gemm ? "buffer" : "none";
}

Deno.test("tuning: the software family's --tune keeps the fastest candidate per pass, runs it and caches it per family", async () => {
  const cacheDir = await Deno.makeTempDir();
  try {
    const gpu = countingGpu({ kernels: "software" });
    const fastest: Record<string, string> = {
      "forward": "texture 8x16",
      "input gradient": "buffer",
      "weight gradient": "texture 4x32",
    };
    const timed: Record<string, string[]> = { "forward": [], "input gradient": [], "weight gradient": [] };
    const time = (records: DispatchRecord[]) => {
      const pass = records[0].phase;
      const candidate = softwareCandidateOf(records);
      timed[pass].push(candidate);
      return candidate === fastest[pass] ? 1 : 100 + timed[pass].length;
    };
    const tuning = await tuneConvolutions(gpu, [G], async (g) => void await step(gpu, g), {
      repeats: 1,
      cacheDir,
      time,
    });
    const every = SOFTWARE_CONV_CANDIDATES.map((c) => c.name);
    deepStrictEqual(timed, { "forward": every, "input gradient": every, "weight gradient": every });
    const chosen = Object.fromEntries(
      GEMM_PASSES.map((pass) => [pass, { candidate: fastest[pass], target: 1 }]),
    );
    deepStrictEqual(tuning.choices[geometryKey(G)], chosen, "the fastest kept, per pass");
    const records = await step(gpu, G);
    deepStrictEqual(
      Object.fromEntries(
        GEMM_PASSES.map((pass) => [pass, softwareCandidateOf(records.filter((r) => r.phase === pass))]),
      ),
      fastest,
      "the tuned candidates run",
    );
    const saved = JSON.parse(await Deno.readTextFile(tuningPath(gpu, cacheDir)));
    deepStrictEqual(saved, { adapter: gpu.adapterKey, kernels: "software", choices: tuning.choices });
    deepStrictEqual(
      (await loadTuning(countingGpu({ kernels: "software" }), cacheDir))?.choices,
      tuning.choices,
    );
    // The other family of the same adapter keeps its own file, and refuses this one's text.
    const gpuFamily = countingGpu({ kernels: "gpu" });
    ok(tuningPath(gpuFamily, cacheDir) !== tuningPath(gpu, cacheDir), "a file per family");
    strictEqual(
      applyTuning(gpuFamily, JSON.stringify(saved), "x"),
      undefined,
      "another family's file ignored",
    );
  } finally {
    await Deno.remove(cacheDir, { recursive: true });
  }
});
