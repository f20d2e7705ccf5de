//! Webhook bodies exactly as Meta posts them.
//!
//! A webhook is signed by Meta and cannot be sent again on request, so a
//! part that does not parse is not a reason to reject the rest: it is kept
//! as an [`OtherEvent`] named `malformed` that carries the reason, and the
//! raw body is stored whole. Only a body that is not a webhook at all (not
//! JSON, no `entry` array) is an error.

use crate::error::ParseError;
use crate::json::{all_strings, dig_str, index, join, kind, At, Json};
use crate::send::meta_error_from_send;
use crate::time::parse_meta_timestamp;
use ticks_engine::{normalize_phone, normalize_username};
use ticks_engine::{
    Event, IdentityChange, InboundEvent, MetaError, Origin, OtherEvent, Preference, SendEvent,
    SendOutcome, StatusEvent, WebhookStatus,
};

pub(crate) fn parse_webhook_value(
    v: &Json<'_>,
    received_ms: i64,
) -> Result<Vec<Event>, ParseError> {
    let root = At::new(v, "");
    if !v.is_object() {
        return Err(ParseError::field(
            "(root)",
            format!("expected a webhook object, found {}", kind(v)),
        ));
    }
    let object = root.req_str("object")?;
    let entries = match v.get("entry") {
        Some(Json::Array(a)) => a,
        Some(other) => {
            return Err(ParseError::field(
                "entry",
                format!("expected an array, found {}", kind(other)),
            ))
        }
        None => return Err(ParseError::field("entry", "missing")),
    };
    let mut events = Vec::new();
    for (ei, entry) in entries.iter().enumerate() {
        let epath = index("entry", ei);
        let account = dig_str(entry, &["id"]);
        // Meta puts the time of account and template events on the entry.
        let entry_ms = entry
            .get("time")
            .and_then(|t| parse_meta_timestamp(Some(t), "").ok());
        let changes = match entry.get("changes") {
            Some(Json::Array(a)) => a.as_slice(),
            None | Some(Json::Null) => &[],
            Some(other) => {
                events.push(malformed(
                    &join(&epath, "changes"),
                    &format!("expected an array, found {}", kind(other)),
                    account.clone(),
                    received_ms,
                    entry,
                ));
                continue;
            }
        };
        for (ci, change) in changes.iter().enumerate() {
            let cpath = index(&join(&epath, "changes"), ci);
            let field = dig_str(change, &["field"]).unwrap_or_default();
            let value = change.get("value").unwrap_or(&Json::Null);
            if field == "messages" && value.is_object() {
                parse_messages_value(
                    value,
                    &join(&cpath, "value"),
                    account.as_deref(),
                    entry_ms.unwrap_or(received_ms),
                    &mut events,
                );
            } else if field == "smb_message_echoes" || field == "history" {
                coexistence(
                    &field,
                    value,
                    &join(&cpath, "value"),
                    account.as_deref(),
                    entry_ms.unwrap_or(received_ms),
                    &mut events,
                );
            } else if field == "smb_app_state_sync" || field == "user_preferences" {
                let change = Change {
                    object: &object,
                    field: &field,
                    value,
                    account: account.as_deref(),
                    fallback_ms: entry_ms.unwrap_or(received_ms),
                };
                events.extend(if field == "user_preferences" {
                    preferences(&change)
                } else {
                    contact_syncs(&change)
                });
            } else {
                events.push(Event::Other(Box::new(other_change(
                    &object,
                    &field,
                    value,
                    account.clone(),
                    entry_ms.unwrap_or(received_ms),
                ))));
            }
        }
    }
    Ok(events)
}

/// Coexistence (the WhatsApp Business app and the Cloud API on one
/// number). `smb_message_echoes`: messages the business sent from the app
/// (`value.message_echoes[]: {from, to, id, timestamp, type, <body>}`)
/// become outbound entries from the app (not billed). `history`: past
/// conversations synced once (`value.history[].threads[]: {id (the
/// customer), messages: [... with history_context: {status}]}`) become
/// entries from the history, inbound when the customer wrote them,
/// outbound with their last status otherwise; a message also delivered by
/// the API is one entry (its wamid).
fn coexistence(
    field: &str,
    value: &Json<'_>,
    vpath: &str,
    account: Option<&str>,
    fallback_ms: i64,
    events: &mut Vec<Event>,
) {
    let phone_number_id = dig_str(value, &["metadata", "phone_number_id"]);
    let outbound = CoexistenceOutbound {
        phone_number_id: phone_number_id.clone(),
        account,
        fallback_ms,
    };
    if field == "smb_message_echoes" {
        for (i, echo) in items(value, "message_echoes").iter().enumerate() {
            let path = index(&join(vpath, "message_echoes"), i);
            let to = dig_str(echo, &["to"]).map(|t| normalize_phone(&t));
            outbound.push(echo, &path, to, Origin::App, events);
        }
        return;
    }
    for (h, batch) in items(value, "history").iter().enumerate() {
        for (t, thread) in items(batch, "threads").iter().enumerate() {
            let customer = dig_str(thread, &["id"]).map(|c| normalize_phone(&c));
            for (m, msg) in items(thread, "messages").iter().enumerate() {
                let path = format!("{vpath}.history[{h}].threads[{t}].messages[{m}]");
                let from = dig_str(msg, &["from"]).map(|f| normalize_phone(&f));
                if from.is_some() && from == customer {
                    match parse_inbound(msg, &path, phone_number_id.clone(), &[]) {
                        Ok(mut m) => {
                            m.origin = Origin::History;
                            events.push(Event::Inbound(Box::new(m)));
                        }
                        Err(e) => events.push(malformed(
                            &path,
                            &e.to_string(),
                            account.map(String::from),
                            fallback_ms,
                            msg,
                        )),
                    }
                } else {
                    outbound.push(msg, &path, customer.clone(), Origin::History, events);
                }
            }
        }
    }
}

/// The list under `key`, or none.
fn items<'v, 'a>(v: &'v Json<'a>, key: &str) -> &'v [Json<'a>] {
    v.get(key)
        .and_then(Json::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// A message the business sent outside the API, seen on a coexistence
/// number: a send from the app or the history, with its last status.
struct CoexistenceOutbound<'a> {
    phone_number_id: Option<String>,
    account: Option<&'a str>,
    fallback_ms: i64,
}

impl CoexistenceOutbound<'_> {
    fn push(
        &self,
        msg: &Json<'_>,
        path: &str,
        to: Option<String>,
        origin: Origin,
        events: &mut Vec<Event>,
    ) {
        let m = match parse_inbound(msg, path, self.phone_number_id.clone(), &[]) {
            Ok(m) => m,
            Err(e) => {
                events.push(malformed(
                    path,
                    &e.to_string(),
                    self.account.map(String::from),
                    self.fallback_ms,
                    msg,
                ));
                return;
            }
        };
        let status = dig_str(msg, &["history_context", "status"])
            .and_then(|s| WebhookStatus::parse(&s.to_ascii_lowercase()));
        events.push(Event::Send(Box::new(SendEvent {
            recorded_ms: m.at_ms,
            phone_number_id: self.phone_number_id.clone(),
            phone: to.clone(),
            wamid: Some(m.wamid.clone()),
            outcome: Some(SendOutcome::Accepted),
            content_type: Some(m.content_type),
            text: m.text,
            origin,
            ..SendEvent::default()
        })));
        if let Some(status) = status {
            events.push(Event::Status(Box::new(StatusEvent {
                wamid: m.wamid,
                status,
                at_ms: m.at_ms,
                recipient: to,
                user_id: None,
                parent_user_id: None,
                participant: None,
                phone_number_id: self.phone_number_id.clone(),
                correlation_id: None,
                conversation_id: None,
                conversation_type: None,
                conversation_expiry_ms: None,
                pricing_category: None,
                pricing_model: None,
                pricing_type: None,
                billable: None,
                errors: Vec::new(),
            })));
        }
    }
}

/// `smb_app_state_sync`: the business's own address book on a coexistence
/// number (`value.state_sync[]: {type: "contact", contact: {full_name,
/// first_name, phone_number}, action: "add" | "remove", metadata:
/// {timestamp}}`). One event per contact added, edited or removed, about
/// that person, carrying the name the business knows them by.
fn contact_syncs(change: &Change<'_, '_>) -> Vec<Event> {
    change.per_item("state_sync", |item, e| {
        if let Some(ms) = item
            .get("metadata")
            .and_then(|m| m.get("timestamp"))
            .and_then(|t| parse_meta_timestamp(Some(t), "").ok())
        {
            e.at_ms = ms;
        }
        e.wa_id = dig_str(item, &["contact", "phone_number"]).map(|p| normalize_phone(&p));
        e.name = dig_str(item, &["contact", "full_name"])
            .or_else(|| dig_str(item, &["contact", "first_name"]));
        let action = dig_str(item, &["action"]).unwrap_or_default();
        e.summary = format!(
            "smb_app_state_sync: {action} {}",
            e.name.as_deref().or(e.wa_id.as_deref()).unwrap_or_default()
        );
    })
}

/// `user_preferences`: one event per person who stopped or resumed
/// marketing messages (`value.user_preferences[]: {wa_id?, user_id?,
/// detail, category, value, timestamp}`), each about that person; an item
/// that says neither stop nor resume is kept as it came.
fn preferences(change: &Change<'_, '_>) -> Vec<Event> {
    change.per_item("user_preferences", |item, e| {
        e.wa_id = dig_str(item, &["wa_id"]).map(|w| normalize_phone(&w));
        e.user_id = dig_str(item, &["user_id"]);
        e.preference = dig_str(item, &["value"]).and_then(|v| Preference::parse(&v));
        if let Some(p) = e.preference {
            let category = dig_str(item, &["category"]).unwrap_or_default();
            e.summary = format!("user_preferences: {} {category}", p.as_str());
        }
    })
}

/// An account-level change whose value lists one item per person.
struct Change<'c, 'j> {
    object: &'c str,
    field: &'c str,
    value: &'c Json<'j>,
    account: Option<&'c str>,
    fallback_ms: i64,
}

impl Change<'_, '_> {
    /// One event per item of `value[list]`, each an [`other_change`] of the
    /// item with the envelope's business number, completed by `fill`; the
    /// value kept whole as one event when the list is missing or empty.
    fn per_item(&self, list: &str, fill: impl Fn(&Json<'_>, &mut OtherEvent)) -> Vec<Event> {
        let change = |v: &Json<'_>| {
            other_change(
                self.object,
                self.field,
                v,
                self.account.map(String::from),
                self.fallback_ms,
            )
        };
        let list = items(self.value, list);
        if list.is_empty() {
            return vec![Event::Other(Box::new(change(self.value)))];
        }
        list.iter()
            .map(|item| {
                let mut e = change(item);
                e.phone_number_id = dig_str(self.value, &["metadata", "phone_number_id"]);
                fill(item, &mut e);
                Event::Other(Box::new(e))
            })
            .collect()
    }
}

fn malformed(
    path: &str,
    reason: &str,
    account: Option<String>,
    at_ms: i64,
    value: &Json<'_>,
) -> Event {
    let mut text = String::new();
    all_strings(value, &mut text);
    Event::Other(Box::new(OtherEvent {
        field: "malformed".into(),
        account,
        phone_number_id: None,
        at_ms,
        summary: format!("malformed webhook part at {path}: {reason}"),
        text,
        template: None,
        language: None,
        error: None,
        ..OtherEvent::default()
    }))
}

fn other_change(
    object: &str,
    field: &str,
    value: &Json<'_>,
    account: Option<String>,
    fallback_ms: i64,
) -> OtherEvent {
    let mut text = String::new();
    all_strings(value, &mut text);
    // The event's own time: on the value, on the first item of a list in
    // it (`user_preferences[0].timestamp`), or on the entry (`fallback_ms`
    // is the entry's time when it has one, else the arrival).
    let own_time = |v: &Json<'_>| {
        ["timestamp", "event_time", "category_update_timestamp"]
            .iter()
            .find_map(|k| parse_meta_timestamp(v.get(k), "").ok())
    };
    let at_ms = own_time(value)
        .or_else(|| match value {
            Json::Object(members) => members
                .iter()
                .find_map(|(_, v)| v.as_array()?.first().and_then(own_time)),
            _ => None,
        })
        .unwrap_or(fallback_ms);
    let template =
        dig_str(value, &["message_template_name"]).or_else(|| dig_str(value, &["template_name"]));
    let event = dig_str(value, &["event"]);
    let first = |keys: &[&[&str]]| keys.iter().find_map(|k| dig_str(value, k));
    // The change as two columns: what it was and what it is now (a
    // category, a quality score, a messaging limit), else the event itself.
    let to = first(&[
        &["new_category"],
        &["new_quality_score"],
        &["current_limit"],
        &["whatsapp_business_manager_messaging_limit"],
        &["messaging_limit_tier"],
        &["max_daily_conversation_per_phone"],
    ]);
    let from = first(&[
        &["previous_category"],
        &["previous_quality_score"],
        &["old_limit"],
        &["previous_limit"],
    ]);
    let reason = first(&[
        &["reason"],
        &["disable_info", "reason"],
        &["other_info", "title"],
        &["violation_info", "violation_type"],
        &["restriction_info", "restriction_type"],
    ]);
    // A category or quality change, as "before -> after".
    let change = match (&from, &to) {
        (Some(before), Some(after)) => Some(format!("{before} -> {after}")),
        (None, Some(after)) if event.is_none() => Some(after.clone()),
        _ => None,
    };
    let mut summary = field.to_string();
    for part in [
        event.as_deref(),
        template.as_deref(),
        change.as_deref(),
        reason.as_deref(),
    ]
    .into_iter()
    .flatten()
    {
        summary.push_str(": ");
        summary.push_str(part);
    }
    if object != "whatsapp_business_account" {
        summary = format!("{object} {summary}");
    }
    OtherEvent {
        field: if field.is_empty() {
            "unknown".into()
        } else {
            field.to_string()
        },
        account,
        phone_number_id: dig_str(value, &["metadata", "phone_number_id"]),
        at_ms,
        summary,
        text,
        template,
        language: dig_str(value, &["message_template_language"]),
        to: to.or(event),
        from,
        reason,
        wa_id: None,
        user_id: None,
        preference: None,
        name: None,
        error: value
            .get("error")
            .or_else(|| value.get("errors").and_then(|e| e.at(0)))
            .map(status_error),
    }
}

fn parse_messages_value(
    value: &Json<'_>,
    vpath: &str,
    account: Option<&str>,
    // The entry's time when it has one, else the arrival: the time of what
    // carries none of its own (a `value.errors` item, a malformed part).
    fallback_ms: i64,
    events: &mut Vec<Event>,
) {
    let phone_number_id = dig_str(value, &["metadata", "phone_number_id"]);
    let contacts: Vec<WebhookContact> = value
        .get("contacts")
        .and_then(Json::as_array)
        .map(|cs| cs.iter().map(WebhookContact::parse).collect())
        .unwrap_or_default();
    let list = |key: &str| {
        value
            .get(key)
            .and_then(Json::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    };
    for (si, st) in list("statuses").iter().enumerate() {
        let path = index(&join(vpath, "statuses"), si);
        match parse_status(st, &path, phone_number_id.clone()) {
            Ok(Some(ev)) => events.push(Event::Status(Box::new(ev))),
            Ok(None) => events.push(Event::Other(Box::new(other_change(
                "whatsapp_business_account",
                "status",
                st,
                account.map(String::from),
                fallback_ms,
            )))),
            Err(e) => events.push(malformed(
                &path,
                &e.to_string(),
                account.map(String::from),
                fallback_ms,
                st,
            )),
        }
    }
    for (mi, msg) in list("messages").iter().enumerate() {
        let path = index(&join(vpath, "messages"), mi);
        match parse_inbound(msg, &path, phone_number_id.clone(), &contacts) {
            Ok(ev) => events.push(Event::Inbound(Box::new(ev))),
            Err(e) => events.push(malformed(
                &path,
                &e.to_string(),
                account.map(String::from),
                fallback_ms,
                msg,
            )),
        }
    }
    for (ai, action) in list("user_actions").iter().enumerate() {
        let path = index(&join(vpath, "user_actions"), ai);
        match parse_user_action(action, &path, phone_number_id.clone(), &contacts) {
            Ok(ev) => events.push(Event::Inbound(Box::new(ev))),
            Err(e) => events.push(malformed(
                &path,
                &e.to_string(),
                account.map(String::from),
                fallback_ms,
                action,
            )),
        }
    }
    for err in list("errors") {
        let mut text = String::new();
        all_strings(err, &mut text);
        let error = status_error(err);
        events.push(Event::Other(Box::new(OtherEvent {
            field: "errors".into(),
            account: account.map(String::from),
            phone_number_id: phone_number_id.clone(),
            at_ms: fallback_ms,
            summary: format!(
                "webhook error {}: {}",
                error.code.map(|c| c.to_string()).unwrap_or_default(),
                error.title.clone().unwrap_or_default()
            ),
            text,
            template: None,
            language: None,
            error: Some(error),
            ..OtherEvent::default()
        })));
    }
}

/// One of `value.contacts[]`: the person a message came from, as Meta
/// names them (`{profile: {name, username?}, wa_id?, user_id?,
/// parent_user_id?}`).
#[derive(Default)]
struct WebhookContact {
    wa_id: Option<String>,
    user_id: Option<String>,
    parent_user_id: Option<String>,
    name: Option<String>,
    username: Option<String>,
}

impl WebhookContact {
    fn parse(c: &Json<'_>) -> WebhookContact {
        WebhookContact {
            wa_id: dig_str(c, &["wa_id"]).map(|w| normalize_phone(&w)),
            user_id: dig_str(c, &["user_id"]),
            parent_user_id: dig_str(c, &["parent_user_id"]),
            name: dig_str(c, &["profile", "name"]),
            username: dig_str(c, &["profile", "username"]).map(|u| normalize_username(&u)),
        }
    }

    /// The contact a message from `from` / `user_id` came from: the one
    /// that names either, or the only one there is.
    fn of<'c>(
        contacts: &'c [WebhookContact],
        from: Option<&str>,
        user_id: Option<&str>,
    ) -> Option<&'c WebhookContact> {
        contacts
            .iter()
            .find(|c| {
                (from.is_some() && c.wa_id.as_deref() == from)
                    || (user_id.is_some() && c.user_id.as_deref() == user_id)
            })
            .or(match contacts {
                [only] => Some(only),
                _ => None,
            })
    }
}

/// A person's action on a message (`value.user_actions[]`, Marketing
/// Messages API): a link click (`{action_type:
/// "marketing_messages_link_click", timestamp,
/// marketing_messages_link_click_data: {click_component, product_id?,
/// click_id, tracking_token}}`). It is an inbound entry of content type
/// `link_click`, kept whole in its text, and a click on the message it
/// names by wamid (`message_id`, `id` or `context.id`); one that names none
/// stays unlinked (never inferred) and is found by its tracking token.
fn parse_user_action(
    action: &Json<'_>,
    path: &str,
    phone_number_id: Option<String>,
    contacts: &[WebhookContact],
) -> Result<InboundEvent, ParseError> {
    let at = At::new(action, path);
    let kind = at
        .str_or_none("action_type")
        .unwrap_or_else(|| "user_action".into());
    let at_ms = parse_meta_timestamp(action.get("timestamp"), &join(path, "timestamp"))?;
    let data = action
        .get("marketing_messages_link_click_data")
        .unwrap_or(&Json::Null);
    let click_id = dig_str(data, &["click_id"]);
    let named = dig_str(action, &["message_id"])
        .or_else(|| dig_str(data, &["message_id"]))
        .or_else(|| dig_str(action, &["context", "id"]))
        .or_else(|| dig_str(action, &["id"]).filter(|i| i.starts_with("wamid.")));
    // An action has no wamid of its own: the click id names it, else its
    // kind, time and message (so a redelivery is the same action).
    let id = click_id
        .clone()
        .unwrap_or_else(|| format!("{kind}:{at_ms}:{}", named.as_deref().unwrap_or_default()));
    let contact = WebhookContact::of(contacts, None, None);
    let mut text = String::new();
    all_strings(action, &mut text);
    let component = dig_str(data, &["click_component"]).unwrap_or_else(|| "link".into());
    Ok(InboundEvent {
        wamid: format!("action.{id}"),
        from: contact.and_then(|c| c.wa_id.clone()),
        contact_name: contact.and_then(|c| c.name.clone()),
        user_id: contact.and_then(|c| c.user_id.clone()),
        parent_user_id: contact.and_then(|c| c.parent_user_id.clone()),
        username: contact.and_then(|c| c.username.clone()),
        identity_change: None,
        phone_number_id,
        at_ms,
        content_type: if kind == "marketing_messages_link_click" {
            "link_click".into()
        } else {
            kind
        },
        text,
        context_wamid: named,
        // A click, not a reply: what it clicked.
        button: Some(format!("link:{component}")),
        referral: None,
        tracking_token: dig_str(data, &["tracking_token"]),
        errors: Vec::new(),
        origin: Origin::Api,
    })
}

/// An error in a status or message (`{code, title, message, error_data: {details}}`).
fn status_error(e: &Json<'_>) -> MetaError {
    let mut m = meta_error_from_send(e);
    if m.title.is_none() {
        m.title = dig_str(e, &["message"]);
    }
    m
}

/// Parses one status; `Ok(None)` for a status name this build does not know
/// (kept as another event, never rejected).
fn parse_status(
    st: &Json<'_>,
    path: &str,
    phone_number_id: Option<String>,
) -> Result<Option<StatusEvent>, ParseError> {
    let at = At::new(st, path);
    let wamid = at.req_str("id")?;
    let status_name = at.req_str("status")?;
    let Some(status) = WebhookStatus::parse(&status_name) else {
        return Ok(None);
    };
    let at_ms = parse_meta_timestamp(st.get("timestamp"), &join(path, "timestamp"))?;
    let errors = st
        .get("errors")
        .and_then(Json::as_array)
        .map(|es| es.iter().map(status_error).collect())
        .unwrap_or_default();
    let conversation = st.get("conversation");
    Ok(Some(StatusEvent {
        wamid,
        status,
        at_ms,
        recipient: at.str_or_none("recipient_id").map(|r| normalize_phone(&r)),
        user_id: at.str_or_none("recipient_user_id"),
        participant: at.str_or_none("recipient_participant_id"),
        // Meta's examples spell it both ways.
        parent_user_id: at
            .str_or_none("parent_recipient_user_id")
            .or_else(|| at.str_or_none("parent_user_id")),
        phone_number_id,
        correlation_id: at.str_or_none("biz_opaque_callback_data"),
        conversation_id: conversation.and_then(|c| dig_str(c, &["id"])),
        conversation_type: conversation.and_then(|c| dig_str(c, &["origin", "type"])),
        conversation_expiry_ms: conversation
            .and_then(|c| c.get("expiration_timestamp"))
            .and_then(|t| parse_meta_timestamp(Some(t), "").ok()),
        pricing_category: dig_str(st, &["pricing", "category"]),
        pricing_model: dig_str(st, &["pricing", "pricing_model"]),
        pricing_type: dig_str(st, &["pricing", "type"]),
        billable: st
            .get("pricing")
            .and_then(|p| p.get("billable"))
            .and_then(Json::as_bool),
        errors,
    }))
}

fn parse_inbound(
    msg: &Json<'_>,
    path: &str,
    phone_number_id: Option<String>,
    contacts: &[WebhookContact],
) -> Result<InboundEvent, ParseError> {
    let at = At::new(msg, path);
    let wamid = at.req_str("id")?;
    let at_ms = parse_meta_timestamp(msg.get("timestamp"), &join(path, "timestamp"))?;
    let content_type = at.str_or_none("type").unwrap_or_else(|| "unknown".into());
    let from = at.str_or_none("from").map(|f| normalize_phone(&f));
    let from_user_id = at.str_or_none("from_user_id");
    let contact = WebhookContact::of(contacts, from.as_deref(), from_user_id.as_deref());
    let contact_name = contact.and_then(|c| c.name.clone());
    let user_id = from_user_id.or_else(|| contact.and_then(|c| c.user_id.clone()));
    let parent_user_id = at
        .str_or_none("from_parent_user_id")
        .or_else(|| contact.and_then(|c| c.parent_user_id.clone()));
    let username = contact.and_then(|c| c.username.clone());
    // A person whose number is hidden has only a user id: `from` stays
    // empty rather than holding it.
    let from = from.or_else(|| contact.and_then(|c| c.wa_id.clone()));
    let identity_change = msg.get("system").and_then(|sys| {
        let id = |k: &str| dig_str(sys, &[k]);
        let change = IdentityChange {
            wa_id: id("wa_id").map(|w| normalize_phone(&w)),
            new_wa_id: id("new_wa_id").map(|w| normalize_phone(&w)),
            user_id: id("user_id"),
            new_user_id: id("new_user_id"),
        };
        (change != IdentityChange::default()).then_some(change)
    });
    let mut text = String::new();
    let mut button = None;
    let push = |t: &mut String, s: Option<String>| {
        if let Some(s) = s.filter(|s| !s.is_empty()) {
            if !t.is_empty() {
                t.push('\n');
            }
            t.push_str(&s);
        }
    };
    let ct = content_type.as_str();
    match ct {
        "text" => push(&mut text, dig_str(msg, &["text", "body"])),
        "image" | "video" | "audio" | "document" | "sticker" => {
            push(&mut text, dig_str(msg, &[ct, "caption"]));
            push(&mut text, dig_str(msg, &[ct, "filename"]));
        }
        "button" => {
            push(&mut text, dig_str(msg, &["button", "text"]));
            button =
                dig_str(msg, &["button", "payload"]).or_else(|| dig_str(msg, &["button", "text"]));
        }
        "interactive" => {
            for kind in ["button_reply", "list_reply"] {
                if let Some(r) = msg.get("interactive").and_then(|i| i.get(kind)) {
                    push(&mut text, dig_str(r, &["title"]));
                    push(&mut text, dig_str(r, &["description"]));
                    button = dig_str(r, &["id"]).or_else(|| dig_str(r, &["title"]));
                }
            }
            if let Some(n) = msg.get("interactive").and_then(|i| i.get("nfm_reply")) {
                push(&mut text, dig_str(n, &["body"]));
                push(&mut text, dig_str(n, &["response_json"]));
            }
        }
        "reaction" => push(&mut text, dig_str(msg, &["reaction", "emoji"])),
        "location" => {
            for k in ["name", "address"] {
                push(&mut text, dig_str(msg, &["location", k]));
            }
        }
        "contacts" => {
            if let Some(cs) = msg.get("contacts") {
                let mut all = String::new();
                all_strings(cs, &mut all);
                push(&mut text, Some(all));
            }
        }
        "order" => {
            push(&mut text, dig_str(msg, &["order", "text"]));
            push(&mut text, dig_str(msg, &["order", "catalog_id"]));
        }
        "system" => push(&mut text, dig_str(msg, &["system", "body"])),
        _ => {}
    }
    let referral = msg.get("referral").map(|r| {
        let mut s = String::new();
        for k in ["source_type", "source_url", "headline", "body"] {
            push(&mut s, dig_str(r, &[k]));
        }
        s
    });
    if let Some(r) = &referral {
        push(&mut text, Some(r.clone()));
    }
    let errors: Vec<MetaError> = msg
        .get("errors")
        .and_then(Json::as_array)
        .map(|es| es.iter().map(status_error).collect())
        .unwrap_or_default();
    Ok(InboundEvent {
        wamid,
        from,
        contact_name,
        user_id,
        parent_user_id,
        username,
        identity_change,
        phone_number_id,
        at_ms,
        content_type,
        text,
        context_wamid: dig_str(msg, &["context", "id"]),
        button,
        referral,
        tracking_token: None,
        errors,
        origin: Origin::Api,
    })
}
