// The templates view: the catalog Ticks renders templated sends with. A
// table of every template (name, language, status, category, quality,
// versions, messages sent), and for the one chosen its versions (the text
// people read, with its placeholders) and its status, category and quality
// changes from Meta's template webhooks. "Messages" opens the log of the
// sends of that template.
import { api } from "./api.js";
import { $, chosenTz, dataCell, formatTime, namedCell } from "./common.js";
import { data, num, t, valueName } from "./i18n.js";

const cell = dataCell;

function contentText(c) {
  const lines = [];
  if (c.header && c.header.text != null) lines.push(c.header.text);
  if (c.header && c.header.media) lines.push(`[${c.header.media}]`);
  lines.push(c.body);
  if (c.footer) lines.push(c.footer);
  for (const b of c.buttons || []) lines.push(`[${b.text}${b.url ? ": " + b.url : ""}]`);
  return lines.join("\n");
}

async function renderOne(box, name, language) {
  let tpl;
  try { tpl = await api(`/v1/templates/${encodeURIComponent(name)}/${encodeURIComponent(language)}`); }
  catch (err) {
    const p = document.createElement("p");
    p.textContent = t("templates.missing", { name, language, message: err.message });
    box.append(p);
    return;
  }
  const h = document.createElement("h3");
  h.textContent = `${tpl.name} (${tpl.language})`;
  data(h);
  const viewerTz = chosenTz();
  const versions = document.createElement("ol");
  versions.className = "template-versions";
  for (const v of tpl.history) {
    const li = document.createElement("li");
    const when = document.createElement("div");
    when.textContent = t("templates.first_seen", { at: formatTime(v.first_seen, viewerTz) });
    const pre = document.createElement("pre");
    data(pre);
    pre.textContent = contentText(v.content);
    li.append(when, pre);
    versions.append(li);
  }
  const events = document.createElement("ul");
  events.className = "timeline";
  for (const e of tpl.events) {
    const li = document.createElement("li");
    li.textContent = `${formatTime(e.at, viewerTz)} · ${valueName("category", e.event)}: ${e.from ? valueName("template_state", e.from) + " → " : ""}${e.to ? valueName("template_state", e.to) : ""}${e.reason ? " (" + e.reason + ")" : ""}`;
    data(li);
    events.append(li);
  }
  const sends = document.createElement("a");
  sends.href = "/?" + new URLSearchParams({ template: tpl.name, template_language: tpl.language, direction: "outbound" }).toString();
  sends.textContent = t("templates.sends", { n: num(tpl.sends) });
  const hv = document.createElement("h4"); hv.textContent = t("templates.versions");
  const he = document.createElement("h4"); he.textContent = t("templates.changes");
  const hh = document.createElement("h4"); hh.textContent = t("templates.health");
  box.append(h, sends, hh, await healthTable(tpl.name, tpl.language), hv, versions, he, tpl.events.length ? events : Object.assign(document.createElement("p"), { textContent: t("templates.no_events") }));
}

// What the template's messages did: the report's `templates` section for
// this template and language, each figure a link to its messages.
async function healthTable(name, language) {
  const p = new URLSearchParams({ sections: "templates", template: name, template_language: language, top: "1" });
  let h;
  try { h = (await api("/v1/report?" + p.toString())).templates?.[0]; }
  catch (err) { return Object.assign(document.createElement("p"), { textContent: t("templates.health_error", { message: err.message }) }); }
  if (!h) return Object.assign(document.createElement("p"), { textContent: t("templates.no_sends") });
  const table = document.createElement("table");
  table.className = "template-health";
  const rows = [
    ["value.step.sent", h.sent], ["value.step.delivered", h.delivered], ["value.step.read", h.read], ["report.failed", h.failed],
    ["templates.replies_quoted", h.replies_quoted], ["templates.replies_inferred", h.replies_inferred],
    ["report.button_clicks", h.button_clicks], ["templates.link_clicks", h.link_clicks], ["templates.opt_outs", h.opt_outs],
  ];
  for (const [label, n] of rows) {
    const tr = document.createElement("tr");
    const th = document.createElement("th"); th.textContent = t(label);
    const td = document.createElement("td"); td.textContent = num(Number(n));
    tr.append(th, td);
    table.append(tr);
  }
  for (const r of h.failure_reasons) {
    const tr = document.createElement("tr");
    const th = document.createElement("th"); th.textContent = r.error_code == null ? t("templates.failed_no_code") : t("templates.failed_with", { code: r.error_code });
    const td = document.createElement("td");
    const a = document.createElement("a");
    const q = new URLSearchParams(h.drill); q.set("error_code", r.error_code ?? "none");
    a.href = "/?" + q.toString();
    a.textContent = num(Number(r.count));
    td.append(a);
    tr.append(th, td);
    table.append(tr);
  }
  return table;
}

export async function renderTemplates(params, navigate) {
  const box = $("#templates");
  let list;
  try { list = (await api("/v1/templates")).templates; }
  catch (err) {
    const p = document.createElement("p");
    p.textContent = t("templates.error", { message: err.message });
    box.replaceChildren(p);
    return;
  }
  if (!list.length) {
    const p = document.createElement("p");
    p.textContent = t("templates.empty");
    box.replaceChildren(p);
    return;
  }
  const table = document.createElement("table");
  table.className = "templates";
  const head = document.createElement("tr");
  for (const k of ["field.template", "templates.language", "field.status", "field.category", "templates.quality", "templates.versions", "templates.updated", "templates.messages"]) {
    const th = document.createElement("th"); th.textContent = t(k); head.append(th);
  }
  const thead = document.createElement("thead"); thead.append(head); table.append(thead);
  const tb = document.createElement("tbody");
  const viewerTz = chosenTz();
  for (const tpl of list) {
    const tr = document.createElement("tr");
    const name = cell(tr, "");
    const a = document.createElement("a");
    a.href = "/?" + new URLSearchParams({ view: "templates", template_name: tpl.name, template_lang: tpl.language }).toString();
    a.textContent = tpl.name;
    a.addEventListener("click", ev => {
      ev.preventDefault();
      const p = new URLSearchParams({ view: "templates", template_name: tpl.name, template_lang: tpl.language });
      navigate(p);
    });
    name.append(a);
    cell(tr, tpl.language);
    namedCell(tr, "template_state", tpl.status); namedCell(tr, "pricing_category", tpl.category ? tpl.category.toLowerCase() : tpl.category); namedCell(tr, "template_state", tpl.quality);
    for (const v of [tpl.versions, formatTime(tpl.updated_at, viewerTz), num(tpl.sends)]) cell(tr, v);
    tb.append(tr);
  }
  table.append(tb);
  box.replaceChildren(table);
  const name = params.get("template_name"), language = params.get("template_lang");
  if (name && language) await renderOne(box, name, language);
}
