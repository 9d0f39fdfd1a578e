/**
 * `deno task web`: the page in web/ and the package's core bundled for the browser (`/nin.js`, an ES module
 * exporting the core's API), served on 127.0.0.1 with Fashion-MNIST from the toolkit's own cache (the same
 * loader as `train`); nothing is fetched from elsewhere. `--build` writes the same files to `--out` instead.
 *
 * @module
 */
import { pickFlags, runTask } from "./cli.ts";
import { loadTaskData } from "./data.ts";
import { NinError } from "../lib/errors.ts";
import type { FashionMnist, Split } from "../lib/data/split.ts";
import { splitTensors } from "../lib/data/split.ts";
import { serializeSafetensors } from "../lib/safetensors.ts";

const ROOT = new URL("../", import.meta.url);

/** The task's `--help` and flags. */
const TASK = {
  usage: "deno task web [--port N] [--offline] | deno task web --build [--out DIR]",
  summary: "Serves the NiN web page (train, evaluate, load and save checkpoints in the browser) on " +
    "127.0.0.1; --build writes the page and its bundle instead.",
  flags: pickFlags(["port", "build", "out", "data-dir", "offline"], { out: "runs/web" }),
};

/** The page's static files, copied as they are. */
const STATIC_FILES = ["index.html", "style.css"];

/** What the site serves, by URL path: the page, its app and the core bundle. */
const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
};

/**
 * Writes the site to `outDir`: `nin.js` (core.ts bundled for browsers, WGSL inlined), `app.js` (the page's
 * app, importing the package as `@nin/webgpu/core`, which the page's import map points at `/nin.js`),
 * `index.html` and `style.css`. Returns the files written.
 *
 * @example
 * ```ts
 * import { buildSite } from "./web.ts";
 * console.log(await buildSite(await Deno.makeTempDir())); // ["nin.js", "app.js", "index.html", "style.css"]
 * ```
 */
export async function buildSite(outDir: string): Promise<string[]> {
  await Deno.mkdir(outDir, { recursive: true });
  await bundle("core.ts", `${outDir}/nin.js`);
  await bundle("web/app.ts", `${outDir}/app.js`, ["--external", "@nin/webgpu/core"]);
  for (const name of STATIC_FILES) await Deno.copyFile(new URL(`web/${name}`, ROOT), `${outDir}/${name}`);
  return ["nin.js", "app.js", ...STATIC_FILES];
}

async function bundle(entry: string, out: string, extra: string[] = []): Promise<void> {
  const result = await new Deno.Command(Deno.execPath(), {
    args: ["bundle", "--quiet", "--platform", "browser", ...extra, "-o", out, entry],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!result.success) {
    const why = new TextDecoder().decode(result.stderr).trim().split("\n").find((l) => /error/i.test(l));
    throw new NinError(`bundling ${entry} failed: ${why ?? `exit code ${result.code}`}`);
  }
}

/** A split's first `limit` examples as safetensors bytes (`images` [n, 28, 28] and `labels` [n], U8). */
function splitBytes(split: Split, limit: number): Uint8Array {
  const n = Math.min(limit, split.count);
  const part = {
    ...split,
    images: split.images.subarray(0, n * 784),
    labels: split.labels.subarray(0, n),
    count: n,
  };
  return serializeSafetensors(splitTensors(part));
}

/**
 * Serves `siteDir` and the data on 127.0.0.1: `/` the page, `/nin.js`, `/app.js`, `/style.css`, and
 * `/data/train.safetensors` and `/data/test.safetensors` (`?limit=N` for the first N examples), loaded on
 * first request through `data()`.
 */
function serveSite(
  siteDir: string,
  port: number,
  data: () => Promise<FashionMnist>,
): Deno.HttpServer<Deno.NetAddr> {
  let loaded: Promise<FashionMnist> | undefined;
  return Deno.serve({ hostname: "127.0.0.1", port, onListen() {} }, async (request) => {
    const url = new URL(request.url);
    const split = /^\/data\/(train|test)\.safetensors$/.exec(url.pathname);
    if (split) {
      loaded ??= data();
      const limit = Number(url.searchParams.get("limit") ?? Infinity);
      if (!(limit >= 1)) return new Response("limit must be a positive number\n", { status: 400 });
      const set = await loaded;
      const body = splitBytes(split[1] === "train" ? set.train : set.test, Math.floor(limit));
      return new Response(body as Uint8Array<ArrayBuffer>, {
        headers: { "content-type": "application/octet-stream" },
      });
    }
    const name = url.pathname === "/" ? "index.html" : url.pathname.slice(1);
    const type = CONTENT_TYPES[name.slice(name.lastIndexOf("."))];
    if (!type || name.includes("/") || !["nin.js", "app.js", ...STATIC_FILES].includes(name)) {
      return new Response("not found\n", { status: 404 });
    }
    return new Response(await Deno.readFile(`${siteDir}/${name}`), { headers: { "content-type": type } });
  });
}

if (import.meta.main) {
  await runTask(TASK, async (flags) => {
    if (flags.build) {
      const files = await buildSite(flags.out);
      console.log(`wrote ${files.map((f) => `${flags.out}/${f}`).join(", ")}`);
      return;
    }
    const siteDir = await Deno.makeTempDir({ prefix: "nin-web-" });
    try {
      await buildSite(siteDir);
      const stopped = Promise.withResolvers<void>();
      const onInterrupt = () => stopped.resolve();
      Deno.addSignalListener("SIGINT", onInterrupt);
      let server: Deno.HttpServer<Deno.NetAddr>;
      try {
        server = serveSite(siteDir, flags.port, () => loadTaskData(flags));
      } catch (e) {
        if (e instanceof Deno.errors.AddrInUse) {
          throw new NinError(`--port ${flags.port} is in use; pick another or 0`, 2);
        }
        throw e;
      }
      console.log(`serving the NiN page on http://127.0.0.1:${server.addr.port}/ (Ctrl-C stops)`);
      await stopped.promise;
      Deno.removeSignalListener("SIGINT", onInterrupt);
      await server.shutdown();
    } finally {
      await Deno.remove(siteDir, { recursive: true });
    }
  });
}
