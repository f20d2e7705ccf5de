// The received-messages (MO) view's summary above its table: replies and
// clicks per campaign, clicks per button, messages by content type, each
// bar a link to the messages behind it. The table's MO columns are in
// `table.js`.
import { api } from "./api.js";
import { barList, countsItems, label, section } from "./report.js";

export async function renderMoSummary(params) {
  const box = document.getElementById("mo-summary");
  const p = new URLSearchParams(params);
  for (const k of ["limit", "offset", "cursor", "sort", "view", "direction"]) p.delete(k);
  p.set("sections", "inbound");
  let r;
  try { r = await api("/v1/report?" + p.toString()); } catch { box.replaceChildren(); return; }
  const grid = document.createElement("div"); grid.className = "report-grid";
  const byCampaign = r.inbound.by_campaign.map(c => ({ label: c.key === null ? "(not linked to a message)" : label(c.key), count: c.replies + c.clicks, note: `${c.replies} replies, ${c.clicks} clicks (${c.quoted} quoted, ${c.inferred} inferred)`, drill: c.drill, color: "#0b6e4f" }));
  if (byCampaign.length) grid.append(section("Replies and clicks per campaign", barList(byCampaign, { ariaLabel: "replies and clicks per campaign", width: 460 })));
  if (r.inbound.by_button.length) grid.append(section("Quick-reply clicks per button", barList(countsItems(r.inbound.by_button, "#1d8ae0"), { ariaLabel: "clicks per button", width: 460 })));
  if (r.inbound.by_content_type.length) grid.append(section("By content type", barList(countsItems(r.inbound.by_content_type), { ariaLabel: "received by content type", width: 460 })));
  box.replaceChildren(grid);
}
