// What the page's modules share: element look-up, the URL as state, and
// times in a zone.
import { data, locale, valueName } from "./i18n.js";

export const $ = (sel) => document.querySelector(sel);

/// The page's state is its URL.
export function state() { return new URLSearchParams(location.search); }

export const viewerTz = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

// One formatter per zone: building one per cell cost more than the rows.
const formatters = new Map();
export function formatTime(iso, tz) {
  if (!iso) return "";
  let f = formatters.get(tz);
  if (!f) {
    try { f = new Intl.DateTimeFormat(locale, { timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" }); }
    catch { f = new Intl.DateTimeFormat(locale, { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" }); }
    formatters.set(tz, f);
  }
  return f.format(new Date(iso));
}


/// A link to the contact view of the person `typed` names (a number, a
/// user id, `@username`), showing `text`. A click on it does not open the
/// row it sits in.
export function contactLink(typed, text) {
  const a = document.createElement("a");
  a.href = "/?" + new URLSearchParams({ view: "contact", contact: typed }).toString();
  a.textContent = text;
  a.className = "person";
  data(a);
  a.addEventListener("click", ev => ev.stopPropagation());
  return a;
}

/// The zone the page shows times in: the one chosen (`tz=`), else the
/// browser's.
export function chosenTz() { return state().get("tz") || viewerTz; }

/// `iso` as the civil time a `datetime-local` control shows, in `tz`
/// ("2025-01-31T21:00").
export function civilIn(iso, tz) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  let parts;
  try { parts = new Intl.DateTimeFormat("en-CA", { timeZone: tz, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" }).formatToParts(d); }
  catch { return iso.slice(0, 16); }
  const v = Object.fromEntries(parts.map(p => [p.type, p.value]));
  return `${v.year}-${v.month}-${v.day}T${v.hour}:${v.minute}`;
}

/// The offset of `tz` at `iso` ("UTC−03:00"), printed beside times.
export function offsetOf(iso, tz) {
  try {
    const p = new Intl.DateTimeFormat("en-US", { timeZone: tz, timeZoneName: "longOffset" }).formatToParts(new Date(iso));
    const o = p.find(x => x.type === "timeZoneName")?.value || "GMT";
    return o === "GMT" ? "UTC+00:00" : o.replace("GMT", "UTC");
  } catch { return ""; }
}

/// A text cell of a table that holds data (not words of the page).
export function dataCell(tr, text) {
  const td = document.createElement("td");
  td.textContent = text == null ? "" : String(text);
  data(td);
  tr.append(td);
  return td;
}

/// A cell holding a stored value's name in the page's language (a status,
/// a category); a value the catalogs do not name is shown as data.
export function namedCell(tr, field, v) {
  const td = document.createElement("td");
  td.textContent = v == null ? "" : valueName(field, v);
  if (v != null && td.textContent === String(v)) data(td);
  tr.append(td);
  return td;
}
