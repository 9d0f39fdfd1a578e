/**
 * The IDX format of MNIST and Fashion-MNIST, optionally gzip-compressed: a big-endian header (magic
 * 2051 = unsigned bytes in 3 dimensions for images `[count, rows, cols]`, 2049 = 1 dimension for labels
 * `[count]`) followed by the raw bytes. Every error names the file and what is wrong with it.
 *
 * @module
 */
import { gunzipSync } from "node:zlib";
import { NinError } from "../errors.ts";
import { describeFsError } from "./atomic_write.ts";

/** Magic number of an IDX image file (unsigned bytes, 3 dimensions). */
export const IDX_IMAGES_MAGIC = 2051;
/** Magic number of an IDX label file (unsigned bytes, 1 dimension). */
export const IDX_LABELS_MAGIC = 2049;

/** Images from an IDX file: `count` images of `rows x cols` bytes, row-major, one after another. */
export interface IdxImages {
  /** Number of images. */
  count: number;
  /** Image height. */
  rows: number;
  /** Image width. */
  cols: number;
  /** `count * rows * cols` pixel values 0-255. */
  data: Uint8Array;
}

/**
 * Whether `bytes` start with the gzip signature 0x1f 0x8b.
 *
 * @example
 * ```ts
 * import { isGzip } from "./idx.ts";
 * console.log(isGzip(new Uint8Array([0x1f, 0x8b, 8])), isGzip(new Uint8Array([0, 0, 8, 1]))); // true false
 * ```
 */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * Decompresses gzip data; a corrupt or truncated stream is a {@link NinError} naming `what`.
 *
 * @example
 * ```ts
 * import { gzipSync } from "node:zlib";
 * import { gunzip } from "./idx.ts";
 * console.log(gunzip(gzipSync(new Uint8Array([1, 2, 3])), "example")); // Uint8Array [1, 2, 3]
 * ```
 */
export function gunzip(bytes: Uint8Array, what: string): Uint8Array {
  if (!isGzip(bytes)) throw new NinError(`${what}: not gzip data (it does not start with 0x1f 0x8b)`);
  try {
    const out = gunzipSync(bytes);
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  } catch (e) {
    throw new NinError(
      `${what}: corrupt or truncated gzip data (${(e as Error).message}); delete the file and fetch it again`,
    );
  }
}

/**
 * Parses an IDX image file (gzip-compressed or not).
 *
 * @example
 * ```ts
 * import { encodeIdxImages, parseIdxImages } from "./idx.ts";
 * const images = parseIdxImages(encodeIdxImages(new Uint8Array(2 * 3 * 4), 2, 3, 4), "example");
 * console.log(images.count, images.rows, images.cols); // 2 3 4
 * ```
 */
export function parseIdxImages(bytes: Uint8Array, what: string): IdxImages {
  const raw = maybeGunzip(bytes, what);
  const dims = readHeader(raw, what, IDX_IMAGES_MAGIC, "image", 3);
  const [count, rows, cols] = dims;
  const data = checkedBody(raw, what, 16, count * rows * cols, `${count} images of ${rows}x${cols}`);
  return { count, rows, cols, data };
}

/**
 * Parses an IDX label file (gzip-compressed or not) and returns the labels.
 *
 * @example
 * ```ts
 * import { encodeIdxLabels, parseIdxLabels } from "./idx.ts";
 * console.log(parseIdxLabels(encodeIdxLabels(new Uint8Array([3, 1])), "example")); // Uint8Array [3, 1]
 * ```
 */
export function parseIdxLabels(bytes: Uint8Array, what: string): Uint8Array {
  const raw = maybeGunzip(bytes, what);
  const [count] = readHeader(raw, what, IDX_LABELS_MAGIC, "label", 1);
  return checkedBody(raw, what, 8, count, `${count} labels`);
}

/**
 * Reads and parses an IDX image file; errors name the path.
 *
 * @example
 * ```ts
 * import { encodeIdxImages, readIdxImages } from "./idx.ts";
 * const path = await Deno.makeTempFile();
 * await Deno.writeFile(path, encodeIdxImages(new Uint8Array(784), 1, 28, 28));
 * console.log((await readIdxImages(path)).count); // 1
 * ```
 */
export async function readIdxImages(path: string): Promise<IdxImages> {
  return parseIdxImages(await readBytes(path), path);
}

/**
 * Reads and parses an IDX label file; errors name the path.
 *
 * @example
 * ```ts
 * import { encodeIdxLabels, readIdxLabels } from "./idx.ts";
 * const path = await Deno.makeTempFile();
 * await Deno.writeFile(path, encodeIdxLabels(new Uint8Array([9])));
 * console.log(await readIdxLabels(path)); // Uint8Array [9]
 * ```
 */
export async function readIdxLabels(path: string): Promise<Uint8Array> {
  return parseIdxLabels(await readBytes(path), path);
}

/**
 * Encodes images as an (uncompressed) IDX image file.
 *
 * @example
 * ```ts
 * import { encodeIdxImages } from "./idx.ts";
 * console.log(encodeIdxImages(new Uint8Array(4), 1, 2, 2).length); // 20 (16-byte header + 4 pixels)
 * ```
 */
export function encodeIdxImages(data: Uint8Array, count: number, rows: number, cols: number): Uint8Array {
  if (data.length !== count * rows * cols) {
    throw new NinError(
      `encodeIdxImages: ${data.length} bytes do not hold ${count} images of ${rows}x${cols}`,
    );
  }
  return withHeader([IDX_IMAGES_MAGIC, count, rows, cols], data);
}

/**
 * Encodes labels as an (uncompressed) IDX label file.
 *
 * @example
 * ```ts
 * import { encodeIdxLabels } from "./idx.ts";
 * console.log(encodeIdxLabels(new Uint8Array([1, 2])).length); // 10 (8-byte header + 2 labels)
 * ```
 */
export function encodeIdxLabels(labels: Uint8Array): Uint8Array {
  return withHeader([IDX_LABELS_MAGIC, labels.length], labels);
}

function maybeGunzip(bytes: Uint8Array, what: string): Uint8Array {
  return isGzip(bytes) ? gunzip(bytes, what) : bytes;
}

/** Checks the magic number and returns the dimensions that follow it. */
function readHeader(raw: Uint8Array, what: string, magic: number, kind: string, rank: number): number[] {
  const headerBytes = 4 + 4 * rank;
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  // The magic first, so a file of the wrong kind is called that rather than "truncated".
  const found = raw.length >= 4 ? view.getUint32(0, false) : magic;
  if (found !== magic) {
    const hint = found === IDX_IMAGES_MAGIC || found === IDX_LABELS_MAGIC
      ? ` (it is an IDX ${found === IDX_IMAGES_MAGIC ? "image" : "label"} file; images and labels swapped?)`
      : " (neither gzip nor an IDX file of unsigned bytes)";
    throw new NinError(
      `${what}: wrong magic number ${found}, expected ${magic} for an IDX ${kind} file${hint}`,
    );
  }
  if (raw.length < headerBytes) {
    throw new NinError(
      `${what}: truncated IDX ${kind} file: ${raw.length} bytes, shorter than its ${headerBytes}-byte header`,
    );
  }
  const dims: number[] = [];
  for (let i = 0; i < rank; i++) dims.push(view.getUint32(4 + 4 * i, false));
  return dims;
}

/** The body after the header, which must be exactly `expected` bytes. */
function checkedBody(
  raw: Uint8Array,
  what: string,
  start: number,
  expected: number,
  says: string,
): Uint8Array {
  const actual = raw.length - start;
  if (actual < expected) {
    throw new NinError(
      `${what}: truncated: the header says ${says} (${expected} bytes) but only ${actual} bytes follow`,
    );
  }
  if (actual > expected) {
    throw new NinError(
      `${what}: ${actual - expected} unexpected bytes after the ${says} the header announces`,
    );
  }
  return raw.subarray(start);
}

function withHeader(words: number[], body: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 * words.length + body.length);
  const view = new DataView(out.buffer);
  words.forEach((w, i) => view.setUint32(4 * i, w, false));
  out.set(body, 4 * words.length);
  return out;
}

async function readBytes(path: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    throw new NinError(`cannot read ${path}: ${describeFsError(e)}`);
  }
}
