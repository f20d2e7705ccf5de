//! Request handlers of the HTTP API.

use crate::app::App;
use crate::error::ApiError;
use crate::present::{entry_fields, entry_json, fields_json, rfc3339, EntryOut};
use crate::request::{
    blocking, json_body, query_pairs, read_body, read_unauthenticated_body, MAX_IMPORT_BYTES,
};
use crate::respond::{json_response, text_response, Body};
use hmac::{Hmac, Mac};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};
use sha2::Sha256;
use std::sync::Arc;
use std::time::Instant;
use ticks_engine::{EntryId, Event, Source};
use ticks_query::{GroupBy, LogQuery};

pub(crate) fn webhook_verify(
    app: &App,
    req: &Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let params = query_pairs(req);
    let get = |k: &str| params.iter().find(|(a, _)| a == k).map(|(_, b)| b.as_str());
    let expected = app
        .settings
        .verify_token
        .as_deref()
        .ok_or_else(|| ApiError::Forbidden("no verify_token is configured".into()))?;
    let token_ok = get("hub.verify_token").is_some_and(|t| {
        use subtle::ConstantTimeEq;
        bool::from(t.as_bytes().ct_eq(expected.as_bytes()))
    });
    if get("hub.mode") == Some("subscribe") && token_ok {
        let challenge = get("hub.challenge").unwrap_or("").to_string();
        Ok(text_response(StatusCode::OK, "text/plain", challenge))
    } else {
        Err(ApiError::Forbidden(
            "verification failed: wrong hub.mode or hub.verify_token".into(),
        ))
    }
}

fn check_signature(secret: &str, header: Option<&str>, body: &[u8]) -> bool {
    let Some(hex_sig) = header.and_then(|h| h.trim().strip_prefix("sha256=")) else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(body);
    // verify_slice compares in constant time.
    mac.verify_slice(&sig).is_ok()
}

pub(crate) async fn webhook_post(
    app: Arc<App>,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let signature = req
        .headers()
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    // Held against the unauthenticated budget until the answer: the
    // signature is checked only once the whole body is here.
    let (body, _held) = read_unauthenticated_body(&app, req, app.settings.max_body_bytes).await?;
    if let Some(secret) = &app.settings.app_secret {
        if !check_signature(secret, signature.as_deref(), &body) {
            app.metrics.count_rejected("webhook");
            return Err(ApiError::BadSignature);
        }
    }
    let store = app.store()?;
    let input = ticks_ingest::webhook_input(body.to_vec(), Source::Webhook, ticks_ingest::now_ms())
        .inspect_err(|_| app.metrics.count_rejected("webhook"))?;
    // Awaited, not a blocking thread per request: the writer's callback
    // hands the outcome over (a thread per webhook made most of the
    // intake's time context switches).
    let (tx, rx) = tokio::sync::oneshot::channel();
    store.append_then(
        vec![input],
        Box::new(move |result| {
            let _ = tx.send(result);
        }),
    );
    let outcome = rx
        .await
        .map_err(|_| ApiError::Unavailable("the store closed".into()))??
        .pop()
        .ok_or_else(|| ApiError::Internal("an append returned no outcome".into()))?;
    app.metrics
        .count_outcome("webhook", outcome.stored as u64, outcome.duplicates as u64);
    if outcome.seq.is_some() {
        if let Some(r) = app.relays.get() {
            r.wake.notify_waiters();
        }
    }
    // 200 only now that the record is durable; 200 again for a duplicate.
    Ok(json_response(
        StatusCode::OK,
        &json!({"stored": outcome.stored, "duplicates": outcome.duplicates, "duplicate": outcome.is_duplicate()}),
    ))
}

pub(crate) async fn post_sends(
    app: Arc<App>,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let body = read_body(req.into_body(), app.settings.max_body_bytes).await?;
    let store = app.store()?;
    let items = ticks_ingest::send_batch(&body, Source::SendApi, ticks_ingest::now_ms())?;
    let mut results: Vec<Value> = vec![Value::Null; items.len()];
    let mut inputs = Vec::new();
    let mut positions = Vec::new();
    let mut rejected = 0u64;
    for (i, item) in items.into_iter().enumerate() {
        match item {
            Ok(input) => {
                inputs.push(input);
                positions.push(i);
            }
            Err(e) => {
                rejected += 1;
                results[i] = json!({"index": i, "result": "rejected", "error": e.to_string(), "field": e.field_path()});
            }
        }
    }
    let outcomes = blocking(move || Ok(store.append(inputs)?)).await?;
    let (mut stored, mut duplicates) = (0u64, 0u64);
    for (pos, outcome) in positions.into_iter().zip(outcomes) {
        let result = if outcome.is_duplicate() {
            duplicates += 1;
            "duplicate"
        } else {
            stored += 1;
            "stored"
        };
        results[pos] =
            json!({"index": pos, "result": result, "id": outcome.entries.first().map(|e| e.0)});
    }
    app.metrics.count_outcome("send", stored, duplicates);
    for _ in 0..rejected {
        app.metrics.count_rejected("send");
    }
    let status = if stored + duplicates == 0 && rejected > 0 {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok(json_response(
        status,
        &json!({"stored": stored, "duplicates": duplicates, "rejected": rejected, "items": results}),
    ))
}

pub(crate) async fn post_import(
    app: Arc<App>,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let body = read_body(req.into_body(), MAX_IMPORT_BYTES).await?;
    let store = app.store()?;
    let started = Instant::now();
    let report = blocking(move || {
        store
            .import(
                &mut std::io::BufReader::new(&body[..]),
                &ticks_ingest::ImportOptions::default(),
            )
            // A backend that cannot take the lines now (ClickHouse down or
            // too slow) is a 503, for the sender to retry the request.
            .map_err(ApiError::from)
    })
    .await?;
    app.metrics
        .count_outcome("import", report.stored, report.duplicates);
    for _ in 0..report.rejected {
        app.metrics.count_rejected("import");
    }
    let secs = started.elapsed().as_secs_f64().max(1e-6);
    Ok(json_response(
        StatusCode::OK,
        &json!({"lines": report.lines, "stored": report.stored, "duplicates": report.duplicates, "rejected": report.rejected,
                "rejections": report.rejections, "lines_per_second": (report.lines as f64 / secs).round()}),
    ))
}

pub(crate) async fn get_logs(
    app: Arc<App>,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let params = query_pairs(&req);
    let query = LogQuery::from_params(&params, &["fields"])?;
    let fields = requested_fields(&params)?;
    let store = app.store()?;
    let started = Instant::now();
    let page = blocking(move || Ok(store.search(&query)?)).await?;
    app.metrics.observe_query(started.elapsed());
    // Keys in the order a `Value` map wrote them (sorted).
    #[derive(serde::Serialize)]
    struct PageOut<'a> {
        entries: Vec<EntryOut<'a>>,
        next_cursor: &'a Option<String>,
        total: u64,
    }
    let out = PageOut {
        entries: page
            .entries
            .iter()
            .map(|entry| EntryOut {
                entry,
                fields: fields.as_deref(),
            })
            .collect(),
        next_cursor: &page.next_cursor,
        total: page.total,
    };
    Ok(json_response(StatusCode::OK, &out))
}

/// `fields=a,b,c`: the columns each entry is answered with (all when
/// absent); an unknown name is a 400 that names it.
fn requested_fields(params: &[(String, String)]) -> Result<Option<Vec<String>>, ApiError> {
    let Some((_, list)) = params.iter().rev().find(|(k, _)| k == "fields") else {
        return Ok(None);
    };
    let known = entry_fields();
    let mut fields = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if !known.contains(&name) {
            return Err(ApiError::BadRequest {
                code: "invalid_param",
                message: format!(
                    "fields: {name:?} is not a column (one of {})",
                    known.join(", ")
                ),
                field: Some("fields".into()),
            });
        }
        fields.push(name.to_string());
    }
    Ok(Some(fields))
}

fn parse_id(id: &str) -> Result<EntryId, ApiError> {
    id.parse::<u32>()
        .map(EntryId)
        .map_err(|_| ApiError::BadRequest {
            code: "invalid_param",
            message: format!("id: {id:?} is not an entry id"),
            field: Some("id".into()),
        })
}

/// A raw input as the detail view shows it: JSON when it is JSON.
fn raw_json(raw: &[u8]) -> Value {
    serde_json::from_slice(raw)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(raw).into_owned()))
}

/// `GET /v1/contacts/{X}`: the person an identifier names (any number
/// format, a user id, `@username`), with every identifier Ticks learned for
/// them and their messages at a glance; 404 when no entry is theirs.
pub(crate) async fn get_contact(app: Arc<App>, typed: &str) -> Result<Response<Body>, ApiError> {
    let typed = percent_encoding::percent_decode_str(typed)
        .decode_utf8()
        .map_err(|_| ApiError::bad("invalid_contact", "the identifier is not UTF-8"))?
        .into_owned();
    if typed.trim().is_empty() || typed.len() > 256 {
        return Err(ApiError::bad(
            "invalid_contact",
            "name a person: a phone number, a user id or @username (at most 256 bytes)",
        ));
    }
    let store = app.store()?;
    let lookup = typed.clone();
    let contact = blocking(move || Ok(store.contact(&lookup)?))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no entry is with {typed:?}")))?;
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "identifiers": contact.identifiers,
            "name": contact.name,
            "first_seen": rfc3339(contact.first_seen_ms, 0),
            "last_seen": rfc3339(contact.last_seen_ms, 0),
            "counts": contact.counts,
            "marketing": {
                "opted_out": contact.marketing.opted_out,
                "history": contact.marketing.history.iter().map(|c| json!({
                    "value": c.value,
                    "at": rfc3339(c.at_ms, 0),
                    "source": c.source,
                    "entry": c.entry.0,
                })).collect::<Vec<_>>(),
            },
            "entries": contact.entries.len(),
        }),
    ))
}

pub(crate) async fn get_log(app: Arc<App>, id: &str) -> Result<Response<Body>, ApiError> {
    let id = parse_id(id)?;
    let store = app.store()?;
    let value = blocking(move || {
        let detail = store
            .entry_detail(id)?
            .ok_or_else(|| ApiError::NotFound(format!("entry {id} does not exist")))?;
        let timeline = match &detail.entry.wamid {
            Some(w) => store.timeline(w)?,
            None => None,
        };
        let mut params = Vec::new();
        let mut request = Value::Null;
        let mut response = Value::Null;
        let mut inputs = Vec::new();
        for input in &detail.inputs {
            let raw = raw_json(&input.raw);
            for ev in &input.events {
                if let Event::Send(s) = ev {
                    params = s.params.clone();
                    request = raw.get("request").cloned().unwrap_or(Value::Null);
                    response = raw.get("response").cloned().unwrap_or(Value::Null);
                }
            }
            inputs.push(json!({"seq": input.seq.0, "source": input.source.as_str(),
                "received_at": rfc3339(input.received_ms, 0), "raw": raw}));
        }
        let e = &detail.entry;
        Ok(json!({
            "entry": entry_json(e),
            "recorded_at_utc": rfc3339(e.recorded_ms, 0),
            "request": request,
            "response": response,
            "template_params": params,
            "inputs": inputs,
            "timeline": timeline.map(|t| t.items),
        }))
    })
    .await?;
    Ok(json_response(StatusCode::OK, &value))
}

pub(crate) async fn get_timeline(app: Arc<App>, wamid: &str) -> Result<Response<Body>, ApiError> {
    let wamid = form_urlencoded::parse(format!("w={wamid}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let store = app.store()?;
    let timeline = blocking(move || Ok(store.timeline(&wamid)?)).await?;
    match timeline {
        Some(t) => Ok(json_response(
            StatusCode::OK,
            &json!({"entry": entry_json(&t.entry), "items": t.items}),
        )),
        None => Err(ApiError::NotFound("no message with this wamid".into())),
    }
}

/// `GET /v1/store`: the store's sizes and counts (`ticks stats`).
pub(crate) async fn get_store(app: Arc<App>) -> Result<Response<Body>, ApiError> {
    let store = app.store()?;
    let stats = blocking(move || Ok(store.store_stats()?)).await?;
    Ok(json_response(StatusCode::OK, &stats))
}

pub(crate) async fn get_stats(
    app: Arc<App>,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let params = query_pairs(&req);
    let group = params
        .iter()
        .find(|(k, _)| k == "group_by")
        .map(|(_, v)| v.clone())
        .ok_or(ApiError::BadRequest { code: "invalid_param", message: "group_by: missing (status, response_code, error_code, category, name, template, day, hour...)".into(), field: Some("group_by".into()) })?;
    let group_by = GroupBy::parse(&group)?;
    let query = LogQuery::from_params(&params, &["group_by"])?;
    let store = app.store()?;
    let started = Instant::now();
    let stats = blocking(move || Ok(store.stats(&query, group_by)?)).await?;
    app.metrics.observe_query(started.elapsed());
    Ok(json_response(
        StatusCode::OK,
        &json!({"group_by": group, "total": stats.total, "groups": stats.groups}),
    ))
}

/// `GET /v1/report`: the consolidated report (funnels, failure reasons,
/// series, inbound) for any filter of `/v1/logs`.
pub(crate) async fn get_report(
    app: Arc<App>,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let params = query_pairs(&req);
    let mut options = ticks_query::ReportOptions::from_params(&params)?;
    let query = LogQuery::from_params(&params, &ticks_query::REPORT_PARAMS)?;
    let store = app.store()?;
    let started = Instant::now();
    let card = params
        .iter()
        .find(|(k, _)| k == "rate_card")
        .map(|(_, v)| v.clone());
    // `format=text`: the report as `ticks report` prints it (the command
    // line beside a running server asks for this).
    let as_text = params.iter().any(|(k, v)| k == "format" && v == "text");
    let zone = query.tz.iana_name().unwrap_or("UTC").to_string();
    let sections = options.sections;
    let report = blocking(move || {
        if options.sections.cost {
            options.rate_card = crate::rates::load_card(store.as_ref(), card.as_deref())?;
        }
        Ok(store.report(&query, &options)?)
    })
    .await?;
    app.metrics.observe_query(started.elapsed());
    if as_text {
        return Ok(crate::respond::text_response(
            StatusCode::OK,
            "text/plain; charset=utf-8",
            crate::report_text::render(&report, &zone, sections),
        ));
    }
    Ok(json_response(StatusCode::OK, &report))
}

/// `GET /v1/fields`: the field catalog (name, aliases, label, kind, and
/// whether it filters, sorts, groups and is exported), which the page and
/// scripts read instead of keeping their own list.
pub(crate) fn get_fields() -> Response<Body> {
    json_response(StatusCode::OK, &fields_json())
}

pub(crate) fn get_codes() -> Response<Body> {
    let mut meta = serde_json::Map::new();
    for code in ticks_ingest::KNOWN_META_CODES {
        if let Some(info) = ticks_ingest::meta_error_info(code) {
            meta.insert(code.to_string(), json!(info));
        }
    }
    let mut http = serde_json::Map::new();
    for code in [200u16, 400, 401, 403, 404, 429, 500] {
        if let Some(info) = ticks_ingest::http_code_info(code) {
            http.insert(code.to_string(), json!(info));
        }
    }
    json_response(StatusCode::OK, &json!({"meta": meta, "http": http}))
}

/// The outcome of a purge as the API answers it.
fn purge_response(
    outcome: std::result::Result<crate::purge::Purged, crate::purge::Refusal>,
) -> Result<Response<Body>, ApiError> {
    match outcome {
        Ok(p) => Ok(json_response(
            StatusCode::OK,
            &json!({"deleted": p.deleted, "receipt": p.receipt, "forced": p.forced}),
        )),
        Err(refusal) => Err(ApiError::Conflict {
            code: "export_required",
            message: refusal.to_string(),
        }),
    }
}

/// `DELETE /v1/logs/{id}[?receipt=ID][&force=true]`.
pub(crate) async fn delete_log(
    app: Arc<App>,
    req: &Request<Incoming>,
    id: &str,
    actor: String,
) -> Result<Response<Body>, ApiError> {
    let id = parse_id(id)?;
    let params = query_pairs(req);
    let receipt = params
        .iter()
        .find(|(k, _)| k == "receipt")
        .map(|(_, v)| v.clone());
    let force = params.iter().any(|(k, v)| k == "force" && v == "true");
    let store = app.store()?;
    let outcome = blocking(move || {
        if store.entries(&[id.0])?.is_empty() {
            return Err(ApiError::NotFound(format!("entry {id} does not exist")));
        }
        let mut ids = roaring::RoaringBitmap::new();
        ids.insert(id.0);
        crate::purge::purge(
            &*store,
            &ids,
            &actor,
            &format!("id={id}"),
            receipt.as_deref(),
            force,
        )
        .map_err(purge_error)
    })
    .await?;
    purge_response(outcome)
}

/// The body of `POST /v1/delete`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteRequest {
    /// The entries to delete, by id.
    #[serde(default)]
    ids: Option<Vec<u32>>,
    /// Or the entries a filter selects (the query string of `/v1/logs`).
    #[serde(default)]
    filter: Option<String>,
    /// The filter may select every entry.
    #[serde(default)]
    all: Option<bool>,
    /// Delete without an export, accepting the loss.
    #[serde(default)]
    force: Option<bool>,
    /// The export receipt that covers the entries.
    #[serde(default)]
    receipt: Option<String>,
}

/// The body of `POST /v1/searches`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SaveSearchRequest {
    #[serde(default)]
    name: String,
    /// The query string of `/v1/logs`.
    #[serde(default)]
    query: String,
}

/// `POST /v1/delete` with `{"ids": [..]}` or `{"filter": "status=failed&..."}`,
/// and `"receipt": "<export receipt id>"` or `"force": true` (see `purge`).
pub(crate) async fn post_delete(
    app: Arc<App>,
    req: Request<Incoming>,
    actor: String,
) -> Result<Response<Body>, ApiError> {
    let body = read_body(req.into_body(), 16 * 1024 * 1024).await?;
    let DeleteRequest {
        ids,
        filter,
        all,
        force,
        receipt,
    } = json_body(&body)?;
    let (all, force) = (all.unwrap_or(false), force.unwrap_or(false));
    let store = app.store()?;
    let (ids, filter_text) = if let Some(list) = ids {
        let ids: roaring::RoaringBitmap = list.into_iter().collect();
        let text = format!(
            "id={}",
            ids.iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(",")
        );
        (ids, text)
    } else if filter.is_some() || all {
        let filter = filter.unwrap_or_default();
        let params: Vec<(String, String)> = form_urlencoded::parse(filter.as_bytes())
            .into_owned()
            .collect();
        let query =
            crate::purge::deletion_query(&params, all).map_err(|r| ApiError::BadRequest {
                code: "invalid_param",
                field: Some(r.field().to_string()),
                message: r.to_string(),
            })?;
        let s = store.clone();
        let ids = blocking(move || Ok(s.matching(&query)?)).await?;
        (ids, filter)
    } else {
        return Err(ApiError::bad("invalid_param", "give ids or filter"));
    };
    let outcome = blocking(move || {
        crate::purge::purge(
            &*store,
            &ids,
            &actor,
            &filter_text,
            receipt.as_deref(),
            force,
        )
        .map_err(purge_error)
    })
    .await?;
    purge_response(outcome)
}

/// A purge's failure as the API answers it: the backend's own errors keep
/// their status (503 while ClickHouse is down, 501 where it cannot
/// purge), anything else is internal.
fn purge_error(e: anyhow::Error) -> ApiError {
    match e.downcast::<ticks_query::QueryError>() {
        Ok(e) => ApiError::from(e),
        Err(e) => ApiError::Internal(format!("{e:#}")),
    }
}

const SEARCHES: &str = "saved_search";

pub(crate) async fn list_searches(app: Arc<App>) -> Result<Response<Body>, ApiError> {
    let store = app.store()?;
    let list = blocking(move || Ok(store.settings(SEARCHES)?)).await?;
    let items: Vec<Value> = list
        .into_iter()
        .map(|(name, v)| json!({"name": name, "query": String::from_utf8_lossy(&v)}))
        .collect();
    Ok(json_response(StatusCode::OK, &json!({"searches": items})))
}

pub(crate) async fn save_search(
    app: Arc<App>,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let body = read_body(req.into_body(), 64 * 1024).await?;
    let SaveSearchRequest { name, query } = json_body(&body)?;
    let name = name.trim();
    if name.is_empty() || name.len() > 100 || name.contains('/') {
        return Err(ApiError::BadRequest {
            code: "invalid_param",
            message: "name: 1 to 100 characters, no '/'".into(),
            field: Some("name".into()),
        });
    }
    let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    LogQuery::from_params(&params, &["columns"])?;
    let store = app.store()?;
    let name = name.to_string();
    let n = name.clone();
    blocking(move || Ok(store.put_setting(SEARCHES, &n, query.as_bytes())?)).await?;
    Ok(json_response(StatusCode::OK, &json!({"saved": name})))
}

pub(crate) async fn delete_search(app: Arc<App>, name: &str) -> Result<Response<Body>, ApiError> {
    let name: String = form_urlencoded::parse(format!("n={name}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let store = app.store()?;
    let n = name.clone();
    let existed = blocking(move || Ok(store.delete_setting(SEARCHES, &n)?)).await?;
    if existed {
        Ok(json_response(StatusCode::OK, &json!({"deleted": name})))
    } else {
        Err(ApiError::NotFound(format!(
            "no saved search named {name:?}"
        )))
    }
}

/// `GET /v1/export?format=csv|xlsx|pdf|ndjson&<filters>`: streams the export;
/// its receipt is stored when the last byte is written (`GET /v1/receipts`).
pub(crate) async fn get_export(
    app: Arc<App>,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    use crate::export::{self, Format};
    use http_body_util::BodyExt;
    let params = query_pairs(&req);
    let format_text = params
        .iter()
        .find(|(k, _)| k == "format")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let format = Format::parse(&format_text).ok_or(ApiError::BadRequest {
        code: "invalid_param",
        message: format!("format: {format_text:?} is not one of csv, xlsx, pdf, ndjson"),
        field: Some("format".into()),
    })?;
    let query = LogQuery::from_params(&params, &["format", "limit", "offset", "cursor"])?;
    let filter: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(
            params
                .iter()
                .filter(|(k, _)| !["format", "limit", "offset", "cursor"].contains(&k.as_str())),
        )
        .finish();
    let store = app.store()?;
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::task::spawn_blocking(move || {
        let result = match format {
            Format::Xlsx => {
                let path = std::env::temp_dir()
                    .join(format!("ticks-export-{}.xlsx", rand::random::<u64>()));
                let r = export::write_xlsx(&*store, &query, &filter, &path).and_then(|receipt| {
                    let mut w = crate::respond::ChannelWriter {
                        tx: tx.clone(),
                        buf: Vec::new(),
                    };
                    let mut f = std::fs::File::open(&path)?;
                    std::io::copy(&mut f, &mut w)?;
                    std::io::Write::flush(&mut w)?;
                    Ok(receipt)
                });
                let _ = std::fs::remove_file(&path);
                r
            }
            _ => {
                let mut w = crate::respond::ChannelWriter {
                    tx: tx.clone(),
                    buf: Vec::new(),
                };
                export::write_export(&*store, &query, &filter, format, &mut w).and_then(|r| {
                    std::io::Write::flush(&mut w)
                        .map(|()| r)
                        .map_err(Into::into)
                })
            }
        };
        match result.and_then(|receipt| export::store_receipt(&*store, &receipt)) {
            Ok(()) => {}
            Err(e) => {
                tracing::error!("export failed: {e:#}");
                // The client sees a broken transfer rather than a short file.
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
            }
        }
    });
    let body = crate::respond::ChannelBody { rx }.boxed();
    let mut resp = Response::new(body);
    let headers = resp.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(format.content_type()),
    );
    let name = format!(
        "attachment; filename=\"ticks-export-{}.{}\"",
        ticks_ingest::now_ms(),
        format.extension()
    );
    if let Ok(v) = hyper::header::HeaderValue::from_str(&name) {
        headers.insert(hyper::header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

pub(crate) async fn get_receipts(app: Arc<App>) -> Result<Response<Body>, ApiError> {
    let store = app.store()?;
    let list = blocking(move || {
        crate::export::list_receipts(&*store).map_err(|e| ApiError::Internal(e.to_string()))
    })
    .await?;
    Ok(json_response(StatusCode::OK, &json!({ "receipts": list })))
}

/// `GET /v1/purges`: every purge record, oldest first.
pub(crate) async fn get_purges(app: Arc<App>) -> Result<Response<Body>, ApiError> {
    let store = app.store()?;
    let list = blocking(move || Ok(store.purges()?)).await?;
    let items: Vec<Value> = list
        .into_iter()
        .map(|(seq, p)| {
            json!({
                "seq": seq.0,
                "at": rfc3339(p.at_ms, 0),
                "actor": p.actor,
                "filter": p.filter,
                "count": p.count,
                "receipt": p.receipt,
                "forced": p.forced,
            })
        })
        .collect();
    Ok(json_response(StatusCode::OK, &json!({ "purges": items })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_checked_over_the_exact_bytes() {
        let body = br#"{"object":"whatsapp_business_account","entry":[]}"#;
        let mut mac = Hmac::<Sha256>::new_from_slice(b"secret").expect("key");
        mac.update(body);
        let good = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert!(check_signature("secret", Some(&good), body));
        assert!(!check_signature("other", Some(&good), body));
        assert!(!check_signature("secret", Some(&good), b"{}"));
        assert!(!check_signature("secret", None, body));
        assert!(!check_signature("secret", Some("sha256=zz"), body));
    }

    #[test]
    fn times_keep_their_offset() {
        assert_eq!(
            rfc3339(1_740_834_003_000, -3 * 3600),
            "2025-03-01T10:00:03.000-03:00"
        );
        assert_eq!(
            rfc3339(1_740_834_003_000, 0),
            "2025-03-01T13:00:03.000+00:00"
        );
    }
}
