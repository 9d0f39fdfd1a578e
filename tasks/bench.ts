/**
 * `deno task bench`: NiN training and inference examples/sec, per-kernel GPU time and GFLOP/s, and a WGSL
 * matmul roofline measured on the same adapter in the same run.
 *
 * @module
 */
import { parseFlags, pickFlags, runTask } from "./cli.ts";
import { type DispatchRecord, requestGpu } from "../lib/gpu/device.ts";
import { layerShapes, nin } from "../lib/nin.ts";
import { SGD } from "../lib/optim.ts";
import { Random } from "../lib/random.ts";
import { measureRoofline } from "../lib/roofline.ts";
import { Tensor } from "../lib/tensor.ts";
import { trainStep } from "../lib/train.ts";

const FLAGS = pickFlags(
  ["resize", "batch-size", "steps", "warmup", "roofline-size", "micro-batch", "json", "gpu"],
  { resize: 96, "batch-size": 16 },
);

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

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
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

if (import.meta.main) {
  await runTask(async () => {
    const parsed = parseFlags(
      "deno task bench [options]",
      "Measures NiN training and inference throughput, per-kernel GPU time and a matmul roofline.",
      FLAGS,
      Deno.args,
    );
    if (!parsed) return;
    const flags = parsed.values;
    const log = (line: string) => flags.json ? undefined : console.log(line);
    const batch = flags["batch-size"], size = flags.resize;
    const gpu = await requestGpu({ engine: flags.gpu });
    const net = nin(gpu, { seed: 0 });
    layerShapes(net, [batch, 1, size, size]);
    log(`device: ${gpu.adapterName} (${gpu.engine}${gpu.isSoftware ? ", software adapter" : ""})`);
    const roofline = await measureRoofline(gpu, flags["roofline-size"]);
    log(`roofline: ${roofline.gflops.toFixed(1)} GFLOP/s (WGSL matmul ${roofline.size}^3, register-blocked)`);

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
        resize: size,
        batch_size: batch,
        train_examples_per_s: batch / trainSeconds,
        infer_examples_per_s: batch / inferSeconds,
        roofline_gflops: roofline.gflops,
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
