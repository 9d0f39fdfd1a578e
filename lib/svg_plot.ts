/**
 * A small SVG line chart like d2l's Animator: train loss and train accuracy several times per epoch, test
 * accuracy per epoch, each curve with its own colour, dash pattern and marker (by default from a cycle of
 * styles, like the Animator's default formats), round axis ticks and a legend.
 *
 * @module
 */

/** How a curve is drawn. */
export interface SeriesStyle {
  /** Stroke colour. */
  color: string;
  /** SVG dash pattern, e.g. `"6,3"` (absent or `""`: a solid line). */
  dash?: string;
  /** Marker at each point (absent: circle). */
  marker?: "circle" | "square" | "triangle" | "none";
}

/**
 * The default styles, in order: the k-th series of a chart takes the style fields it leaves out from the
 * k-th of these (after the last, from the first again). Solid blue with circles, dashed red with squares,
 * dotted green with triangles, then dash-dotted orange, in matplotlib's colours: a cycle like the default
 * formats of d2l's Animator (`-`, `m--`, `g-.`, `r:`).
 *
 * @example
 * ```ts
 * import { SERIES_STYLES } from "@nin/webgpu";
 * console.log(SERIES_STYLES[1]); // { color: "#d62728", dash: "6,3", marker: "square" }
 * ```
 */
export const SERIES_STYLES: readonly Readonly<SeriesStyle>[] = [
  { color: "#1f77b4", marker: "circle" },
  { color: "#d62728", dash: "6,3", marker: "square" },
  { color: "#2ca02c", dash: "2,3", marker: "triangle" },
  { color: "#ff7f0e", dash: "6,3,2,3", marker: "circle" },
];

/** One named curve; the style fields it leaves out come from {@link SERIES_STYLES}. */
export interface Series extends Partial<SeriesStyle> {
  /** Legend label. */
  name: string;
  /** Y values (NaN or non-finite values are skipped). */
  values: number[];
  /** X values, one per y value (default: 1, 2, 3, ...; e.g. fractional epochs). */
  x?: number[];
  /** A shaded band around the curve (e.g. the spread over seeds): one lower and one upper value per point. */
  band?: { lower: number[]; upper: number[] };
}

const escape = (s: string) => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * Round tick values from 0 to at least `max`: steps of 1, 2 or 5 times a power of ten, about `count` of them.
 *
 * @example
 * ```ts
 * import { niceTicks } from "@nin/webgpu";
 * console.log(niceTicks(2.31)); // [0, 0.5, 1, 1.5, 2, 2.5]
 * ```
 */
export function niceTicks(max: number, count = 5): number[] {
  if (!(max > 0)) return [0, 1];
  const rough = max / count;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= rough) ?? 10 * power;
  const ticks: number[] = [];
  for (let k = 0; ticks.length === 0 || ticks[ticks.length - 1] < max - 1e-9 * step; k++) {
    ticks.push(Number((k * step).toPrecision(12)));
  }
  return ticks;
}

/** The style of the k-th series: its own fields, the rest from the k-th default style. */
function styleOf(s: Series, k: number): SeriesStyle {
  const fallback = SERIES_STYLES[k % SERIES_STYLES.length];
  return {
    color: s.color ?? fallback.color,
    dash: s.dash ?? fallback.dash,
    marker: s.marker ?? fallback.marker,
  };
}

/**
 * A marker as an outline (no fill), in a size of its own per shape, so markers at the same point (train and
 * test accuracy at the end of an epoch) both stay visible whichever is drawn last.
 */
function markerSvg(kind: SeriesStyle["marker"], cx: number, cy: number, color: string): string {
  const x = cx.toFixed(1), y = cy.toFixed(1);
  const outline = `fill="none" stroke="${color}" stroke-width="1.5"`;
  switch (kind) {
    case "none":
      return "";
    case "square":
      return `<rect x="${(cx - 3.5).toFixed(1)}" y="${
        (cy - 3.5).toFixed(1)
      }" width="7" height="7" ${outline}/>`;
    case "triangle":
      return `<path d="M${x},${(cy - 6).toFixed(1)} L${(cx + 6).toFixed(1)},${(cy + 4).toFixed(1)} ` +
        `L${(cx - 6).toFixed(1)},${(cy + 4).toFixed(1)} Z" ${outline}/>`;
    default:
      return `<circle cx="${x}" cy="${y}" r="3" ${outline}/>`;
  }
}

/** Options of {@link lineChartSvg}. */
export interface ChartOptions {
  /** A title above the plot, e.g. the run's configuration (default: none). */
  title?: string;
  /** The x axis label (default `epoch`). */
  xLabel?: string;
  /** Width in pixels (default 480). */
  width?: number;
  /** Height in pixels (default 320). */
  height?: number;
}

/**
 * Renders the series as a standalone SVG document; the x axis runs from 0 to the largest x (at least 1).
 * The k-th series takes the style fields it leaves out from the k-th of {@link SERIES_STYLES}; markers are
 * outlines, so coinciding points of two curves both show.
 *
 * @example
 * ```ts
 * import { lineChartSvg } from "@nin/webgpu";
 * const svg = lineChartSvg([
 *   { name: "train loss", x: [0.5, 1, 1.5, 2], values: [2.1, 1.2, 0.8, 0.6] }, // solid blue, circles
 *   { name: "test acc", values: [0.7, 0.8], color: "black" }, // black, dashed, squares
 * ], { title: "NiN, lr 0.1", width: 640, height: 400 });
 * console.log(svg.startsWith("<svg")); // true
 * ```
 */
export function lineChartSvg(series: Series[], options: ChartOptions = {}): string {
  const { title, xLabel = "epoch", width = 480, height = 320 } = options;
  const left = 48, right = 130, top = title ? 34 : 16, bottom = 40;
  const plotW = width - left - right, plotH = height - top - bottom;
  const xsOf = (s: Series) => s.x ?? s.values.map((_, i) => i + 1);
  const xMax = Math.max(1, ...series.flatMap((s) => xsOf(s).filter(Number.isFinite)));
  const yMax = Math.max(
    1,
    ...series.flatMap((s) => [...s.values, ...(s.band?.upper ?? [])].filter(Number.isFinite)),
  );
  const xTicks = niceTicks(xMax, Math.min(10, Math.max(5, Math.ceil(xMax))));
  const yTicks = niceTicks(yMax);
  const xEnd = xTicks[xTicks.length - 1], yEnd = yTicks[yTicks.length - 1];
  const x = (v: number) => left + (v / xEnd) * plotW;
  const y = (v: number) => top + plotH - (v / yEnd) * plotH;
  const label = (v: number) => String(Number(v.toPrecision(6)));
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
    `viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
  ];
  if (title) {
    parts.push(
      `<text x="${width / 2}" y="18" text-anchor="middle" font-size="12">${escape(title)}</text>`,
    );
  }
  // Grid first, inside the frame; the frame is drawn over it.
  for (const v of yTicks) {
    if (v > 0 && v < yEnd) {
      parts.push(`<line x1="${left}" x2="${left + plotW}" y1="${y(v)}" y2="${y(v)}" stroke="#eee"/>`);
    }
    parts.push(`<text x="${left - 6}" y="${y(v) + 4}" text-anchor="end">${label(v)}</text>`);
  }
  for (const v of xTicks) {
    if (v > 0 && v < xEnd) {
      parts.push(`<line x1="${x(v)}" x2="${x(v)}" y1="${top}" y2="${top + plotH}" stroke="#eee"/>`);
    }
    parts.push(`<text x="${x(v)}" y="${top + plotH + 16}" text-anchor="middle">${label(v)}</text>`);
  }
  parts.push(`<rect x="${left}" y="${top}" width="${plotW}" height="${plotH}" fill="none" stroke="#888"/>`);
  parts.push(
    `<text x="${left + plotW / 2}" y="${height - 6}" text-anchor="middle">${escape(xLabel)}</text>`,
  );
  series.forEach((s, k) => {
    const { color, dash: pattern, marker } = styleOf(s, k);
    const xs = xsOf(s);
    const points = s.values.map((v, i) => [xs[i], v] as const)
      .filter(([px, v]) => Number.isFinite(px) && Number.isFinite(v));
    const dash = pattern ? ` stroke-dasharray="${pattern}"` : "";
    if (s.band && points.length > 1) {
      const { lower, upper } = s.band;
      const edge = (ys: number[]) => xs.map((px, i) => `${x(px).toFixed(1)},${y(ys[i]).toFixed(1)}`);
      const outline = [...edge(upper), ...edge(lower).reverse()].join(" ");
      parts.push(`<polygon points="${outline}" fill="${color}" fill-opacity="0.15" stroke="none"/>`);
    }
    if (points.length > 1) {
      const d = points.map(([px, v], j) => `${j ? "L" : "M"}${x(px).toFixed(1)},${y(v).toFixed(1)}`).join(
        " ",
      );
      parts.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"${dash}/>`);
    }
    for (const [px, v] of points) parts.push(markerSvg(marker, x(px), y(v), color));
    const ly = top + 14 + k * 18;
    parts.push(
      `<line x1="${left + plotW + 10}" x2="${left + plotW + 34}" y1="${ly - 4}" y2="${ly - 4}" ` +
        `stroke="${color}" stroke-width="2"${dash}/>`,
      markerSvg(marker, left + plotW + 22, ly - 4, color),
      `<text x="${left + plotW + 40}" y="${ly}">${escape(s.name)}</text>`,
    );
  });
  parts.push("</svg>");
  return parts.filter((p) => p !== "").join("\n") + "\n";
}
