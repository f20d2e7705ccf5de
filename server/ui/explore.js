// Exploring the matches, as Kibana's Discover does: above the table a
// histogram of the matches over time, stacked by status, where a click on
// a column or a drag across several sets the time filter; beside it a
// sidebar with each field's top values for the current matches, where a
// value filters and its "−" excludes. Both come from report requests
// (`sections=series`, `sections=counts`) made after the table is drawn.
import { api } from "./api.js";
import { $, chosenTz, formatTime, offsetOf, state } from "./common.js";
import { data, isNamedValue, num, t, valueName } from "./i18n.js";
import { STATUS_COLORS, STATUS_ORDER, svg } from "./report.js";

/// The sidebar's fields, in this order.
const SIDEBAR = ["status", "category", "name", "template", "response_code", "error_code", "direction", "content_type", "recipient_type", "user", "subaccount", "conversation_type"];

function escapeXml(text) {
  return text.replace(/[&<>"]/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
}

/// Hours when the range asked for spans three days or less, else days.
function intervalFor(params) {
  const from = Date.parse(params.get("from") || ""), to = Date.parse(params.get("to") || "") || Date.now();
  return Number.isFinite(from) && to - from <= 3 * 86400e3 ? "hour" : "day";
}

let seq = 0;
/// Asks for the histogram of the table's `params` (the API parameters of
/// the log request) beside the table's own request: a month of buckets
/// costs the server a few ms, and back by the time the rows are drawn it
/// joins them in the browser's first frame instead of one after.
export function askHistogram(params) {
  const series = explored(params);
  series.set("sections", "series");
  series.set("interval", intervalFor(series));
  return api("/v1/report?" + series.toString());
}

/// The report parameters of the table's API parameters.
function explored(params) {
  const p = new URLSearchParams(params);
  for (const k of ["limit", "offset", "cursor", "sort", "fields"]) p.delete(k);
  return p;
}

/// Draws the histogram (asked for by `askHistogram`) and the sidebar for
/// the table's `params`; `navigate(params)` applies a choice. The sidebar's
/// counts (a group-by per field over every match) are asked for once the
/// table is drawn, never beside it.
export async function renderExplore(params, histogramAnswer, navigate) {
  const mine = ++seq;
  const counts = explored(params);
  counts.set("sections", "counts");
  counts.set("top", "5");
  const drawn = [
    histogramAnswer.then(r => {
      if (mine !== seq) return;
      const started = performance.now();
      $("#histogram").replaceChildren(...histogram(r, navigate));
      performance.mark("ticks-histogram");
      performance.measure("ticks-histogram-draw", { start: started });
    }, () => { if (mine === seq) $("#histogram").replaceChildren(); }),
    api("/v1/report?" + counts.toString()).then(r => {
      if (mine !== seq) return;
      $("#sidebar").replaceChildren(...sidebar(r, navigate));
    }, () => { if (mine === seq) $("#sidebar").replaceChildren(); }),
  ];
  await Promise.all(drawn);
  if (mine !== seq) return;
  document.body.dataset.explored = location.search;
  performance.mark("ticks-explored");
}

function histogram(r, navigate) {
  const series = r.series || [];
  if (!series.length) return [];
  const width = 1000, height = 110, left = 40, bottom = 18, top = 6;
  const plotW = width - left, plotH = height - bottom - top;
  const max = Math.max(1, ...series.map(b => b.total));
  const colW = plotW / series.length;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": t("explore.histogram"), class: "chart histogram-chart", preserveAspectRatio: "none" });
  chart.append(svg("text", { x: left - 4, y: top + 9, class: "axis", "text-anchor": "end" }, num(max)));
  chart.append(svg("text", { x: left - 4, y: top + plotH, class: "axis", "text-anchor": "end" }, num(0)));
  const statuses = STATUS_ORDER.filter(s => series.some(b => b.by_status[s]));
  const tz = chosenTz();
  // The columns as one piece of markup, parsed once: an element created
  // and appended at a time cost 17–53 ms for a month of days (measured
  // with the render bench at 1M).
  const f = v => v.toFixed(2);
  const parts = [];
  series.forEach((b, i) => {
    const x = left + i * colW;
    let y = top + plotH;
    parts.push(`<g class="bucket" data-i="${i}"><title>${escapeXml(`${formatTime(new Date(b.from_ms).toISOString(), tz)} · ${t("table.total", { n: num(b.total) })}`)}</title>`);
    // A transparent column catches clicks on short or empty buckets.
    parts.push(`<rect x="${f(x)}" y="${top}" width="${f(colW)}" height="${plotH}" fill="transparent"/>`);
    for (const s of statuses) {
      const n = b.by_status[s] || 0;
      if (!n) continue;
      const h = plotH * (n / max);
      y -= h;
      parts.push(`<rect x="${f(x + 0.5)}" y="${f(y)}" width="${f(Math.max(0.5, colW - 1))}" height="${f(Math.max(0.5, h))}" fill="${STATUS_COLORS[s]}"/>`);
    }
    parts.push("</g>");
  });
  const columns = svg("g");
  columns.innerHTML = parts.join("");
  chart.append(columns);
  const every = Math.ceil(series.length / 10);
  series.forEach((b, i) => {
    if (i % every) return;
    chart.append(svg("text", { x: left + i * colW + 2, y: height - 4, class: "axis" }, r.interval === "hour" ? b.label.slice(5).replace("T", " ") : b.label.slice(5)));
  });
  const brush = svg("rect", { class: "brush", y: top, height: plotH, width: 0, x: 0, visibility: "hidden" });
  chart.append(brush);
  // Brushing: press on a column, drag across others, release.
  const at = ev => {
    const box = chart.getBoundingClientRect();
    const x = (ev.clientX - box.left) * (width / box.width);
    return Math.min(series.length - 1, Math.max(0, Math.floor((x - left) / colW)));
  };
  let start = null;
  const show = (a, b) => {
    const lo = Math.min(a, b), hi = Math.max(a, b);
    brush.setAttribute("x", left + lo * colW); brush.setAttribute("width", (hi - lo + 1) * colW);
    brush.setAttribute("visibility", "visible");
  };
  chart.addEventListener("pointerdown", ev => { start = at(ev); show(start, start); chart.setPointerCapture?.(ev.pointerId); });
  chart.addEventListener("pointermove", ev => { if (start !== null) show(start, at(ev)); });
  chart.addEventListener("pointerup", ev => {
    if (start === null) return;
    const end = at(ev);
    const lo = series[Math.min(start, end)], hi = series[Math.max(start, end)];
    start = null;
    const q = state();
    q.set("from", new Date(lo.from_ms).toISOString());
    q.set("to", new Date(hi.to_ms).toISOString());
    q.delete("range"); q.delete("page"); q.delete("cursor");
    navigate(q);
  });
  const legend = document.createElement("div");
  legend.className = "legend histogram-legend";
  const per = document.createElement("span");
  per.textContent = t(r.interval === "hour" ? "explore.per_hour" : "explore.per_day", { zone: offsetOf(new Date(series[0].from_ms).toISOString(), tz) });
  legend.append(per);
  for (const s of statuses) {
    const item = document.createElement("span");
    const sw = document.createElement("span"); sw.className = "swatch"; sw.style.background = STATUS_COLORS[s];
    item.append(sw, " " + valueName("status", s));
    legend.append(item);
  }
  const hint = document.createElement("span"); hint.className = "muted"; hint.textContent = t("explore.brush_hint");
  legend.append(hint);
  return [legend, chart];
}

function sidebar(r, navigate) {
  const out = [];
  const h = document.createElement("h2"); h.textContent = t("sidebar.title");
  out.push(h);
  const byField = new Map((r.counts || []).map(b => [b.field, b]));
  for (const name of SIDEBAR) {
    const b = byField.get(name);
    if (!b || !b.groups.length) continue;
    const d = document.createElement("details");
    d.open = ["status", "category", "name"].includes(name);
    d.className = "field-box";
    d.dataset.field = name;
    const sum = document.createElement("summary"); sum.textContent = t("field." + name);
    const ul = document.createElement("ul");
    const total = b.groups.reduce((a, g) => a + g.count, 0) + b.other;
    for (const g of b.groups) {
      const key = g.key === null || g.key === undefined ? "none" : String(g.key);
      const li = document.createElement("li");
      const a = document.createElement("a");
      a.href = "#"; a.className = "top-value";
      const none = { response_code: "report.no_response", error_code: "report.no_error_code" }[name] || "value.none";
      const shown = g.key === null || g.key === undefined ? t(none) : valueName(name, key);
      a.textContent = shown;
      if (g.key !== null && g.key !== undefined && !isNamedValue(name, key)) data(a);
      a.title = t("sidebar.filter", { value: shown });
      a.addEventListener("click", ev => { ev.preventDefault(); apply(name, key, false, navigate); });
      const n = document.createElement("span"); n.className = "num"; n.textContent = `${num(g.count)} · ${Math.round((100 * g.count) / Math.max(1, total))}%`;
      const x = document.createElement("button");
      x.type = "button"; x.className = "exclude"; x.textContent = "−";
      x.setAttribute("aria-label", t("sidebar.exclude", { value: shown }));
      x.title = t("sidebar.exclude", { value: shown });
      x.addEventListener("click", () => apply(name, key, true, navigate));
      li.append(a, n, x);
      ul.append(li);
    }
    d.append(sum, ul);
    out.push(d);
  }
  return out;
}

function apply(name, key, exclude, navigate) {
  const p = state();
  p.delete(name); p.delete("-" + name); p.delete("page"); p.delete("cursor");
  p.set(exclude ? "-" + name : name, key);
  navigate(p);
}
