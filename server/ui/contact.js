// The contact view's card above its table: one person, every identifier
// Ticks learned for them (numbers, WhatsApp ids, user ids, usernames),
// when they were first and last seen, their messages in each direction,
// and whether they take marketing messages. The table below lists every message with them, newest first.
import { api } from "./api.js";
import { $, formatTime, viewerTz } from "./common.js";

export async function renderContact(typed) {
  const box = $("#contact-card");
  if (!typed) { box.replaceChildren(); return; }
  let c;
  try { c = await api("/v1/contacts/" + encodeURIComponent(typed)); }
  catch (err) {
    const p = document.createElement("p");
    p.textContent = `No messages with ${typed}: ${err.message}`;
    box.replaceChildren(p);
    return;
  }
  const h = document.createElement("h2");
  h.textContent = c.name || typed;
  const dl = document.createElement("dl");
  dl.className = "contact";
  const add = (k, values) => {
    if (!values || values.length === 0) return;
    const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd"); dd.textContent = values.join(", ");
    dl.append(dt, dd);
  };
  add("Phone numbers", c.identifiers.phones);
  add("WhatsApp ids", c.identifiers.wa_ids);
  add("User ids", c.identifiers.user_ids);
  add("Usernames", c.identifiers.usernames.map(u => "@" + u));
  add("First seen", [formatTime(c.first_seen, viewerTz)]);
  add("Last seen", [formatTime(c.last_seen, viewerTz)]);
  add("Messages", [`${c.counts.outbound} sent to them, ${c.counts.inbound} from them`]);
  const last = c.marketing.history[c.marketing.history.length - 1];
  add("Marketing", [c.marketing.opted_out
    ? `opted out since ${formatTime(last.at, viewerTz)} (${last.source})`
    : last ? `receives it (resumed ${formatTime(last.at, viewerTz)})` : "receives it"]);
  add("Preference changes", c.marketing.history.map(h => `${h.value} ${formatTime(h.at, viewerTz)} (${h.source})`));
  box.replaceChildren(h, dl);
}
