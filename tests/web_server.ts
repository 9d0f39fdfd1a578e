// `deno task web` as a child process (started on a free port, stopped by Ctrl-C) and the headless Chromium
// that opens it, for the web and browser tests and tools/browser_bench.ts.
/// <reference lib="dom" />
import type { Page } from "puppeteer-core";
import { ROOT } from "./subprocess.ts";

/** A running `deno task web`: its URL (from its first stdout line), and how to stop it. */
export interface WebServer {
  /** The page's URL, e.g. `http://127.0.0.1:41234/`. */
  url: string;
  /** Sends Ctrl-C and waits for the exit: the exit code and stderr. */
  stop(): Promise<{ code: number; stderr: string }>;
}

/** Starts `tasks/web.ts` with `args` and waits for the URL it prints. */
export async function startWebServer(args: string[]): Promise<WebServer> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "--allow-net=127.0.0.1",
      "--allow-run",
      "tasks/web.ts",
      ...args,
    ],
    cwd: ROOT,
    env: { NIN_DEBUG: "", NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  let url: string | undefined;
  while (!url) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`deno task web ended without a URL: ${out}${await stderr}`);
    out += value;
    url = /http:\/\/127\.0\.0\.1:\d+\//.exec(out)?.[0];
  }
  reader.releaseLock();
  const rest = child.stdout.cancel().catch(() => {});
  return {
    url,
    stop: async () => {
      child.kill("SIGINT");
      const status = await child.status;
      await rest;
      return { code: status.code, stderr: await stderr };
    },
  };
}

/** The Debian package's binary (`apt-get install -y chromium`; .ci/run installs it). */
export const CHROMIUM = "/usr/bin/chromium";

/** Headless Chromium with WebGPU on SwiftShader, its CPU Vulkan implementation. */
export const CHROMIUM_FLAGS = [
  "--headless=new",
  "--no-sandbox",
  "--enable-unsafe-webgpu",
  "--enable-features=Vulkan",
  "--use-webgpu-adapter=swiftshader",
];

/** Sets a control as a user does: focus, select its text, type. */
export async function setControl(page: Page, id: string, value: string): Promise<void> {
  await page.focus(`#${id}`);
  await page.keyboard.down("Control");
  await page.keyboard.press("KeyA");
  await page.keyboard.up("Control");
  await page.keyboard.type(value);
}

/** Waits until the page is idle (not starting, training, evaluating or loading). */
export async function waitIdle(page: Page, timeout = 120_000): Promise<void> {
  await page.waitForFunction(() => document.body.dataset.state === "idle", { timeout });
}
