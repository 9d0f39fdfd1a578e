// The "gpu" conv2d kernel family (kernels/gpu/, lib/layers/conv2d_gpu.ts), tested through the public layer on
// a device of that family whatever NIN_KERNELS says: results against the float64 reference, gradient
// accumulation across split-K slices, determinism, the strided input gradient's error, workspace
// accounting, every GEMM candidate of the table against the reference, and the launch shapes of one NiN
// training step at 224 x 224, batch 128.
import { assertClose, assertJsonEqual, assertThrowsWith, gpuTest, Tensor } from "./util.ts";
import type { Gpu } from "../lib/gpu/device.ts";
import { countingGpu } from "../lib/gpu/counting.ts";
import { Conv2d } from "../lib/layers/conv2d.ts";
import { NinError } from "../lib/errors.ts";
import { nin } from "../lib/nin.ts";
import { LAUNCH_RULE, PLAN_BINDING_BYTES, planTrainingStep } from "../lib/plan.ts";
import { Random } from "../lib/random.ts";
import { type ConvCase, convCase } from "./reference/conv2d.ts";
import { checkConv2dAgainstReference } from "./layer_checks.ts";
import {
  appliesTo,
  fitsDevice,
  GEMM_CANDIDATES,
  type GemmPass,
} from "../lib/layers/conv2d_gpu_candidates.ts";
import { GEMM_PASSES, geometryKey, SPLIT_TARGETS } from "../lib/tuning.ts";
import type { ConvGeometry } from "../lib/layers/conv2d_passes.ts";

// Odd sizes that are no multiples of the 64 x 64 tiles or the 16-step chunks; k = 3, 5, 1, 2; padding
// beyond k - 1 (the input gradient then crops: padding k - 1 - p < 0); several 64-tiles in every GEMM
// dimension; a split-K weight gradient (positions > 256: several slices) next to direct ones (one slice);
// bias slices longer than one workgroup's 256 positions, stepping across image planes (H*W < 256 and > 256).
const GEOMETRIES: ConvCase[] = [
  convCase([3, 5, 9, 11], 7, 3, 1, 1),
  convCase([2, 4, 7, 6], 6, 5, 1, 2),
  convCase([3, 9, 5, 7], 5, 1),
  convCase([2, 3, 4, 5], 4, 1, 1, 1),
  convCase([2, 3, 6, 5], 3, 2),
  convCase([2, 67, 6, 7], 70, 3, 1, 1),
  convCase([4, 3, 16, 16], 8, 3, 1, 1),
  convCase([200, 1, 5, 5], 70, 1),
  convCase([5, 2, 30, 31], 70, 3, 1, 1),
];

const gpuFamilyTest = (name: string, fn: (gpu: Gpu) => Promise<void> | void) =>
  gpuTest(name, fn, { kernels: "gpu" });

gpuFamilyTest(
  "gpu conv2d family matches the float64 reference (forward, input/weight/bias gradients)",
  async (gpu) => {
    const rng = new Random(21);
    for (const g of GEOMETRIES) {
      await checkConv2dAgainstReference(gpu, g, rng, { seed: 1, what: `gpu Conv2d ${JSON.stringify(g)}` });
    }
  },
);

gpuFamilyTest("gpu conv2d family with the fused ReLU masks the gradient by the saved output", async (gpu) => {
  const rng = new Random(22);
  for (const g of [convCase([3, 5, 9, 11], 7, 3, 1, 1), convCase([2, 67, 6, 7], 70, 1)]) {
    await checkConv2dAgainstReference(gpu, g, rng, {
      seed: 2,
      what: `gpu Conv2d+ReLU ${JSON.stringify(g)}`,
      fuseRelu: true,
    });
  }
});

gpuFamilyTest(
  "gpu conv2d family runs stride 4, k = 11 (NiN's first layer) and rejects its input gradient",
  async (gpu) => {
    const rng = new Random(23);
    for (
      const [g, fuseRelu] of [[convCase([2, 1, 23, 25], 6, 11, 4), false], [
        convCase([3, 2, 31, 29], 5, 11, 4, 1),
        true,
      ]] as const
    ) {
      await checkConv2dAgainstReference(gpu, g, rng, {
        seed: 3,
        what: `gpu Conv2d ${JSON.stringify(g)}`,
        fuseRelu,
      });
    }
  },
);

/** Frees the layer's gradients (the next backward starts them at zero), as the optimizer's zeroGrad does. */
function zeroGrad(conv: Conv2d): void {
  for (const p of [conv.weight, conv.bias]) {
    p.grad?.dispose();
    p.grad = null;
  }
}

/** A fused conv's forward and backward on fixed data; returns the output and the gradients. */
async function run(gpu: Gpu, conv: Conv2d, xs: Float32Array, dys: Float32Array, passes = 1) {
  const x = Tensor.fromArray(gpu, xs, [4, 3, 16, 16]);
  const dy = Tensor.fromArray(gpu, dys, [4, 8, 16, 16]);
  let y: Tensor | null = null;
  let dx: Tensor | null = null;
  for (let i = 0; i < passes; i++) {
    y?.dispose();
    dx?.dispose();
    y = conv.forwardRelu(x);
    dx = conv.backward(dy);
  }
  const out = {
    y: await y!.toArray(),
    dx: await dx!.toArray(),
    dw: await conv.weight.grad!.toArray(),
    db: await conv.bias.grad!.toArray(),
  };
  for (const t of [x, dy, y, dx]) t!.dispose();
  return out;
}

gpuFamilyTest(
  "gpu conv2d family: split-K gradients accumulate exactly and runs are bit-identical",
  async (gpu) => {
    const rng = new Random(24);
    const xs = rng.uniformArray(4 * 3 * 16 * 16);
    const dys = rng.uniformArray(4 * 8 * 16 * 16);
    const exact = { atol: 0, rtol: 0 };
    const conv = new Conv2d(gpu, 3, 8, 3, 1, 1, { rng: new Random(4) });
    // The weight gradient of 1024 positions is split (a reduce follows the GEMM), the bias gradient too.
    const trace = await gpu.trace(() => run(gpu, conv, xs, dys));
    const kernels = trace.map((r) => r.kernel);
    assertJsonEqual(kernels, [
      "conv2d_gpu_forward_relu",
      "conv2d_gpu_backward_bias_relu",
      "conv2d_gpu_backward_bias_reduce",
      "conv2d_gpu_backward_weight",
      "conv2d_gpu_backward_weight_reduce",
      "conv2d_gpu_backward_input_flip",
      "conv2d_gpu_backward_input",
    ], "dispatches of a split-K forward and backward");
    zeroGrad(conv);
    const first = await run(gpu, conv, xs, dys);
    zeroGrad(conv);
    const second = await run(gpu, conv, xs, dys);
    for (const key of ["y", "dx", "dw", "db"] as const) {
      assertClose(second[key], first[key], exact, `second run's ${key}`);
    }
    zeroGrad(conv);
    // Two passes add the same partial sums in the same order twice: exactly twice one pass.
    const twice = await run(gpu, conv, xs, dys, 2);
    assertClose(twice.dw, first.dw.map((v) => 2 * v), exact, "weight gradient after two passes");
    assertClose(twice.db, first.db.map((v) => 2 * v), exact, "bias gradient after two passes");
    conv.dispose();
  },
);

Deno.test("gpu conv2d family: a strided input gradient is a NinError and records nothing", async () => {
  const gpu = countingGpu({ kernels: "gpu" });
  const conv = new Conv2d(gpu, 2, 3, 3, 2, 1);
  const x = Tensor.zeros(gpu, [1, 2, 9, 9]);
  const y = conv.forward(x);
  // deno-lint-ignore require-await
  const records = await gpu.trace(async () => {
    assertThrowsWith(() => conv.backward(y), NinError, "input gradients of stride-1 convolutions only");
  });
  assertJsonEqual(records.length, 0, "dispatches recorded before the error");
  conv.forward(x);
  assertJsonEqual(conv.backward(y, false), null, "backward without an input gradient");
  for (const t of [x, y]) t.dispose();
  conv.dispose();
});

Deno.test("gpu conv2d family: temporaries are workspace, released after the backward; FLOPs as Conv2d's", async () => {
  const gpu = countingGpu({ kernels: "gpu" });
  const conv = new Conv2d(gpu, 96, 256, 5, 1, 2);
  const x = Tensor.zeros(gpu, [16, 96, 26, 26]);
  const y = conv.forwardRelu(x);
  const dy = Tensor.zeros(gpu, y.shape);
  conv.weight.gradOrZeros();
  conv.bias.gradOrZeros();
  const live = gpu.memory.liveBytes;
  gpu.resetPeak();
  // deno-lint-ignore require-await
  const records = await gpu.trace(async () => conv.backward(dy)!.dispose());
  assertJsonEqual(gpu.memory.liveBytes, live, "live bytes after the backward");
  const categories = new Set(gpu.buffersAtPeak.map((b) => b.category));
  for (const c of ["workspace", "activation gradients"]) {
    if (!categories.has(c)) throw new Error(`no ${c} at the backward's peak: ${[...categories]}`);
  }
  const macs = conv.macs(x.shape);
  // The reductions of split passes (whichever the model splits) count 0.
  const flops = Object.fromEntries(records.map((r) => [r.kernel.replace(/_reduce$/, " reduce"), 0]));
  for (const r of records) flops[r.kernel.replace(/_reduce$/, " reduce")] += r.flops;
  const reductions = Object.keys(flops).filter((k) => k.endsWith(" reduce"));
  assertJsonEqual(
    Object.entries(flops).sort(),
    Object.entries({
      conv2d_gpu_backward_bias_relu: y.size,
      conv2d_gpu_backward_weight: 2 * macs,
      conv2d_gpu_backward_input_flip: 0,
      conv2d_gpu_backward_input: 2 * macs,
      ...Object.fromEntries(reductions.map((k) => [k, 0])),
    }).sort(),
    "FLOPs by kernel",
  );
  for (const t of [x, y, dy]) t.dispose();
  conv.dispose();
});

// An H200 binds the whole batch (its binding limit is ~4 GiB; the step's largest tensor, the first conv's
// output, is 143 MB), so the step runs as one micro-batch, as it would there.
Deno.test("gpu conv2d family: >= 95% of a NiN-224 batch-128 training step's FLOPs run in >= 528 workgroups of >= 64", async () => {
  const gpu = countingGpu({ kernels: "gpu", limits: { maxStorageBufferBindingSize: PLAN_BINDING_BYTES } });
  const net = nin(gpu, { seed: 0 });
  const plan = await planTrainingStep(gpu, net, [128, 1, 224, 224]);
  net.dispose();
  assertJsonEqual(plan.microBatch, 128, "micro-batch");
  assertJsonEqual(LAUNCH_RULE, { minWorkgroups: 528, minWorkgroupSize: 64 }, "the rule");
  const share = plan.flopsShareMeetingRule;
  if (share < 0.95) throw new Error(`only ${(100 * share).toFixed(2)}% of the step's FLOPs meet the rule`);
  // Every conv kernel uses >= 64 invocations.
  const convs = plan.dispatches.filter((r) => r.kernel.startsWith("conv2d_gpu"));
  for (const r of convs) {
    if (r.workgroupSize < 64) throw new Error(`${r.scope} ${r.kernel}: ${r.workgroupSize} invocations`);
  }
  const convFlops = convs.reduce((s, r) => s + r.flops, 0);
  if (convFlops < 0.99 * plan.totalFlops) {
    throw new Error(`the convs did only ${convFlops / plan.totalFlops} of the FLOPs`);
  }
});

/** The layer geometry of a reference case (PyTorch's floor output size). */
function geometryOf(c: ConvCase): ConvGeometry {
  const [n, inChannels, height, width] = c.input;
  const out = (size: number) => Math.floor((size + 2 * c.padding - c.kernel) / c.stride) + 1;
  const { outChannels, kernel, stride, padding } = c;
  return {
    n,
    inChannels,
    height,
    width,
    outChannels,
    outHeight: out(height),
    outWidth: out(width),
    kernel,
    stride,
    padding,
  };
}

// Each candidate forced on every pass it runs (as a tuned choice): a fused layer whose weight gradient is split (546
// positions: 3 slices), one with a crop in its input gradient (padding 2 > k - 1), channel counts over 64
// and reductions that are no multiple of any chunk, straight into dw; and a strided window (no input
// gradient); a 1 x 1 layer. Small sizes: the point is every shape's indexing, not its speed.
const CANDIDATE_CASES: [ConvCase, number, boolean, string[]][] = [
  [convCase([3, 5, 13, 14], 7, 3, 1, 1), SPLIT_TARGETS.at(-1)!, true, ["conv2d_gpu_backward_weight_reduce"]],
  [convCase([2, 67, 5, 6], 70, 2, 1, 2), SPLIT_TARGETS[0], false, []],
  [convCase([2, 3, 9, 9], 5, 3, 2, 1), SPLIT_TARGETS[0], false, []],
  // Reductions of 540 steps: the forward and the input gradient split into 3 slices each.
  [convCase([2, 60, 5, 5], 60, 3, 1, 1), SPLIT_TARGETS.at(-1)!, true, [
    "conv2d_gpu_forward_relu_reduce",
    "conv2d_gpu_backward_input_reduce",
  ]],
  // 1 x 1 with 24-position planes: the pointwise candidate's case too (vec4 loads), 70 and 67 channels; and
  // one whose 520 input channels split.
  [convCase([3, 70, 4, 6], 67, 1), SPLIT_TARGETS[1], true, []],
  [convCase([1, 520, 2, 2], 8, 1), SPLIT_TARGETS.at(-1)!, false, ["conv2d_gpu_forward_reduce"]],
];

/** The pass a GEMM kernel's dispatch runs. */
const PASS_OF_KERNEL: Record<string, GemmPass> = {
  conv2d_gpu_forward: "forward",
  conv2d_gpu_forward_relu: "forward",
  conv2d_gpu_backward_input: "input gradient",
  conv2d_gpu_backward_weight: "weight gradient",
};

for (const candidate of GEMM_CANDIDATES) {
  gpuFamilyTest(`gpu conv2d GEMM candidate ${candidate.name} matches the float64 reference`, async (gpu) => {
    if (!fitsDevice(candidate, gpu.limits)) {
      // Only a candidate beyond this adapter's workgroup memory is left out, and never the default shape.
      if (candidate === GEMM_CANDIDATES[0]) throw new Error("the first candidate must run everywhere");
      console.log(`  ${candidate.name}: beyond this adapter's limits, not run`);
      return;
    }
    const saved = gpu.tuning;
    const rng = new Random(25);
    try {
      for (const [c, target, fuseRelu, splits] of CANDIDATE_CASES) {
        const g = geometryOf(c);
        const passes = GEMM_PASSES.filter((pass) => appliesTo(candidate, g, pass));
        if (passes.length === 0) continue;
        const choices = Object.fromEntries(passes.map((pass) => [
          pass,
          { candidate: candidate.name, target },
        ]));
        gpu.tuning = { choices: { [geometryKey(g)]: choices }, cached: false };
        const what = `${candidate.name} ${JSON.stringify(c)}`;
        const records = await gpu.trace(() =>
          checkConv2dAgainstReference(gpu, c, rng, { seed: 5, what, fuseRelu })
        );
        // Every pass the candidate runs ran it (a strided case runs its forward twice: the check's second
        // forward precedes the refused input gradient).
        const ran = records.filter((r) =>
          PASS_OF_KERNEL[r.kernel] && passes.includes(PASS_OF_KERNEL[r.kernel])
        )
          .map((r) => `${PASS_OF_KERNEL[r.kernel]}: ${r.candidate.split(" ")[0]}`);
        const expected = passes.filter((pass) => c.stride === 1 || pass !== "input gradient")
          .flatMap((pass) => pass === "forward" && c.stride !== 1 ? [pass, pass] : [pass]);
        assertJsonEqual(ran.sort(), expected.map((pass) => `${pass}: ${candidate.name}`).sort(), what);
        const reduced = records.filter((r) => r.kernel.endsWith("_reduce") && !r.kernel.includes("bias"))
          .map((r) => r.kernel);
        const split = splits.filter((k) => passes.includes(PASS_OF_KERNEL[k.replace("_reduce", "")]));
        assertJsonEqual(reduced.sort(), split.sort(), `${what}: split passes`);
      }
    } finally {
      gpu.tuning = saved;
    }
  });
}
