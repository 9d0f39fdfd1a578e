/**
 * A small SVG line chart of per-epoch metrics, like d2l's Animator (loss, train acc, test acc vs epoch).
 *
 * @module
 */

/** One named series of y values, one per epoch. */
export interface Series {
  /** Legend label. */
  name: string;
  /** Values, index i for epoch i + 1 (NaN or missing values are skipped). */
  values: number[];
  /** Stroke colour. */
  color: string;
  /** Dashed line. */
  dashed?: boolean;
}

const escape = (s: string) => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * Renders series against epochs 1..n as a standalone SVG document.
 *
 * @example
 * ```ts
 * import { lineChartSvg } from "./svg_plot.ts";
 * const svg = lineChartSvg([{ name: "train loss", values: [1.2, 0.8, 0.6], color: "#1f77b4" }]);
 * console.log(svg.startsWith("<svg")); // true
 * ```
 */
export function lineChartSvg(series: Series[], title = "epoch", width = 480, height = 320): string {
  const left = 48, right = 130, top = 16, bottom = 40;
  const plotW = width - left - right, plotH = height - top - bottom;
  const epochs = Math.max(1, ...series.map((s) => s.values.length));
  const finite = series.flatMap((s) => s.values.filter(Number.isFinite));
  const yMax = Math.max(1, ...finite);
  const x = (i: number) => left + (epochs === 1 ? plotW / 2 : (i * plotW) / (epochs - 1));
  const y = (v: number) => top + plotH - (v / yMax) * plotH;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
    `viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<rect x="${left}" y="${top}" width="${plotW}" height="${plotH}" fill="none" stroke="#888"/>`,
  ];
  for (let k = 0; k <= 4; k++) {
    const v = (yMax * k) / 4;
    parts.push(`<text x="${left - 6}" y="${y(v) + 4}" text-anchor="end">${v.toFixed(2)}</text>`);
    parts.push(`<line x1="${left}" x2="${left + plotW}" y1="${y(v)}" y2="${y(v)}" stroke="#eee"/>`);
  }
  for (let i = 0; i < epochs; i++) {
    parts.push(`<text x="${x(i)}" y="${top + plotH + 16}" text-anchor="middle">${i + 1}</text>`);
  }
  parts.push(`<text x="${left + plotW / 2}" y="${height - 6}" text-anchor="middle">${escape(title)}</text>`);
  series.forEach((s, k) => {
    const points = s.values.map((v, i) => [i, v] as const).filter(([, v]) => Number.isFinite(v));
    const dash = s.dashed ? ` stroke-dasharray="5,3"` : "";
    if (points.length > 1) {
      const d = points.map(([i, v], j) => `${j ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
      parts.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${dash}/>`);
    }
    for (const [i, v] of points) {
      parts.push(`<circle cx="${x(i).toFixed(1)}" cy="${y(v).toFixed(1)}" r="3" fill="${s.color}"/>`);
    }
    const ly = top + 14 + k * 18;
    parts.push(
      `<line x1="${left + plotW + 10}" x2="${left + plotW + 30}" y1="${ly - 4}" y2="${ly - 4}" ` +
        `stroke="${s.color}" stroke-width="2"${dash}/>`,
      `<text x="${left + plotW + 34}" y="${ly}">${escape(s.name)}</text>`,
    );
  });
  parts.push("</svg>");
  return parts.join("\n") + "\n";
}
