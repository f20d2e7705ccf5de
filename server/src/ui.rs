//! The web page, embedded in the binary: no CDN, no build step.

use crate::error::ApiError;
use crate::present::fields_json;
use crate::respond::{text_response, Body};
use hyper::{Response, StatusCode};
use std::sync::OnceLock;

const INDEX_HTML: &str = include_str!("../ui/index.html");
const APP_CSS: &str = include_str!("../ui/app.css");
/// Where the page carries the field catalog.
const FIELDS_MARK: &str = "<!--fields-->";

/// The page's scripts, by the name they are served under.
const SCRIPTS: [(&str, &str); 13] = [
    ("app.js", include_str!("../ui/app.js")),
    ("api.js", include_str!("../ui/api.js")),
    ("common.js", include_str!("../ui/common.js")),
    ("fields.js", include_str!("../ui/fields.js")),
    ("table.js", include_str!("../ui/table.js")),
    ("filters.js", include_str!("../ui/filters.js")),
    ("mo.js", include_str!("../ui/mo.js")),
    ("contact.js", include_str!("../ui/contact.js")),
    ("health.js", include_str!("../ui/health.js")),
    ("detail.js", include_str!("../ui/detail.js")),
    ("report.js", include_str!("../ui/report.js")),
    ("templates.js", include_str!("../ui/templates.js")),
    ("alerts.js", include_str!("../ui/alerts.js")),
];

/// The page, with the field catalog inside it: the table reads its labels
/// and sortable columns from there without a round trip before the first
/// rows.
/// The page's icon (the two ticks of the logo), also at `/favicon.ico`,
/// where browsers ask for it whatever the page says: a 404 on every page
/// view otherwise.
const FAVICON_SVG: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" fill="#0f172a"/><path d="M4 17l4 4 9-10M13 21l2 0 10-10" fill="none" stroke="#38bdf8" stroke-width="3" stroke-linecap="round" stroke-linejoin="round"/></svg>"##;

pub(crate) fn favicon() -> Response<Body> {
    text_response(StatusCode::OK, "image/svg+xml", FAVICON_SVG)
}

pub(crate) fn page() -> Response<Body> {
    text_response(StatusCode::OK, "text/html; charset=utf-8", page_html())
}

fn page_html() -> &'static str {
    static PAGE: OnceLock<String> = OnceLock::new();
    PAGE.get_or_init(|| {
        // `</` inside a script element would end it.
        let catalog = fields_json().to_string().replace("</", "<\\/");
        INDEX_HTML.replace(
            FIELDS_MARK,
            &format!(r#"<script type="application/json" id="ticks-fields">{catalog}</script>"#),
        )
    })
}

pub(crate) fn asset(name: &str) -> Result<Response<Body>, ApiError> {
    if name == "app.css" {
        return Ok(text_response(
            StatusCode::OK,
            "text/css; charset=utf-8",
            APP_CSS,
        ));
    }
    match SCRIPTS.iter().find(|(n, _)| *n == name) {
        Some((_, js)) => Ok(text_response(
            StatusCode::OK,
            "text/javascript; charset=utf-8",
            *js,
        )),
        None => Err(ApiError::NotFound(format!("no asset {name}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(name: &str) -> &'static str {
        SCRIPTS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, js)| *js)
            .unwrap_or_default()
    }

    /// The tables' columns are fields of the catalog: a renamed or removed
    /// field cannot leave the page showing a column the API lacks.
    #[test]
    fn the_tables_show_fields_of_the_catalog() {
        let mut columns = 0;
        for part in script("table.js").split("col(\"").skip(1) {
            let name = part.split('"').next().unwrap_or("");
            assert!(
                ticks_query::field(name).is_some(),
                "table.js shows {name:?}, which is not in the field catalog"
            );
            columns += 1;
        }
        assert!(columns > 20, "{columns} columns found");
    }

    /// The page carries the catalog the table reads, as `GET /v1/fields`
    /// serves it.
    #[test]
    fn the_page_carries_the_field_catalog() {
        let html = page_html();
        let start = html
            .find(r#"<script type="application/json" id="ticks-fields">"#)
            .expect("the catalog is in the page");
        let json = &html[start..];
        let json = &json[json.find('>').unwrap_or(0) + 1..json.find("</script>").unwrap_or(0)];
        let catalog: serde_json::Value = serde_json::from_str(json).expect("the catalog parses");
        assert_eq!(catalog, fields_json());
        assert!(!html.contains(FIELDS_MARK));
    }

    /// Every module the scripts import is served.
    #[test]
    fn every_imported_module_is_served() {
        for (name, js) in SCRIPTS {
            for part in js.split("from \"./").skip(1) {
                let module = part.split('"').next().unwrap_or("");
                assert!(
                    SCRIPTS.iter().any(|(n, _)| *n == module),
                    "{name} imports {module}, which is not served"
                );
            }
        }
    }
}
