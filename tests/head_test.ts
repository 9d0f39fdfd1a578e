// The model variants (exercises 2 and 4): the gradual head's parameters counted by hand, the direct head
// keeping PyTorch's names and shapes, and a state dict telling which variant it holds.
import { assertJsonEqual, gpuTest } from "./util.ts";
import { Random } from "../lib/random.ts";
import { countingGpu } from "../lib/gpu/counting.ts";
import { nin, NIN_HEADS, ninBlock, ninShapeOptions } from "../lib/nin.ts";
import { readSafetensors } from "../lib/deno/safetensors_file.ts";
import { summary } from "../lib/summary.ts";

/** Weights and biases of a k x k convolution from i to o channels. */
const convParams = (i: number, o: number, k: number) => i * o * k * k + o;

Deno.test("the gradual head: 3x3 384->384, 1x1 384->96, 1x1 96->10, counted by hand", () => {
  const gpu = countingGpu();
  const direct = summary(nin(gpu), [1, 1, 224, 224]);
  const gradual = summary(nin(gpu, { head: "gradual" }), [1, 1, 224, 224]);
  const directHead = convParams(384, 10, 3) + 2 * convParams(10, 10, 1);
  const gradualHead = convParams(384, 384, 3) + convParams(384, 96, 1) + convParams(96, 10, 1);
  assertJsonEqual(gradual.params - direct.params, gradualHead - directHead, "parameter difference");
  // MACs of the head on the 5x5 map: 25 positions times the weights.
  const headMacs = (s: typeof direct) =>
    s.rows.filter((r) => r.name.startsWith("7.")).reduce((a, r) => a + r.macs, 0);
  assertJsonEqual(headMacs(gradual), 25 * (384 * 384 * 9 + 384 * 96 + 96 * 10), "gradual head MACs");
  assertJsonEqual(
    gradual.rows.filter((r) => r.name.startsWith("7.")).map((r) => [r.name, r.outputShape[1]]),
    [["7.0", 384], ["7.1", 384], ["7.2", 96], ["7.3", 96], ["7.4", 10], ["7.5", 10]],
    "gradual head rows",
  );
});

Deno.test("the direct head keeps the chapter's PyTorch names and shapes", async () => {
  const fixture = await readSafetensors(
    new URL("./fixtures/nin_r96_weights.safetensors", import.meta.url).pathname,
  );
  const net = nin(countingGpu());
  const ours = net.namedParameters().map(([name, p]) => [name, p.value.shape]).sort();
  const torch = [...fixture.tensors].filter(([name]) => /^\d+\.\d+\.(weight|bias)$/.test(name))
    .map(([name, t]) => [name, t.shape]).sort();
  assertJsonEqual(ours, torch, "names and shapes");
});

Deno.test("a state dict tells its 1x1 convolutions per block and its head", () => {
  for (const head of NIN_HEADS) {
    for (const oneByOneConvs of [0, 1, 2]) {
      const net = nin(countingGpu(), { oneByOneConvs, head });
      const tensors = new Map(net.namedParameters().map(([name, p]) => [name, p.value]));
      assertJsonEqual(ninShapeOptions(tensors), { oneByOneConvs, head }, `${oneByOneConvs}, ${head}`);
    }
  }
  assertJsonEqual(ninShapeOptions(new Map()), null, "an empty state dict");
});

gpuTest(
  "weights are drawn in layer order whatever the head: the first block is the seed's first draw",
  async (gpu) => {
    for (const head of NIN_HEADS) {
      const net = nin(gpu, { seed: 4, head });
      const first = ninBlock(gpu, 1, 96, 11, 4, 0, { rng: new Random(4) });
      const [a, b] = [net.namedParameters()[0][1].value, first.namedParameters()[0][1].value];
      assertJsonEqual(
        Array.from(await a.toArray()),
        Array.from(await b.toArray()),
        `0.0.weight with the ${head} head`,
      );
      net.dispose();
      first.dispose();
    }
  },
);
