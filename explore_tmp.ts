import puppeteer from "puppeteer-core";
const url = Deno.args[0];
const browser = await puppeteer.launch({
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: [
    "--headless=new",
    "--no-sandbox",
    "--enable-unsafe-webgpu",
    "--enable-features=Vulkan",
    "--use-webgpu-adapter=swiftshader",
  ],
});
const page = await browser.newPage();
page.on("console", (m) => console.log("console", m.type(), m.text()));
page.on("pageerror", (e) => console.log("pageerror", e.message));
await page.setViewport({ width: 1280, height: 1400 });
await page.goto(url);
await page.waitForFunction(
  () => document.body.dataset.state !== "starting" && document.body.dataset.state !== "loading",
  { timeout: 60000 },
);
console.log(
  await page.$eval("#device", (e) => e.textContent),
  await page.$eval("#resources", (e) => e.textContent),
);
const t0 = performance.now();
await page.$eval("#limit-train", (e) => (e as HTMLInputElement).value = "64");
await page.$eval("#limit-test", (e) => (e as HTMLInputElement).value = "32");
await page.click("#start");
await page.waitForFunction(() => document.body.dataset.state === "idle", { timeout: 300000 });
console.log("train s", (performance.now() - t0) / 1000);
console.log(
  await page.$eval("#status", (e) => e.textContent),
  await page.$eval("#progress-text", (e) => e.textContent),
  await page.$eval("#eval-text", (e) => e.textContent),
);
await page.screenshot({ path: "/tmp/nb/shot.png", fullPage: true });
await browser.close();
