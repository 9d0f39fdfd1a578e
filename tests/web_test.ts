// The browser build and `deno task web`'s server: the bundle a page imports holds no Deno or node reference,
// and the server serves the page, /nin.js and the data from a data directory, then stops on Ctrl-C.
import { ok, strictEqual } from "node:assert/strict";
import { buildSite } from "../tasks/web.ts";
import { parseSafetensors } from "../lib/safetensors.ts";
import { splitFromTensors } from "../lib/data/split.ts";
import { readIdxSplit } from "../lib/deno/fashion_mnist.ts";
import { taskTest, tinyDataDir } from "./subprocess.ts";
import { startWebServer } from "./web_server.ts";

/** What no browser has: `Deno.` APIs, `node:` modules and Deno's FFI; each found with its line. */
export function nonBrowserReferences(code: string): string[] {
  return code.split("\n").flatMap((line, i) =>
    /\bDeno\.|["']node:|\bdlopen\b/.test(line) ? [`line ${i + 1}: ${line.trim().slice(0, 120)}`] : []
  );
}

Deno.test("web: the reference check finds Deno APIs, node modules and FFI", () => {
  strictEqual(nonBrowserReferences('import { join } from "node:path";\nconst x = 1;').length, 1);
  strictEqual(nonBrowserReferences("await Deno.readFile(p);").length, 1);
  strictEqual(nonBrowserReferences("lib.dlopen('libc.so.6')").length, 1);
  strictEqual(nonBrowserReferences("const deno = 'Denote.';").length, 0);
});

taskTest(
  "web: the browser bundle (nin.js) and the page's app reference no Deno API, node module or FFI",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "nin_web_build_" });
    try {
      const files = await buildSite(dir);
      for (const name of ["nin.js", "app.js", "index.html"]) ok(files.includes(name), `${name} written`);
      const bundle = await Deno.readTextFile(`${dir}/nin.js`);
      strictEqual(nonBrowserReferences(bundle).join("\n"), "", "Deno/node references in nin.js");
      strictEqual(nonBrowserReferences(await Deno.readTextFile(`${dir}/app.js`)).join("\n"), "", "in app.js");
      // WGSL is inlined (text imports), and the bundle exports the core's API.
      ok(bundle.includes("@compute"), "WGSL kernels inlined");
      for (const name of ["requestGpu", "nin", "trainStep", "parseCheckpoint", "encodeCheckpoint", "fit"]) {
        ok(new RegExp(`export \\{[^}]*\\b${name}\\b`).test(bundle), `nin.js exports ${name}`);
      }
      ok(
        (await Deno.readTextFile(`${dir}/app.js`)).includes('from "@nin/webgpu/core"'),
        "app imports the core",
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

taskTest(
  "web: deno task web serves the page, nin.js and the data set on 127.0.0.1, and Ctrl-C stops it",
  async () => {
    const dataDir = await tinyDataDir(24, 12);
    const server = await startWebServer(["--data-dir", dataDir]);
    const url = server.url;
    try {
      const page = await (await fetch(url)).text();
      ok(page.includes('"@nin/webgpu/core": "./nin.js"'), "the page maps the package to /nin.js");
      const bundle = await fetch(new URL("nin.js", url));
      strictEqual(bundle.headers.get("content-type"), "text/javascript; charset=utf-8");
      ok((await bundle.text()).includes("requestGpu"), "nin.js");
      const served = await fetch(new URL("data/test.safetensors?limit=5", url));
      const test = splitFromTensors(
        parseSafetensors(new Uint8Array(await served.arrayBuffer())).tensors,
        "",
        "served",
      );
      const expected = await readIdxSplit(
        `${dataDir}/t10k-images-idx3-ubyte`,
        `${dataDir}/t10k-labels-idx1-ubyte`,
      );
      strictEqual(test.count, 5);
      ok(
        test.images.every((v, i) => v === expected.images[i]),
        "the first 5 test images, as the loader reads them",
      );
      ok(test.labels.every((v, i) => v === expected.labels[i]), "their labels");
      strictEqual(
        (await fetch(new URL("data/train.safetensors", url)).then((r) => r.arrayBuffer())).byteLength >
          24 * 784,
        true,
      );
      const missing = await fetch(new URL("../deno.json", url));
      await missing.body?.cancel();
      strictEqual(missing.status, 404, "nothing outside the site is served");
    } finally {
      const result = await server.stop();
      strictEqual(result.code, 0, `exit code after Ctrl-C; stderr:\n${result.stderr}`);
      await Deno.remove(dataDir, { recursive: true });
    }
  },
);
