/**
 * `deno task eval --checkpoint PATH`: test accuracy and a confusion matrix with Fashion-MNIST's class names.
 *
 * @module
 */
import { listenForInterrupt, pickFlags, runTask } from "./cli.ts";
import { loadCheckpoint } from "../lib/deno/checkpoint_file.ts";
import { NinError } from "../lib/errors.ts";
import { requestGpu } from "../lib/deno/gpu.ts";
import { loadTuning } from "../lib/deno/tuning_cache.ts";
import { ninFromCheckpoint } from "../lib/nin_checkpoint.ts";
import { confusionMatrix } from "../lib/predict.ts";
import { evaluate } from "../lib/fit.ts";
import { CLASS_NAMES } from "../lib/data/split.ts";
import { batchesPerEpoch } from "../lib/data/batches.ts";
import { Progress } from "./progress.ts";
import { loadTaskData } from "./data.ts";

/** The task's `--help` and flags. */
const TASK = {
  usage: "deno task eval --checkpoint PATH [options]",
  summary: "Evaluates a checkpoint on the Fashion-MNIST test set: accuracy and confusion matrix.",
  flags: pickFlags(
    [
      "checkpoint",
      "resize",
      "one-by-one-convs",
      "head",
      "batch-size",
      "limit-test",
      "data-dir",
      "offline",
      "gpu",
      "kernels",
    ],
    // Resize and the model's form come from the checkpoint unless given.
    { resize: undefined, "one-by-one-convs": undefined, head: undefined },
  ),
};

if (import.meta.main) {
  await runTask(TASK, async (flags) => {
    if (!flags.checkpoint) throw new NinError("--checkpoint PATH is required (see --help)", 2);
    const path = flags.checkpoint;
    const checkpoint = await loadCheckpoint(path);
    const gpu = await requestGpu({ engine: flags.gpu, kernels: flags.kernels });
    await loadTuning(gpu, undefined, (note) => console.error(note));
    const { net, resize, resizeFrom } = ninFromCheckpoint(gpu, checkpoint, path, {
      resize: flags.resize,
      oneByOneConvs: flags["one-by-one-convs"],
      head: flags.head,
    });
    console.error(`evaluating ${path} at ${resize}x${resize} (${resizeFrom})`);
    const data = await loadTaskData(flags);
    const count = Math.min(flags["limit-test"] ?? Infinity, data.test.count);
    const batches = batchesPerEpoch(count, flags["batch-size"]);
    const progress = new Progress(Deno.stderr.isTerminal(), { trainSteps: 0, testBatches: batches });
    const interrupt = listenForInterrupt();
    console.error(
      `compiling kernels and evaluating ${count} test images${
        gpu.isSoftware ? " (on a software adapter the first batch can take a minute)" : ""
      }...`,
    );
    console.error(`device: ${gpu.describe()}`);
    const result = await evaluate(net, data.test, {
      batchSize: flags["batch-size"],
      resize,
      limitTest: count,
      predictions: true,
      onBatch: (p) => progress.testBatch(`eval ${p.batch}/${p.batches}`, p.seconds, p.batch / p.batches),
      shouldStop: () => interrupt.requested,
    });
    progress.clear();
    interrupt.remove();
    if (interrupt.requested) {
      throw new NinError(`interrupted after ${result.count} of ${count} test images`, 130);
    }
    const labels = data.test.labels.subarray(0, result.count);
    const matrix = confusionMatrix(labels, result.predictions!, CLASS_NAMES.length);
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
