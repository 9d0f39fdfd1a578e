// Every candidate of the software family's convolutions (lib/kernel_candidates.ts), pinned in turn, against
// the float64 reference: forward (plain and ReLU-fused) and gradients. Texture candidates on an adapter
// without read-only storage textures must refuse with a NinError rather than fall back.
import { assertThrowsWith, gpuTest, Tensor } from "./util.ts";
import { Conv2d } from "../lib/layers/conv2d.ts";
import { NinError } from "../lib/errors.ts";
import { Random } from "../lib/random.ts";
import { countingGpu } from "../lib/gpu/counting.ts";
import { candidateNamed, pinCandidate, SOFTWARE_CONV_CANDIDATES } from "../lib/kernel_candidates.ts";
import { type ConvCase, convCase } from "./reference/conv2d.ts";
import { checkConv2dAgainstReference } from "./layer_checks.ts";

// Channel counts off the texel width (3, 9, 70), the first layer's 11/4/0 on one channel, stride and
// padding, 1x1, and more positions and channels than one workgroup's block.
const CONFIGS: ConvCase[] = [
  convCase([2, 3, 7, 5], 5, 3, 1, 1),
  convCase([1, 1, 23, 25], 6, 11, 4, 0),
  convCase([2, 4, 8, 9], 9, 3, 2, 2),
  convCase([4, 9, 3, 3], 17, 1, 1, 0),
  convCase([2, 70, 5, 4], 67, 3, 1, 1),
];

for (const candidate of SOFTWARE_CONV_CANDIDATES) {
  gpuTest(`software conv candidate "${candidate.name}" matches the float64 reference`, async (gpu) => {
    if (candidate.operands === "texture" && !gpu.readOnlyStorageTextures) {
      // Nothing to run here; the refusal is tested below.
      return;
    }
    pinCandidate(gpu, candidate);
    try {
      const rng = new Random(5);
      for (const [i, g] of CONFIGS.entries()) {
        const what = `${candidate.name} ${JSON.stringify(g)}`;
        await checkConv2dAgainstReference(gpu, g, rng, { seed: i, what, fuseRelu: i % 2 === 1 });
      }
    } finally {
      pinCandidate(gpu, undefined);
    }
  }, { kernels: "software" });
}

Deno.test("a pinned texture candidate on an adapter without read-only storage textures is refused", () => {
  const gpu = countingGpu({ kernels: "software", readOnlyStorageTextures: false });
  pinCandidate(gpu, candidateNamed("texture 12x8"));
  const conv = new Conv2d(gpu, 3, 4, 3, 1, 1);
  const x = Tensor.zeros(gpu, [1, 3, 5, 5]);
  assertThrowsWith(() => conv.forward(x), NinError, "no read-only storage textures");
});

Deno.test("the plan picks buffer kernels where read-only storage textures are missing", async () => {
  for (const textures of [false, true]) {
    const gpu = countingGpu({ kernels: "software", readOnlyStorageTextures: textures });
    const conv = new Conv2d(gpu, 3, 4, 3, 1, 1);
    const records = await gpu.trace(() => {
      const y = conv.forward(Tensor.zeros(gpu, [1, 3, 5, 5]));
      conv.backward(Tensor.zeros(gpu, y.shape));
      return Promise.resolve();
    });
    const kernels = records.map((r) => r.kernel);
    for (const pass of ["forward", "backward_weight", "backward_input"]) {
      const fed = kernels.some((k) => k.startsWith(`conv2d_texture_${pass}`));
      if (fed !== textures) throw new Error(`textures ${textures}: ran ${kernels.join(" ")}`);
    }
  }
});
