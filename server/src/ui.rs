//! The web page, embedded in the binary: no CDN, no build step. Its
//! modules are linked into one script when first asked for (`bundle`).

mod bundle;

use crate::error::ApiError;
use crate::present::fields_json;
use crate::respond::{text_response, Body};
use hyper::{Response, StatusCode};
use std::sync::OnceLock;

const INDEX_HTML: &str = include_str!("../ui/index.html");
const APP_CSS: &str = include_str!("../ui/app.css");
/// Where the page carries the field catalog and the language catalogs.
const FIELDS_MARK: &str = "<!--fields-->";

/// The page's messages in each language it speaks, by language tag
/// (`i18n.js` chooses one). English is the reference: every catalog has
/// its keys and placeholders (a test holds them to it).
const CATALOGS: [(&str, &str); 4] = [
    ("en", include_str!("../ui/i18n/en.json")),
    ("pt-BR", include_str!("../ui/i18n/pt-BR.json")),
    ("es", include_str!("../ui/i18n/es.json")),
    ("ja", include_str!("../ui/i18n/ja.json")),
];

/// The page's modules, by the name they import each other by; the page
/// runs them linked into one script, `/assets/ticks.js`, from `app.js`.
const SCRIPTS: [(&str, &str); 15] = [
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
    ("i18n.js", include_str!("../ui/i18n.js")),
    ("explore.js", include_str!("../ui/explore.js")),
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
        // One element per language: the page parses English and its own,
        // not all four.
        let mut languages = String::new();
        for (tag, json) in CATALOGS {
            // A catalog that does not parse fails the tests; the page then
            // falls back to English keys rather than not starting.
            let messages: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
            let messages = messages.to_string().replace("</", "<\\/");
            languages.push_str(&format!(
                "\n<script type=\"application/json\" id=\"ticks-i18n-{tag}\">{messages}</script>"
            ));
        }
        INDEX_HTML.replace(
            FIELDS_MARK,
            &format!(
                r#"<script type="application/json" id="ticks-fields">{catalog}</script>{languages}"#
            ),
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
    if name == "ticks.js" {
        return match linked_script() {
            Ok(js) => Ok(text_response(
                StatusCode::OK,
                "text/javascript; charset=utf-8",
                js.as_str(),
            )),
            // The modules are compiled in and linked in the tests: this
            // names the fault should an untested edit reach a build.
            Err(e) => Err(ApiError::Internal(format!("the page's script: {e}"))),
        };
    }
    Err(ApiError::NotFound(format!("no asset {name}")))
}

/// The page's modules as one script, linked once.
fn linked_script() -> &'static Result<String, bundle::BundleError> {
    static SCRIPT: OnceLock<Result<String, bundle::BundleError>> = OnceLock::new();
    SCRIPT.get_or_init(|| bundle::bundle(&SCRIPTS, "app.js"))
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

    /// The page runs one script, every module linked into it: served as
    /// fifteen modules they cost the first render a third of its time.
    #[test]
    fn the_page_runs_every_module_linked_into_one_script() {
        let script = match linked_script() {
            Ok(script) => script,
            Err(e) => panic!("the page's modules do not link: {e}"),
        };
        for (name, _) in SCRIPTS {
            assert_eq!(
                script.matches(&format!("// --- {name} ---")).count(),
                1,
                "{name} is not linked into the page's script once"
            );
        }
        assert_eq!(INDEX_HTML.matches("<script ").count(), 1);
        assert!(INDEX_HTML.contains(r#"<script type="module" src="/assets/ticks.js"></script>"#));
        assert!(!INDEX_HTML.contains("modulepreload"));
    }

    fn catalog(tag: &str) -> serde_json::Map<String, serde_json::Value> {
        let json = CATALOGS
            .iter()
            .find(|(t, _)| *t == tag)
            .map(|(_, j)| *j)
            .unwrap_or_default();
        match serde_json::from_str(json) {
            Ok(serde_json::Value::Object(m)) => m,
            other => panic!("the {tag} catalog is not a JSON object: {other:?}"),
        }
    }

    fn placeholders(message: &str) -> std::collections::BTreeSet<&str> {
        message
            .split('{')
            .skip(1)
            .filter_map(|p| p.split_once('}').map(|(name, _)| name))
            .collect()
    }

    /// Every language has every English message, with the same
    /// placeholders, and none left empty: a missing translation fails here.
    #[test]
    fn every_language_translates_every_message() {
        let en = catalog("en");
        assert!(en.len() > 400, "{} messages", en.len());
        for (tag, _) in CATALOGS {
            let other = catalog(tag);
            for (key, message) in &en {
                let message = message.as_str().unwrap_or_default();
                let translated = other.get(key).and_then(|v| v.as_str());
                let Some(translated) = translated else {
                    panic!("{tag} has no translation of {key:?} ({message:?})");
                };
                assert!(!translated.trim().is_empty(), "{tag}: {key:?} is empty");
                assert_eq!(
                    placeholders(translated),
                    placeholders(message),
                    "{tag}: {key:?} names other placeholders than English"
                );
            }
            let extra: Vec<_> = other.keys().filter(|k| !en.contains_key(*k)).collect();
            assert!(
                extra.is_empty(),
                "{tag} has messages English lacks: {extra:?}"
            );
        }
    }

    /// Every message key the scripts and the page name is in the catalog
    /// (`t("...")` with a whole key, `data-i18n...="..."`).
    #[test]
    fn every_key_the_page_uses_is_in_the_catalog() {
        let en = catalog("en");
        let mut used = Vec::new();
        for (name, js) in SCRIPTS {
            for (at, _) in js.match_indices("t(\"") {
                // `t(` itself, not `get(` or `set(`.
                let before = js[..at].chars().next_back().unwrap_or(' ');
                if before.is_alphanumeric() || before == '_' || before == '.' {
                    continue;
                }
                let part = &js[at + 3..];
                let Some((key, rest)) = part.split_once('"') else {
                    continue;
                };
                // `t("field." + name)`: a key built at run time (the
                // families are checked below).
                if rest.starts_with(" +") {
                    continue;
                }
                used.push((name, key.to_string()));
            }
        }
        // Keys passed around before `t` sees them (table heads, rows of
        // labels): any string literal shaped like a key of a family.
        const FAMILIES: [&str; 21] = [
            "nav.",
            "title.",
            "filters.",
            "time.",
            "saved.",
            "dialog.",
            "chips.",
            "table.",
            "menu.",
            "mo.",
            "detail.",
            "delete.",
            "explore.",
            "sidebar.",
            "report.",
            "contact.",
            "health.",
            "templates.",
            "alerts.",
            "value.",
            "field.",
        ];
        for (name, js) in SCRIPTS {
            for literal in js.split('"').skip(1).step_by(2) {
                let shaped = FAMILIES.iter().any(|f| literal.starts_with(f))
                    && literal.chars().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.'
                    })
                    && !literal.ends_with('.')
                    && !literal.ends_with('_');
                if shaped {
                    used.push((name, literal.to_string()));
                }
            }
        }
        for part in INDEX_HTML.split("data-i18n").skip(1) {
            let Some((_, rest)) = part.split_once("=\"") else {
                continue;
            };
            let key = rest.split('"').next().unwrap_or_default();
            used.push(("index.html", key.to_string()));
        }
        assert!(used.len() > 300, "{} keys found", used.len());
        for (file, key) in used {
            assert!(
                en.contains_key(&key),
                "{file} uses {key:?}, which no catalog has"
            );
        }
    }

    /// The names the page builds keys from: every field's label, every
    /// status, every code's meaning and action, in every language.
    #[test]
    fn every_field_status_and_code_has_a_name_in_every_language() {
        let mut keys: Vec<String> = Vec::new();
        for f in ticks_query::FIELDS.iter() {
            keys.push(format!("field.{}", f.name));
        }
        for s in ticks_engine::Status::ALL {
            keys.push(format!("value.status.{}", s.as_str()));
        }
        for d in [
            ticks_engine::Direction::Outbound,
            ticks_engine::Direction::Inbound,
            ticks_engine::Direction::Event,
        ] {
            keys.push(format!("value.direction.{}", d.as_str()));
        }
        for step in [
            "attempted",
            "accepted",
            "sent",
            "delivered",
            "read",
            "engaged",
        ] {
            keys.push(format!("value.step.{step}"));
        }
        for code in 0..=200_000 {
            for info in [ticks_ingest::meta_error_info(code)]
                .into_iter()
                .chain(u16::try_from(code).ok().map(ticks_ingest::http_code_info))
                .flatten()
            {
                keys.push(format!("code.{}", info.meaning));
                keys.push(format!("code.{}", info.action));
            }
        }
        keys.sort();
        keys.dedup();
        for (tag, _) in CATALOGS {
            let c = catalog(tag);
            for key in &keys {
                assert!(c.contains_key(key), "{tag} has no {key:?}");
            }
        }
    }
}
