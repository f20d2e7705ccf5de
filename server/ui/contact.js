// The contact view's card above its table: one person, every identifier
// Ticks learned for them (numbers, WhatsApp ids, user ids, usernames),
// when they were first and last seen, their messages in each direction,
// and whether they take marketing messages. The table below lists every message with them, newest first.
import { api } from "./api.js";
import { $, chosenTz, formatTime } from "./common.js";
import { data, num, t, valueName } from "./i18n.js";

export async function renderContact(typed) {
  const box = $("#contact-card");
  if (!typed) { box.replaceChildren(); return; }
  let c;
  try { c = await api("/v1/contacts/" + encodeURIComponent(typed)); }
  catch (err) {
    const p = document.createElement("p");
    p.textContent = t("contact.none", { who: typed, message: err.message });
    box.replaceChildren(p);
    return;
  }
  const h = document.createElement("h2");
  h.textContent = c.name || typed;
  data(h);
  const viewerTz = chosenTz();
  const dl = document.createElement("dl");
  dl.className = "contact";
  const add = (k, values, isData = true) => {
    if (!values || values.length === 0) return;
    const dt = document.createElement("dt"); dt.textContent = t(k);
    const dd = document.createElement("dd"); dd.textContent = values.join(", ");
    if (isData) data(dd);
    dl.append(dt, dd);
  };
  add("contact.phones", c.identifiers.phones);
  add("contact.wa_ids", c.identifiers.wa_ids);
  add("contact.user_ids", c.identifiers.user_ids);
  add("contact.usernames", c.identifiers.usernames.map(u => "@" + u));
  add("contact.first_seen", [formatTime(c.first_seen, viewerTz)]);
  add("contact.last_seen", [formatTime(c.last_seen, viewerTz)]);
  add("contact.messages", [t("contact.counts", { out: num(c.counts.outbound), in: num(c.counts.inbound) })], false);
  const last = c.marketing.history[c.marketing.history.length - 1];
  add("contact.marketing", [c.marketing.opted_out
    ? t("contact.opted_out_since", { at: formatTime(last.at, viewerTz), source: valueName("source", last.source) })
    : last ? t("contact.resumed", { at: formatTime(last.at, viewerTz) }) : t("contact.receives")], false);
  add("contact.changes", c.marketing.history.map(h => `${valueName("preference", h.value)} ${formatTime(h.at, viewerTz)} (${valueName("source", h.source)})`), false);
  box.replaceChildren(h, dl);
}
