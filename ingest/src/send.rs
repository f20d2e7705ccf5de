//! Send results: what a sending application reports after each Cloud API call.

use crate::error::ParseError;
use crate::json::{dig, dig_str, index, join, kind, At, Json};
use crate::time::parse_instant;
use std::hash::{Hash, Hasher};
use ticks_engine::{
    is_user_id, normalize_phone, MetaError, Origin, SendEvent, SendOutcome, TemplateParam,
};

/// Parses one send result object (see the module docs of the crate for the shape).
pub(crate) fn parse_send_value(v: &Json<'_>, path: &str) -> Result<SendEvent, ParseError> {
    if !v.is_object() {
        return Err(ParseError::field(
            if path.is_empty() { "(root)" } else { path },
            format!("expected a send result object, found {}", kind(v)),
        ));
    }
    let at = At::new(v, path);
    let recorded = match at.get("recorded_at") {
        Some(r) => parse_instant(r, &join(path, "recorded_at"))?,
        None => return Err(ParseError::field(join(path, "recorded_at"), "missing")),
    };
    let request_path = join(path, "request");
    let request = at
        .object("request")?
        .ok_or_else(|| ParseError::field(&request_path, "missing"))?;
    // After the request: a body missing both reports the request first.
    let recorded = plausible(recorded, &join(path, "recorded_at"))?;
    let response_code = match at.get("response_code") {
        None => None,
        Some(Json::Number(n)) => {
            let code = n
                .as_u64()
                .filter(|c| (100..=599).contains(c))
                .ok_or_else(|| {
                    ParseError::field(
                        join(path, "response_code"),
                        format!("{n} is not an HTTP status"),
                    )
                })?;
            Some(code as u16)
        }
        Some(Json::String(s)) => Some(
            s.parse::<u16>()
                .ok()
                .filter(|c| (100..=599).contains(c))
                .ok_or_else(|| {
                    ParseError::field(
                        join(path, "response_code"),
                        format!("{s:?} is not an HTTP status"),
                    )
                })?,
        ),
        Some(other) => {
            return Err(ParseError::field(
                join(path, "response_code"),
                format!("expected an HTTP status or null, found {}", kind(other)),
            ))
        }
    };
    let response = match at.get("response") {
        None => None,
        Some(r @ Json::Object(_)) => Some(r),
        // Some senders log a non-JSON body as a string: keep it as text.
        Some(Json::String(_)) => None,
        Some(other) => {
            return Err(ParseError::field(
                join(path, "response"),
                format!("expected an object or null, found {}", kind(other)),
            ))
        }
    };
    let transport_error = at.opt_text("error")?;

    let wamid = match response.and_then(|r| r.get("messages")) {
        None | Some(Json::Null) => None,
        Some(Json::Array(msgs)) => match msgs.first() {
            None => None,
            Some(m) => match m.get("id") {
                Some(Json::String(id)) if !id.is_empty() => Some(id.to_string()),
                _ => {
                    return Err(ParseError::field(
                        format!("{}[0].id", join(&join(path, "response"), "messages")),
                        "missing wamid",
                    ))
                }
            },
        },
        Some(other) => {
            return Err(ParseError::field(
                join(&join(path, "response"), "messages"),
                format!("expected an array, found {}", kind(other)),
            ))
        }
    };
    let message_status = response
        .and_then(|r| r.get("messages")?.at(0)?.get("message_status")?.as_str())
        .map(String::from);
    let outcome = match response_code {
        None => SendOutcome::NoResponse,
        Some(c) if (200..300).contains(&c) => match message_status.as_deref() {
            Some("held_for_quality_assessment") => SendOutcome::Held,
            Some("paused") => SendOutcome::Paused,
            _ => SendOutcome::Accepted,
        },
        Some(_) => SendOutcome::Rejected,
    };
    let error = response
        .and_then(|r| r.get("error"))
        .map(meta_error_from_send);

    let request_at = At::new(request, &request_path);
    let content_type = match request_at.opt_text("type")? {
        Some(t) => Some(t),
        None if request.get("status").and_then(Json::as_str) == Some("read") => {
            Some("read_receipt".into())
        }
        None if request.get("text").is_some() => Some("text".into()),
        None => None,
    };
    let mut text = String::new();
    let mut params = Vec::new();
    let (mut template, mut language) = (None, None);
    if let Some(ct) = content_type.as_deref() {
        render_content(
            request,
            ct,
            &mut text,
            &mut params,
            &mut template,
            &mut language,
            &request_path,
        )?;
    }
    // The response's `contacts[0]` pairs what was dialled (`input`) with
    // the account Meta delivered to (`wa_id`, `user_id`): one person.
    let answered = |key: &str| {
        response
            .and_then(|r| r.get("contacts")?.at(0)?.get(key))
            .and_then(|w| match w {
                Json::String(s) => Some(s.to_string()),
                Json::Number(n) => Some(n.to_string()),
                _ => None,
            })
    };
    let wa_id = answered("wa_id").map(|w| normalize_phone(&w));
    // A send addresses a number (`to`) or a business-scoped user id (`to`
    // or `recipient`).
    let mut phone = None;
    let mut user_id = answered("user_id");
    for addressed in [
        request_at.opt_digits("to")?,
        request_at.str_or_none("recipient"),
    ]
    .into_iter()
    .flatten()
    {
        if is_user_id(addressed.trim()) {
            user_id.get_or_insert_with(|| addressed.trim().to_string());
        } else if phone.is_none() {
            phone = Some(normalize_phone(&addressed));
        }
    }
    let correlation_id = at
        .opt_text("correlation_id")?
        .or_else(|| request_at.str_or_none("biz_opaque_callback_data"));
    let reply_to = dig_str(request, &["context", "message_id"]);
    let wamid_present = wamid.is_some();
    Ok(SendEvent {
        recorded_ms: recorded.ms,
        offset_s: recorded.offset_s,
        category: at.opt_text("category")?,
        name: at.opt_text("name")?,
        // The CRM's kind of recipient; else a group send says so.
        recipient_type: at.opt_text("recipient_type")?.or_else(|| {
            request_at
                .str_or_none("recipient_type")
                .filter(|t| t == "group")
        }),
        recipient_ref: at.opt_text("recipient_ref")?,
        user: at.opt_text("user")?,
        subaccount: at.opt_text("subaccount")?,
        phone_number_id: at.opt_digits("phone_number_id")?,
        correlation_id,
        phone,
        wa_id,
        user_id,
        wamid,
        response_code,
        outcome: Some(outcome),
        content_type,
        template,
        template_language: language,
        params,
        text,
        error,
        transport_error,
        reply_to,
        // Only a send without a wamid is recognised by its fingerprint, and
        // hashing re-serializes the request: skip it when there is a wamid.
        fingerprint: if wamid_present {
            0
        } else {
            fingerprint(request, recorded.ms)
        },
        origin: Origin::Api,
    })
}

/// The earliest instant a send result may carry: WhatsApp began in 2009,
/// so an earlier time is a unit mistake (`12345` read as epoch seconds),
/// not a message.
const EARLIEST_MS: i64 = 1_230_768_000_000; // 2009-01-01T00:00:00Z
/// The latest: beyond 2100 is a unit mistake the other way (microseconds).
const LATEST_MS: i64 = 4_102_444_800_000; // 2100-01-01T00:00:00Z

/// Refuses a time no WhatsApp message can have, naming the field.
fn plausible(
    instant: crate::time::Instant,
    path: &str,
) -> Result<crate::time::Instant, ParseError> {
    if (EARLIEST_MS..LATEST_MS).contains(&instant.ms) {
        Ok(instant)
    } else {
        Err(ParseError::field(
            path,
            format!(
                "{} ms after 1970 is outside 2009-2100: give RFC 3339 with an offset, \
                 or epoch seconds or milliseconds",
                instant.ms
            ),
        ))
    }
}

/// Identity of a send that got no wamid: the same request at the same time
/// is the same attempt logged twice.
fn fingerprint(request: &Json<'_>, recorded_ms: i64) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    // The text `serde_json::Value` printed before, so fingerprints of sends
    // stored by earlier versions still match.
    request.canonical().hash(&mut h);
    recorded_ms.hash(&mut h);
    h.finish()
}

/// Reads a Meta error object (`{message, type, code, error_data: {details}, error_subcode}`).
pub(crate) fn meta_error_from_send(e: &Json<'_>) -> MetaError {
    let message = dig_str(e, &["message"]);
    let code = e
        .get("code")
        .and_then(|c| c.as_i64().or_else(|| c.as_str()?.parse().ok()));
    // Titles come as "(#131030) Recipient phone number not in allowed list".
    let title = dig_str(e, &["title"]).or_else(|| {
        message.as_ref().map(|m| match m.strip_prefix("(#") {
            Some(rest) => rest
                .split_once(") ")
                .map_or(m.clone(), |(_, t)| t.to_string()),
            None => m.clone(),
        })
    });
    MetaError {
        code,
        title,
        message,
        details: dig_str(e, &["error_data", "details"]).or_else(|| dig_str(e, &["details"])),
        subcode: e.get("error_subcode").and_then(Json::as_i64),
    }
}

fn push(text: &mut String, s: &str) {
    if s.is_empty() {
        return;
    }
    if !text.is_empty() {
        text.push('\n');
    }
    text.push_str(s);
}

#[allow(clippy::too_many_arguments)]
fn render_content(
    request: &Json<'_>,
    content_type: &str,
    text: &mut String,
    params: &mut Vec<TemplateParam>,
    template: &mut Option<String>,
    language: &mut Option<String>,
    path: &str,
) -> Result<(), ParseError> {
    match content_type {
        "text" => {
            if let Some(body) = dig_str(request, &["text", "body"]) {
                push(text, &body);
            }
        }
        "template" => {
            let t = request
                .get("template")
                .filter(|t| t.is_object())
                .ok_or_else(|| {
                    ParseError::field(join(path, "template"), "missing for a template send")
                })?;
            let tpath = join(path, "template");
            let tat = At::new(t, &tpath);
            *template = Some(
                tat.opt_text("name")?
                    .ok_or_else(|| ParseError::field(join(&tpath, "name"), "missing"))?,
            );
            *language = match tat.get("language") {
                Some(l @ Json::Object(_)) => {
                    At::new(l, &join(&tpath, "language")).opt_text("code")?
                }
                _ => tat.opt_text("language")?,
            };
            let components = match t.get("components") {
                None | Some(Json::Null) => &[][..],
                Some(Json::Array(a)) => a.as_slice(),
                Some(other) => {
                    return Err(ParseError::field(
                        join(&tpath, "components"),
                        format!("expected an array, found {}", kind(other)),
                    ))
                }
            };
            for (ci, comp) in components.iter().enumerate() {
                let cpath = index(&join(&tpath, "components"), ci);
                let ctype = dig_str(comp, &["type"])
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                let plist = match comp.get("parameters") {
                    None | Some(Json::Null) => &[][..],
                    Some(Json::Array(a)) => a.as_slice(),
                    Some(other) => {
                        return Err(ParseError::field(
                            join(&cpath, "parameters"),
                            format!("expected an array, found {}", kind(other)),
                        ))
                    }
                };
                for (pi, p) in plist.iter().enumerate() {
                    let ptype = dig_str(p, &["type"]).unwrap_or_else(|| "text".into());
                    let value = param_value(p, &ptype);
                    let name = match dig_str(p, &["parameter_name"]) {
                        Some(n) => n,
                        None if ctype == "button" => {
                            let idx = dig_str(comp, &["index"]).unwrap_or_else(|| pi.to_string());
                            let sub = dig_str(comp, &["sub_type"]).unwrap_or_default();
                            format!("{sub}[{idx}]")
                        }
                        None => (pi + 1).to_string(),
                    };
                    push(text, &value);
                    params.push(TemplateParam {
                        component: ctype.clone(),
                        name,
                        kind: ptype,
                        value,
                    });
                }
            }
        }
        "image" | "video" | "audio" | "document" | "sticker" => {
            for k in ["caption", "filename", "link"] {
                if let Some(s) = dig_str(request, &[content_type, k]) {
                    push(text, &s);
                }
            }
        }
        "interactive" => {
            if let Some(i) = request.get("interactive") {
                let mut all = String::new();
                for k in [
                    &["header", "text"][..],
                    &["body", "text"],
                    &["footer", "text"],
                ] {
                    if let Some(s) = dig(i, k).and_then(Json::as_str) {
                        push(&mut all, s);
                    }
                }
                if let Some(buttons) = dig(i, &["action", "buttons"]).and_then(Json::as_array) {
                    for b in buttons {
                        if let Some(t) = dig_str(b, &["reply", "title"]) {
                            push(&mut all, &t);
                        }
                    }
                }
                if let Some(sections) = dig(i, &["action", "sections"]).and_then(Json::as_array) {
                    for s in sections {
                        for row in s
                            .get("rows")
                            .and_then(Json::as_array)
                            .map(Vec::as_slice)
                            .unwrap_or(&[])
                        {
                            if let Some(t) = dig_str(row, &["title"]) {
                                push(&mut all, &t);
                            }
                        }
                    }
                }
                push(text, &all);
            }
        }
        "location" => {
            for k in ["name", "address"] {
                if let Some(s) = dig_str(request, &["location", k]) {
                    push(text, &s);
                }
            }
        }
        "reaction" => {
            if let Some(s) = dig_str(request, &["reaction", "emoji"]) {
                push(text, &s);
            }
        }
        _ => {}
    }
    Ok(())
}

/// The value of a template parameter as a person reads it.
fn param_value(p: &Json<'_>, ptype: &str) -> String {
    match ptype {
        "text" => dig_str(p, &["text"]).unwrap_or_default(),
        "currency" => dig_str(p, &["currency", "fallback_value"]).unwrap_or_else(|| {
            let code = dig_str(p, &["currency", "code"]).unwrap_or_default();
            let amount = p
                .get("currency")
                .and_then(|c| c.get("amount_1000"))
                .and_then(Json::as_i64)
                .map(|a| format!("{:.2}", a as f64 / 1000.0))
                .unwrap_or_default();
            format!("{amount} {code}").trim().to_string()
        }),
        "date_time" => dig_str(p, &["date_time", "fallback_value"]).unwrap_or_default(),
        "payload" => dig_str(p, &["payload"]).unwrap_or_default(),
        // A document's file name is what a person sees of it.
        "document" => dig_str(p, &[ptype, "filename"])
            .or_else(|| dig_str(p, &[ptype, "link"]))
            .or_else(|| dig_str(p, &[ptype, "id"]))
            .unwrap_or_default(),
        "image" | "video" => dig_str(p, &[ptype, "link"])
            .or_else(|| dig_str(p, &[ptype, "id"]))
            .or_else(|| dig_str(p, &[ptype, "filename"]))
            .unwrap_or_default(),
        "location" => [
            dig_str(p, &["location", "name"]),
            dig_str(p, &["location", "address"]),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", "),
        other => dig_str(p, &[other])
            .or_else(|| dig_str(p, &["text"]))
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_lose_their_code_prefix() {
        let raw = br#"{"message": "(#131030) Recipient phone number not in allowed list", "code": 131030}"#;
        let m = meta_error_from_send(&Json::parse(raw).expect("parses"));
        assert_eq!(m.code, Some(131030));
        assert_eq!(
            m.title.as_deref(),
            Some("Recipient phone number not in allowed list")
        );
    }
}
