//! How entries and times look to people and scripts: the JSON of an entry,
//! and RFC 3339 times in their original offset.

use serde_json::{json, Value};
use std::sync::OnceLock;
use ticks_engine::Entry;

/// Formats UTC milliseconds as RFC 3339 in the given offset.
pub(crate) fn rfc3339(ms: i64, offset_s: i32) -> String {
    ticks_ingest::format_rfc3339(ms, offset_s)
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

/// Keeps only the named fields of an entry's JSON.
pub(crate) fn only_fields(mut entry: Value, fields: &[String]) -> Value {
    if let Value::Object(map) = &mut entry {
        map.retain(|k, _| fields.iter().any(|f| f == k));
    }
    entry
}

#[cfg(test)]
mod tests {
    use super::*;

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
