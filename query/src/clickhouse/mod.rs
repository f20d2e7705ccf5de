//! The ClickHouse backend: the log kept in a ClickHouse server or cluster,
//! for deployments past one machine.
//!
//! What it holds (see `schema.rs` for the tables): every raw input, byte
//! for byte with its parsed events, acknowledged only once ClickHouse
//! confirmed the insert and the entries it changes were derived again;
//! the entries, derived with the embedded store's own fold
//! (`ticks_engine::Derivation`) over each person's inputs, so that any
//! number of writers, any arrival order and Meta's redeliveries give the
//! embedded store's entries; settings (saved searches, receipts, relay
//! cursors); purge records. Any number of Ticks processes write at once:
//! each claims a writer tag at open and every `seq` it hands out carries
//! it, so sequence numbers never collide and order by time of receipt.
//!
//! What it could not answer (a filter on a field it has no column for) is
//! refused with [`QueryError::Unsupported`] naming it, never an empty
//! answer that would read as "nothing found".
//!
//! Modules, from the bottom up: `client.rs` (the HTTP interface, several
//! URLs tried in turn), `rowbinary.rs` (the `RowBinary` rows inserts and
//! reads use), `index_row.rs` (an index row's one string, made by
//! ClickHouse and read by Ticks), `schema.rs` (the tables, created and
//! upgraded at open),
//! `shared.rs` (what the handles, the writer and a purge share),
//! `named.rs` (what an input names), `alerts.rs` (what changed for alert
//! rules, and which process evaluates them), `inputs.rs` (the raw inputs of
//! entries), `purge.rs` (purge and erasure), `writer.rs` (the group
//! commit of inputs and the writer tag), `derive.rs` (entries derived
//! again after each write, their versions and ids), `templates.rs` (the
//! template catalog, and sends derived again when it grows), `settle.rs`
//! (each entry's latest row kept countable without grouping), `search.rs`
//! (the log table as SQL over each entry's latest version).

mod alerts;
pub mod client;
mod derive;
mod index_row;
mod inputs;
mod named;
mod purge;
pub mod rowbinary;
pub mod schema;
mod search;
mod settle;
mod shared;
mod templates;
mod writer;

use crate::alerts::{Alerts, Transition};
use crate::backend::{Backend, BackendResult, RawInputSink};
use crate::error::QueryError;
use crate::exec::{GroupBy, Page, Stats};
use crate::params::LogQuery;
use crate::report::{Report, ReportOptions};
use client::{quote, ChError, Client};
use roaring::RoaringBitmap;
use rowbinary::Reader;
use schema::{Layout, SchemaInfo};
use std::sync::Arc;
use std::time::Duration;
use ticks_engine::templates::{Catalog, TemplateDef};
use ticks_engine::{
    AppendOutcome, Contact, Entry, EntryDetail, EntryId, Input, PurgeRecord, Seq, Source,
    StoreStats, TemplatesAdded, Timeline, WriteHealth,
};
use ticks_ingest::{ImportOptions, ImportReport, ImportTarget, PendingBatch};

/// Where the ClickHouse servers are and how Ticks reaches them.
#[derive(Clone, Debug)]
pub struct ClickHouseConfig {
    /// The servers' HTTP URLs, tried in turn (on a cluster without
    /// distributed DDL: every node).
    pub urls: Vec<String>,
    /// The database Ticks keeps its tables in.
    pub database: String,
    /// The `remote_servers` cluster to spread the tables over, if any.
    pub cluster: Option<String>,
    /// The account, if not `default` without a password.
    pub user: Option<String>,
    /// Its password.
    pub password: Option<String>,
    /// How long one request may take.
    pub timeout: Duration,
    /// Hours after a message within which a reply that quotes nothing is
    /// attributed to it (the embedded store's setting of the same name).
    pub attribution_window_hours: u32,
    /// Most inputs one fold holds in memory: a group of writes whose
    /// people have more is folded a batch of whole people at a time, and
    /// one that reaches more than four times this many is read in halves
    /// (one person's history past it is folded as far as it got).
    pub max_folded_inputs: usize,
    /// How long a changed entry waits before a settler round settles it
    /// (see `settle.rs`): longer than an insert of entries takes to commit.
    pub settle_lag: Duration,
    /// Matching rows up to which a page groups every match, rather than
    /// first finding its candidates among the settled states in order
    /// (at 1M, a page of a 429's ~15k matches: 81 ms grouped, 143 ms
    /// by candidates).
    pub group_all_max_rows: u64,
    /// Changed entries one statement of a settler round settles at most:
    /// a round over more settles them in parts by key range.
    pub settle_part_rows: u64,
    /// Whether the tables are replicated (`Replicated*MergeTree` through
    /// ZooKeeper; each server needs the `{replica}` macro, and on a
    /// cluster `{shard}`). The URLs are then the replicas (on a cluster,
    /// every replica of every shard).
    pub replicated: bool,
    /// On replicated tables, how many replicas confirm an insert before it
    /// is acknowledged (`insert_quorum`; below 2, none wait). Reads then
    /// see every acknowledged insert (`select_sequential_consistency`).
    pub insert_quorum: u32,
}

impl ClickHouseConfig {
    /// A configuration of the servers at `urls` with the database `ticks`.
    pub fn new(urls: Vec<String>) -> ClickHouseConfig {
        ClickHouseConfig {
            urls,
            database: "ticks".into(),
            cluster: None,
            user: None,
            password: None,
            timeout: Duration::from_secs(30),
            attribution_window_hours: 24,
            max_folded_inputs: 50_000,
            settle_lag: Duration::from_secs(10),
            group_all_max_rows: 30_000,
            settle_part_rows: 200_000,
            replicated: false,
            insert_quorum: 2,
        }
    }

    fn layout(&self) -> Layout {
        match &self.cluster {
            Some(c) => Layout::Cluster(c.clone()),
            None => Layout::Single,
        }
    }
}

/// One stored input: sequence number, source, receive time, bytes.
pub type StoredInput = (Seq, Source, i64, Vec<u8>);

/// The log on ClickHouse.
pub struct ClickHouse {
    shared: Arc<shared::Shared>,
    writer: writer::Writer,
    /// Held while this process adds templates (one addition at a time).
    adding_templates: std::sync::Mutex<()>,
    /// When the last round of alerts began (none yet: the first starts
    /// watching).
    alerts_from: std::sync::Mutex<Option<i64>>,
    /// Whether this process evaluated the last round of alerts.
    evaluates_alerts: std::sync::atomic::AtomicBool,
    /// How long a change waits before it is settled.
    settle_lag: Duration,
    /// The settler thread, once started.
    settler: std::sync::Mutex<Option<settle::Settler>>,
}

impl From<ChError> for QueryError {
    fn from(e: ChError) -> QueryError {
        match e {
            ChError::Unreachable(_) => QueryError::Unavailable(e.to_string()),
            ChError::Server { .. } => QueryError::Backend(e.to_string()),
        }
    }
}

/// The settings namespace of `ticks migrate`'s own record, and its key:
/// the last copied origin whose entries were derived.
const MIGRATION_NAMESPACE: &str = "migration";
const MIGRATION_DERIVED: &str = "derived_up_to";

/// The first ClickHouse version that merges and mutates the most recent
/// part written with quorum in a partition, and keeps answering reads with
/// `select_sequential_consistency` after such a part is dropped (20.4,
/// ClickHouse's pull request 10188). Before it a purge could not erase
/// that part (see `purge.rs`), and the settler trims days of
/// `entry_changes` by deleting their rows rather than dropping them.
pub(super) const QUORUM_PARTS_MUTABLE: (u32, u32) = (20, 4);

/// The settings every request carries on replicated tables with a
/// quorum: inserts wait for `insert_quorum` replicas (for at most half a
/// request's time, so that a replica lost mid-insert gives an answer
/// within the request), one at a time per table, so that reads with
/// `select_sequential_consistency` see every acknowledged insert. That is
/// what derivations need (see `derive.rs`: a read after an insert was
/// confirmed sees it, on whichever replica). ClickHouse 18.16 writes
/// quorum inserts one at a time per table by itself; from 20.10 on that
/// is `insert_quorum_parallel = 0`, set where the server has it.
fn quorum_settings(
    client: &Client,
    config: &ClickHouseConfig,
) -> Result<Vec<(String, String)>, QueryError> {
    if !config.replicated || config.insert_quorum < 2 {
        return Ok(Vec::new());
    }
    let timeout_ms = (config.timeout.as_millis() / 2).max(1_000);
    let mut settings = vec![
        (
            "insert_quorum".to_string(),
            config.insert_quorum.to_string(),
        ),
        ("insert_quorum_timeout".to_string(), timeout_ms.to_string()),
        ("select_sequential_consistency".to_string(), "1".to_string()),
    ];
    let parallel = client
        .query_text("SELECT count() FROM system.settings WHERE name = 'insert_quorum_parallel'")?;
    if parallel.trim() != "0" {
        settings.push(("insert_quorum_parallel".to_string(), "0".to_string()));
    }
    Ok(settings)
}

impl ClickHouse {
    /// Connects, creates or upgrades the schema, and claims a writer tag.
    pub fn open(config: &ClickHouseConfig) -> Result<ClickHouse, QueryError> {
        if config.urls.is_empty() {
            return Err(QueryError::InvalidParam {
                param: "clickhouse_url".into(),
                message: "at least one URL is needed".into(),
            });
        }
        let client = Client::new(
            config.urls.clone(),
            config.user.clone(),
            config.password.clone(),
            config.timeout,
        );
        let settings = quorum_settings(&client, config)?;
        let client = client.with_settings(settings);
        let layout = config.layout();
        let info = schema::init(&client, &config.database, &layout, config.replicated)?;
        let db = client::ident(&config.database).ok_or_else(|| QueryError::InvalidParam {
            param: "clickhouse_database".into(),
            message: "not a plain name".into(),
        })?;
        let shared = Arc::new(shared::Shared::new(client, db, layout, info, config));
        shared.reload_catalog()?;
        let writer = writer::Writer::start(shared.clone())?;
        Ok(ClickHouse {
            shared,
            writer,
            adding_templates: std::sync::Mutex::new(()),
            alerts_from: std::sync::Mutex::new(None),
            evaluates_alerts: std::sync::atomic::AtomicBool::new(false),
            settle_lag: config.settle_lag,
            settler: std::sync::Mutex::new(None),
        })
    }

    /// Starts settling the entries in this process whenever it holds the
    /// deployment's settler lease (see `settle.rs`). `ticks serve` does;
    /// a one-off command need not (its queries are exact without it).
    pub fn start_settling(&self) {
        if let Ok(mut settler) = self.settler.lock() {
            if settler.is_none() {
                *settler = Some(settle::Settler::start(
                    self.shared.clone(),
                    self.writer.tag(),
                    self.settle_lag,
                ));
            }
        }
    }

    /// Runs one settler round now, whoever holds the lease: for tests and
    /// `ticks clickhouse settle`, after the lag has passed.
    pub fn settle_now(&self) -> Result<(), QueryError> {
        settle::round(&self.shared, self.settle_lag.as_secs().max(1) as u32, None)
            .map_err(Into::into)
    }

    /// What the schema set-up found: the server's version, whether DDL ran
    /// on the cluster.
    pub fn schema(&self) -> &SchemaInfo {
        &self.shared.info
    }

    /// Finishes the erasure of purges that did not finish (a crash, or
    /// ClickHouse down midway); returns how many. `ticks serve` runs it at
    /// start, beside serving.
    pub fn resume_purges(&self) -> Result<usize, QueryError> {
        purge::resume(&self.shared)
    }

    /// This process's writer tag (part of every `seq` it hands out).
    pub fn writer_tag(&self) -> u64 {
        self.writer.tag()
    }

    /// Copies `inputs` as they were (their receive times kept), each with
    /// the sequence number it had where it came from (`origin`), durably.
    /// `ticks migrate` uses it; [`ClickHouse::migrated_up_to`] then says
    /// where to resume.
    pub fn append_migrated(&self, inputs: Vec<(Seq, Input)>) -> Result<(), QueryError> {
        self.writer.append_migrated(inputs)
    }

    /// Whether inputs copied by `ticks migrate` wait for their entries:
    /// copies are stored without them, and
    /// [`ClickHouse::derive_migrated`] derives every entry once the copy
    /// is done (also after a run that stopped between the two).
    pub fn migration_underived(&self) -> Result<bool, QueryError> {
        let copied = self.migrated_up_to()?;
        let derived = self
            .settings(MIGRATION_NAMESPACE)?
            .into_iter()
            .find(|(k, _)| k == MIGRATION_DERIVED)
            .and_then(|(_, v)| String::from_utf8(v).ok())
            .and_then(|v| v.parse::<u64>().ok());
        Ok(copied.map(|s| s.0) != derived && copied.is_some())
    }

    /// Derives every entry from every stored input in one fold (the
    /// copied inputs' and any others'), then records that the copy up to
    /// now has its entries. People and their entries are folded in parts
    /// of about `inputs_per_fold` inputs (memory follows the part: 3.3 GiB
    /// at 4.25M inputs in one part). `progress` is told how many inputs
    /// were folded. Returns how many entries were written.
    pub fn derive_migrated(
        &self,
        inputs_per_fold: usize,
        progress: Box<dyn FnMut(u64) + Send>,
    ) -> Result<usize, QueryError> {
        let copied = self.migrated_up_to()?;
        let entries = self.writer.derive_all(inputs_per_fold, progress)?;
        if let Some(seq) = copied {
            self.shared.write_setting(
                MIGRATION_NAMESPACE,
                MIGRATION_DERIVED,
                seq.0.to_string().as_bytes(),
                false,
            )?;
        }
        Ok(entries)
    }

    /// The largest origin sequence number copied by `ticks migrate`.
    pub fn migrated_up_to(&self) -> Result<Option<Seq>, QueryError> {
        let t = self.shared.table("inputs");
        let text = self.shared.client.query_text(&format!(
            "SELECT max(origin), count() FROM {t} WHERE writer = {}",
            writer::MIGRATION_WRITER
        ))?;
        let mut parts = text.split_whitespace();
        let max: u64 = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        let count: u64 = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        Ok((count > 0).then_some(Seq(max)))
    }

    /// Every stored input from `after` (exclusive) on, up to `limit`, in
    /// `seq` order: sequence number, source, receive time, bytes.
    pub fn inputs_after(
        &self,
        after: Option<Seq>,
        limit: usize,
        sources: &[Source],
    ) -> Result<Vec<StoredInput>, QueryError> {
        let from = after.map_or(0, |s| s.0);
        let only = if sources.is_empty() {
            String::new()
        } else {
            let names: Vec<String> = sources.iter().map(|s| quote(s.as_str())).collect();
            format!(" AND source IN ({})", names.join(", "))
        };
        Ok(
            inputs::select(&self.shared, &format!("seq > {from}{only}"), Some(limit))?
                .into_iter()
                .map(|i| (Seq(i.seq), i.source, i.received_ms, i.raw))
                .collect(),
        )
    }
}

impl ImportTarget for ClickHouse {
    fn submit_batch(&self, batch: Vec<Input>) -> Result<PendingBatch, ticks_ingest::ImportError> {
        let rx = self.writer.submit(batch);
        Ok(PendingBatch::later(move || {
            rx.recv()
                .map_err(|_| ticks_ingest::ImportError::Target("the writer stopped".into()))?
                .map_err(|e| ticks_ingest::ImportError::Target(e.to_string()))
        }))
    }
}

impl Backend for ClickHouse {
    fn append(&self, inputs: Vec<Input>) -> BackendResult<Vec<AppendOutcome>> {
        self.writer
            .submit(inputs)
            .recv()
            .map_err(|_| QueryError::Unavailable("the ClickHouse writer stopped".into()))?
    }

    fn append_then(
        &self,
        inputs: Vec<Input>,
        done: Box<dyn FnOnce(BackendResult<Vec<AppendOutcome>>) + Send>,
    ) {
        self.writer.submit_then(inputs, done);
    }

    fn import(
        &self,
        lines: &mut dyn std::io::BufRead,
        options: &ImportOptions,
    ) -> BackendResult<ImportReport> {
        ticks_ingest::import(self, lines, options).map_err(|e| match e {
            ticks_ingest::ImportError::Target(m) => QueryError::Unavailable(m),
            other => QueryError::Backend(other.to_string()),
        })
    }

    fn search(&self, query: &LogQuery) -> BackendResult<Page> {
        search::search(&self.shared, query)
    }
    fn matching(&self, query: &LogQuery) -> BackendResult<RoaringBitmap> {
        Ok(search::sorted_ids(&self.shared, query)?
            .into_iter()
            .collect())
    }
    fn sorted_ids(&self, query: &LogQuery) -> BackendResult<Vec<u32>> {
        search::sorted_ids(&self.shared, query)
    }
    fn stats(&self, query: &LogQuery, by: GroupBy) -> BackendResult<Stats> {
        search::stats(&self.shared, query, by)
    }
    fn report(&self, query: &LogQuery, options: &ReportOptions) -> BackendResult<Report> {
        // The cost and templates sections come from groups of their own.
        let mut rest = options.clone();
        rest.sections.cost = false;
        rest.sections.templates = false;
        let groups = search::report_groups(&self.shared, query, &rest)?;
        let mut report = crate::report::report_from_groups(groups, &query.tz, &rest)?;
        if options.sections.cost {
            report.cost = Some(crate::cost::cost_from_rows(
                search::cost_rows(&self.shared, query, options)?,
                &query.tz,
                options.interval,
                options.group,
                options.top,
                options.rate_card.as_deref(),
            ));
        }
        if options.sections.templates {
            let (rows, opt_outs, events) =
                search::health_rows(&self.shared, query, options.interval)?;
            report.templates = crate::health::health_from_rows(
                rows,
                opt_outs,
                events,
                &query.tz,
                options.interval,
                options.top,
            );
        }
        Ok(report)
    }
    fn entry_detail(&self, id: EntryId) -> BackendResult<Option<EntryDetail>> {
        let Some(entry) = search::entries(&self.shared, &[id.0])?.into_iter().next() else {
            return Ok(None);
        };
        let Some(key) = inputs::keys_of(&self.shared, &[id.0])?.into_iter().next() else {
            return Ok(None);
        };
        let inputs = inputs::stored_inputs(&self.shared, &key)?;
        Ok(Some(EntryDetail { entry, inputs }))
    }
    fn timeline(&self, wamid: &str) -> BackendResult<Option<Timeline>> {
        Ok(derive::timeline(&self.shared, wamid)?)
    }
    fn contact(&self, typed: &str) -> BackendResult<Option<Contact>> {
        Ok(derive::contact(&self.shared, typed)?.0)
    }
    fn entries(&self, ids: &[u32]) -> BackendResult<Vec<Entry>> {
        search::entries(&self.shared, ids)
    }
    fn raw_inputs(&self, ids: &[u32], each: &mut RawInputSink<'_>) -> BackendResult<()> {
        inputs::raw_inputs(&self.shared, ids, each)
    }
    fn live(&self, ids: &RoaringBitmap) -> BackendResult<RoaringBitmap> {
        purge::live(&self.shared, ids)
    }
    fn purge(
        &self,
        ids: &RoaringBitmap,
        actor: &str,
        filter: &str,
        receipt: Option<String>,
        forced: bool,
    ) -> BackendResult<Seq> {
        let record = PurgeRecord::new(ids, ticks_ingest::now_ms(), actor, filter, receipt, forced)?;
        let seq = self.writer.next_seq()?;
        purge::purge(&self.shared, seq, ids, &record)
    }

    fn purges(&self) -> BackendResult<Vec<(Seq, PurgeRecord)>> {
        let t = self.shared.table("purges");
        let bytes = self.shared.client.query(&format!(
            "SELECT seq, record FROM {t} ORDER BY seq FORMAT RowBinary"
        ))?;
        let mut r = Reader::new(&bytes);
        let mut out = Vec::new();
        while !r.is_done() {
            let bad = |_| QueryError::Backend("a purge record could not be read".into());
            let seq = r.u64().map_err(bad)?;
            let record: PurgeRecord = serde_json::from_slice(r.string().map_err(bad)?)
                .map_err(|e| QueryError::Backend(format!("a purge record: {e}")))?;
            out.push((Seq(seq), record));
        }
        Ok(out)
    }

    fn settings(&self, namespace: &str) -> BackendResult<Vec<(String, Vec<u8>)>> {
        Ok(self.shared.read_settings(namespace)?)
    }

    fn put_setting(&self, namespace: &str, key: &str, value: &[u8]) -> BackendResult<()> {
        self.shared.write_setting(namespace, key, value, false)
    }

    fn delete_setting(&self, namespace: &str, key: &str) -> BackendResult<bool> {
        let existed = self
            .settings(namespace)?
            .iter()
            .any(|(k, _)| k.as_str() == key);
        if existed {
            self.shared.write_setting(namespace, key, b"", true)?;
        }
        Ok(existed)
    }

    fn last_seq(&self) -> Option<Seq> {
        let t = self.shared.table("inputs");
        let text = self
            .shared
            .client
            .query_text(&format!("SELECT max(seq), count() FROM {t}"))
            .ok()?;
        let mut parts = text.split_whitespace();
        let max: u64 = parts.next()?.parse().ok()?;
        let count: u64 = parts.next()?.parse().ok()?;
        (count > 0).then_some(Seq(max))
    }

    fn webhook_after(&self, cursor: Option<Seq>) -> BackendResult<Option<(Seq, Vec<u8>)>> {
        Ok(self
            .inputs_after(cursor, 1, &[Source::Webhook])?
            .into_iter()
            .next()
            .map(|(seq, _, _, raw)| (seq, raw)))
    }

    fn write_health(&self) -> WriteHealth {
        self.shared.health()
    }

    fn write_fault(&self) -> Option<String> {
        self.shared.health().fault
    }

    fn store_stats(&self) -> BackendResult<StoreStats> {
        let t = self.shared.table("inputs");
        let log_records = self.shared.count(&format!("SELECT count() FROM {t}"))?;
        let db = self.shared.db_literal();
        let mut disk_bytes = 0;
        // `system.parts` is each server's own: summed over the nodes.
        for node in self.shared.nodes() {
            let text = node.query_text(&format!(
                "SELECT sum(bytes_on_disk) FROM system.parts WHERE database = {db} AND active"
            ))?;
            disk_bytes += text.trim().parse::<u64>().unwrap_or(0);
        }
        Ok(StoreStats {
            log_records,
            last_seq: self.last_seq().map(|s| s.0),
            live_entries: 0,
            total_entries: 0,
            disk_bytes,
            text_lag_records: 0,
            column_bytes: 0,
            row_bytes: 0,
            derived_from: ticks_engine::DerivedFrom::Log,
        })
    }

    fn evaluate_alerts(&self, alerts: &mut Alerts, now_ms: i64) -> BackendResult<Vec<Transition>> {
        let mut from = self
            .alerts_from
            .lock()
            .map_err(|_| QueryError::Backend("an alert round failed midway".into()))?;
        let evaluates = alerts::evaluates(&self.shared, self.writer.tag(), now_ms)?;
        self.evaluates_alerts
            .store(evaluates, std::sync::atomic::Ordering::Relaxed);
        if !evaluates {
            // Another process evaluates; this one starts watching afresh
            // should it take over.
            *from = None;
            return Ok(Vec::new());
        }
        let Some(since) = from.replace(now_ms) else {
            return Ok(Vec::new());
        };
        let mut written = alerts::Written {
            shared: &self.shared,
            since_ms: since - alerts::OVERLAP_MS,
        };
        match alerts.evaluate_changes(&mut written, now_ms) {
            Ok(out) => Ok(out),
            Err(e) => {
                // The next round reads again from where this one began.
                *from = Some(since);
                Err(e)
            }
        }
    }

    fn delivers_alerts(&self) -> bool {
        self.evaluates_alerts
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    fn templates(&self) -> Arc<Catalog> {
        // A server that does not answer now: the catalog as last read.
        self.shared
            .catalog()
            .unwrap_or_else(|_| self.shared.cached_catalog())
    }

    fn add_templates(
        &self,
        defs: Vec<(TemplateDef, Option<i64>)>,
        seen_ms: i64,
    ) -> BackendResult<TemplatesAdded> {
        let _one_at_a_time = self
            .adding_templates
            .lock()
            .map_err(|_| QueryError::Backend("a template addition failed midway".into()))?;
        templates::add(&self.shared, &self.writer, defs, seen_ms)
    }
}

impl Drop for ClickHouse {
    fn drop(&mut self) {
        if let Ok(Some(settler)) = self.settler.lock().map(|mut s| s.take()) {
            settler.stop();
        }
        self.writer.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_source_reads_back_by_its_name() {
        for s in [
            Source::SendApi,
            Source::Webhook,
            Source::Import,
            Source::Proxy,
        ] {
            assert_eq!(
                inputs::source_named(s.as_str().as_bytes()).expect("as written"),
                s
            );
        }
        assert!(inputs::source_named(b"fax").is_err());
    }

    #[test]
    fn an_unreachable_server_is_unavailable_not_a_bug() {
        let e: QueryError = ChError::Unreachable("x".into()).into();
        assert!(matches!(e, QueryError::Unavailable(_)));
    }
}
