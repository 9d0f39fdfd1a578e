// Parity with PyTorch: the fixtures in tests/fixtures/ were written by make_fixtures.py (float64 PyTorch math
// from trained weights and real Fashion-MNIST images); these tests reproduce them on the GPU. Tolerances:
// logits 1e-4 absolute; losses 1e-4 relative; gradients 2e-5 of the tensor's largest gradient + 1e-4 relative;
// weight updates (w - w0) 1e-4 of the largest update + 1e-3 relative (PyTorch's own float32 run stays within
// ~2e-5 of its float64 one on these fixtures).
import { assertClose, gpuTest, Tensor } from "./util.ts";
import { nin } from "../lib/nin.ts";
import { SGD } from "../lib/optim.ts";
import { trainStep } from "../lib/train.ts";
import { resizeImages } from "../lib/resize.ts";
import type { HostTensor } from "../lib/safetensors.ts";
import { readSafetensors } from "../lib/deno/safetensors_file.ts";
import type { Gpu } from "../lib/gpu/device.ts";
import type { Module } from "../lib/module.ts";

const FIXTURES = new URL("./fixtures/", import.meta.url);
const weights = (await readSafetensors(new URL("nin_r96_weights.safetensors", FIXTURES).pathname)).tensors;

function slice(t: HostTensor, index: number): Float32Array {
  const per = t.data.length / t.shape[0];
  return Float32Array.from(t.data.subarray(index * per, (index + 1) * per));
}

/** Checks the parameter's change from the start against PyTorch's, relative to the largest change. */
async function assertUpdate(
  net: Module,
  name: string,
  indices: HostTensor,
  expected: HostTensor,
  what: string,
) {
  const now = await net.stateDict().get(name)!.toArray();
  const start = weights.get(name)!.data;
  const actual = Float64Array.from(indices.data, (i) => now[i] - start[i]);
  const want = Float64Array.from(indices.data, (i, k) => expected.data[k] - start[i]);
  const scale = Math.max(...Array.from(want, Math.abs));
  assertClose(actual, want, { atol: 1e-4 * scale, rtol: 1e-3 }, what);
}

async function gradsAt(net: Module, name: string, indices: HostTensor): Promise<Float64Array> {
  const p = new Map(net.namedParameters()).get(name)!;
  const all = await p.grad!.toArray();
  return Float64Array.from(indices.data, (i) => all[i]);
}

gpuTest(
  "NiN forward logits match PyTorch (float64) within 1e-4 on trained weights and real images",
  async (gpu) => {
    const fixture =
      (await readSafetensors(new URL("nin_r96_forward.safetensors", FIXTURES).pathname)).tensors;
    const net = nin(gpu, { seed: 1 });
    net.loadStateDict(weights);
    net.eval();
    const expected = fixture.get("logits")!.data;
    // From PyTorch's own resized input.
    const x = Tensor.fromArray(gpu, fixture.get("input")!.data, [4, 1, 96, 96]);
    const logits = net.forward(x);
    assertClose(await logits.toArray(), expected, { atol: 1e-4, rtol: 0 }, "logits from the fixture's input");
    // From the raw uint8 images through our GPU resize: the whole input pipeline.
    const images = fixture.get("images_u8")!.data as Uint8Array;
    const resized = resizeImages(gpu, images, 4, 28, 28, 96);
    assertClose(
      await resized.toArray(),
      fixture.get("input")!.data,
      { atol: 1e-6, rtol: 0 },
      "resized input",
    );
    const logits2 = net.forward(resized);
    assertClose(await logits2.toArray(), expected, { atol: 1e-4, rtol: 0 }, "logits from the raw images");
    for (const t of [x, logits, resized, logits2]) t.dispose();
    net.dispose();
  },
);

async function runTraining(
  gpu: Gpu,
  momentum: number,
  weightDecay: number,
  steps: number,
  check: (
    step: number,
    net: Module,
    loss: number,
  ) => Promise<void>,
) {
  const fixture = (await readSafetensors(new URL("nin_r96_train.safetensors", FIXTURES).pathname)).tensors;
  const net = nin(gpu, { dropout: 0 });
  net.loadStateDict(weights);
  const opt = new SGD(net.parameters(), { lr: 0.05, momentum, weightDecay });
  for (let s = 0; s < steps; s++) {
    const images = Tensor.fromArray(gpu, slice(fixture.get("input")!, s), [8, 1, 96, 96]);
    const labels = slice(fixture.get("labels")!, s);
    const { loss } = await trainStep(net, opt, images, labels);
    images.dispose();
    await check(s + 1, net, loss);
  }
  opt.dispose();
  net.dispose();
  return fixture;
}

gpuTest(
  "training matches PyTorch: losses, gradients after step 1, weights after 1 and 4 SGD steps",
  async (gpu) => {
    const fixture = (await readSafetensors(new URL("nin_r96_train.safetensors", FIXTURES).pathname)).tensors;
    const losses = fixture.get("losses")!.data;
    const names = [...weights.keys()];
    await runTraining(gpu, 0, 0, 4, async (step, net, loss) => {
      assertClose([loss], [losses[step - 1]], { atol: 0, rtol: 1e-4 }, `loss of step ${step}`);
      if (step === 1) {
        for (const name of names) {
          // Gradients: relative to the tensor's scale, since many entries are tiny sums of cancelling terms.
          const expected = fixture.get(`grad.${name}`)!.data;
          const scale = Math.max(...Array.from(expected, Math.abs));
          const actual = await gradsAt(net, name, fixture.get(`grad_idx.${name}`)!);
          assertClose(actual, expected, { atol: 2e-5 * scale, rtol: 1e-4 }, `gradient of ${name}`);
        }
      }
      if (step === 1 || step === 4) {
        for (const name of names) {
          const indices = fixture.get(`grad_idx.${name}`)!;
          await assertUpdate(
            net,
            name,
            indices,
            fixture.get(`w${step}.${name}`)!,
            `${name} after ${step} steps`,
          );
        }
      }
    });
  },
);

gpuTest("training with momentum 0.9 and weight decay matches PyTorch after 4 steps", async (gpu) => {
  const fixture = (await readSafetensors(new URL("nin_r96_train.safetensors", FIXTURES).pathname)).tensors;
  const losses = fixture.get("m_losses")!.data;
  await runTraining(gpu, 0.9, 5e-4, 4, async (step, net, loss) => {
    assertClose([loss], [losses[step - 1]], { atol: 0, rtol: 1e-4 }, `momentum loss of step ${step}`);
    if (step < 4) return;
    for (const name of weights.keys()) {
      const indices = fixture.get(`grad_idx.${name}`)!;
      await assertUpdate(net, name, indices, fixture.get(`m_w4.${name}`)!, `${name} after 4 momentum steps`);
    }
  });
});
