//! The field catalog: every column of the log table, with its name as a
//! parameter, a label for people, its kind, and what it can do (filter,
//! sort, group, export). The parameter parser ([`FilterField::parse`],
//! [`Column::parse`](crate::Column::parse)), group-by and `GET /v1/fields`
//! read it, so a field is added in one place.

use serde::Serialize;
use ticks_engine::Field;

/// What a filter tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterField {
    /// A field with a bitmap index.
    Indexed(Field),
    /// The correlation id (exact).
    CorrelationId,
    /// The customer's phone (digits, exact).
    Phone,
    /// The message id (exact).
    Wamid,
    /// The entry id (`#`), e.g. the rows a user selected.
    Id,
    /// The person: every entry of whoever an identifier (any number
    /// format, a user id, `@username`) names, in both directions.
    Contact,
    /// An account or template event's webhook field (`event` entries keep
    /// it as their category).
    Event,
    /// Entries of people whose latest marketing preference is a stop
    /// (`true`), or not (`false`).
    OptedOut,
}

impl FilterField {
    /// Parses a parameter name (see [`FIELDS`]).
    pub fn parse(name: &str) -> Option<FilterField> {
        field(name)?.filter
    }
}

/// What a field's values are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    /// Free text or a name.
    Text,
    /// A number (a code).
    Integer,
    /// One of a few named values.
    Enum,
    /// An instant (RFC 3339 in the API).
    Time,
    /// An identifier (entry id, wamid, phone digits).
    Id,
}

/// One field of the catalog.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct FieldSpec {
    /// The name: the parameter, the sort column, the entry's JSON key.
    pub name: &'static str,
    /// Other parameter names that mean it.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub aliases: &'static [&'static str],
    /// A label for people (English; the page translates).
    pub label: &'static str,
    /// What its values are.
    pub kind: FieldKind,
    /// Whether `sort=` takes it.
    pub sortable: bool,
    /// Whether `group_by=` takes it.
    pub groupable: bool,
    /// Whether the CSV, XLSX and PDF exports carry it.
    pub exported: bool,
    /// What a filter on it tests (`None`: not a filter).
    #[serde(skip)]
    pub filter: Option<FilterField>,
}

impl FieldSpec {
    /// Whether `name=value` filters on it.
    pub fn filterable(&self) -> bool {
        self.filter.is_some()
    }
}

const fn indexed(
    name: &'static str,
    aliases: &'static [&'static str],
    label: &'static str,
    kind: FieldKind,
    field: Field,
    exported: bool,
) -> FieldSpec {
    FieldSpec {
        name,
        aliases,
        label,
        kind,
        sortable: true,
        groupable: true,
        exported,
        filter: Some(FilterField::Indexed(field)),
    }
}

const fn shown(name: &'static str, label: &'static str, kind: FieldKind) -> FieldSpec {
    FieldSpec {
        name,
        aliases: &[],
        label,
        kind,
        sortable: false,
        groupable: false,
        exported: true,
        filter: None,
    }
}

use FieldKind::{Enum, Id, Integer, Text, Time};

/// Every field, in the order the exports list them.
pub const FIELDS: &[FieldSpec] = &[
    FieldSpec {
        name: "id",
        aliases: &["#"],
        label: "#",
        kind: Id,
        sortable: true,
        groupable: false,
        exported: true,
        filter: Some(FilterField::Id),
    },
    FieldSpec {
        name: "recorded_at",
        aliases: &["time", "date"],
        label: "Recorded on",
        kind: Time,
        sortable: true,
        groupable: false,
        exported: true,
        // Filtered by `from` and `to`.
        filter: None,
    },
    indexed("direction", &[], "Direction", Enum, Field::Direction, true),
    indexed("category", &[], "Category", Text, Field::Category, true),
    indexed("name", &["campaign"], "Name", Text, Field::Name, true),
    indexed("template", &[], "Template", Text, Field::Template, true),
    indexed(
        "template_language",
        &["language"],
        "Language",
        Text,
        Field::Language,
        true,
    ),
    indexed(
        "response_code",
        &["code"],
        "Response code",
        Integer,
        Field::ResponseCode,
        true,
    ),
    indexed(
        "recipient_type",
        &["type"],
        "Type",
        Text,
        Field::RecipientType,
        true,
    ),
    shown("recipient_ref", "Contact reference", Text),
    indexed("status", &[], "Status", Enum, Field::Status, true),
    FieldSpec {
        name: "phone",
        aliases: &[],
        label: "Phone",
        kind: Id,
        sortable: true,
        groupable: false,
        exported: true,
        filter: Some(FilterField::Phone),
    },
    shown("wa_id", "WhatsApp user id", Id),
    shown("user_id", "Business-scoped user id", Id),
    shown("parent_user_id", "Parent user id", Id),
    shown("username", "Username", Id),
    shown("contact_name", "Contact name", Text),
    indexed("country", &[], "Country", Text, Field::Country, true),
    FieldSpec {
        name: "contact",
        aliases: &[],
        label: "Contact",
        kind: Id,
        sortable: false,
        groupable: false,
        exported: false,
        filter: Some(FilterField::Contact),
    },
    indexed(
        "error_code",
        &[],
        "Error code",
        Integer,
        Field::ErrorCode,
        true,
    ),
    shown("error_title", "Error", Text),
    indexed("user", &[], "User", Text, Field::User, true),
    indexed(
        "subaccount",
        &[],
        "Subaccount",
        Text,
        Field::Subaccount,
        true,
    ),
    indexed(
        "content_type",
        &[],
        "Content",
        Text,
        Field::ContentType,
        true,
    ),
    shown("text", "Message", Text),
    FieldSpec {
        name: "wamid",
        aliases: &[],
        label: "wamid",
        kind: Id,
        sortable: false,
        groupable: false,
        exported: true,
        filter: Some(FilterField::Wamid),
    },
    FieldSpec {
        name: "correlation_id",
        aliases: &[],
        label: "Correlation id",
        kind: Id,
        sortable: true,
        groupable: false,
        exported: true,
        filter: Some(FilterField::CorrelationId),
    },
    indexed(
        "conversation_type",
        &[],
        "Conversation",
        Text,
        Field::ConversationType,
        true,
    ),
    indexed("session", &[], "Session", Enum, Field::Session, true),
    shown("conversation_id", "Conversation id", Id),
    shown("conversation_expiry", "Conversation expires", Time),
    indexed(
        "phone_number_id",
        &[],
        "Business number id",
        Id,
        Field::PhoneNumberId,
        false,
    ),
    indexed(
        "pricing_category",
        &[],
        "Pricing category",
        Text,
        Field::PricingCategory,
        false,
    ),
    indexed(
        "pricing_type",
        &[],
        "Pricing type",
        Text,
        Field::PricingType,
        false,
    ),
    indexed("billable", &[], "Billable", Enum, Field::Billable, false),
    indexed("source", &[], "Source", Enum, Field::Origin, true),
    indexed(
        "marketing",
        &[],
        "Marketing preference",
        Enum,
        Field::Marketing,
        false,
    ),
    FieldSpec {
        name: "opted_out",
        aliases: &[],
        label: "Opted out of marketing",
        kind: Enum,
        sortable: false,
        groupable: false,
        exported: false,
        filter: Some(FilterField::OptedOut),
    },
    FieldSpec {
        name: "event",
        aliases: &[],
        label: "Event",
        kind: Text,
        sortable: false,
        groupable: false,
        exported: false,
        filter: Some(FilterField::Event),
    },
    shown("event_from", "Changed from", Text),
    shown("event_to", "Changed to", Text),
    shown("event_reason", "Reason", Text),
    indexed(
        "engagement",
        &[],
        "Engagement",
        Enum,
        Field::Engagement,
        false,
    ),
    indexed("reached", &[], "Reached", Enum, Field::Reached, false),
    indexed("button", &[], "Button", Text, Field::Button, false),
    indexed(
        "attribution",
        &[],
        "Reply attribution",
        Enum,
        Field::Attribution,
        false,
    ),
];

/// The catalog's field named `name` (or by one of its aliases).
pub fn field(name: &str) -> Option<&'static FieldSpec> {
    FIELDS
        .iter()
        .find(|f| f.name == name || f.aliases.contains(&name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for f in FIELDS {
            for n in std::iter::once(&f.name).chain(f.aliases) {
                assert!(seen.insert(*n), "{n} twice");
            }
        }
    }

    #[test]
    fn every_indexed_field_but_time_buckets_has_a_name() {
        for f in Field::ALL {
            if matches!(f, Field::Day | Field::Hour) {
                continue;
            }
            assert!(
                FIELDS
                    .iter()
                    .any(|s| s.filter == Some(FilterField::Indexed(f))),
                "{f:?} is in no catalog entry"
            );
        }
    }
}
