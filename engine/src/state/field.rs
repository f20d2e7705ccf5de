//! The field catalog: the fields that have bitmap indexes, and how a value
//! of each becomes a bitmap key ([`Key`], [`Value`]).

use crate::model::{
    Attribution, Direction, Engagement, Origin, Preference, Reached, Session, Status,
};

/// Milliseconds of a day and an hour: the `Day` and `Hour` fields' keys
/// are the day and hour numbers since 1970 (UTC).
pub(crate) const DAY_MS: i64 = 86_400_000;
pub(crate) const HOUR_MS: i64 = 3_600_000;

/// The bitmap key of entries without a value (inside the engine; outside,
/// [`Key::NONE`]).
pub(crate) const NONE_KEY: i64 = i64::MIN;

/// A value of an indexed field as the indexes hold it: what a bitmap, a
/// key column and a report's tally are keyed by. Outside the engine a key
/// is only compared, hashed, ordered and decoded ([`crate::Snapshot::value_of`]);
/// how it is encoded stays in this module.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct Key(i64);

impl Key {
    /// No value (an entry without one). It sorts before every other key.
    pub const NONE: Key = Key(NONE_KEY);

    /// The key of a status.
    pub const fn status(s: Status) -> Key {
        Key(s as i64)
    }

    /// The key of a direction.
    pub const fn direction(d: Direction) -> Key {
        Key(d as i64)
    }

    /// The key of an engagement.
    pub const fn engagement(e: Engagement) -> Key {
        Key(e as i64)
    }

    /// The key of a delivery step.
    pub const fn reached(r: Reached) -> Key {
        Key(r as i64)
    }

    /// The key of a reply's attribution.
    pub const fn attribution(a: Attribution) -> Key {
        Key(a as i64)
    }

    /// The key of a [`Field::Billable`] value.
    pub const fn billable(charged: bool) -> Key {
        Key(charged as i64)
    }

    /// Whether it stands for no value.
    pub fn is_none(self) -> bool {
        self.0 == NONE_KEY
    }

    /// The delivery step a [`Field::Reached`] key stands for.
    pub fn as_reached(self) -> Option<Reached> {
        // A match, not a search of `Reached::ALL`: report scans ask this of
        // every outbound entry.
        match self.0 {
            1 => Some(Reached::Sent),
            2 => Some(Reached::Delivered),
            3 => Some(Reached::Read),
            _ => None,
        }
    }

    /// The status a [`Field::Status`] key stands for.
    pub fn as_status(self) -> Option<Status> {
        Status::ALL.into_iter().find(|s| *s as i64 == self.0)
    }

    /// The number a [`Field::ResponseCode`] or [`Field::ErrorCode`] key
    /// stands for (`None` for [`Key::NONE`]).
    pub fn as_code(self) -> Option<i64> {
        (self.0 != NONE_KEY).then_some(self.0)
    }

    /// The first millisecond (UTC) of the hour a [`Field::Hour`] key stands
    /// for.
    pub fn hour_start_ms(self) -> i64 {
        self.0.saturating_mul(HOUR_MS)
    }

    pub(crate) const fn from_raw(raw: i64) -> Key {
        Key(raw)
    }

    pub(crate) const fn raw(self) -> i64 {
        self.0
    }
}

/// A value a filter asks an indexed field for, parsed once from its text
/// by [`Field::parse_value`] and kept typed down to the bitmap look-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// No value (`none`).
    None,
    /// A code: an HTTP response code or a Meta error code.
    Code(i64),
    /// A text value (category, name, template...), looked up as it is.
    Text(String),
    /// A status.
    Status(Status),
    /// A direction.
    Direction(Direction),
    /// Whether a window was open.
    Session(Session),
    /// At least this engagement: `replied` takes the entries that also got
    /// a click (see [`Engagement::includes`]).
    Engagement(Engagement),
    /// A delivery step.
    Reached(Reached),
    /// How a reply was tied to the message it answers.
    Attribution(Attribution),
    /// A marketing preference.
    Marketing(Preference),
    /// Where a message was sent or seen.
    Origin(Origin),
    /// Whether Meta charges for it.
    Billable(bool),
}

/// The accepted values of a field, for an error message.
fn expected(field: Field) -> &'static str {
    match field {
        Field::ResponseCode => "an HTTP status (100-599) or none",
        Field::ErrorCode => "an error code or none",
        Field::Status => "a status (accepted, sent, delivered, read, failed...) or none",
        Field::Direction => "outbound (mt), inbound (mo) or event",
        Field::Session => "open, closed or none",
        Field::Engagement => "replied, clicked, replied_and_clicked or none",
        Field::Reached => "sent, delivered, read or none",
        Field::Attribution => "quoted, inferred or none",
        Field::Marketing => "stop, resume or none",
        Field::Origin => "api, app or history",
        Field::Country => "a country code (ISO 3166-1 alpha-2, e.g. BR) or none",
        Field::Billable => "true, false or none",
        Field::Day | Field::Hour => "a time range (from, to)",
        _ => "a value",
    }
}

/// The fields that have bitmap indexes. Every filter, group-by and most sorts
/// run on these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    /// marketing_campaign, template_bot, message_bot... (for event entries: the webhook field).
    Category,
    /// Campaign, bot or automation name.
    Name,
    /// Template name.
    Template,
    /// HTTP response code of the send (absent: inbound, webhook-only, no response).
    ResponseCode,
    /// lead, customer, contact...
    RecipientType,
    /// Current status.
    Status,
    /// outbound, inbound, event.
    Direction,
    /// Meta error code of a failed send or status.
    ErrorCode,
    /// Sending (or receiving) business phone number id.
    PhoneNumberId,
    /// Subaccount.
    Subaccount,
    /// User who triggered the send.
    User,
    /// text, template, image, button, interactive...
    ContentType,
    /// Conversation origin type (business_initiated, marketing, service...).
    ConversationType,
    /// Pricing category.
    PricingCategory,
    /// Whether a 24 h customer-service window was open at send time.
    Session,
    /// UTC day of `recorded_at`, as days since the epoch.
    Day,
    /// UTC hour of `recorded_at`, as hours since the epoch.
    Hour,
    /// Outbound messages that got a reply (1), a button click (2) or both (3).
    Engagement,
    /// Template language code.
    Language,
    /// Outbound messages: the furthest delivery step any status webhook
    /// reported (1 sent, 2 delivered, 3 read), even if the message later
    /// failed. The delivery funnel counts from this.
    Reached,
    /// Inbound quick-reply and interactive replies: the button payload or reply id.
    Button,
    /// Inbound messages tied to the message they answer: quoted (1) or
    /// inferred (2).
    Attribution,
    /// Per-message pricing type (regular, free_customer_service...).
    PricingType,
    /// Entries that carry a marketing preference: a `user_preferences`
    /// item (stop 1, resume 2), or error 131050 (stop).
    Marketing,
    /// Where a message was sent or seen: api 1, app 2, history 3.
    Origin,
    /// The person's country (ISO 3166-1 alpha-2): from the calling code of
    /// their number, else from the prefix of their business-scoped user id.
    Country,
    /// Outbound messages Meta charges for (1: `pricing.type` regular, or
    /// `billable: true` on traffic without a type) or not (0: a free type,
    /// or `billable: false`). Absent before a status brought pricing.
    Billable,
}

impl Field {
    /// Every indexed field.
    pub const ALL: [Field; 27] = [
        Field::Category,
        Field::Name,
        Field::Template,
        Field::ResponseCode,
        Field::RecipientType,
        Field::Status,
        Field::Direction,
        Field::ErrorCode,
        Field::PhoneNumberId,
        Field::Subaccount,
        Field::User,
        Field::ContentType,
        Field::ConversationType,
        Field::PricingCategory,
        Field::Session,
        Field::Day,
        Field::Hour,
        Field::Engagement,
        Field::Language,
        Field::Reached,
        Field::Button,
        Field::Attribution,
        Field::PricingType,
        Field::Marketing,
        Field::Origin,
        Field::Country,
        Field::Billable,
    ];
    pub(crate) fn slot(self) -> usize {
        self as usize
    }
    /// The field's name in query parameters and reports.
    pub fn name(self) -> &'static str {
        match self {
            Field::Category => "category",
            Field::Name => "name",
            Field::Template => "template",
            Field::ResponseCode => "response_code",
            Field::RecipientType => "recipient_type",
            Field::Status => "status",
            Field::Direction => "direction",
            Field::ErrorCode => "error_code",
            Field::PhoneNumberId => "phone_number_id",
            Field::Subaccount => "subaccount",
            Field::User => "user",
            Field::ContentType => "content_type",
            Field::ConversationType => "conversation_type",
            Field::PricingCategory => "pricing_category",
            Field::Session => "session",
            Field::Day => "day",
            Field::Hour => "hour",
            Field::Engagement => "engagement",
            Field::Language => "language",
            Field::Reached => "reached",
            Field::Button => "button",
            Field::Attribution => "attribution",
            Field::PricingType => "pricing_type",
            Field::Marketing => "marketing",
            Field::Origin => "source",
            Field::Country => "country",
            Field::Billable => "billable",
        }
    }
    /// Parses a filter's value for this field (`none` is the absent value);
    /// the error says what the field takes.
    pub fn parse_value(self, text: &str) -> Result<Value, String> {
        if text == "none" {
            return Ok(Value::None);
        }
        let parsed = match self {
            Field::ResponseCode => text
                .parse::<u16>()
                .ok()
                .filter(|c| (100..=599).contains(c))
                .map(|c| Value::Code(i64::from(c))),
            Field::ErrorCode => text.parse().ok().map(Value::Code),
            Field::Status => Status::parse(text).map(Value::Status),
            Field::Direction => Direction::parse(text).map(Value::Direction),
            Field::Session => Session::parse(text).map(Value::Session),
            Field::Engagement => Engagement::parse(text).map(Value::Engagement),
            Field::Reached => Reached::parse(text).map(Value::Reached),
            Field::Attribution => Attribution::parse(text).map(Value::Attribution),
            Field::Marketing => Preference::parse(text).map(Value::Marketing),
            Field::Origin => Origin::parse(text).map(Value::Origin),
            Field::Country => crate::country::parse_country(text).map(Value::Text),
            Field::Billable => match text {
                "true" => Some(Value::Billable(true)),
                "false" => Some(Value::Billable(false)),
                _ => None,
            },
            Field::Day | Field::Hour => None,
            _ if self.is_text() => Some(Value::Text(text.to_string())),
            _ => None,
        };
        parsed.ok_or_else(|| format!("{text:?}: use {}", expected(self)))
    }

    /// The names of a field's values when they are a closed set (status,
    /// direction, session, engagement, delivery step), besides `none`.
    pub fn value_names(self) -> Option<Vec<&'static str>> {
        Some(match self {
            Field::Status => Status::ALL.iter().map(|s| s.as_str()).collect(),
            Field::Direction => [Direction::Outbound, Direction::Inbound, Direction::Event]
                .iter()
                .map(|d| d.as_str())
                .collect(),
            Field::Session => [Session::Open, Session::Closed]
                .iter()
                .map(|s| s.as_str())
                .collect(),
            Field::Engagement => Engagement::ALL.iter().map(|e| e.as_str()).collect(),
            Field::Reached => Reached::ALL.iter().map(|r| r.as_str()).collect(),
            Field::Attribution => vec!["quoted", "inferred"],
            Field::Marketing => vec!["stop", "resume"],
            Field::Origin => Origin::ALL.iter().map(|o| o.as_str()).collect(),
            Field::Billable => vec!["true", "false"],
            _ => return None,
        })
    }

    /// Whether the field's keys are interned strings (sorted by text).
    pub fn is_text(self) -> bool {
        matches!(
            self,
            Field::Category
                | Field::Name
                | Field::Template
                | Field::RecipientType
                | Field::PhoneNumberId
                | Field::Subaccount
                | Field::User
                | Field::ContentType
                | Field::ConversationType
                | Field::PricingCategory
                | Field::Language
                | Field::Button
                | Field::PricingType
                | Field::Country
        )
    }
}

pub(crate) const NFIELDS: usize = Field::ALL.len();
