/**
 * The README's screenshot (docs/web.png): `deno task web --offline` on the real Fashion-MNIST cache, a short
 * run through the page's controls in headless Chromium (SwiftShader), then a full-page screenshot.
 *
 *     deno run -A tools/web_screenshot.ts docs/web.png
 *
 * @module
 */
import puppeteer from "puppeteer-core";
import { CHROMIUM, CHROMIUM_FLAGS, setControl, startWebServer, waitIdle } from "../tests/web_server.ts";

const out = Deno.args[0] ?? "docs/web.png";
const server = await startWebServer(["--offline"]);
const browser = await puppeteer.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: CHROMIUM_FLAGS,
  protocolTimeout: 1_800_000, // a page-side wait lasts the whole run
});
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 1500 });
  await page.goto(server.url);
  await waitIdle(page);
  const controls = {
    resize: "67",
    "batch-size": "16",
    "limit-train": "640",
    "limit-test": "160",
    epochs: "2",
  };
  for (const [id, value] of Object.entries(controls)) await setControl(page, id, value);
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => document.body.dataset.state === "training");
  await waitIdle(page, 1_800_000);
  await page.screenshot({ path: out, fullPage: true });
  console.log(`${out}: ${await page.$eval("#status", (e) => e.textContent)}`);
} finally {
  await browser.close();
  await server.stop();
}
