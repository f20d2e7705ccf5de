// The Ticks web page: the URL is the state; this module draws what it
// asks for and wires the controls. Plain JavaScript as ES modules (no
// build step, no CDN): `api.js` talks to the server, `common.js` holds
// what the modules share, `fields.js` the field catalog, `table.js` the
// log and MO tables, `filters.js` the filter form, `detail.js` an entry and
// deletion, `report.js` the report, `mo.js` the received-messages summary,
// `contact.js` a person's card, `health.js` the account-health view,
// `templates.js` the template catalog.
import { api } from "./api.js";
import { $, state, viewerTz } from "./common.js";
import { renderContact } from "./contact.js";
import { renderHealth } from "./health.js";
import { confirmDelete, showDetail } from "./detail.js";
import { formToParams, loadFacets, loadSaved, renderChips, syncForm, VIEW_PARAMS } from "./filters.js";
import { renderMoSummary } from "./mo.js";
import { renderReport } from "./report.js";
import { renderTemplates } from "./templates.js";
import { renderAlerts } from "./alerts.js";
import { field, fields } from "./fields.js";
import { renderColumnToggles, renderHead, renderRows, view } from "./table.js";

let codes = { meta: {}, http: {} };
let selected = new Set();
let lastPage = null;
let cursors = {}; // page index -> cursor, for deep pages

/// Parameters of the API that are not fields.
const API_PARAMS = ["text", "q", "from", "to", "tz", "sort", "limit", "offset", "cursor", "fields"];

/// Whether the API takes `k` (a field that filters, negated or not, by its
/// name or an alias, or one of `API_PARAMS`): a link with `?utm_source=...`
/// still shows its table.
function apiTakes(k) {
  const name = k.startsWith("-") ? k.slice(1) : k;
  if (API_PARAMS.includes(name)) return true;
  const f = field(name) || fields().find(x => (x.aliases || []).includes(name));
  return !!(f && f.filterable);
}

function apiParams(s) {
  const p = new URLSearchParams();
  for (const [k, v] of s) if (v !== "" && !["entry", "page", ...VIEW_PARAMS].includes(k) && apiTakes(k)) p.append(k, v);
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
  document.title = { log: "Ticks · WhatsApp log", report: "Ticks · Report", mo: "Ticks · Received messages", contact: "Ticks · Contact", health: "Ticks · Account health", templates: "Ticks · Templates", alerts: "Ticks · Alerts" }[v] || "Ticks";
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
    if (mine === renderSeq) { $("#detail").hidden = true; document.body.dataset.rendered = location.search; }
    return;
  }
  if (v === "templates") {
    const mine = ++renderSeq;
    await renderTemplates(s, navigate);
    if (mine === renderSeq) { $("#detail").hidden = true; document.body.dataset.rendered = location.search; }
    return;
  }
  if (v === "alerts") {
    const mine = ++renderSeq;
    await renderAlerts();
    if (mine === renderSeq) { $("#detail").hidden = true; document.body.dataset.rendered = location.search; }
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
  let data;
  try { data = await api("/v1/logs?" + p.toString()); }
  catch (err) {
    if (mine === renderSeq) { $("#total").textContent = "Error: " + err.message; $("#rows").replaceChildren(); document.body.dataset.rendered = location.search; }
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
  $("#total").textContent = `${data.total.toLocaleString()} matching entries${note ? " · " + note : ""}`;
  $("#page-info").textContent = `page ${page.toLocaleString()} of ${pages.toLocaleString()}`;
  $("#prev").disabled = page <= 1;
  $("#next").disabled = page >= pages;
  renderRows(data.entries, { tz: s.get("tz") || viewerTz, codes, selected, onSelect: updateBulk, onOpen: openDetail });
  updateBulk();
  // Export links: every matching entry, not just this page.
  const ex = apiParams(s); for (const k of ["limit", "offset", "cursor"]) ex.delete(k);
  for (const f of ["csv", "xlsx", "pdf", "ndjson"]) { ex.set("format", f); $("#export-" + f).href = "/v1/export?" + ex.toString(); }
  const entry = s.get("entry");
  if (entry) await showDetail(entry, afterDelete); else $("#detail").hidden = true;
  // Which URL the page shows now: tests and tools wait on it.
  document.body.dataset.rendered = location.search;
  performance.mark("ticks-rendered");
}

function keyOf(p) { const q = new URLSearchParams(p); q.delete("cursor"); q.delete("offset"); return q.toString(); }

function updateBulk() {
  $("#bulk-delete").disabled = selected.size === 0;
  $("#bulk-delete").textContent = selected.size ? `Delete selected (${selected.size})` : "Delete selected";
}

function openDetail(id) { const p = state(); p.set("entry", id); navigate(p); }

/// After a deletion: the selection is gone, the detail closes, and the
/// table says what happened.
function afterDelete(r) {
  selected.clear();
  const p = state(); p.delete("entry");
  navigate(p, true);
  $("#total").dataset.note = `Deleted ${r.deleted}${r.receipt ? " after export " + r.receipt : " without an export"}.`;
}

function debounce(fn, ms) { let t; return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); }; }

function init() {
  // The table's data is asked for first; everything else loads around it.
  render();
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
  document.addEventListener("keydown", ev => { if (ev.key === "Escape" && !$("#detail").hidden) $("#detail-close").click(); });
  $("#bulk-delete").addEventListener("click", () => confirmDelete(`${selected.size} selected entries will be deleted.`, { ids: [...selected] }, afterDelete));
  $("#filter-delete").addEventListener("click", () => {
    const p = apiParams(state()); for (const k of ["limit", "tz", "sort", "offset", "cursor"]) p.delete(k);
    const s = state(); if (s.get("tz")) p.set("tz", s.get("tz"));
    if ([...p.keys()].length === 0) { alert("Choose a filter first: deleting everything is not offered here."); return; }
    confirmDelete(`All ${lastPage ? lastPage.total.toLocaleString() : ""} entries matching the current filters will be deleted.`, { filter: p.toString() }, afterDelete);
  });
  $("#save").addEventListener("click", async () => {
    const name = prompt("Name this search");
    if (!name) return;
    const q = new URLSearchParams(state()); q.delete("entry"); q.delete("page");
    try { await api("/v1/searches", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name, query: q.toString() }) }); loadSaved(); }
    catch (err) { alert("Could not save: " + err.message); }
  });
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
  api("/v1/codes").then(c => { codes = c; loadFacets(codes); }).catch(() => loadFacets(codes));
  loadSaved();
}

init();
