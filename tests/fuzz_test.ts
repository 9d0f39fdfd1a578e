// Property tests: Conv2d and MaxPool2d with random valid (kernel, stride, padding, sizes, channels, batch)
// against the float64 CPU references, forward and backward; random invalid ones against the error path
// (a NinError naming the layer, and nothing allocated). Seeded and bounded so it runs in every test run.
import { strictEqual } from "node:assert/strict";
import { assertThrowsWith, gpuTest, Tensor } from "./util.ts";
import type { Gpu } from "../lib/gpu/device.ts";
import { NinError } from "../lib/errors.ts";
import { Conv2d } from "../lib/layers/conv2d.ts";
import { MaxPool2d } from "../lib/layers/maxpool2d.ts";
import { Random } from "../lib/random.ts";
import { convCase } from "./reference/conv2d.ts";
import type { PoolGeometry } from "./reference/maxpool2d.ts";
import { checkConv2dAgainstReference, checkMaxPool2dAgainstReference } from "./layer_checks.ts";

const CASES = 40;

/** An integer in [lo, hi]. */
function between(rng: Random, lo: number, hi: number): number {
  return lo + rng.int(hi - lo + 1);
}

/** Asserts `fn` throws a NinError containing `part` and leaves no new buffer allocated. */
function assertRefusedWithoutLeak(gpu: Gpu, fn: () => unknown, part: string, what: string) {
  const live = gpu.memory.liveBuffers;
  try {
    assertThrowsWith(fn, NinError, part);
  } catch (e) {
    throw new Error(`${what}: ${(e as Error).message}`);
  }
  strictEqual(gpu.memory.liveBuffers, live, `${what}: live buffers after the error`);
}

gpuTest(
  `fuzz: ${CASES} random Conv2d geometries match the reference, forward and backward, with and without ReLU`,
  async (gpu) => {
    const rng = new Random(2024);
    for (let trial = 0; trial < CASES; trial++) {
      const kernel = between(rng, 1, 5);
      const padding = between(rng, 0, 2);
      const smallest = Math.max(1, kernel - 2 * padding);
      const side = () => between(rng, smallest, smallest + 9);
      const input = [between(rng, 1, 3), between(rng, 1, 5), side(), side()];
      const g = convCase(input, between(rng, 1, 6), kernel, between(rng, 1, 3), padding);
      const fuseRelu = rng.int(2) === 1;
      await checkConv2dAgainstReference(gpu, g, rng, {
        seed: trial,
        fuseRelu,
        what: `trial ${trial} ${JSON.stringify(g)} relu ${fuseRelu}`,
      });
    }
  },
);

gpuTest(
  `fuzz: ${CASES} random MaxPool2d geometries match the reference, forward and backward`,
  async (gpu) => {
    const rng = new Random(4051);
    for (let trial = 0; trial < CASES; trial++) {
      const kernel = between(rng, 1, 5);
      const padding = between(rng, 0, Math.floor(kernel / 2));
      const smallest = Math.max(1, kernel - 2 * padding);
      const g: PoolGeometry = {
        n: between(rng, 1, 3),
        c: between(rng, 1, 4),
        h: between(rng, smallest, smallest + 10),
        w: between(rng, smallest, smallest + 10),
        kernel,
        stride: between(rng, 1, 4),
        padding,
      };
      await checkMaxPool2dAgainstReference(gpu, g, rng, `trial ${trial} ${JSON.stringify(g)}`);
    }
  },
);

gpuTest(
  `fuzz: ${CASES * 3} random invalid Conv2d and MaxPool2d arguments and inputs take the error path`,
  (gpu) => {
    const rng = new Random(77);
    const badInts = [0, -1, -3, 1.5, NaN, Infinity];
    for (let trial = 0; trial < CASES; trial++) {
      // Constructor arguments: one of them out of range.
      const args = [
        between(rng, 1, 4),
        between(rng, 1, 4),
        between(rng, 1, 5),
        between(rng, 1, 3),
        between(rng, 0, 2),
      ];
      const names = ["inChannels", "outChannels", "kernelSize", "stride", "padding"];
      const which = rng.int(5);
      const bad = names[which] === "padding"
        ? [-1, -2, 0.5, NaN][rng.int(4)]
        : badInts[rng.int(badInts.length)];
      args[which] = bad;
      const [ic, oc, k, s, p] = args;
      assertRefusedWithoutLeak(
        gpu,
        () => new Conv2d(gpu, ic, oc, k, s, p),
        `Conv2d: ${names[which]} must be an integer`,
        `conv args ${args}`,
      );

      const pk = between(rng, 1, 5);
      const poolArgs: [number, number, number] = [
        pk,
        between(rng, 1, 3),
        between(rng, 0, Math.floor(pk / 2)),
      ];
      const poolWhich = rng.int(3);
      poolArgs[poolWhich] = poolWhich === 2
        ? [Math.floor(pk / 2) + 1 + rng.int(2), -1][rng.int(2)]
        : badInts[rng.int(badInts.length)];
      const expected = poolWhich === 0
        ? "kernel size must be a positive integer"
        : poolWhich === 1
        ? "stride must be a positive integer"
        : "padding must be";
      assertRefusedWithoutLeak(gpu, () => new MaxPool2d(gpu, ...poolArgs), expected, `pool args ${poolArgs}`);
    }
    const conv = new Conv2d(gpu, 3, 2, 5, 2, 1);
    const pool = new MaxPool2d(gpu, 4, 2, 1);
    for (let trial = 0; trial < CASES; trial++) {
      // Inputs: too small for the window, wrong channel count, or wrong rank.
      const kind = rng.int(3);
      const n = between(rng, 1, 3);
      const small = between(rng, 1, 2); // the smallest valid size is 5 - 2 = 3 for conv, 4 - 2 = 2 for pool
      if (kind === 0) {
        const tall = rng.int(2) === 1;
        const shape = [n, 3, tall ? 9 : small, tall ? small : 9];
        const x = Tensor.zeros(gpu, shape);
        assertRefusedWithoutLeak(
          gpu,
          () => conv.forward(x),
          "would produce an empty output",
          `conv ${shape}`,
        );
        x.dispose();
      } else if (kind === 1) {
        const channels = [1, 2, 4, 5][rng.int(4)];
        const shape = [n, channels, 8, 8];
        assertRefusedWithoutLeak(
          gpu,
          () => conv.outputShape(shape),
          `expects 3 input channels, got ${channels}`,
          `conv ${shape}`,
        );
      } else {
        const shape = [n, 3, 8, 8, 1].slice(0, [1, 2, 3, 5][rng.int(4)]);
        assertRefusedWithoutLeak(
          gpu,
          () => conv.outputShape(shape),
          "expects a 4-d input [N, C, H, W]",
          `conv ${shape}`,
        );
        assertRefusedWithoutLeak(
          gpu,
          () => pool.outputShape(shape),
          "expects a 4-d input [N, C, H, W]",
          `pool ${shape}`,
        );
      }
      const poolShape = [n, 2, 1, between(rng, 1, 6)];
      assertRefusedWithoutLeak(
        gpu,
        () => pool.outputShape(poolShape),
        "gives an empty output; needs H, W >= 2",
        `pool ${poolShape}`,
      );
    }
    conv.dispose();
  },
);
