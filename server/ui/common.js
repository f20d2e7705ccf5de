// What the page's modules share: element look-up, the URL as state, and
// times in a zone.

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
    try { f = new Intl.DateTimeFormat(undefined, { timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" }); }
    catch { f = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" }); }
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
  a.addEventListener("click", ev => ev.stopPropagation());
  return a;
}
