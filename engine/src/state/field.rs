//! The field catalog: the fields that have bitmap indexes, and how a value
//! of each becomes a bitmap key.

/// Milliseconds of a day and an hour: the `Day` and `Hour` fields' keys
/// are the day and hour numbers since 1970 (UTC).
pub(crate) const DAY_MS: i64 = 86_400_000;
pub(crate) const HOUR_MS: i64 = 3_600_000;

/// The first millisecond (UTC) of the hour a [`Field::Hour`] key stands for.
pub fn hour_start_ms(key: i64) -> i64 {
    key.saturating_mul(HOUR_MS)
}

/// Key of a bitmap for a field whose value is absent.
/// The bitmap key of entries without a value ([`crate::FieldValue::None`]).
pub const NONE_KEY: i64 = i64::MIN;

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
}

impl Field {
    /// Every indexed field.
    pub const ALL: [Field; 21] = [
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
        }
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
        )
    }
}

pub(crate) const NFIELDS: usize = Field::ALL.len();
