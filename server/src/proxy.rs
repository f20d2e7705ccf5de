//! The logging proxy in front of the Graph API: a sender changes only its
//! base URL, and every `/messages` call is logged as a send result,
//! including calls that got no answer.
//!
//! The request goes to `graph_base_url` unchanged (method, path, query,
//! body), minus the `X-Ticks-*` headers that carry the log context; Meta's
//! answer comes back unchanged.
//!
//! # Who may send, and with which Graph API token
//! With API tokens configured, every proxied call needs a token with the
//! `send` scope: in `X-Ticks-Token`, or as the bearer token when the
//! proxy does not forward the sender's own `Authorization`. Upstream, the
//! proxy sends `Bearer <graph_token>` when one is configured; the sender's
//! own `Authorization` goes to Meta only with `proxy_trust_client_token`
//! (or with no API tokens at all, on loopback). Otherwise the call is
//! refused: an open proxy would let anyone who reaches the port write the
//! audit log and relay through the business's account.

use crate::app::{bearer_token, App};
use crate::config::Scope;
use crate::error::ApiError;
use crate::present::rfc3339;
use crate::request::read_body;
use crate::respond::{full, json_response, Body};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;
use ticks_engine::Source;

const CONTEXT_HEADERS: [(&str, &str); 5] = [
    ("x-ticks-category", "category"),
    ("x-ticks-name", "name"),
    ("x-ticks-recipient-type", "recipient_type"),
    ("x-ticks-user", "user"),
    ("x-ticks-subaccount", "subaccount"),
];

/// Headers never forwarded: hop-by-hop ones, and what the client library sets itself.
fn forwardable(name: &str) -> bool {
    !(name.starts_with("x-ticks-")
        || matches!(
            name,
            "host"
                | "content-length"
                | "connection"
                | "keep-alive"
                | "transfer-encoding"
                | "te"
                | "upgrade"
                | "proxy-authorization"
                | "accept-encoding"
        ))
}

/// The sender's own `Authorization`, as a header value for the upstream call.
fn client_authorization(req: &Request<Incoming>) -> Option<reqwest::header::HeaderValue> {
    req.headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| reqwest::header::HeaderValue::from_bytes(v.as_bytes()).ok())
}

pub(crate) async fn forward(
    app: Arc<App>,
    req: Request<Incoming>,
    rest: &str,
) -> Result<Response<Body>, ApiError> {
    let trust_client = app.settings.proxy_trust_client_token;
    let presented = match req.headers().get("x-ticks-token") {
        Some(v) => Some(v.to_str().map_err(|_| ApiError::Unauthorized)?.trim()),
        None if trust_client => None,
        None => bearer_token(req.headers()),
    };
    app.authorize_token(presented, Scope::Send)?;
    let upstream_auth = match (&app.settings.graph_token, trust_client) {
        (Some(token), _) => Some(
            reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| ApiError::Internal("graph_token is not a valid header value".into()))?,
        ),
        (None, true) => client_authorization(&req),
        (None, false) if app.settings.tokens.is_empty() => client_authorization(&req),
        (None, false) => {
            return Err(ApiError::Unavailable(
                "the logging proxy has no Graph API credential: set graph_token, or proxy_trust_client_token to forward the sender's own".into(),
            ))
        }
    };
    let method = req.method().clone();
    let query = req
        .uri()
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    let target = format!("{}/{rest}{query}", app.settings.graph_base_url);
    let mut context = serde_json::Map::new();
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, value) in req.headers() {
        let lower = name.as_str().to_ascii_lowercase();
        if let Some((_, field)) = CONTEXT_HEADERS.iter().find(|(h, _)| *h == lower) {
            if let Ok(v) = value.to_str() {
                context.insert((*field).to_string(), Value::String(v.to_string()));
            }
        } else if forwardable(&lower) && lower != "authorization" {
            if let (Ok(n), Ok(v)) = (
                reqwest::header::HeaderName::from_bytes(name.as_str().as_bytes()),
                reqwest::header::HeaderValue::from_bytes(value.as_bytes()),
            ) {
                headers.insert(n, v);
            }
        }
    }
    if let Some(auth) = upstream_auth {
        headers.insert(reqwest::header::AUTHORIZATION, auth);
    }
    let body = read_body(req.into_body(), app.settings.max_body_bytes).await?;
    // A send is a POST to /{version}/{phone_number_id}/messages.
    let segments: Vec<&str> = rest.split('/').collect();
    let phone_number_id = match (method.as_str(), segments.as_slice()) {
        ("POST", [_version, pni, "messages"]) => Some(pni.to_string()),
        _ => None,
    };
    let recorded_at = rfc3339(ticks_ingest::now_ms(), 0);
    let method_r = reqwest::Method::from_bytes(method.as_str().as_bytes())
        .map_err(|e| ApiError::bad("bad_method", e.to_string()))?;
    let sent = app
        .proxy
        .request(method_r, &target)
        .headers(headers)
        .body(body.clone())
        .send()
        .await;
    let (response, log_code, log_body, log_error) = match sent {
        Ok(r) => {
            let status = r.status().as_u16();
            let mut out = Response::builder().status(status);
            for (n, v) in r.headers() {
                let lower = n.as_str();
                if !matches!(lower, "content-length" | "transfer-encoding" | "connection") {
                    out = out.header(n.as_str(), v.as_bytes());
                }
            }
            let bytes = r.bytes().await.unwrap_or_default();
            let parsed: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let resp = out
                .body(full(bytes))
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            (resp, Some(status), parsed, None)
        }
        Err(e) => {
            let what = if e.is_timeout() {
                format!("timeout: {e}")
            } else if e.is_connect() {
                format!("connection failed: {e}")
            } else {
                e.to_string()
            };
            let status = if e.is_timeout() {
                StatusCode::GATEWAY_TIMEOUT
            } else {
                StatusCode::BAD_GATEWAY
            };
            let err = json!({"error": {"code": "upstream", "message": format!("the Graph API did not answer: {what}")}});
            (json_response(status, &err), None, Value::Null, Some(what))
        }
    };
    if let Some(pni) = phone_number_id {
        let request: Value = serde_json::from_slice(&body)
            .unwrap_or_else(|_| json!({"_raw": String::from_utf8_lossy(&body)}));
        let mut record = json!({"recorded_at": recorded_at, "phone_number_id": pni, "request": request,
            "response_code": log_code, "response": if log_body.is_object() { log_body } else { Value::Null }});
        if let Some(e) = log_error {
            record["error"] = Value::String(e);
        }
        for (k, v) in context {
            record[k] = v;
        }
        let raw = serde_json::to_vec(&record).unwrap_or_default();
        match (
            ticks_ingest::send_input(raw, Source::Proxy, ticks_ingest::now_ms()),
            app.store(),
        ) {
            (Ok(input), Ok(store)) => {
                match tokio::task::spawn_blocking(move || store.append_one(input)).await {
                    Ok(Ok(o)) => {
                        app.metrics
                            .count_outcome("proxy", o.stored as u64, o.duplicates as u64)
                    }
                    other => tracing::error!("proxy: logging the send failed: {other:?}"),
                }
            }
            (Err(e), _) => {
                app.metrics.count_rejected("proxy");
                tracing::warn!("proxy: the send could not be logged: {e}");
            }
            (_, Err(_)) => tracing::error!("proxy: the store is not open; the send was not logged"),
        }
    }
    Ok(response)
}
