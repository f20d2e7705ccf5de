// The templates view: the catalog Ticks renders templated sends with. A
// table of every template (name, language, status, category, quality,
// versions, messages sent), and for the one chosen its versions (the text
// people read, with its placeholders) and its status, category and quality
// changes from Meta's template webhooks. "Messages" opens the log of the
// sends of that template.
import { api } from "./api.js";
import { $, formatTime, viewerTz } from "./common.js";

function cell(tr, text) {
  const td = document.createElement("td");
  td.textContent = text == null ? "" : String(text);
  tr.append(td);
  return td;
}

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
  let t;
  try { t = await api(`/v1/templates/${encodeURIComponent(name)}/${encodeURIComponent(language)}`); }
  catch (err) {
    const p = document.createElement("p");
    p.textContent = `No template ${name} (${language}): ${err.message}`;
    box.append(p);
    return;
  }
  const h = document.createElement("h3");
  h.textContent = `${t.name} (${t.language})`;
  const versions = document.createElement("ol");
  versions.className = "template-versions";
  for (const v of t.history) {
    const li = document.createElement("li");
    const when = document.createElement("div");
    when.textContent = `first seen ${formatTime(v.first_seen, viewerTz)}`;
    const pre = document.createElement("pre");
    pre.textContent = contentText(v.content);
    li.append(when, pre);
    versions.append(li);
  }
  const events = document.createElement("ul");
  events.className = "timeline";
  for (const e of t.events) {
    const li = document.createElement("li");
    li.textContent = `${formatTime(e.at, viewerTz)} · ${e.event}: ${e.from ? e.from + " → " : ""}${e.to || ""}${e.reason ? " (" + e.reason + ")" : ""}`;
    events.append(li);
  }
  const sends = document.createElement("a");
  sends.href = "/?" + new URLSearchParams({ template: t.name, template_language: t.language, direction: "outbound" }).toString();
  sends.textContent = `${t.sends} messages sent with it`;
  const hv = document.createElement("h4"); hv.textContent = "Versions";
  const he = document.createElement("h4"); he.textContent = "Status, category and quality changes";
  const hh = document.createElement("h4"); hh.textContent = "Health";
  box.append(h, sends, hh, await healthTable(t.name, t.language), hv, versions, he, t.events.length ? events : Object.assign(document.createElement("p"), { textContent: "none received" }));
}

// What the template's messages did: the report's `templates` section for
// this template and language, each figure a link to its messages.
async function healthTable(name, language) {
  const p = new URLSearchParams({ sections: "templates", template: name, template_language: language, top: "1" });
  let h;
  try { h = (await api("/v1/report?" + p.toString())).templates?.[0]; }
  catch (err) { return Object.assign(document.createElement("p"), { textContent: `Health could not be read: ${err.message}` }); }
  if (!h) return Object.assign(document.createElement("p"), { textContent: "No messages sent with it yet." });
  const table = document.createElement("table");
  table.className = "template-health";
  const rows = [
    ["Sent", h.sent], ["Delivered", h.delivered], ["Read", h.read], ["Failed", h.failed],
    ["Replies (quoted)", h.replies_quoted], ["Replies (inferred)", h.replies_inferred],
    ["Button clicks", h.button_clicks], ["Link clicks", h.link_clicks], ["Opt-outs after it", h.opt_outs],
  ];
  for (const [label, n] of rows) {
    const tr = document.createElement("tr");
    const th = document.createElement("th"); th.textContent = label;
    const td = document.createElement("td"); td.textContent = Number(n).toLocaleString();
    tr.append(th, td);
    table.append(tr);
  }
  for (const r of h.failure_reasons) {
    const tr = document.createElement("tr");
    const th = document.createElement("th"); th.textContent = `Failed with ${r.error_code ?? "no code"}`;
    const td = document.createElement("td");
    const a = document.createElement("a");
    const q = new URLSearchParams(h.drill); q.set("error_code", r.error_code ?? "none");
    a.href = "/?" + q.toString();
    a.textContent = Number(r.count).toLocaleString();
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
    p.textContent = `The template catalog could not be read: ${err.message}`;
    box.replaceChildren(p);
    return;
  }
  if (!list.length) {
    const p = document.createElement("p");
    p.textContent = "No template definitions yet: import them with `ticks templates import FILE` or POST /v1/templates, or set waba_id and template_sync_minutes.";
    box.replaceChildren(p);
    return;
  }
  const table = document.createElement("table");
  table.className = "templates";
  table.innerHTML = "<thead><tr><th>Template</th><th>Language</th><th>Status</th><th>Category</th><th>Quality</th><th>Versions</th><th>Updated</th><th>Messages</th></tr></thead>";
  const tb = document.createElement("tbody");
  for (const t of list) {
    const tr = document.createElement("tr");
    const name = cell(tr, "");
    const a = document.createElement("a");
    a.href = "/?" + new URLSearchParams({ view: "templates", template_name: t.name, template_lang: t.language }).toString();
    a.textContent = t.name;
    a.addEventListener("click", ev => {
      ev.preventDefault();
      const p = new URLSearchParams({ view: "templates", template_name: t.name, template_lang: t.language });
      navigate(p);
    });
    name.append(a);
    for (const v of [t.language, t.status, t.category, t.quality, t.versions, formatTime(t.updated_at, viewerTz), t.sends]) cell(tr, v);
    tb.append(tr);
  }
  table.append(tb);
  box.replaceChildren(table);
  const name = params.get("template_name"), language = params.get("template_lang");
  if (name && language) await renderOne(box, name, language);
}
