//! The OpenAPI document served at `GET /v1/openapi.json`: `openapi.json`
//! as written, with the filter parameters of every operation marked
//! `x-ticks-filters` generated from the field catalog, so the document
//! cannot miss a filter the API takes (the route table's test holds the
//! paths and scopes to the routes).

use serde_json::{json, Value};
use std::sync::OnceLock;
use ticks_query::{FieldKind, FilterField, FIELDS};

const WRITTEN: &str = include_str!("../openapi.json");
/// The mark of an operation that takes the log filters.
const FILTERS_MARK: &str = "x-ticks-filters";

/// The document as served.
pub(crate) fn document() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        let Ok(mut doc) = serde_json::from_str::<Value>(WRITTEN) else {
            // The test below parses it: a broken file never ships.
            return WRITTEN.to_string();
        };
        expand_filters(&mut doc);
        doc.to_string()
    })
}

fn expand_filters(doc: &mut Value) {
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for item in paths.values_mut() {
        let Some(ops) = item.as_object_mut() else {
            continue;
        };
        for op in ops.values_mut() {
            let Some(op) = op.as_object_mut() else {
                continue;
            };
            if op.remove(FILTERS_MARK).is_none() {
                continue;
            }
            let mut params = filter_parameters();
            if let Some(Value::Array(written)) = op.get("parameters") {
                params.extend(written.iter().cloned());
            }
            op.insert("parameters".into(), Value::Array(params));
        }
    }
}

/// One query parameter per filterable field of the catalog.
fn filter_parameters() -> Vec<Value> {
    FIELDS
        .iter()
        .filter_map(|f| {
            let filter = f.filter?;
            let mut description = format!(
                "{}. Repeat the parameter or separate values with commas for OR; \
                 `-value` or `-{}=` excludes; `none` matches entries without one.",
                f.label, f.name
            );
            if !f.aliases.is_empty() {
                description.push_str(&format!(" Also named {}.", f.aliases.join(", ")));
            }
            let mut schema = json!({ "type": "string" });
            match filter {
                FilterField::Indexed(field) => {
                    if let Some(mut names) = field.value_names() {
                        names.push("none");
                        schema["enum"] = json!(names);
                    } else if f.kind == FieldKind::Integer {
                        schema["pattern"] = json!("^(-?[0-9]+|none)$");
                    }
                }
                FilterField::Id => schema["pattern"] = json!("^[0-9]+$"),
                FilterField::Phone
                | FilterField::Wamid
                | FilterField::CorrelationId
                | FilterField::Contact
                | FilterField::Event => {}
                FilterField::OptedOut => schema["enum"] = json!(["true", "false"]),
            }
            Some(json!({
                "name": f.name,
                "in": "query",
                "description": description,
                "schema": schema,
            }))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_written_document_parses() {
        serde_json::from_str::<Value>(WRITTEN).expect("openapi.json parses");
    }

    /// Every filter the parser takes is documented on every filtering
    /// operation, and nothing is documented twice.
    #[test]
    fn every_catalog_filter_is_a_documented_parameter() {
        let doc: Value = serde_json::from_str(document()).expect("served document parses");
        assert!(!document().contains(FILTERS_MARK));
        for path in ["/v1/logs", "/v1/stats", "/v1/report", "/v1/export"] {
            let params = doc["paths"][path]["get"]["parameters"]
                .as_array()
                .expect("parameters");
            let names: Vec<&str> = params.iter().filter_map(|p| p["name"].as_str()).collect();
            for f in FIELDS.iter().filter(|f| f.filterable()) {
                assert!(names.contains(&f.name), "{path} lacks {}", f.name);
                assert!(
                    ticks_query::FilterField::parse(f.name).is_some(),
                    "{} is documented but not parsed",
                    f.name
                );
            }
            let mut unique = names.clone();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(unique.len(), names.len(), "{path}: a parameter twice");
        }
    }
}
