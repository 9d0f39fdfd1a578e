// lib/summary.ts: the torchinfo-style summary against the PyTorch fixture.
import { assertJsonEqual as assertEquals, assertThrowsWith } from "./util.ts";
import { countingGpu } from "../lib/gpu/counting.ts";
import { NinError } from "../lib/errors.ts";
import { nin } from "../lib/nin.ts";
import { summary } from "../lib/summary.ts";

Deno.test("summary: the chapter's NiN matches the PyTorch fixture", async () => {
  const fixture = JSON.parse(
    await Deno.readTextFile(new URL("fixtures/resources_torch.json", import.meta.url)),
  );
  for (const config of fixture.configs) {
    const [, inChannels] = config.input_shape;
    const s = summary(
      nin(countingGpu(), { oneByOneConvs: config.one_by_one_convs, inChannels }),
      config.input_shape,
    );
    const what = `${config.one_by_one_convs} 1x1 convs at ${config.input_shape[2]}`;
    assertEquals([s.params, s.macs], [config.params, config.conv_macs], `${what}: totals`);
    assertEquals(
      s.rows.map((r) => [r.name, r.type, r.outputShape, r.params, r.macs]),
      config.layers.map((l: Record<string, unknown>) => [l.index, l.type, l.output_shape, l.params, l.macs]),
      `${what}: rows`,
    );
  }
  const s = summary(nin(countingGpu()), [1, 1, 224, 224]);
  const text = s.toString();
  for (
    const part of [
      "Layer",
      "0.0",
      "Conv2d",
      "[1, 96, 54, 54]",
      "33,872,256",
      "Total params: 1,992,166",
      "Total MACs: 762,297,352",
    ]
  ) {
    assertEquals(text.includes(part), true, `text has ${part}`);
  }
  assertEquals(text.split("\n").length, 1 + s.rows.length + 3, "one line per layer, then totals");
});

Deno.test("summary: an input that does not fit is one NinError naming the layer", () => {
  assertThrowsWith(
    () => summary(nin(countingGpu()), [1, 1, 40, 40]),
    NinError,
    "smallest input that works is 67x67",
  );
  assertThrowsWith(() => summary(nin(countingGpu()), [1, 3, 224, 224]), NinError, "layer 0.0 (Conv2d)");
});
