// The detail of one entry (every column, template parameters, timeline,
// raw payloads) and deletion, which offers to export first.
import { api } from "./api.js";
import { $, chosenTz, contactLink, formatTime, offsetOf } from "./common.js";
import { codeText, data, isNamedValue, num, t, valueName } from "./i18n.js";

function jsonBlock(title, value) {
  const d = document.createElement("details");
  d.open = true;
  const sum = document.createElement("summary");
  sum.textContent = title;
  const copy = document.createElement("button");
  copy.type = "button"; copy.textContent = t("detail.copy"); copy.style.marginLeft = "8px";
  const text = JSON.stringify(value, null, 2);
  copy.addEventListener("click", ev => { ev.preventDefault(); navigator.clipboard?.writeText(text); copy.textContent = t("detail.copied"); });
  sum.append(copy);
  const pre = document.createElement("pre");
  data(pre);
  pre.textContent = text;
  d.append(sum, pre);
  return d;
}

export async function showDetail(id, onDeleted) {
  const panel = $("#detail");
  let d;
  try { d = await api("/v1/logs/" + encodeURIComponent(id)); }
  catch (err) { panel.hidden = false; $("#detail-body").textContent = err.message; return; }
  const e = d.entry;
  $("#detail-title").textContent = t("detail.title", { id: e.id, status: valueName("status", e.status) });
  const dl = document.createElement("dl");
  // `k` is a message key; `v` is data unless `named` (a value name, or
  // words of the page).
  const add = (k, v, person, named = false) => {
    if (v === null || v === undefined || v === "") return;
    const dt = document.createElement("dt"); dt.textContent = t(k);
    const dd = document.createElement("dd");
    if (person) dd.append(contactLink(person, v)); else dd.textContent = v;
    if (!named) data(dd);
    dl.append(dt, dd);
  };
  const value = (field, v) => add("field." + field, v == null ? v : valueName(field, v), null, isNamedValue(field, v));
  const who = e.phone || e.user_id || (e.username ? "@" + e.username : null);
  const tz = chosenTz();
  add("detail.recorded_original", e.recorded_at);
  add("detail.recorded_in", `${formatTime(e.recorded_at, tz)} (${tz}, ${offsetOf(e.recorded_at, tz)})`);
  value("direction", e.direction); value("category", e.category); add("field.name", e.name);
  add("field.template", e.template ? `${e.template} (${e.template_language || "?"})` : null);
  add("detail.response_code", e.response_code != null ? `${e.response_code}${e.response_meaning ? " — " + codeText(e.response_meaning) : ""}` : null, null, !!e.response_meaning);
  value("recipient_type", e.recipient_type); add("detail.recipient_ref", e.recipient_ref); add("field.phone", e.phone, e.phone); add("field.wa_id", e.wa_id, e.wa_id);
  add("field.user_id", e.user_id, e.user_id); add("detail.parent_user_id", e.parent_user_id, e.parent_user_id);
  add("detail.username", e.username ? "@" + e.username : null, e.username ? "@" + e.username : null);
  add("field.contact_name", e.contact_name, who); add("field.user", e.user); add("field.subaccount", e.subaccount); add("detail.phone_number_id", e.phone_number_id);
  add("field.wamid", e.wamid); add("field.correlation_id", e.correlation_id); value("content_type", e.content_type); add("detail.message", e.text);
  add("detail.error", e.error_code != null ? `${e.error_code} ${e.error_title || ""}` : null);
  add("detail.what_to_do", e.error_action ? `${codeText(e.error_meaning)}: ${codeText(e.error_action)}` : null, null, true);
  add("detail.conversation", e.conversation_id ? `${e.conversation_type ? valueName("conversation_type", e.conversation_type) + " " : ""}${e.conversation_id}` : null);
  value("conversation_type", e.conversation_id ? null : e.conversation_type);
  add("detail.pricing", e.pricing_category ? `${valueName("pricing_category", e.pricing_category)} (${e.pricing_model || ""})` : null, null, isNamedValue("pricing_category", e.pricing_category) && !e.pricing_model);
  add("detail.changed", e.event_to ? (e.event_from ? `${e.event_from} → ${e.event_to}` : e.event_to) : null);
  add("detail.reason", e.event_reason);
  value("session", e.session);
  add("detail.replies_clicks", e.replies || e.clicks ? `${num(e.replies)} / ${num(e.clicks)}` : null);
  const body = [dl];
  if (d.template_params && d.template_params.length) {
    const table = document.createElement("table");
    const head = document.createElement("tr");
    for (const k of ["detail.component", "detail.parameter", "detail.type", "detail.value"]) { const th = document.createElement("th"); th.textContent = t(k); head.append(th); }
    const thead = document.createElement("thead"); thead.append(head); table.append(thead);
    const tb = document.createElement("tbody");
    for (const p of d.template_params) {
      const tr = document.createElement("tr");
      for (const v of [p.component, p.name, p.kind, p.value]) { const td = document.createElement("td"); td.textContent = v; data(td); tr.append(td); }
      tb.append(tr);
    }
    table.append(tb);
    const h = document.createElement("h3"); h.textContent = t("detail.template_params");
    body.push(h, table);
  }
  if (d.timeline && d.timeline.length) {
    const h = document.createElement("h3"); h.textContent = t("detail.timeline"); h.id = "detail-timeline";
    const ul = document.createElement("ul"); ul.className = "timeline";
    for (const it of d.timeline) {
      const li = document.createElement("li");
      li.className = it.status || it.kind;
      const when = formatTime(new Date(it.at_ms).toISOString(), chosenTz());
      const what = document.createElement("span");
      what.textContent = `${when} · ${valueName("timeline", it.kind)}${it.status ? " " + valueName("status", it.status) : ""}${it.error_code != null ? " " + t("detail.error_n", { code: it.error_code }) : ""}`;
      li.append(what);
      const rest = `${it.participant ? " · " + it.participant : ""}${it.text ? " · " + it.text : ""}`;
      if (rest) li.append(data(Object.assign(document.createElement("span"), { textContent: rest })));
      ul.append(li);
    }
    body.push(h, ul);
  }
  if (d.request && d.request !== null) body.push(jsonBlock(t("detail.request"), d.request));
  if (d.response && d.response !== null) body.push(jsonBlock(t("detail.response"), d.response));
  for (const input of d.inputs || []) body.push(jsonBlock(t("detail.raw", { source: valueName("source", input.source), seq: input.seq, at: formatTime(input.received_at, tz) }), input.raw));
  const del = document.createElement("button");
  del.type = "button"; del.className = "danger"; del.textContent = t("detail.delete");
  del.addEventListener("click", () => confirmDelete(t("delete.one", { id: e.id }), { ids: [e.id] }, onDeleted));
  body.push(del);
  $("#detail-body").replaceChildren(...body);
  panel.hidden = false;
  if (panel.dataset.focus === "timeline" && $("#detail-timeline")) { delete panel.dataset.focus; $("#detail-timeline").scrollIntoView(); }
  panel.focus();
}

/// The export covering what a deletion removes: the same filter, or the
/// selected entries by id.
function exportUrlFor(payload, format) {
  const p = payload.filter ? new URLSearchParams(payload.filter) : new URLSearchParams({ id: payload.ids.join(",") });
  p.set("format", format);
  return "/v1/export?" + p.toString();
}

/// Deletion is for good: the dialog offers to export first (the server then
/// finds the export's receipt), or to delete without one, which the purge
/// record keeps as an accepted loss.
export async function confirmDelete(text, payload, onDeleted) {
  const dlg = $("#confirm");
  $("#confirm-text").textContent = text;
  dlg.returnValue = "";
  dlg.showModal();
  await new Promise(resolve => dlg.addEventListener("close", resolve, { once: true }));
  const choice = dlg.returnValue;
  if (choice !== "export" && choice !== "force") return;
  const body = { ...payload };
  try {
    if (choice === "export") {
      const format = $("#confirm-format").value;
      $("#total").textContent = t("delete.exporting");
      const r = await fetch(exportUrlFor(payload, format));
      if (!r.ok) throw new Error(t("delete.export_failed", { status: r.status }));
      const blob = await r.blob();
      const a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = `ticks-export-before-delete-${Date.now()}.${format}`;
      document.body.append(a); a.click(); a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 60000);
    } else {
      body.force = true;
    }
    const r = await api("/v1/delete", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    onDeleted(r);
  } catch (err) { alert(t("delete.failed", { message: err.message })); }
}

