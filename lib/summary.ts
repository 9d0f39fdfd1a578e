/**
 * A torchinfo-style model summary: every leaf layer with its dotted PyTorch name, type, output shape,
 * parameters and multiply-accumulates, read from the model itself (`layerShapes`, each layer's own
 * parameters, `Conv2d.macs`), with no GPU work.
 *
 * @module
 */
import { formatShape } from "./errors.ts";
import { Conv2d } from "./layers/conv2d.ts";
import type { Module } from "./module.ts";
import { layerShapes } from "./shapes.ts";

/** One leaf layer of a {@link ModelSummary}. */
export interface SummaryRow {
  /** Dotted PyTorch name, e.g. `0.2`. */
  name: string;
  /** Class name, e.g. `Conv2d`. */
  type: string;
  /** Output shape for the summary's input shape. */
  outputShape: number[];
  /** Parameters the layer owns (weights and biases). */
  params: number;
  /** Multiply-accumulates of its forward pass on the whole input (convolutions; 0 for the others). */
  macs: number;
}

/**
 * What {@link summary} returns: the rows, their totals and a text table (`toString()`).
 *
 * @example
 * ```ts
 * import { countingGpu, nin, summary } from "@nin/webgpu";
 * const s = summary(nin(countingGpu()), [1, 1, 224, 224]);
 * console.log(s.params, s.macs); // 1992166 762297352
 * ```
 */
export class ModelSummary {
  /** A summary of `rows` for `inputShape`. */
  constructor(readonly inputShape: readonly number[], readonly rows: readonly SummaryRow[]) {}

  /** Total parameters. */
  get params(): number {
    return this.rows.reduce((sum, row) => sum + row.params, 0);
  }

  /** Total multiply-accumulates of one forward pass on the input. */
  get macs(): number {
    return this.rows.reduce((sum, row) => sum + row.macs, 0);
  }

  /** The table: one line per leaf layer, then the totals. */
  toString(): string {
    const int = (n: number) => n.toLocaleString("en-US");
    const rows = this.rows.map((
      r,
    ) => [r.name, r.type, formatShape(r.outputShape), int(r.params), int(r.macs)]);
    return [
      ...textTable([["Layer", "Type", "Output shape", "Params", "MACs"], ...rows], [3, 4]),
      `Input: ${formatShape(this.inputShape)}`,
      `Total params: ${int(this.params)} (${(this.params * 4 / 2 ** 20).toFixed(1)} MiB as float32)`,
      `Total MACs: ${int(this.macs)} (${(this.macs / 1e9).toFixed(3)} G; 1 MAC = 2 FLOPs)`,
    ].join("\n");
  }
}

/**
 * Every leaf layer of `net` for an input of `inputShape`: name, type, output shape, parameters, MACs. The
 * model may live on any device (nothing runs on it); a shape that does not fit throws a `NinError` naming
 * the layer.
 *
 * @example
 * ```ts
 * import { countingGpu, nin, summary } from "@nin/webgpu";
 * console.log(summary(nin(countingGpu()), [1, 1, 224, 224]).toString());
 * ```
 */
export function summary(net: Module, inputShape: readonly number[]): ModelSummary {
  let input = [...inputShape];
  const rows = layerShapes(net, inputShape, true).map(({ name, layer, shape }) => {
    const params = layer.ownParameters().reduce((sum, [, p]) => sum + p.value.size, 0);
    const macs = layer instanceof Conv2d ? layer.macs(input) : 0;
    input = shape;
    return { name, type: layer.constructor.name, outputShape: shape, params, macs };
  });
  return new ModelSummary(inputShape, rows);
}

/** Lines of a text table: columns padded to their widest cell, those in `right` right-aligned. */
export function textTable(rows: readonly string[][], right: readonly number[]): string[] {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  return rows.map((row) =>
    row.map((cell, c) => right.includes(c) ? cell.padStart(widths[c]) : cell.padEnd(widths[c])).join("  ")
      .trimEnd()
  );
}
