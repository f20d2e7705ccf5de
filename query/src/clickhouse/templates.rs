//! The template catalog on ClickHouse: every version of every template,
//! kept in the settings table (namespace `templates`, a key per version),
//! shared by every Ticks process on the deployment.
//!
//! Templated sends are rendered when their entries are derived (their
//! shown text, and the words free text finds them by), with the catalog
//! the deriving process holds ([`Shared::catalog`], read again after
//! [`CATALOG_FRESH`]). Adding a version therefore derives again the sends
//! of its template, as the embedded store re-indexes them. It does so once
//! every process has read the catalog again: a fold another process began
//! with the catalog before the addition started before that moment, so the
//! fold begun after it sees at least as many inputs and ids, and a larger
//! catalog, and its rows win (`derive.rs`, `version`). The addition
//! returns once those sends are derived again.

use super::client::{quote, ChError};
use super::rowbinary::Reader;
use super::shared::{catalog_key, unavailable, Shared, CATALOG_FRESH, TEMPLATES_NAMESPACE};
use super::writer::Writer;
use crate::error::QueryError;
use std::collections::BTreeSet;
use std::time::Duration;
use ticks_engine::templates::TemplateDef;
use ticks_engine::TemplatesAdded;

/// Sends derived again per turn of the writer (writes queued meanwhile go
/// between turns).
const REDERIVED_PER_TURN: usize = 1_000;

/// How long after the catalog is written its sends are derived again:
/// past [`CATALOG_FRESH`], with a margin for a read that was under way.
const SETTLE: Duration = Duration::from_millis(CATALOG_FRESH.as_millis() as u64 + 200);

/// Adds template definitions (each first seen at the time given with it,
/// else at `seen_ms`) to the deployment's catalog, then derives again the
/// sends of every template that got a new version.
pub(super) fn add(
    shared: &Shared,
    writer: &Writer,
    defs: Vec<(TemplateDef, Option<i64>)>,
    seen_ms: i64,
) -> Result<TemplatesAdded, QueryError> {
    let mut catalog = (*shared.reload_catalog().map_err(unavailable)?).clone();
    let before = catalog.generation();
    let (mut added, stored) = catalog.add_all(defs, seen_ms);
    let changed: BTreeSet<(String, String)> = catalog.changed_since(before).into_iter().collect();
    if stored.is_empty() {
        return Ok(added);
    }
    let mut values = Vec::with_capacity(stored.len());
    for v in &stored {
        let json = serde_json::to_vec(v)
            .map_err(|e| QueryError::Backend(format!("a template version: {e}")))?;
        values.push((catalog_key(v), json));
    }
    shared
        .write_settings(TEMPLATES_NAMESPACE, &values)
        .map_err(unavailable)?;
    shared.reload_catalog().map_err(unavailable)?;
    if changed.is_empty() {
        return Ok(added);
    }
    let keys = sends_of(shared, &changed).map_err(unavailable)?;
    added.backfill = keys.len() as u64;
    if !keys.is_empty() {
        std::thread::sleep(SETTLE);
        for turn in keys.chunks(REDERIVED_PER_TURN) {
            writer.rederive(turn.to_vec())?;
        }
    }
    Ok(added)
}

/// The keys of the outbound entries sent with any of `templates` (name,
/// language).
fn sends_of(
    shared: &Shared,
    templates: &BTreeSet<(String, String)>,
) -> Result<Vec<String>, ChError> {
    let list = |names: BTreeSet<&String>| -> String {
        names
            .into_iter()
            .map(|n| quote(n))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let names = list(templates.iter().map(|(n, _)| n).collect());
    let languages = list(templates.iter().map(|(_, l)| l).collect());
    let t = shared.table("entries");
    let bytes = shared.client.query(&format!(
        "SELECT DISTINCT key, ifNull(template, ''), ifNull(language, '') FROM {t} \
         WHERE direction = 'outbound' AND template IN ({names}) AND language IN ({languages}) \
         ORDER BY key FORMAT RowBinary"
    ))?;
    let mut r = Reader::new(&bytes);
    let mut keys = Vec::new();
    let bad = |_| ChError::Server {
        status: 500,
        message: "the sends of a template could not be read".into(),
    };
    while !r.is_done() {
        let key = String::from_utf8_lossy(r.string().map_err(bad)?).into_owned();
        let name = String::from_utf8_lossy(r.string().map_err(bad)?).into_owned();
        let language = String::from_utf8_lossy(r.string().map_err(bad)?).into_owned();
        if templates.contains(&(name, language)) {
            keys.push(key);
        }
    }
    Ok(keys)
}
