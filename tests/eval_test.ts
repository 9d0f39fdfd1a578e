// Evaluation: predictions, the confusion matrix, and `deno task eval` on PyTorch-trained weights.
import { assertJsonEqual, gpuTest, Tensor } from "./util.ts";
import { runTask, taskTest, tinyDataDir } from "./subprocess.ts";
import { nin } from "../lib/nin.ts";
import { confusionMatrix, predictClasses } from "../lib/predict.ts";
import { readSafetensors, saveSafetensors } from "../lib/deno/safetensors_file.ts";

const FIXTURES = new URL("./fixtures/", import.meta.url).pathname;

Deno.test("confusionMatrix counts [label][prediction]", () => {
  assertJsonEqual(confusionMatrix([0, 1, 1, 2], [0, 1, 0, 2], 3), [[1, 0, 0], [1, 1, 0], [0, 0, 1]]);
});

gpuTest(
  "predictClasses is the arg-max of PyTorch's logits on trained weights",
  async (gpu) => {
    const fixture = (await readSafetensors(`${FIXTURES}nin_r96_forward.safetensors`)).tensors;
    const net = nin(gpu);
    net.loadStateDict((await readSafetensors(`${FIXTURES}nin_r96_weights.safetensors`)).tensors);
    const logits = fixture.get("logits")!.data;
    const expected = [0, 1, 2, 3].map((i) => {
      const row = Array.from(logits.subarray(i * 10, i * 10 + 10));
      return row.indexOf(Math.max(...row));
    });
    const x = Tensor.fromArray(gpu, fixture.get("input")!.data, [4, 1, 96, 96]);
    assertJsonEqual(Array.from(await predictClasses(net, x)), expected, "predictions");
    x.dispose();
    net.dispose();
  },
);

taskTest("eval: test accuracy and a confusion matrix with class names for a checkpoint", async () => {
  const dir = await tinyDataDir(8, 20);
  const weights = `${dir}/torch_weights.safetensors`;
  await saveSafetensors(weights, (await readSafetensors(`${FIXTURES}nin_r96_weights.safetensors`)).tensors);
  const result = await runTask("eval", [
    "--checkpoint",
    weights,
    "--data-dir",
    dir,
    "--offline",
    "--resize",
    "96",
  ]);
  if (result.code !== 0) throw new Error(`eval failed: ${result.stderr}`);
  const accuracy = result.stdout.match(/^test acc (\d\.\d{3}) \((\d+)\/20\) at resize 96$/m);
  if (!accuracy) throw new Error(`no accuracy line in:\n${result.stdout}`);
  const rows = result.stdout.split("\n").filter((line) =>
    /^\d (T-shirt|Trouser|Pullover|Dress|Coat|Sandal|Shirt|Sneaker|Bag|Ankle)/.test(line)
  );
  if (rows.length !== 10) throw new Error(`expected 10 confusion-matrix rows:\n${result.stdout}`);
  const counts = rows.map((row) => row.trim().split(/\s+/).slice(-10).map(Number));
  const total = counts.flat().reduce((a, b) => a + b, 0);
  const diagonal = counts.reduce((s, row, i) => s + row[i], 0);
  assertJsonEqual([total, diagonal], [20, Number(accuracy[2])], "matrix total and diagonal");
  await Deno.remove(dir, { recursive: true });
});
