// The alerts view: every firing and resolution (newest first) with a link
// to exactly the entries behind it (the rule's filter over its window), the
// notifications still waiting for delivery, and, with an admin token, the
// rules with their state.
import { api } from "./api.js";
import { $, chosenTz, dataCell, formatTime, namedCell } from "./common.js";
import { locale, num, t } from "./i18n.js";

const cell = dataCell;

function table(className, head) {
  const tbl = document.createElement("table");
  tbl.className = className;
  const tr = document.createElement("tr");
  for (const h of head) { const th = document.createElement("th"); th.textContent = t(h); tr.append(th); }
  const thead = document.createElement("thead"); thead.append(tr);
  tbl.append(thead, document.createElement("tbody"));
  return tbl;
}

function value(v) {
  return Number.isInteger(v) ? num(v) : Number(v).toLocaleString(locale, { maximumFractionDigits: 4 });
}

export async function renderAlerts() {
  const box = $("#alerts");
  const out = [];
  let history;
  try { history = await api("/v1/alerts/history"); }
  catch (err) {
    box.replaceChildren(Object.assign(document.createElement("p"), { textContent: t("alerts.error", { message: err.message }) }));
    return;
  }
  const viewerTz = chosenTz();
  const h3 = document.createElement("h3"); h3.textContent = t("alerts.history");
  out.push(h3);
  if (!history.history.length) {
    out.push(Object.assign(document.createElement("p"), { textContent: t("alerts.none") }));
  } else {
    const tbl = table("alert-history", ["alerts.when", "alerts.alert", "alerts.state", "alerts.value", "alerts.threshold", "alerts.window", "alerts.entries"]);
    for (const a of history.history) {
      const tr = document.createElement("tr");
      tr.className = `alert-${a.state}`;
      for (const v of [formatTime(a.at, viewerTz), a.alert]) cell(tr, v);
      namedCell(tr, "alert_state", a.state);
      for (const v of [value(a.value), value(a.threshold), a.window]) cell(tr, v);
      const link = document.createElement("a");
      link.href = "/?" + a.drill;
      link.textContent = t("alerts.n_entries", { n: value(a.volume) });
      const td = document.createElement("td"); td.append(link); tr.append(td);
      tbl.tBodies[0].append(tr);
    }
    out.push(tbl);
  }
  if (history.pending_notifications.length) {
    const h = document.createElement("h3"); h.textContent = t("alerts.pending");
    const tbl = table("alert-pending", ["alerts.url", "alerts.attempts", "alerts.last_error"]);
    for (const p of history.pending_notifications) {
      const tr = document.createElement("tr");
      for (const v of [p.url, p.attempts, p.last_error]) cell(tr, v);
      tbl.tBodies[0].append(tr);
    }
    out.push(h, tbl);
  }
  // The rules need the admin scope: without it, the history is the view.
  try {
    const rules = (await api("/v1/alerts")).alerts;
    const h = document.createElement("h3"); h.textContent = t("alerts.rules");
    const tbl = table("alert-rules", ["alerts.alert", "alerts.filter", "alerts.measure", "alerts.window", "alerts.threshold", "alerts.min_volume", "alerts.state", "alerts.value"]);
    for (const r of rules) {
      const tr = document.createElement("tr");
      const filter = r.measure === "rate" ? `${r.filter} / ${r.of || "direction=outbound"}` : r.filter;
      for (const v of [r.name, filter]) cell(tr, v);
      namedCell(tr, "measure", r.measure);
      for (const v of [r.window, value(r.threshold), r.min_volume]) cell(tr, v);
      namedCell(tr, "alert_state", r.state);
      cell(tr, value(r.value));
      tbl.tBodies[0].append(tr);
    }
    out.push(h, rules.length ? tbl : Object.assign(document.createElement("p"), { textContent: t("alerts.no_rules") }));
  } catch { /* no admin token */ }
  box.replaceChildren(...out);
}
