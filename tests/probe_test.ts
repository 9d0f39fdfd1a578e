// The access probe behind `bench --probe` (lib/probe.ts): every kind this adapter reads is measured, and
// the baseline loop's arithmetic has a cost.
import { gpuTest } from "./util.ts";
import { ACCESS_KINDS, probeAccessCosts } from "../lib/probe.ts";

gpuTest("the access probe times every kind of access this adapter reads", async (gpu) => {
  const p = await probeAccessCosts(gpu, 256, 1);
  const expected = ACCESS_KINDS.filter((k) => gpu.readOnlyStorageTextures || !k.startsWith("texture"));
  const kinds = p.costs.map((c) => c.kind).join(",");
  if (kinds !== expected.join(",")) throw new Error(`measured ${kinds}, expected ${expected.join(",")}`);
  for (const c of p.costs) {
    if (!(c.seconds > 0 && Number.isFinite(c.nsPerAccess))) throw new Error(JSON.stringify(c));
  }
  if (!(p.nsPerFma > 0 && p.costs[0].nsPerAccess === 0)) throw new Error(JSON.stringify(p));
});
