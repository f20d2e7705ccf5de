//! The web page, embedded in the binary: no CDN, no build step.

use crate::error::ApiError;
use crate::respond::{text_response, Body};
use hyper::{Response, StatusCode};

const INDEX_HTML: &str = include_str!("../ui/index.html");
const APP_JS: &str = include_str!("../ui/app.js");
const APP_CSS: &str = include_str!("../ui/app.css");
const REPORT_JS: &str = include_str!("../ui/report.js");
const API_JS: &str = include_str!("../ui/api.js");

pub(crate) fn page() -> Response<Body> {
    text_response(StatusCode::OK, "text/html; charset=utf-8", INDEX_HTML)
}

pub(crate) fn asset(name: &str) -> Result<Response<Body>, ApiError> {
    match name {
        "app.js" => Ok(text_response(
            StatusCode::OK,
            "text/javascript; charset=utf-8",
            APP_JS,
        )),
        "api.js" => Ok(text_response(
            StatusCode::OK,
            "text/javascript; charset=utf-8",
            API_JS,
        )),
        "report.js" => Ok(text_response(
            StatusCode::OK,
            "text/javascript; charset=utf-8",
            REPORT_JS,
        )),
        "app.css" => Ok(text_response(
            StatusCode::OK,
            "text/css; charset=utf-8",
            APP_CSS,
        )),
        _ => Err(ApiError::NotFound(format!("no asset {name}"))),
    }
}
