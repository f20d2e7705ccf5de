//! The domain model: what an entry is, what events attach to it, and how the
//! current status of a message is derived from its status events.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Dense identifier of a log entry (one message). Ids are assigned in append
/// order, never reused, and are the values stored in every bitmap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EntryId(pub u32);

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Sequence number of a record in the append-only log. Strictly increasing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Seq(pub u64);

/// Which way a message went. `Event` entries are account-level webhooks
/// (template status, quality, alerts...) and webhook-level errors: not
/// messages, but kept and searchable like them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Direction {
    /// Business to customer ("MT"): a send attempt.
    Outbound,
    /// Customer to business ("MO"): an inbound message.
    Inbound,
    /// An account-level webhook or webhook error, not a message.
    Event,
}

impl Direction {
    /// The name used in filters and APIs.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Outbound => "outbound",
            Direction::Inbound => "inbound",
            Direction::Event => "event",
        }
    }
    /// Parses the API name, also accepting the market's `mt` / `mo`.
    pub fn parse(s: &str) -> Option<Direction> {
        match s.to_ascii_lowercase().as_str() {
            "outbound" | "mt" | "sent" => Some(Direction::Outbound),
            "inbound" | "mo" | "received" => Some(Direction::Inbound),
            "event" => Some(Direction::Event),
            _ => None,
        }
    }
}

/// A status reported by a status webhook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum WebhookStatus {
    /// One tick: left Meta's servers.
    Sent,
    /// Two ticks: reached a device.
    Delivered,
    /// Blue ticks.
    Read,
    /// A voice message was played.
    Played,
    /// Meta could not deliver (carries errors).
    Failed,
    /// Older accounts: the user deleted the message.
    Deleted,
    /// Older accounts: an informational warning (e.g. catalog item missing).
    Warning,
}

impl WebhookStatus {
    /// Parses Meta's lowercase status name.
    pub fn parse(s: &str) -> Option<WebhookStatus> {
        Some(match s {
            "sent" => WebhookStatus::Sent,
            "delivered" => WebhookStatus::Delivered,
            "read" => WebhookStatus::Read,
            "played" => WebhookStatus::Played,
            "failed" => WebhookStatus::Failed,
            "deleted" => WebhookStatus::Deleted,
            "warning" => WebhookStatus::Warning,
            _ => return None,
        })
    }
    /// Meta's name of the status.
    pub fn as_str(self) -> &'static str {
        self.as_status().as_str()
    }
    fn as_status(self) -> Status {
        match self {
            WebhookStatus::Sent => Status::Sent,
            WebhookStatus::Delivered => Status::Delivered,
            WebhookStatus::Read => Status::Read,
            WebhookStatus::Played => Status::Played,
            WebhookStatus::Failed => Status::Failed,
            WebhookStatus::Deleted => Status::Deleted,
            WebhookStatus::Warning => Status::Warning,
        }
    }
    /// Position in the forward-only progression; `None` for statuses that
    /// are not steps of delivery (failed, warning).
    fn delivery_rank(self) -> Option<u8> {
        match self {
            WebhookStatus::Sent => Some(1),
            WebhookStatus::Delivered => Some(2),
            WebhookStatus::Read => Some(3),
            WebhookStatus::Played => Some(4),
            WebhookStatus::Deleted => Some(5),
            WebhookStatus::Failed | WebhookStatus::Warning => None,
        }
    }
}

/// The current status of an entry, as shown in the log table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Status {
    /// Accepted by the Cloud API (HTTP 200), no webhook yet.
    Accepted,
    /// Accepted but held for quality assessment.
    Held,
    /// Accepted but paused (template paused).
    Paused,
    /// The API answered with an error: never left the business.
    Rejected,
    /// No HTTP response at all (timeout, connection refused).
    NoResponse,
    /// One tick.
    Sent,
    /// Two grey ticks.
    Delivered,
    /// Two blue ticks.
    Read,
    /// A voice message was played.
    Played,
    /// Meta reported the message failed and nothing was delivered.
    Failed,
    /// The user deleted the message (older accounts).
    Deleted,
    /// Only a warning was reported.
    Warning,
    /// An inbound message from a customer.
    Received,
    /// An account-level event entry.
    Logged,
}

impl Status {
    /// Every status, in display order.
    pub const ALL: [Status; 14] = [
        Status::Accepted,
        Status::Held,
        Status::Paused,
        Status::Rejected,
        Status::NoResponse,
        Status::Sent,
        Status::Delivered,
        Status::Read,
        Status::Played,
        Status::Failed,
        Status::Deleted,
        Status::Warning,
        Status::Received,
        Status::Logged,
    ];
    /// The API name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Accepted => "accepted",
            Status::Held => "held_for_quality_assessment",
            Status::Paused => "paused",
            Status::Rejected => "rejected",
            Status::NoResponse => "no_response",
            Status::Sent => "sent",
            Status::Delivered => "delivered",
            Status::Read => "read",
            Status::Played => "played",
            Status::Failed => "failed",
            Status::Deleted => "deleted",
            Status::Warning => "warning",
            Status::Received => "received",
            Status::Logged => "logged",
        }
    }
    /// Parses an API name.
    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.iter().copied().find(|st| st.as_str() == s)
    }
}

/// One status event attached to an entry, as kept in its timeline.
/// Ordered by time, then status, then error code.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StatusMark {
    /// Meta's timestamp of the event, in milliseconds since the epoch.
    pub at_ms: i64,
    /// The reported status.
    pub status: WebhookStatus,
    /// The error code, `i64::MIN` for none: 24 bytes a mark instead of 32,
    /// and there are 2-3 marks per message. (`i64::MIN` also orders first,
    /// where `None` did.)
    error_code: i64,
}

impl StatusMark {
    /// A mark; `error_code` is the first error code of a failed status.
    pub fn new(at_ms: i64, status: WebhookStatus, error_code: Option<i64>) -> StatusMark {
        StatusMark {
            at_ms,
            status,
            error_code: error_code.unwrap_or(i64::MIN),
        }
    }

    /// The first error code of a failed status.
    pub fn error_code(&self) -> Option<i64> {
        (self.error_code != i64::MIN).then_some(self.error_code)
    }
}

/// What the send result itself says, before any webhook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SendOutcome {
    /// HTTP 200 with `message_status` (absent means accepted).
    Accepted,
    /// HTTP 200, held for quality assessment.
    Held,
    /// HTTP 200, paused.
    Paused,
    /// HTTP error answer.
    Rejected,
    /// No answer at all.
    NoResponse,
}

impl SendOutcome {
    fn status(self) -> Status {
        match self {
            SendOutcome::Accepted => Status::Accepted,
            SendOutcome::Held => Status::Held,
            SendOutcome::Paused => Status::Paused,
            SendOutcome::Rejected => Status::Rejected,
            SendOutcome::NoResponse => Status::NoResponse,
        }
    }
}

/// Derives the current status of an outbound message from its send outcome
/// and the set of its status events.
///
/// The rules (see `CLOUD_API.md`): the delivery steps rank
/// sent < delivered < read < played < deleted and the highest one reached
/// wins, whatever order events arrived in and whatever their timestamps, so a
/// status never moves backwards; `failed` counts only when no delivery step
/// beyond `sent` was reached (delivered + failed means delivered to another
/// device); `warning` alone leaves the send outcome visible unless nothing
/// else is known. The result depends only on the *set* of events, which
/// makes replay, permutation and duplication harmless.
pub fn derive_status(send: Option<SendOutcome>, marks: &[StatusMark]) -> Status {
    let best = marks
        .iter()
        .filter_map(|m| m.status.delivery_rank().map(|r| (r, m.status)))
        .max_by_key(|(r, _)| *r);
    let failed = marks.iter().any(|m| m.status == WebhookStatus::Failed);
    match best {
        Some((rank, status)) if rank >= 2 => status.as_status(),
        _ if failed => Status::Failed,
        Some((_, status)) => status.as_status(),
        None => match send {
            Some(outcome) => outcome.status(),
            None if marks.iter().any(|m| m.status == WebhookStatus::Warning) => Status::Warning,
            None => Status::Accepted,
        },
    }
}

/// An error as Meta reports it, in a failed send or a failed status.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MetaError {
    /// Meta's numeric code (`code`); the key of all error logic.
    pub code: Option<i64>,
    /// The short title (`title`, or the part after `(#CODE)` in `message`).
    pub title: Option<String>,
    /// The longer message.
    pub message: Option<String>,
    /// `error_data.details`.
    pub details: Option<String>,
    /// `error_subcode`, when given.
    pub subcode: Option<i64>,
}

/// One template parameter value, in the order it appears in the request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TemplateParam {
    /// `header`, `body` or `button`.
    pub component: String,
    /// The named parameter (`parameter_name`) or the positional index (`1`, `2`...).
    pub name: String,
    /// The parameter's type (`text`, `currency`, `date_time`, `image`, `payload`...).
    pub kind: String,
    /// The value as a person would read it (fallback values for currency and date).
    pub value: String,
}

/// An outbound send attempt, as reported by the sending application or the proxy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SendEvent {
    /// When the attempt was made, UTC milliseconds.
    pub recorded_ms: i64,
    /// The original UTC offset of `recorded_at`, in seconds.
    pub offset_s: i32,
    /// `marketing_campaign`, `template_bot`, `message_bot` or any string.
    pub category: Option<String>,
    /// Campaign, bot or automation name.
    pub name: Option<String>,
    /// `lead`, `customer`, `contact` or any string.
    pub recipient_type: Option<String>,
    /// The CRM's reference of the recipient.
    pub recipient_ref: Option<String>,
    /// Who triggered the send.
    pub user: Option<String>,
    /// Subaccount (tenant inside the business).
    pub subaccount: Option<String>,
    /// The sending phone number id.
    pub phone_number_id: Option<String>,
    /// Correlation id (given, or `biz_opaque_callback_data`).
    pub correlation_id: Option<String>,
    /// Recipient phone as sent (`request.to`), digits only.
    pub phone: Option<String>,
    /// WhatsApp user id from the response (`contacts[0].wa_id`).
    pub wa_id: Option<String>,
    /// The person's business-scoped user id (BSUID): the one the send
    /// addressed, or the response's `contacts[0].user_id`.
    #[serde(default)]
    pub user_id: Option<String>,
    /// The message id, when the API accepted the message.
    pub wamid: Option<String>,
    /// HTTP status, `None` when no response came.
    pub response_code: Option<u16>,
    /// What the send result says.
    pub outcome: Option<SendOutcome>,
    /// `text`, `template`, `image`, `interactive`...
    pub content_type: Option<String>,
    /// Template name for template sends.
    pub template: Option<String>,
    /// Template language code.
    pub template_language: Option<String>,
    /// Template parameters in order.
    pub params: Vec<TemplateParam>,
    /// Searchable rendering of what was sent (body text, caption, parameters).
    pub text: String,
    /// The error of a failed send.
    pub error: Option<MetaError>,
    /// Transport error text when no response came.
    pub transport_error: Option<String>,
    /// `context.message_id` when the send replies to a customer message.
    pub reply_to: Option<String>,
    /// Identity of a send without wamid, for deduplication (request and
    /// time); 0 when the send has a wamid, which identifies it instead.
    pub fingerprint: u64,
    /// Where it was sent from.
    #[serde(default)]
    pub origin: Origin,
}

/// A status webhook for an outbound message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusEvent {
    /// The message's wamid.
    pub wamid: String,
    /// The reported status.
    pub status: WebhookStatus,
    /// Meta's timestamp, UTC milliseconds.
    pub at_ms: i64,
    /// `recipient_id`: the person's phone number, digits only.
    pub recipient: Option<String>,
    /// `recipient_user_id`: the person's business-scoped user id.
    #[serde(default)]
    pub user_id: Option<String>,
    /// `parent_recipient_user_id` (or `parent_user_id`): the person's
    /// parent business-scoped user id.
    #[serde(default)]
    pub parent_user_id: Option<String>,
    /// `recipient_participant_id`: in a group, the member this status is
    /// about (each member's delivery and read arrive as statuses of the one
    /// group message).
    #[serde(default)]
    pub participant: Option<String>,
    /// `metadata.phone_number_id` of the envelope.
    pub phone_number_id: Option<String>,
    /// `biz_opaque_callback_data`.
    pub correlation_id: Option<String>,
    /// `conversation.id`.
    pub conversation_id: Option<String>,
    /// `conversation.origin.type`.
    pub conversation_type: Option<String>,
    /// `conversation.expiration_timestamp`, UTC milliseconds.
    pub conversation_expiry_ms: Option<i64>,
    /// `pricing.category`.
    pub pricing_category: Option<String>,
    /// `pricing.pricing_model` (CBP or PMP).
    pub pricing_model: Option<String>,
    /// `pricing.type` (regular, free_customer_service, free_entry_point,
    /// free_group_customer_service), as given.
    #[serde(default)]
    pub pricing_type: Option<String>,
    /// `pricing.billable`.
    pub billable: Option<bool>,
    /// `errors[]`.
    pub errors: Vec<MetaError>,
}

/// An inbound customer message.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InboundEvent {
    /// The message's wamid.
    pub wamid: String,
    /// `from`: the customer's phone number, digits only.
    pub from: Option<String>,
    /// `contacts[].profile.name`.
    pub contact_name: Option<String>,
    /// `from_user_id` (or the contact's `user_id`): the person's
    /// business-scoped user id.
    #[serde(default)]
    pub user_id: Option<String>,
    /// `from_parent_user_id` (or the contact's `parent_user_id`).
    #[serde(default)]
    pub parent_user_id: Option<String>,
    /// `contacts[].profile.username`.
    #[serde(default)]
    pub username: Option<String>,
    /// A system message saying that the person's number or user id changed.
    #[serde(default)]
    pub identity_change: Option<IdentityChange>,
    /// Where it was seen: the Cloud API, or a synced history.
    #[serde(default)]
    pub origin: Origin,
    /// `metadata.phone_number_id` of the envelope.
    pub phone_number_id: Option<String>,
    /// Meta's timestamp, UTC milliseconds.
    pub at_ms: i64,
    /// The message `type` (text, image, button, interactive...).
    pub content_type: String,
    /// Searchable text: body, caption, button or list title, emoji...
    pub text: String,
    /// `context.id`: the outbound message this answers.
    pub context_wamid: Option<String>,
    /// A quick-reply or interactive reply: the button payload or reply id.
    pub button: Option<String>,
    /// Click-to-WhatsApp referral source, when present.
    pub referral: Option<String>,
    /// A link click's `tracking_token`: the value the business put in the
    /// sent URL, which names the message when the click names no wamid.
    #[serde(default)]
    pub tracking_token: Option<String>,
    /// `errors[]` of unsupported or unknown messages.
    pub errors: Vec<MetaError>,
}

/// A system message (`user_changed_number`, `user_changed_user_id`) saying
/// that one person's identifier changed: the old and new are one person.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityChange {
    /// The number before (`system.wa_id`), digits only.
    pub wa_id: Option<String>,
    /// The number after (`system.new_wa_id`), digits only.
    pub new_wa_id: Option<String>,
    /// The user id before (`system.user_id`).
    pub user_id: Option<String>,
    /// The user id after (`system.new_user_id`).
    pub new_user_id: Option<String>,
}

/// Any other webhook change (template status, quality, account alerts...) or
/// a webhook-level error: kept, searchable, never rejected.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OtherEvent {
    /// The change's `field` (e.g. `message_template_status_update`), or `errors`.
    pub field: String,
    /// The WABA id of the entry.
    pub account: Option<String>,
    /// `metadata.phone_number_id`, when present.
    pub phone_number_id: Option<String>,
    /// When it happened (a timestamp in the value, else arrival), UTC ms.
    pub at_ms: i64,
    /// A one-line summary (e.g. the event and the template name).
    pub summary: String,
    /// Searchable text: every string value of the change.
    pub text: String,
    /// Template name, when the change is about one.
    pub template: Option<String>,
    /// Template language, when the change is about one.
    #[serde(default)]
    pub language: Option<String>,
    /// What changed from: a previous category, quality score or limit.
    #[serde(default)]
    pub from: Option<String>,
    /// What it changed to: a new category, quality score or limit, else the
    /// `event` itself (`APPROVED`, `FLAGGED`, `VOLUME_BASED_PRICING_TIER_UPDATE`).
    #[serde(default)]
    pub to: Option<String>,
    /// The reason given (`reason`, or a `disable_info`/`other_info` title).
    #[serde(default)]
    pub reason: Option<String>,
    /// The person a `user_preferences` item is about: their number.
    #[serde(default)]
    pub wa_id: Option<String>,
    /// ... or their business-scoped user id.
    #[serde(default)]
    pub user_id: Option<String>,
    /// A person stopping or resuming marketing messages (`user_preferences`).
    #[serde(default)]
    pub preference: Option<Preference>,
    /// The person's name in the business's own address book (a
    /// coexistence contact sync, `smb_app_state_sync`).
    #[serde(default)]
    pub name: Option<String>,
    /// Error code, when the change reports one.
    pub error: Option<MetaError>,
}

/// One parsed fact from an input.
///
/// Events are stored in the log with their structs as MessagePack arrays
/// (see `FORMAT.md`): a field is added at the end of its struct with
/// `#[serde(default)]`, and never reordered or removed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Event {
    /// An outbound send attempt.
    Send(Box<SendEvent>),
    /// A status webhook.
    Status(Box<StatusEvent>),
    /// An inbound message.
    Inbound(Box<InboundEvent>),
    /// Any other webhook change.
    Other(Box<OtherEvent>),
}

/// Where an input came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Source {
    /// `POST /v1/sends`.
    SendApi,
    /// `POST /webhook`, Meta's own delivery.
    Webhook,
    /// Bulk NDJSON import.
    Import,
    /// The logging proxy in front of the Graph API.
    Proxy,
}

impl Source {
    /// The API name.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::SendApi => "send_api",
            Source::Webhook => "webhook",
            Source::Import => "import",
            Source::Proxy => "proxy",
        }
    }
}

/// One input to append: its raw bytes, exactly as received, and the events
/// parsed from it.
#[derive(Clone, Debug, PartialEq)]
pub struct Input {
    /// Where it came from.
    pub source: Source,
    /// When Ticks received it, UTC milliseconds.
    pub received_ms: i64,
    /// The exact bytes received.
    pub raw: Vec<u8>,
    /// The events parsed from `raw`.
    pub events: Vec<Event>,
}

/// What happened to one appended input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendOutcome {
    /// The log record it was stored as; `None` when every event was a duplicate.
    pub seq: Option<Seq>,
    /// Events stored.
    pub stored: usize,
    /// Events recognised as duplicates and not stored again.
    pub duplicates: usize,
    /// The entries the stored events belong to.
    pub entries: Vec<EntryId>,
}

impl AppendOutcome {
    /// True when nothing new was stored (the whole input was seen before).
    pub fn is_duplicate(&self) -> bool {
        self.seq.is_none() && self.duplicates > 0
    }
}

/// Whether a customer-service (24 h) window was open when a message was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Session {
    /// The customer wrote within the previous 24 hours.
    Open,
    /// No inbound message in the previous 24 hours.
    Closed,
}

impl Session {
    /// The API name.
    pub fn as_str(self) -> &'static str {
        match self {
            Session::Open => "open",
            Session::Closed => "closed",
        }
    }

    /// Parses an API name.
    pub fn parse(s: &str) -> Option<Session> {
        match s {
            "open" => Some(Session::Open),
            "closed" => Some(Session::Closed),
            _ => None,
        }
    }
}

/// What an outbound message drew from its recipient: a reply, a button
/// click, or both (absent: neither).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Engagement {
    /// At least one reply and no click.
    Replied = 1,
    /// At least one click and no reply.
    Clicked = 2,
    /// At least one of each.
    RepliedAndClicked = 3,
}

impl Engagement {
    /// Every engagement.
    pub const ALL: [Engagement; 3] = [
        Engagement::Replied,
        Engagement::Clicked,
        Engagement::RepliedAndClicked,
    ];

    /// The API name.
    pub fn as_str(self) -> &'static str {
        match self {
            Engagement::Replied => "replied",
            Engagement::Clicked => "clicked",
            Engagement::RepliedAndClicked => "replied_and_clicked",
        }
    }

    /// Parses an API name.
    pub fn parse(s: &str) -> Option<Engagement> {
        Engagement::ALL.into_iter().find(|e| e.as_str() == s)
    }

    /// Whether an entry with this engagement has everything `asked` names:
    /// `replied` means "got at least one reply", so `replied_and_clicked`
    /// has it too.
    pub fn includes(self, asked: Engagement) -> bool {
        (self as u8) & (asked as u8) == asked as u8
    }
}

/// Where a message was sent or seen: through the Cloud API (the default),
/// from the WhatsApp Business app on the same number (a coexistence echo:
/// not billed), or in the history a coexistence number synced once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Origin {
    /// The Cloud API.
    #[default]
    Api = 1,
    /// The WhatsApp Business app (`smb_message_echoes`).
    App = 2,
    /// Past conversations synced once (`history`).
    History = 3,
}

impl Origin {
    /// Every origin.
    pub const ALL: [Origin; 3] = [Origin::Api, Origin::App, Origin::History];

    /// The API name.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Api => "api",
            Origin::App => "app",
            Origin::History => "history",
        }
    }

    /// Parses an API name.
    pub fn parse(s: &str) -> Option<Origin> {
        Origin::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// A person's choice about marketing messages from the business: a
/// `user_preferences` item, or error 131050 on a send or status (which
/// means the same stop).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Preference {
    /// Stopped marketing messages.
    Stop = 1,
    /// Resumed them.
    Resume = 2,
}

impl Preference {
    /// The API name.
    pub fn as_str(self) -> &'static str {
        match self {
            Preference::Stop => "stop",
            Preference::Resume => "resume",
        }
    }

    /// Parses Meta's and the API's name.
    pub fn parse(s: &str) -> Option<Preference> {
        match s.to_ascii_lowercase().as_str() {
            "stop" => Some(Preference::Stop),
            "resume" => Some(Preference::Resume),
            _ => None,
        }
    }
}

/// The Meta error code that means a person stopped marketing messages.
pub const MARKETING_STOPPED: i64 = 131050;

/// How an inbound message was tied to the outbound message it answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Attribution {
    /// It quotes that message (`context.id`).
    Quoted = 1,
    /// It quotes nothing: the latest message the business sent the same
    /// person from the same number before it, within the attribution window.
    Inferred = 2,
}

impl Attribution {
    /// The API name.
    pub fn as_str(self) -> &'static str {
        match self {
            Attribution::Quoted => "quoted",
            Attribution::Inferred => "inferred",
        }
    }

    /// Parses an API name.
    pub fn parse(s: &str) -> Option<Attribution> {
        match s {
            "quoted" => Some(Attribution::Quoted),
            "inferred" => Some(Attribution::Inferred),
            _ => None,
        }
    }
}

/// How far along delivery an outbound message is proven to have got, by
/// any status webhook (even if it failed later): the delivery funnel's steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reached {
    /// Meta sent it.
    Sent = 1,
    /// It reached a device.
    Delivered = 2,
    /// The recipient read it.
    Read = 3,
}

impl Reached {
    /// Every step, in order.
    pub const ALL: [Reached; 3] = [Reached::Sent, Reached::Delivered, Reached::Read];

    /// The API name.
    pub fn as_str(self) -> &'static str {
        match self {
            Reached::Sent => "sent",
            Reached::Delivered => "delivered",
            Reached::Read => "read",
        }
    }

    /// Parses an API name.
    pub fn parse(s: &str) -> Option<Reached> {
        Reached::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The furthest step a status proves: a deletion (older accounts)
    /// proves delivery; a played voice message was read; failed and warning
    /// prove nothing.
    pub fn proven_by(status: WebhookStatus) -> Option<Reached> {
        match status {
            WebhookStatus::Sent => Some(Reached::Sent),
            WebhookStatus::Delivered | WebhookStatus::Deleted => Some(Reached::Delivered),
            WebhookStatus::Read | WebhookStatus::Played => Some(Reached::Read),
            WebhookStatus::Failed | WebhookStatus::Warning => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(status: WebhookStatus, at: i64) -> StatusMark {
        StatusMark::new(at, status, None)
    }

    #[test]
    fn delivered_and_failed_means_delivered() {
        let marks = [
            mark(WebhookStatus::Failed, 5),
            mark(WebhookStatus::Delivered, 3),
        ];
        assert_eq!(
            derive_status(Some(SendOutcome::Accepted), &marks),
            Status::Delivered
        );
    }

    #[test]
    fn failed_after_sent_is_failed() {
        let marks = [mark(WebhookStatus::Sent, 1), mark(WebhookStatus::Failed, 2)];
        assert_eq!(
            derive_status(Some(SendOutcome::Accepted), &marks),
            Status::Failed
        );
    }

    #[test]
    fn read_before_delivered_stays_read() {
        let marks = [
            mark(WebhookStatus::Read, 9),
            mark(WebhookStatus::Delivered, 10),
        ];
        assert_eq!(derive_status(None, &marks), Status::Read);
    }

    #[test]
    fn no_webhook_shows_the_send_outcome() {
        assert_eq!(
            derive_status(Some(SendOutcome::Rejected), &[]),
            Status::Rejected
        );
        assert_eq!(derive_status(Some(SendOutcome::Held), &[]), Status::Held);
    }

    #[test]
    fn warning_alone_is_warning_but_does_not_hide_delivery() {
        assert_eq!(
            derive_status(None, &[mark(WebhookStatus::Warning, 1)]),
            Status::Warning
        );
        let marks = [
            mark(WebhookStatus::Warning, 1),
            mark(WebhookStatus::Sent, 2),
        ];
        assert_eq!(derive_status(None, &marks), Status::Sent);
    }
}
