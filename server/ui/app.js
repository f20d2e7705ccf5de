// The Ticks web page: the URL is the state; this module draws what it
// asks for and wires the controls. Plain JavaScript as ES modules (no
// build step, no CDN): `api.js` talks to the server, `common.js` holds
// what the modules share, `fields.js` the field catalog, `table.js` the
// log and MO tables, `filters.js` the filter form, `detail.js` an entry and
// deletion, `report.js` the report, `mo.js` the received-messages summary,
// `contact.js` a person's card, `health.js` the account-health view,
// `templates.js` the template catalog, `alerts.js` the alerts,
// `explore.js` the histogram and field sidebar above and beside the table,
// `i18n.js` the languages.
import { api } from "./api.js";
import { $, civilIn, offsetOf, state, viewerTz } from "./common.js";
import { LANGUAGES, lang, num, switchLanguage, t, translatePage } from "./i18n.js";
import { askHistogram, renderExplore } from "./explore.js";
import { renderContact } from "./contact.js";
import { renderHealth } from "./health.js";
import { confirmDelete, showDetail } from "./detail.js";
import { apiTakes, formToParams, loadFacets, loadSaved, RANGES, renderChips, syncForm, VIEW_PARAMS } from "./filters.js";
import { renderMoSummary } from "./mo.js";
import { renderReport } from "./report.js";
import { renderTemplates } from "./templates.js";
import { renderAlerts } from "./alerts.js";
import { renderColumnToggles, renderHead, renderRows, view } from "./table.js";

let codes = { meta: {}, http: {} };
let selected = new Set();
let lastPage = null;
let cursors = {}; // page index -> cursor, for deep pages

function apiParams(s) {
  const p = new URLSearchParams();
  for (const [k, v] of s) if (v !== "" && !["entry", "page", ...VIEW_PARAMS].includes(k) && apiTakes(k)) p.append(k, v);
  // A relative range ("last 24 hours") is its times now.
  const range = RANGES[s.get("range")];
  if (range && !s.get("from") && !s.get("to")) p.set("from", new Date(Date.now() - range).toISOString());
  // The received-messages view shows received messages, whatever the
  // direction filter says (the log view is where directions are chosen).
  if (s.get("view") === "mo") p.set("direction", "inbound");
  if (s.get("view") === "health" && !p.has("direction")) p.set("direction", "event");
  if (!p.has("tz")) p.set("tz", viewerTz);
  if (!p.has("limit")) p.set("limit", $("#limit").value);
  return p;
}


function navigate(params, replace = false) {
  const url = "/?" + params.toString();
  if (replace) history.replaceState(null, "", url); else history.pushState(null, "", url);
  render();
}

function showView(v) {
  for (const [id, name] of [["#nav-log", "log"], ["#nav-report", "report"], ["#nav-mo", "mo"], ["#nav-health", "health"], ["#nav-templates", "templates"], ["#nav-alerts", "alerts"]]) {
    if (v === name) $(id).setAttribute("aria-current", "page"); else $(id).removeAttribute("aria-current");
  }
  $("#report").hidden = v !== "report";
  $("#mo-summary").hidden = v !== "mo";
  $("#contact-card").hidden = v !== "contact";
  $("#health").hidden = v !== "health";
  $("#templates").hidden = v !== "templates";
  $("#alerts").hidden = v !== "alerts";
  $(".table-area").hidden = v === "report" || v === "templates" || v === "alerts";
  $(".explore").classList.toggle("with-sidebar", v === "log" || v === "mo" || v === "contact");
  $("#sidebar").hidden = !(v === "log" || v === "mo" || v === "contact");
  document.title = "Ticks · " + t("title." + (["log", "report", "mo", "contact", "health", "templates", "alerts"].includes(v) ? v : "log"));
  // On a phone the views' menu closes once one is chosen.
  $("#views").classList.remove("open");
  $("#menu-toggle").setAttribute("aria-expanded", "false");
}

let renderSeq = 0;
async function render() {
  const s = state();
  syncForm(s);
  renderChips(s, navigate);
  const v = view();
  showView(v);
  if (v === "report") {
    const mine = ++renderSeq;
    const p = apiParams(s); p.delete("limit");
    for (const k of ["interval", "funnel_by"]) if (s.get(k)) p.set(k, s.get(k));
    await renderReport(p, navigate);
    if (mine === renderSeq) { $("#detail").hidden = true; rendered(); }
    return;
  }
  if (v === "templates") {
    const mine = ++renderSeq;
    await renderTemplates(s, navigate);
    if (mine === renderSeq) { $("#detail").hidden = true; rendered(); }
    return;
  }
  if (v === "alerts") {
    const mine = ++renderSeq;
    await renderAlerts();
    if (mine === renderSeq) { $("#detail").hidden = true; rendered(); }
    return;
  }
  renderColumnToggles(render);
  if (v === "mo") renderMoSummary(apiParams(s));
  if (v === "contact") renderContact(s.get("contact"));
  if (v === "health") renderHealth(apiParams(s));
  renderHead(s, sort => {
    const p = state();
    p.set("sort", sort);
    p.delete("page"); p.delete("cursor");
    navigate(p);
  });
  const page = Math.max(1, parseInt(s.get("page") || "1", 10));
  const limit = parseInt($("#limit").value, 10);
  const p = apiParams(s);
  p.delete("cursor");
  // Deep pages use the cursor of the page before when it is known.
  if (page > 1 && cursors[page - 1] && cursors.key === keyOf(p)) p.set("cursor", cursors[page - 1]);
  else if (page > 1) p.set("offset", String((page - 1) * limit));
  const mine = ++renderSeq;
  const histogramAnswer = askHistogram(apiParams(s));
  histogramAnswer.catch(() => {}); // drawn (or its failure shown) after the rows
  let data;
  try { data = await api("/v1/logs?" + p.toString()); }
  catch (err) {
    if (mine === renderSeq) { $("#total").textContent = t("error", { message: err.message }); $("#rows").replaceChildren(); rendered(); }
    return;
  }
  if (mine !== renderSeq) return; // a newer render started while this one waited
  lastPage = data;
  if (cursors.key !== keyOf(p)) cursors = { key: keyOf(p) };
  if (data.next_cursor) cursors[page] = data.next_cursor;
  const pages = Math.max(1, Math.ceil(data.total / limit));
  if (page > pages) {
    // A page past the end (an old link, a typed number): the last page.
    const q = state(); q.set("page", String(pages)); q.delete("cursor");
    navigate(q, true);
    return;
  }
  const note = $("#total").dataset.note || "";
  delete $("#total").dataset.note;
  $("#total").textContent = t("table.total", { n: num(data.total) }) + (note ? " · " + note : "");
  $("#page-info").textContent = t("table.page", { page: num(page), pages: num(pages) });
  // Every time on the page is in this zone; it says which, with its offset now.
  const zone = s.get("tz") || viewerTz;
  $("#zone-note").textContent = t("table.times_in", { zone, offset: offsetOf(new Date().toISOString(), zone) });
  $("#prev").disabled = page <= 1;
  $("#next").disabled = page >= pages;
  renderRows(data.entries, { tz: s.get("tz") || viewerTz, codes, selected, onSelect: updateBulk, onOpen: openDetail, onFilter: filterBy, onMenu: openRowMenu });
  // The histogram and the field sidebar follow the table, never delay it.
  exploring = renderExplore(apiParams(s), histogramAnswer, navigate);
  updateBulk();
  // Export links: every matching entry, not just this page.
  const ex = apiParams(s); for (const k of ["limit", "offset", "cursor"]) ex.delete(k);
  for (const f of ["csv", "xlsx", "pdf", "ndjson"]) { ex.set("format", f); $("#export-" + f).href = "/v1/export?" + ex.toString(); }
  const entry = s.get("entry");
  if (entry) await showDetail(entry, afterDelete); else $("#detail").hidden = true;
  // Which URL the page shows now: tests and tools wait on it.
  rendered();
  performance.mark("ticks-rendered");
}

/// Says which URL the page shows now (tests and tools wait on it), and
/// after the first render starts what can wait for it.
let afterFirstRender = [];
/// The histogram and sidebar being drawn (the selects' values wait for them).
let exploring = Promise.resolve();
function rendered() {
  document.body.classList.remove("starting");
  document.body.dataset.rendered = location.search;
  const waiting = afterFirstRender;
  afterFirstRender = [];
  for (const f of waiting) f();
}

function keyOf(p) { const q = new URLSearchParams(p); q.delete("cursor"); q.delete("offset"); return q.toString(); }

function updateBulk() {
  $("#bulk-delete").disabled = selected.size === 0;
  $("#bulk-delete").textContent = selected.size ? t("table.delete_selected_n", { n: num(selected.size) }) : t("table.delete_selected");
}

function openDetail(id) { const p = state(); p.set("entry", id); navigate(p); }

/// A value clicked in the table: the filter `field=value` (or, excluding,
/// `-field=value`) replaces any on that field.
function filterBy(f, v, exclude) {
  const p = state();
  p.delete(f); p.delete("-" + f); p.delete("page"); p.delete("cursor");
  p.set(exclude ? "-" + f : f, v);
  navigate(p);
}

/// The menu of one row: view, timeline, the contact's messages, copy the
/// wamid, export it, delete it.
let menuEntry = null;
function openRowMenu(e, button) {
  const m = $("#row-menu");
  menuEntry = e;
  const r = button.getBoundingClientRect();
  m.hidden = false;
  m.style.top = `${window.scrollY + r.bottom + 2}px`;
  m.style.left = `${Math.max(4, window.scrollX + r.right - m.offsetWidth)}px`;
  m.querySelector('[data-act="copy"]').disabled = !e.wamid;
  m.querySelector('[data-act="contact"]').disabled = !(e.phone || e.user_id || e.username);
  m.querySelector("button:not(:disabled)").focus();
}
function closeRowMenu() { $("#row-menu").hidden = true; menuEntry = null; }
async function rowAction(act) {
  const e = menuEntry;
  closeRowMenu();
  if (!e) return;
  if (act === "view") openDetail(e.id);
  else if (act === "timeline") { openDetail(e.id); $("#detail").dataset.focus = "timeline"; }
  else if (act === "contact") navigate(new URLSearchParams({ view: "contact", contact: e.phone || e.user_id || "@" + e.username }));
  else if (act === "copy") { try { await navigator.clipboard.writeText(e.wamid); } catch { /* not allowed */ } $("#total").dataset.note = t("menu.copied"); render(); }
  else if (act === "export") location.href = "/v1/export?" + new URLSearchParams({ id: String(e.id), format: "csv", tz: state().get("tz") || viewerTz }).toString();
  else if (act === "delete") confirmDelete(t("delete.one", { id: e.id }), { ids: [e.id] }, afterDelete);
}

/// After a deletion: the selection is gone, the detail closes, and the
/// table says what happened.
function afterDelete(r) {
  selected.clear();
  const p = state(); p.delete("entry");
  navigate(p, true);
  $("#total").dataset.note = r.receipt ? t("delete.done_after_export", { n: num(r.deleted), receipt: r.receipt }) : t("delete.done_without_export", { n: num(r.deleted) });
}

function debounce(fn, ms) { let timer; return (...a) => { clearTimeout(timer); timer = setTimeout(() => fn(...a), ms); }; }

/// The save dialog: a name, and a second press to overwrite a search of
/// that name.
async function saveSearch() {
  const dlg = $("#save-dialog");
  const names = new Set([...$("#saved").options].map(o => o.dataset.name).filter(Boolean));
  const input = $("#save-name");
  input.value = "";
  $("#save-exists").hidden = true; $("#save-error").hidden = true;
  $("#save-ok").textContent = t("saved.save");
  let confirmed = null;
  input.oninput = () => { $("#save-exists").hidden = true; $("#save-ok").textContent = t("saved.save"); confirmed = null; };
  dlg.showModal();
  for (;;) {
    const choice = await new Promise(resolve => dlg.addEventListener("close", () => resolve(dlg.returnValue), { once: true }));
    const name = input.value.trim();
    if (choice !== "save" || !name) return;
    if (names.has(name) && confirmed !== name) {
      confirmed = name;
      $("#save-exists").textContent = t("saved.exists", { name });
      $("#save-exists").hidden = false;
      $("#save-ok").textContent = t("saved.overwrite");
      dlg.showModal();
      continue;
    }
    const q = new URLSearchParams(state()); q.delete("entry"); q.delete("page");
    try {
      await api("/v1/searches", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name, query: q.toString() }) });
      await loadSaved();
      return;
    } catch (err) {
      $("#save-error").textContent = t("saved.failed", { message: err.message });
      $("#save-error").hidden = false;
      dlg.showModal();
    }
  }
}

function init() {
  // The page shows what it has if the first rows are slow to come.
  setTimeout(() => document.body.classList.remove("starting"), 300);
  translatePage();
  // The table's data is asked for first; everything else loads around it.
  render();
  for (const [tag, name] of LANGUAGES) $("#lang").append(new Option(name, tag, false, tag === lang));
  $("#lang").addEventListener("change", () => switchLanguage($("#lang").value));
  $("#menu-toggle").addEventListener("click", () => {
    const open = $("#views").classList.toggle("open");
    $("#menu-toggle").setAttribute("aria-expanded", String(open));
  });
  for (const b of document.querySelectorAll("#row-menu button")) b.addEventListener("click", ev => { ev.stopPropagation(); rowAction(b.dataset.act); });
  document.addEventListener("click", ev => { if (!$("#row-menu").hidden && !ev.target.closest("#row-menu")) closeRowMenu(); });
  const tzSel = $("#f-tz");
  const wantedTz = state().get("tz");
  for (const z of new Set([viewerTz, "UTC", ...(wantedTz ? [wantedTz] : [])])) tzSel.append(new Option(z, z));
  tzSel.value = wantedTz || viewerTz;
  // The full list of zones (hundreds of options) is built when idle.
  (window.requestIdleCallback || (f => setTimeout(f, 200)))(() => {
    const have = new Set([...tzSel.options].map(o => o.value));
    const zones = Intl.supportedValuesOf ? Intl.supportedValuesOf("timeZone") : [];
    const current = tzSel.value;
    tzSel.append(...zones.filter(z => !have.has(z)).map(z => new Option(z, z)));
    tzSel.value = current;
  });
  // "Custom range" starts from the last 24 hours, to the minute in the
  // chosen zone, and shows its two times.
  $("#f-range").addEventListener("change", () => {
    if ($("#f-range").value !== "custom") return;
    const tz = state().get("tz") || viewerTz;
    const from = document.querySelector('#filters [name="from"]'), to = document.querySelector('#filters [name="to"]');
    if (!from.value) from.value = civilIn(new Date(Date.now() - 86400e3).toISOString(), tz);
    if (!to.value) to.value = civilIn(new Date().toISOString(), tz);
  });
  const typed = debounce(() => navigate(formToParams(), true), 300);
  $("#f-text").addEventListener("input", typed);
  $("#filters").addEventListener("change", ev => { if (ev.target.id !== "saved" && ev.target.id !== "f-text") navigate(formToParams()); });
  $("#filters").addEventListener("submit", ev => { ev.preventDefault(); navigate(formToParams()); });
  $("#clear").addEventListener("click", () => navigate(new URLSearchParams()));
  $("#limit").addEventListener("change", () => { const p = state(); p.set("limit", $("#limit").value); p.delete("page"); navigate(p); });
  $("#prev").addEventListener("click", () => { const p = state(); const n = parseInt(p.get("page") || "1", 10) - 1; if (n <= 1) p.delete("page"); else p.set("page", n); navigate(p); });
  $("#next").addEventListener("click", () => { const p = state(); p.set("page", parseInt(p.get("page") || "1", 10) + 1); navigate(p); });
  $("#goto").addEventListener("change", () => { const p = state(); const n = parseInt($("#goto").value, 10); if (n > 0) { p.set("page", n); navigate(p); } });
  $("#detail-close").addEventListener("click", () => { const p = state(); p.delete("entry"); navigate(p); });
  document.addEventListener("keydown", ev => {
    if (ev.key !== "Escape") return;
    if (!$("#row-menu").hidden) closeRowMenu();
    else if (!$("#detail").hidden) $("#detail-close").click();
  });
  $("#bulk-delete").addEventListener("click", () => confirmDelete(t("delete.selected", { n: num(selected.size) }), { ids: [...selected] }, afterDelete));
  $("#filter-delete").addEventListener("click", () => {
    const p = apiParams(state()); for (const k of ["limit", "tz", "sort", "offset", "cursor"]) p.delete(k);
    const s = state(); if (s.get("tz")) p.set("tz", s.get("tz"));
    if ([...p.keys()].length === 0) { alert(t("delete.need_filter")); return; }
    confirmDelete(t("delete.matching", { n: lastPage ? num(lastPage.total) : "" }), { filter: p.toString() }, afterDelete);
  });
  $("#save").addEventListener("click", saveSearch);
  $("#saved").addEventListener("change", () => {
    const o = $("#saved").selectedOptions[0];
    $("#delete-saved").hidden = !o || !o.value;
    if (o && o.value) navigate(new URLSearchParams(o.value));
  });
  $("#delete-saved").addEventListener("click", async () => {
    const o = $("#saved").selectedOptions[0];
    if (!o || !o.dataset.name) return;
    await api("/v1/searches/" + encodeURIComponent(o.dataset.name), { method: "DELETE" }).catch(() => {});
    $("#delete-saved").hidden = true;
    loadSaved();
  });
  window.addEventListener("popstate", render);
  // The selects' values (a group-by per select) are asked for once the
  // first table is drawn: at a million entries they would otherwise share
  // the two cores with it.
  const codesLoaded = api("/v1/codes").then(c => { codes = c; }).catch(() => {});
  afterFirstRender.push(() => Promise.all([codesLoaded, exploring]).then(() => loadFacets(codes)));
  loadSaved();
}

init();
