/**
 * `deno task bench`: NiN training and inference examples/sec, per-kernel GPU time and GFLOP/s, and a WGSL
 * matmul roofline measured on the same adapter in the same run. With `--plan`, the launch plan instead: every
 * dispatch of one training step, traced on the counting device (no adapter, no kernel runs).
 *
 * @module
 */
import { checkFlag, pickFlags, runTask } from "./cli.ts";
import { type DispatchRecord, type Gpu, kernelChoice, requestGpu } from "../lib/gpu/device.ts";
import { countingGpu } from "../lib/gpu/counting.ts";
import { type LayerShape, layerShapes, nin } from "../lib/nin.ts";
import { Conv2d } from "../lib/layers/conv2d.ts";
import { microBatchSize } from "../lib/microbatch.ts";
import { geometryKey, loadTuning, tuneConvolutions } from "../lib/tuning.ts";
import { SGD } from "../lib/optim.ts";
import { Random } from "../lib/random.ts";
import { measureRoofline } from "../lib/roofline.ts";
import { probeAccessCosts } from "../lib/probe.ts";
import { Tensor } from "../lib/tensor.ts";
import { trainStep } from "../lib/train.ts";
import { median } from "../lib/median.ts";
import { LAUNCH_RULE, PLAN_BINDING_BYTES, planTrainingStep } from "../lib/plan.ts";

/** The task's `--help` and flags. */
const TASK = {
  usage: "deno task bench [options]",
  summary: "Measures NiN training and inference throughput, per-kernel GPU time and a matmul roofline.",
  flags: pickFlags(
    [
      "resize",
      "batch-size",
      "steps",
      "warmup",
      "roofline-size",
      "micro-batch",
      "json",
      "plan",
      "probe",
      "tune",
      "gpu",
      "kernels",
    ],
    { resize: 96, "batch-size": 16 },
  ),
};

/** Traces one training step of NiN on a counting device: every dispatch, with the share meeting {@link LAUNCH_RULE}. */
async function plan(gpu: Gpu, batch: number, size: number, microBatch: number | undefined) {
  const net = nin(gpu, { seed: 0 });
  const input = [batch, 1, size, size];
  checkFlag("--resize", size, () => layerShapes(net, input));
  const p = await planTrainingStep(gpu, net, input, microBatch);
  net.dispose();
  return {
    device: gpu.describe(),
    kernel_family: gpu.kernels,
    resize: size,
    batch_size: batch,
    micro_batch: p.microBatch,
    total_flops: p.totalFlops,
    rule: { min_workgroups: LAUNCH_RULE.minWorkgroups, min_workgroup_size: LAUNCH_RULE.minWorkgroupSize },
    flops_share_meeting_rule: p.flopsShareMeetingRule,
    dispatches_meeting_rule: p.dispatchesMeetingRule,
    dispatches: p.dispatches.map((d) => ({
      kernel: d.kernel,
      workgroups: d.workgroups,
      workgroup_size: d.workgroupSize,
      flops: d.flops,
    })),
  };
}

/**
 * The gpu family's per-adapter choices (lib/tuning.ts): measured now with `--tune`, else read from the cache;
 * described for the report.
 */
async function tune(
  gpu: Gpu,
  shapes: LayerShape[],
  input: number[],
  measure: boolean | undefined,
  requestedMicroBatch: number | undefined,
) {
  if (gpu.kernels !== "gpu") {
    return { text: "none (only the gpu kernel family has tuned choices)", json: null };
  }
  const micro = microBatchSize(shapes, input, gpu.limits.maxStorageBufferBindingSize, requestedMicroBatch);
  const geometries = shapes.flatMap((row, i) => {
    if (!(row.layer instanceof Conv2d)) return [];
    const [, ...image] = i === 0 ? input : shapes[i - 1].shape;
    return [row.layer.geometry([micro, ...image])];
  });
  const tuning = measure
    ? await tuneConvolutions(gpu, geometries, async (g) => {
      const conv = new Conv2d(gpu, g.inChannels, g.outChannels, g.kernel, g.stride, g.padding);
      const x = Tensor.zeros(gpu, [g.n, g.inChannels, g.height, g.width]);
      const dy = Tensor.zeros(gpu, [g.n, g.outChannels, g.outHeight, g.outWidth]);
      conv.forward(x, { training: true, step: 0, sampleOffset: 0 }).dispose();
      conv.backward(dy, g.stride === 1)?.dispose();
      await gpu.sync();
      for (const t of [x, dy]) t.dispose();
      conv.dispose();
    })
    : await loadTuning(gpu);
  const used = geometries.filter((g) => tuning?.targets[geometryKey(g)] !== undefined).length;
  const text = !tuning
    ? "no cached choice for this adapter (deno task bench --kernels gpu --tune measures and caches them)"
    : `${
      tuning.cached ? "cached choice used" : "measured now and cached"
    } for ${used} of ${geometries.length} ` +
      `convolutions (${tuning.path})`;
  return {
    text,
    json: tuning
      ? { cached: tuning.cached, path: tuning.path, layers_tuned: used, targets: tuning.targets }
      : null,
  };
}

/** Per-kernel totals over one profiled step. */
interface KernelFigure {
  name: string;
  phase: "train" | "infer";
  calls: number;
  ms: number;
  gflop: number;
  gflops: number;
  roofline_share: number;
}

function summarize(records: DispatchRecord[], phase: "train" | "infer", roofline: number): KernelFigure[] {
  const byName = new Map<string, { calls: number; ns: number; flops: number }>();
  for (const r of records) {
    const entry = byName.get(r.kernel) ?? { calls: 0, ns: 0, flops: 0 };
    entry.calls += 1;
    entry.ns += r.ns;
    entry.flops += r.flops;
    byName.set(r.kernel, entry);
  }
  return [...byName].map(([name, e]) => {
    const gflops = e.flops / e.ns;
    return {
      name,
      phase,
      calls: e.calls,
      ms: e.ns / 1e6,
      gflop: e.flops / 1e9,
      gflops,
      roofline_share: gflops / roofline,
    };
  }).sort((a, b) => b.ms - a.ms);
}

/** `--probe`: the access costs of lib/probe.ts, as a table or JSON. */
async function probe(gpu: Gpu, json: boolean | undefined): Promise<void> {
  const p = await probeAccessCosts(gpu);
  gpu.destroy();
  if (json) return console.log(JSON.stringify({ device: gpu.describe(), ...p }));
  console.log(`device: ${gpu.describe()}`);
  console.log(
    `one vec4 operand access inside a 12x8-blocked GEMM loop, ns per invocation-step (all threads together);` +
      ` one four-wide FMA costs ${p.nsPerFma.toFixed(2)} ns`,
  );
  console.log("access".padEnd(24) + "ns".padStart(8) + "FMAs".padStart(8));
  for (const c of p.costs.slice(1)) {
    console.log(
      c.kind.padEnd(24) + c.nsPerAccess.toFixed(2).padStart(8) +
        (c.nsPerAccess / p.nsPerFma).toFixed(1).padStart(8),
    );
  }
  if (!gpu.readOnlyStorageTextures) console.log("(this adapter has no read-only storage textures)");
}

if (import.meta.main) {
  await runTask(TASK, async (flags) => {
    const log = (line: string) => flags.json ? undefined : console.log(line);
    const batch = flags["batch-size"], size = flags.resize;
    const kernels = flags.kernels;
    if (flags.plan) {
      const counting = countingGpu({
        kernels: kernelChoice(kernels),
        maxStorageBufferBindingSize: PLAN_BINDING_BYTES,
      });
      const p = await plan(counting, batch, size, flags["micro-batch"]);
      if (flags.json) return console.log(JSON.stringify(p));
      log(
        `plan: one training step, ${p.kernel_family} kernels, batch ${batch} (micro-batch ${p.micro_batch}), ${size}x${size}`,
      );
      log("kernel".padEnd(32) + "workgroups".padStart(12) + "size".padStart(6) + "GFLOP".padStart(10));
      for (const d of p.dispatches) {
        log(
          d.kernel.padEnd(32) + String(d.workgroups).padStart(12) + String(d.workgroup_size).padStart(6) +
            (d.flops / 1e9).toFixed(3).padStart(10),
        );
      }
      log(
        `${p.dispatches.length} dispatches, ${(p.total_flops / 1e9).toFixed(1)} GFLOP; ` +
          `${(100 * p.flops_share_meeting_rule).toFixed(2)}% of the FLOPs in dispatches of >= ` +
          `${LAUNCH_RULE.minWorkgroups} workgroups of >= ${LAUNCH_RULE.minWorkgroupSize} invocations`,
      );
      return;
    }
    const gpu = await requestGpu({ engine: flags.gpu, kernels });
    if (flags.probe) return await probe(gpu, flags.json);
    const net = nin(gpu, { seed: 0 });
    const input = [batch, 1, size, size];
    const shapes = checkFlag("--resize", size, () => layerShapes(net, input, true));
    log(`device: ${gpu.describe()}`);
    const tuning = await tune(gpu, shapes, input, flags.tune, flags["micro-batch"]);
    log(`tuning: ${tuning.text}`);
    const roofline = await measureRoofline(gpu, flags["roofline-size"]);
    log(
      `roofline: ${
        roofline.gflops.toFixed(1)
      } GFLOP/s (${roofline.name}, the fastest WGSL matmul of ${roofline.size}^3` +
        ` here; ${roofline.candidates.map((c) => `${c.name} ${c.gflops.toFixed(1)}`).join(", ")})`,
    );

    const rng = new Random(1);
    const images = Tensor.fromArray(gpu, rng.uniformArray(batch * size * size, 0, 1), [batch, 1, size, size]);
    const labels = Int32Array.from({ length: batch }, () => rng.int(10));
    const opt = new SGD(net.parameters(), { lr: 0.01 });
    const microBatch = flags["micro-batch"];

    const timeSteps = async (step: () => Promise<void>) => {
      for (let i = 0; i < flags.warmup; i++) await step();
      const seconds: number[] = [];
      for (let i = 0; i < flags.steps; i++) {
        const start = performance.now();
        await step();
        seconds.push((performance.now() - start) / 1000);
      }
      return median(seconds);
    };
    const train = async () => void await trainStep(net, opt, images, labels, { microBatch });
    const infer = async () => {
      net.eval();
      const logits = net.forward(images);
      await logits.toArray();
      logits.dispose();
      net.train();
    };
    const trainSeconds = await timeSteps(train);
    log(
      `train: ${(batch / trainSeconds).toFixed(1)} examples/s (${(trainSeconds * 1000).toFixed(0)} ms/step)`,
    );
    const inferSeconds = await timeSteps(infer);
    log(
      `infer: ${(batch / inferSeconds).toFixed(1)} examples/s (${(inferSeconds * 1000).toFixed(0)} ms/batch)`,
    );

    const trainKernels = summarize(await gpu.trace(train, { timed: true }), "train", roofline.gflops);
    const inferKernels = summarize(await gpu.trace(infer, { timed: true }), "infer", roofline.gflops);
    const timing = gpu.profiler.method;
    for (
      const [phase, kernels] of [["training step", trainKernels], ["inference pass", inferKernels]] as const
    ) {
      const total = kernels.reduce((s, k) => s + k.ms, 0);
      log(`\n${phase}: per-kernel time (${timing}), total ${total.toFixed(1)} ms`);
      log(
        "kernel".padEnd(32) + "calls".padStart(6) + "ms".padStart(10) + "share".padStart(8) +
          "GFLOP/s".padStart(10) + "of roofline".padStart(13),
      );
      for (const k of kernels) {
        log(
          k.name.padEnd(32) + String(k.calls).padStart(6) + k.ms.toFixed(2).padStart(10) +
            `${(100 * k.ms / total).toFixed(1)}%`.padStart(8) + k.gflops.toFixed(2).padStart(10) +
            `${(100 * k.roofline_share).toFixed(0)}%`.padStart(13),
        );
      }
    }
    if (flags.json) {
      console.log(JSON.stringify({
        device: gpu.adapterName,
        engine: gpu.engine,
        kernel_family: gpu.kernels,
        resize: size,
        batch_size: batch,
        train_examples_per_s: batch / trainSeconds,
        infer_examples_per_s: batch / inferSeconds,
        roofline_gflops: roofline.gflops,
        roofline_kernel: roofline.name,
        roofline_candidates: roofline.candidates.map((c) => ({ name: c.name, gflops: c.gflops })),
        tuning: tuning.json,
        timing,
        kernels: [...trainKernels, ...inferKernels],
      }));
    }
    images.dispose();
    opt.dispose();
    net.dispose();
    gpu.destroy();
  });
}
