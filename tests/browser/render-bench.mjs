// The web page's first render over a large store, in headless Chromium:
// navigation start -> the table's rows in the DOM (the page's
// `ticks-rendered` performance mark), for a few views, several times.
//
//   cargo run --release -p ticks-benches -- --messages 1000000 --dir /tmp/tb1m
//   cargo build --release -p ticks-server
//   node tests/browser/render-bench.mjs /tmp/tb1m
import { chromium } from "playwright-core";
import { spawn } from "node:child_process";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const data = process.argv[2];
if (!data) { console.error("usage: node render-bench.mjs DATA_DIR"); process.exit(2); }
const ticks = process.env.TICKS_BIN || join(here, "..", "..", "target", "release", "ticks");
const server = spawn(ticks, ["serve", "--data", data, "--listen", "127.0.0.1:0"], { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, TICKS_LOG: "error" } });
const base = await new Promise(resolve => { let b = ""; server.stdout.on("data", d => { b += d; const m = b.match(/http:\/\/(\S+)/); if (m) resolve("http://" + m[1]); }); });
for (let i = 0; i < 1200; i++) { if ((await fetch(base + "/readyz")).status === 200) break; await new Promise(r => setTimeout(r, 100)); }
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: ["--headless", "--no-sandbox", "--disable-gpu"] });
const results = {};
for (const path of ["/", "/?status=failed&category=marketing_campaign", "/?view=mo", "/?sort=name"]) {
  for (let round = 0; round < 5; round++) {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await page.goto(base + path);
    await page.waitForFunction(() => performance.getEntriesByName("ticks-rendered").length > 0);
    const ms = await page.evaluate(() => performance.getEntriesByName("ticks-rendered")[0].startTime);
    (results[path] ||= []).push(Math.round(ms));
    // What the page asks for after its table (the selects' values, the
    // histogram and sidebar) finishes before the next round, which would
    // otherwise share the server with it.
    await page.waitForFunction(() => document.body.dataset.facets === "loaded" && (document.body.dataset.explored === location.search || new URLSearchParams(location.search).get("view") === "mo"));
    await page.close();
  }
}
// After the table: the histogram and the field sidebar (one report request).
const histogram = [], explored = [], drawing = [], request = [];
for (let round = 0; round < 5; round++) {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  await page.goto(base + "/");
  await page.waitForFunction(() => performance.getEntriesByName("ticks-explored").length > 0);
  const after = name => page.evaluate(n => performance.getEntriesByName(n)[0].startTime - performance.getEntriesByName("ticks-rendered")[0].startTime, name);
  histogram.push(Math.round(await after("ticks-histogram")));
  drawing.push(Math.round(await page.evaluate(() => performance.getEntriesByName("ticks-histogram-draw")[0].duration)));
  request.push(Math.round(await page.evaluate(() => performance.getEntriesByType("resource").find(e => e.name.includes("sections=series")).duration)));
  explored.push(Math.round(await after("ticks-explored")));
  await page.waitForFunction(() => document.body.dataset.facets === "loaded");
  await page.close();
}
results["histogram after the table"] = histogram;
results["histogram: its request"] = request;
results["histogram: drawing it"] = drawing;
results["histogram and sidebar after the table"] = explored;
// A filter changed on a rendered page: the change -> the new rows.
const changes = [];
const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
await page.goto(base + "/");
await page.waitForFunction(() => document.body.dataset.facets === "loaded" && document.body.dataset.rendered === location.search);
for (const [name, value] of [["status", "failed"], ["status", "read"], ["category", "template_bot"], ["status", ""], ["category", ""], ["status", "delivered"]]) {
  await page.evaluate(() => { window.__changed = performance.now(); });
  await page.selectOption(`select[name="${name}"]`, value);
  await page.waitForFunction(() => document.body.dataset.rendered === location.search && performance.getEntriesByName("ticks-rendered").at(-1).startTime > window.__changed);
  changes.push(Math.round(await page.evaluate(() => performance.getEntriesByName("ticks-rendered").at(-1).startTime - window.__changed)));
}
results["filter change"] = changes;
for (const [path, times] of Object.entries(results)) {
  const sorted = [...times].sort((a, b) => a - b);
  console.log(`${path}: ${sorted.join(", ")} ms (median ${sorted[Math.floor(sorted.length / 2)]})`);
}
await browser.close();
server.kill("SIGKILL");
