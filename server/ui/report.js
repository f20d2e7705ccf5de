// The report view: charts drawn as plain SVG, every bar, segment and number
// a link to the log table filtered to exactly the messages behind it (the
// report's `drill`). The bar lists and sections serve the MO view too.
import { api } from "./api.js";

const SVG = "http://www.w3.org/2000/svg";
const STATUS_COLORS = {
  accepted: "#9aa5b1", held_for_quality_assessment: "#c9a227", paused: "#c9a227", rejected: "#7f1d1d",
  no_response: "#4b5563", sent: "#94a3b8", delivered: "#64748b", read: "#1d8ae0", played: "#0e7490",
  failed: "#b3261e", deleted: "#a16207", warning: "#d97706", received: "#0b6e4f", logged: "#6b21a8",
};
const STATUS_ORDER = Object.keys(STATUS_COLORS);
const PALETTE = ["#0b6e4f", "#1d8ae0", "#b3261e", "#c9a227", "#6b21a8", "#0e7490", "#64748b", "#d97706", "#7f1d1d", "#4b5563"];

function svg(tag, attrs = {}, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

function pct(x) { return (x * 100).toFixed(x < 0.1 && x > 0 ? 1 : 0) + "%"; }
export function label(key) { return key === null || key === undefined ? "(none)" : String(key); }

/// The log-table URL for a drill-down: the report's filters, with the
/// drill's parameters replacing those of the same name.
function drillHref(drill) {
  const p = new URLSearchParams(location.search);
  for (const k of ["view", "page", "entry", "cursor", "interval", "funnel_by"]) p.delete(k);
  for (const [k] of drill) { p.delete(k); if (k === "status") p.delete("-status"); }
  for (const [k, v] of drill) p.append(k, v);
  return "/?" + p.toString();
}

function link(href, text, title) {
  const a = document.createElement("a");
  a.href = href; a.textContent = text;
  if (title) a.title = title;
  return a;
}

export function section(title, ...children) {
  const s = document.createElement("section");
  s.className = "card";
  const h = document.createElement("h2"); h.textContent = title;
  s.append(h, ...children);
  return s;
}

/// Horizontal bars: [{label, count, note, drill, color}], scaled to `max`.
export function barList(items, { max, ariaLabel, width = 640 } = {}) {
  const rowH = 26, labelW = Math.min(260, width * 0.42), numW = 110;
  const top = max || Math.max(1, ...items.map(i => i.count));
  const chart = svg("svg", { viewBox: `0 0 ${width} ${Math.max(1, items.length) * rowH}`, role: "img", "aria-label": ariaLabel || "bar chart", class: "chart" });
  items.forEach((it, i) => {
    const y = i * rowH;
    const a = svg("a", { href: drillHref(it.drill), class: "bar-link" });
    a.append(svg("title", {}, `${it.label}: ${it.count.toLocaleString()}${it.note ? " · " + it.note : ""}`));
    a.append(svg("text", { x: 0, y: y + 17, class: "bar-label" }, it.label.length > 38 ? it.label.slice(0, 37) + "…" : it.label));
    const w = Math.max(2, (width - labelW - numW) * (it.count / top));
    a.append(svg("rect", { x: labelW, y: y + 5, width: w, height: rowH - 10, rx: 3, fill: it.color || "#1d8ae0" }));
    a.append(svg("text", { x: labelW + w + 6, y: y + 17, class: "bar-num" }, it.count.toLocaleString() + (it.suffix ? " " + it.suffix : "")));
    chart.append(a);
  });
  return chart;
}

function funnelChart(funnel) {
  const attempted = funnel.steps[0].count || 1;
  return barList(funnel.steps.map((s, i) => ({
    label: s.step,
    count: s.count,
    suffix: i === 0 ? "" : `(${pct(s.of_attempted)})`,
    note: i === 0 ? "" : `${pct(s.of_previous)} of the step before`,
    drill: s.drill,
    color: ["#64748b", "#94a3b8", "#7c8da1", "#0b6e4f", "#1d8ae0", "#6b21a8"][i],
  })), { max: attempted, ariaLabel: "delivery funnel" });
}

/// Stacked columns per bucket; `parts(bucket)` gives [{key, count, color, drill}].
function stackedSeries(series, parts, { ariaLabel, rate, rateLabel } = {}) {
  const width = 900, height = 240, left = 44, bottom = 36, right = 44;
  const plotW = width - left - right, plotH = height - bottom - 10;
  const max = Math.max(1, ...series.map(b => b.total));
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": ariaLabel, class: "chart" });
  const colW = plotW / Math.max(1, series.length);
  chart.append(svg("line", { x1: left, y1: 10 + plotH, x2: left + plotW, y2: 10 + plotH, stroke: "#9aa3ad" }));
  chart.append(svg("text", { x: left - 6, y: 16, class: "axis", "text-anchor": "end" }, max.toLocaleString()));
  chart.append(svg("text", { x: left - 6, y: 10 + plotH, class: "axis", "text-anchor": "end" }, "0"));
  const every = Math.ceil(series.length / 12);
  series.forEach((b, i) => {
    const x = left + i * colW;
    let y = 10 + plotH;
    for (const p of parts(b)) {
      if (!p.count) continue;
      const h = plotH * (p.count / max);
      y -= h;
      const a = svg("a", { href: drillHref([["from", new Date(b.from_ms).toISOString()], ["to", new Date(b.to_ms).toISOString()], ...p.drill]), class: "bar-link" });
      a.append(svg("title", {}, `${b.label} · ${p.key}: ${p.count.toLocaleString()}`));
      a.append(svg("rect", { x: x + 1, y, width: Math.max(1, colW - 2), height: Math.max(0.5, h), fill: p.color }));
      chart.append(a);
    }
    if (i % every === 0) chart.append(svg("text", { x: x + colW / 2, y: height - bottom + 16, class: "axis", "text-anchor": "middle" }, b.label.slice(5)));
  });
  if (rate) {
    const pts = series.map((b, i) => `${left + i * colW + colW / 2},${10 + plotH - plotH * Math.min(1, rate(b))}`).join(" ");
    chart.append(svg("polyline", { points: pts, fill: "none", stroke: "#b3261e", "stroke-width": 2, class: "rate-line" }));
    chart.append(svg("text", { x: width - right + 4, y: 16, class: "axis" }, "100%"));
    chart.append(svg("text", { x: width - right + 4, y: 10 + plotH, class: "axis" }, "0%"));
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
    li.append(sw, " " + name.replaceAll("_", " "));
    ul.append(li);
  }
  return ul;
}

function funnelsTable(report) {
  const t = document.createElement("table");
  t.className = "report-table";
  const head = document.createElement("tr");
  for (const h of [report.funnel_by, "attempted", "accepted", "sent", "delivered", "read", "engaged", "failed", "rejected", "read rate"]) {
    const th = document.createElement("th"); th.scope = "col"; th.textContent = h; head.append(th);
  }
  const thead = document.createElement("thead"); thead.append(head);
  const tbody = document.createElement("tbody");
  for (const f of report.funnels) {
    const tr = document.createElement("tr");
    const name = document.createElement("th"); name.scope = "row";
    name.append(link(drillHref(f.drill), label(f.key)));
    tr.append(name);
    for (const s of f.steps) { const td = document.createElement("td"); td.className = "num"; td.append(link(drillHref(s.drill), s.count.toLocaleString(), `${s.step}: ${pct(s.of_attempted)} of attempted`)); tr.append(td); }
    const failed = document.createElement("td"); failed.className = "num";
    failed.append(link(drillHref([...f.drill, ["status", "failed"]]), f.failed.toLocaleString()));
    const rejected = document.createElement("td"); rejected.className = "num";
    rejected.append(link(drillHref([...f.drill, ["status", "rejected,no_response"]]), f.rejected.toLocaleString()));
    const rate = document.createElement("td"); rate.className = "num"; rate.textContent = pct(f.steps[4].of_attempted);
    tr.append(failed, rejected, rate);
    tbody.append(tr);
  }
  t.append(thead, tbody);
  const wrap = document.createElement("div"); wrap.className = "scroll"; wrap.append(t);
  return wrap;
}

function inboundTable(report) {
  const t = document.createElement("table");
  t.className = "report-table";
  t.innerHTML = `<thead><tr><th scope="col"></th><th scope="col">replies</th><th scope="col">button clicks</th></tr></thead>`;
  t.querySelector("th").textContent = report.funnel_by + " answered";
  const tbody = document.createElement("tbody");
  for (const c of report.inbound.by_campaign) {
    const tr = document.createElement("tr");
    const th = document.createElement("th"); th.scope = "row"; th.append(link(drillHref(c.drill), c.key === null ? "(not linked to a message)" : label(c.key)));
    const r = document.createElement("td"); r.className = "num"; r.append(link(drillHref([...c.drill, ["button", "none"]]), c.replies.toLocaleString()));
    const k = document.createElement("td"); k.className = "num"; k.append(link(drillHref([...c.drill, ["-button", "none"]]), c.clicks.toLocaleString()));
    tr.append(th, r, k); tbody.append(tr);
  }
  t.append(tbody);
  return t;
}

export function countsItems(groups, color) {
  return groups.map((g, i) => ({
    label: label(g.key) + (g.meaning ? ` — ${g.meaning}` : ""),
    count: g.count,
    note: g.action ? `what to do: ${g.action}` : "",
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
  catch (err) { box.replaceChildren(section("Report", document.createTextNode("Error: " + err.message))); return; }
  const interval = p.get("interval") || "day";
  const controls = document.createElement("div");
  controls.className = "row";
  const sel = document.createElement("select"); sel.id = "report-interval";
  for (const v of ["day", "hour"]) sel.append(new Option("by " + v, v, false, v === interval));
  sel.addEventListener("change", () => { const s = new URLSearchParams(location.search); s.set("interval", sel.value); navigate(s); });
  const by = document.createElement("select"); by.id = "report-funnel-by";
  for (const v of ["name", "template", "category", "user", "subaccount"]) by.append(new Option("funnels by " + v, v, false, v === r.funnel_by));
  by.addEventListener("change", () => { const s = new URLSearchParams(location.search); s.set("funnel_by", by.value); navigate(s); });
  const l1 = document.createElement("label"); l1.append("Series", sel);
  const l2 = document.createElement("label"); l2.append("Funnels", by);
  controls.append(l1, l2);

  const total = document.createElement("p");
  total.className = "report-total";
  total.append(link(drillHref([]), `${r.total.toLocaleString()} matching entries`));
  const f = r.funnel;
  const summary = document.createElement("p");
  summary.textContent = `Outbound: ${f.steps[0].count.toLocaleString()} attempted · ${pct(f.steps[1].of_attempted)} accepted · ${pct(f.steps[3].of_attempted)} delivered · ${pct(f.steps[4].of_attempted)} read · ${f.failed.toLocaleString()} failed · ${f.rejected.toLocaleString()} rejected or unanswered`;

  const statusesPresent = STATUS_ORDER.filter(s => r.series.some(b => b.by_status[s]));
  const codesPresent = [...new Set(r.series.flatMap(b => Object.keys(b.by_code)))].sort();
  const codeColor = c => c === "200" ? "#0b6e4f" : c === "429" ? "#c9a227" : c.startsWith("5") ? "#7f1d1d" : c === "none" ? "#9aa5b1" : "#b3261e";
  const byStatus = stackedSeries(r.series, b => statusesPresent.map(s => ({ key: s, count: b.by_status[s] || 0, color: STATUS_COLORS[s], drill: [["status", s]] })),
    { ariaLabel: "volume by status over time", rate: b => b.failure_rate, rateLabel: "failure rate" });
  const byCode = stackedSeries(r.series, b => codesPresent.map(c => ({ key: c, count: b.by_code[c] || 0, color: codeColor(c), drill: [["response_code", c]] })),
    { ariaLabel: "volume by response code over time", rate: b => Math.max(b.rate_429, b.rate_5xx), rateLabel: "429 or 5xx rate (the signs of sending too fast)" });

  const reasons = r.failure_reasons.length
    ? barList(countsItems(r.failure_reasons, "#b3261e"), { ariaLabel: "failure reasons" })
    : document.createTextNode("No failures.");
  const grid = document.createElement("div");
  grid.className = "report-grid";
  const wanted = ["status", "response_code", "category", "template", "recipient_type", "content_type", "user", "subaccount"];
  for (const b of r.counts.filter(b => wanted.includes(b.field))) {
    if (!b.groups.length) continue;
    grid.append(section("By " + b.field.replaceAll("_", " "), barList(countsItems(b.groups.slice(0, 8), b.field === "status" ? g => STATUS_COLORS[g.key] || "#64748b" : null), { ariaLabel: "counts by " + b.field, width: 460 })));
  }
  const conv = document.createElement("div");
  conv.className = "report-grid";
  if (r.conversations.by_type.length) conv.append(section("Conversations by type", barList(countsItems(r.conversations.by_type), { ariaLabel: "conversations by type", width: 460 })));
  if (r.conversations.by_pricing_category.length) conv.append(section("By pricing category", barList(countsItems(r.conversations.by_pricing_category), { ariaLabel: "conversations by pricing category", width: 460 })));

  const inbound = section(`Received (MO): ${r.inbound.total.toLocaleString()} messages, ${r.inbound.replies.toLocaleString()} replies, ${r.inbound.clicks.toLocaleString()} button clicks`);
  if (r.inbound.by_campaign.length) inbound.append(inboundTable(r));
  const ib = document.createElement("div"); ib.className = "report-grid";
  if (r.inbound.by_button.length) ib.append(section("Clicks by button", barList(countsItems(r.inbound.by_button, "#0b6e4f"), { ariaLabel: "clicks by button", width: 460 })));
  if (r.inbound.by_content_type.length) ib.append(section("Replies by content type", barList(countsItems(r.inbound.by_content_type), { ariaLabel: "replies by content type", width: 460 })));
  inbound.append(ib);

  box.replaceChildren(
    controls,
    section("Delivery funnel", total, summary, funnelChart(f)),
    section(`Volume by status, per ${r.interval}`, legend(statusesPresent.map(s => [s, STATUS_COLORS[s]])), byStatus),
    section(`Volume by response code, per ${r.interval}`, legend(codesPresent.map(c => [c, codeColor(c)])), byCode),
    section("Top failure reasons", reasons),
    section(`Funnels by ${r.funnel_by}`, funnelsTable(r)),
    inbound,
    conv,
    grid,
  );
}

/// Above the MO table: replies and clicks per campaign and per button.
