//! The boundary between the server and where the log lives.
//!
//! The server (HTTP handlers, exports, deletion, the relay, metrics) talks
//! to the log only through [`Backend`]. The embedded store implements it
//! here, on the engine and this crate's query functions; a backend on
//! another database (ClickHouse) implements the same trait, and the same
//! end-to-end tests then run on both.
//!
//! Entries are named by their id (`u32`, dense, never reused) and records
//! by their [`Seq`]; sets of entries are roaring bitmaps of ids.

use crate::error::QueryError;
use crate::exec::{GroupBy, Page, Stats};
use crate::params::LogQuery;
use crate::report::{Report, ReportOptions};
use roaring::RoaringBitmap;
use std::sync::Arc;
use ticks_engine::templates::{Catalog, TemplateDef};
use ticks_engine::{
    AppendOutcome, Contact, Entry, EntryDetail, EntryId, Input, PurgeRecord, Record, Seq, Source,
    Store, StoreStats, TemplatesAdded, Timeline, WriteHealth,
};
use ticks_ingest::{ImportOptions, ImportReport};

/// What a backend answers with.
pub type BackendResult<T> = Result<T, QueryError>;

/// Called with each raw input of an export: its sequence number, source,
/// receive time and bytes.
pub type RawInputSink<'a> = dyn FnMut(Seq, Source, i64, &[u8]) -> std::io::Result<()> + 'a;

/// Where the log lives, as the server sees it: writes, queries, exports,
/// deletion, settings and health.
pub trait Backend: Send + Sync {
    /// Appends inputs and returns once they are durable, one outcome each.
    fn append(&self, inputs: Vec<Input>) -> BackendResult<Vec<AppendOutcome>>;
    /// Appends one input.
    fn append_one(&self, input: Input) -> BackendResult<AppendOutcome> {
        self.append(vec![input])?
            .pop()
            .ok_or_else(|| QueryError::Backend("an append returned no outcome".into()))
    }
    /// Imports NDJSON lines (send results and webhook bodies), durable on
    /// return.
    fn import(
        &self,
        lines: &mut dyn std::io::BufRead,
        options: &ImportOptions,
    ) -> BackendResult<ImportReport>;

    /// A page of the log table with the exact total.
    fn search(&self, query: &LogQuery) -> BackendResult<Page>;
    /// Every entry the query selects (its paging ignored).
    fn matching(&self, query: &LogQuery) -> BackendResult<RoaringBitmap>;
    /// Every entry the query selects, in its sort order.
    fn sorted_ids(&self, query: &LogQuery) -> BackendResult<Vec<u32>>;
    /// Group-by counts.
    fn stats(&self, query: &LogQuery, by: GroupBy) -> BackendResult<Stats>;
    /// The consolidated report.
    fn report(&self, query: &LogQuery, options: &ReportOptions) -> BackendResult<Report>;
    /// One entry with every raw input it came from.
    fn entry_detail(&self, id: EntryId) -> BackendResult<Option<EntryDetail>>;
    /// A message's timeline.
    fn timeline(&self, wamid: &str) -> BackendResult<Option<Timeline>>;
    /// The person an identifier names, typed as a person would (any number
    /// format, a user id, `@username`); `None` when no entry is theirs.
    fn contact(&self, typed: &str) -> BackendResult<Option<Contact>>;
    /// The entries of these ids (those that exist), in the order given.
    fn entries(&self, ids: &[u32]) -> BackendResult<Vec<Entry>>;
    /// The raw inputs the entries of `ids` came from, each once, in log
    /// order, as source, receive time and bytes.
    fn raw_inputs(&self, ids: &[u32], each: &mut RawInputSink<'_>) -> BackendResult<()>;

    /// The entries of `ids` that exist and are not purged.
    fn live(&self, ids: &RoaringBitmap) -> BackendResult<RoaringBitmap>;
    /// Deletes entries for good (see the engine's purge), keeping a purge
    /// record: who, which filter, which export receipt, whether forced.
    fn purge(
        &self,
        ids: &RoaringBitmap,
        actor: &str,
        filter: &str,
        receipt: Option<String>,
        forced: bool,
    ) -> BackendResult<Seq>;
    /// Every purge record, oldest first.
    fn purges(&self) -> BackendResult<Vec<(Seq, PurgeRecord)>>;

    /// The values of a settings namespace (saved searches, receipts, relay
    /// cursors), by key.
    fn settings(&self, namespace: &str) -> BackendResult<Vec<(String, Vec<u8>)>>;
    /// Saves a setting, durably.
    fn put_setting(&self, namespace: &str, key: &str, value: &[u8]) -> BackendResult<()>;
    /// Removes a setting; true when it existed.
    fn delete_setting(&self, namespace: &str, key: &str) -> BackendResult<bool>;

    /// The last record's sequence number.
    fn last_seq(&self) -> Option<Seq>;
    /// The first webhook body stored after `cursor`, for the relay.
    fn webhook_after(&self, cursor: Option<Seq>) -> BackendResult<Option<(Seq, Vec<u8>)>>;

    /// Whether writes succeed now, and how many failed.
    fn write_health(&self) -> WriteHealth;
    /// Why writes (or indexing) fail now.
    fn write_fault(&self) -> Option<String>;
    /// Sizes and counts.
    fn store_stats(&self) -> BackendResult<StoreStats>;
    /// Appends inputs and calls `done` once they are durable, without
    /// blocking the caller (an async server awaits the call). By default
    /// it appends, blocking, then calls `done`.
    fn append_then(
        &self,
        inputs: Vec<Input>,
        done: Box<dyn FnOnce(BackendResult<Vec<AppendOutcome>>) + Send>,
    ) {
        done(self.append(inputs));
    }
    /// Counts what changed since the last call towards `alerts`, slides
    /// their windows to `now_ms`, and returns the rules that fired or
    /// resolved. The first call starts watching and counts nothing.
    fn evaluate_alerts(
        &self,
        alerts: &mut crate::alerts::Alerts,
        now_ms: i64,
    ) -> BackendResult<Vec<crate::alerts::Transition>>;
    /// Whether this process delivers alert notifications: the one that
    /// evaluates the rules (on a deployment of several processes, one of
    /// them; see [`Backend::evaluate_alerts`]). By default, yes.
    fn delivers_alerts(&self) -> bool {
        true
    }
    /// The template catalog: every version of every template.
    fn templates(&self) -> Arc<Catalog>;
    /// Adds template definitions (each with the time it came into force
    /// when known, else `seen_ms`), durably; the sends they render become
    /// searchable by their rendered text in the background.
    fn add_templates(
        &self,
        defs: Vec<(TemplateDef, Option<i64>)>,
        seen_ms: i64,
    ) -> BackendResult<TemplatesAdded>;
}

/// The embedded store: the engine on sled, tantivy and roaring bitmaps.
impl Backend for Store {
    fn append(&self, inputs: Vec<Input>) -> BackendResult<Vec<AppendOutcome>> {
        Ok(Store::append(self, inputs)?)
    }

    fn import(
        &self,
        lines: &mut dyn std::io::BufRead,
        options: &ImportOptions,
    ) -> BackendResult<ImportReport> {
        ticks_ingest::import(self, lines, options).map_err(|e| QueryError::Backend(e.to_string()))
    }

    fn evaluate_alerts(
        &self,
        alerts: &mut crate::alerts::Alerts,
        now_ms: i64,
    ) -> BackendResult<Vec<crate::alerts::Transition>> {
        let changed = self.take_changes();
        Ok(alerts.evaluate(self, &changed, now_ms))
    }
    fn search(&self, query: &LogQuery) -> BackendResult<Page> {
        crate::exec::search(self, query)
    }

    fn matching(&self, query: &LogQuery) -> BackendResult<RoaringBitmap> {
        crate::exec::matching(self, query)
    }

    fn sorted_ids(&self, query: &LogQuery) -> BackendResult<Vec<u32>> {
        crate::exec::sorted_ids(self, query)
    }

    fn stats(&self, query: &LogQuery, by: GroupBy) -> BackendResult<Stats> {
        crate::exec::stats(self, query, by)
    }

    fn report(&self, query: &LogQuery, options: &ReportOptions) -> BackendResult<Report> {
        crate::report::report(self, query, options)
    }

    fn entry_detail(&self, id: EntryId) -> BackendResult<Option<EntryDetail>> {
        Ok(Store::entry_detail(self, id)?)
    }

    fn timeline(&self, wamid: &str) -> BackendResult<Option<Timeline>> {
        Ok(Store::timeline(self, wamid)?)
    }

    fn contact(&self, typed: &str) -> BackendResult<Option<Contact>> {
        Ok(self.snapshot().contact(typed))
    }

    fn entries(&self, ids: &[u32]) -> BackendResult<Vec<Entry>> {
        Ok(self.snapshot().entries(ids))
    }

    fn raw_inputs(&self, ids: &[u32], each: &mut RawInputSink<'_>) -> BackendResult<()> {
        // In chunks, so that the snapshot's read lock is held briefly.
        let mut seqs: Vec<Seq> = Vec::new();
        for chunk in ids.chunks(1000) {
            seqs.extend(self.snapshot().entry_records(chunk));
        }
        seqs.sort_unstable();
        seqs.dedup();
        Ok(Store::raw_inputs(self, &seqs, |seq, source, at, raw| {
            each(seq, source, at, raw)
        })?)
    }

    fn live(&self, ids: &RoaringBitmap) -> BackendResult<RoaringBitmap> {
        Ok(self.snapshot().live() & ids)
    }

    fn purge(
        &self,
        ids: &RoaringBitmap,
        actor: &str,
        filter: &str,
        receipt: Option<String>,
        forced: bool,
    ) -> BackendResult<Seq> {
        Ok(Store::purge(self, ids, actor, filter, receipt, forced)?)
    }

    fn purges(&self) -> BackendResult<Vec<(Seq, PurgeRecord)>> {
        Ok(Store::purges(self)?)
    }

    fn settings(&self, namespace: &str) -> BackendResult<Vec<(String, Vec<u8>)>> {
        Ok(Store::settings(self, namespace)?)
    }

    fn put_setting(&self, namespace: &str, key: &str, value: &[u8]) -> BackendResult<()> {
        Ok(Store::put_setting(self, namespace, key, value)?)
    }

    fn delete_setting(&self, namespace: &str, key: &str) -> BackendResult<bool> {
        Ok(Store::delete_setting(self, namespace, key)?)
    }

    fn last_seq(&self) -> Option<Seq> {
        Store::last_seq(self)
    }

    fn webhook_after(&self, cursor: Option<Seq>) -> BackendResult<Option<(Seq, Vec<u8>)>> {
        for item in self.records_after(cursor) {
            if let (seq, Record::Input(rec)) = item? {
                if rec.source == Source::Webhook {
                    return Ok(Some((seq, rec.raw)));
                }
            }
        }
        Ok(None)
    }

    fn write_health(&self) -> WriteHealth {
        Store::write_health(self)
    }

    fn write_fault(&self) -> Option<String> {
        Store::write_fault(self)
    }

    fn templates(&self) -> Arc<Catalog> {
        Store::templates(self)
    }

    fn append_then(
        &self,
        inputs: Vec<Input>,
        done: Box<dyn FnOnce(BackendResult<Vec<AppendOutcome>>) + Send>,
    ) {
        self.submit_then(
            inputs,
            Box::new(move |result| done(result.map_err(Into::into))),
        );
    }

    fn add_templates(
        &self,
        defs: Vec<(TemplateDef, Option<i64>)>,
        seen_ms: i64,
    ) -> BackendResult<TemplatesAdded> {
        Ok(Store::add_templates(self, defs, seen_ms)?)
    }

    fn store_stats(&self) -> BackendResult<StoreStats> {
        Ok(Store::stats(self)?)
    }
}
