/**
 * Memory over a long training run (not a CI test: it takes a while): trains NiN with `fit` on random
 * 28x28 images (67x67 after resizing, batch 2 by default) and prints, every `--every` steps, the process's
 * RSS (anonymous and file-backed apart, on Linux), the JS heap, V8's external memory and the GPU buffers live
 * in the toolkit's pool, then the growth from the step-1,000 mark to the end. Run it alone (`flock
 * /tmp/nin-bench.lock ...`): other work on the machine moves RSS too. Deno reads /proc/self only with all
 * permissions, hence `-A` (with fewer, the anonymous/file split reads 0). `deno task nin` starts it with
 * glibc's allocator thresholds fixed, as the tasks run (README, Use it as a library); plain `deno run` shows
 * the growth without them.
 *
 * ```sh
 * deno task nin -A tools/rss.ts --steps 10000 --every 500
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { fit } from "../lib/fit.ts";
import { requestGpu } from "../lib/deno/gpu.ts";
import { nin } from "../lib/nin.ts";
import { SGD } from "../lib/optim.ts";
import { Random } from "../lib/random.ts";
import type { Split } from "../lib/data/split.ts";

/** One sample of the memory figures. */
export interface MemorySample {
  /** Training steps done. */
  step: number;
  /** Resident set size of the process, bytes. */
  rss: number;
  /** Of the RSS, anonymous memory (malloc, V8, driver heaps) and file-backed pages, bytes (Linux; else 0). */
  rssAnon: number;
  /** File-backed resident pages (mapped libraries, shader caches), bytes. */
  rssFile: number;
  /** V8 heap in use, bytes. */
  heapUsed: number;
  /** V8 heap committed (in use, free and young-generation space): what the heap holds of the RSS, bytes. */
  heapTotal: number;
  /** Memory V8 holds outside its heap (ArrayBuffers), bytes. */
  external: number;
  /** Live GPU buffers in the toolkit's pool. */
  liveBuffers: number;
  /** Bytes of live and pooled GPU buffers. */
  gpuBytes: number;
}

/** `count` random 28x28 images with random labels, as a data split. */
function randomSplit(count: number, seed: number): Split {
  const rng = new Random(seed);
  const images = Uint8Array.from({ length: count * 784 }, () => rng.int(256));
  const labels = Uint8Array.from({ length: count }, () => rng.int(10));
  return { images, labels, count, height: 28, width: 28 };
}

const MIB = 2 ** 20;

/** The process's anonymous and file-backed resident bytes from /proc/self/status (zeros where absent). */
function residentParts(): { rssAnon: number; rssFile: number } {
  let text = "";
  try {
    text = Deno.readTextFileSync("/proc/self/status");
  } catch {
    return { rssAnon: 0, rssFile: 0 };
  }
  const kib = (key: string) => 1024 * Number(text.match(new RegExp(`^${key}:\\s+(\\d+) kB`, "m"))?.[1] ?? 0);
  return { rssAnon: kib("RssAnon"), rssFile: kib("RssFile") + kib("RssShmem") };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      steps: { type: "string", default: "10000" },
      every: { type: "string", default: "500" },
      resize: { type: "string", default: "67" },
      "batch-size": { type: "string", default: "2" },
      images: { type: "string", default: "2000" },
      json: { type: "string" },
    },
  });
  const steps = Number(values.steps), every = Number(values.every);
  const batchSize = Number(values["batch-size"]), resize = Number(values.resize);
  const images = Number(values.images);
  const stepsPerEpoch = Math.ceil(images / batchSize);
  const epochs = Math.ceil(steps / stepsPerEpoch);
  const gpu = await requestGpu();
  const net = nin(gpu, { seed: 0, init: "kaiming" });
  const optimizer = new SGD(net.parameters(), { lr: 0.05 });
  const data = { train: randomSplit(images, 1), test: randomSplit(batchSize, 2) };
  const samples: MemorySample[] = [];
  const started = performance.now();
  const sample = (step: number) => {
    const m = Deno.memoryUsage();
    const g = gpu.memory;
    samples.push({
      step,
      rss: m.rss,
      ...residentParts(),
      heapUsed: m.heapUsed,
      heapTotal: m.heapTotal,
      external: m.external,
      liveBuffers: g.liveBuffers,
      gpuBytes: g.liveBytes + g.pooledBytes,
    });
    const s = samples[samples.length - 1];
    console.log(
      `${((performance.now() - started) / 1000).toFixed(0).padStart(5)} s, step ${
        String(step).padStart(6)
      }: RSS ${(s.rss / MIB).toFixed(1)} MiB (anonymous ${(s.rssAnon / MIB).toFixed(1)}, files ${
        (s.rssFile / MIB).toFixed(1)
      }), JS heap ${(s.heapUsed / MIB).toFixed(1)} of ${(s.heapTotal / MIB).toFixed(1)} MiB, external ${
        (s.external / MIB).toFixed(1)
      } MiB, GPU ${s.liveBuffers} live buffers, ${(s.gpuBytes / MIB).toFixed(1)} MiB live + pooled`,
    );
  };
  const thresholds = ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"]
    .map((name) => `${name}=${Deno.env.get(name) ?? "(unset)"}`);
  console.log(`glibc's allocator: ${thresholds.join(" ")}`);
  console.log(
    `${gpu.describe()}: ${steps} steps of batch ${batchSize} at ${resize}x${resize} ` +
      `(${epochs} epoch${epochs === 1 ? "" : "s"} of ${stepsPerEpoch} steps on ${images} random images)`,
  );
  let done = 0;
  await fit(net, optimizer, data, {
    epochs,
    batchSize,
    resize,
    seed: 0,
    limitTest: batchSize,
    onStep: () => {
      done += 1;
      if (done % every === 0) sample(done);
    },
    shouldStop: () => done >= steps,
  });
  const at = (step: number) => samples.find((s) => s.step >= step) ?? samples[0];
  const first = at(1000), last = samples[samples.length - 1];
  const growth = (key: keyof MemorySample) => ((last[key] - first[key]) / MIB).toFixed(1);
  console.log(
    `RSS from step ${first.step} to ${last.step}: ${growth("rss")} MiB (anonymous ${growth("rssAnon")}, ` +
      `files ${growth("rssFile")}; JS heap ${growth("heapUsed")} MiB used, ${
        growth("heapTotal")
      } committed, GPU buffers ${last.liveBuffers - first.liveBuffers}); ${
        ((performance.now() - started) / 1000).toFixed(0)
      } s`,
  );
  if (values.json) await Deno.writeTextFile(values.json, JSON.stringify(samples, null, 1));
  net.dispose();
  gpu.destroy();
}
