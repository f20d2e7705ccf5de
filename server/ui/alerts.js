// The alerts view: every firing and resolution (newest first) with a link
// to exactly the entries behind it (the rule's filter over its window), the
// notifications still waiting for delivery, and, with an admin token, the
// rules with their state.
import { api } from "./api.js";
import { $, formatTime, viewerTz } from "./common.js";

function cell(tr, text) {
  const td = document.createElement("td");
  td.textContent = text == null ? "" : String(text);
  tr.append(td);
  return td;
}

function table(className, head) {
  const t = document.createElement("table");
  t.className = className;
  const tr = document.createElement("tr");
  for (const h of head) { const th = document.createElement("th"); th.textContent = h; tr.append(th); }
  const thead = document.createElement("thead"); thead.append(tr);
  t.append(thead, document.createElement("tbody"));
  return t;
}

function value(v) {
  return Number.isInteger(v) ? v.toLocaleString() : Number(v).toLocaleString(undefined, { maximumFractionDigits: 4 });
}

export async function renderAlerts() {
  const box = $("#alerts");
  const out = [];
  let history;
  try { history = await api("/v1/alerts/history"); }
  catch (err) {
    box.replaceChildren(Object.assign(document.createElement("p"), { textContent: `The alert history could not be read: ${err.message}` }));
    return;
  }
  const h3 = document.createElement("h3"); h3.textContent = "Firings and resolutions";
  out.push(h3);
  if (!history.history.length) {
    out.push(Object.assign(document.createElement("p"), { textContent: "No alert has fired. Rules are added with POST /v1/alerts or [[alert]] in the configuration." }));
  } else {
    const t = table("alert-history", ["When", "Alert", "State", "Value", "Threshold", "Window", "Entries"]);
    for (const a of history.history) {
      const tr = document.createElement("tr");
      tr.className = `alert-${a.state}`;
      for (const v of [formatTime(a.at, viewerTz), a.alert, a.state, value(a.value), value(a.threshold), a.window]) cell(tr, v);
      const link = document.createElement("a");
      link.href = "/?" + a.drill;
      link.textContent = `${value(a.volume)} entries`;
      cell(tr, "").append(link);
      t.tBodies[0].append(tr);
    }
    out.push(t);
  }
  if (history.pending_notifications.length) {
    const h = document.createElement("h3"); h.textContent = "Notifications waiting";
    const t = table("alert-pending", ["URL", "Attempts", "Last error"]);
    for (const p of history.pending_notifications) {
      const tr = document.createElement("tr");
      for (const v of [p.url, p.attempts, p.last_error]) cell(tr, v);
      t.tBodies[0].append(tr);
    }
    out.push(h, t);
  }
  // The rules need the admin scope: without it, the history is the view.
  try {
    const rules = (await api("/v1/alerts")).alerts;
    const h = document.createElement("h3"); h.textContent = "Rules";
    const t = table("alert-rules", ["Alert", "Filter", "Measure", "Window", "Threshold", "Min. volume", "State", "Value"]);
    for (const r of rules) {
      const tr = document.createElement("tr");
      const filter = r.measure === "rate" ? `${r.filter} / ${r.of || "direction=outbound"}` : r.filter;
      for (const v of [r.name, filter, r.measure, r.window, value(r.threshold), r.min_volume, r.state, value(r.value)]) cell(tr, v);
      t.tBodies[0].append(tr);
    }
    out.push(h, rules.length ? t : Object.assign(document.createElement("p"), { textContent: "No rules." }));
  } catch { /* no admin token */ }
  box.replaceChildren(...out);
}
