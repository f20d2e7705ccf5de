//! Templates over HTTP and from Meta: `POST /v1/templates` (a page of
//! Meta's `message_templates` answer, or several), `GET /v1/templates`,
//! `GET /v1/templates/{name}/{language}`, and the sync that reads the
//! Graph API's `message_templates` page by page (`ticks templates sync`,
//! and `ticks serve` every `template_sync_minutes`).

use crate::app::App;
use crate::error::ApiError;
use crate::present::rfc3339;
use crate::request::{blocking, read_body};
use crate::respond::{json_response, Body};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use ticks_engine::templates::TemplateDef;
use ticks_engine::TemplatesAdded;
use ticks_query::Backend;

fn decode(segment: &str, field: &str) -> Result<String, ApiError> {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| ApiError::BadRequest {
            code: "invalid_input",
            field: Some(field.into()),
            message: format!("{field} is not UTF-8"),
        })
}

/// The definitions of a body (each with its time in force, when given),
/// and the ones left out.
type ParsedBody = (Vec<(TemplateDef, Option<i64>)>, Vec<serde_json::Value>);

/// Parses one body: a page (`{data, paging}`), a list of pages, a list of
/// definitions, or one definition; every bad definition is reported by its
/// path, and none of the good ones is dropped for it.
fn parse_body(body: &[u8]) -> Result<ParsedBody, ApiError> {
    let page = ticks_ingest::parse_template_page(body)?;
    let rejected = page
        .rejected
        .iter()
        .map(|e| json!({"field": e.field_path(), "error": e.to_string()}))
        .collect();
    Ok((page.templates, rejected))
}

fn added_json(added: &TemplatesAdded, rejected: Vec<serde_json::Value>) -> serde_json::Value {
    json!({
        "versions": added.versions,
        "updated": added.updated,
        "unchanged": added.unchanged,
        "backfill": added.backfill,
        "rejected": rejected,
    })
}

pub(crate) async fn post_templates(
    app: Arc<App>,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let body = read_body(req.into_body(), app.settings.max_body_bytes).await?;
    let (defs, rejected) = parse_body(&body)?;
    if defs.is_empty() && !rejected.is_empty() {
        return Ok(json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": {"code": "invalid_input", "message": "no definition could be used",
                              "field": rejected[0]["field"]}, "rejected": rejected}),
        ));
    }
    let store = app.store()?;
    let added = blocking(move || Ok(store.add_templates(defs, ticks_ingest::now_ms())?)).await?;
    Ok(json_response(StatusCode::OK, &added_json(&added, rejected)))
}

fn summary_json(t: &ticks_query::TemplateSummary) -> serde_json::Value {
    json!({
        "name": t.name, "language": t.language, "id": t.id, "status": t.status,
        "category": t.category, "quality": t.quality, "versions": t.versions,
        "updated_at": rfc3339(t.updated_ms, 0), "sends": t.sends,
    })
}

pub(crate) async fn get_templates(app: Arc<App>) -> Result<Response<Body>, ApiError> {
    let store = app.store()?;
    let list = blocking(move || Ok(ticks_query::template_list(store.as_ref())?)).await?;
    let templates: Vec<serde_json::Value> = list.iter().map(summary_json).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"templates": templates}),
    ))
}

pub(crate) async fn get_template(
    app: Arc<App>,
    name: &str,
    language: &str,
) -> Result<Response<Body>, ApiError> {
    let (name, language) = (decode(name, "name")?, decode(language, "language")?);
    let store = app.store()?;
    let (n, l) = (name.clone(), language.clone());
    let found = blocking(move || Ok(ticks_query::template_history(store.as_ref(), &n, &l)?))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no template {name:?} in {language:?}")))?;
    let mut v = summary_json(&found.summary);
    v["history"] = json!(found
        .history_versions
        .iter()
        .map(|h| json!({"first_seen": rfc3339(h.first_seen_ms, 0), "content": h.content}))
        .collect::<Vec<_>>());
    v["events"] = json!(found
        .events
        .iter()
        .map(
            |e| json!({"at": rfc3339(e.at_ms, 0), "event": e.event, "from": e.from, "to": e.to,
                        "reason": e.reason, "entry": e.entry})
        )
        .collect::<Vec<_>>());
    Ok(json_response(StatusCode::OK, &v))
}

/// Where a sync reads from, and how hard it tries.
#[derive(Clone, Debug)]
pub(crate) struct SyncSource {
    /// The Graph API's base URL (`https://graph.facebook.com`).
    pub(crate) base_url: String,
    /// The access token.
    pub(crate) token: Option<String>,
    /// The WhatsApp Business Account whose templates are read.
    pub(crate) waba: String,
    /// The Graph API version in the path.
    pub(crate) version: String,
    /// Per request.
    pub(crate) timeout: Duration,
    /// Attempts per page before the sync gives up.
    pub(crate) attempts: u32,
}

/// Why a sync failed: it changed nothing.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SyncError {
    #[error("the Graph API answered {status} for {url}: {body}")]
    Status {
        status: u16,
        url: String,
        body: String,
    },
    #[error("reaching the Graph API at {url}: {reason}")]
    Transport { url: String, reason: String },
    #[error("the Graph API's page {url} is not a page of templates: {reason}")]
    Page { url: String, reason: String },
    #[error("storing the templates: {0}")]
    Store(String),
}

/// Reads every page of the WABA's templates (following `paging.next`),
/// retrying each page with backoff, and adds them only when every page was
/// read: a sync that fails changes nothing.
pub(crate) async fn sync(
    store: Arc<dyn Backend>,
    source: &SyncSource,
) -> Result<TemplatesAdded, SyncError> {
    let client = reqwest::Client::builder()
        .timeout(source.timeout)
        .build()
        .map_err(|e| SyncError::Transport {
            url: source.base_url.clone(),
            reason: e.to_string(),
        })?;
    let mut url = format!(
        "{}/{}/{}/message_templates?limit=100",
        source.base_url.trim_end_matches('/'),
        source.version,
        source.waba
    );
    let mut defs = Vec::new();
    for _page in 0..10_000 {
        let body = fetch(&client, &url, source).await?;
        let page = ticks_ingest::parse_template_page(&body).map_err(|e| SyncError::Page {
            url: url.clone(),
            reason: e.to_string(),
        })?;
        for e in &page.rejected {
            tracing::warn!(%url, "a template Meta answered cannot be used: {e}");
        }
        defs.extend(page.templates);
        match page.next {
            Some(next) if next != url => url = next,
            _ => break,
        }
    }
    let now = ticks_ingest::now_ms();
    tokio::task::spawn_blocking(move || store.add_templates(defs, now))
        .await
        .map_err(|e| SyncError::Store(e.to_string()))?
        .map_err(|e| SyncError::Store(e.to_string()))
}

/// Syncs now and then every `every`, logging what each sync did; a sync
/// that fails changes nothing and is tried again at the next tick.
pub(crate) fn spawn_periodic_sync(store: Arc<dyn Backend>, source: SyncSource, every: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            match sync(store.clone(), &source).await {
                Ok(added) => tracing::info!(
                    versions = added.versions,
                    updated = added.updated,
                    backfill = added.backfill,
                    "templates synced from the Graph API"
                ),
                Err(e) => tracing::warn!("template sync failed (nothing changed): {e}"),
            }
        }
    });
}

async fn fetch(
    client: &reqwest::Client,
    url: &str,
    source: &SyncSource,
) -> Result<Vec<u8>, SyncError> {
    let mut wait = Duration::from_millis(200);
    let mut last = None;
    for attempt in 0..source.attempts.max(1) {
        if attempt > 0 {
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(10));
        }
        let mut request = client.get(url);
        if let Some(token) = &source.token {
            request = request.bearer_auth(token);
        }
        match request.send().await {
            Ok(response) if response.status().is_success() => {
                return response.bytes().await.map(|b| b.to_vec()).map_err(|e| {
                    SyncError::Transport {
                        url: url.to_string(),
                        reason: e.to_string(),
                    }
                });
            }
            Ok(response) => {
                let status = response.status().as_u16();
                let body = response.text().await.unwrap_or_default();
                let error = SyncError::Status {
                    status,
                    url: url.to_string(),
                    body: body.chars().take(300).collect(),
                };
                // A client error other than throttling will not get better.
                if (400..500).contains(&status) && status != 429 {
                    return Err(error);
                }
                last = Some(error);
            }
            Err(e) => {
                last = Some(SyncError::Transport {
                    url: url.to_string(),
                    reason: e.to_string(),
                })
            }
        }
    }
    Err(last.unwrap_or_else(|| SyncError::Transport {
        url: url.to_string(),
        reason: "no attempt was made".into(),
    }))
}
