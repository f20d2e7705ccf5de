// The table: which catalog fields the log view and the received-messages
// (MO) view show, in which order, and how a cell looks. A column's label
// and whether a header sorts come from the field catalog; a view may give
// a column a name of its own ("Campaign answered").
import { $, contactLink, formatTime, state } from "./common.js";
import { field } from "./fields.js";
import { codeText, data, isNamedValue, t, valueName } from "./i18n.js";

/// A column of a view: the catalog field it shows, and what the view says
/// of it (its own label, hidden until asked for, a cell drawn its own way).
function col(name, opts = {}) {
  const f = field(name);
  return {
    key: opts.cell || name,
    field: name,
    label: t(opts.label || "field." + name),
    sort: f && f.sortable ? f.name : null,
    hidden: !!opts.hidden,
  };
}

const LOG_VIEW = () => [
  col("id"), col("category"), col("name"), col("template"),
  col("response_code", { label: "filters.code" }), col("recipient_type"), col("recorded_at"),
  col("status"), col("phone"), col("error_code", { label: "table.error", cell: "error" }),
  col("direction", { label: "table.dir", hidden: true }), col("user", { hidden: true }),
  col("subaccount", { hidden: true }), col("content_type", { hidden: true }),
  col("text", { hidden: true }), col("conversation_type", { hidden: true }),
  col("session", { hidden: true }), col("wa_id", { hidden: true }), col("user_id", { hidden: true }),
  col("country", { hidden: true }), col("conversation_id", { hidden: true }),
  col("conversation_expiry", { hidden: true }),
];
// The received-messages (MO) view: replies and button clicks, with the
// campaign and user they answer.
const MO_VIEW = () => [
  col("id"), col("recorded_at", { label: "mo.received_on" }), col("phone", { label: "mo.from" }),
  col("contact_name", { label: "field.contact" }), col("text"), col("content_type"),
  col("button"), col("name", { label: "mo.campaign_answered" }), col("template"), col("user"),
  col("country", { hidden: true }), col("wa_id", { hidden: true }), col("attribution", { hidden: true }),
];
const LOG_COLUMNS = LOG_VIEW();
const MO_COLUMNS = MO_VIEW();
/// Columns whose values are names the page translates (the rest is data).
const NAMED = new Set(["category", "status", "direction", "recipient_type", "content_type", "conversation_type", "session", "attribution"]);

const TICKS = { sent: "✓", delivered: "✓✓", read: "✓✓", played: "✓✓", failed: "✕", rejected: "✕", no_response: "✕" };

/// The view the URL asks for: log, report, mo or contact.
export function view() { return state().get("view") || "log"; }

function columns() { return view() === "mo" ? MO_COLUMNS : LOG_COLUMNS; }

/// Each view keeps the columns its user hid (the log view under its
/// original key, so a saved choice survives).
function hiddenKey() { return view() === "mo" ? "ticks.hidden.mo" : "ticks.hidden"; }

function defaultHidden() { return columns().filter(c => c.hidden).map(c => c.key); }

/// The current view's columns the user hid.
function storedHidden() {
  try { return new Set(JSON.parse(localStorage.getItem(hiddenKey()) || "null") || defaultHidden()); }
  catch { return new Set(defaultHidden()); }
}

function hiddenColumns() { return storedHidden(); }

/// A cell that filters by its value when clicked (Alt-click excludes it):
/// the value and the field it belongs to ride on the element.
function filterable(td, fieldName, raw, text) {
  const span = document.createElement("span");
  span.className = "fv";
  span.dataset.f = fieldName; span.dataset.v = String(raw);
  span.textContent = text;
  span.title = t("table.filter_hint");
  if (!(NAMED.has(fieldName) && isNamedValue(fieldName, raw))) data(span);
  td.append(span);
  return td;
}

function cell(e, c, tz, codes) {
  const key = c.key;
  const td = document.createElement("td");
  switch (key) {
    case "id": td.textContent = e.id; td.className = "num"; data(td); break;
    case "response_code": {
      const span = document.createElement("span");
      span.className = "code fv" + (e.response_code && e.response_code !== 200 ? " err" : "");
      span.textContent = e.response_code ?? "—";
      span.dataset.f = "response_code"; span.dataset.v = e.response_code ?? "none";
      const info = codes.http[e.response_code];
      if (info) span.title = `${codeText(info.meaning)}: ${codeText(info.action)}`;
      td.append(data(span)); break;
    }
    case "recorded_at": td.textContent = formatTime(e.recorded_at, tz); td.title = e.recorded_at; data(td); break;
    case "conversation_expiry": {
      if (e.conversation_expiry_ms != null) {
        const iso = new Date(e.conversation_expiry_ms).toISOString();
        td.textContent = formatTime(iso, tz); td.title = iso;
      }
      data(td);
      break;
    }
    case "status": {
      const ticks = document.createElement("span");
      ticks.className = "ticks t-" + e.status;
      ticks.textContent = TICKS[e.status] || "";
      ticks.setAttribute("aria-hidden", "true");
      td.append(ticks, " ");
      filterable(td, "status", e.status, valueName("status", e.status));
      break;
    }
    case "error": {
      if (e.error_code != null) {
        td.className = "err-text";
        filterable(td, "error_code", e.error_code, `${e.error_code} ${e.error_title || ""}`);
        td.title = e.error_meaning ? `${codeText(e.error_meaning)}: ${codeText(e.error_action)}` : (e.error_title || "");
      }
      break;
    }
    case "phone": case "contact_name": {
      // A person is a link to everything of theirs.
      const who = e.phone || e.user_id || (e.username ? "@" + e.username : null);
      const text = key === "phone" ? (e.phone || e.user_id || (e.username ? "@" + e.username : "")) : (e.contact_name || "");
      if (who && text) td.append(contactLink(who, text)); else { td.textContent = text; data(td); }
      break;
    }
    default: {
      const v = e[key];
      if (v === null || v === undefined || v === "") break;
      const f = field(c.field);
      const text = NAMED.has(key) ? valueName(key, v) : String(v);
      if (f && f.filterable && key !== "text") filterable(td, c.field, v, text);
      else { td.textContent = text; if (!(NAMED.has(key) && isNamedValue(key, v))) data(td); }
    }
  }
  return td;
}

/// The header row: a select-all box, then a sorting button per sortable
/// column. `onSort(sort)` is called with the new `sort` parameter.
export function renderHead(s, onSort) {
  const head = $("#head");
  head.replaceChildren();
  const hidden = hiddenColumns();
  const sel = document.createElement("th");
  const all = document.createElement("input");
  all.type = "checkbox"; all.setAttribute("aria-label", t("table.select_all"));
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
      b.addEventListener("click", () => onSort(current && !sort.startsWith("-") ? "-" + c.sort : c.sort));
      th.append(b);
    } else th.textContent = c.label;
    head.append(th);
  }
  const menu = document.createElement("th");
  menu.className = "menu-col";
  const hint = document.createElement("span"); hint.className = "visually-hidden"; hint.textContent = t("table.actions");
  menu.append(hint);
  head.append(menu);
}

/// The rows of a page of entries. `selected` is the set of selected ids;
/// `onSelect()` is called when it changes, `onOpen(id)` when a row is opened.
/// `onFilter(field, value, exclude)` when a value is clicked, `onMenu(entry,
/// button)` when a row's menu is asked for.
export function renderRows(entries, { tz, codes, selected, onSelect, onOpen, onFilter, onMenu }) {
  const hidden = hiddenColumns();
  const rows = entries.map(e => {
    const tr = document.createElement("tr");
    tr.dataset.id = e.id;
    tr.tabIndex = 0;
    const td = document.createElement("td");
    const cb = document.createElement("input");
    cb.type = "checkbox"; cb.checked = selected.has(e.id); cb.setAttribute("aria-label", t("table.select_entry", { id: e.id }));
    cb.addEventListener("click", ev => ev.stopPropagation());
    cb.addEventListener("change", () => { if (cb.checked) selected.add(e.id); else selected.delete(e.id); onSelect(); });
    td.append(cb); tr.append(td);
    for (const c of columns()) if (!hidden.has(c.key)) tr.append(cell(e, c, tz, codes));
    const act = document.createElement("td");
    act.className = "menu-col";
    const b = document.createElement("button");
    b.type = "button"; b.className = "row-actions"; b.textContent = "⋯";
    b.setAttribute("aria-label", t("table.row_menu", { id: e.id })); b.setAttribute("aria-haspopup", "menu");
    b.addEventListener("click", ev => { ev.stopPropagation(); onMenu(e, b); });
    act.append(b); tr.append(act);
    tr.addEventListener("click", ev => {
      // A value clicked filters by it (Alt: excludes it) instead of opening the row.
      const fv = ev.target.closest(".fv");
      if (fv) { ev.stopPropagation(); onFilter(fv.dataset.f, fv.dataset.v, ev.altKey); return; }
      onOpen(e.id);
    });
    tr.addEventListener("keydown", ev => { if (ev.key === "Enter") onOpen(e.id); });
    return tr;
  });
  $("#rows").replaceChildren(...rows);
}

/// The "Columns" menu of the current view; `onChange()` redraws.
export function renderColumnToggles(onChange) {
  const box = $("#column-toggles");
  box.replaceChildren();
  const hidden = storedHidden();
  for (const c of columns()) {
    const l = document.createElement("label");
    l.style.flexDirection = "row";
    const cb = document.createElement("input");
    cb.type = "checkbox"; cb.checked = !hidden.has(c.key);
    cb.addEventListener("change", () => {
      const h = storedHidden();
      if (cb.checked) h.delete(c.key); else h.add(c.key);
      localStorage.setItem(hiddenKey(), JSON.stringify([...h]));
      onChange();
    });
    l.append(cb, " " + c.label);
    box.append(l);
  }
}
