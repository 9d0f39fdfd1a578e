// The package used as a library from another directory, as a new user would: a script in a fresh directory
// with no deno.json of its own imports mod.ts, loads the data, trains two steps and prints the summary.
import { match } from "node:assert/strict";
import { ROOT, taskTest, TEST_CACHE_DIR } from "./subprocess.ts";

const SCRIPT = `
import { loadFashionMnist, nin, requestGpu, resizeImages, SGD, summary, trainStep } from "${ROOT}mod.ts";

const gpu = await requestGpu();
const net = nin(gpu, { seed: 0 });
const opt = new SGD(net.parameters(), { lr: 0.05 });
const { train } = await loadFashionMnist({ download: false });
for (let step = 0; step < 2; step++) {
  const at = step * 4;
  const images = resizeImages(gpu, train.images.subarray(at * 784, (at + 4) * 784), 4, 28, 28, 67);
  const { loss } = await trainStep(net, opt, images, train.labels.subarray(at, at + 4));
  images.dispose();
  console.log("step", step, "loss", loss.toFixed(3));
}
console.log(String(summary(net, [1, 1, 224, 224])));
gpu.destroy();
`;

taskTest(
  "a script outside the repository imports the package, loads data, trains and prints a summary",
  async () => {
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeTextFile(`${dir}/main.ts`, SCRIPT);
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-all", "main.ts"],
        cwd: dir,
        env: { NIN_CACHE_DIR: TEST_CACHE_DIR },
        stdout: "piped",
        stderr: "piped",
        stdin: "null",
      }).output();
      const [stdout, stderr] = [out.stdout, out.stderr].map((b) => new TextDecoder().decode(b));
      if (out.code !== 0) throw new Error(`exit ${out.code}:\n${stderr}`);
      match(stdout, /step 0 loss \d\.\d{3}\nstep 1 loss \d\.\d{3}/);
      match(stdout, /1,992,166/, "the summary's parameter total");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
