/**
 * Output shapes of a model's layers for an input shape, walked without GPU work: the one shape walk that
 * steps, summaries, micro-batching and the tasks' flag checks use.
 *
 * @module
 */
import { formatShape, NinError } from "./errors.ts";
import type { Module } from "./module.ts";

/** One row of {@link layerShapes}: a layer's dotted PyTorch name, the layer, and its output shape. */
export interface LayerShape {
  /** Dotted PyTorch index, e.g. `0.2`. */
  name: string;
  /** The layer. */
  layer: Module;
  /** Output shape for the given input. */
  shape: number[];
}

/**
 * Output shapes of every layer (the top-level ones, or every leaf with `leaves`) for an input shape,
 * without GPU work. An input too small for the network throws a {@link NinError} naming the first layer
 * whose output would be empty and the smallest square input size that works; any other mismatch (channels,
 * rank) names the layer and its own message (expected and actual shapes).
 *
 * @example
 * ```ts
 * import { layerShapes, nin, requestGpu } from "@nin/webgpu";
 * const gpu = await requestGpu();
 * for (const row of layerShapes(nin(gpu), [1, 1, 224, 224])) console.log(row.name, row.shape);
 * gpu.destroy();
 * ```
 */
export function layerShapes(net: Module, inputShape: readonly number[], leaves = false): LayerShape[] {
  const rows: LayerShape[] = [];
  const walk = (module: Module, prefix: string, shape: number[]): number[] => {
    for (const [name, child] of module.children()) {
      const full = prefix + name;
      if (leaves && child.children().length > 0) {
        shape = walk(child, `${full}.`, shape);
        continue;
      }
      try {
        shape = child.outputShape(shape);
      } catch (e) {
        if (!(e instanceof NinError)) throw e;
        const layer = `layer ${full} (${child.constructor.name})`;
        // "Too small" only when a larger image of the same batch and channels would pass; a wrong channel
        // count or rank is a mismatch, not a size problem.
        const smallest = inputShape.length === 4 ? smallestInputSize(net, inputShape) : null;
        if (smallest !== null && Math.min(inputShape[2], inputShape[3]) < smallest) {
          throw new NinError(
            `input ${formatShape(inputShape)} is too small for ${layer}: ${e.message}; ` +
              `the smallest input that works is ${smallest}x${smallest}`,
          );
        }
        throw new NinError(`input ${formatShape(inputShape)} does not fit ${layer}: ${e.message}`);
      }
      rows.push({ name: full, layer: child, shape });
    }
    return shape;
  };
  walk(net, "", [...inputShape]);
  return rows;
}

/** The smallest square spatial size the network accepts for this batch and channel count, or null. */
export function smallestInputSize(net: Module, inputShape: readonly number[], max = 4096): number | null {
  for (let size = 1; size <= max; size++) {
    try {
      net.outputShape([inputShape[0], inputShape[1], size, size]);
      return size;
    } catch (e) {
      if (!(e instanceof NinError)) throw e;
    }
  }
  return null;
}
