// The filter form and the URL: the form shows the URL's filters, a change
// of the form becomes a URL, filters without a control show as chips, and
// the facet lists and saved searches load around the table.
import { api } from "./api.js";
import { $, civilIn, state, viewerTz } from "./common.js";
import { field, fields } from "./fields.js";
import { codeText, data, isNamedValue, t, valueName } from "./i18n.js";

/// Parameters that are not filters of the form but belong to the view.
export const VIEW_PARAMS = ["view", "interval", "funnel_by", "template_name", "template_lang", "lang"];
/// Parameters that place the page (sort, paging, the open entry), not filters.
export const PAGE_PARAMS = ["sort", "limit", "page", "entry", "cursor", "range"];
/// Parameters of the API that are not fields.
export const API_PARAMS = ["text", "q", "from", "to", "tz", "sort", "limit", "offset", "cursor", "fields"];

/// Whether the API takes `k` (a field that filters, negated or not, by its
/// name or an alias, or one of `API_PARAMS`): a link with `?utm_source=...`
/// still shows its table, and names what it ignored.
export function apiTakes(k) {
  const name = k.startsWith("-") ? k.slice(1) : k;
  if (API_PARAMS.includes(name)) return true;
  const f = field(name) || fields().find(x => (x.aliases || []).includes(name));
  return !!(f && f.filterable);
}

/// The relative ranges of the time picker, in milliseconds.
export const RANGES = { "15m": 15 * 60e3, "1h": 3600e3, "24h": 86400e3, "7d": 7 * 86400e3, "30d": 30 * 86400e3 };

/// A `from`/`to` of the URL as the time picker shows it, to the minute in
/// `tz` (a date alone: the day's first or last minute).
function shownTime(k, v, tz) {
  if (!v) return "";
  if (/^\d{4}-\d{2}-\d{2}$/.test(v)) return v + (k === "to" ? "T23:59" : "T00:00");
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/.test(v)) return v.slice(0, 16);
  return civilIn(/^\d+$/.test(v) ? Number(v) : v, tz);
}

/// The parameters the form has a control for: its elements' names.
function formNames() {
  return new Set([...$("#filters").elements].map(el => el.name).filter(Boolean));
}

/// Puts the URL's filters into the form (leaving alone what the user is typing).
export function syncForm(s) {
  for (const el of $("#filters").elements) {
    if (!el.name) continue;
    let v = s.get(el.name) || "";
    if (el.name === "from" || el.name === "to") v = shownTime(el.name, v, s.get("tz") || viewerTz);
    if (el.name === "range" && !v && (s.get("from") || s.get("to"))) v = "custom";
    if (el.tagName === "SELECT" && v && ![...el.options].some(o => o.value === v)) el.append(new Option(v, v));
    if (el !== document.activeElement) el.value = v;
  }
  $("#f-tz").value = s.get("tz") || viewerTz;
  $("#limit").value = s.get("limit") || "50";
  const custom = $("#f-range").value === "custom";
  for (const el of document.querySelectorAll(".custom-range")) el.hidden = !custom;
}

/// A filter's name in the page's language.
function filterLabel(name) {
  if (name === "from" || name === "to") return t("time." + name);
  if (name === "text" || name === "q") return t("filters.search");
  const f = field(name) || fields().find(x => (x.aliases || []).includes(name));
  return f ? t("field." + f.name) : name;
}

/// Every filter of the URL as a removable chip named in the page's
/// language ("Status = delivered ✕", "not Category = …"), and the
/// parameters the page ignored (a link's `utm_source`) named as such;
/// `navigate(params)` applies a removal.
export function renderChips(s, navigate) {
  const box = $("#chips");
  const chips = [];
  const ignored = [];
  for (const [k, v] of s) {
    if (PAGE_PARAMS.includes(k) || VIEW_PARAMS.includes(k) || k === "tz" || v === "") continue;
    if (!apiTakes(k)) { ignored.push(k); continue; }
    const negated = k.startsWith("-");
    const name = negated ? k.slice(1) : k;
    const label = filterLabel(name);
    const shown = isNamedValue(name, v) ? valueName(name, v) : v.length > 60 ? v.slice(0, 59) + "…" : v;
    const b = document.createElement("button");
    b.type = "button"; b.className = "chip" + (negated ? " not" : "");
    const l = document.createElement("span"); l.textContent = (negated ? t("chips.not", { field: label }) : label) + " = ";
    const val = document.createElement("span"); val.textContent = shown;
    if (!isNamedValue(name, v)) data(val);
    b.append(l, val, " ✕");
    b.setAttribute("aria-label", t("chips.remove", { filter: `${k} = ${v}` }));
    b.addEventListener("click", () => {
      const p = state(); p.delete(k); p.delete("page");
      if ((k === "from" || k === "to") && !p.get("from") && !p.get("to")) p.delete("range");
      navigate(p);
    });
    chips.push(b);
  }
  if (ignored.length) {
    const note = document.createElement("span");
    note.className = "ignored";
    note.id = "ignored-params";
    const words = document.createElement("span"); words.textContent = t("chips.ignored") + " ";
    const names = document.createElement("span"); names.textContent = ignored.join(", "); data(names);
    note.append(words, names);
    chips.push(note);
  }
  box.replaceChildren(...chips);
  box.hidden = chips.length === 0;
}

/// The URL the form asks for: its filters, the sort and page size kept,
/// and the filters it has no control for left as they are.
export function formToParams() {
  const names = formNames();
  const p = new URLSearchParams();
  const range = $("#f-range").value;
  for (const el of $("#filters").elements) {
    if (!el.name || el.value === "") continue;
    if (el.name === "tz" && el.value === viewerTz) continue;
    // A relative range stands for its own times; "custom" is the times.
    if ((el.name === "from" || el.name === "to") && range !== "custom") continue;
    if (el.name === "range" && range === "custom") continue;
    p.set(el.name, el.value);
  }
  const cur = state();
  for (const k of ["sort", "limit"]) if (cur.get(k)) p.set(k, cur.get(k));
  // A time from the URL (a date, a drill-down's instant) stays as written
  // while the picker shows it unchanged.
  const tz = cur.get("tz") || viewerTz;
  for (const k of ["from", "to"]) {
    const was = cur.get(k);
    if (was && p.get(k) === shownTime(k, was, tz)) p.set(k, was);
  }
  for (const [k, v] of cur) {
    if (names.has(k) || PAGE_PARAMS.includes(k)) continue;
    p.append(k, v);
  }
  return p;
}

/// Fills each `select[data-facet]` with the values the store has, labelled
/// with the codes' meanings.
export async function loadFacets(codes) {
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
    const options = [new Option(t("filters.any"), "")];
    for (const k of keys) {
      let label = valueName(facet, k);
      if (facet === "error_code" && codes.meta[k]) label = `${k} — ${codeText(codes.meta[k].meaning)}`;
      if (facet === "response_code" && codes.http[k]) label = `${k} — ${codeText(codes.http[k].meaning)}`;
      const o = new Option(label, k);
      if (!isNamedValue(facet, k) && !codes.meta[k] && !codes.http[k]) data(o);
      options.push(o);
    }
    const wanted = state().get(sel.name) || "";
    if (wanted && !keys.includes(wanted)) options.push(new Option(wanted, wanted));
    sel.replaceChildren(...options);
    sel.value = wanted;
  }));
  document.body.dataset.facets = "loaded";
}

/// Fills the saved-searches list.
export async function loadSaved() {
  const sel = $("#saved");
  sel.replaceChildren(new Option(t("saved.choose"), ""));
  try {
    const r = await api("/v1/searches");
    for (const s of r.searches) { const o = new Option(s.name, s.query); o.dataset.name = s.name; data(o); sel.append(o); }
  } catch { /* none */ }
}
