/**
 * Training examples/s of the same NiN step in Deno (this machine's adapter, e.g. llvmpipe) and in headless
 * Chromium on SwiftShader, through the package's bundle (`/nin.js` from `deno task web`), for both kernel
 * families, interleaved in one run: median of `--steps` timed steps after 2 warm-up steps, random images.
 *
 *     flock /tmp/nin-bench.lock deno run -A tools/browser_bench.ts --resize 67 --batch-size 16 --steps 5
 *
 * @module
 */
import { parseArgs } from "node:util";
import puppeteer from "puppeteer-core";
import { requestGpu } from "../lib/deno/gpu.ts";
import type { KernelFamily } from "../lib/gpu/device.ts";
import { median } from "../lib/median.ts";
import { nin } from "../lib/nin.ts";
import { SGD } from "../lib/optim.ts";
import { Random } from "../lib/random.ts";
import { Tensor } from "../lib/tensor.ts";
import { trainStep } from "../lib/train.ts";
import { CHROMIUM, CHROMIUM_FLAGS, startWebServer } from "../tests/web_server.ts";

const { values } = parseArgs({
  options: {
    resize: { type: "string", default: "67" },
    "batch-size": { type: "string", default: "16" },
    steps: { type: "string", default: "5" },
  },
});
const run = {
  resize: Number(values.resize),
  batchSize: Number(values["batch-size"]),
  steps: Number(values.steps),
};

/** Seconds of each step: 2 warm-up steps (shader compilation) then `steps` timed ones. Runs in both places. */
async function stepSeconds(
  api: {
    requestGpu: typeof requestGpu;
    nin: typeof nin;
    SGD: typeof SGD;
    Tensor: typeof Tensor;
    Random: typeof Random;
    trainStep: typeof trainStep;
  },
  kernels: KernelFamily,
  r: typeof run,
): Promise<{ device: string; seconds: number[] }> {
  const gpu = await api.requestGpu({ kernels });
  try {
    const net = api.nin(gpu, { init: "kaiming" });
    const optimizer = new api.SGD(net.parameters(), { lr: 0.01 });
    const rng = new api.Random(1);
    const pixels = rng.uniformArray(r.batchSize * r.resize * r.resize, 0, 1);
    const images = api.Tensor.fromArray(gpu, pixels, [r.batchSize, 1, r.resize, r.resize]);
    const labels = Array.from({ length: r.batchSize }, (_, i) => i % 10);
    const seconds: number[] = [];
    for (let i = 0; i < r.steps + 2; i++) {
      const started = performance.now();
      await api.trainStep(net, optimizer, images, labels);
      if (i >= 2) seconds.push((performance.now() - started) / 1000);
    }
    return { device: gpu.describe(), seconds };
  } finally {
    gpu.destroy();
  }
}

const server = await startWebServer([]);
const browser = await puppeteer.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: CHROMIUM_FLAGS,
  protocolTimeout: 1_800_000, // the gpu family on SwiftShader takes minutes
});
try {
  const page = await browser.newPage();
  await page.goto(server.url);
  await page.evaluate(`window.stepSeconds = ${stepSeconds.toString()}`);
  const deno = { requestGpu, nin, SGD, Tensor, Random, trainStep };
  console.log(
    `training step, resize ${run.resize}, batch ${run.batchSize}, median of ${run.steps} steps after 2 warm-up steps`,
  );
  for (const kernels of ["software", "gpu"] as const) {
    const here = await stepSeconds(deno, kernels, run);
    const there = await page.evaluate(
      async (kernels, r) => {
        const bundle = "./nin.js";
        const api = await import(bundle);
        return await (globalThis as unknown as { stepSeconds: typeof stepSeconds }).stepSeconds(
          api,
          kernels,
          r,
        );
      },
      kernels,
      run,
    );
    for (const { device, seconds } of [here, there]) {
      const m = median(seconds);
      console.log(
        `${(run.batchSize / m).toFixed(1).padStart(6)} examples/s  ${
          (m * 1000).toFixed(0).padStart(6)
        } ms/step  ${device}`,
      );
    }
  }
} finally {
  await browser.close();
  await server.stop();
}
