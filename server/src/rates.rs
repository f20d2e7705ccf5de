//! Rate cards over HTTP: `POST /v1/rate-card` (admin: a CSV or TOML card,
//! stored under `name`, `default` unless given), `GET /v1/rate-card` (the
//! stored cards), and the card a report prices with (`rate_card=NAME`, else
//! `default`). Cards are kept as their text in the backend's settings
//! (namespace `rate_cards`), so every Ticks process over one backend prices
//! alike; `rate_card` in the configuration is stored as `default` at start.

use crate::app::App;
use crate::error::ApiError;
use crate::request::{blocking, read_body};
use crate::respond::{json_response, Body};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::json;
use std::sync::Arc;
use ticks_query::{Backend, RateCard};

/// The settings namespace of rate cards.
pub(crate) const NAMESPACE: &str = "rate_cards";
/// The card a report uses when it names none.
pub(crate) const DEFAULT: &str = "default";

fn bad_card(e: ticks_query::RateCardError) -> ApiError {
    ApiError::BadRequest {
        code: "invalid_rate_card",
        field: Some(e.field.clone()),
        message: e.to_string(),
    }
}

fn valid_name(name: &str) -> Result<(), ApiError> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(ApiError::BadRequest {
            code: "invalid_param",
            field: Some("name".into()),
            message: format!("name: {name:?}: use 1-64 letters, digits, '-', '_' or '.'"),
        });
    }
    Ok(())
}

/// Parses and stores a card; answers what was stored.
pub(crate) fn store_card(
    backend: &dyn Backend,
    name: &str,
    text: &str,
) -> Result<serde_json::Value, ApiError> {
    valid_name(name)?;
    let card = RateCard::parse(name, text).map_err(bad_card)?;
    backend.put_setting(NAMESPACE, name, text.as_bytes())?;
    Ok(card_json(&card))
}

fn card_json(card: &RateCard) -> serde_json::Value {
    json!({"name": card.name, "currency": card.currency, "rates": card.rates().len()})
}

/// The card named `name` (the `default` card when `None`; no card when
/// there is no default). A name that is not stored is the caller's mistake.
pub(crate) fn load_card(
    backend: &dyn Backend,
    name: Option<&str>,
) -> Result<Option<Arc<RateCard>>, ApiError> {
    let wanted = name.unwrap_or(DEFAULT);
    let stored = backend
        .settings(NAMESPACE)?
        .into_iter()
        .find(|(k, _)| k == wanted);
    match (stored, name) {
        (Some((_, text)), _) => {
            let text = String::from_utf8_lossy(&text);
            let card = RateCard::parse(wanted, &text).map_err(bad_card)?;
            Ok(Some(Arc::new(card)))
        }
        (None, None) => Ok(None),
        (None, Some(n)) => Err(ApiError::BadRequest {
            code: "invalid_param",
            field: Some("rate_card".into()),
            message: format!("rate_card: no rate card named {n:?} (see GET /v1/rate-card)"),
        }),
    }
}

/// `POST /v1/rate-card?name=NAME`.
pub(crate) async fn post_rate_card(
    app: Arc<App>,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let name = crate::request::query_pairs(&req)
        .into_iter()
        .find(|(k, _)| k == "name")
        .map_or_else(|| DEFAULT.to_string(), |(_, v)| v);
    let body = read_body(req.into_body(), app.settings.max_body_bytes).await?;
    let text = String::from_utf8(body.to_vec()).map_err(|_| ApiError::BadRequest {
        code: "invalid_input",
        field: None,
        message: "the rate card is not UTF-8".into(),
    })?;
    let store = app.store()?;
    let stored = blocking(move || store_card(store.as_ref(), &name, &text)).await?;
    Ok(json_response(StatusCode::OK, &stored))
}

/// `GET /v1/rate-card`: every stored card's name, currency and rate count.
pub(crate) async fn get_rate_cards(app: Arc<App>) -> Result<Response<Body>, ApiError> {
    let store = app.store()?;
    let cards = blocking(move || {
        Ok(store
            .settings(NAMESPACE)?
            .into_iter()
            .map(
                |(name, text)| match RateCard::parse(&name, &String::from_utf8_lossy(&text)) {
                    Ok(card) => card_json(&card),
                    Err(e) => json!({"name": name, "error": e.to_string()}),
                },
            )
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(json_response(StatusCode::OK, &json!({"rate_cards": cards})))
}
