// The report view: charts drawn as plain SVG, every bar, segment and number
// a link to the log table filtered to exactly the messages behind it (the
// report's `drill`). The bar lists and sections serve the MO view too.
import { api } from "./api.js";
import { codeText, data, isNamedValue, num, pct, t, valueName } from "./i18n.js";

const SVG = "http://www.w3.org/2000/svg";
export const STATUS_COLORS = {
  accepted: "#9aa5b1", held_for_quality_assessment: "#c9a227", paused: "#c9a227", rejected: "#7f1d1d",
  no_response: "#4b5563", sent: "#94a3b8", delivered: "#64748b", read: "#1d8ae0", played: "#0e7490",
  failed: "#b3261e", deleted: "#a16207", warning: "#d97706", received: "#0b6e4f", logged: "#6b21a8",
};
export const STATUS_ORDER = Object.keys(STATUS_COLORS);
const PALETTE = ["#0b6e4f", "#1d8ae0", "#b3261e", "#c9a227", "#6b21a8", "#0e7490", "#64748b", "#d97706", "#7f1d1d", "#4b5563"];

/// An SVG element with its attributes and, when given, its text.
export function svg(tag, attrs = {}, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

/// A group's key as shown: a value name translated, "(none)" for none.
export function label(key, field) {
  if (key === null || key === undefined) return t("value.none");
  return field ? valueName(field, String(key)) : String(key);
}
/// Whether a key is data (a name of the user's) rather than words of the page.
function isData(key, field) { return key !== null && key !== undefined && !(field && isNamedValue(field, String(key))); }

/// The log-table URL for a drill-down: the report's filters, with the
/// drill's parameters replacing those of the same name.
function drillHref(drill) {
  const p = new URLSearchParams(location.search);
  for (const k of ["view", "page", "entry", "cursor", "interval", "funnel_by"]) p.delete(k);
  for (const [k] of drill) { p.delete(k); if (k === "status") p.delete("-status"); }
  for (const [k, v] of drill) p.append(k, v);
  return "/?" + p.toString();
}

function link(href, text, title, isDataText) {
  const a = document.createElement("a");
  a.href = href; a.textContent = text;
  if (title) a.title = title;
  if (isDataText) data(a);
  return a;
}

export function section(title, ...children) {
  const s = document.createElement("section");
  s.className = "card";
  const h = document.createElement("h2"); h.textContent = title;
  s.append(h, ...children);
  return s;
}

/// Horizontal bars: [{label, count, note, drill, color, data}], scaled to
/// `max`. The label sits above its bar, so a long label never runs into
/// the bar or its number.
export function barList(items, { max, ariaLabel, width = 640 } = {}) {
  // On a phone the chart is drawn at the screen's width, so its words keep
  // their size instead of shrinking with the picture.
  width = Math.min(width, Math.max(300, window.innerWidth - 64));
  const rowH = 36, numW = 120;
  const top = max || Math.max(1, ...items.map(i => i.count));
  const chars = Math.floor(width / 7.2);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${Math.max(1, items.length) * rowH}`, role: "img", "aria-label": ariaLabel || t("report.bar_chart"), class: "chart" });
  items.forEach((it, i) => {
    const y = i * rowH;
    const a = svg("a", { href: drillHref(it.drill), class: "bar-link" });
    a.append(svg("title", {}, `${it.label}: ${num(it.count)}${it.note ? " · " + it.note : ""}`));
    const text = svg("text", { x: 0, y: y + 12, class: "bar-label" }, it.label.length > chars ? it.label.slice(0, chars - 1) + "…" : it.label);
    if (it.data) data(text);
    a.append(text);
    const w = Math.max(2, (width - numW) * (it.count / top));
    a.append(svg("rect", { x: 0, y: y + 16, width: w, height: 14, rx: 3, fill: it.color || "#1d8ae0" }));
    a.append(svg("text", { x: w + 6, y: y + 28, class: "bar-num" }, num(it.count) + (it.suffix ? " " + it.suffix : "")));
    chart.append(a);
  });
  return chart;
}

function funnelChart(funnel) {
  const attempted = funnel.steps[0].count || 1;
  return barList(funnel.steps.map((s, i) => ({
    label: valueName("step", s.step),
    count: s.count,
    suffix: i === 0 ? "" : `(${pct(s.of_attempted)})`,
    note: i === 0 ? "" : t("report.of_previous", { pct: pct(s.of_previous) }),
    drill: s.drill,
    color: ["#64748b", "#94a3b8", "#7c8da1", "#0b6e4f", "#1d8ae0", "#6b21a8"][i],
  })), { max: attempted, ariaLabel: t("report.funnel") });
}

/// Stacked columns per bucket; `parts(bucket)` gives [{key, count, color, drill}].
function stackedSeries(series, parts, { ariaLabel, rate, rateLabel } = {}) {
  const width = 900, height = 240, left = 44, bottom = 36, right = 44;
  const plotW = width - left - right, plotH = height - bottom - 10;
  const max = Math.max(1, ...series.map(b => b.total));
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": ariaLabel, class: "chart" });
  const colW = plotW / Math.max(1, series.length);
  chart.append(svg("line", { x1: left, y1: 10 + plotH, x2: left + plotW, y2: 10 + plotH, stroke: "#9aa3ad" }));
  chart.append(svg("text", { x: left - 6, y: 16, class: "axis", "text-anchor": "end" }, num(max)));
  chart.append(svg("text", { x: left - 6, y: 10 + plotH, class: "axis", "text-anchor": "end" }, num(0)));
  const every = Math.ceil(series.length / 12);
  series.forEach((b, i) => {
    const x = left + i * colW;
    let y = 10 + plotH;
    for (const p of parts(b)) {
      if (!p.count) continue;
      const h = plotH * (p.count / max);
      y -= h;
      const a = svg("a", { href: drillHref([["from", new Date(b.from_ms).toISOString()], ["to", new Date(b.to_ms).toISOString()], ...p.drill]), class: "bar-link" });
      a.append(svg("title", {}, `${b.label} · ${p.name || p.key}: ${num(p.count)}`));
      a.append(svg("rect", { x: x + 1, y, width: Math.max(1, colW - 2), height: Math.max(0.5, h), fill: p.color }));
      chart.append(a);
    }
    if (i % every === 0) chart.append(svg("text", { x: x + colW / 2, y: height - bottom + 16, class: "axis", "text-anchor": "middle" }, b.label.slice(5)));
  });
  if (rate) {
    const pts = series.map((b, i) => `${left + i * colW + colW / 2},${10 + plotH - plotH * Math.min(1, rate(b))}`).join(" ");
    chart.append(svg("polyline", { points: pts, fill: "none", stroke: "#b3261e", "stroke-width": 2, class: "rate-line" }));
    chart.append(svg("text", { x: width - right + 4, y: 16, class: "axis" }, pct(1)));
    chart.append(svg("text", { x: width - right + 4, y: 10 + plotH, class: "axis" }, pct(0)));
    chart.append(svg("text", { x: left + 4, y: height - 4, class: "axis", fill: "#b3261e" }, "— " + rateLabel));
  }
  return chart;
}

function legend(entries) {
  const ul = document.createElement("ul");
  ul.className = "legend";
  for (const [name, color] of entries) {
    const li = document.createElement("li");
    const sw = document.createElement("span"); sw.className = "swatch"; sw.style.background = color;
    li.append(sw, " " + name);
    ul.append(li);
  }
  return ul;
}

function funnelsTable(report) {
  const table = document.createElement("table");
  table.className = "report-table";
  const head = document.createElement("tr");
  for (const h of [t("field." + report.funnel_by), ...["attempted", "accepted", "sent", "delivered", "read", "engaged"].map(s => valueName("step", s)), t("report.failed"), t("report.rejected"), t("report.read_rate")]) {
    const th = document.createElement("th"); th.scope = "col"; th.textContent = h; head.append(th);
  }
  const thead = document.createElement("thead"); thead.append(head);
  const tbody = document.createElement("tbody");
  for (const f of report.funnels) {
    const tr = document.createElement("tr");
    const name = document.createElement("th"); name.scope = "row";
    name.append(link(drillHref(f.drill), label(f.key, report.funnel_by), null, isData(f.key, report.funnel_by)));
    tr.append(name);
    for (const s of f.steps) { const td = document.createElement("td"); td.className = "num"; td.append(link(drillHref(s.drill), num(s.count), t("report.of_attempted", { step: valueName("step", s.step), pct: pct(s.of_attempted) }))); tr.append(td); }
    const failed = document.createElement("td"); failed.className = "num";
    failed.append(link(drillHref([...f.drill, ["status", "failed"]]), num(f.failed)));
    const rejected = document.createElement("td"); rejected.className = "num";
    rejected.append(link(drillHref([...f.drill, ["status", "rejected,no_response"]]), num(f.rejected)));
    const rate = document.createElement("td"); rate.className = "num"; rate.textContent = pct(f.steps[4].of_attempted);
    tr.append(failed, rejected, rate);
    tbody.append(tr);
  }
  table.append(thead, tbody);
  const wrap = document.createElement("div"); wrap.className = "scroll"; wrap.append(table);
  return wrap;
}

function inboundTable(report) {
  const table = document.createElement("table");
  table.className = "report-table";
  const head = document.createElement("tr");
  for (const h of [t("report.answered", { field: t("field." + report.funnel_by) }), t("report.replies"), t("report.button_clicks")]) {
    const th = document.createElement("th"); th.scope = "col"; th.textContent = h; head.append(th);
  }
  const thead = document.createElement("thead"); thead.append(head); table.append(thead);
  const tbody = document.createElement("tbody");
  for (const c of report.inbound.by_campaign) {
    const tr = document.createElement("tr");
    const th = document.createElement("th"); th.scope = "row"; th.append(link(drillHref(c.drill), c.key === null ? t("report.not_linked") : label(c.key, report.funnel_by), null, isData(c.key, report.funnel_by)));
    const r = document.createElement("td"); r.className = "num"; r.append(link(drillHref([...c.drill, ["button", "none"]]), num(c.replies)));
    const k = document.createElement("td"); k.className = "num"; k.append(link(drillHref([...c.drill, ["-button", "none"]]), num(c.clicks)));
    tr.append(th, r, k); tbody.append(tr);
  }
  table.append(tbody);
  return table;
}

/// Bars of a breakdown of `field` (its values' names translated, codes
/// with their meanings).
export function countsItems(groups, color, field) {
  return groups.map((g, i) => ({
    // A send without an HTTP answer is "no response", not "(none)".
    label: (g.key === null && field === "error_code" ? t("report.no_error_code") : g.key === null && field === "response_code" ? t("report.no_response") : label(g.key, field)) + (g.meaning ? ` — ${codeText(g.meaning)}` : ""),
    data: isData(g.key, field) && !g.meaning && !/^\d+$/.test(String(g.key)),
    count: g.count,
    note: g.action ? t("report.what_to_do", { action: codeText(g.action) }) : "",
    drill: g.drill,
    color: typeof color === "function" ? color(g, i) : color || PALETTE[i % PALETTE.length],
  }));
}

export async function renderReport(params, navigate) {
  const box = document.getElementById("report");
  const p = new URLSearchParams(params);
  for (const k of ["limit", "offset", "cursor", "sort", "view"]) p.delete(k);
  let r;
  try { r = await api("/v1/report?" + p.toString()); }
  catch (err) { box.replaceChildren(section(t("nav.report"), document.createTextNode(t("error", { message: err.message })))); return; }
  const interval = p.get("interval") || "day";
  const controls = document.createElement("div");
  controls.className = "row";
  const sel = document.createElement("select"); sel.id = "report-interval";
  for (const v of ["day", "hour"]) sel.append(new Option(t("report.by_" + v), v, false, v === interval));
  sel.addEventListener("change", () => { const s = new URLSearchParams(location.search); s.set("interval", sel.value); navigate(s); });
  const by = document.createElement("select"); by.id = "report-funnel-by";
  for (const v of ["name", "template", "category", "user", "subaccount"]) by.append(new Option(t("report.funnels_by", { field: t("field." + v) }), v, false, v === r.funnel_by));
  by.addEventListener("change", () => { const s = new URLSearchParams(location.search); s.set("funnel_by", by.value); navigate(s); });
  const l1 = document.createElement("label"); l1.append(t("report.series"), sel);
  const l2 = document.createElement("label"); l2.append(t("report.funnels"), by);
  controls.append(l1, l2);

  const total = document.createElement("p");
  total.className = "report-total";
  total.append(link(drillHref([]), t("table.total", { n: num(r.total) })));
  const f = r.funnel;
  const summary = document.createElement("p");
  summary.textContent = t("report.summary", { attempted: num(f.steps[0].count), accepted: pct(f.steps[1].of_attempted), delivered: pct(f.steps[3].of_attempted), read: pct(f.steps[4].of_attempted), failed: num(f.failed), rejected: num(f.rejected) });

  const statusesPresent = STATUS_ORDER.filter(s => r.series.some(b => b.by_status[s]));
  const codesPresent = [...new Set(r.series.flatMap(b => Object.keys(b.by_code)))].sort();
  const codeColor = c => c === "200" ? "#0b6e4f" : c === "429" ? "#c9a227" : c.startsWith("5") ? "#7f1d1d" : c === "none" ? "#9aa5b1" : "#b3261e";
  const byStatus = stackedSeries(r.series, b => statusesPresent.map(s => ({ key: s, name: valueName("status", s), count: b.by_status[s] || 0, color: STATUS_COLORS[s], drill: [["status", s]] })),
    { ariaLabel: t("report.status_series"), rate: b => b.failure_rate, rateLabel: t("report.failure_rate") });
  const byCode = stackedSeries(r.series, b => codesPresent.map(c => ({ key: c, name: c === "none" ? t("report.no_response") : c, count: b.by_code[c] || 0, color: codeColor(c), drill: [["response_code", c]] })),
    { ariaLabel: t("report.code_series"), rate: b => Math.max(b.rate_429, b.rate_5xx), rateLabel: t("report.rate_429") });

  const reasons = r.failure_reasons.length
    ? barList(countsItems(r.failure_reasons, "#b3261e", "error_code"), { ariaLabel: t("report.failure_reasons") })
    : document.createTextNode(t("report.no_failures"));
  const grid = document.createElement("div");
  grid.className = "report-grid";
  const wanted = ["status", "response_code", "category", "template", "recipient_type", "content_type", "user", "subaccount"];
  for (const b of r.counts.filter(b => wanted.includes(b.field))) {
    if (!b.groups.length) continue;
    grid.append(section(t("report.by", { field: t("field." + b.field) }), barList(countsItems(b.groups.slice(0, 8), b.field === "status" ? g => STATUS_COLORS[g.key] || "#64748b" : null, b.field), { ariaLabel: t("report.by", { field: t("field." + b.field) }), width: 460 })));
  }
  const conv = document.createElement("div");
  conv.className = "report-grid";
  if (r.conversations.by_type.length) conv.append(section(t("report.conversations_by_type"), barList(countsItems(r.conversations.by_type, null, "conversation_type"), { ariaLabel: t("report.conversations_by_type"), width: 460 })));
  if (r.conversations.by_pricing_category.length) conv.append(section(t("report.by_pricing_category"), barList(countsItems(r.conversations.by_pricing_category, null, "pricing_category"), { ariaLabel: t("report.by_pricing_category"), width: 460 })));

  const inbound = section(t("report.inbound", { total: num(r.inbound.total), replies: num(r.inbound.replies), clicks: num(r.inbound.clicks) }));
  if (r.inbound.by_campaign.length) inbound.append(inboundTable(r));
  const ib = document.createElement("div"); ib.className = "report-grid";
  if (r.inbound.by_button.length) ib.append(section(t("report.clicks_by_button"), barList(countsItems(r.inbound.by_button, "#0b6e4f"), { ariaLabel: t("report.clicks_by_button"), width: 460 })));
  if (r.inbound.by_content_type.length) ib.append(section(t("report.replies_by_content_type"), barList(countsItems(r.inbound.by_content_type, null, "content_type"), { ariaLabel: t("report.replies_by_content_type"), width: 460 })));
  inbound.append(ib);

  box.replaceChildren(
    controls,
    section(t("report.funnel"), total, summary, funnelChart(f)),
    section(t("report.status_per_" + r.interval), legend(statusesPresent.map(s => [valueName("status", s), STATUS_COLORS[s]])), byStatus),
    section(t("report.code_per_" + r.interval), legend(codesPresent.map(c => [c === "none" ? t("report.no_response") : c, codeColor(c)])), byCode),
    section(t("report.top_failure_reasons"), reasons),
    section(t("report.funnels_by", { field: t("field." + r.funnel_by) }), funnelsTable(r)),
    inbound,
    conv,
    grid,
  );
}

/// Above the MO table: replies and clicks per campaign and per button.
