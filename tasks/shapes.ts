/**
 * `deno task shapes`: runs a 1x1x224x224 input through the real GPU forward pass and prints each layer's
 * output shape, like the chapter's table.
 *
 * @module
 */
import { checkFlag, pickFlags, runTask } from "./cli.ts";
import { requestGpu } from "../lib/deno/gpu.ts";
import { nin } from "../lib/nin.ts";
import { layerShapes } from "../lib/shapes.ts";
import { Random } from "../lib/random.ts";
import { Tensor } from "../lib/tensor.ts";
import { formatShape, NinError } from "../lib/errors.ts";

/** The task's `--help` and flags. */
const TASK = {
  usage: "deno task shapes [options]",
  summary:
    "Prints the output shape of every NiN layer for one random input, computed by the GPU forward pass.",
  flags: pickFlags(["resize", "batch-size", "one-by-one-convs", "head", "leaf", "gpu", "kernels"], {
    "batch-size": 1,
  }),
};

if (import.meta.main) {
  await runTask(TASK, async (flags) => {
    const inputShape = [flags["batch-size"], 1, flags.resize, flags.resize];
    const gpu = await requestGpu({ engine: flags.gpu, kernels: flags.kernels });
    const net = nin(gpu, { oneByOneConvs: flags["one-by-one-convs"], head: flags.head, seed: 0 }).eval();
    // Checked analytically first so a too-small input fails before any GPU work.
    const rows = checkFlag("--resize", flags.resize, () => layerShapes(net, inputShape, flags.leaf));
    let x = Tensor.fromArray(
      gpu,
      new Random(0).uniformArray(inputShape.reduce((a, b) => a * b), 0, 1),
      inputShape,
    );
    for (const row of rows) {
      const y = row.layer.forward(x);
      x.dispose();
      x = y;
      if (formatShape(y.shape) !== formatShape(row.shape)) {
        throw new NinError(
          `layer ${row.name} produced ${formatShape(y.shape)}, expected ${formatShape(row.shape)}`,
        );
      }
      const label = flags.leaf ? `${row.name} ${row.layer.constructor.name}` : row.layer.constructor.name;
      console.log(`${label} output shape:\t ${formatShape(y.shape)}`);
    }
    const logits = await x.toArray();
    if (!logits.every(Number.isFinite)) throw new NinError("the forward pass produced non-finite logits");
    x.dispose();
    net.dispose();
    gpu.destroy();
  });
}
