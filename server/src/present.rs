//! How entries and times look to people and scripts: the JSON of an entry,
//! and RFC 3339 times in their original offset.

use serde_json::{json, Value};
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
    if let Some(info) = e.error_code.and_then(ticks_ingest::meta_error_info) {
        v["error_meaning"] = json!(info.meaning);
        v["error_action"] = json!(info.action);
    }
    if let Some(info) = e.response_code.and_then(ticks_ingest::http_code_info) {
        v["response_meaning"] = json!(info.meaning);
    }
    v
}
