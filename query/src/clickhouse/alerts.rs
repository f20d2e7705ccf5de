//! Alerts on ClickHouse: what changed since the last round is the entries
//! whose latest row was written since then (`derived_ms`), whichever Ticks
//! process wrote it, read from the rows `entry_changes` (ordered by the
//! time of writing, with each row's version and values) recorded since
//! then, not by reading every row's `derived_ms`, nor by looking the
//! changed keys up in `entries` (a granule each).
//!
//! One process evaluates the deployment's alert rules: the live writer of
//! the smallest tag (a tag is live while its claim is renewed, see
//! `writer.rs`), so that a firing is notified once, not once per process.
//! When it stops, the next takes over once its tag's lease ran out (ten
//! minutes), and starts watching from then: a change written meanwhile is
//! not counted. The others' rounds count nothing.
//!
//! A round reads the rows written from a few seconds before the previous
//! round on: a row written by another process just before that round but
//! visible only after it is still read; one read twice counts once (each
//! rule counts an entry once per window).

use super::search::{changed_events, changed_matching, changed_since};
use super::shared::Shared;
use super::writer::TAG_LEASE_MS;
use crate::alerts::ChangeSource;
use crate::error::QueryError;
use crate::params::LogQuery;
use roaring::RoaringBitmap;
use ticks_engine::Entry;

/// How far before the previous round a round reads the rows written.
pub(super) const OVERLAP_MS: i64 = 5_000;

/// The rows written since `since_ms`.
pub(super) struct Written<'a> {
    pub(super) shared: &'a Shared,
    pub(super) since_ms: i64,
}

impl ChangeSource for Written<'_> {
    type Error = QueryError;

    fn any(&mut self) -> Result<bool, QueryError> {
        changed_since(self.shared, self.since_ms)
    }

    fn matching(&mut self, cutoff: i64, q: &LogQuery) -> Result<RoaringBitmap, QueryError> {
        changed_matching(self.shared, q, self.since_ms, cutoff)
    }

    fn events(&mut self, cutoff: i64, fields: &[&str]) -> Result<Vec<Entry>, QueryError> {
        changed_events(self.shared, self.since_ms, cutoff, fields)
    }
}

/// Whether the process of writer tag `tag` is the one that evaluates
/// alerts: the live tag of the smallest number.
pub(super) fn evaluates(shared: &Shared, tag: u64, now_ms: i64) -> Result<bool, QueryError> {
    let t = shared.table("writers");
    let text = shared.client.query_text(&format!(
        "SELECT min(tag) FROM {t} WHERE seen_ms > {}",
        now_ms - TAG_LEASE_MS
    ))?;
    Ok(text.trim().parse::<u64>().is_ok_and(|first| first == tag))
}
