//! Entries as the engine hands them out: every column of a row, an entry's
//! raw inputs, a message's timeline.

use crate::model::*;
use crate::state::own::Own;
use crate::state::{Row, State};
use serde::{Deserialize, Serialize};

/// The entry of a row, its strings resolved through `state`'s interner.
pub(super) fn entry_of(state: &State, id: EntryId, r: &Row) -> Entry {
    let i = &state.interner;
    let shown = state.shown_text(r);
    Entry {
        id,
        direction: r.direction,
        status: r.status,
        recorded_ms: r.recorded_ms,
        offset_s: r.offset_s,
        category: i.opt(r.category),
        name: i.opt(r.name),
        template: i.opt(r.template),
        template_language: i.opt(r.language),
        response_code: r.response_code,
        recipient_type: i.opt(r.recipient_type),
        recipient_ref: i.opt(r.recipient_ref),
        user: i.opt(r.user),
        subaccount: i.opt(r.subaccount),
        phone_number_id: i.opt(r.phone_number_id),
        phone: i.opt(r.phone),
        wa_id: i.opt(r.wa_id),
        contact_name: i.opt(r.contact_name),
        user_id: i.opt(r.user_id),
        parent_user_id: i.opt(r.parent_user_id),
        username: i.opt(r.username),
        event_from: i.opt(r.event_from),
        event_to: i.opt(r.event_to),
        event_reason: i.opt(r.event_reason),
        wamid: r.own.get(Own::Wamid).map(str::to_string),
        correlation_id: non_empty(r.own.text(Own::CorrelationId)),
        content_type: i.opt(r.content_type),
        text: shown.text.into_owned(),
        template_known: shown.template_known,
        render_error: shown.render_error,
        button: i.opt(r.button),
        error_code: r.error_code.get(),
        error_title: i.opt(r.error_title),
        conversation_id: non_empty(r.own.text(Own::ConversationId)),
        conversation_type: i.opt(r.conversation_type),
        conversation_expiry_ms: r.conversation_expiry_ms.get(),
        pricing_category: i.opt(r.pricing_category),
        pricing_model: i.opt(r.pricing_model),
        pricing_type: i.opt(r.pricing_type),
        source: match r.direction {
            Direction::Event => None,
            _ => Some(r.origin),
        },
        billable: r.charged,
        country: i.opt(r.country),
        session: r.session,
        in_reply_to: r.in_reply_to,
        attribution: r.in_reply_to.map(|_| {
            if r.quoted {
                Attribution::Quoted
            } else {
                Attribution::Inferred
            }
        }),
        replies: r.replies,
        clicks: r.clicks,
        sent_ms: first_mark(&r.marks, WebhookStatus::Sent),
        delivered_ms: first_mark(&r.marks, WebhookStatus::Delivered),
        read_ms: first_mark(&r.marks, WebhookStatus::Read),
        failed_ms: first_mark(&r.marks, WebhookStatus::Failed),
        has_send: r.send.is_some(),
    }
}

/// Absent and empty read the same in an [`Entry`], as interned strings do.
pub(super) fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

pub(super) fn first_mark(marks: &[StatusMark], status: WebhookStatus) -> Option<i64> {
    marks
        .iter()
        .filter(|m| m.status == status)
        .map(|m| m.at_ms)
        .min()
}

/// High-cardinality columns that have no bitmap index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextColumn {
    /// Recipient or sender phone.
    Phone,
    /// Correlation id.
    CorrelationId,
    /// Message id.
    Wamid,
    /// Conversation id.
    ConversationId,
    /// The CRM's recipient reference.
    RecipientRef,
    /// The message text preview.
    Text,
}

/// One entry as the log table shows it: every column of both reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The entry id (the table's `#`).
    pub id: EntryId,
    /// outbound (MT), inbound (MO) or event.
    pub direction: Direction,
    /// Current status.
    pub status: Status,
    /// Recorded on, UTC milliseconds.
    pub recorded_ms: i64,
    /// The original UTC offset of the recorded time, seconds.
    pub offset_s: i32,
    /// Category (marketing campaign, template bot...).
    pub category: Option<String>,
    /// Campaign, bot or automation name.
    pub name: Option<String>,
    /// Template name.
    pub template: Option<String>,
    /// Template language.
    pub template_language: Option<String>,
    /// HTTP response code.
    pub response_code: Option<u16>,
    /// Recipient type (lead, customer, contact).
    pub recipient_type: Option<String>,
    /// CRM contact reference.
    pub recipient_ref: Option<String>,
    /// User who sent it.
    pub user: Option<String>,
    /// Subaccount.
    pub subaccount: Option<String>,
    /// Business phone number id.
    pub phone_number_id: Option<String>,
    /// Customer phone.
    pub phone: Option<String>,
    /// WhatsApp user id.
    pub wa_id: Option<String>,
    /// The person's profile name.
    pub contact_name: Option<String>,
    /// The person's business-scoped user id (BSUID).
    pub user_id: Option<String>,
    /// The person's parent business-scoped user id.
    pub parent_user_id: Option<String>,
    /// The person's WhatsApp username.
    pub username: Option<String>,
    /// An account or template event's value before the change.
    pub event_from: Option<String>,
    /// An account or template event's value after it (or the event).
    pub event_to: Option<String>,
    /// The reason an account or template event gives.
    pub event_reason: Option<String>,
    /// Message id.
    pub wamid: Option<String>,
    /// Correlation id.
    pub correlation_id: Option<String>,
    /// Content type.
    pub content_type: Option<String>,
    /// Message text (preview); a templated send's rendered text.
    pub text: String,
    /// For a templated send: whether its template's definition is known
    /// (else `text` is its parameters, one per line).
    pub template_known: Option<bool>,
    /// For a templated send: why its parameters do not fit its template's
    /// definition (what Meta rejects with 132000).
    pub render_error: Option<String>,
    /// Button payload of a quick-reply click.
    pub button: Option<String>,
    /// Meta error code.
    pub error_code: Option<i64>,
    /// Meta error title.
    pub error_title: Option<String>,
    /// Conversation id.
    pub conversation_id: Option<String>,
    /// Conversation type (origin).
    pub conversation_type: Option<String>,
    /// Conversation expiry, UTC milliseconds.
    pub conversation_expiry_ms: Option<i64>,
    /// Pricing category.
    pub pricing_category: Option<String>,
    /// Pricing model (CBP, PMP).
    pub pricing_model: Option<String>,
    /// Per-message pricing type (regular, free_customer_service...).
    pub pricing_type: Option<String>,
    /// Where the message was sent or seen (api, app, history).
    pub source: Option<Origin>,
    /// Whether Meta charges for the message: `pricing.type` regular (or,
    /// on traffic without a type, `pricing.billable`). `None` until a
    /// status brought pricing.
    pub billable: Option<bool>,
    /// The person's country (ISO 3166-1 alpha-2): their number's calling
    /// code, else their business-scoped user id's prefix.
    pub country: Option<String>,
    /// Whether a 24 h session was open at send time.
    pub session: Option<Session>,
    /// The outbound message an inbound one answers.
    pub in_reply_to: Option<EntryId>,
    /// How the reply was tied to `in_reply_to`: quoted or inferred.
    pub attribution: Option<Attribution>,
    /// Replies received to this message.
    pub replies: u32,
    /// Quick-reply clicks on this message.
    pub clicks: u32,
    /// First `sent` status time.
    pub sent_ms: Option<i64>,
    /// First `delivered` status time.
    pub delivered_ms: Option<i64>,
    /// First `read` status time.
    pub read_ms: Option<i64>,
    /// First `failed` status time.
    pub failed_ms: Option<i64>,
    /// Whether a send result was logged (false: known only from webhooks).
    pub has_send: bool,
}

/// An entry with every input it came from.
#[derive(Clone, Debug)]
pub struct EntryDetail {
    /// The entry's columns.
    pub entry: Entry,
    /// The inputs, in log order.
    pub inputs: Vec<StoredInput>,
}

/// One stored input of an entry.
#[derive(Clone, Debug)]
pub struct StoredInput {
    /// Its log record.
    pub seq: Seq,
    /// Where it came from.
    pub source: Source,
    /// When it was received, UTC milliseconds.
    pub received_ms: i64,
    /// The exact bytes received.
    pub raw: Vec<u8>,
    /// The events of this input that belong to the entry.
    pub events: Vec<Event>,
}

/// A message's timeline.
#[derive(Clone, Debug, Serialize)]
pub struct Timeline {
    /// The message's entry.
    pub entry: Entry,
    /// What happened, in time order.
    pub items: Vec<TimelineItem>,
}

/// One step of a timeline.
#[derive(Clone, Debug, Serialize)]
pub struct TimelineItem {
    /// When, UTC milliseconds.
    pub at_ms: i64,
    /// `send`, `status`, `inbound`, `reply` or `click`.
    pub kind: String,
    /// The status reached, for `send` and `status`.
    pub status: Option<String>,
    /// The error code, when the step failed.
    pub error_code: Option<i64>,
    /// The entry the step belongs to (replies are entries of their own).
    pub entry: EntryId,
    /// The text of a reply or the title of a click.
    pub text: Option<String>,
    /// In a group, the member a status is about (`recipient_participant_id`).
    pub participant: Option<String>,
}

/// Entry `id`'s timeline as its row and its replies tell it, and, for a
/// group message, the seqs of its records (whose statuses name the members:
/// [`name_group_members`] reads them). Items are not yet in time order.
pub(super) fn timeline_of(state: &State, id: EntryId) -> Option<(Timeline, Option<Vec<Seq>>)> {
    let row = state.row(id)?;
    let entry = entry_of(state, id, &row);
    let mut items = Vec::new();
    if let Some(outcome) = row.send {
        items.push(TimelineItem {
            at_ms: row.recorded_ms,
            kind: "send".into(),
            status: Some(
                match outcome {
                    SendOutcome::Accepted => Status::Accepted,
                    SendOutcome::Held => Status::Held,
                    SendOutcome::Paused => Status::Paused,
                    SendOutcome::Rejected => Status::Rejected,
                    SendOutcome::NoResponse => Status::NoResponse,
                }
                .as_str()
                .to_string(),
            ),
            error_code: row.error_code.get().filter(|_| row.marks.is_empty()),
            entry: id,
            // A templated send: the text the person read.
            text: entry.template_known.map(|_| entry.text.clone()),
            participant: None,
        });
    }
    if row.direction == Direction::Inbound {
        items.push(TimelineItem {
            at_ms: row.recorded_ms,
            kind: "inbound".into(),
            status: None,
            error_code: None,
            entry: id,
            text: Some(row.own.text(Own::Text).to_string()),
            participant: None,
        });
    }
    for m in &row.marks {
        items.push(TimelineItem {
            at_ms: m.at_ms,
            kind: "status".into(),
            status: Some(m.status.as_str().to_string()),
            error_code: m.error_code(),
            entry: id,
            text: None,
            participant: None,
        });
    }
    for reply in state.replies_to(id) {
        if let Some(r) = state.row(reply) {
            items.push(TimelineItem {
                at_ms: r.recorded_ms,
                kind: if r.button != 0 {
                    "click".into()
                } else {
                    "reply".into()
                },
                status: None,
                error_code: None,
                entry: reply,
                text: Some(if r.button != 0 {
                    state.interner.resolve(r.button).to_string()
                } else {
                    r.own.text(Own::Text).to_string()
                }),
                participant: None,
            });
        }
    }
    let group = state.names_group_members(id).then(|| row.records.to_vec());
    Some((Timeline { entry, items }, group))
}

/// A group message's statuses, one per member they are about
/// (`recipient_participant_id`), in place of the status steps their marks
/// made: the marks keep one step per time and status, and two members
/// reading at one second are two steps. `events` are the entry's own, from
/// its records (a handful: only a group message's timeline reads them).
pub(super) fn name_group_members(id: EntryId, events: &[Event], items: &mut Vec<TimelineItem>) {
    let mut members: Vec<TimelineItem> = Vec::new();
    for event in events {
        let Event::Status(st) = event else { continue };
        let Some(member) = &st.participant else {
            continue;
        };
        let item = TimelineItem {
            at_ms: st.at_ms,
            kind: "status".into(),
            status: Some(st.status.as_str().to_string()),
            error_code: st.errors.first().and_then(|e| e.code),
            entry: id,
            text: None,
            participant: Some(member.clone()),
        };
        let seen = members.iter().any(|m| {
            (m.at_ms, &m.status, m.error_code, &m.participant)
                == (item.at_ms, &item.status, item.error_code, &item.participant)
        });
        if !seen {
            members.push(item);
        }
    }
    if members.is_empty() {
        return;
    }
    items.retain(|i| {
        i.kind != "status"
            || !members
                .iter()
                .any(|m| (m.at_ms, &m.status) == (i.at_ms, &i.status))
    });
    items.extend(members);
}
