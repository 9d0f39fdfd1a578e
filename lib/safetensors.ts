/**
 * The safetensors format (Hugging Face), so weights move between this toolkit and PyTorch
 * (`safetensors.torch.save_file` / `load_file`):
 *
 * ```
 * [u64 little-endian N] [N bytes of JSON header, space-padded] [raw little-endian tensor data]
 * header = { "<name>": { "dtype": "F32", "shape": [..], "data_offsets": [begin, end] }, ...,
 *            "__metadata__": { "<key>": "<string>" } }
 * ```
 *
 * Offsets are relative to the data section. Reading trusts nothing in the file: every offset is bounds
 * checked before a byte is touched, the header is parsed with `JSON.parse` only, and a file with any
 * problem is rejected whole, with every problem found listed in one {@link NinError}.
 *
 * Host types: F32 and F64 are read into a `Float32Array` (F64 is rounded to float32, since the GPU side
 * computes in float32), I32 and I64 into an `Int32Array` (an I64 value outside the int32 range is an
 * error, never silently wrapped), U8 into a `Uint8Array`. Writing uses the tensor's `dtype`, so a file read
 * here is written back with the same dtypes.
 *
 * @module
 */
import { formatShape, NinError } from "./errors.ts";

/** The element types this module reads and writes. */
export type Dtype = "F32" | "F64" | "I32" | "I64" | "U8";

/**
 * A tensor in host memory, as read from or written to a safetensors file (row-major, like PyTorch's
 * contiguous layout; a conv weight is OIHW).
 */
export interface HostTensor {
  /** Element type in the file. */
  dtype: Dtype;
  /** Dimensions, outermost first; `[]` is a scalar, a 0 anywhere makes an empty tensor. */
  shape: number[];
  /** The values: `Float32Array` for F32/F64, `Int32Array` for I32/I64, `Uint8Array` for U8. */
  data: Float32Array | Int32Array | Uint8Array;
}

/** Everything a safetensors file holds: its tensors by name and the `__metadata__` string map. */
export interface SafetensorsFile {
  /** Tensors by name, in the order their data appears in the file. */
  tensors: Map<string, HostTensor>;
  /** The `__metadata__` entries (empty when the file has none). */
  metadata: Record<string, string>;
}

/** Bytes per element, host array type, and rank in the reference implementation's dtype order. */
const DTYPES: Record<Dtype, { bytes: number; host: "f32" | "i32" | "u8"; order: number }> = {
  U8: { bytes: 1, host: "u8", order: 1 },
  I32: { bytes: 4, host: "i32", order: 9 },
  F32: { bytes: 4, host: "f32", order: 11 },
  F64: { bytes: 8, host: "f32", order: 12 },
  I64: { bytes: 8, host: "i32", order: 13 },
};

/** Dtypes of the format that this reader does not convert (named in errors so they read as "unsupported"). */
const OTHER_FORMAT_DTYPES = new Set([
  "BOOL",
  "I8",
  "I16",
  "U16",
  "F16",
  "BF16",
  "U32",
  "U64",
  "F8_E5M2",
  "F8_E4M3",
  "F8_E8M0",
  "F4",
  "F6_E2M3",
  "F6_E3M2",
  "C64",
]);

/** The reference implementation refuses larger headers; so do we, before decoding anything. */
const MAX_HEADER_BYTES = 100_000_000;
/** Problems listed in one error message before "and N more". */
const MAX_LISTED_PROBLEMS = 6;

/** A header entry that passed validation, with its absolute byte range. */
interface Entry {
  name: string;
  dtype: Dtype;
  shape: number[];
  begin: number;
  end: number;
}

/**
 * Parses a whole safetensors file held in memory. Throws a {@link NinError} that starts with `what` and
 * lists every problem found (bad header, unknown dtype, offsets out of bounds or overlapping, sizes that do
 * not match shapes, ...); on error nothing is returned, so nothing can be partially loaded.
 *
 * @example
 * ```ts
 * import { parseSafetensors, serializeSafetensors } from "@nin/webgpu";
 * const bytes = serializeSafetensors(new Map([["w", { dtype: "F32", shape: [2], data: new Float32Array([1, 2]) }]]));
 * const { tensors } = parseSafetensors(bytes, "example");
 * console.log(tensors.get("w")?.data); // Float32Array [1, 2]
 * ```
 */
export function parseSafetensors(bytes: Uint8Array, what = "safetensors data"): SafetensorsFile {
  const fail = (problems: string[]): never => {
    const listed = problems.slice(0, MAX_LISTED_PROBLEMS).join("; ");
    const more = problems.length > MAX_LISTED_PROBLEMS
      ? `; and ${problems.length - MAX_LISTED_PROBLEMS} more`
      : "";
    throw new NinError(`${what}: not a valid safetensors file: ${listed}${more}`);
  };
  if (bytes.length < 8) {
    fail([`it is ${bytes.length} bytes long, shorter than the 8-byte header length field`]);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getBigUint64(0, true);
  if (headerLength > BigInt(MAX_HEADER_BYTES)) {
    fail([`header length ${headerLength} is over the ${MAX_HEADER_BYTES}-byte limit`]);
  }
  const n = Number(headerLength);
  if (8 + n > bytes.length) {
    fail([`header length ${n} runs past the end of the file (${bytes.length} bytes)`]);
  }
  let text = "";
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + n));
  } catch {
    fail(["the header is not valid UTF-8"]);
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    fail([`the header is not valid JSON (${(e as Error).message.split("\n")[0]})`]);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    fail(["the header is not a JSON object"]);
  }

  const dataStart = 8 + n;
  const dataLength = bytes.length - dataStart;
  const problems: string[] = [];
  const metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const [name, value] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      readMetadata(value, metadata, problems);
      continue;
    }
    const entry = readEntry(name, value, dataLength, problems);
    if (entry) entries.push(entry);
  }
  // Tensors must tile the data section like the reference writer lays them out: no overlap, no gap.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  let previous: Entry | null = null;
  for (const e of entries) {
    if (e.begin === e.end) continue;
    if (previous && e.begin < covered) {
      problems.push(
        `tensor "${e.name}" bytes [${e.begin}, ${e.end}) overlap tensor "${previous.name}" [${previous.begin}, ${previous.end})`,
      );
    } else if (e.begin > covered) {
      problems.push(`data bytes [${covered}, ${e.begin}) belong to no tensor`);
    }
    if (e.end > covered) {
      covered = e.end;
      previous = e;
    }
  }
  if (problems.length === 0 && covered < dataLength) {
    problems.push(`data bytes [${covered}, ${dataLength}) after the last tensor belong to no tensor`);
  }
  if (problems.length > 0) fail(problems);

  const tensors = new Map<string, HostTensor>();
  for (const e of entries) {
    const raw = bytes.slice(dataStart + e.begin, dataStart + e.end); // a copy: aligned, and owned
    const data = toHost(e, raw, problems);
    if (data) tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data });
  }
  if (problems.length > 0) fail(problems);
  return { tensors, metadata };
}

/**
 * Encodes tensors and metadata as a safetensors file, byte for byte as the reference implementation
 * (`safetensors.torch.save_file`) does: tensors ordered by dtype (widest alignment first) then name, data
 * packed in that order, the JSON header padded with spaces to a multiple of 8 bytes so every tensor's data
 * is aligned; metadata keys are sorted (the reference's order is a hash map's, i.e. arbitrary).
 *
 * @example
 * ```ts
 * import { serializeSafetensors } from "@nin/webgpu";
 * const bytes = serializeSafetensors(new Map([["x", { dtype: "U8", shape: [3], data: new Uint8Array([1, 2, 3]) }]]));
 * console.log(bytes.length % 8); // 3 (8 + padded header + 3 data bytes)
 * ```
 */
export function serializeSafetensors(
  tensors: ReadonlyMap<string, HostTensor>,
  metadata?: Record<string, string>,
): Uint8Array {
  const problems: string[] = [];
  for (const [name, t] of tensors) checkHostTensor(name, t, problems);
  if (metadata !== undefined) {
    for (const [key, value] of Object.entries(metadata)) {
      if (typeof value !== "string") problems.push(`metadata "${key}" is a ${typeof value}, not a string`);
    }
  }
  if (problems.length > 0) {
    throw new NinError(`cannot write safetensors: ${problems.slice(0, MAX_LISTED_PROBLEMS).join("; ")}`);
  }

  const encoder = new TextEncoder();
  const ordered = [...tensors].map(([name, t]) => ({ name, key: encoder.encode(name), t }));
  ordered.sort((a, b) => DTYPES[b.t.dtype].order - DTYPES[a.t.dtype].order || compareBytes(a.key, b.key));

  const parts: string[] = [];
  if (metadata !== undefined) {
    const keys = Object.keys(metadata).map((k) => ({ k, bytes: encoder.encode(k) }));
    keys.sort((a, b) => compareBytes(a.bytes, b.bytes));
    const body = keys.map(({ k }) => `${JSON.stringify(k)}:${JSON.stringify(metadata[k])}`).join(",");
    parts.push(`"__metadata__":{${body}}`);
  }
  let offset = 0;
  for (const { name, t } of ordered) {
    const size = t.data.length * DTYPES[t.dtype].bytes;
    parts.push(
      `${JSON.stringify(name)}:{"dtype":"${t.dtype}","shape":[${
        t.shape.join(",")
      }],"data_offsets":[${offset},${offset + size}]}`,
    );
    offset += size;
  }
  const json = encoder.encode(`{${parts.join(",")}}`);
  const headerLength = json.length + (8 - json.length % 8) % 8;

  const out = new Uint8Array(8 + headerLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLength);
  let at = 8 + headerLength;
  for (const { t } of ordered) {
    const bytes = fileBytes(t);
    out.set(bytes, at);
    at += bytes.length;
  }
  return out;
}

/** Checks `__metadata__`: an object whose values are all strings. */
function readMetadata(value: unknown, metadata: Record<string, string>, problems: string[]): void {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    problems.push(`"__metadata__" is not an object of strings`);
    return;
  }
  for (const [key, v] of Object.entries(value)) {
    // defineProperty, not assignment: a key like "__proto__" must stay plain data.
    if (typeof v === "string") {
      Object.defineProperty(metadata, key, {
        value: v,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    } else problems.push(`metadata "${key}" is ${JSON.stringify(v)}, not a string`);
  }
}

/** Validates one header entry against the data section; pushes problems and returns null when invalid. */
function readEntry(name: string, value: unknown, dataLength: number, problems: string[]): Entry | null {
  const where = `tensor "${name}"`;
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    problems.push(`${where} is not an object with dtype, shape and data_offsets`);
    return null;
  }
  const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
  const before = problems.length;
  if (typeof dtype !== "string") {
    problems.push(`${where} has no dtype string`);
  } else if (!(dtype in DTYPES)) {
    problems.push(
      OTHER_FORMAT_DTYPES.has(dtype)
        ? `${where} has dtype ${dtype}, which this reader does not support (supported: F32, F64, I32, I64, U8)`
        : `${where} has unknown dtype ${JSON.stringify(dtype)}`,
    );
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    problems.push(`${where} shape ${JSON.stringify(shape)} is not an array of non-negative integers`);
  }
  if (
    !Array.isArray(offsets) || offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) || offsets[0] > offsets[1]
  ) {
    problems.push(
      `${where} data_offsets ${JSON.stringify(offsets)} are not [begin, end] integers with begin <= end`,
    );
  }
  if (problems.length > before) return null;
  const [begin, end] = offsets as number[];
  const dims = shape as number[];
  if (end > dataLength) {
    problems.push(`${where} data_offsets [${begin}, ${end}] end beyond the ${dataLength}-byte data section`);
    return null;
  }
  const bytesPerElement = DTYPES[dtype as Dtype].bytes;
  const elements = dims.reduce((a, b) => a * b, 1);
  if (elements * bytesPerElement !== end - begin) {
    problems.push(
      `${where} holds ${end - begin} bytes but ${dtype} ${formatShape(dims)} needs ${
        elements * bytesPerElement
      }`,
    );
    return null;
  }
  return { name, dtype: dtype as Dtype, shape: dims, begin, end };
}

/** Converts a tensor's file bytes (a fresh, aligned copy) to its host array. */
function toHost(e: Entry, raw: Uint8Array, problems: string[]): HostTensor["data"] | null {
  switch (e.dtype) {
    case "U8":
      return raw;
    case "F32":
      return new Float32Array(raw.buffer);
    case "I32":
      return new Int32Array(raw.buffer);
    case "F64":
      return Float32Array.from(new Float64Array(raw.buffer));
    case "I64": {
      // Each int64 is (low word, high word); it fits in int32 exactly when high is low's sign extension.
      const words = new Int32Array(raw.buffer);
      const out = new Int32Array(words.length / 2);
      for (let i = 0; i < out.length; i++) {
        const low = words[2 * i];
        if (words[2 * i + 1] !== low >> 31) {
          problems.push(`tensor "${e.name}" I64 element ${i} does not fit in 32 bits`);
          return null;
        }
        out[i] = low;
      }
      return out;
    }
  }
}

/** The bytes a host tensor occupies in the file, in its dtype. */
function fileBytes(t: HostTensor): Uint8Array {
  const d = t.data;
  switch (t.dtype) {
    case "U8":
    case "F32":
    case "I32":
      return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
    case "F64":
      return new Uint8Array(Float64Array.from(d).buffer);
    case "I64": {
      const words = new Int32Array(d.length * 2);
      for (let i = 0; i < d.length; i++) {
        words[2 * i] = d[i];
        words[2 * i + 1] = d[i] >> 31;
      }
      return new Uint8Array(words.buffer);
    }
  }
}

/** Problems with a tensor about to be written: dtype, shape, and data matching both. */
function checkHostTensor(name: string, t: HostTensor, problems: string[]): void {
  const where = `tensor "${name}"`;
  if (name === "__metadata__") {
    problems.push(`"__metadata__" cannot be a tensor name`);
    return;
  }
  const spec = DTYPES[t.dtype as Dtype];
  if (!spec) {
    problems.push(
      `${where} has unsupported dtype ${JSON.stringify(t.dtype)} (supported: F32, F64, I32, I64, U8)`,
    );
    return;
  }
  if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    problems.push(`${where} shape ${JSON.stringify(t.shape)} is not an array of non-negative integers`);
    return;
  }
  const expectedType = spec.host === "f32" ? Float32Array : spec.host === "i32" ? Int32Array : Uint8Array;
  if (!(t.data instanceof expectedType)) {
    problems.push(`${where} of dtype ${t.dtype} needs its data in a ${expectedType.name}`);
    return;
  }
  const elements = t.shape.reduce((a, b) => a * b, 1);
  if (t.data.length !== elements) {
    problems.push(`${where} has ${t.data.length} values but shape ${formatShape(t.shape)} needs ${elements}`);
  }
}

/** Byte-wise order of UTF-8 strings (Rust's `String` order, which the reference sorts names by). */
function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

// Typed arrays use the platform's byte order and the format is little-endian; every platform Deno runs
// on is little-endian, and this guard turns the assumption into an error instead of garbage.
if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new NinError("safetensors: this platform is big-endian, which this reader does not support");
}
