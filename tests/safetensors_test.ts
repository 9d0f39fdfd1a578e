// safetensors: round trips, the reference implementation's byte layout, every rejection case with its
// message, "nothing partially loaded", and atomic saves.
import { type HostTensor, parseSafetensors, serializeSafetensors } from "../lib/safetensors.ts";
import { loadSafetensors, readSafetensors, saveSafetensors } from "../lib/deno/safetensors_file.ts";
import { checkWritable } from "../lib/deno/atomic_write.ts";
import { NinError } from "../lib/errors.ts";
import { Random } from "../lib/random.ts";
import { deepStrictEqual, ok } from "node:assert/strict";
import { assertJsonEqual, assertRejectsWith, assertThrowsWith, gpuTest, handBuilt, Tensor } from "./util.ts";

function f32Bytes(values: number[]): Uint8Array {
  return new Uint8Array(new Float32Array(values).buffer);
}

function allDtypes(): Map<string, HostTensor> {
  return new Map<string, HostTensor>([
    ["conv.weight", {
      dtype: "F32",
      shape: [2, 1, 2, 2],
      data: new Float32Array([1.5, -0, NaN, Infinity, -Infinity, 1e-45, 3.4028234663852886e38, -7]),
    }],
    ["f64", { dtype: "F64", shape: [3], data: new Float32Array([0.1, -2.5, 1e30]) }],
    ["i32", { dtype: "I32", shape: [2, 2], data: new Int32Array([-(2 ** 31), 2 ** 31 - 1, 0, -1]) }],
    ["i64", { dtype: "I64", shape: [4], data: new Int32Array([-(2 ** 31), 2 ** 31 - 1, -1, 7]) }],
    ["u8", { dtype: "U8", shape: [5], data: new Uint8Array([0, 1, 127, 128, 255]) }],
    ["scalar", { dtype: "F32", shape: [], data: new Float32Array([42]) }],
    ["empty", { dtype: "F32", shape: [0], data: new Float32Array(0) }],
    ["empty.2d", { dtype: "I64", shape: [2, 0, 3], data: new Int32Array(0) }],
    ["ünïcødé ✓", { dtype: "U8", shape: [1], data: new Uint8Array([9]) }],
  ]);
}

Deno.test("safetensors round trip: every dtype, scalars, empty tensors, metadata", () => {
  const tensors = allDtypes();
  const metadata = {
    epoch: "3",
    config: '{"lr":0.1}',
    'quote"and\\slash': "line\nbreak",
    ["__proto__"]: "plain",
  };
  const bytes = serializeSafetensors(tensors, metadata);
  const parsed = parseSafetensors(bytes);
  deepStrictEqual(parsed.tensors, tensors);
  assertJsonEqual(Object.entries(parsed.metadata).sort(), Object.entries(metadata).sort(), "metadata");
  if (Object.getPrototypeOf(parsed.metadata) !== Object.prototype) {
    throw new Error("metadata prototype changed");
  }
  // Writing what was read gives the same bytes.
  deepStrictEqual(serializeSafetensors(parsed.tensors, parsed.metadata), bytes, "re-serialized");
  // No metadata at all, and an empty file.
  assertJsonEqual(parseSafetensors(serializeSafetensors(tensors)).metadata, {}, "no metadata");
  assertJsonEqual(parseSafetensors(serializeSafetensors(new Map())).tensors.size, 0, "no tensors");
});

Deno.test("safetensors layout is the reference implementation's, byte for byte", () => {
  // One F32 tensor [1, 2, 3]: a 64-byte header needs no padding.
  const header = '{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}';
  const data = f32Bytes([0, 1, 2, 3, 4, 5]);
  deepStrictEqual(
    serializeSafetensors(
      new Map([["attn.0", { dtype: "F32", shape: [1, 2, 3], data: new Float32Array(data.buffer) }]]),
    ),
    handBuilt(header, data),
    "one tensor",
  );
  // A 65-byte header is padded with 7 spaces so the data starts 8-byte aligned.
  const header4d = '{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}';
  deepStrictEqual(
    serializeSafetensors(
      new Map([["attn0", { dtype: "F32", shape: [1, 1, 2, 3], data: new Float32Array(data.buffer) }]]),
    ),
    handBuilt(header4d + "       ", data),
    "padded header",
  );
  // Nothing: "{}" and 6 spaces; metadata only: padded to 40.
  deepStrictEqual(serializeSafetensors(new Map()), handBuilt("{}      "), "empty");
  deepStrictEqual(
    serializeSafetensors(new Map(), { framework: "pt" }),
    handBuilt('{"__metadata__":{"framework":"pt"}}     '),
    "metadata only",
  );
  // Mixed dtypes: widest alignment first (I64, F64, F32, I32, U8), then by name; keys sorted; every tensor
  // starts at a multiple of its element size.
  const mixed = new Map<string, HostTensor>([
    ["u", { dtype: "U8", shape: [3], data: new Uint8Array([1, 2, 3]) }],
    ["b", { dtype: "F32", shape: [1], data: new Float32Array([2]) }],
    ["a", { dtype: "F32", shape: [1], data: new Float32Array([1]) }],
    ["i", { dtype: "I32", shape: [1], data: new Int32Array([-1]) }],
    ["d", { dtype: "F64", shape: [1], data: new Float32Array([0.5]) }],
    ["l", { dtype: "I64", shape: [1], data: new Int32Array([-2]) }],
  ]);
  const mixedHeader = '{"__metadata__":{"a":"1","b":"2"},' +
    '"l":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},' +
    '"d":{"dtype":"F64","shape":[1],"data_offsets":[8,16]},' +
    '"a":{"dtype":"F32","shape":[1],"data_offsets":[16,20]},' +
    '"b":{"dtype":"F32","shape":[1],"data_offsets":[20,24]},' +
    '"i":{"dtype":"I32","shape":[1],"data_offsets":[24,28]},' +
    '"u":{"dtype":"U8","shape":[3],"data_offsets":[28,31]}}';
  const mixedData = [
    ...new Uint8Array(new BigInt64Array([-2n]).buffer),
    ...new Uint8Array(new Float64Array([0.5]).buffer),
    ...f32Bytes([1, 2]),
    ...new Uint8Array(new Int32Array([-1]).buffer),
    1,
    2,
    3,
  ];
  const padding = " ".repeat((8 - mixedHeader.length % 8) % 8);
  deepStrictEqual(
    serializeSafetensors(mixed, { b: "2", a: "1" }),
    handBuilt(mixedHeader + padding, mixedData),
    "mixed dtypes",
  );
});

Deno.test("safetensors reads the PyTorch-side fixtures and writes them back losslessly", async () => {
  const file = await readSafetensors("tests/fixtures/nin_r96_forward.safetensors");
  const logits = file.tensors.get("logits")!;
  assertJsonEqual([logits.dtype, logits.shape], ["F32", [4, 10]], "logits");
  const labels = file.tensors.get("labels")!;
  assertJsonEqual([labels.dtype, labels.shape], ["I64", [4]], "labels");
  if (!(labels.data instanceof Int32Array) || ![...labels.data].every((l) => l >= 0 && l < 10)) {
    throw new Error(`labels ${labels.data} are not classes`);
  }
  const images = file.tensors.get("images_u8")!;
  assertJsonEqual([images.dtype, images.shape], ["U8", [4, 28, 28]], "images");
  if (!file.metadata.torch) throw new Error("the fixture's metadata lost its torch version");
  deepStrictEqual(
    parseSafetensors(serializeSafetensors(file.tensors, file.metadata)).tensors,
    file.tensors,
  );

  const weights = await loadSafetensors("tests/fixtures/nin_r96_weights.safetensors");
  assertJsonEqual(weights.get("0.0.weight")!.shape, [96, 1, 11, 11], "0.0.weight");
  assertJsonEqual(weights.get("7.4.bias")!.shape, [10], "7.4.bias");
});

/** Asserts parsing `bytes` as bad.safetensors throws a NinError naming the file, with every one of `parts`. */
function rejects(bytes: Uint8Array, ...parts: string[]): void {
  const { message } = assertThrowsWith(() => parseSafetensors(bytes, "bad.safetensors"), NinError, ...parts);
  ok(
    message.startsWith("bad.safetensors: not a valid safetensors file: "),
    `does not name the file: ${message}`,
  );
}

/** A header with one entry `x` whose fields are given as JSON text, and `dataBytes` zero bytes of data. */
function oneEntry(fields: string, dataBytes = 8): Uint8Array {
  return handBuilt(`{"x":{${fields}}}`, new Uint8Array(dataBytes));
}

Deno.test("safetensors rejects broken files, naming the file and listing what is wrong", () => {
  rejects(new Uint8Array(5), "5 bytes long, shorter than the 8-byte header length field");
  const beyond = handBuilt("{}");
  new DataView(beyond.buffer).setBigUint64(0, 1000n, true);
  rejects(beyond, "header length 1000 runs past the end of the file (10 bytes)");
  const huge = new Uint8Array(16);
  new DataView(huge.buffer).setBigUint64(0, 100_000_001n, true);
  rejects(huge, "header length 100000001 is over the 100000000-byte limit");
  new DataView(huge.buffer).setBigUint64(0, 2n ** 64n - 1n, true);
  rejects(huge, "is over the 100000000-byte limit");
  rejects(handBuilt('{"x": '), "the header is not valid JSON");
  rejects(handBuilt("[1, 2]"), "the header is not a JSON object");
  rejects(handBuilt("null"), "the header is not a JSON object");
  const badUtf8 = handBuilt("{}  ");
  badUtf8[9] = 0xff;
  rejects(badUtf8, "not valid UTF-8");

  rejects(oneEntry('"dtype":"Q8","shape":[2],"data_offsets":[0,8]'), 'tensor "x" has unknown dtype "Q8"');
  rejects(
    oneEntry('"dtype":"BF16","shape":[4],"data_offsets":[0,8]'),
    'tensor "x" has dtype BF16, which this reader does not support (supported: F32, F64, I32, I64, U8)',
  );
  rejects(oneEntry('"shape":[2],"data_offsets":[0,8]'), 'tensor "x" has no dtype string');
  for (const shape of ["[-1]", "[1.5]", '"2"', "[2, null]", "null"]) {
    rejects(
      oneEntry(`"dtype":"F32","shape":${shape},"data_offsets":[0,8]`),
      `tensor "x" shape ${JSON.stringify(JSON.parse(shape))} is not an array of non-negative integers`,
    );
  }
  for (const offsets of ["[0]", "[8,0]", '["0",8]', "[0,8,16]", "[-8,0]", "[0,1e300]", "{}"]) {
    rejects(
      oneEntry(`"dtype":"F32","shape":[2],"data_offsets":${offsets}`),
      `tensor "x" data_offsets ${JSON.stringify(JSON.parse(offsets))} are not [begin, end] integers`,
    );
  }
  rejects(oneEntry('"dtype":"F32","shape":[4],"data_offsets":[0,16]'), "end beyond the 8-byte data section");
  rejects(
    oneEntry('"dtype":"F32","shape":[3],"data_offsets":[0,8]'),
    'tensor "x" holds 8 bytes but F32 [3] needs 12',
  );
  rejects(handBuilt('{"x":[1]}', new Uint8Array(0)), 'tensor "x" is not an object');
  rejects(
    handBuilt(
      '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}',
      new Uint8Array(12),
    ),
    'tensor "b" bytes [4, 12) overlap tensor "a" [0, 8)',
  );
  rejects(
    handBuilt('{"a":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}', new Uint8Array(4)),
    "data bytes [0, 2) belong to no tensor",
  );
  rejects(
    handBuilt('{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}', new Uint8Array(5)),
    "data bytes [2, 5) after the last tensor belong to no tensor",
  );
  rejects(handBuilt('{"__metadata__":{"epoch":3}}'), 'metadata "epoch" is 3, not a string');
  rejects(handBuilt('{"__metadata__":["a"]}'), '"__metadata__" is not an object of strings');
  const bigI64 = new Uint8Array(new BigInt64Array([1n, 2n ** 40n]).buffer);
  rejects(
    handBuilt('{"i":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}}', bigI64),
    'tensor "i" I64 element 1 does not fit in 32 bits',
  );
  // Every problem is listed, not just the first, and a long list is cut short.
  rejects(
    handBuilt(
      '{"a":{"dtype":"F32","shape":[9],"data_offsets":[0,4]},"b":{"dtype":"X","shape":[1],"data_offsets":[4,8]}}',
      new Uint8Array(8),
    ),
    'tensor "a" holds 4 bytes but F32 [9] needs 36',
    'tensor "b" has unknown dtype "X"',
  );
  const many = Array.from({ length: 9 }, (_, i) => `"t${i}":{"dtype":"Z","shape":[],"data_offsets":[0,0]}`);
  rejects(handBuilt(`{${many.join(",")}}`), 'tensor "t5" has unknown dtype', "; and 3 more");
});

Deno.test("safetensors never loads part of a file: every truncation and random corruption is rejected or parsed whole", () => {
  const good = serializeSafetensors(allDtypes(), { epoch: "1" });
  for (let length = 0; length < good.length; length++) {
    // The file name carries the length into the message.
    const name = `cut to ${length} of ${good.length} bytes`;
    assertThrowsWith(
      () => parseSafetensors(good.subarray(0, length), name),
      NinError,
      `${name}: not a valid`,
    );
  }
  // A mixed file where one tensor is fine and another is not: nothing comes back.
  assertThrowsWith(
    () =>
      parseSafetensors(
        handBuilt(
          '{"ok":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"bad":{"dtype":"F32","shape":[2],"data_offsets":[4,8]}}',
          new Uint8Array(8),
        ),
      ),
    NinError,
    'tensor "bad" holds 4 bytes but F32 [2] needs 8',
  );
  // Random byte flips in the header and length: a NinError or a complete, consistent parse; nothing else.
  const rng = new Random(7);
  const headerEnd = 8 + Number(new DataView(good.buffer).getBigUint64(0, true));
  for (let trial = 0; trial < 400; trial++) {
    const bytes = new Uint8Array(good);
    for (let k = 0; k < 1 + rng.int(3); k++) bytes[rng.int(headerEnd)] = rng.int(256);
    try {
      const { tensors } = parseSafetensors(bytes);
      for (const [name, t] of tensors) {
        if (t.data.length !== t.shape.reduce((a, b) => a * b, 1)) {
          throw new Error(`${name}: size does not match`);
        }
      }
    } catch (e) {
      if (!(e instanceof NinError)) throw new Error(`trial ${trial}: ${e}`);
    }
  }
});

Deno.test("safetensors refuses to write bad tensors", () => {
  const f32 = (shape: number[], n: number): HostTensor => ({
    dtype: "F32",
    shape,
    data: new Float32Array(n),
  });
  assertThrowsWith(
    () => serializeSafetensors(new Map([["w", f32([2, 3], 5)]])),
    NinError,
    'tensor "w" has 5 values but shape [2, 3] needs 6',
  );
  assertThrowsWith(
    () => serializeSafetensors(new Map([["__metadata__", f32([1], 1)]])),
    NinError,
    '"__metadata__" cannot be a tensor name',
  );
  assertThrowsWith(
    () => serializeSafetensors(new Map([["w", { dtype: "I32", shape: [1], data: new Float32Array(1) }]])),
    NinError,
    'tensor "w" of dtype I32 needs its data in a Int32Array',
  );
  assertThrowsWith(
    () =>
      serializeSafetensors(
        new Map([["w", { dtype: "BF16", shape: [1], data: new Float32Array(1) } as never]]),
      ),
    NinError,
    'tensor "w" has unsupported dtype "BF16"',
  );
  assertThrowsWith(
    () => serializeSafetensors(new Map(), { epoch: 3 as unknown as string }),
    NinError,
    'metadata "epoch" is a number, not a string',
  );
});

/** Files in `dir` (to show no temporary file is left behind). */
function listDir(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
}

Deno.test("saveSafetensors writes atomically and a failed save leaves the old file intact", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/model.safetensors`;
    await saveSafetensors(path, allDtypes(), { epoch: "1" });
    const first = await Deno.readFile(path);
    deepStrictEqual(await loadSafetensors(path), allDtypes());
    assertJsonEqual((await readSafetensors(path)).metadata, { epoch: "1" }, "metadata");

    const bad = new Map<string, HostTensor>([["w", { dtype: "F32", shape: [4], data: new Float32Array(3) }]]);
    await assertRejectsWith(
      () => saveSafetensors(path, bad),
      NinError,
      `${path}: cannot write safetensors: tensor "w"`,
    );
    deepStrictEqual(await Deno.readFile(path), first, "file after a failed save");
    assertJsonEqual(listDir(dir), ["model.safetensors"], "directory after a failed save");

    await assertRejectsWith(
      () => saveSafetensors(`${dir}/missing/model.safetensors`, allDtypes()),
      NinError,
      `cannot write ${dir}/missing/model.safetensors`,
    );
    await assertRejectsWith(() => loadSafetensors(`${dir}/nope.safetensors`), NinError, "no such file");
    // The check a task runs before a long job: fine here, an error for a missing directory, no leftovers.
    await checkWritable(`${dir}/later.safetensors`);
    await assertRejectsWith(
      () => checkWritable(`${dir}/missing/later.safetensors`),
      NinError,
      `cannot write ${dir}/missing/later.safetensors: the file or its directory does not exist`,
    );
    assertJsonEqual(listDir(dir), ["model.safetensors"], "directory after checkWritable");
    await Deno.writeFile(`${dir}/cut.safetensors`, first.subarray(0, first.length - 1));
    await assertRejectsWith(
      () => loadSafetensors(`${dir}/cut.safetensors`),
      NinError,
      `${dir}/cut.safetensors: not a valid safetensors file:`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

gpuTest("saveSafetensors downloads GPU tensors as F32", async (gpu) => {
  const dir = await Deno.makeTempDir();
  try {
    const weight = Tensor.fromArray(gpu, [1, -2, 3.5, 4, 5, 6], [2, 3]);
    const path = `${dir}/gpu.safetensors`;
    await saveSafetensors(path, new Map<string, Tensor | HostTensor>([["w", weight]]));
    weight.dispose();
    deepStrictEqual(
      await loadSafetensors(path),
      new Map([["w", { dtype: "F32", shape: [2, 3], data: new Float32Array([1, -2, 3.5, 4, 5, 6]) }]]),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
