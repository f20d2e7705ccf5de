//! The web page, embedded in the binary: no CDN, no build step.

use crate::error::ApiError;
use crate::respond::{text_response, Body};
use hyper::{Response, StatusCode};

const INDEX_HTML: &str = include_str!("../ui/index.html");
const APP_JS: &str = include_str!("../ui/app.js");
const APP_CSS: &str = include_str!("../ui/app.css");
const REPORT_JS: &str = include_str!("../ui/report.js");
const API_JS: &str = include_str!("../ui/api.js");
const COMMON_JS: &str = include_str!("../ui/common.js");
const DETAIL_JS: &str = include_str!("../ui/detail.js");

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
        "common.js" => Ok(text_response(
            StatusCode::OK,
            "text/javascript; charset=utf-8",
            COMMON_JS,
        )),
        "detail.js" => Ok(text_response(
            StatusCode::OK,
            "text/javascript; charset=utf-8",
            DETAIL_JS,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The page's sortable columns are columns the API sorts by (the
    /// field catalog), so the page cannot drift from it.
    #[test]
    fn the_pages_sort_columns_are_in_the_field_catalog() {
        let mut sorts = 0;
        for part in APP_JS.split("sort: \"").skip(1) {
            let name = part.split('"').next().unwrap_or("");
            assert!(
                ticks_query::field(name).is_some_and(|f| f.sortable),
                "app.js sorts by {name:?}, which the API does not"
            );
            sorts += 1;
        }
        assert!(sorts > 10, "{sorts} sort columns found");
    }
}
