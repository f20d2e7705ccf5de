// The account-health view: the account and template events Meta sent
// (template approvals, recategorisations and quality changes, number
// quality and messaging limits, opt-outs), over time, per kind, per
// template and per business number; every bar opens the events behind it.
// The table below lists the events themselves, newest first.
import { api } from "./api.js";
import { $ } from "./common.js";
import { barList, label, section } from "./report.js";
import { t } from "./i18n.js";

async function groups(params, by) {
  const p = new URLSearchParams(params);
  for (const k of ["limit", "offset", "cursor", "sort", "view"]) p.delete(k);
  p.set("direction", "event");
  p.set("group_by", by);
  try { return (await api("/v1/stats?" + p.toString())).groups; } catch { return []; }
}

function items(gs, param, color, field) {
  return gs
    .filter(g => g.key !== null && g.key !== "")
    .map(g => ({ label: label(g.key, field), data: !field, count: g.count, drill: [["direction", "event"], [param, String(g.key)]], color }));
}

export async function renderHealth(params) {
  const box = $("#health");
  const [kinds, templates, numbers, days] = await Promise.all([
    groups(params, "category"), groups(params, "template"), groups(params, "phone_number_id"), groups(params, "day"),
  ]);
  const grid = document.createElement("div");
  grid.className = "report-grid";
  const width = 460;
  if (days.length) grid.append(section(t("health.by_day"), barList(items(days, "from", "#64748b").map((it, i) => ({ ...it, drill: [["direction", "event"], ["from", String(days[i].key)], ["to", String(days[i].key)]] })), { ariaLabel: t("health.by_day"), width })));
  grid.append(section(t("health.by_kind"), barList(items(kinds, "event", "#b3261e", "category"), { ariaLabel: t("health.by_kind"), width })));
  if (templates.some(g => g.key !== null)) grid.append(section(t("health.per_template"), barList(items(templates, "template", "#c9a227"), { ariaLabel: t("health.per_template"), width })));
  if (numbers.some(g => g.key !== null)) grid.append(section(t("health.per_number"), barList(items(numbers, "phone_number_id", "#0b6e4f"), { ariaLabel: t("health.per_number"), width })));
  box.replaceChildren(grid);
}
