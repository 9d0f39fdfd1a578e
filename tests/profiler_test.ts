// Per-dispatch times are measured on every engine (timestamp queries, or each dispatch run alone to
// completion where the device has none): every record gets a finite, positive time no longer than the call.
import { ok } from "node:assert/strict";
import { Conv2d } from "../lib/layers/conv2d.ts";
import { Tensor } from "../lib/tensor.ts";
import { gpuTest } from "./util.ts";

gpuTest("profiled dispatches all get a measured GPU time within the traced call", async (gpu) => {
  const conv = new Conv2d(gpu, 8, 16, 3, 1, 1);
  const x = Tensor.zeros(gpu, [4, 8, 24, 24]);
  const start = performance.now();
  const records = await gpu.trace(async () => {
    conv.forwardRelu(x).dispose();
    conv.forward(x).dispose();
    await gpu.sync();
  }, { timed: true });
  const wallNs = (performance.now() - start) * 1e6;
  // Two convolutions (plus, for texture-fed software kernels, the packing of their operands, 0 FLOPs).
  ok(records.filter((r) => r.flops > 0).length === 2, `${records.map((r) => r.kernel)}`);
  for (const r of records) {
    ok(Number.isFinite(r.ns) && r.ns > 0, `${r.kernel}: ${r.ns} ns (${gpu.timingMethod})`);
  }
  const total = records.reduce((s, r) => s + r.ns, 0);
  ok(total <= wallNs, `dispatch times ${total} ns exceed the call's ${wallNs} ns (${gpu.timingMethod})`);
  x.dispose();
  conv.dispose();
});
