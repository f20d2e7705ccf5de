//! How entries and times look to people and scripts: the JSON of an entry,
//! and RFC 3339 times in their original offset.

use serde_json::{json, Value};
use std::sync::OnceLock;
use ticks_engine::Entry;

/// Formats UTC milliseconds as RFC 3339 in the given offset.
pub(crate) fn rfc3339(ms: i64, offset_s: i32) -> String {
    ticks_ingest::format_rfc3339(ms, offset_s)
}

/// A time as the exports and `ticks query` print it: RFC 3339 with the
/// offset of `tz` at that instant (every time of one output in the one
/// zone asked for).
pub(crate) fn rfc3339_in(ms: i64, tz: &jiff::tz::TimeZone) -> String {
    let offset = jiff::Timestamp::from_millisecond(ms)
        .map(|ts| tz.to_offset(ts).seconds())
        .unwrap_or(0);
    rfc3339(ms, offset)
}

/// An entry as the API shows it: every column, times as RFC 3339 with the
/// original offset, and the human reason for an error.
pub(crate) fn entry_json(e: &Entry) -> Value {
    let mut v = serde_json::to_value(e).unwrap_or(Value::Null);
    v["recorded_at"] = Value::String(rfc3339(e.recorded_ms, e.offset_s));
    v["status"] = Value::String(e.status.as_str().into());
    v["direction"] = Value::String(e.direction.as_str().into());
    v["id"] = json!(e.id.0);
    v["session"] = e
        .session
        .map_or(Value::Null, |s| Value::String(s.as_str().into()));
    if let Some(r) = e.in_reply_to {
        v["in_reply_to"] = json!(r.0);
    }
    v["source"] = e
        .source
        .map_or(Value::Null, |o| Value::String(o.as_str().into()));
    v["attribution"] = e
        .attribution
        .map_or(Value::Null, |a| Value::String(a.as_str().into()));
    if let Some(info) = e.error_code.and_then(ticks_ingest::meta_error_info) {
        v["error_meaning"] = json!(info.meaning);
        v["error_action"] = json!(info.action);
    }
    if let Some(info) = e.response_code.and_then(ticks_ingest::http_code_info) {
        v["response_meaning"] = json!(info.meaning);
    }
    v
}

/// An entry as the API answers it, serialized straight to bytes: the same
/// keys and values as [`entry_json`] (its `Value` sorts keys, so they are
/// written here in that order), without building a map of `Value`s per
/// entry and editing it. A page of 50 entries spent more in that than in
/// finding them (#23); a test holds the two to the same bytes.
pub(crate) struct EntryOut<'a> {
    pub(crate) entry: &'a Entry,
    /// `fields=`: only these keys (all when `None`).
    pub(crate) fields: Option<&'a [String]>,
}

impl EntryOut<'_> {
    fn wants(&self, key: &str) -> bool {
        self.fields.is_none_or(|f| f.iter().any(|k| k == key))
    }
}

impl serde::Serialize for EntryOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let e = self.entry;
        let error = e.error_code.and_then(ticks_ingest::meta_error_info);
        let http = e.response_code.and_then(ticks_ingest::http_code_info);
        let mut m = s.serialize_map(None)?;
        macro_rules! put {
            ($key:literal, $value:expr) => {
                if self.wants($key) {
                    m.serialize_entry($key, $value)?;
                }
            };
        }
        put!("attribution", &e.attribution.map(|a| a.as_str()));
        put!("billable", &e.billable);
        put!("button", &e.button);
        put!("category", &e.category);
        put!("clicks", &e.clicks);
        put!("contact_name", &e.contact_name);
        put!("content_type", &e.content_type);
        put!("conversation_expiry_ms", &e.conversation_expiry_ms);
        put!("conversation_id", &e.conversation_id);
        put!("conversation_type", &e.conversation_type);
        put!("correlation_id", &e.correlation_id);
        put!("country", &e.country);
        put!("delivered_ms", &e.delivered_ms);
        put!("direction", e.direction.as_str());
        if let Some(info) = error {
            put!("error_action", info.action);
        }
        put!("error_code", &e.error_code);
        if let Some(info) = error {
            put!("error_meaning", info.meaning);
        }
        put!("error_title", &e.error_title);
        put!("event_from", &e.event_from);
        put!("event_reason", &e.event_reason);
        put!("event_to", &e.event_to);
        put!("failed_ms", &e.failed_ms);
        put!("has_send", &e.has_send);
        put!("id", &e.id.0);
        put!("in_reply_to", &e.in_reply_to.map(|r| r.0));
        put!("name", &e.name);
        put!("offset_s", &e.offset_s);
        put!("parent_user_id", &e.parent_user_id);
        put!("phone", &e.phone);
        put!("phone_number_id", &e.phone_number_id);
        put!("pricing_category", &e.pricing_category);
        put!("pricing_model", &e.pricing_model);
        put!("pricing_type", &e.pricing_type);
        put!("read_ms", &e.read_ms);
        put!("recipient_ref", &e.recipient_ref);
        put!("recipient_type", &e.recipient_type);
        if self.wants("recorded_at") {
            m.serialize_entry("recorded_at", &rfc3339(e.recorded_ms, e.offset_s))?;
        }
        put!("recorded_ms", &e.recorded_ms);
        put!("render_error", &e.render_error);
        put!("replies", &e.replies);
        put!("response_code", &e.response_code);
        if let Some(info) = http {
            put!("response_meaning", info.meaning);
        }
        put!("sent_ms", &e.sent_ms);
        put!("session", &e.session.map(|s| s.as_str()));
        put!("source", &e.source.map(|o| o.as_str()));
        put!("status", e.status.as_str());
        put!("subaccount", &e.subaccount);
        put!("template", &e.template);
        put!("template_known", &e.template_known);
        put!("template_language", &e.template_language);
        put!("text", &e.text);
        put!("user", &e.user);
        put!("user_id", &e.user_id);
        put!("username", &e.username);
        put!("wa_id", &e.wa_id);
        put!("wamid", &e.wamid);
        m.end()
    }
}

/// The field catalog as `GET /v1/fields` and the page read it: each
/// field's spec, and whether it filters.
pub(crate) fn fields_json() -> Value {
    let fields: Vec<Value> = ticks_query::FIELDS
        .iter()
        .map(|f| {
            let mut v = serde_json::to_value(f).unwrap_or(Value::Null);
            v["filterable"] = json!(f.filterable());
            v
        })
        .collect();
    json!({ "fields": fields })
}

/// The fields `entry_json` adds to an [`Entry`]'s own.
const ADDED_FIELDS: [&str; 4] = [
    "recorded_at",
    "error_meaning",
    "error_action",
    "response_meaning",
];

/// The names an entry's JSON may have: [`Entry`]'s own, read from its serde
/// definition (so there is no list to keep in step with it), and the ones
/// [`entry_json`] adds. `GET /v1/logs?fields=` takes these.
pub(crate) fn entry_fields() -> &'static [&'static str] {
    static NAMES: OnceLock<Vec<&'static str>> = OnceLock::new();
    NAMES.get_or_init(|| {
        let mut names: Vec<&'static str> = struct_fields::<Entry>().to_vec();
        names.extend(
            ADDED_FIELDS
                .iter()
                .filter(|a| !names.contains(a))
                .collect::<Vec<_>>(),
        );
        names
    })
}

/// The field names of a struct that derives `Deserialize`: serde hands
/// them to the deserializer, which is all this one does with them.
fn struct_fields<T: serde::de::DeserializeOwned>() -> &'static [&'static str] {
    let mut names: &'static [&'static str] = &[];
    let _ = T::deserialize(FieldNames(&mut names));
    names
}

struct FieldNames<'a>(&'a mut &'static [&'static str]);

impl<'de> serde::Deserializer<'de> for FieldNames<'_> {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(serde::de::Error::custom(
            "only a struct's field names are read",
        ))
    }

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(serde::de::Error::custom("field names read"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
        byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map
        enum identifier ignored_any
    }
}

/// Keeps only the named fields of an entry's JSON (what [`EntryOut`]
/// with `fields` must equal).
#[cfg(test)]
pub(crate) fn only_fields(mut entry: Value, fields: &[String]) -> Value {
    if let Value::Object(map) = &mut entry {
        map.retain(|k, _| fields.iter().any(|f| f == k));
    }
    entry
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The straight-to-bytes writer answers exactly what the `Value` path
    /// did, for every entry of generated traffic (every direction, status,
    /// error and template), with and without `fields=`.
    #[test]
    fn entries_written_straight_to_bytes_equal_their_value_form() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ticks_engine::Store::open(ticks_engine::Config::new(dir.path())).expect("open");
        let mut opts = ticks_ingest::generate::GeneratorOptions::new(400);
        opts.seed = 5;
        let page =
            serde_json::to_vec(&ticks_ingest::generate::template_definitions(&opts)).expect("json");
        let defs = ticks_ingest::parse_template_page(&page).expect("definitions");
        // Half the templates known: rendered sends and unknown ones.
        let half: Vec<_> = defs.templates.into_iter().step_by(2).collect();
        store.add_templates(half, opts.start_ms).expect("templates");
        let mut data = Vec::new();
        for line in ticks_ingest::generate::Generator::new(opts) {
            data.extend_from_slice(&line);
            data.push(b'\n');
        }
        ticks_ingest::import(&store, &data[..], &ticks_ingest::ImportOptions::default())
            .expect("import");
        let snap = store.snapshot();
        let ids: Vec<u32> = snap.live().iter().collect();
        let entries = snap.entries(&ids);
        drop(snap);
        assert!(entries.len() > 400, "{}", entries.len());
        let some = [
            "id".to_string(),
            "recorded_at".into(),
            "error_meaning".into(),
            "text".into(),
        ];
        for e in &entries {
            let fast = serde_json::to_vec(&EntryOut {
                entry: e,
                fields: None,
            })
            .expect("json");
            let slow = serde_json::to_vec(&entry_json(e)).expect("json");
            assert_eq!(
                String::from_utf8_lossy(&fast),
                String::from_utf8_lossy(&slow)
            );
            let fast = serde_json::to_vec(&EntryOut {
                entry: e,
                fields: Some(&some),
            })
            .expect("json");
            let slow = serde_json::to_vec(&only_fields(entry_json(e), &some)).expect("json");
            assert_eq!(fast, slow);
        }
        store.close().expect("close");
    }

    #[test]
    fn the_field_names_are_read_from_the_entry_itself() {
        let names = entry_fields();
        for n in [
            "id",
            "wamid",
            "phone",
            "status",
            "recorded_at",
            "error_meaning",
        ] {
            assert!(names.contains(&n), "{n} in {names:?}");
        }
        assert!(!names.contains(&"nonsense"));
    }
}
