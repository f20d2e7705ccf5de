// The filter form and the URL: the form shows the URL's filters, a change
// of the form becomes a URL, filters without a control show as chips, and
// the facet lists and saved searches load around the table.
import { api } from "./api.js";
import { $, state, viewerTz } from "./common.js";
import { field } from "./fields.js";

/// Parameters that are not filters of the form but belong to the view.
export const VIEW_PARAMS = ["view", "interval", "funnel_by", "template_name", "template_lang"];
/// Parameters that place the page (sort, paging, the open entry), not filters.
export const PAGE_PARAMS = ["sort", "limit", "page", "entry", "cursor"];

/// The parameters the form has a control for: its elements' names.
function formNames() {
  return new Set([...$("#filters").elements].map(el => el.name).filter(Boolean));
}

/// Puts the URL's filters into the form (leaving alone what the user is typing).
export function syncForm(s) {
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
/// `reached`, `engagement`, `button`, negations, ids...), as removable
/// chips named by the catalog's labels; `navigate(params)` applies a removal.
export function renderChips(s, navigate) {
  const box = $("#chips");
  const names = formNames();
  const chips = [];
  for (const [k, v] of s) {
    if (names.has(k) || PAGE_PARAMS.includes(k) || VIEW_PARAMS.includes(k)) continue;
    const negated = k.startsWith("-");
    const name = negated ? k.slice(1) : k;
    const label = field(name) ? field(name).label : name;
    const b = document.createElement("button");
    b.type = "button"; b.className = "chip";
    b.textContent = `${negated ? "not " + label : label} = ${v.length > 60 ? v.slice(0, 59) + "…" : v} ✕`;
    b.setAttribute("aria-label", `Remove the filter ${k} = ${v}`);
    b.addEventListener("click", () => { const p = state(); p.delete(k); p.delete("page"); navigate(p); });
    chips.push(b);
  }
  box.replaceChildren(...chips);
  box.hidden = chips.length === 0;
}

/// The URL the form asks for: its filters, the sort and page size kept,
/// and the filters it has no control for left as they are.
export function formToParams() {
  const names = formNames();
  const p = new URLSearchParams();
  for (const el of $("#filters").elements) {
    if (!el.name || el.value === "") continue;
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

/// Fills the saved-searches list.
export async function loadSaved() {
  const sel = $("#saved");
  sel.replaceChildren(new Option("saved searches…", ""));
  try {
    const r = await api("/v1/searches");
    for (const s of r.searches) { const o = new Option(s.name, s.query); o.dataset.name = s.name; sel.append(o); }
  } catch { /* none */ }
}
