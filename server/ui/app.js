// The Ticks web page: the log table, filters in the URL, the MO view and
// saved searches. Plain JavaScript as ES modules (no build step, no CDN):
// `api.js` talks to the server, `common.js` holds what the modules share,
// `detail.js` shows an entry and deletes, `report.js` draws the report and
// the received-messages summary; this module is the rest.
import { api } from "./api.js";
import { $, formatTime, state, viewerTz } from "./common.js";
import { confirmDelete, showDetail } from "./detail.js";
import { renderReport, renderMoSummary } from "./report.js";

const COLUMNS = [
  { key: "id", label: "#", sort: "id", num: true },
  { key: "category", label: "Category", sort: "category" },
  { key: "name", label: "Name", sort: "name" },
  { key: "template", label: "Template", sort: "template" },
  { key: "response_code", label: "Code", sort: "response_code" },
  { key: "recipient_type", label: "Type", sort: "recipient_type" },
  { key: "recorded_at", label: "Recorded on", sort: "recorded_at" },
  { key: "status", label: "Status", sort: "status" },
  { key: "phone", label: "Phone", sort: "phone" },
  { key: "error", label: "Error", sort: "error_code" },
  { key: "direction", label: "Dir.", sort: "direction", hidden: true },
  { key: "user", label: "User", sort: "user", hidden: true },
  { key: "subaccount", label: "Subaccount", sort: "subaccount", hidden: true },
  { key: "content_type", label: "Content", sort: "content_type", hidden: true },
  { key: "text", label: "Message", hidden: true },
  { key: "conversation_type", label: "Conversation", sort: "conversation_type", hidden: true },
  { key: "session", label: "Session", sort: "session", hidden: true },
];
// The received-messages (MO) view: replies and button clicks, with the
// campaign and user they answer.
const MO_COLUMNS = [
  { key: "id", label: "#", sort: "id", num: true },
  { key: "recorded_at", label: "Received on", sort: "recorded_at" },
  { key: "phone", label: "From", sort: "phone" },
  { key: "contact_name", label: "Contact" },
  { key: "text", label: "Message" },
  { key: "content_type", label: "Content", sort: "content_type" },
  { key: "button", label: "Button" },
  { key: "name", label: "Campaign answered", sort: "name" },
  { key: "template", label: "Template", sort: "template" },
  { key: "user", label: "User", sort: "user" },
];
// Parameters that are not filters of the form but belong to the view.
const VIEW_PARAMS = ["view", "interval", "funnel_by"];
// Parameters that place the page (sort, paging, the open entry), not filters.
const PAGE_PARAMS = ["sort", "limit", "page", "entry", "cursor"];
const FILTER_NAMES = ["text", "category", "status", "response_code", "recipient_type", "direction", "name", "template", "error_code",
  "content_type", "subaccount", "user", "conversation_type", "session", "correlation_id", "phone", "from", "to", "tz"];
const TICKS = { sent: "✓", delivered: "✓✓", read: "✓✓", played: "✓✓", failed: "✕", rejected: "✕", no_response: "✕" };
let codes = { meta: {}, http: {} };
let selected = new Set();
let lastPage = null;
let cursors = {}; // page index -> cursor, for deep pages

function hiddenColumns() {
  try { return new Set(JSON.parse(localStorage.getItem("ticks.hidden") || "null") || COLUMNS.filter(c => c.hidden).map(c => c.key)); }
  catch { return new Set(COLUMNS.filter(c => c.hidden).map(c => c.key)); }
}


function view() { return state().get("view") || "log"; }
function columns() { return view() === "mo" ? MO_COLUMNS : COLUMNS; }

function apiParams(s) {
  const p = new URLSearchParams();
  for (const [k, v] of s) if (v !== "" && !["entry", "page", ...VIEW_PARAMS].includes(k)) p.append(k, v);
  if (s.get("view") === "mo" && !p.has("direction")) p.set("direction", "inbound");
  if (!p.has("tz")) p.set("tz", viewerTz);
  if (!p.has("limit")) p.set("limit", $("#limit").value);
  return p;
}


function navigate(params, replace = false) {
  const url = "/?" + params.toString();
  if (replace) history.replaceState(null, "", url); else history.pushState(null, "", url);
  render();
}

function cell(e, key, tz) {
  const td = document.createElement("td");
  switch (key) {
    case "id": td.textContent = e.id; td.className = "num"; break;
    case "response_code": {
      const span = document.createElement("span");
      span.className = "code" + (e.response_code && e.response_code !== 200 ? " err" : "");
      span.textContent = e.response_code ?? "—";
      const info = codes.http[e.response_code];
      if (info) span.title = `${info.meaning}: ${info.action}`;
      td.append(span); break;
    }
    case "recorded_at": td.textContent = formatTime(e.recorded_at, tz); td.title = e.recorded_at; break;
    case "status": {
      const t = document.createElement("span");
      t.className = "ticks t-" + e.status;
      t.textContent = TICKS[e.status] || "";
      t.setAttribute("aria-hidden", "true");
      td.append(t, " " + e.status.replaceAll("_", " "));
      break;
    }
    case "error": {
      if (e.error_code != null) {
        td.className = "err-text";
        td.textContent = `${e.error_code} ${e.error_title || ""}`;
        td.title = e.error_meaning ? `${e.error_meaning}: ${e.error_action}` : (e.error_title || "");
      }
      break;
    }
    case "session": td.textContent = e.session || ""; break;
    default: td.textContent = e[key] ?? "";
  }
  return td;
}

function renderHead(s) {
  const head = $("#head");
  head.replaceChildren();
  const hidden = view() === "mo" ? new Set() : hiddenColumns();
  const sel = document.createElement("th");
  const all = document.createElement("input");
  all.type = "checkbox"; all.setAttribute("aria-label", "Select all rows on this page");
  all.addEventListener("change", () => {
    for (const cb of document.querySelectorAll("#rows input[type=checkbox]")) { cb.checked = all.checked; cb.dispatchEvent(new Event("change")); }
  });
  sel.append(all); head.append(sel);
  const sort = s.get("sort") || "-recorded_at";
  for (const c of columns()) {
    if (hidden.has(c.key)) continue;
    const th = document.createElement("th");
    th.scope = "col";
    if (c.sort) {
      const b = document.createElement("button");
      b.type = "button"; b.textContent = c.label;
      const current = sort.replace(/^-/, "") === c.sort;
      if (current) th.setAttribute("aria-sort", sort.startsWith("-") ? "descending" : "ascending");
      b.addEventListener("click", () => {
        const p = state();
        p.set("sort", current && !sort.startsWith("-") ? "-" + c.sort : c.sort);
        p.delete("page"); p.delete("cursor");
        navigate(p);
      });
      th.append(b);
    } else th.textContent = c.label;
    head.append(th);
  }
}

function renderColumnToggles() {
  const box = $("#column-toggles");
  box.replaceChildren();
  const hidden = hiddenColumns();
  for (const c of COLUMNS) {
    const l = document.createElement("label");
    l.style.flexDirection = "row";
    const cb = document.createElement("input");
    cb.type = "checkbox"; cb.checked = !hidden.has(c.key);
    cb.addEventListener("change", () => {
      const h = hiddenColumns();
      if (cb.checked) h.delete(c.key); else h.add(c.key);
      localStorage.setItem("ticks.hidden", JSON.stringify([...h]));
      render();
    });
    l.append(cb, " " + c.label);
    box.append(l);
  }
}

function syncForm(s) {
  for (const el of $("#filters").elements) {
    if (!el.name) continue;
    let v = s.get(el.name) || "";
    if ((el.name === "from" || el.name === "to") && v.length > 10) v = v.slice(0, 10);
    if (el.tagName === "SELECT" && v && ![...el.options].some(o => o.value === v)) el.append(new Option(v, v));
    if (el !== document.activeElement) el.value = v;
  }
  $("#f-tz").value = s.get("tz") || viewerTz;
  $("#limit").value = s.get("limit") || "50";
}

/// The filters in the URL that the form has no control for (a drill-down's
/// `reached`, `engagement`, `button`, negations, ids...), as removable chips.
function renderChips(s) {
  const box = $("#chips");
  const chips = [];
  for (const [k, v] of s) {
    if (FILTER_NAMES.includes(k) || PAGE_PARAMS.includes(k) || VIEW_PARAMS.includes(k)) continue;
    const b = document.createElement("button");
    b.type = "button"; b.className = "chip";
    b.textContent = `${k.startsWith("-") ? "not " + k.slice(1) : k} = ${v.length > 60 ? v.slice(0, 59) + "…" : v} ✕`;
    b.setAttribute("aria-label", `Remove the filter ${k} = ${v}`);
    b.addEventListener("click", () => { const p = state(); p.delete(k); p.delete("page"); navigate(p); });
    chips.push(b);
  }
  box.replaceChildren(...chips);
  box.hidden = chips.length === 0;
}

function showView(v) {
  for (const [id, name] of [["#nav-log", "log"], ["#nav-report", "report"], ["#nav-mo", "mo"]]) {
    if (v === name) $(id).setAttribute("aria-current", "page"); else $(id).removeAttribute("aria-current");
  }
  $("#report").hidden = v !== "report";
  $("#mo-summary").hidden = v !== "mo";
  $(".table-area").hidden = v === "report";
  document.title = { log: "Ticks · WhatsApp log", report: "Ticks · Report", mo: "Ticks · Received messages" }[v] || "Ticks";
}

let renderSeq = 0;
async function render() {
  const s = state();
  syncForm(s);
  renderChips(s);
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
  if (v === "mo") renderMoSummary(apiParams(s));
  renderHead(s);
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
  const note = $("#total").dataset.note || "";
  delete $("#total").dataset.note;
  $("#total").textContent = `${data.total.toLocaleString()} matching entries${note ? " · " + note : ""}`;
  $("#page-info").textContent = `page ${page.toLocaleString()} of ${pages.toLocaleString()}`;
  $("#prev").disabled = page <= 1;
  $("#next").disabled = page >= pages;
  const hidden = v === "mo" ? new Set() : hiddenColumns();
  const tz = s.get("tz") || viewerTz;
  const rows = data.entries.map(e => {
    const tr = document.createElement("tr");
    tr.dataset.id = e.id;
    tr.tabIndex = 0;
    const td = document.createElement("td");
    const cb = document.createElement("input");
    cb.type = "checkbox"; cb.checked = selected.has(e.id); cb.setAttribute("aria-label", `Select entry ${e.id}`);
    cb.addEventListener("click", ev => ev.stopPropagation());
    cb.addEventListener("change", () => { if (cb.checked) selected.add(e.id); else selected.delete(e.id); updateBulk(); });
    td.append(cb); tr.append(td);
    for (const c of columns()) if (!hidden.has(c.key)) tr.append(cell(e, c.key, tz));
    tr.addEventListener("click", () => openDetail(e.id));
    tr.addEventListener("keydown", ev => { if (ev.key === "Enter") openDetail(e.id); });
    return tr;
  });
  $("#rows").replaceChildren(...rows);
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

async function loadFacets() {
  const selects = [...document.querySelectorAll("select[data-facet]")];
  await Promise.all(selects.map(async sel => {
    const facet = sel.dataset.facet;
    let keys = [];
    try {
      const s = await api(`/v1/stats?group_by=${facet}`);
      keys = s.groups.map(g => g.key).filter(k => k !== null && k !== "").map(String).sort();
    } catch { /* facets are a convenience */ }
    // Build the options, then put back the value the URL asks for: the
    // selection must never flicker to "any" while facets load.
    const options = [new Option("any", "")];
    for (const k of keys) {
      let label = k;
      if (facet === "error_code" && codes.meta[k]) label = `${k} — ${codes.meta[k].meaning}`;
      if (facet === "response_code" && codes.http[k]) label = `${k} — ${codes.http[k].meaning}`;
      options.push(new Option(label, k));
    }
    const wanted = state().get(sel.name) || "";
    if (wanted && !keys.includes(wanted)) options.push(new Option(wanted, wanted));
    sel.replaceChildren(...options);
    sel.value = wanted;
  }));
  document.body.dataset.facets = "loaded";
}

async function loadSaved() {
  const sel = $("#saved");
  sel.replaceChildren(new Option("saved searches…", ""));
  try {
    const r = await api("/v1/searches");
    for (const s of r.searches) { const o = new Option(s.name, s.query); o.dataset.name = s.name; sel.append(o); }
  } catch { /* none */ }
}

function formToParams() {
  const p = new URLSearchParams();
  for (const el of $("#filters").elements) {
    if (!el.name || !FILTER_NAMES.includes(el.name) || el.value === "") continue;
    if (el.name === "tz" && el.value === viewerTz) continue;
    p.set(el.name, el.value);
  }
  const cur = state();
  for (const k of ["sort", "limit"]) if (cur.get(k)) p.set(k, cur.get(k));
  // A precise time from a drill-down stays while its day is unchanged.
  for (const k of ["from", "to"]) {
    const precise = cur.get(k);
    if (precise && p.get(k) === precise.slice(0, 10)) p.set(k, precise);
  }
  // Filters without a form control (chips) and the view stay as they are.
  for (const [k, v] of cur) {
    if (FILTER_NAMES.includes(k) || PAGE_PARAMS.includes(k)) continue;
    p.append(k, v);
  }
  return p;
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
  renderColumnToggles();
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
  api("/v1/codes").then(c => { codes = c; loadFacets(); }).catch(loadFacets);
  loadSaved();
}

init();
