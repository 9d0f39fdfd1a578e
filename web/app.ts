/// <reference lib="dom" />
/**
 * The web page's app: trains, evaluates, loads and saves NiN in the browser through the package's core
 * (`@nin/webgpu/core`, served as `/nin.js`). Data comes from `deno task web` (`./data/*.safetensors`).
 *
 * @module
 */
import {
  analyzeResources,
  batchesPerEpoch,
  CLASS_NAMES,
  confusionMatrix,
  countingGpu,
  countingLimits,
  type CurvePoint,
  encodeCheckpoint,
  evaluate,
  fit,
  type Gpu,
  type KernelChoice,
  type KernelFamily,
  layerShapes,
  lineChartSvg,
  nin,
  NinError,
  ninFromCheckpoint,
  parseCheckpoint,
  parseSafetensors,
  requestGpu,
  restoreCheckpoint,
  type RunConfig,
  runConfig,
  type RunState,
  type Sequential,
  SGD,
  type Split,
  splitFromTensors,
  summary,
} from "@nin/webgpu/core";

/** The controls' values. */
interface Controls {
  resize: number;
  batchSize: number;
  lr: number;
  init: "kaiming" | "xavier";
  oneByOneConvs: number;
  epochs: number;
  limitTrain: number;
  limitTest: number;
  kernels: KernelChoice;
}

/** The model on the page, trained here or loaded, with what a checkpoint keeps of its run. */
interface Run {
  net: Sequential;
  optimizer: SGD;
  state: RunState;
  resize: number;
}

const byId = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const input = (id: string) => byId<HTMLInputElement>(id);
const IMAGES_SHOWN = 24;
/** What to do where WebGPU is missing (or gives no adapter). */
const WEBGPU_HELP = "Nothing can train here: use Chrome or Edge 113+, Safari 26+ or Firefox 141+ (Windows) " +
  "with hardware acceleration on; on Linux start Chromium with --enable-unsafe-webgpu " +
  "--enable-features=Vulkan. The shapes and resource figures below still work.";

let gpu: Gpu | undefined;
let run: Run | undefined;
let busy = false;
let stopRequested = false;
const splits = new Map<string, Promise<Split>>();

/** The controls, checked; a control out of range is a NinError naming it. */
function readControls(): Controls {
  const number = (id: string, integer = true) => {
    const el = input(id);
    const value = Number(el.value);
    if (el.value === "" || !el.checkValidity() || (integer && !Number.isInteger(value))) {
      const label = el.closest("label")?.firstChild?.textContent?.trim() ?? id;
      throw new NinError(
        `${label}: ${el.value === "" ? "missing" : `${el.value} is not allowed`} (${
          el.validationMessage || "whole numbers"
        })`,
      );
    }
    return value;
  };
  const lr = number("lr", false);
  if (!(lr > 0)) throw new NinError(`Learning rate: must be above 0, got ${lr}`);
  return {
    resize: number("resize"),
    batchSize: number("batch-size"),
    lr,
    init: byId<HTMLSelectElement>("init").value as Controls["init"],
    oneByOneConvs: number("one-by-one-convs"),
    epochs: number("epochs"),
    limitTrain: number("limit-train"),
    limitTest: number("limit-test"),
    kernels: byId<HTMLSelectElement>("kernels").value as KernelChoice,
  };
}

/** The run configuration a checkpoint keeps (what `deno task eval` and `--resume` read). */
function controlsConfig(c: Controls): RunConfig {
  return runConfig({
    seed: 0,
    model: { oneByOneConvs: c.oneByOneConvs, init: c.init },
    train: { lr: c.lr, batchSize: c.batchSize, epochs: c.epochs },
    data: { resize: c.resize, limitTrain: c.limitTrain, limitTest: c.limitTest },
  });
}

function setStatus(message: string, error = false): void {
  const status = byId("status");
  status.textContent = message;
  status.classList.toggle("error", error);
}

function setState(state: "idle" | "training" | "evaluating" | "loading" | "no-webgpu"): void {
  document.body.dataset.state = state;
  busy = state === "training" || state === "evaluating" || state === "loading";
  const noGpu = state === "no-webgpu";
  input("load").disabled = busy || noGpu;
  byId<HTMLButtonElement>("start").disabled = busy || noGpu;
  byId<HTMLButtonElement>("evaluate").disabled = busy || noGpu || !run;
  byId<HTMLButtonElement>("save").disabled = busy || !run;
  byId<HTMLButtonElement>("stop").disabled = state !== "training";
}

/** Runs an action of the page: its errors (NinErrors are the user's to fix) end in the status line. */
async function action(state: "training" | "evaluating" | "loading", fn: () => Promise<void>): Promise<void> {
  if (busy) return;
  setState(state);
  try {
    await fn();
  } catch (e) {
    setStatus(e instanceof NinError ? e.message : `unexpected error: ${(e as Error).message}`, true);
    if (!(e instanceof NinError)) console.error(e);
  } finally {
    setState("idle");
  }
}

/** The device for the chosen kernel family (reopened when the family changes). */
async function openGpu(kernels: KernelChoice): Promise<Gpu> {
  if (gpu && gpu.kernels === familyOf(gpu, kernels)) return gpu;
  if (run) {
    run.optimizer.dispose();
    run.net.dispose();
    run = undefined;
  }
  gpu?.destroy();
  gpu = undefined;
  gpu = await requestGpu({ kernels }); // the browser's navigator.gpu
  showDevice(gpu);
  return gpu;
}

function familyOf(g: Gpu, kernels: KernelChoice): KernelFamily {
  return kernels === "auto" ? (g.isSoftware ? "software" : "gpu") : kernels;
}

function showDevice(g: Gpu): void {
  byId("device").textContent =
    `WebGPU: ${g.adapterName} (${g.isSoftware ? "software adapter" : "hardware adapter"}, ` +
    `${g.kernels} kernels)`;
}

/** A split served by `deno task web`, its first `limit` examples. */
function fetchSplit(name: "train" | "test", limit: number): Promise<Split> {
  const url = `./data/${name}.safetensors?limit=${limit}`;
  let split = splits.get(url);
  if (!split) {
    split = (async () => {
      const response = await fetch(url).catch(() => null);
      if (!response?.ok) {
        throw new NinError(
          `cannot fetch ${url} (${response?.status ?? "no answer"}): serve the page with deno task web`,
        );
      }
      const where = `${name} data`;
      return splitFromTensors(
        parseSafetensors(new Uint8Array(await response.arrayBuffer()), where).tensors,
        "",
        where,
      );
    })();
    split.catch(() => splits.delete(url));
    splits.set(url, split);
  }
  return split;
}

function drawChart(state: RunState): void {
  const curve = state.curve ?? [];
  const history = state.history;
  byId("chart").innerHTML = curve.length === 0 && history.length === 0 ? "" : lineChartSvg([
    { name: "train loss", x: curve.map((p) => p.x), values: curve.map((p) => p.loss) },
    { name: "train acc", x: curve.map((p) => p.x), values: curve.map((p) => p.trainAcc) },
    { name: "test acc", x: history.map((h) => h.epoch), values: history.map((h) => h.testAcc) },
  ]);
}

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const s = Math.round(seconds);
  return s >= 60 ? `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s` : `${s}s`;
}

async function start(): Promise<void> {
  const c = readControls();
  const g = await openGpu(c.kernels);
  setStatus("loading data...");
  const [train, test] = await Promise.all([
    fetchSplit("train", c.limitTrain),
    fetchSplit("test", c.limitTest),
  ]);
  if (run) {
    run.optimizer.dispose();
    run.net.dispose();
    run = undefined;
  }
  const net = nin(g, { oneByOneConvs: c.oneByOneConvs, init: c.init, seed: 0 });
  try {
    layerShapes(net, [1, 1, c.resize, c.resize]);
  } catch (e) {
    net.dispose();
    throw e instanceof NinError ? new NinError(`Resize ${c.resize}: ${e.message}`) : e;
  }
  const optimizer = new SGD(net.parameters(), { lr: c.lr });
  const curve: CurvePoint[] = [];
  const state: RunState = { epoch: 0, step: 0, seed: 0, config: controlsConfig(c), history: [], curve };
  run = { net, optimizer, state, resize: c.resize };
  stopRequested = false;
  const total = c.epochs * batchesPerEpoch(Math.min(c.limitTrain, train.count), c.batchSize);
  let done = 0, timedSeconds = 0, timedExamples = 0, lastStep = "";
  const progress = byId<HTMLProgressElement>("progress");
  const text = byId("progress-text");
  setStatus("training (the first step compiles the kernels)...");
  drawChart(state);
  await fit(net, optimizer, { train, test }, {
    epochs: c.epochs,
    batchSize: c.batchSize,
    resize: c.resize,
    seed: 0,
    limitTrain: c.limitTrain,
    limitTest: c.limitTest,
    shouldStop: () => stopRequested,
    onStep: (p) => {
      done += 1;
      state.step = optimizer.stepCount;
      // The first step includes shader compilation: rates and ETA start from the second.
      if (done > 1) {
        timedSeconds += p.seconds;
        timedExamples += Math.min(c.batchSize, c.limitTrain);
      }
      curve.push({ x: p.epoch - 1 + p.batch / p.batches, loss: p.epochLoss, trainAcc: p.epochAcc });
      progress.value = done / total;
      const rate = timedExamples / timedSeconds;
      lastStep = `epoch ${p.epoch}, step ${done}/${total}, loss ${p.epochLoss.toFixed(3)}, train acc ` +
        `${p.epochAcc.toFixed(3)}; ` + (done > 1
          ? `${rate.toFixed(1)} examples/s, ETA ${duration((total - done) * timedSeconds / (done - 1))}`
          : "compiled the kernels");
      text.textContent = lastStep;
      drawChart(state);
    },
    onTestBatch: (p) => {
      text.textContent = `testing after the epoch: batch ${p.batch}/${p.batches}`;
    },
    onEpoch: (m) => {
      state.epoch = m.epoch;
      state.history.push({ ...m });
      drawChart(state);
    },
  });
  text.textContent = lastStep;
  const stopped = stopRequested;
  const last = state.history.at(-1);
  setStatus(
    stopped
      ? `stopped after step ${state.step}`
      : `trained ${c.epochs} epoch${c.epochs > 1 ? "s" : ""}: test acc ${last?.testAcc.toFixed(3)}`,
  );
  await evaluateRun(test, c.limitTest, c.batchSize);
}

/** Predicts the test images (the eval task's loop), shows the first ones with their labels and the confusion matrix. */
async function evaluateRun(test: Split, limit: number, batchSize: number): Promise<void> {
  if (!run) throw new NinError("no model yet: train or load a checkpoint first");
  const { net, resize } = run;
  const result = await evaluate(net, test, {
    batchSize,
    resize,
    limitTest: limit,
    predictions: true,
    onBatch: (p) => byId("eval-text").textContent = `evaluating: batch ${p.batch}/${p.batches}`,
  });
  const labels = [...test.labels.subarray(0, result.count)];
  const predictions = [...result.predictions!];
  const matrix = confusionMatrix(labels, predictions, CLASS_NAMES.length);
  const correct = matrix.reduce((s, row, i) => s + row[i], 0);
  byId("eval-text").textContent =
    `test acc ${(correct / labels.length).toFixed(3)} (${correct}/${labels.length}) ` +
    `at resize ${resize}; wrong predictions are marked.`;
  showGrid(test, labels, predictions);
  showConfusion(matrix);
}

function showGrid(test: Split, labels: number[], predictions: number[]): void {
  const grid = byId("grid");
  grid.replaceChildren();
  for (let i = 0; i < Math.min(IMAGES_SHOWN, labels.length); i++) {
    const wrong = labels[i] !== predictions[i];
    const figure = document.createElement("figure");
    figure.className = wrong ? "wrong" : "right";
    const canvas = document.createElement("canvas");
    canvas.width = test.width;
    canvas.height = test.height;
    const pixels = new ImageData(test.width, test.height);
    const size = test.width * test.height;
    for (let p = 0; p < size; p++) {
      const v = test.images[i * size + p];
      pixels.data.set([v, v, v, 255], p * 4);
    }
    canvas.getContext("2d")?.putImageData(pixels, 0, 0);
    const caption = document.createElement("figcaption");
    caption.textContent = `${wrong ? "✗ " : ""}${CLASS_NAMES[predictions[i]]} (true: ${
      CLASS_NAMES[labels[i]]
    })`;
    canvas.setAttribute("aria-hidden", "true");
    figure.append(canvas, caption);
    grid.append(figure);
  }
}

function showConfusion(matrix: number[][]): void {
  const table = byId<HTMLTableElement>("confusion");
  table.replaceChildren();
  table.createCaption().textContent = "Confusion matrix (rows: true class, columns: predicted)";
  const head = table.createTHead().insertRow();
  head.append(
    ...["", ...CLASS_NAMES].map((name) =>
      Object.assign(document.createElement("th"), { textContent: name, scope: "col" })
    ),
  );
  const body = table.createTBody();
  matrix.forEach((row, i) => {
    const tr = body.insertRow();
    tr.append(Object.assign(document.createElement("th"), { textContent: CLASS_NAMES[i], scope: "row" }));
    row.forEach((v, j) => {
      const cell = tr.insertCell();
      cell.textContent = String(v);
      if (i === j) cell.className = "diagonal";
    });
  });
}

/** Loads a checkpoint with `deno task eval`'s rules (lib/nin_checkpoint.ts) and sets the controls to it. */
async function load(file: File): Promise<void> {
  const checkpoint = parseCheckpoint(new Uint8Array(await file.arrayBuffer()), file.name);
  const g = await openGpu(readControls().kernels);
  const { net, resize, resizeFrom, oneByOneConvs } = ninFromCheckpoint(g, checkpoint, file.name);
  const config = checkpoint.state.config;
  let optimizer: SGD | undefined;
  try {
    optimizer = new SGD(net.parameters(), {
      lr: config?.train.lr ?? (Number(input("lr").value) || 0.1),
      momentum: config?.train.momentum ?? 0,
      weightDecay: config?.train.weightDecay ?? 0,
    });
    restoreCheckpoint(checkpoint, net, optimizer);
  } catch (e) {
    optimizer?.dispose();
    net.dispose();
    throw e;
  }
  if (run) {
    run.optimizer.dispose();
    run.net.dispose();
  }
  run = { net, optimizer, state: checkpoint.state, resize };
  input("resize").value = String(resize);
  input("one-by-one-convs").value = String(oneByOneConvs);
  if (config) {
    input("lr").value = String(config.train.lr);
    byId<HTMLSelectElement>("init").value = config.model.init;
  }
  drawChart(checkpoint.state);
  setStatus(
    `loaded ${file.name} at ${resize}x${resize} (${resizeFrom}), epoch ${checkpoint.state.epoch}, ` +
      `step ${checkpoint.state.step}`,
  );
  refreshModel();
}

/** Offers the model as a download (`nin.safetensors`) that `deno task eval` and PyTorch load. */
async function save(): Promise<void> {
  if (!run) throw new NinError("no model yet: train or load a checkpoint first");
  const bytes = await encodeCheckpoint(
    run.net,
    { optimizer: run.optimizer, state: run.state },
    "nin.safetensors",
  );
  const url = URL.createObjectURL(
    new Blob([bytes as Uint8Array<ArrayBuffer>], { type: "application/octet-stream" }),
  );
  const link = Object.assign(document.createElement("a"), { href: url, download: "nin.safetensors" });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  setStatus(`saved nin.safetensors (${bytes.length.toLocaleString("en-US")} bytes, step ${run.state.step})`);
}

let refreshGeneration = 0;
/** The shape table and resource figures of the controls' configuration (counting device: nothing runs). */
async function refreshModel(): Promise<void> {
  const generation = ++refreshGeneration;
  const figures = byId("resources");
  const table = byId<HTMLTableElement>("shapes");
  try {
    const c = readControls();
    const kernels: KernelFamily = gpu ? familyOf(gpu, c.kernels) : c.kernels === "gpu" ? "gpu" : "software";
    const options = { oneByOneConvs: c.oneByOneConvs, init: c.init };
    const rows = summary(nin(countingGpu({ kernels }), options), [1, 1, c.resize, c.resize]).rows;
    const resources = await analyzeResources({
      ...options,
      batchSize: c.batchSize,
      resize: c.resize,
      kernels,
      maxBindingBytes: gpu?.limits.maxStorageBufferBindingSize,
      limits: gpu ? countingLimits(gpu.limits) : undefined,
    });
    if (generation !== refreshGeneration) return;
    const int = (n: number) => n.toLocaleString("en-US");
    const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
    const gflop = (flops: number) => `${(flops / 1e9).toFixed(3)} GFLOP`;
    figures.textContent = `${int(resources.params.count)} parameters (${mib(resources.params.bytes)}); ` +
      `forward ${
        gflop(resources.forward.flopsPerImage)
      } per image; one training step at batch ${c.batchSize}: ` +
      `${gflop(resources.trainStep.total)}; peak GPU memory: training ${
        mib(resources.run.training.bytes)
      }, ` +
      `prediction ${mib(resources.run.inference.bytes)} (${kernels} kernels).`;
    table.replaceChildren();
    table.createCaption().textContent = `Layer shapes for one ${c.resize}x${c.resize} image`;
    const head = table.createTHead().insertRow();
    for (const name of ["Layer", "Type", "Output shape", "Params", "MACs"]) {
      head.append(Object.assign(document.createElement("th"), { textContent: name, scope: "col" }));
    }
    const body = table.createTBody();
    for (const row of rows) {
      const tr = body.insertRow();
      for (
        const cell of [row.name, row.type, `[${row.outputShape.join(", ")}]`, int(row.params), int(row.macs)]
      ) {
        tr.insertCell().textContent = cell;
      }
    }
  } catch (e) {
    if (generation !== refreshGeneration) return;
    table.replaceChildren();
    figures.textContent = e instanceof NinError ? e.message : `unexpected error: ${(e as Error).message}`;
    if (!(e instanceof NinError)) console.error(e);
  }
}

async function main(): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  byId("controls").addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(refreshModel, 200);
  });
  byId("controls").addEventListener("submit", (event) => {
    event.preventDefault();
    action("training", start);
  });
  byId("stop").addEventListener("click", () => {
    stopRequested = true;
    setStatus("stopping after the current step...");
  });
  byId("evaluate").addEventListener("click", () =>
    action("evaluating", async () => {
      const c = readControls();
      setStatus("evaluating...");
      await evaluateRun(await fetchSplit("test", c.limitTest), c.limitTest, c.batchSize);
      setStatus("evaluated");
    }));
  input("load").addEventListener("change", () => {
    const file = input("load").files?.[0];
    if (file) action("loading", () => load(file)).finally(() => input("load").value = "");
  });
  byId("save").addEventListener("click", () => action("loading", save));
  setState("loading");
  try {
    if (!("gpu" in navigator)) throw new NinError("This browser has no WebGPU.");
    await openGpu(readControls().kernels);
  } catch (e) {
    const device = byId("device");
    device.classList.add("missing");
    device.textContent = `${
      (e instanceof Error ? e.message : String(e)).replace(/\.?$/, ".")
    } ${WEBGPU_HELP}`;
    setState("no-webgpu");
    await refreshModel();
    return;
  }
  setState("idle");
  await refreshModel();
}

main();
