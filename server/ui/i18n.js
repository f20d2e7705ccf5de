// The page's languages: English, Brazilian Portuguese, Spanish and
// Japanese. The catalogs (`server/ui/i18n/*.json`, one flat map of keys to
// messages with `{name}` placeholders each) travel inside the page, so the
// first render needs no extra request. The language is the one asked for
// (`?lang=`, then the one last chosen), else the browser's first that
// Ticks speaks, else English. The API keeps its stored values: only what
// the page shows is translated, numbers and dates by `Intl` in the
// language's own formats.
//
// `lang=qps` is a pseudo-language for tests: every message is English in
// ［brackets］, so a test can see any string that did not pass through
// here. Data (names, numbers, payloads) is marked `translate="no"`, as it
// is for the browsers' own translators.

/// The languages offered, by tag, each named in itself.
export const LANGUAGES = [["en", "English"], ["pt-BR", "Português (Brasil)"], ["es", "Español"], ["ja", "日本語"]];

/// A language's catalog, parsed when first asked for (the page carries
/// each in an element of its own).
const parsed = new Map();
function catalog(tag) {
  if (!parsed.has(tag)) {
    let c = null;
    try { c = JSON.parse(document.getElementById("ticks-i18n-" + tag).textContent); } catch { /* not carried */ }
    parsed.set(tag, c);
  }
  return parsed.get(tag);
}

function chosen() {
  const asked = new URLSearchParams(location.search).get("lang");
  let stored = null;
  try { stored = localStorage.getItem("ticks.lang"); } catch { /* private mode */ }
  const spoken = tag => LANGUAGES.some(([t]) => t === tag);
  for (const want of [asked, stored]) if (want === "qps" || (want && spoken(want))) return want;
  for (const l of navigator.languages || [navigator.language || "en"]) {
    const tag = l.toLowerCase();
    if (tag.startsWith("pt")) return "pt-BR";
    if (tag.startsWith("es")) return "es";
    if (tag.startsWith("ja")) return "ja";
    if (tag.startsWith("en")) return "en";
  }
  return "en";
}

/// The language the page speaks.
export const lang = chosen();
const pseudo = lang === "qps";
const english = catalog("en") || {};
const messages = pseudo ? english : (catalog(lang) || english);
/// The locale numbers and dates are written in (the pseudo-language's
/// has a 24-hour clock: "PM" would read as an untranslated word).
export const locale = pseudo ? "en-GB" : lang;

/// Remembers `tag` as the language of the page and reloads it.
export function switchLanguage(tag) {
  try { localStorage.setItem("ticks.lang", tag); } catch { /* private mode */ }
  const p = new URLSearchParams(location.search);
  p.delete("lang");
  location.search = p.toString();
}

/// The message `key`, its `{name}` placeholders filled from `vars`. An
/// unknown key shows itself (and fails the catalog test).
export function t(key, vars) {
  let m = messages[key] ?? english[key] ?? key;
  if (vars) m = m.replace(/\{(\w+)\}/g, (all, name) => (name in vars ? String(vars[name]) : all));
  return pseudo ? `［${m}］` : m;
}

/// Whether the catalog names `key`.
export function has(key) { return key in english; }

/// The name of a stored value (`status` `no_response`, `direction`
/// `inbound`...) in the page's language; a value the catalog does not know
/// (a campaign's name, a new event kind) is shown as stored.
export function valueName(field, value) {
  if (value === null || value === undefined || value === "") return value;
  const key = `value.${field}.${value}`;
  return has(key) ? t(key) : String(value);
}

/// Whether `valueName(field, value)` translates rather than shows data.
export function isNamedValue(field, value) { return has(`value.${field}.${value}`); }

/// What a Meta or HTTP code means (the server's English words, the key of
/// the `code.` messages).
export function codeText(english) {
  if (!english) return english;
  const key = "code." + english;
  return has(key) ? t(key) : english;
}

const numbers = new Intl.NumberFormat(locale);
/// A count in the language's digits and separators.
export function num(n) { return n === null || n === undefined ? "" : numbers.format(n); }

const percents = [new Intl.NumberFormat(locale, { style: "percent", maximumFractionDigits: 0 }), new Intl.NumberFormat(locale, { style: "percent", maximumFractionDigits: 1 })];
/// A share as a percentage (one decimal below 10%).
export function pct(x) { return percents[x < 0.1 && x > 0 ? 1 : 0].format(x); }

/// Marks `el` as data, not words of the page: translators (and the test
/// of untranslated strings) leave it alone.
export function data(el) { el.setAttribute("translate", "no"); return el; }

/// Translates the page's fixed words: `data-i18n` (text),
/// `data-i18n-placeholder`, `data-i18n-aria-label` and `data-i18n-title`.
export function translatePage(root = document) {
  document.documentElement.lang = locale;
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const [attr, data] of [["placeholder", "i18nPlaceholder"], ["aria-label", "i18nAriaLabel"], ["title", "i18nTitle"]]) {
    for (const el of root.querySelectorAll(`[data-i18n-${attr}]`)) el.setAttribute(attr, t(el.dataset[data]));
  }
}
