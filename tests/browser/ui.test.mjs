// The Ticks web page in a real browser: Debian's Chromium, headless, driven
// by playwright-core, against a real `ticks serve` with generated data.
//
// Covers: filtering, sorting, free-text search, paging, the detail view,
// delete with confirmation, export then bulk delete, export downloads, the
// report view and its drill-downs, the received-messages view, saved
// searches, the URL as state,
// and saves screenshots of the main views to tests/browser/screenshots/.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const ticks = process.env.TICKS_BIN || join(here, "..", "..", "target", "debug", "ticks");
// Screenshots of the ClickHouse run are not the repository's.
const shots = process.env.TICKS_UI_CLICKHOUSE ? mkdtempSync(join(tmpdir(), "ticks-ui-shots-")) : join(here, "screenshots");
mkdirSync(shots, { recursive: true });
let server, base, browser, page;

// With TICKS_UI_CLICKHOUSE (a ClickHouse URL) the same page runs on the
// ClickHouse backend, in a database of its own: every test, every view.
const clickhouse = process.env.TICKS_UI_CLICKHOUSE;
const database = `ui_${process.pid}`;

async function clickhouseSql(sql) {
  const r = await fetch(clickhouse, { method: "POST", body: sql });
  assert.equal(r.status, 200, await r.text());
}

before(async () => {
  const data = mkdtempSync(join(tmpdir(), "ticks-ui-"));
  const definitions = join(data, "..", `templates-${process.pid}.json`);
  const traffic = execFileSync(ticks, ["generate", "--messages", "3000", "--seed", "21", "--templates", definitions], { maxBuffer: 1 << 30 });
  const args = ["serve", "--data", data, "--listen", "127.0.0.1:0"];
  if (clickhouse) {
    await clickhouseSql(`DROP DATABASE IF EXISTS ${database}`);
    const config = join(data, "..", `ticks-ui-${process.pid}.toml`);
    writeFileSync(config, `backend = "clickhouse"\nclickhouse_url = "${clickhouse}"\nclickhouse_database = "${database}"\n`);
    args.push("--config", config);
  }
  server = spawn(ticks, args, { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, TICKS_LOG: "warn" } });
  base = await new Promise((resolve, reject) => {
    let buf = "";
    server.stdout.on("data", d => { buf += d; const m = buf.match(/http:\/\/(\S+)/); if (m) resolve("http://" + m[1]); });
    server.on("exit", code => reject(new Error("ticks exited " + code)));
  });
  const r = await fetch(base + "/v1/import", { method: "POST", body: traffic });
  assert.equal(r.status, 200);
  const t = await fetch(base + "/v1/templates", { method: "POST", body: readFileSync(definitions) });
  assert.equal(t.status, 200);
  for (let i = 0; i < 100; i++) { if ((await fetch(base + "/readyz")).status === 200) break; await new Promise(r => setTimeout(r, 100)); }
  await new Promise(r => setTimeout(r, 1200)); // the full-text index commits within a second
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
});

after(async () => {
  await browser?.close();
  server?.kill("SIGKILL");
  if (clickhouse) await clickhouseSql(`DROP DATABASE IF EXISTS ${database}`);
});

/// CSV records (quoted cells may hold commas and newlines).
function csvRows(text) {
  const rows = [];
  let row = [], cell = "", quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { cell += '"'; i++; }
      else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") { row.push(cell); cell = ""; }
    else if (c === "\n") { row.push(cell); rows.push(row); row = []; cell = ""; }
    else if (c !== "\r") cell += c;
  }
  if (cell !== "" || row.length) { row.push(cell); rows.push(row); }
  return rows;
}

const total = async () => Number((await page.locator("#total").textContent()).replace(/[^0-9]/g, ""));
const api = async (q) => (await (await fetch(base + "/v1/logs?" + q)).json()).total;
async function settled(p = page) {
  await p.waitForFunction(() => document.body.dataset.rendered === location.search && document.body.dataset.facets === "loaded");
}

test("the table shows the total and the log columns, newest first", async () => {
  await page.goto(base + "/");
  await settled();
  assert.equal(await total(), await api(""));
  const headers = await page.locator("#head th").allTextContents();
  for (const h of ["#", "Category", "Name", "Template", "Code", "Type", "Recorded on", "Status", "Phone", "Error"]) assert.ok(headers.some(x => x.startsWith(h)), h);
  assert.equal(await page.locator("#rows tr").count(), 50);
  await page.screenshot({ path: join(shots, "log-table.png"), fullPage: false });
});

test("filters narrow the table and live in the URL, with back and forward", async () => {
  await page.goto(base + "/");
  await settled();
  await page.selectOption("select[name=status]", "failed");
  await settled();
  assert.match(page.url(), /status=failed/);
  assert.equal(await total(), await api("status=failed"), page.url());
  const statuses = await page.locator("#rows tr td:nth-child(9)").allTextContents();
  assert.ok(statuses.length > 0 && statuses.every(s => s.includes("failed")), statuses.join(","));
  await page.selectOption("select[name=category]", "marketing_campaign");
  await settled();
  assert.equal(await total(), await api("status=failed&category=marketing_campaign"), page.url());
  await page.goBack();
  await settled();
  assert.equal(await total(), await api("status=failed"), page.url());
  await page.goForward();
  await settled();
  assert.equal(await total(), await api("status=failed&category=marketing_campaign"), page.url());
  // A shared link opens the same view.
  const fresh = await browser.newPage();
  await fresh.goto(page.url());
  await settled(fresh);
  assert.equal(await fresh.locator("select[name=status]").inputValue(), "failed");
  await fresh.close();
});

test("typing in the search box updates the table without a request per key", async () => {
  await page.goto(base + "/");
  await settled();
  let requests = 0;
  page.on("request", r => { if (r.url().includes("/v1/logs?")) requests++; });
  await page.locator("#f-text").pressSequentially("quero", { delay: 40 });
  await page.waitForTimeout(700);
  await page.waitForFunction(() => document.body.dataset.rendered === location.search && location.search.includes("text=quero"));
  assert.ok(requests <= 2, `${requests} requests for 5 keystrokes`);
  assert.equal(await total(), await api("text=quero"));
  assert.ok(await total() > 0);
});

test("clicking a header sorts by it, and again reverses", async () => {
  await page.goto(base + "/?direction=outbound");
  await settled();
  await page.getByRole("button", { name: "Name" }).click();
  await settled();
  let names = await page.locator("#rows tr td:nth-child(4)").allTextContents();
  assert.deepEqual(names, [...names].sort((a, b) => a < b ? -1 : a > b ? 1 : 0));
  assert.match(page.url(), /sort=name/);
  await page.getByRole("button", { name: "Name" }).click();
  await settled();
  assert.match(page.url(), /sort=-name/);
  names = await page.locator("#rows tr td:nth-child(4)").allTextContents();
  assert.deepEqual(names, [...names].sort((a, b) => a < b ? 1 : a > b ? -1 : 0));
});

test("paging moves through the results, deep pages included", async () => {
  await page.goto(base + "/?limit=25");
  await settled();
  const first = await page.locator("#rows tr").first().getAttribute("data-id");
  await page.click("#next");
  await settled();
  assert.match(page.url(), /page=2/);
  const second = await page.locator("#rows tr").first().getAttribute("data-id");
  assert.notEqual(first, second);
  await page.fill("#goto", "100");
  await page.locator("#goto").dispatchEvent("change");
  await settled();
  assert.match(await page.locator("#page-info").textContent(), /page 100 of/);
  assert.equal(await page.locator("#rows tr").count(), 25);
});

test("a row opens the detail view with its payloads and timeline, at its own URL", async () => {
  await page.goto(base + "/?status=read&category=marketing_campaign");
  await settled();
  await page.locator("#rows tr td.num").first().click(); // the id cell opens the row
  await page.waitForSelector("#detail:not([hidden]) .timeline");
  assert.match(page.url(), /entry=\d+/);
  const text = await page.locator("#detail").textContent();
  for (const part of ["Request payload", "Response body", "Template parameters", "Timeline", "Recorded on (as received)"]) assert.ok(text.includes(part), part);
  assert.ok((await page.locator(".timeline li").count()) >= 3);
  await page.screenshot({ path: join(shots, "detail.png") });
  const url = page.url();
  await page.keyboard.press("Escape");
  await settled();
  assert.doesNotMatch(page.url(), /entry=/);
  await page.goto(url);
  await page.waitForSelector("#detail:not([hidden]) .timeline");
});

test("deleting asks for confirmation, and cancel keeps the entry", async () => {
  await page.goto(base + "/?status=rejected");
  await settled();
  const before = await total();
  const id = await page.locator("#rows tr").first().getAttribute("data-id");
  await page.locator("#rows tr td.num").first().click(); // the id cell opens the row
  await page.waitForSelector("#detail:not([hidden])");
  await page.getByRole("button", { name: "Delete this entry" }).click();
  assert.ok(await page.locator("#confirm").isVisible());
  assert.match(await page.locator("#confirm").textContent(), /cannot be recovered/);
  await page.screenshot({ path: join(shots, "confirm-delete.png") });
  await page.getByRole("button", { name: "Cancel" }).click();
  assert.equal(await api("status=rejected"), before);
  await page.getByRole("button", { name: "Delete this entry" }).click();
  await page.click("#confirm-delete");
  // The page is already settled on its old URL: wait for the deletion's own
  // note, which appears once the server has answered.
  await page.waitForFunction(() => (document.querySelector("#total").textContent || "").includes("without an export"));
  assert.equal(await api("status=rejected"), before - 1);
  const gone = await fetch(base + "/v1/logs/" + id);
  assert.equal(gone.status, 404);
});

test("several rows can be selected, exported and then deleted together", async () => {
  await page.goto(base + "/?status=no_response");
  await settled();
  const before = await total();
  assert.ok(before >= 3);
  const boxes = page.locator("#rows input[type=checkbox]");
  const ids = [];
  for (let i = 0; i < 3; i++) { await boxes.nth(i).check(); ids.push(await page.locator("#rows tr").nth(i).getAttribute("data-id")); }
  assert.match(await page.locator("#bulk-delete").textContent(), /\(3\)/);
  await page.click("#bulk-delete");
  const downloading = page.waitForEvent("download");
  await page.click("#confirm-export");
  const download = await downloading;
  const csv = csvRows(readFileSync(await download.path(), "utf8"));
  assert.equal(csv.length, 4, "a header and the three selected rows");
  for (const id of ids) assert.ok(csv.some(r => r[0] === id), id);
  await page.waitForFunction(() => (document.querySelector("#total").textContent || "").includes("after export"));
  assert.equal(await api("status=no_response"), before - 3);
  const purges = (await (await fetch(base + "/v1/purges")).json()).purges;
  const last = purges[purges.length - 1];
  assert.equal(last.count, 3);
  assert.equal(last.forced, false);
  assert.ok(last.receipt);
});

test("the export links download every matching entry, CSV and PDF", async () => {
  await page.goto(base + "/?status=failed");
  await settled();
  const n = await total();
  let downloading = page.waitForEvent("download");
  await page.click("#export-csv");
  const csv = csvRows(readFileSync(await (await downloading).path(), "utf8"));
  assert.equal(csv.length, n + 1, "every matching entry, not just the page");
  assert.equal(csv[0][0], "id");
  downloading = page.waitForEvent("download");
  await page.click("#export-pdf");
  const pdf = readFileSync(await (await downloading).path());
  assert.equal(pdf.subarray(0, 5).toString(), "%PDF-");
  assert.ok(pdf.subarray(pdf.length - 6).toString().includes("%%EOF"));
});

test("the report draws the funnel and series, and a bar opens exactly its messages", async () => {
  await page.goto(base + "/?view=report&category=marketing_campaign");
  await settled();
  await page.waitForSelector("#report svg[aria-label='Delivery funnel']");
  assert.ok(await page.locator("#report svg[aria-label='volume by status over time'] rect").count() > 20);
  assert.ok(await page.locator("#report svg[aria-label='failure reasons'] a").count() > 0);
  await page.screenshot({ path: join(shots, "report.png"), fullPage: true });
  const report = await (await fetch(base + "/v1/report?category=marketing_campaign&tz=" + encodeURIComponent(await page.evaluate(() => Intl.DateTimeFormat().resolvedOptions().timeZone)))).json();
  const delivered = report.funnel.steps.find(s => s.step === "delivered");
  await page.locator("#report svg[aria-label='Delivery funnel'] a").nth(3).locator("rect").click();
  await settled();
  assert.match(page.url(), /reached=delivered/);
  assert.doesNotMatch(page.url(), /view=report/);
  assert.equal(await total(), delivered.count);
  assert.ok(await page.locator("#chips .chip").count() >= 1, "the drill-down filter is shown");
  // A failure reason opens its messages.
  await page.goBack();
  await settled();
  await page.waitForSelector("#report svg[aria-label='failure reasons'] a");
  const reason = report.failure_reasons[0];
  await page.locator("#report svg[aria-label='failure reasons'] a").first().locator("rect").click();
  await settled();
  assert.equal(await total(), reason.count);
});

test("the received-messages view lists replies and button clicks with the campaign they answer", async () => {
  await page.goto(base + "/?view=mo");
  await settled();
  const headers = await page.locator("#head th").allTextContents();
  for (const h of ["Received on", "From", "Message", "Content", "Button", "Campaign answered", "User"]) assert.ok(headers.some(x => x.startsWith(h)), h);
  assert.equal(await total(), await api("direction=inbound"));
  await page.waitForSelector("#mo-summary svg[aria-label='Quick-reply clicks per button'] a");
  await page.screenshot({ path: join(shots, "received.png"), fullPage: true });
  const buttons = (await (await fetch(base + "/v1/report?direction=inbound&sections=inbound")).json()).inbound.by_button;
  await page.locator("#mo-summary svg[aria-label='Quick-reply clicks per button'] a").first().locator("rect").click();
  await settled();
  assert.match(page.url(), /button=/);
  assert.equal(await total(), buttons[0].count);
});

test("a phone in the table opens the person's contact view with all their messages", async () => {
  await page.goto(base + "/?direction=inbound");
  await settled();
  const link = page.locator("#rows a.person").first();
  const phone = await link.textContent();
  await link.click();
  await settled();
  assert.match(page.url(), /view=contact/);
  await page.waitForSelector("#contact-card dl.contact");
  const card = await page.locator("#contact-card").textContent();
  assert.ok(card.includes(phone), `the card names ${phone}: ${card}`);
  const person = await (await fetch(base + "/v1/contacts/" + encodeURIComponent(phone))).json();
  assert.equal(await total(), person.entries, "every message with them, both directions");
  assert.equal(await total(), await api("contact=" + encodeURIComponent(phone)));
  await page.screenshot({ path: join(shots, "contact.png"), fullPage: true });
});

test("the account-health view charts the account and template events, and a bar opens exactly them", async () => {
  await page.goto(base + "/?view=health");
  await settled();
  await page.waitForSelector("#health svg[aria-label='Events by kind'] a");
  assert.equal(await total(), await api("direction=event"), "the table lists the events");
  await page.screenshot({ path: join(shots, "health.png"), fullPage: true });
  const kinds = (await (await fetch(base + "/v1/stats?direction=event&group_by=category")).json()).groups;
  const top = kinds.filter(g => g.key !== null && g.key !== "")[0];
  await page.locator("#health svg[aria-label='Events by kind'] a").first().locator("rect").click();
  await settled();
  assert.match(page.url(), /event=/);
  assert.equal(await total(), top.count);
});

test("the templates view lists the catalog, shows a template's versions, and the table shows the text people read", async () => {
  await page.goto(base + "/?view=templates");
  await settled();
  await page.waitForSelector("#templates table.templates tbody tr");
  const rows = await page.locator("#templates table.templates tbody tr").count();
  const catalog = (await (await fetch(base + "/v1/templates")).json()).templates;
  assert.equal(rows, catalog.length);
  const edited = catalog.find(t => t.versions === 2);
  assert.ok(edited, "the generator edits two templates");
  await page.locator("#templates a", { hasText: edited.name }).first().click();
  await settled();
  await page.waitForSelector("#templates ol.template-versions li");
  assert.equal(await page.locator("#templates ol.template-versions li").count(), 2);
  assert.match(await page.locator("#templates ol.template-versions").innerText(), /frete grátis/);
  await page.waitForSelector("#templates table.template-health");
  const health = (await (await fetch(base + "/v1/report?" + new URLSearchParams({ sections: "templates", template: edited.name, template_language: edited.language }))).json()).templates[0];
  assert.match(await page.locator("#templates table.template-health").innerText(), new RegExp("sent\\s+" + health.sent.toLocaleString(), "i"));
  await page.screenshot({ path: join(shots, "templates.png"), fullPage: true });
  await page.locator("#templates a", { hasText: "messages sent with it" }).click();
  await settled();
  assert.match(page.url(), /template=/);
  assert.equal(await total(), edited.sends);
  await page.locator("#rows tr td.num").first().click(); // the id cell opens the row
  await page.waitForSelector("#detail:not([hidden]) .timeline");
  assert.match(await page.locator("#detail").textContent(), /Loja Exemplo · responda PARAR para sair/, "the detail shows the text people read");
});

test("the alerts view lists a firing with a link to exactly the entries behind it", async () => {
  const rule = { name: "rate-limited", filter: "response_code=429&name=Alert drill", measure: "count", window: "5m", threshold: 5 };
  assert.equal((await fetch(base + "/v1/alerts", { method: "POST", body: JSON.stringify(rule) })).status, 200);
  for (let i = 0; i < 7; i++) {
    const send = { recorded_at: new Date().toISOString(), category: "marketing_campaign", name: "Alert drill",
      request: { messaging_product: "whatsapp", to: "5511981390501", type: "text", text: { body: `oferta ${i}` } },
      response_code: 429, response: { error: { message: "(#130429) Rate limit hit", code: 130429 } } };
    assert.equal((await fetch(base + "/v1/sends", { method: "POST", body: JSON.stringify(send) })).status, 200);
  }
  let history = [];
  for (let i = 0; i < 100 && !history.length; i++) {
    history = (await (await fetch(base + "/v1/alerts/history")).json()).history;
    if (!history.length) await new Promise(r => setTimeout(r, 100));
  }
  assert.equal(history.length, 1, "it fired once");
  await page.goto(base + "/?view=alerts");
  await settled();
  await page.waitForSelector("#alerts table.alert-history tr.alert-firing");
  assert.match(await page.locator("#alerts table.alert-rules").innerText(), /rate-limited/);
  await page.screenshot({ path: join(shots, "alerts.png"), fullPage: true });
  await page.locator("#alerts table.alert-history a").first().click();
  await settled();
  // The entries of the rule's filter over the window it fired in: from
  // the threshold's five to all seven, as the evaluator saw the sends
  // arrive (on ClickHouse, under load, a round fell between the fifth and
  // the sixth).
  assert.equal(await total(), await api(history[0].drill));
  assert.ok(await total() >= rule.threshold, `${await total()} entries behind a firing at ${rule.threshold}`);
});

test("the detail shows times in the zone chosen, not the browser's", async () => {
  const first = (await (await fetch(base + "/v1/logs?direction=outbound&limit=1")).json()).entries[0];
  await page.goto(base + `/?direction=outbound&tz=Asia/Tokyo&entry=${first.id}`);
  await settled();
  await page.waitForSelector("#detail:not([hidden])");
  await page.waitForFunction(() => /Recorded on/.test(document.querySelector("#detail").innerText));
  const text = await page.locator("#detail").innerText();
  assert.match(text, /\(Asia\/Tokyo, UTC\+09:00\)/);
  const tokyo = new Intl.DateTimeFormat(undefined, { timeZone: "Asia/Tokyo", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" }).format(new Date(first.recorded_at));
  assert.ok(text.includes(tokyo), `${tokyo} in ${text.slice(0, 300)}`);
});

test("a page past the end shows the last page, and the received view shows received messages whatever the direction", async () => {
  await page.goto(base + "/?status=failed&page=9999");
  await settled();
  const failed = await api("status=failed");
  const last = Math.ceil(failed / 50);
  assert.match(page.url(), new RegExp("page=" + last));
  assert.ok(await page.locator("#rows tr").count() > 0, "rows on the last page");
  assert.equal(await page.locator("#page-info").textContent(), `page ${last.toLocaleString()} of ${last.toLocaleString()}`);
  await page.goto(base + "/?view=mo&direction=outbound");
  await settled();
  assert.equal(await total(), await api("direction=inbound"));
});

test("each view keeps its own column choice, and the extra columns can be shown", async () => {
  await page.goto(base + "/?view=mo");
  await settled();
  const before = await page.locator("#head th").count();
  await page.locator("details.columns summary").click();
  await page.locator("#column-toggles label", { hasText: "Template" }).locator("input").uncheck();
  await settled();
  assert.equal(await page.locator("#head th").count(), before - 1, "the MO view hid a column");
  await page.locator("#column-toggles label", { hasText: "Template" }).locator("input").check();
  await page.goto(base + "/?direction=outbound");
  await settled();
  await page.locator("details.columns summary").click();
  for (const label of ["Country", "Conversation id", "Conversation expires", "WhatsApp user id"]) {
    await page.locator("#column-toggles label", { hasText: label }).first().locator("input").check();
  }
  await settled();
  const heads = await page.locator("#head").innerText();
  for (const label of ["Country", "Conversation id", "Conversation expires", "WhatsApp user id"]) assert.match(heads, new RegExp(label));
  const first = (await (await fetch(base + "/v1/logs?direction=outbound&limit=1")).json()).entries[0];
  assert.match(await page.locator("#rows tr").first().innerText(), new RegExp(first.country));
  for (const label of ["Country", "Conversation id", "Conversation expires", "WhatsApp user id"]) {
    await page.locator("#column-toggles label", { hasText: label }).first().locator("input").uncheck();
  }
});

test("a parameter the API does not know (a link's utm_source) leaves the table as it is, and the icon is served", async () => {
  await page.goto(base + "/?status=failed&utm_source=slack");
  await settled();
  assert.equal(await total(), await api("status=failed"));
  assert.equal((await fetch(base + "/favicon.ico")).status, 200);
});

test("a search can be saved, applied and deleted", async () => {
  await page.goto(base + "/?status=failed&error_code=131049");
  await settled();
  await page.click("#save");
  await page.fill("#save-name", "Healthy ecosystem");
  await page.click("#save-ok");
  await page.waitForFunction(() => [...document.querySelectorAll("#saved option")].some(o => o.textContent === "Healthy ecosystem"));
  // Saving again under the same name asks before replacing it.
  await page.goto(base + "/?status=failed&error_code=131049&category=marketing_campaign");
  await settled();
  await page.click("#save");
  await page.fill("#save-name", "Healthy ecosystem");
  await page.click("#save-ok");
  await page.waitForSelector("#save-exists:not([hidden])");
  assert.match(await page.locator("#save-exists").textContent(), /exists/);
  await page.click("#save-cancel");
  const kept = (await (await fetch(base + "/v1/searches")).json()).searches.find(s => s.name === "Healthy ecosystem");
  assert.doesNotMatch(kept.query, /marketing_campaign/, "cancel keeps the saved search as it was");
  await page.goto(base + "/");
  await settled();
  const value = await page.locator("#saved option", { hasText: "Healthy ecosystem" }).getAttribute("value");
  await page.selectOption("#saved", value);
  await settled();
  assert.match(page.url(), /error_code=131049/);
  assert.equal(await total(), await api("status=failed&error_code=131049"));
  await page.click("#delete-saved");
  await page.waitForFunction(() => ![...document.querySelectorAll("#saved option")].some(o => o.textContent === "Healthy ecosystem"));
});

test("the page works at phone width: a menu for the views, the table scrolls with its first columns fixed, the detail wraps whole words", async () => {
  const phone = await browser.newPage({ viewport: { width: 390, height: 844 } });
  await phone.goto(base + "/");
  await settled(phone);
  assert.ok((await phone.locator("#rows tr").count()) > 0);
  await phone.screenshot({ path: join(shots, "phone.png") });
  assert.equal(await phone.locator("#nav-report").isVisible(), false, "the views hide behind the menu");
  await phone.click("#menu-toggle");
  await phone.screenshot({ path: join(shots, "phone-menu.png") });
  await phone.click("#nav-report");
  await settled(phone);
  assert.match(phone.url(), /view=report/);
  await phone.waitForSelector("#report svg[aria-label='Delivery funnel']");
  await phone.screenshot({ path: join(shots, "phone-report.png"), fullPage: true });
  await phone.click("#menu-toggle");
  await phone.click("#nav-mo");
  await settled(phone);
  assert.match(phone.url(), /view=mo/);
  await phone.goto(base + "/?direction=outbound&status=read");
  await settled(phone);
  const id = phone.locator("#rows tr").first().locator("td").nth(1);
  assert.equal(await id.evaluate(el => getComputedStyle(el).position), "sticky", "the id column stays in view");
  assert.ok(await phone.locator(".table-area .scroll").evaluate(el => el.scrollWidth > el.clientWidth), "the table scrolls sideways");
  await id.click();
  await phone.waitForSelector("#detail:not([hidden]) .timeline");
  const dd = phone.locator("#detail dd").first();
  assert.notEqual(await dd.evaluate(el => getComputedStyle(el).wordBreak), "break-all");
  // No line of the detail breaks inside a word: every dd's text fits its width or wraps at spaces.
  const broken = await phone.locator("#detail dd").evaluateAll(dds => dds.filter(dd => dd.scrollWidth > dd.clientWidth + 1).map(dd => dd.textContent));
  assert.deepEqual(broken, []);
  await phone.screenshot({ path: join(shots, "phone-detail.png") });
  await phone.close();
});

// Exploring as in Discover: the time picker, the histogram, the field
// sidebar, values that filter, the row menu, chips.

test("the time picker sets a relative range or a custom one to the minute, in the chosen zone", async () => {
  await page.goto(base + "/?tz=UTC");
  await settled();
  await page.selectOption("#f-range", "7d");
  await settled();
  assert.match(page.url(), /range=7d/);
  assert.doesNotMatch(page.url(), /from=/, "a relative range stays relative in the URL");
  const since = new Date(Date.now() - 7 * 86400e3).toISOString();
  assert.equal(await total(), await api("from=" + encodeURIComponent(since)));
  await page.selectOption("#f-range", "custom");
  await settled();
  assert.ok(await page.locator('input[name="from"]').isVisible());
  await page.fill('input[name="from"]', "2025-01-10T10:00");
  await page.fill('input[name="to"]', "2025-01-10T14:30");
  await page.locator('input[name="to"]').dispatchEvent("change");
  await settled();
  assert.match(page.url(), /from=2025-01-10T10%3A00/);
  assert.equal(await total(), await api("from=2025-01-10T10:00&to=2025-01-10T14:30&tz=UTC"));
  assert.ok(await total() > 0);
  const chips = await page.locator("#chips").innerText();
  assert.match(chips, /From = 2025-01-10T10:00/);
});

test("the histogram shows the matches over time by status, and a drag across it sets the time", async () => {
  await page.goto(base + "/?tz=UTC&category=marketing_campaign");
  await page.waitForFunction(() => document.body.dataset.explored === location.search);
  const report = await (await fetch(base + "/v1/report?tz=UTC&category=marketing_campaign&sections=series&interval=day")).json();
  const buckets = page.locator("#histogram svg g.bucket");
  assert.equal(await buckets.count(), report.series.length);
  await page.screenshot({ path: join(shots, "histogram.png") });
  const a = await buckets.nth(2).boundingBox(), b = await buckets.nth(4).boundingBox();
  await page.mouse.move(a.x + a.width / 2, a.y + a.height / 2);
  await page.mouse.down();
  await page.mouse.move(b.x + b.width / 2, b.y + b.height / 2, { steps: 4 });
  await page.mouse.up();
  await settled();
  const from = new Date(report.series[2].from_ms).toISOString(), to = new Date(report.series[4].to_ms).toISOString();
  assert.equal(new URL(page.url()).searchParams.get("from"), from);
  assert.equal(new URL(page.url()).searchParams.get("to"), to);
  assert.equal(await total(), await api(`tz=UTC&category=marketing_campaign&from=${from}&to=${to}`));
});

test("the field sidebar lists top values that filter, or exclude, the matches", async () => {
  await page.goto(base + "/?direction=outbound");
  await page.waitForFunction(() => document.body.dataset.explored === location.search);
  const box = page.locator('#sidebar details[data-field="status"]');
  const stats = (await (await fetch(base + "/v1/stats?direction=outbound&group_by=status")).json()).groups.sort((x, y) => y.count - x.count);
  assert.match(await box.locator("li").first().innerText(), new RegExp(stats[0].count.toLocaleString()));
  await box.locator("a.top-value").first().click();
  await settled();
  assert.equal(new URL(page.url()).searchParams.get("status"), stats[0].key);
  assert.equal(await total(), stats[0].count);
  await page.waitForFunction(() => document.body.dataset.explored === location.search);
  const cat = page.locator('#sidebar details[data-field="category"] li').first();
  const key = await cat.locator("a").evaluate(a => a.title);
  await cat.locator("button.exclude").click();
  await settled();
  const excluded = new URL(page.url()).searchParams.get("-category");
  assert.ok(excluded, `excluded ${key}`);
  assert.equal(await total(), await api(`direction=outbound&status=${stats[0].key}&-category=${excluded}`));
  assert.match(await page.locator("#chips").innerText(), /not Category/);
  await page.screenshot({ path: join(shots, "sidebar.png") });
});

test("a value in the table filters by it, Alt-click excludes it, and a chip removes it", async () => {
  await page.goto(base + "/?direction=outbound");
  await settled();
  const status = page.locator('#rows tr').first().locator('.fv[data-f="status"]');
  const value = await status.getAttribute("data-v");
  await status.click();
  await settled();
  assert.equal(new URL(page.url()).searchParams.get("status"), value);
  assert.equal(await total(), await api(`direction=outbound&status=${value}`));
  assert.match(page.url(), /^[^#]*$/);
  assert.doesNotMatch(page.url(), /entry=/, "the click filtered instead of opening the row");
  await page.locator('#rows tr').first().locator('.fv[data-f="category"]').click({ modifiers: ["Alt"] });
  await settled();
  const excluded = new URL(page.url()).searchParams.get("-category");
  assert.ok(excluded);
  assert.equal(await total(), await api(`direction=outbound&status=${value}&-category=${excluded}`));
  await page.locator("#chips .chip.not").click();
  await settled();
  assert.equal(new URL(page.url()).searchParams.get("-category"), null);
  assert.equal(await total(), await api(`direction=outbound&status=${value}`));
});

test("a row's menu opens its detail, its timeline and its contact", async () => {
  await page.goto(base + "/?direction=outbound&status=read");
  await settled();
  const first = page.locator("#rows tr").first();
  const id = await first.getAttribute("data-id");
  await first.locator("button.row-actions").click();
  await page.waitForSelector("#row-menu:not([hidden])");
  await page.screenshot({ path: join(shots, "row-menu.png") });
  await page.click('#row-menu [data-act="timeline"]');
  await page.waitForSelector("#detail:not([hidden]) .timeline");
  assert.equal(new URL(page.url()).searchParams.get("entry"), id);
  await page.keyboard.press("Escape");
  await settled();
  await page.locator("#rows tr").first().locator("button.row-actions").click();
  await page.click('#row-menu [data-act="contact"]');
  await settled();
  assert.match(page.url(), /view=contact/);
  await page.waitForSelector("#contact-card dl.contact");
});

test("a parameter the page does not know is named as ignored", async () => {
  await page.goto(base + "/?status=failed&utm_source=slack");
  await settled();
  assert.match(await page.locator("#ignored-params").innerText(), /utm_source/);
  assert.equal(await total(), await api("status=failed"));
});

// Languages: every view in English, Portuguese, Spanish and Japanese, at
// desktop and phone width; the pseudo-language finds any string that did
// not pass through the catalogs.

const VIEWS = [
  ["log", "/?direction=outbound"],
  ["detail", "/?direction=outbound&status=read&entry=FIRST"],
  ["report", "/?view=report"],
  ["mo", "/?view=mo"],
  ["contact", "/?view=contact&contact=PERSON"],
  ["health", "/?view=health"],
  ["templates", "/?view=templates&template_name=TEMPLATE&template_lang=pt_BR"],
  ["alerts", "/?view=alerts"],
];


async function viewUrl(path) {
  const first = (await (await fetch(base + "/v1/logs?direction=outbound&status=read&limit=1")).json()).entries[0];
  const template = (await (await fetch(base + "/v1/templates")).json()).templates[0];
  return path.replace("FIRST", first.id).replace("PERSON", encodeURIComponent(first.phone)).replace("TEMPLATE", encodeURIComponent(template?.name ?? ""));
}

/// Visible words of the page outside the pseudo-language's brackets and
/// outside data (`translate="no"`): each is a string no catalog gave.
async function untranslated(p) {
  return p.evaluate(() => {
    // Innermost brackets first; a message cut short ("［more than 24 h…") was translated too.
    const strip = s => { let prev; do { prev = s; s = s.replace(/［[^［］]*］/g, ""); } while (s !== prev); return s.replace(/［[^］]*…$/, ""); };
    const words = s => /[A-Za-z]{2,}/.test(strip(s));
    const skip = el => !el || el.closest('[translate="no"], script, style, title, [hidden], noscript') || !el.getClientRects().length;
    const bad = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      const el = n.parentElement;
      if (el && el.tagName === "OPTION") continue; // a select shows its chosen option (below)
      if (skip(el)) continue;
      if (words(n.textContent)) bad.push(`${el.tagName.toLowerCase()}.${el.className}: ${n.textContent.trim().slice(0, 80)}`);
    }
    for (const sel of document.querySelectorAll("select")) {
      const o = sel.selectedOptions[0];
      if (o && !skip(sel) && !o.closest('[translate="no"]') && words(o.textContent)) bad.push(`select#${sel.id || sel.name}: ${o.textContent}`);
    }
    for (const el of document.querySelectorAll("[placeholder], [aria-label]")) {
      if (el.closest('[translate="no"]')) continue;
      for (const attr of ["placeholder", "aria-label"]) {
        const v = el.getAttribute(attr);
        if (v && words(v)) bad.push(`${el.tagName.toLowerCase()}[${attr}]: ${v}`);
      }
    }
    return bad;
  });
}

for (const [width, height] of [[1440, 900], [390, 844]]) {
  test(`every visible string of every view passes through the catalogs (${width}x${height})`, async () => {
    const p = await browser.newPage({ viewport: { width, height } });
    for (const [name, path] of VIEWS) {
      const url = await viewUrl(path);
      await p.goto(base + url + "&lang=qps");
      await settled(p);
      if (name === "detail") await p.waitForSelector("#detail:not([hidden]) .timeline");
      if (name === "log") await p.waitForFunction(() => document.body.dataset.explored === location.search);
      if (name === "templates") await p.waitForSelector("#templates table.template-health");
      assert.deepEqual(await untranslated(p), [], `${name} at ${width}`);
      if (name === "log") {
        await p.locator("#rows tr").first().locator("button.row-actions").click();
        assert.deepEqual(await untranslated(p), [], "the row menu");
        await p.keyboard.press("Escape");
        await p.click("#save");
        assert.deepEqual(await untranslated(p), [], "the save dialog");
        await p.click("#save-cancel");
        await p.locator("#rows input[type=checkbox]").first().check();
        await p.click("#bulk-delete");
        assert.deepEqual(await untranslated(p), [], "the delete dialog");
        await p.click("#confirm-cancel");
      }
    }
    await p.close();
  });
}

test("the page speaks the browser's language, switches on request, and writes numbers its way", async () => {
  for (const [locale, lang, word] of [["pt-BR", "pt-BR", "registros encontrados"], ["es-MX", "es", "registros encontrados"], ["ja-JP", "ja", "該当"]]) {
    const ctx = await browser.newContext({ locale, viewport: { width: 1440, height: 900 } });
    const p = await ctx.newPage();
    await p.goto(base + "/");
    await settled(p);
    assert.equal(await p.evaluate(() => document.documentElement.lang), lang);
    assert.match(await p.locator("#total").textContent(), new RegExp(word));
    const n = await api("");
    assert.ok((await p.locator("#total").textContent()).includes(new Intl.NumberFormat(lang).format(n)), "the total in the language's digits");
    for (const [name, path] of VIEWS) {
      await p.goto(base + await viewUrl(path));
      await settled(p);
      if (name === "detail") await p.waitForSelector("#detail:not([hidden]) .timeline");
      await p.screenshot({ path: join(shots, `${lang}-${name}.png`), fullPage: name !== "detail" });
    }
    // Exploring works the same in the language: a top value filters, its
    // chip names field and value in the language, the picker's presets too.
    const catalog = JSON.parse(readFileSync(join(here, "..", "..", "server", "ui", "i18n", `${lang}.json`), "utf8"));
    await p.goto(base + "/?direction=outbound");
    await p.waitForFunction(() => document.body.dataset.explored === location.search);
    await p.locator('#sidebar details[data-field="status"] a.top-value').first().click();
    await settled(p);
    const status = new URL(p.url()).searchParams.get("status");
    assert.equal(Number((await p.locator("#total").textContent()).replace(/[^0-9]/g, "")), await api(`direction=outbound&status=${status}`));
    assert.match(await p.locator("#chips").innerText(), new RegExp(`${catalog["field.status"]} = ${catalog["value.status." + status]}`));
    assert.equal(await p.locator("#f-range option[value='7d']").textContent(), catalog["time.7d"]);
    await p.selectOption("#f-range", "30d");
    await settled(p);
    assert.match(p.url(), /range=30d/);
    await p.setViewportSize({ width: 390, height: 844 });
    for (const [name, path] of VIEWS) {
      await p.goto(base + await viewUrl(path));
      await settled(p);
      if (name === "detail") await p.waitForSelector("#detail:not([hidden]) .timeline");
      await p.screenshot({ path: join(shots, `${lang}-phone-${name}.png`) });
    }
    await ctx.close();
  }
  // Switching: the choice is kept for the next visits.
  const ctx = await browser.newContext({ locale: "en-US" });
  const p = await ctx.newPage();
  await p.goto(base + "/");
  await settled(p);
  assert.match(await p.locator("#total").textContent(), /matching entries/);
  await Promise.all([p.waitForNavigation(), p.selectOption("#lang", "ja")]);
  await settled(p);
  assert.match(await p.locator("#total").textContent(), /該当/);
  await p.goto(base + "/?view=report");
  await settled(p);
  assert.match(await p.locator("#nav-report").textContent(), /レポート/);
  await ctx.close();
});
