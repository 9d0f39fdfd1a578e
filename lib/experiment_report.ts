/**
 * An experiment's report from whatever trials have finished: a Markdown table (one row per configuration,
 * mean and spread over its seeds) with what the numbers show, and an SVG of train loss and test accuracy
 * against examples seen (mean line, min-max band over seeds, one colour per configuration).
 *
 * @module
 */
import { describeRunConfig, type EpochRecord, type RunConfig } from "./config.ts";
import type { Experiment, Variant } from "./experiment.ts";
import type { HeadFeatureStats } from "./head_features.ts";
import { lineChartSvg, type Series } from "./svg_plot.ts";
import type { CountingLimits } from "./gpu/counting.ts";
import type { KernelFamily } from "./gpu/device.ts";

/** One point of a trial's training curve: running mean of the epoch's train loss after `examples` seen. */
export interface ExamplesPoint {
  /** Training examples seen since the start of the run. */
  examples: number;
  /** Running mean of the train loss over the epoch so far. */
  loss: number;
}

/** What a finished trial leaves (its `result.json`). */
export interface TrialResult {
  /** The trial's id. */
  trial: string;
  /** Its variant's id. */
  variant: string;
  /** Its seed. */
  seed: number;
  /** Its configuration. */
  config: RunConfig;
  /** One record per epoch. */
  history: EpochRecord[];
  /** The training curve (several points per epoch). */
  curve: ExamplesPoint[];
  /** Wall-clock seconds the trial took, over every attempt (resumes included). */
  seconds: number;
  /** The device it ran on. */
  device: string;
  /**
   * Its kernel family and the device limits its plan followed: the report counts a variant's training memory
   * on a counting device posing as this one, so the figure is the same whichever process writes the report.
   * (Results written before these fields: the software family at WebGPU's default limits.)
   */
  kernels?: KernelFamily;
  /** See `kernels`. */
  limits?: CountingLimits;
  /** What the last block hands the pooling after training, on the first test images. */
  headFeatures?: HeadFeatureStats;
}

/** Static figures of a variant's model (from the counting device), for the table. */
export interface VariantCost {
  /** Parameters. */
  params: number;
  /** Forward FLOPs per image. */
  flopsPerImage: number;
  /** FLOPs of a training step per image (forward, backward, loss and the optimizer's share). */
  trainFlopsPerImage: number;
  /** Peak GPU bytes of one training step at the configuration's batch. */
  trainingBytes: number;
  /** Parameters of the last block (7.*). */
  headParams: number;
  /** Forward FLOPs per image of the last block. */
  headFlopsPerImage: number;
}

/** The report's two files. */
export interface ExperimentReport {
  /** `report.md`. */
  markdown: string;
  /** `report.svg`. */
  svg: string;
}

/** Mean and sample standard deviation (0 for one value). */
function stats(values: number[]): { mean: number; sd: number } {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const sd = values.length > 1
    ? Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (values.length - 1))
    : 0;
  return { mean, sd };
}

interface Row {
  variant: Variant;
  results: TrialResult[];
  loss: { mean: number; sd: number };
  valid: { mean: number; sd: number } | null;
  test: { mean: number; sd: number };
  examplesPerSec: number;
  seconds: number;
}

const last = (r: TrialResult) => r.history[r.history.length - 1];
const pm = (s: { mean: number; sd: number }, digits = 3) =>
  `${s.mean.toFixed(digits)} ± ${s.sd.toFixed(digits)}`;
const MIB = 2 ** 20;

/**
 * The report of `experiment` over the finished `results` (any subset: variants without a finished trial are
 * listed as pending). Rows are in the experiment's order, or best validation accuracy first when it ranks by
 * validation; then test accuracy is shown only for the chosen (best) configuration, so the choice never
 * sees the test set. Given the same results (in any order), the report is the same, whichever processes
 * produced them.
 *
 * @example
 * ```ts
 * import { buildExperiment, experimentReport } from "@nin/webgpu";
 * const e = buildExperiment("head");
 * console.log(experimentReport(e, [], new Map()).markdown.split("\n")[0]); // # Experiment: head
 * ```
 */
export function experimentReport(
  experiment: Experiment,
  results: readonly TrialResult[],
  costs: ReadonlyMap<string, VariantCost>,
): ExperimentReport {
  const sorted = [...results].sort((a, b) => a.trial < b.trial ? -1 : a.trial > b.trial ? 1 : 0);
  const seeds = experiment.trials.filter((t) => t.variant === experiment.variants[0]).length;
  const rows: Row[] = [];
  for (const variant of experiment.variants) {
    const mine = sorted.filter((r) => r.variant === variant.id);
    if (mine.length === 0) continue;
    const valids = mine.map((r) => last(r).validAcc).filter((v): v is number => v !== undefined);
    rows.push({
      variant,
      results: mine,
      loss: stats(mine.map((r) => last(r).loss)),
      valid: valids.length === mine.length ? stats(valids) : null,
      test: stats(mine.map((r) => last(r).testAcc)),
      examplesPerSec: stats(mine.map((r) => {
        const seconds = r.history.reduce((s, m) => s + m.trainSeconds, 0);
        return r.history.reduce((s, m) => s + m.examplesPerSec * m.trainSeconds, 0) / seconds;
      })).mean,
      seconds: stats(mine.map((r) => r.seconds)).mean,
    });
  }
  if (experiment.rankByValidation) rows.sort((a, b) => (b.valid?.mean ?? -1) - (a.valid?.mean ?? -1));
  const pending = experiment.variants.filter((v) => !rows.some((r) => r.variant === v));
  const md: string[] = [
    `# Experiment: ${experiment.name}`,
    "",
    experiment.question,
    "",
    `Scale: ${experiment.scale}; ${seeds} seed${seeds === 1 ? "" : "s"} per configuration; ` +
    `base configuration: ${describeRunConfig(experiment.variants[0].config)}.`,
  ];
  if (experiment.scale === "quick") {
    md.push(
      "",
      "The quick scale uses Kaiming init (the chapter's Xavier init stays on the ln 10 loss plateau for hundreds " +
        "of steps at this size) and 67x67 inputs, at which the last block sees a 1x1 map instead of the " +
        "chapter's 5x5; accuracies are far below the chapter's and say which way a change goes, not by how much.",
    );
  }
  md.push("", "Mean ± standard deviation over seeds; time and examples/s are per trial.", "");
  const header = ["Configuration", "Seeds", "Params", "MFLOPs/img", "Train memory", "Final train loss"];
  if (experiment.rankByValidation) header.push("Valid acc");
  header.push("Test acc", "Examples/s", "Time");
  const table = rows.map((r, i) => {
    const cost = costs.get(r.variant.id);
    const cells = [
      r.variant.label,
      `${r.results.length}/${seeds}`,
      cost ? cost.params.toLocaleString("en-US") : "?",
      cost ? (cost.flopsPerImage / 1e6).toFixed(1) : "?",
      cost ? `${(cost.trainingBytes / MIB).toFixed(0)} MiB` : "?",
      pm(r.loss),
    ];
    if (experiment.rankByValidation) cells.push(r.valid ? pm(r.valid) : "-");
    cells.push(!experiment.rankByValidation || i === 0 ? pm(r.test) : "(not looked at)");
    cells.push(r.examplesPerSec.toFixed(1), formatSeconds(r.seconds));
    return cells;
  });
  md.push(...markdownTable(header, table));
  if (pending.length > 0) md.push("", `Not finished yet: ${pending.map((v) => v.label).join(", ")}.`);
  md.push("", "## Configurations", "");
  for (const r of rows) {
    md.push(`- ${r.variant.label} (\`${r.variant.id}\`): ${describeRunConfig(r.variant.config)}`);
  }
  md.push("", "## What it shows", "", ...findings(experiment, rows, costs));
  md.push("", "![train loss and test accuracy against examples seen](report.svg)", "");
  return { markdown: md.join("\n"), svg: curvesSvg(rows) };
}

/** What the table shows, in sentences computed from it. */
function findings(experiment: Experiment, rows: Row[], costs: ReadonlyMap<string, VariantCost>): string[] {
  if (rows.length === 0) return ["No trial has finished yet."];
  const out: string[] = [];
  if (experiment.rankByValidation) {
    const best = rows[0];
    out.push(
      `Chosen by validation accuracy: ${best.variant.label} (valid ${
        best.valid ? pm(best.valid) : "-"
      }); its test ` +
        `accuracy is ${
          pm(best.test)
        }. The others' test accuracies are left out so that the choice never sees the test set.`,
    );
    return out;
  }
  const byTest = [...rows].sort((a, b) => b.test.mean - a.test.mean);
  const [top, next] = byTest;
  out.push(`Highest mean test accuracy: ${top.variant.label} (${pm(top.test)}).`);
  if (next) {
    const gap = top.test.mean - next.test.mean;
    const spread = Math.max(top.test.sd, next.test.sd);
    const verdict = Math.min(top.results.length, next.results.length) < 2
      ? "with one seed there is no spread to compare it with"
      : gap > 2 * spread
      ? `more than twice the larger spread over seeds (${spread.toFixed(3)}): a difference the seeds agree on`
      : `within twice the larger spread over seeds (${
        spread.toFixed(3)
      }): not distinguishable from seed noise`;
    out.push(`Next: ${next.variant.label} (${pm(next.test)}); the gap of ${gap.toFixed(3)} is ${verdict}.`);
  }
  for (const r of rows) {
    const cost = costs.get(r.variant.id);
    if (!cost) continue;
    const what = experiment.name === "head"
      ? `last block ${cost.headParams.toLocaleString("en-US")} parameters and ${
        (cost.headFlopsPerImage / 1e6).toFixed(2)
      } MFLOPs per image`
      : `${cost.params.toLocaleString("en-US")} parameters and ${
        (cost.flopsPerImage / 1e6).toFixed(1)
      } MFLOPs per image`;
    const features = r.results.map((t) => t.headFeatures).filter((f): f is HeadFeatureStats =>
      f !== undefined
    );
    const measured = features.length === r.results.length && features.length > 0
      ? `; its last block's output on ${features[0].images} test images: ${
        pm(stats(features.map((f) => f.deadChannels)), 1)
      } of ${features[0].channels} channels dead (zero for every image), effective rank ${
        pm(stats(features.map((f) => f.effectiveRank)), 2)
      } of at most ${features[0].maxRank}`
      : "";
    out.push(`- ${r.variant.label}: ${what}; final train loss ${pm(r.loss)}${measured}.`);
  }
  return out;
}

/** Train loss and test accuracy against examples seen: a panel each, mean line and min-max band per configuration. */
function curvesSvg(rows: Row[]): string {
  const lossSeries: Series[] = [], accSeries: Series[] = [];
  for (const r of rows) {
    const n = Math.min(...r.results.map((t) => t.curve.length));
    const x = Array.from({ length: n }, (_, i) => r.results[0].curve[i].examples);
    const loss = Array.from({ length: n }, (_, i) => r.results.map((t) => t.curve[i].loss));
    lossSeries.push(bandSeries(r.variant.label, x, loss));
    const epochs = Math.min(...r.results.map((t) => t.history.length));
    const trainImages = examplesPerEpoch(r.results[0]);
    const ex = Array.from({ length: epochs }, (_, e) => (e + 1) * trainImages);
    const acc = Array.from({ length: epochs }, (_, e) => r.results.map((t) => t.history[e].testAcc));
    accSeries.push(bandSeries(r.variant.label, ex, acc));
  }
  const width = 560, height = 340;
  const panel = (svg: string, dx: number, title: string) =>
    `<g transform="translate(${dx},24)">${svg.replace(/^<svg[^>]*>/, "").replace(/<\/svg>\s*$/, "")}</g>\n` +
    `<text x="${
      dx + width / 2 - 60
    }" y="16" text-anchor="middle" font-family="sans-serif" font-size="13">${title}</text>`;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${2 * width}" height="${height + 24}" ` +
    `viewBox="0 0 ${2 * width} ${height + 24}">`,
    `<rect width="${2 * width}" height="${height + 24}" fill="white"/>`,
    panel(
      lineChartSvg(lossSeries, { xLabel: "training examples seen", width, height }),
      0,
      "train loss (running mean)",
    ),
    panel(
      lineChartSvg(accSeries, { xLabel: "training examples seen", width, height }),
      width,
      "test accuracy",
    ),
    "</svg>",
    "",
  ].join("\n");
}

/** A series of the mean over seeds with a min-max band (`values[i]` holds every seed's value at point i). */
function bandSeries(name: string, x: number[], values: number[][]): Series {
  return {
    name,
    x,
    values: values.map((vs) => stats(vs).mean),
    band: { lower: values.map((vs) => Math.min(...vs)), upper: values.map((vs) => Math.max(...vs)) },
    marker: "none",
  };
}

/** Training examples per epoch of a trial: its curve's last point divided by its epochs. */
function examplesPerEpoch(r: TrialResult): number {
  return r.curve[r.curve.length - 1].examples / r.history.length;
}

/** `12m 5s`, `48s`. */
function formatSeconds(seconds: number): string {
  const s = Math.round(seconds);
  return s >= 60 ? `${Math.floor(s / 60)}m ${s % 60}s` : `${s}s`;
}

/** A GitHub-flavoured Markdown table. */
function markdownTable(header: string[], rows: string[][]): string[] {
  return [header, header.map(() => "---"), ...rows].map((cells) => `| ${cells.join(" | ")} |`);
}
