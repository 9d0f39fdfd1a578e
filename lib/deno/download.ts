/**
 * Downloading one file into a cache, all or nothing: the body is read completely, its length and MD5 are
 * checked, and only then is it written (atomically) under its final name. A failed download leaves no
 * file behind, so a retry starts clean.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { NinError } from "../errors.ts";
import { writeFileAtomic } from "./atomic_write.ts";

/** Options for {@link downloadFile}. */
export interface DownloadOptions {
  /** Expected MD5 (lowercase hex) of the body; a mismatch is an error and nothing is written. */
  md5?: string;
  /** Receives progress lines (start, about every 10%, done). */
  onProgress?: (message: string) => void;
  /** The `fetch` to use (tests pass their own); default the global one. */
  fetchImpl?: typeof fetch;
  /** Give up when no response or no new data arrives for this long (default 15 000 ms). */
  idleTimeoutMs?: number;
}

/**
 * Downloads `url` to `dest`. Throws a {@link NinError} naming the URL on a network error, an HTTP error
 * status, a body shorter than its `Content-Length`, a timeout or an MD5 mismatch; in every such case no
 * file is created at `dest` (an existing one is left as it was).
 *
 * @example
 * ```ts
 * import { downloadFile } from "./download.ts";
 * const body = new TextEncoder().encode("hi");
 * const fakeFetch = (() => Promise.resolve(new Response(body))) as typeof fetch;
 * const dest = (await Deno.makeTempDir()) + "/hi.txt";
 * await downloadFile("http://example.invalid/hi.txt", dest, {
 *   fetchImpl: fakeFetch,
 *   md5: "49f68a5c8493ec2c0bf489821c21fc3b",
 * });
 * console.log(await Deno.readTextFile(dest)); // hi
 * ```
 */
export async function downloadFile(url: string, dest: string, options?: DownloadOptions): Promise<void> {
  const opts: DownloadOptions = options ?? {};
  const fetchImpl = opts.fetchImpl ?? fetch;
  const idleMs = opts.idleTimeoutMs ?? 15_000;
  const name = url.slice(url.lastIndexOf("/") + 1) || url;
  const controller = new AbortController();
  let timer = setTimeout(() => controller.abort(), idleMs);
  const touch = () => {
    clearTimeout(timer);
    timer = setTimeout(() => controller.abort(), idleMs);
  };
  const failed = (why: string) =>
    new NinError(`download of ${url} failed: ${why}; nothing was saved, retry later`);

  let body: Uint8Array;
  try {
    let response: Response;
    try {
      response = await fetchImpl(url, { signal: controller.signal });
    } catch (e) {
      throw failed(networkReason(e, url, idleMs));
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw failed(`HTTP ${response.status} ${response.statusText}`.trim());
    }
    const header = response.headers.get("content-length");
    const expected = header !== null && /^\d+$/.test(header) ? Number(header) : null;
    opts.onProgress?.(
      `downloading ${name} from ${url}${expected !== null ? ` (${megabytes(expected)})` : ""}`,
    );
    const chunks: Uint8Array[] = [];
    let received = 0;
    let reported = 0;
    try {
      const reader = response.body!.getReader();
      while (true) {
        const { done, value } = await reader.read();
        if (done) break;
        touch();
        chunks.push(value);
        received += value.length;
        if (expected && received - reported >= expected / 10 && received < expected) {
          reported = received;
          opts.onProgress?.(
            `  ${name}: ${megabytes(received)} of ${megabytes(expected)} (${
              Math.floor(100 * received / expected)
            }%)`,
          );
        }
      }
    } catch (e) {
      throw failed(`the connection broke after ${received} bytes (${networkReason(e, url, idleMs)})`);
    }
    if (expected !== null && received !== expected) {
      throw failed(`truncated body: got ${received} of ${expected} bytes`);
    }
    body = concat(chunks, received);
  } finally {
    clearTimeout(timer);
  }
  if (opts.md5 !== undefined) {
    const actual = md5Hex(body);
    if (actual !== opts.md5.toLowerCase()) {
      throw failed(`MD5 ${actual} does not match the published ${opts.md5} (corrupt or wrong file)`);
    }
  }
  await writeFileAtomic(dest, body);
  opts.onProgress?.(`  ${name}: ${megabytes(body.length)} saved${opts.md5 ? ", MD5 verified" : ""}`);
}

/**
 * MD5 of `bytes` as lowercase hex (for checking downloads against published checksums, not for security).
 *
 * @example
 * ```ts
 * import { md5Hex } from "./download.ts";
 * console.log(md5Hex(new Uint8Array())); // d41d8cd98f00b204e9800998ecf8427e
 * ```
 */
export function md5Hex(bytes: Uint8Array): string {
  return createHash("md5").update(bytes).digest("hex");
}

function networkReason(e: unknown, url: string, idleMs: number): string {
  if (e instanceof Deno.errors.NotCapable) {
    return `Deno has no network permission for ${new URL(url).host} (run with --allow-net=${
      new URL(url).host
    })`;
  }
  if (e instanceof DOMException && e.name === "AbortError") return `no data for ${idleMs / 1000} s`;
  const message = e instanceof Error ? e.message.split("\n")[0] : String(e);
  // Deno puts the useful part (e.g. "dns error: ...") in the cause, after a prefix repeating the URL.
  const cause = e instanceof Error && e.cause instanceof Error
    ? ` (${e.cause.message.split("\n")[0].replace(/^error sending request for url \([^)]*\): /, "")})`
    : "";
  return message + cause;
}

function concat(chunks: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

function megabytes(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}
