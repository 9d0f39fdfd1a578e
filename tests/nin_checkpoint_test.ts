// The NiN a checkpoint holds (lib/nin_checkpoint.ts), the rules `deno task eval` and the web page share:
// where the input size and the 1x1 convolutions come from, and the errors when weights or size do not fit.
import { strictEqual } from "node:assert/strict";
import { type Checkpoint, encodeCheckpoint, parseCheckpoint } from "../lib/checkpoint.ts";
import { countingGpu } from "../lib/gpu/counting.ts";
import { type RunConfig, runConfig } from "../lib/config.ts";
import { nin } from "../lib/nin.ts";
import { ninFromCheckpoint } from "../lib/nin_checkpoint.ts";
import { NinError } from "../lib/errors.ts";
import { assertJsonEqual, assertThrowsWith } from "./util.ts";

/** A checkpoint of NiN with `convs` 1x1 convolutions and `config` as its run configuration. */
async function checkpoint(convs: number, config: RunConfig | null): Promise<Checkpoint> {
  return parseCheckpoint(
    await encodeCheckpoint(nin(countingGpu(), { oneByOneConvs: convs }), { state: { config } }),
    "c",
  );
}

Deno.test("nin checkpoint: the saved size and 1x1 count apply unless given; a plain state dict gets 224 and counted convs", async () => {
  const gpu = countingGpu();
  const saved = await checkpoint(1, runConfig({ data: { resize: 96 }, model: { oneByOneConvs: 1 } }));
  const a = ninFromCheckpoint(gpu, saved, "c");
  assertJsonEqual(
    [a.resize, a.resizeFrom, a.oneByOneConvs],
    [96, "the checkpoint's training size", 1],
    "saved",
  );
  const b = ninFromCheckpoint(gpu, saved, "c", { resize: 120 });
  assertJsonEqual([b.resize, b.resizeFrom], [120, "--resize"], "given");
  const plain = await checkpoint(0, null);
  const c = ninFromCheckpoint(gpu, plain, "c");
  assertJsonEqual([c.resize, c.oneByOneConvs], [224, 0], "plain state dict");
  strictEqual(c.resizeFrom.startsWith("assumed: the file is a plain state dict"), true);
});

Deno.test("nin checkpoint: weights that do not fit and a size too small are one-line errors with exit codes", async () => {
  const gpu = countingGpu();
  const saved = await checkpoint(1, runConfig({ data: { resize: 96 }, model: { oneByOneConvs: 1 } }));
  const given = assertThrowsWith(
    () => ninFromCheckpoint(gpu, saved, "c.safetensors", { oneByOneConvs: 2 }),
    NinError,
    "c.safetensors does not fit NiN with --one-by-one-convs 2 --head direct: ",
  );
  strictEqual(given.exitCode, 2, "a value the user gave");
  const small = assertThrowsWith(
    () => ninFromCheckpoint(gpu, saved, "c", { resize: 32 }),
    NinError,
    "--resize 32: ",
  );
  strictEqual(small.exitCode, 2);
});
