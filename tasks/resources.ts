/**
 * `deno task resources`: answers the chapter's exercise 3 (parameters, computation, memory for training and
 * for prediction) for a NiN configuration: the real model, `predictClasses` and `trainStep` run on the
 * counting device (exact, no adapter) and, unless `--no-measure`, the same run on the GPU next to it.
 *
 * @module
 */
import { checkFlag, pickFlags, runTask } from "./cli.ts";
import { countingGpu, countingLimits } from "../lib/gpu/counting.ts";
import { type Gpu, type KernelFamily, mib } from "../lib/gpu/device.ts";
import { formatShape, NinError } from "../lib/errors.ts";
import { nin } from "../lib/nin.ts";
import {
  analyzeResources,
  DEFAULT_MAX_BINDING_BYTES,
  MAC_CONVENTION,
  type PassResources,
  type ResourceOptions,
  type ResourceRun,
  type Resources,
  runResources,
} from "../lib/resources.ts";
import { summary, textTable } from "../lib/summary.ts";

/** The task's `--help` and flags. */
const TASK = {
  usage: "deno task resources [options]",
  summary:
    "Parameters, MACs/FLOPs and peak GPU memory of NiN for training and prediction (the chapter's exercise 3),\n" +
    `counted by running the real code on a counting device, and measured on the GPU. ${MAC_CONVENTION}.`,
  flags: pickFlags([
    "batch-size",
    "resize",
    "one-by-one-convs",
    "head",
    "momentum",
    "micro-batch",
    "max-binding-bytes",
    "measure-batch-size",
    "no-measure",
    "compare",
    "json",
    "gpu",
    "kernels",
  ]),
};

/** FLOPs a software adapter (llvmpipe: about 3 GFLOP/s) gets through in about 5 s. */
const SOFTWARE_MEASURE_FLOPS = 1.5e10;

const int = (n: number) => n.toLocaleString("en-US");
const giga = (flops: number) => (flops / 1e9).toFixed(flops >= 1e11 ? 1 : 3);
const percent = (x: number) => `${x >= 0 ? "+" : ""}${(100 * x).toFixed(2)}%`;

/** The same configuration run on the counting device and on the GPU. */
interface Measurement {
  device: string;
  maxBindingBytes: number;
  counted: ResourceRun;
  measured: ResourceRun;
}

interface Config {
  resources: Resources;
  measurement: Measurement | null;
}

/** The same kernels, workgroups and FLOPs in the same order. */
function sameDispatches(a: PassResources, b: PassResources): boolean {
  const key = (p: PassResources) =>
    JSON.stringify(p.dispatches.map((d) => [d.kernel, d.workgroups, d.flops]));
  return key(a) === key(b);
}

function passJson(counted: PassResources, measured: PassResources) {
  return {
    predicted_bytes: counted.bytes,
    measured_bytes: measured.bytes,
    relative_difference: (measured.bytes - counted.bytes) / counted.bytes,
    predicted_flops: counted.flops.total,
    dispatched_flops: measured.flops.total,
    same_dispatches: sameDispatches(counted, measured),
    micro_batch: measured.microBatch,
    seconds: measured.seconds,
  };
}

/** The `--json` object of one configuration: the same objects the text is made of, in snake_case. */
function toJson({ resources: r, measurement: m }: Config) {
  const o = r.run.options;
  const same = m !== null && m.measured.options.batchSize === o.batchSize &&
    m.maxBindingBytes === r.device.maxBindingBytes;
  const memory = (pass: PassResources, measured: PassResources | undefined) => ({
    predicted_bytes: pass.bytes,
    measured_bytes: same ? measured!.bytes : null,
    micro_batch: pass.microBatch,
    micro_batches: pass.microBatches,
    peak_at: pass.peakAt,
    // Categories are words ("input batch"); as JSON keys, snake_case like every other key.
    breakdown: Object.fromEntries(
      Object.entries(pass.breakdown).map(([k, v]) => [k.replace(/[ -]/g, "_"), v]),
    ),
  });
  return {
    convention: MAC_CONVENTION,
    config: {
      batch_size: o.batchSize,
      resize: o.resize,
      one_by_one_convs: o.oneByOneConvs,
      head: o.head,
      momentum: o.momentum ?? 0,
      micro_batch: o.microBatch ?? null,
      max_binding_bytes: r.device.maxBindingBytes,
      kernels: r.device.kernels,
      input_shape: r.run.inputShape,
    },
    params: r.params,
    layers: r.layers.map((l) => ({
      index: l.name,
      type: l.type,
      output_shape: l.outputShape,
      params: l.params,
      macs: l.macsPerImage,
      flops: l.flops,
      train_flops: l.trainFlops,
      saved_bytes: l.savedBytes,
      fused_into: l.fusedInto ?? null,
    })),
    forward: {
      macs: r.forward.macs,
      flops: r.forward.flops,
      macs_per_image: r.forward.macsPerImage,
      flops_per_image: r.forward.flopsPerImage,
    },
    train_step: {
      forward: r.trainStep.forward,
      input_gradients: r.trainStep.inputGradients,
      weight_gradients: r.trainStep.weightGradients,
      loss: r.trainStep.loss,
      optimizer: r.trainStep.optimizer,
      flops: r.trainStep.total,
    },
    memory: {
      inference: memory(r.run.inference, m?.measured.inference),
      training: memory(r.run.training, m?.measured.training),
    },
    measurement: m && {
      device: m.device,
      batch_size: m.measured.options.batchSize,
      resize: m.measured.options.resize,
      max_binding_bytes: m.maxBindingBytes,
      inference: passJson(m.counted.inference, m.measured.inference),
      training: passJson(m.counted.training, m.measured.training),
    },
  };
}

const breakdownText = (pass: PassResources) =>
  Object.entries(pass.breakdown).map(([what, bytes]) => `${what} ${mib(bytes)}`).join(" + ");
const splitText = (pass: PassResources) =>
  pass.microBatches === 1 ? "one pass" : `${pass.microBatches} micro-batches of up to ${pass.microBatch}`;

function report({ resources: r, measurement: m }: Config, gpu: Gpu | null, fullSeconds: number | null) {
  const o = r.run.options;
  const b = o.batchSize;
  const lines = [
    `NiN resources: batch ${b}, input ${formatShape(r.run.inputShape.slice(1))}, ${o.oneByOneConvs} 1x1 ` +
    `convs per block, ${o.head} head, SGD momentum ${o.momentum ?? 0}`,
    `Convention: ${MAC_CONVENTION}. FLOPs are those the kernels declare to gpu.dispatch: convolutions count ` +
    `2 per MAC (bias adds and the fused ReLU not counted); pooling, dropout, loss and SGD as documented in ` +
    `their files.`,
    "",
  ];
  const header = ["index", "type", "output shape", "params", "MACs/img", "FLOPs/img", "train FLOPs/img"];
  const rows = r.layers.map((l) => [
    l.name,
    l.type,
    formatShape(l.outputShape),
    int(l.params),
    int(l.macsPerImage),
    l.fusedInto ? `fused into ${l.fusedInto}` : int(l.flops),
    l.fusedInto ? "" : int(l.trainFlops),
    l.savedBytes ? mib(l.savedBytes) : "-",
  ]);
  lines.push(...textTable([[...header, "kept for backward"], ...rows], [3, 4, 5, 6, 7]));
  const { inference, training } = r.run;
  if (training.microBatches > 1) {
    lines.push(`("kept for backward" is per training micro-batch of ${training.microBatch}.)`);
  }
  const t = r.trainStep;
  const ratio = (t.total / r.forward.flops).toFixed(2);
  lines.push(
    "",
    "Totals",
    `  parameters: ${int(r.params.count)} (${mib(r.params.bytes)} as float32)`,
    `  forward pass: ${giga(r.forward.macsPerImage)} GMACs = ${giga(r.forward.flopsPerImage)} GFLOPs per ` +
      `image; ${giga(r.forward.macs)} GMACs = ${giga(r.forward.flops)} GFLOPs per batch of ${b}`,
    `  training step (batch ${b}): forward ${giga(t.forward)} + input gradients ` +
      `${giga(t.inputGradients)} + weight gradients ${giga(t.weightGradients)} + loss ${giga(t.loss)} + ` +
      `SGD ${giga(t.optimizer)} = ${giga(t.total)} GFLOPs (${ratio}x the inference forward pass)`,
    "",
    `Memory at batch ${b} (peak live GPU bytes; bindings of at most ${mib(r.device.maxBindingBytes)}, ` +
      `${gpu ? "this device's limit" : "WebGPU's default limit"}; ${r.device.kernels} kernels)`,
    `  prediction (predictClasses, ${splitText(inference)}): ${mib(inference.bytes)} at the ` +
      inference.peakAt,
    `    = ${breakdownText(inference)}`,
    `  training (trainStep, ${splitText(training)}): ${mib(training.bytes)} at the ${training.peakAt}`,
    `    = ${breakdownText(training)}`,
  );
  if (m) {
    const mb = m.measured.options.batchSize;
    lines.push("", `Counting device and ${m.device}, batch ${mb}, ${o.resize}x${o.resize}, the same run:`);
    if (mb !== b) {
      lines.push(
        `  (the figures above are for batch ${b}; this software adapter measures batch ${mb} instead so the ` +
          `run takes seconds: pass --measure-batch-size ${b} to measure the full batch` +
          (fullSeconds ? `, about ${Math.ceil(fullSeconds / 60)} min here)` : ")"),
      );
    }
    for (const what of ["inference", "training"] as const) {
      const j = passJson(m.counted[what], m.measured[what]);
      const [counted, measured, name] = [
        j.predicted_bytes,
        j.measured_bytes,
        what.replace("inference", "prediction"),
      ];
      const flops = `${int(j.predicted_flops)} ${j.predicted_flops === j.dispatched_flops ? "==" : "!="} ` +
        `dispatched ${int(j.dispatched_flops)}`;
      const same = j.same_dispatches ? "the same" : "NOT the same";
      lines.push(
        `  ${name.padEnd(10)} counted ${mib(counted)} (${int(counted)} B), measured ${mib(measured)} ` +
          `(${int(measured)} B), difference ${percent(j.relative_difference)}; FLOPs counted ${flops}; ` +
          `${m.measured[what].dispatches.length} dispatches, ${same} on both; ${j.seconds.toFixed(2)} s`,
      );
    }
  } else {
    lines.push("", "Not measured (--no-measure).");
  }
  lines.push(
    "",
    `Exercise 3 (batch ${b}, ${o.resize}x${o.resize} inputs):`,
    `  1. Parameters: ${int(r.params.count)}, ${mib(r.params.bytes)} as float32.`,
    `  2. Computation: ${giga(r.forward.macsPerImage)} GMACs (${giga(r.forward.flopsPerImage)} GFLOPs) per ` +
      `image for a prediction; a training step on ${b} images is ${giga(t.total)} GFLOPs.`,
    `  3. Memory for training: ${mib(training.bytes)} at batch ${b} (parameters, their gradients` +
      `${o.momentum ? ", momentum buffers" : ""}, the activations and pooling indices kept for backward ` +
      `and the gradients in flight).`,
    `  4. Memory for prediction: ${mib(inference.bytes)} at batch ${b}, ${mib(r.single.inference.bytes)} ` +
      `for one image (parameters, input and the largest live activations).`,
  );
  return lines;
}

function compareReport(configs: Config[], device: string | null): string[] {
  const first = configs[0].resources.run.options;
  const measured = configs[0].measurement !== null;
  const header = ["1x1 convs/block", "params", "GMACs/img", "GFLOPs/img", "train step GFLOPs"];
  header.push("prediction memory", "training memory");
  if (measured) header.push("measured batch", "prediction counted/measured", "training counted/measured");
  const rows = configs.map(({ resources: r, measurement: m }) => {
    const row = [String(r.run.options.oneByOneConvs), int(r.params.count), giga(r.forward.macsPerImage)];
    row.push(giga(r.forward.flopsPerImage), giga(r.trainStep.total), mib(r.run.inference.bytes));
    row.push(mib(r.run.training.bytes));
    if (!m) return row;
    const both = (what: "inference" | "training") =>
      `${mib(m.counted[what].bytes)} / ${mib(m.measured[what].bytes)}`;
    return [...row, String(m.measured.options.batchSize), both("inference"), both("training")];
  });
  return [
    `NiN variants (exercise 2) at batch ${first.batchSize}, ${first.resize}x${first.resize}, ${first.head} head, momentum ` +
    `${first.momentum ?? 0}. ${MAC_CONVENTION}.`,
    "",
    ...textTable([header, ...rows], header.map((_, i) => i).slice(1)),
    ...(measured ? ["", `Measured on ${device}.`] : []),
  ];
}

if (import.meta.main) {
  await runTask(TASK, async (flags) => {
    let gpu: Gpu | null = null;
    if (!flags["no-measure"]) {
      const { requestGpu } = await import("../lib/deno/gpu.ts");
      try {
        gpu = await requestGpu({ engine: flags.gpu, kernels: flags.kernels });
      } catch (e) {
        if (e instanceof NinError) throw new NinError(`${e.message} (or pass --no-measure)`);
        throw e;
      }
    }
    const maxBindingBytes = flags["max-binding-bytes"] ?? gpu?.limits.maxStorageBufferBindingSize ??
      DEFAULT_MAX_BINDING_BYTES;
    const kernels: KernelFamily = gpu?.kernels ?? "software";
    // The plan (GEMM candidates among them) follows the device's limits: count with the measured device's.
    const limits = gpu ? countingLimits(gpu.limits) : undefined;
    const device = gpu ? gpu.describe() : null;
    const configs: Config[] = [];
    let fullSeconds: number | null = null;
    for (const oneByOneConvs of flags.compare ? [2, 1, 0] : [flags["one-by-one-convs"]]) {
      const options: ResourceOptions = {
        batchSize: flags["batch-size"],
        resize: flags.resize,
        oneByOneConvs,
        head: flags.head,
        momentum: flags.momentum,
        microBatch: flags["micro-batch"],
      };
      const shape = [1, 1, options.resize, options.resize];
      checkFlag(
        "--resize",
        flags.resize,
        () => summary(nin(countingGpu(), { oneByOneConvs, head: flags.head }), shape),
      );
      const resources = await analyzeResources({ ...options, maxBindingBytes, kernels, limits });
      let measurement: Measurement | null = null;
      if (gpu) {
        const one = resources.single;
        const perImage = one.inference.flops.total + one.training.flops.total - one.training.flops.optimizer;
        const affordable = Math.floor((SOFTWARE_MEASURE_FLOPS - one.training.flops.optimizer) / perImage);
        const batchSize = flags["measure-batch-size"] ??
          (gpu.isSoftware ? Math.max(1, Math.min(options.batchSize, affordable)) : options.batchSize);
        const limit = gpu.limits.maxStorageBufferBindingSize;
        // At the analyzed batch and binding limit, the counting run is the one analyzeResources made.
        const counted = batchSize === options.batchSize && limit === maxBindingBytes
          ? resources.run
          : await runResources(
            countingGpu({ kernels: gpu.kernels, limits: { ...limits, maxStorageBufferBindingSize: limit } }),
            { ...options, batchSize },
          );
        const measured = await runResources(gpu, { ...options, batchSize });
        measurement = { device: device!, maxBindingBytes: limit, counted, measured };
        const { inference, training } = measured;
        const rate = (inference.flops.total + training.flops.total) / (inference.seconds + training.seconds);
        fullSeconds ??= (resources.forward.flops + resources.trainStep.total) / rate;
      }
      configs.push({ resources, measurement });
    }
    gpu?.destroy();
    if (flags.json) {
      const objects = configs.map(toJson);
      const out = flags.compare ? { convention: MAC_CONVENTION, variants: objects } : objects[0];
      console.log(JSON.stringify(out, null, 2));
    } else if (flags.compare) {
      console.log(compareReport(configs, device).join("\n"));
    } else {
      console.log(report(configs[0], gpu, fullSeconds).join("\n"));
    }
  });
}
