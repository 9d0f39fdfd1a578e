/**
 * `deno task resources`: answers the chapter's exercise 3 (parameters, computation, memory for training and
 * for prediction) for a NiN configuration, predicted from the configuration and measured on the GPU.
 *
 * @module
 */
import { checkFlag, GPU_FLAG, KERNELS_FLAG, parseFlags, runTask } from "./cli.ts";
import type { Engine, Gpu, KernelChoice } from "../lib/gpu/device.ts";
import { formatShape, NinError } from "../lib/errors.ts";
import {
  analyzeResources,
  DEFAULT_MAX_BINDING_BYTES,
  MAC_CONVENTION,
  type MemoryPrediction,
  type ResourceOptions,
  type Resources,
} from "../lib/resources.ts";
import type { Measurement, PassMeasurement } from "../lib/measure.ts";

const FLAGS = {
  "batch-size": { type: "int", default: 128, min: 1, max: 65536, help: "batch size B" },
  "resize": { type: "int", default: 224, min: 1, max: 4096, help: "input height and width" },
  "one-by-one-convs": { type: "int", default: 2, min: 0, max: 8, help: "1x1 convolutions per NiN block" },
  "momentum": { type: "float", default: 0, min: 0, max: 1, maxExclusive: true, help: "SGD momentum" },
  "micro-batch": { type: "int", min: 1, help: "largest training micro-batch (default: what fits a binding)" },
  "max-binding-bytes": {
    type: "int",
    min: 16,
    help: "maxStorageBufferBindingSize to plan micro-batches for (default: the device's, or 134217728)",
  },
  "measure-batch-size": {
    type: "int",
    min: 1,
    max: 65536,
    help: "batch size of the measured passes (default: --batch-size, or on a software adapter the " +
      "largest that measures in about 5 s)",
  },
  "no-measure": { type: "boolean", help: "analytic figures only; needs no GPU adapter" },
  "compare": { type: "boolean", help: "the chapter's model next to its 1- and 0-1x1-conv variants" },
  "json": { type: "boolean", help: "print one JSON object instead of text" },
  "gpu": GPU_FLAG,
  "kernels": KERNELS_FLAG,
} as const;

/** FLOPs a software adapter (llvmpipe: about 3 GFLOP/s) gets through in about 5 s. */
const SOFTWARE_MEASURE_FLOPS = 1.5e10;

const MIB = 2 ** 20;
const int = (n: number) => n.toLocaleString("en-US");
/** Bytes in MiB with one decimal, or in KiB / bytes when that would print 0.0 MiB. */
const mib = (bytes: number) =>
  bytes >= MIB / 20
    ? `${(bytes / MIB).toFixed(1)} MiB`
    : bytes >= 1024
    ? `${(bytes / 1024).toFixed(1)} KiB`
    : `${bytes} B`;
const giga = (flops: number) => (flops / 1e9).toFixed(flops >= 1e11 ? 1 : 3);
const percent = (x: number) => `${x >= 0 ? "+" : ""}${(100 * x).toFixed(2)}%`;

interface Run {
  resources: Resources;
  /** Measured at `measurement.resources.options.batchSize`; null with --no-measure. */
  measurement: Measurement | null;
}

/** The largest batch <= `batch` whose prediction pass and training step stay within `budget` FLOPs. */
function affordableBatch(options: ResourceOptions, batch: number, budget: number): number {
  const one = analyzeResources({ ...options, batchSize: 1 });
  const perImage = one.forward.flops + one.trainStep.total - one.trainStep.optimizer;
  return Math.max(1, Math.min(batch, Math.floor((budget - one.trainStep.optimizer) / perImage)));
}

function memoryJson(prediction: MemoryPrediction, measured: PassMeasurement | null) {
  return {
    predicted_bytes: prediction.bytes,
    measured_bytes: measured ? measured.measuredBytes : null,
    micro_batch: prediction.microBatch,
    micro_batches: prediction.microBatches,
    peak_at: prediction.peakAt,
    workspace_bytes: prediction.workspaceBytes,
    breakdown: prediction.breakdown,
  };
}

function passJson(pass: PassMeasurement) {
  return {
    predicted_bytes: pass.predictedBytes,
    measured_bytes: pass.measuredBytes,
    relative_difference: pass.relativeDifference,
    predicted_flops: pass.predictedFlops,
    dispatched_flops: pass.dispatchedFlops,
    micro_batch: pass.microBatch,
    seconds: pass.seconds,
  };
}

/** The `--json` object of one configuration. */
function toJson(run: Run, device: string | null) {
  const r = run.resources;
  const m = run.measurement;
  const sameBatch = m !== null && m.resources.options.batchSize === r.options.batchSize &&
    m.resources.options.maxBindingBytes === r.options.maxBindingBytes;
  return {
    convention: MAC_CONVENTION,
    config: {
      batch_size: r.options.batchSize,
      resize: r.options.resize,
      one_by_one_convs: r.options.oneByOneConvs,
      momentum: r.options.momentum,
      micro_batch: r.options.microBatch,
      max_binding_bytes: r.options.maxBindingBytes,
      input_shape: r.inputShape,
    },
    params: { count: r.params.count, bytes: r.params.bytes },
    layers: r.layers.map((l) => ({
      index: l.index,
      type: l.type,
      output_shape: l.outputShape,
      params: l.params,
      macs: l.macs,
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
      inference: memoryJson(r.memory.inference, sameBatch ? m.inference : null),
      training: memoryJson(r.memory.training, sameBatch ? m.training : null),
    },
    measurement: m && {
      device,
      batch_size: m.resources.options.batchSize,
      resize: m.resources.options.resize,
      max_binding_bytes: m.resources.options.maxBindingBytes,
      inference: passJson(m.inference),
      training: passJson(m.training),
    },
  };
}

function breakdownText(prediction: MemoryPrediction): string {
  return Object.entries(prediction.breakdown)
    .filter(([, bytes]) => bytes > 0)
    .map(([what, bytes]) => `${what} ${mib(bytes)}`)
    .join(" + ");
}

function table(rows: string[][], rightAligned: boolean[]): string[] {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  return rows.map((row) =>
    row.map((cell, c) => rightAligned[c] ? cell.padStart(widths[c]) : cell.padEnd(widths[c])).join("  ")
      .trimEnd()
  );
}

function splitText(prediction: MemoryPrediction): string {
  return prediction.microBatches === 1
    ? "one pass"
    : `${prediction.microBatches} micro-batches of up to ${prediction.microBatch}`;
}

function report(run: Run, device: string | null, single: Resources, fullSeconds: number | null): string[] {
  const r = run.resources;
  const o = r.options;
  const b = o.batchSize;
  const lines: string[] = [];
  lines.push(
    `NiN resources: batch ${b}, input ${
      formatShape(r.inputShape.slice(1))
    }, ${o.oneByOneConvs} 1x1 convs per block, ` +
      `SGD momentum ${o.momentum}`,
  );
  lines.push(
    `Convention: ${MAC_CONVENTION}. FLOPs are those the kernels declare to gpu.dispatch: convolutions count ` +
      `2 per MAC (bias adds and the fused ReLU not counted); pooling, dropout, loss and SGD as documented in ` +
      `their files.`,
  );
  lines.push("");
  const header = [
    "index",
    "type",
    "output shape",
    "params",
    "MACs/img",
    "FLOPs/img",
    "train FLOPs/img",
    "kept for backward",
  ];
  const rows = r.layers.map((l) => [
    l.index,
    l.type,
    formatShape(l.outputShape),
    int(l.params),
    int(l.macs),
    l.fusedInto ? `fused into ${l.fusedInto}` : int(l.flops),
    l.fusedInto ? "" : int(l.trainFlops),
    l.savedBytes ? mib(l.savedBytes) : "-",
  ]);
  lines.push(...table([header, ...rows], [false, false, false, true, true, true, true, true]));
  const training = r.memory.training;
  if (training.microBatches > 1) {
    lines.push(`("kept for backward" is per training micro-batch of ${training.microBatch}.)`);
  }
  lines.push("");
  lines.push("Totals");
  lines.push(`  parameters: ${int(r.params.count)} (${mib(r.params.bytes)} as float32)`);
  lines.push(
    `  forward pass: ${giga(r.forward.macsPerImage)} GMACs = ${
      giga(r.forward.flopsPerImage)
    } GFLOPs per image; ` +
      `${giga(r.forward.macs)} GMACs = ${giga(r.forward.flops)} GFLOPs per batch of ${b}`,
  );
  const t = r.trainStep;
  lines.push(
    `  training step (batch ${b}): forward ${giga(t.forward)} + input gradients ${
      giga(t.inputGradients)
    } + ` +
      `weight gradients ${giga(t.weightGradients)} + loss ${giga(t.loss)} + SGD ${giga(t.optimizer)} = ` +
      `${giga(t.total)} GFLOPs (${(t.total / r.forward.flops).toFixed(2)}x the inference forward pass)`,
  );
  lines.push("");
  lines.push(
    `Memory at batch ${b} (peak live GPU bytes; bindings of at most ${mib(o.maxBindingBytes)}, ` +
      `${device ? "this device's limit" : "WebGPU's default limit"})`,
  );
  const inference = r.memory.inference;
  lines.push(
    `  prediction (predictClasses, ${splitText(inference)}): ${
      mib(inference.bytes)
    } at the ${inference.peakAt}`,
  );
  lines.push(`    = ${breakdownText(inference)}`);
  lines.push(
    `  training (trainStep, ${splitText(training)}): ${mib(training.bytes)} at the ${training.peakAt}`,
  );
  lines.push(`    = ${breakdownText(training)}`);
  lines.push(
    `  largest temporary workspace: ${mib(Math.max(inference.workspaceBytes, training.workspaceBytes))} ` +
      `(buffers a pass allocates for itself and frees again)`,
  );
  const m = run.measurement;
  if (m) {
    const mb = m.resources.options.batchSize;
    lines.push("");
    lines.push(`Measured on ${device}, batch ${mb}, ${o.resize}x${o.resize}:`);
    if (mb !== b) {
      lines.push(
        `  (the figures above are for batch ${b}; this software adapter measures batch ${mb} instead so the ` +
          `run takes seconds: pass --measure-batch-size ${b} to measure the full batch` +
          (fullSeconds ? `, about ${Math.ceil(fullSeconds / 60)} min here)` : ")"),
      );
    }
    for (const [what, pass] of [["prediction", m.inference], ["training", m.training]] as const) {
      const flopsOk = pass.dispatchedFlops === pass.predictedFlops ? "==" : "!=";
      lines.push(
        `  ${what.padEnd(10)} predicted ${mib(pass.predictedBytes)} (${
          int(pass.predictedBytes)
        } B), measured ` +
          `${mib(pass.measuredBytes)} (${int(pass.measuredBytes)} B), difference ${
            percent(pass.relativeDifference)
          }; ` +
          `FLOPs analytic ${int(pass.predictedFlops)} ${flopsOk} dispatched ${int(pass.dispatchedFlops)}; ` +
          `${pass.seconds.toFixed(2)} s`,
      );
    }
  } else {
    lines.push("", "Not measured (--no-measure).");
  }
  lines.push("");
  lines.push(`Exercise 3 (batch ${b}, ${o.resize}x${o.resize} inputs):`);
  lines.push(`  1. Parameters: ${int(r.params.count)}, ${mib(r.params.bytes)} as float32.`);
  lines.push(
    `  2. Computation: ${giga(r.forward.macsPerImage)} GMACs (${
      giga(r.forward.flopsPerImage)
    } GFLOPs) per image ` +
      `for a prediction; a training step on ${b} images is ${giga(t.total)} GFLOPs.`,
  );
  lines.push(
    `  3. Memory for training: ${mib(training.bytes)} at batch ${b} (parameters, their gradients` +
      `${
        o.momentum ? ", momentum buffers" : ""
      }, the activations and pooling indices kept for backward and ` +
      `the gradients in flight).`,
  );
  lines.push(
    `  4. Memory for prediction: ${mib(inference.bytes)} at batch ${b}, ${
      mib(single.memory.inference.bytes)
    } for one image (parameters, input and the largest live activations).`,
  );
  return lines;
}

function compareReport(runs: Run[], device: string | null): string[] {
  const first = runs[0].resources.options;
  const lines = [
    `NiN variants (exercise 2) at batch ${first.batchSize}, ${first.resize}x${first.resize}, momentum ${first.momentum}. ` +
    `${MAC_CONVENTION}.`,
    "",
  ];
  const measured = runs[0].measurement !== null;
  const header = [
    "1x1 convs/block",
    "params",
    "GMACs/img",
    "GFLOPs/img",
    "train step GFLOPs",
    "prediction memory",
    "training memory",
  ];
  if (measured) header.push("measured batch", "prediction predicted/measured", "training predicted/measured");
  const rows = runs.map(({ resources: r, measurement: m }) => {
    const row = [
      String(r.options.oneByOneConvs),
      int(r.params.count),
      giga(r.forward.macsPerImage),
      giga(r.forward.flopsPerImage),
      giga(r.trainStep.total),
      mib(r.memory.inference.bytes),
      mib(r.memory.training.bytes),
    ];
    if (m) {
      row.push(
        String(m.resources.options.batchSize),
        `${mib(m.inference.predictedBytes)} / ${mib(m.inference.measuredBytes)}`,
        `${mib(m.training.predictedBytes)} / ${mib(m.training.measuredBytes)}`,
      );
    }
    return row;
  });
  lines.push(...table([header, ...rows], header.map((_, i) => i > 0)));
  if (measured) lines.push("", `Measured on ${device}.`);
  return lines;
}

if (import.meta.main) {
  await runTask(async () => {
    const flags = parseFlags(
      "deno task resources [options]",
      "Parameters, MACs/FLOPs and peak GPU memory of NiN for training and prediction (the chapter's exercise 3),\n" +
        `predicted from the configuration and measured on the GPU. ${MAC_CONVENTION}.`,
      FLAGS,
      Deno.args,
    );
    if (!flags) return;
    let gpu: Gpu | null = null;
    if (!flags["no-measure"]) {
      const { requestGpu } = await import("../lib/gpu/device.ts");
      try {
        gpu = await requestGpu({
          engine: flags.gpu as Engine,
          kernels: flags.kernels as KernelChoice | undefined,
        });
      } catch (e) {
        if (e instanceof NinError) throw new NinError(`${e.message} (or pass --no-measure)`);
        throw e;
      }
    }
    const maxBindingBytes = flags["max-binding-bytes"] ?? gpu?.limits.maxStorageBufferBindingSize ??
      DEFAULT_MAX_BINDING_BYTES;
    const device = gpu ? gpu.describe() : null;
    const variants = flags.compare ? [2, 1, 0] : [flags["one-by-one-convs"]];
    const runs: Run[] = [];
    let single: Resources | null = null;
    let fullSeconds: number | null = null;
    for (const oneByOneConvs of variants) {
      const options: ResourceOptions = {
        batchSize: flags["batch-size"],
        resize: flags.resize,
        oneByOneConvs,
        momentum: flags.momentum,
        microBatch: flags["micro-batch"],
        maxBindingBytes,
      };
      const resources = checkFlag("--resize", flags.resize, () => analyzeResources(options));
      single ??= analyzeResources({ ...options, batchSize: 1 });
      let measurement: Measurement | null = null;
      if (gpu) {
        const { measureResources } = await import("../lib/measure.ts");
        const batchSize = flags["measure-batch-size"] ??
          (gpu.isSoftware
            ? affordableBatch(options, options.batchSize, SOFTWARE_MEASURE_FLOPS)
            : options.batchSize);
        measurement = await measureResources(gpu, { ...options, batchSize });
        const { inference, training } = measurement;
        const rate = (inference.dispatchedFlops + training.dispatchedFlops) /
          (inference.seconds + training.seconds);
        fullSeconds ??= (resources.forward.flops + resources.trainStep.total) / rate;
      }
      runs.push({ resources, measurement });
    }
    gpu?.destroy();
    if (flags.json) {
      const objects = runs.map((run) => toJson(run, device));
      console.log(
        JSON.stringify(
          flags.compare ? { convention: MAC_CONVENTION, variants: objects } : objects[0],
          null,
          2,
        ),
      );
    } else if (flags.compare) {
      console.log(compareReport(runs, device).join("\n"));
    } else {
      console.log(report(runs[0], device, single!, fullSeconds).join("\n"));
    }
  });
}
