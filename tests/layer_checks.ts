// Shared layer checks: one run of a layer's forward and backward compared against its float64 CPU reference,
// used by the per-layer tests (fixed geometries) and the fuzz tests (random ones).
import {
  assertClose,
  assertJsonEqual as assertEquals,
  assertThrowsWith,
  download,
  Tensor,
  withFlops,
} from "./util.ts";
import type { Gpu } from "../lib/gpu/device.ts";
import type { Module } from "../lib/module.ts";
import { Conv2d } from "../lib/layers/conv2d.ts";
import { MaxPool2d } from "../lib/layers/maxpool2d.ts";
import { Random } from "../lib/random.ts";
import { shapeSize } from "../lib/tensor.ts";
import { NinError } from "../lib/errors.ts";
import {
  conv2dBackwardBiasRef,
  conv2dBackwardInputRef,
  conv2dBackwardWeightRef,
  conv2dForwardRef,
  type ConvCase,
  convOutputShape,
} from "./reference/conv2d.ts";
import { maxPool2dBackwardRef, maxPool2dForwardRef, type PoolGeometry } from "./reference/maxpool2d.ts";

// float32 sums of up to ~600 products of values in [-1, 1]: errors stay far below 1e-4 relative.
const CONV_TOL = { atol: 1e-4, rtol: 1e-4 };
// A pooling gradient is a copy (max) or a short float32 sum (average) of dy values.
const POOL_GRAD_TOL = { atol: 1e-6, rtol: 1e-6 };

/**
 * Whether the device's kernel family computes the input gradient of `g`: the gpu family does for stride 1
 * only (NiN's one strided conv is its first layer, which needs none), the software family always.
 */
export function computesInputGrad(gpu: Gpu, g: ConvCase): boolean {
  return gpu.kernels !== "gpu" || g.stride === 1;
}

/**
 * Runs a Conv2d (weights from `Random(seed)`, optionally with a fused ReLU) forward and backward on inputs
 * and output gradients drawn from `rng`, and checks the output shape, the output, and the input, weight
 * and bias gradients against the float64 reference (atol = rtol = 1e-4). Where the device's family has no
 * input gradient for `g` ({@link computesInputGrad}), checks instead that asking for one is a NinError.
 * Messages start with `what`.
 *
 * @example
 * ```ts
 * const g = convCase([2, 3, 7, 5], 5, 3, 1, 1);
 * await checkConv2dAgainstReference(gpu, g, new Random(7), { seed: 3, what: `Conv2d ${JSON.stringify(g)}` });
 * ```
 */
export async function checkConv2dAgainstReference(
  gpu: Gpu,
  g: ConvCase,
  rng: Random,
  options: { seed: number; what: string; fuseRelu?: boolean },
): Promise<void> {
  const { what, fuseRelu = false } = options;
  const conv = new Conv2d(gpu, g.input[1], g.outChannels, g.kernel, g.stride, g.padding, {
    rng: new Random(options.seed),
  });
  const xs = rng.uniformArray(shapeSize(g.input));
  const x = Tensor.fromArray(gpu, xs, g.input);
  const y = fuseRelu ? conv.forwardRelu(x) : conv.forward(x);
  assertEquals(y.shape, convOutputShape(g), `${what} shape`);
  const ws = await conv.weight.value.toArray();
  const bs = await conv.bias.value.toArray();
  const expected = conv2dForwardRef(g, xs, ws, bs).map((v) => fuseRelu ? Math.max(v, 0) : v);
  const ys = await y.toArray();
  assertClose(ys, expected, CONV_TOL, `${what} forward`);
  const dys = rng.uniformArray(y.size);
  // A fused ReLU passes the gradient where its output is positive (the GPU's own output decides, so a
  // value within rounding of 0 cannot make the comparison flaky).
  const passed = fuseRelu ? dys.map((d, i) => ys[i] > 0 ? d : 0) : dys;
  const dy = Tensor.fromArray(gpu, dys, y.shape);
  const inputGrad = computesInputGrad(gpu, g);
  const dx = conv.backward(dy, inputGrad);
  if (dx) {
    assertClose(
      await download(dx),
      conv2dBackwardInputRef(g, passed, ws),
      CONV_TOL,
      `${what} input gradient`,
    );
  }
  assertClose(
    await conv.weight.grad!.toArray(),
    conv2dBackwardWeightRef(g, xs, passed),
    CONV_TOL,
    `${what} weight gradient`,
  );
  assertClose(
    await conv.bias.grad!.toArray(),
    conv2dBackwardBiasRef(g, passed),
    CONV_TOL,
    `${what} bias gradient`,
  );
  if (!inputGrad) {
    const again = fuseRelu ? conv.forwardRelu(x) : conv.forward(x);
    assertThrowsWith(() => conv.backward(dy), NinError, "input gradients of stride-1 convolutions only");
    again.dispose();
  }
  for (const t of [x, y, dy]) t.dispose();
  conv.dispose();
}

/**
 * Runs a MaxPool2d forward and backward on inputs and output gradients drawn from `rng`, and checks the
 * output shape, the dispatched FLOPs (one compare per window element), the output (exactly) and the input
 * gradient against the float64 reference. Messages start with `what`.
 *
 * @example
 * ```ts
 * const g = { n: 1, c: 3, h: 7, w: 7, kernel: 3, stride: 2, padding: 0 };
 * await checkMaxPool2dAgainstReference(gpu, g, new Random(11), JSON.stringify(g));
 * ```
 */
export async function checkMaxPool2dAgainstReference(
  gpu: Gpu,
  g: PoolGeometry,
  rng: Random,
  what: string,
): Promise<void> {
  const xs = rng.uniformArray(g.n * g.c * g.h * g.w);
  const pool = new MaxPool2d(gpu, g.kernel, g.stride, g.padding);
  const x = Tensor.fromArray(gpu, xs, [g.n, g.c, g.h, g.w]);
  const { value: y, flops } = await withFlops(gpu, () => pool.forward(x));
  const ref = maxPool2dForwardRef(xs, g);
  assertEquals(y.shape, [g.n, g.c, ref.oh, ref.ow], `${what} shape`);
  assertEquals(
    flops,
    ref.y.length * g.kernel * g.kernel,
    `${what} forward FLOPs`,
  );
  assertClose(await download(y), ref.y, { atol: 0, rtol: 0 }, `${what} forward`);
  const dys = rng.uniformArray(ref.y.length);
  await checkPoolBackward(gpu, pool, x, dys, (dys) => maxPool2dBackwardRef(ref.argmax, dys, g), what);
}

/**
 * Runs `pool.backward` on `dys` (shaped like the pool's output for `x`), checks the gradient's shape is
 * `x`'s and its values match `expected(dys)` (atol = rtol = 1e-6), then disposes `x`. Messages start with
 * `what`.
 *
 * @example
 * ```ts
 * await checkPoolBackward(gpu, pool, x, dys, (dys) => adaptiveAvgPool2dBackwardRef(dys, shape, out), what);
 * ```
 */
export async function checkPoolBackward(
  gpu: Gpu,
  pool: Module,
  x: Tensor,
  dys: Float32Array,
  expected: (dys: Float32Array) => ArrayLike<number>,
  what: string,
): Promise<void> {
  const dy = Tensor.fromArray(gpu, dys, pool.outputShape(x.shape));
  const dx = pool.backward(dy)!;
  assertEquals(dx.shape, x.shape, `${what} gradient shape`);
  assertClose(await download(dx), expected(dys), POOL_GRAD_TOL, `${what} backward`);
  x.dispose();
  dy.dispose();
}
