// The plot's round ticks and curve styles, and the progress ETA's h/m/s format.
import { assertJsonEqual as assertEquals } from "./util.ts";
import { lineChartSvg, niceTicks, SERIES_STYLES } from "../lib/svg_plot.ts";
import { formatDuration, Progress } from "../tasks/progress.ts";

Deno.test("niceTicks: 1-2-5 steps from 0 to at least the maximum", () => {
  assertEquals(niceTicks(2.31), [0, 0.5, 1, 1.5, 2, 2.5], "loss axis");
  assertEquals(niceTicks(1), [0, 0.2, 0.4, 0.6, 0.8, 1], "accuracy axis");
  assertEquals(niceTicks(10, 10), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10], "ten epochs");
});

Deno.test("lineChartSvg: fractional x, one dash pattern and marker per curve, grid under the frame", () => {
  const svg = lineChartSvg([
    { name: "train loss", x: [0.2, 0.4, 1], values: [2.3, 2.2, 2.1], color: "#111" },
    {
      name: "train acc",
      x: [0.2, 0.4, 1],
      values: [0.1, 0.2, 0.3],
      color: "#222",
      dash: "6,3",
      marker: "square",
    },
    { name: "test acc", values: [0.3], color: "#333", dash: "2,3", marker: "triangle" },
  ]);
  assertEquals(svg.includes(">2.5</text>") && !svg.includes("0.58"), true, "round y ticks");
  assertEquals(svg.indexOf('stroke="#eee"') < svg.indexOf('stroke="#888"'), true, "grid before the frame");
  assertEquals(
    (svg.match(/<rect x="[^"]*" y="[^"]*" width="7" height="7" fill="none" stroke="#222"/g) ?? []).length,
    4,
    "squares",
  );
});

Deno.test("lineChartSvg: the k-th series takes the style fields it leaves out from the k-th default style", () => {
  const plain = Array.from(
    { length: SERIES_STYLES.length + 1 },
    (_, k) => ({ name: `s${k}`, values: [k, k + 1] }),
  );
  const strokes = (svg: string) =>
    [...svg.matchAll(
      /<path d="M[^"]*" fill="none" stroke="([^"]*)" stroke-width="2"(?: stroke-dasharray="([^"]*)")?/g,
    )]
      .map((m) => [m[1], m[2] ?? ""]);
  assertEquals(
    strokes(lineChartSvg(plain)),
    [...SERIES_STYLES, SERIES_STYLES[0]].map((s) => [s.color, s.dash ?? ""]),
    "the cycle in order, then from the start again",
  );
  const own = lineChartSvg([plain[0], { ...plain[1], color: "#123456", marker: "triangle" }]);
  assertEquals(strokes(own)[1], ["#123456", SERIES_STYLES[1].dash ?? ""], "own colour, the cycle's dash");
  const count = (pattern: RegExp) => (own.match(pattern) ?? []).length;
  assertEquals(
    [count(/<path d="M[^"]*Z" fill="none" stroke="#123456"[^>]*\/>/g), count(/<rect [^>]*stroke="#123456"/g)],
    [3, 0],
    "own marker: a triangle at both points and in the legend, no squares",
  );
});

Deno.test("lineChartSvg: markers are outlines, so coinciding points both show; a title and a size", () => {
  // Train and test accuracy end the epoch at the same point: the second marker must not cover the first.
  const svg = lineChartSvg([
    { name: "train acc", x: [0.5, 1], values: [0.5, 0.7], marker: "square" },
    { name: "test acc", x: [1], values: [0.7], marker: "triangle" },
  ], { title: "NiN, lr 0.05 & batch 32", width: 640, height: 400 });
  const markers = svg.split("\n").filter((l) => /^<(rect x[^>]*width="7"|circle|path d="M[^"]*Z")/.test(l));
  assertEquals(markers.length, 2 + 1 + 1 + 1, "two squares, a triangle, and one of each in the legend");
  assertEquals(markers.filter((l) => !l.includes('fill="none"')), [], "no filled marker");
  assertEquals(svg.includes(">NiN, lr 0.05 &#38; batch 32</text>"), true, "the title, escaped");
  assertEquals(
    svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg" width="640" height="400"'),
    true,
    "size",
  );
});

Deno.test("progress: durations in h/m/s; the ETA covers the whole plan and skips the compiling first step", () => {
  assertEquals(
    [formatDuration(42), formatDuration(185), formatDuration(26713)],
    ["42s", "3m 05s", "7h 25m"],
    "fmt",
  );
  const progress = new Progress(false, { trainSteps: 4, testBatches: 2 }, Infinity);
  const log = console.error;
  console.error = () => {};
  try {
    progress.trainStep("epoch 1 1/2", 100); // compiles: not a fair base
    assertEquals(Number.isNaN(progress.eta), true, "no estimate from the compiling step alone");
    progress.trainStep("epoch 1 2/2", 2);
    // 2 steps left at 2 s, 2 test batches at the 0.35 guess of a step.
    assertEquals(progress.eta, 2 * 2 + 2 * 0.7, "eta");
  } finally {
    console.error = log;
  }
});
