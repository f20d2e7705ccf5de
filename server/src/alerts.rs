//! Alerts over HTTP: `GET`, `POST`, `DELETE /v1/alerts` (the rules, with
//! their states) and `GET /v1/alerts/history` (firings, resolutions and
//! the notifications waiting). The machinery is `alert_service.rs`.

use crate::alert_service::AlertService;
use crate::app::App;
use crate::error::ApiError;
use crate::request::{blocking, read_body};
use crate::respond::{json_response, Body};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::json;
use std::sync::Arc;
use ticks_query::AlertRule;

fn service(app: &App) -> Result<&Arc<AlertService>, ApiError> {
    app.alerts
        .get()
        .ok_or_else(|| ApiError::Unavailable("alerts are not loaded yet".into()))
}

/// `GET /v1/alerts`: every rule with its state, value and volume.
pub(crate) async fn get_alerts(app: Arc<App>) -> Result<Response<Body>, ApiError> {
    let list = service(&app)?.list();
    Ok(json_response(StatusCode::OK, &json!({"alerts": list})))
}

/// `POST /v1/alerts`: adds a rule, or replaces the one of its name.
pub(crate) async fn post_alert(
    app: Arc<App>,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let body = read_body(req.into_body(), app.settings.max_body_bytes).await?;
    let rule: AlertRule = serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest {
        code: "invalid_input",
        field: None,
        message: format!("an alert rule: {e}"),
    })?;
    rule.validate()?;
    let store = app.store()?;
    let service = service(&app)?.clone();
    let stored = rule.clone();
    blocking(move || service.put_rule(store.as_ref(), stored)).await?;
    Ok(json_response(StatusCode::OK, &json!({"alert": rule})))
}

/// `DELETE /v1/alerts/{name}`.
pub(crate) async fn delete_alert(app: Arc<App>, name: &str) -> Result<Response<Body>, ApiError> {
    let name = percent_encoding::percent_decode_str(name)
        .decode_utf8_lossy()
        .into_owned();
    let store = app.store()?;
    let service = service(&app)?.clone();
    let n = name.clone();
    let existed = blocking(move || service.remove_rule(store.as_ref(), &n)).await?;
    if !existed {
        return Err(ApiError::NotFound(format!("no alert {name:?}")));
    }
    Ok(json_response(StatusCode::OK, &json!({"deleted": name})))
}

/// `GET /v1/alerts/history`: firings and resolutions, newest first, with
/// the notifications still waiting.
pub(crate) async fn get_history(app: Arc<App>) -> Result<Response<Body>, ApiError> {
    let store = app.store()?;
    let (history, pending) = blocking(move || AlertService::history(store.as_ref())).await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"history": history, "pending_notifications": pending}),
    ))
}
