//! The one place where errors become HTTP statuses
//! ([`ApiError::into_response`]).

use crate::respond::{json_response, Body};
use hyper::{Response, StatusCode};

/// Every way a request can fail. The first group is the caller's (4xx),
/// the rest are ours (5xx).
#[derive(Debug)]
pub(crate) enum ApiError {
    BadRequest {
        code: &'static str,
        message: String,
        field: Option<String>,
    },
    Unauthorized,
    /// A webhook whose `X-Hub-Signature-256` is missing or wrong.
    BadSignature,
    Forbidden(String),
    NotFound(String),
    MethodNotAllowed,
    TooLarge(usize),
    Unavailable(String),
    /// The backend in use does not answer this (yet).
    NotImplemented(String),
    /// The request is valid but conflicts with a rule (e.g. export before purge).
    Conflict {
        code: &'static str,
        message: String,
    },
    Internal(String),
}

impl ApiError {
    pub(crate) fn bad(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::BadRequest {
            code,
            message: message.into(),
            field: None,
        }
    }

    /// The only mapping from errors to HTTP statuses.
    pub(crate) fn into_response(self) -> Response<Body> {
        let (status, code, message, field) = match self {
            ApiError::BadRequest {
                code,
                message,
                field,
            } => (StatusCode::BAD_REQUEST, code, message, field),
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "a valid bearer token is required".into(),
                None,
            ),
            ApiError::BadSignature => (
                StatusCode::UNAUTHORIZED,
                "invalid_signature",
                "X-Hub-Signature-256 is missing or is not the HMAC-SHA256 of the body with the app secret".into(),
                None,
            ),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, "forbidden", m, None),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, "not_found", m, None),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed on this path".into(),
                None,
            ),
            ApiError::TooLarge(limit) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("the body is larger than {limit} bytes"),
                None,
            ),
            ApiError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", m, None),
            ApiError::NotImplemented(m) => (StatusCode::NOT_IMPLEMENTED, "not_implemented", m, None),
            ApiError::Conflict { code, message } => (StatusCode::CONFLICT, code, message, None),
            ApiError::Internal(m) => {
                tracing::error!("internal error: {m}");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal", m, None)
            }
        };
        let mut err = serde_json::json!({"code": code, "message": message});
        if let Some(f) = field {
            err["field"] = serde_json::Value::String(f);
        }
        json_response(status, &serde_json::json!({ "error": err }))
    }
}

impl From<ticks_query::QueryError> for ApiError {
    fn from(e: ticks_query::QueryError) -> Self {
        match e {
            ticks_query::QueryError::InvalidParam { param, message } => ApiError::BadRequest {
                code: "invalid_param",
                message: format!("{param}: {message}"),
                field: Some(param),
            },
            ticks_query::QueryError::Engine(e) => ApiError::from(e),
            ticks_query::QueryError::Unavailable(m) => ApiError::Unavailable(m),
            ticks_query::QueryError::Unsupported(m) => ApiError::NotImplemented(m),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<ticks_engine::Error> for ApiError {
    fn from(e: ticks_engine::Error) -> Self {
        match e {
            ticks_engine::Error::Closed => ApiError::Unavailable("the store is closed".into()),
            e @ ticks_engine::Error::Unavailable(_) => ApiError::Unavailable(e.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<ticks_ingest::ParseError> for ApiError {
    fn from(e: ticks_ingest::ParseError) -> Self {
        match &e {
            ticks_ingest::ParseError::TooLarge { limit, .. } => ApiError::TooLarge(*limit),
            _ => ApiError::BadRequest {
                code: "invalid_input",
                field: e.field_path().map(String::from),
                message: e.to_string(),
            },
        }
    }
}
