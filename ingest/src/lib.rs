//! Turns what reaches Ticks from the outside world into engine [`Input`]s,
//! with the WhatsApp Cloud API's semantics (`shared/CLOUD_API.md`).
//!
//! # Data flow
//! ```text
//! raw bytes --parse--> Json (borrows the bytes) --derive--> Event(s) --> Input { raw, events }
//!   send result  -> Event::Send   (wamid, outcome, template params, error...)
//!   webhook body -> Event::Status / Event::Inbound / Event::Other per item
//! NDJSON line    -> either, told apart by an "object" key
//! ```
//! The raw bytes ride along untouched; the engine stores both. The HTTP
//! endpoints, the logging proxy and bulk import all call these functions, so
//! there is one parser and one set of rules. Deduplication and status rules
//! are applied by the engine when the input is appended.
//!
//! # Errors
//! Send results and import lines that do not parse get a [`ParseError`] that
//! names the field path (`request.template.name: missing`). Webhook bodies
//! are only refused when they are not webhooks at all; a malformed item
//! inside one is kept as a `malformed` event (Meta cannot resend it on
//! request).
//!
//! # Example
//! ```
//! let raw = br#"{"recorded_at":"2025-03-01T10:00:00-03:00","category":"marketing_campaign",
//!   "name":"Black Friday","recipient_type":"lead","phone_number_id":"106540352242922",
//!   "request":{"messaging_product":"whatsapp","to":"+55 11 98765-4321","type":"text","text":{"body":"Hi"}},
//!   "response_code":200,"response":{"messaging_product":"whatsapp",
//!   "contacts":[{"input":"5511987654321","wa_id":"5511987654321"}],"messages":[{"id":"wamid.X"}]}}"#;
//! let input = ticks_ingest::send_input(raw.to_vec(), ticks_engine::Source::SendApi, 0).unwrap();
//! match &input.events[0] {
//!     ticks_engine::Event::Send(s) => assert_eq!(s.wamid.as_deref(), Some("wamid.X")),
//!     _ => unreachable!(),
//! }
//! ```

mod codes;
mod error;
pub mod generate;
mod import;
mod json;
mod send;
mod templates;
mod time;
mod webhook;

pub use codes::{http_code_info, meta_error_info, CodeInfo, KNOWN_META_CODES};
pub use error::{ImportError, ParseError};
pub use import::{import, ImportOptions, ImportReport, ImportTarget, PendingBatch, Rejection};
pub use templates::{parse_template_page, TemplatePage};
pub use time::format_rfc3339;

use json::Json;
use serde_json::value::RawValue;
use ticks_engine::{Event, Input, Source};

/// Largest single input accepted (a webhook may be 3 MB; this leaves room).
pub const MAX_INPUT_BYTES: usize = 8 * 1024 * 1024;

fn parse_json(raw: &[u8]) -> Result<Json<'_>, ParseError> {
    if raw.len() > MAX_INPUT_BYTES {
        return Err(ParseError::TooLarge {
            size: raw.len(),
            limit: MAX_INPUT_BYTES,
        });
    }
    Json::parse(raw).map_err(|e| ParseError::Json(e.to_string()))
}

/// Parses one send result object into an input.
pub fn send_input(raw: Vec<u8>, source: Source, received_ms: i64) -> Result<Input, ParseError> {
    let event = send::parse_send_value(&parse_json(&raw)?, "")?;
    Ok(Input {
        source,
        received_ms,
        raw,
        events: vec![Event::Send(Box::new(event))],
    })
}

/// Parses the body of `POST /v1/sends`: one send result, or an array of
/// them. Each array element becomes its own input with its own exact bytes;
/// a bad element is reported at its index and does not stop the others.
pub fn send_batch(
    raw: &[u8],
    source: Source,
    received_ms: i64,
) -> Result<Vec<Result<Input, ParseError>>, ParseError> {
    if raw.len() > MAX_INPUT_BYTES {
        return Err(ParseError::TooLarge {
            size: raw.len(),
            limit: MAX_INPUT_BYTES,
        });
    }
    let first = raw.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'[') {
        return Ok(vec![send_input(raw.to_vec(), source, received_ms)]);
    }
    let items: Vec<&RawValue> =
        serde_json::from_slice(raw).map_err(|e| ParseError::Json(e.to_string()))?;
    Ok(items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let bytes = item.get().as_bytes().to_vec();
            let v = Json::parse(&bytes).map_err(|e| ParseError::Json(e.to_string()))?;
            let event = send::parse_send_value(&v, &format!("[{i}]"))?;
            drop(v);
            Ok(Input {
                source,
                received_ms,
                raw: bytes,
                events: vec![Event::Send(Box::new(event))],
            })
        })
        .collect())
}

/// Parses a webhook body exactly as Meta posts it.
pub fn webhook_input(raw: Vec<u8>, source: Source, received_ms: i64) -> Result<Input, ParseError> {
    let events = webhook::parse_webhook_value(&parse_json(&raw)?, received_ms)?;
    Ok(Input {
        source,
        received_ms,
        raw,
        events,
    })
}

/// The envelope of a line of a Ticks NDJSON export: the input's exact raw
/// bytes with where and when it was first received, so that importing an
/// export gives back the same entries.
#[derive(serde::Deserialize)]
struct ExportEnvelope<'a> {
    #[allow(dead_code)]
    ticks_record: u32,
    source: String,
    received_ms: i64,
    #[serde(borrow)]
    raw: &'a RawValue,
}

/// Wraps a stored input as a line of an NDJSON export (see [`line_input`]).
pub fn export_line(source: Source, received_ms: i64, raw_one_line: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "{{\"ticks_record\":1,\"source\":\"{}\",\"received_ms\":{received_ms},\"raw\":",
        source.as_str()
    )
    .into_bytes();
    out.extend_from_slice(raw_one_line);
    out.push(b'}');
    out
}

fn source_named(name: &str) -> Option<Source> {
    [
        Source::SendApi,
        Source::Webhook,
        Source::Import,
        Source::Proxy,
    ]
    .into_iter()
    .find(|s| s.as_str() == name)
}

/// Parses one NDJSON line: a webhook body when it has an `"object"` key,
/// otherwise a send result. A line of a Ticks export (an envelope with
/// `ticks_record`) is unwrapped: its raw bytes, source and receive time are
/// kept as they were.
pub fn line_input(raw: Vec<u8>, source: Source, received_ms: i64) -> Result<Input, ParseError> {
    line_input_or_back(raw, source, received_ms).map_err(|(e, _)| e)
}

/// [`line_input`], giving the line back with the error: an import writes a
/// rejected line to its rejects file, and keeping the line this way saves a
/// copy of every line that is not rejected.
pub(crate) fn line_input_or_back(
    raw: Vec<u8>,
    source: Source,
    received_ms: i64,
) -> Result<Input, (ParseError, Vec<u8>)> {
    if raw.starts_with(b"{\"ticks_record\":") {
        return unwrap_export_line(&raw).map_err(|e| (e, raw));
    }
    match line_events(&raw, received_ms) {
        Ok(events) => Ok(Input {
            source,
            received_ms,
            raw,
            events,
        }),
        Err(e) => Err((e, raw)),
    }
}

/// The events of a line: a webhook body's, or one send result.
fn line_events(raw: &[u8], received_ms: i64) -> Result<Vec<Event>, ParseError> {
    let v = parse_json(raw)?;
    if v.get("object").is_some() {
        webhook::parse_webhook_value(&v, received_ms)
    } else {
        Ok(vec![Event::Send(Box::new(send::parse_send_value(&v, "")?))])
    }
}

/// The input a line of a Ticks export holds, with its own source and
/// receive time.
fn unwrap_export_line(raw: &[u8]) -> Result<Input, ParseError> {
    let env: ExportEnvelope<'_> =
        serde_json::from_slice(raw).map_err(|e| ParseError::Json(e.to_string()))?;
    let inner = env.raw.get().as_bytes().to_vec();
    let original = source_named(&env.source)
        .ok_or_else(|| ParseError::field("source", format!("unknown source {:?}", env.source)))?;
    let mut input = line_input(inner, original, env.received_ms)?;
    input.source = original;
    Ok(input)
}

/// The current time in UTC milliseconds, as inputs record it.
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}
