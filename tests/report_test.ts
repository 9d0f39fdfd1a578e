// `deno task report --quick`: one process per engine, both kernel families, and every figure the report
// promises in report.json (and a report.md naming them).
import { ok } from "node:assert/strict";
import { runTask, taskTest, tinyDataDir } from "./subprocess.ts";

// The report runs both engines and both families itself: once per `deno task test`, in the leg on Deno over
// Vulkan with the whole suite (the gpu family's; over OpenGL, Deno's shader path runs the gpu family's GEMM
// candidates very slowly, see the README), and in a plain `deno test` wherever OpenGL is not asked for.
const reportLeg = Deno.env.get("DENO_WEBGPU_BACKEND") !== "gl";

taskTest("report --quick: every engine and family measured; report.json names every figure", async () => {
  const out = await Deno.makeTempDir();
  const data = await tinyDataDir(128, 64);
  try {
    const result = await runTask(
      "report",
      ["--quick", "--out", out, "--data-dir", data, "--offline"],
      { permissions: ["--allow-read", "--allow-write", "--allow-env", "--allow-ffi", "--allow-run"] },
    );
    if (result.code !== 0) throw new Error(result.stderr);
    const report = JSON.parse(await Deno.readTextFile(`${out}/report.json`));
    ok(report.paper_estimate.train_examples_per_s.length === 2, "the paper estimate");
    ok(report.plan.gflop_per_training_step > 0, "the plan's FLOPs");
    const engines = report.engines.map((e: { engine: string }) => e.engine);
    ok(engines.join() === "deno,dawn", `engines ${engines}`);
    for (const e of report.engines) {
      ok(
        e.adapter.name && e.adapter.limits.maxStorageBufferBindingSize > 0,
        `${e.engine}: adapter and limits`,
      );
      for (const family of ["software", "gpu"]) {
        const f = e.families[family];
        ok(f.kernel_family === family, `${e.engine}: ${family} family ran`);
        for (const loop of [f.loops.train, f.loops.infer]) {
          for (const figure of ["wallMs", "gpuMs", "hostWaitMs", "readsPerStep"]) {
            ok(Number.isFinite(loop[figure]) && loop[figure] >= 0, `${e.engine} ${family}: ${figure}`);
          }
        }
        ok(f.train_examples_per_s > 0 && f.infer_examples_per_s > 0, `${e.engine} ${family}: examples/s`);
        ok(f.kernels.length > 5 && f.kernels.every((k: { ms: number }) => k.ms > 0), "per-kernel times");
        ok(
          f.inference.length === 2 &&
            f.inference.every((i: { examples_per_s: number }) => i.examples_per_s > 0),
        );
      }
      const run = e.chapter_run;
      ok(run.loss_curve.length === 4 && run.loss_curve.every(Number.isFinite), `${e.engine}: loss curve`);
      ok(run.test_acc >= 0 && run.test_acc <= 1, `${e.engine}: test accuracy`);
    }
    const md = await Deno.readTextFile(`${out}/report.md`);
    for (const words of ["Paper estimate", "## deno: ", "## dawn: ", "One epoch", "per-kernel GPU time"]) {
      ok(md.includes(words), `report.md has "${words}"`);
    }
  } finally {
    await Deno.remove(out, { recursive: true });
    await Deno.remove(data, { recursive: true });
  }
}, { ignore: !reportLeg });
