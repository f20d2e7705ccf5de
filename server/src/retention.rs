//! Retention: entries older than the configured maximum age are exported to
//! the configured folder (NDJSON, re-importable) and then purged with that
//! export's receipt, once at start and then daily.

use crate::{export, purge};
use anyhow::Result;
use std::path::Path;
use std::sync::Arc;
use ticks_query::Backend;

const DAY_MS: i64 = 86_400_000;

/// One retention pass at `now_ms`: what it exported and purged, if anything.
pub(crate) fn run_once(
    store: &dyn Backend,
    max_age_days: u32,
    export_dir: &Path,
    now_ms: i64,
) -> Result<Option<purge::Purged>> {
    let cutoff = now_ms - i64::from(max_age_days) * DAY_MS;
    let pairs = vec![("to".to_string(), cutoff.to_string())];
    let query = ticks_query::LogQuery::from_params(&pairs, &[])?;
    let ids = store.matching(&query)?;
    if ids.is_empty() {
        return Ok(None);
    }
    let filter = format!("to={}", crate::present::rfc3339(cutoff, 0));
    let (receipt, path) = export::export_to_folder(
        store,
        &query,
        &filter,
        export::Format::Ndjson,
        export_dir,
        "ticks-retention",
        now_ms,
    )?;
    tracing::info!(
        entries = receipt.count,
        file = %path.display(),
        "retention: exported entries older than {max_age_days} days"
    );
    match purge::purge(store, &ids, "retention", &filter, Some(&receipt.id), false)? {
        Ok(p) => Ok(Some(p)),
        Err(refusal) => anyhow::bail!("retention purge refused: {refusal}"),
    }
}

/// Runs retention now and then every day, until the runtime stops.
pub(crate) fn spawn(store: Arc<dyn Backend>, max_age_days: u32, export_dir: std::path::PathBuf) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(86_400));
        loop {
            tick.tick().await;
            let (s, dir) = (store.clone(), export_dir.clone());
            let result = tokio::task::spawn_blocking(move || {
                run_once(&*s, max_age_days, &dir, ticks_ingest::now_ms())
            })
            .await;
            match result {
                Ok(Ok(Some(p))) => tracing::info!(deleted = p.deleted, "retention: purged"),
                Ok(Ok(None)) => {}
                Ok(Err(e)) => tracing::error!("retention: {e:#}"),
                Err(e) => tracing::error!("retention task: {e}"),
            }
        }
    });
}
