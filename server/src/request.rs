//! Reading requests: bodies within their limits and budgets, query
//! parameters, and engine work moved off the async threads.

use crate::app::App;
use crate::error::ApiError;
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::Request;
use std::sync::Arc;
use std::time::Duration;

/// How long a client may take to send a request body.
const BODY_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest NDJSON import body over HTTP (bigger files: `ticks import`).
pub(crate) const MAX_IMPORT_BYTES: usize = 512 * 1024 * 1024;

/// Reads a whole request body, refusing more than `limit` bytes and clients
/// that take too long.
pub(crate) async fn read_body(body: Incoming, limit: usize) -> Result<Bytes, ApiError> {
    let limited = Limited::new(body, limit);
    match tokio::time::timeout(BODY_TIMEOUT, limited.collect()).await {
        Err(_) => Err(ApiError::bad(
            "timeout",
            "the request body took too long to arrive",
        )),
        Ok(Err(e)) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                Err(ApiError::TooLarge(limit))
            } else {
                Err(ApiError::bad("bad_body", format!("reading the body: {e}")))
            }
        }
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

/// The unauthenticated-body budget of one connection, put in each of its
/// requests' extensions by [`serve`].
#[derive(Clone)]
pub(crate) struct ConnectionBudget(pub(crate) Arc<tokio::sync::Semaphore>);

/// The budget a body read by [`read_unauthenticated_body`] holds until the
/// request is answered.
pub(crate) struct HeldBody {
    _server: Option<tokio::sync::OwnedSemaphorePermit>,
    _connection: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// Reads a body that nothing has authenticated yet (a webhook before its
/// signature is checked). Its bytes count against the server's budget
/// (`unauthenticated_body_mib`) and the connection's while they are held;
/// a body that does not fit is refused with 503 (Meta retries) and its
/// bytes are not read, so a flood of unsigned bodies cannot grow the
/// process.
pub(crate) async fn read_unauthenticated_body(
    app: &App,
    req: Request<Incoming>,
    limit: usize,
) -> Result<(Bytes, HeldBody), ApiError> {
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::TooLarge(limit));
    }
    let connection = req.extensions().get::<ConnectionBudget>().cloned();
    let mut held = HeldBody {
        _server: None,
        _connection: None,
    };
    let full = || {
        ApiError::Unavailable(
            "too many request bodies are waiting for authentication; retry later".into(),
        )
    };
    let take = |n: usize, held: &mut HeldBody| -> Result<(), ApiError> {
        let n = u32::try_from(n).map_err(|_| ApiError::TooLarge(limit))?;
        if n == 0 {
            return Ok(());
        }
        let server = app
            .unauthenticated
            .clone()
            .try_acquire_many_owned(n)
            .map_err(|_| full())?;
        match held._server.as_mut() {
            Some(p) => p.merge(server),
            None => held._server = Some(server),
        }
        if let Some(ConnectionBudget(c)) = &connection {
            let mine = c.clone().try_acquire_many_owned(n).map_err(|_| full())?;
            match held._connection.as_mut() {
                Some(p) => p.merge(mine),
                None => held._connection = Some(mine),
            }
        }
        Ok(())
    };
    // A declared length is reserved before a byte is read.
    let reserved = declared.unwrap_or(0);
    take(reserved, &mut held)?;
    let mut body = req.into_body();
    // Copied into one buffer as the frames arrive (sized from the declared
    // length), so the body is held once, not as frames and then again as
    // their concatenation.
    let mut all: Vec<u8> = Vec::with_capacity(reserved);
    let read = async {
        while let Some(frame) = body.frame().await {
            let frame =
                frame.map_err(|e| ApiError::bad("bad_body", format!("reading the body: {e}")))?;
            if let Ok(data) = frame.into_data() {
                let before = all.len();
                let total = before + data.len();
                if total > limit {
                    return Err(ApiError::TooLarge(limit));
                }
                if total > reserved {
                    take(total - reserved.max(before), &mut held)?;
                }
                all.extend_from_slice(&data);
            }
        }
        Ok(())
    };
    match tokio::time::timeout(BODY_TIMEOUT, read).await {
        Err(_) => {
            return Err(ApiError::bad(
                "timeout",
                "the request body took too long to arrive",
            ))
        }
        Ok(r) => r?,
    }
    let bytes = Bytes::from(all);
    Ok((bytes, held))
}

/// Runs blocking engine work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(format!("a worker failed: {e}")))?
}

pub(crate) fn query_pairs(req: &Request<Incoming>) -> Vec<(String, String)> {
    req.uri()
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

/// A JSON body read into a typed request. A body that is not JSON is a 400
/// `invalid_json`; a field of the wrong type, or one the request does not
/// have, is a 400 `invalid_param` that names the field.
pub(crate) fn json_body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::bad("invalid_json", inner.to_string());
        }
        let message = inner.to_string();
        // The path names the field (an unknown one too); a body that is not
        // an object has none.
        let field = match path.as_str() {
            "." => "(body)".to_string(),
            _ => path,
        };
        let message = match message.split(" at line ").next() {
            Some(m) => format!("{field}: {m}"),
            None => format!("{field}: {message}"),
        };
        ApiError::BadRequest {
            code: "invalid_param",
            message,
            field: Some(field),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Shape {
        #[serde(default)]
        all: Option<bool>,
        #[serde(default)]
        ids: Option<Vec<u32>>,
    }

    fn field_of(body: &str) -> Option<String> {
        match json_body::<Shape>(body.as_bytes()) {
            Err(ApiError::BadRequest { field, .. }) => field,
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn a_wrong_or_unknown_field_is_named() {
        assert_eq!(field_of(r#"{"all": "yes"}"#).as_deref(), Some("all"));
        assert_eq!(field_of(r#"{"ids": [1, -2]}"#).as_deref(), Some("ids[1]"));
        assert_eq!(field_of(r#"{"forse": true}"#).as_deref(), Some("forse"));
        assert!(matches!(
            json_body::<Shape>(b"{not json"),
            Err(ApiError::BadRequest {
                code: "invalid_json",
                ..
            })
        ));
        assert!(json_body::<Shape>(br#"{"all": null, "ids": [4]}"#).is_ok());
    }
}
