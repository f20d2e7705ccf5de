// The detail of one entry (every column, template parameters, timeline,
// raw payloads) and deletion, which offers to export first.
import { api } from "./api.js";
import { $, contactLink, formatTime, state, viewerTz } from "./common.js";

/// The zone the page shows times in: the one chosen (`tz=`), else the
/// browser's.
function chosenTz() { return state().get("tz") || viewerTz; }

function jsonBlock(title, value) {
  const d = document.createElement("details");
  d.open = true;
  const sum = document.createElement("summary");
  sum.textContent = title;
  const copy = document.createElement("button");
  copy.type = "button"; copy.textContent = "Copy"; copy.style.marginLeft = "8px";
  const text = JSON.stringify(value, null, 2);
  copy.addEventListener("click", ev => { ev.preventDefault(); navigator.clipboard?.writeText(text); copy.textContent = "Copied"; });
  sum.append(copy);
  const pre = document.createElement("pre");
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
  $("#detail-title").textContent = `Entry #${e.id} · ${e.status.replaceAll("_", " ")}`;
  const dl = document.createElement("dl");
  const add = (k, v, person) => {
    if (v === null || v === undefined || v === "") return;
    const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd");
    if (person) dd.append(contactLink(person, v)); else dd.textContent = v;
    dl.append(dt, dd);
  };
  const who = e.phone || e.user_id || (e.username ? "@" + e.username : null);
  add("Recorded on (original)", e.recorded_at);
  const tz = chosenTz();
  add(`Recorded on (${tz})`, formatTime(e.recorded_at, tz));
  add("Direction", e.direction); add("Category", e.category); add("Name", e.name);
  add("Template", e.template ? `${e.template} (${e.template_language || "?"})` : null);
  add("Response code", e.response_code != null ? `${e.response_code}${e.response_meaning ? " — " + e.response_meaning : ""}` : null);
  add("Recipient type", e.recipient_type); add("Contact reference", e.recipient_ref); add("Phone", e.phone, e.phone); add("WhatsApp id", e.wa_id, e.wa_id);
  add("User id", e.user_id, e.user_id); add("Parent user id", e.parent_user_id, e.parent_user_id);
  add("Username", e.username ? "@" + e.username : null, e.username ? "@" + e.username : null);
  add("Contact name", e.contact_name, who); add("User", e.user); add("Subaccount", e.subaccount); add("Phone number id", e.phone_number_id);
  add("wamid", e.wamid); add("Correlation id", e.correlation_id); add("Content type", e.content_type); add("Message", e.text);
  add("Error", e.error_code != null ? `${e.error_code} ${e.error_title || ""}` : null);
  add("What to do", e.error_action ? `${e.error_meaning}: ${e.error_action}` : null);
  add("Conversation", e.conversation_id ? `${e.conversation_type || ""} ${e.conversation_id}` : e.conversation_type);
  add("Pricing", e.pricing_category ? `${e.pricing_category} (${e.pricing_model || ""})` : null);
  add("Changed", e.event_to ? (e.event_from ? `${e.event_from} → ${e.event_to}` : e.event_to) : null);
  add("Reason", e.event_reason);
  add("24 h session", e.session); add("Replies / clicks", e.replies || e.clicks ? `${e.replies} / ${e.clicks}` : null);
  const body = [dl];
  if (d.template_params && d.template_params.length) {
    const t = document.createElement("table");
    t.innerHTML = "<thead><tr><th>Component</th><th>Parameter</th><th>Type</th><th>Value</th></tr></thead>";
    const tb = document.createElement("tbody");
    for (const p of d.template_params) {
      const tr = document.createElement("tr");
      for (const v of [p.component, p.name, p.kind, p.value]) { const td = document.createElement("td"); td.textContent = v; tr.append(td); }
      tb.append(tr);
    }
    t.append(tb);
    const h = document.createElement("h3"); h.textContent = "Template parameters";
    body.push(h, t);
  }
  if (d.timeline && d.timeline.length) {
    const h = document.createElement("h3"); h.textContent = "Timeline";
    const ul = document.createElement("ul"); ul.className = "timeline";
    for (const it of d.timeline) {
      const li = document.createElement("li");
      li.className = it.status || it.kind;
      const when = formatTime(new Date(it.at_ms).toISOString(), chosenTz());
      li.textContent = `${when} · ${it.kind}${it.status ? " " + it.status : ""}${it.error_code != null ? " (error " + it.error_code + ")" : ""}${it.participant ? " · " + it.participant : ""}${it.text ? " · " + it.text : ""}`;
      ul.append(li);
    }
    body.push(h, ul);
  }
  if (d.request && d.request !== null) body.push(jsonBlock("Request payload", d.request));
  if (d.response && d.response !== null) body.push(jsonBlock("Response body", d.response));
  for (const input of d.inputs || []) body.push(jsonBlock(`Raw ${input.source} input #${input.seq} (received ${input.received_at})`, input.raw));
  const del = document.createElement("button");
  del.type = "button"; del.className = "danger"; del.textContent = "Delete this entry";
  del.addEventListener("click", () => confirmDelete(`Entry #${e.id} will be deleted.`, { ids: [e.id] }, onDeleted));
  body.push(del);
  $("#detail-body").replaceChildren(...body);
  panel.hidden = false;
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
      $("#total").textContent = "Exporting before deleting…";
      const r = await fetch(exportUrlFor(payload, format));
      if (!r.ok) throw new Error(`the export failed (HTTP ${r.status})`);
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
  } catch (err) { alert("Delete failed: " + err.message); }
}

