// The received-messages (MO) view's summary above its table: replies and
// clicks per campaign, clicks per button, messages by content type, each
// bar a link to the messages behind it. The table's MO columns are in
// `table.js`.
import { api } from "./api.js";
import { barList, countsItems, label, section } from "./report.js";
import { num, t } from "./i18n.js";

export async function renderMoSummary(params) {
  const box = document.getElementById("mo-summary");
  const p = new URLSearchParams(params);
  for (const k of ["limit", "offset", "cursor", "sort", "view", "direction"]) p.delete(k);
  p.set("sections", "inbound");
  let r;
  try { r = await api("/v1/report?" + p.toString()); } catch { box.replaceChildren(); return; }
  const grid = document.createElement("div"); grid.className = "report-grid";
  const byCampaign = r.inbound.by_campaign.map(c => ({ label: c.key === null ? t("report.not_linked") : label(c.key), data: c.key !== null, count: c.replies + c.clicks, note: t("mo.note", { replies: num(c.replies), clicks: num(c.clicks), quoted: num(c.quoted), inferred: num(c.inferred) }), drill: c.drill, color: "#0b6e4f" }));
  if (byCampaign.length) grid.append(section(t("mo.per_campaign"), barList(byCampaign, { ariaLabel: t("mo.per_campaign"), width: 460 })));
  if (r.inbound.by_button.length) grid.append(section(t("mo.per_button"), barList(countsItems(r.inbound.by_button, "#1d8ae0").map(i => ({ ...i, data: true })), { ariaLabel: t("mo.per_button"), width: 460 })));
  if (r.inbound.by_content_type.length) grid.append(section(t("mo.by_content_type"), barList(countsItems(r.inbound.by_content_type, null, "content_type"), { ariaLabel: t("mo.by_content_type"), width: 460 })));
  box.replaceChildren(grid);
}
