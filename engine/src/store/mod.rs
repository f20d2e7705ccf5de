//! The store: opening, the single writer with group commit, checkpoints, and
//! the read API that queries run against.

//!
//! - `config`: how to open a store.
//! - `open`: opening and recovery from the log and the checkpoint.
//! - `writer`: the single writer with group commit, purges, checkpoints,
//!   recovery after a failed write.
//! - `shared`: what the handles, the writer and the opening share.
//! - `snapshot`: the read view queries run against.
//! - `views`: entries, details and timelines as handed out.
//! - this module: [`Store`], the public API over all of them.

mod config;
mod derive;
mod open;
mod people;
mod shared;
mod snapshot;
mod templates;
mod views;
mod writer;

pub use config::Config;
pub use derive::{entry_key, redact_input, Derivation};
pub use people::{Contact, ContactCounts, Identifiers, Marketing, PreferenceChange};
pub use shared::{AppendCallback, DerivedFrom, WriteHealth};
pub use snapshot::{sort_rank, FieldValue, KeyBook, KeyColumn, Snapshot};
pub use templates::TemplatesAdded;
pub use views::{Entry, EntryDetail, StoredInput, TextColumn, Timeline, TimelineItem};

use crate::error::{io_err, Error, Result};
use crate::log::{PreparedInput, PurgeRecord, Record};
use crate::model::*;
use crate::state::own::Own;
use crate::state::Field;
use crate::state::State;
use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};
use shared::{
    checkpoint_path, dir_size, now_ms, remove_dir, setting_key, AppendReply, Shared, WriteOp,
    WriterHandle, PURGE_INDEX,
};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver};
#[cfg(test)]
use std::sync::RwLockReadGuard;
use std::sync::{Arc, Mutex};
use views::entry_of;
use writer::{apply_record, checkpoint_now};

/// An append queued by [`Store::submit`], not yet known to be durable.
#[must_use = "an append is only acknowledged once `wait` returns"]
pub struct PendingAppend {
    reply: Receiver<Result<Vec<AppendOutcome>>>,
}

impl PendingAppend {
    /// Blocks until the inputs are durable (or refused), and returns one
    /// outcome per input, in order.
    pub fn wait(self) -> Result<Vec<AppendOutcome>> {
        self.reply.recv().map_err(|_| Error::Closed)?
    }
}

/// An open Ticks store. Cheap to clone; all clones share one writer.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
    writer: Arc<Mutex<Option<WriterHandle>>>,
    /// The template backfill running or last run (each waits for the one
    /// before it, so they finish in generation order).
    backfills: Arc<Mutex<Vec<std::thread::JoinHandle<()>>>>,
    /// Held by a template import from reading the catalog to replacing it.
    importing_templates: Arc<Mutex<()>>,
}

/// Counts and sizes, for `ticks stats` and `/metrics`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoreStats {
    /// Records in the log (the first `stats` of an open store counts them
    /// by reading the whole log; later ones get the count kept since).
    pub log_records: u64,
    /// The last sequence number written.
    pub last_seq: Option<u64>,
    /// Entries that exist and are not purged.
    pub live_entries: u64,
    /// Entries ever created (ids handed out).
    pub total_entries: u64,
    /// Bytes of all files in the data directory.
    pub disk_bytes: u64,
    /// Records queued for the full-text index but not yet searchable.
    pub text_lag_records: u64,
    /// Bytes of memory the key columns hold (see [`Snapshot::column`]).
    pub column_bytes: u64,
    /// Bytes of memory the entries' rows hold: sealed blocks, their time
    /// column, and an estimate for the newest and recently changed rows
    /// held unsealed.
    pub row_bytes: u64,
    /// Where the derived state came from at open.
    pub derived_from: DerivedFrom,
}

impl Store {
    /// Opens the store in `config.dir`, replaying the log into the derived
    /// state (from the last checkpoint when there is a valid one).
    pub fn open(config: Config) -> Result<Store> {
        let (shared, writer) = open::open(config)?;
        let store = Store {
            shared,
            writer: Arc::new(Mutex::new(Some(writer))),
            backfills: Arc::default(),
            importing_templates: Arc::default(),
        };
        store.resume_backfill()?;
        Ok(store)
    }

    /// Why writes fail now, while the store recovers from a failed write
    /// (a full disk, no descriptors left): of the log first (writes are
    /// refused), else of the full-text index (writes are accepted and
    /// become searchable once it recovers); `None` while both succeed.
    pub fn write_fault(&self) -> Option<String> {
        self.shared.fault().or_else(|| self.shared.text.fault())
    }

    /// Whether writes succeed now, and how many group commits failed
    /// since the store opened.
    pub fn write_health(&self) -> WriteHealth {
        WriteHealth {
            fault: self.shared.fault(),
            failures: self.shared.write_failures.load(Ordering::SeqCst),
        }
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// Queues `op` to the writer; gives it back when the writer is gone
    /// (its reply then says the store is closed).
    fn send(&self, op: WriteOp) -> std::result::Result<(), Box<WriteOp>> {
        let Ok(guard) = self.writer.lock() else {
            return Err(Box::new(op));
        };
        match guard.as_ref() {
            Some((tx, _)) => tx.send(op).map_err(|unsent| Box::new(unsent.0)),
            None => Err(Box::new(op)),
        }
    }

    /// Appends inputs and returns when they are durable. Inputs appended
    /// concurrently from several threads share one flush. Duplicates are
    /// recognised and reported, not stored.
    pub fn append(&self, inputs: Vec<Input>) -> Result<Vec<AppendOutcome>> {
        self.submit(inputs)?.wait()
    }

    /// Queues inputs for appending and returns at once; [`PendingAppend::wait`]
    /// returns when they are durable. Submissions are written in the order
    /// they are made, so a bulk loader can compress its next batch while the
    /// writer flushes this one. Nothing is acknowledged before `wait`.
    pub fn submit(&self, inputs: Vec<Input>) -> Result<PendingAppend> {
        let prepared = inputs
            .into_iter()
            .map(PreparedInput::prepare)
            .collect::<Result<Vec<_>>>()?;
        let (tx, rx) = mpsc::channel();
        self.send(WriteOp::Append(prepared, AppendReply::Channel(tx)))
            .map_err(|_| Error::Closed)?;
        Ok(PendingAppend { reply: rx })
    }

    /// Queues inputs for appending and returns at once; the writer calls
    /// `done` with one outcome per input once they are durable (or with
    /// the error that refused them). An async server awaits that without a
    /// thread parked per request: the callback runs on the writer thread,
    /// so it must only hand the result on.
    pub fn submit_then(&self, inputs: Vec<Input>, done: AppendCallback) {
        let prepared = match inputs
            .into_iter()
            .map(PreparedInput::prepare)
            .collect::<Result<Vec<_>>>()
        {
            Ok(p) => p,
            Err(e) => return done(Err(e)),
        };
        if let Err(unsent) = self.send(WriteOp::Append(prepared, AppendReply::Callback(done))) {
            if let WriteOp::Append(_, reply) = *unsent {
                reply.send(Err(Error::Closed));
            }
        }
    }

    /// Appends one input.
    pub fn append_one(&self, input: Input) -> Result<AppendOutcome> {
        self.append(vec![input])?
            .pop()
            .ok_or_else(|| Error::Invalid("append returned no outcome".into()))
    }

    /// The derived state itself, for the engine's own tests.
    #[cfg(test)]
    pub(crate) fn state_for_test(&self) -> RwLockReadGuard<'_, State> {
        self.shared.state.read().unwrap_or_else(|p| p.into_inner())
    }

    /// A consistent read view of the derived state. Hold it briefly: the
    /// writer waits for readers before applying the next group.
    pub fn snapshot(&self) -> Snapshot<'_> {
        Snapshot {
            state: self.shared.state.read().unwrap_or_else(|p| p.into_inner()),
        }
    }

    /// Entries whose indexed text matches a free-text query (words, `"phrases"`,
    /// `prefix*`, a phone number or wamid as typed). May lag appends by up to
    /// the text commit interval; [`Store::flush_text`] waits for it.
    pub fn text_search(&self, query: &str) -> Result<RoaringBitmap> {
        self.shared.text.search(query)
    }

    /// The entries of `within` that match a free-text query: the same as
    /// [`Store::text_search`] intersected with `within`, but its cost follows
    /// the size of `within` rather than how common the words are. Use it
    /// when other filters have already narrowed the candidates.
    pub fn text_search_within(&self, query: &str, within: &RoaringBitmap) -> Result<RoaringBitmap> {
        self.shared.text.search_within(query, within)
    }

    /// Entries that have an identifier (wamid, phone digits, correlation or
    /// conversation id) exactly equal to `value`. Lags like [`Store::text_search`].
    pub fn exact_search(&self, value: &str) -> Result<RoaringBitmap> {
        self.shared.text.exact(value)
    }

    /// The entries that changed (a new entry, or an event applied to one)
    /// since the last call: the first call starts keeping them and answers
    /// none. Alerts evaluate what arrives with it instead of re-scanning the
    /// store. (Purged entries are not listed: they have nothing left to count.)
    pub fn take_changes(&self) -> RoaringBitmap {
        let mut changes = self
            .shared
            .changes
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match changes.as_mut() {
            Some(changed) => std::mem::take(changed),
            None => {
                *changes = Some(RoaringBitmap::new());
                RoaringBitmap::new()
            }
        }
    }

    /// Makes every appended record searchable by text now.
    pub fn flush_text(&self) -> Result<()> {
        self.shared.text.flush()
    }

    /// Records appended but not yet searchable by text.
    pub fn text_lag(&self) -> u64 {
        self.shared.text.lag()
    }

    /// One entry with every raw input it came from.
    pub fn entry_detail(&self, id: EntryId) -> Result<Option<EntryDetail>> {
        let (entry, mut seqs) = {
            let snap = self.snapshot();
            match snap.state.row(id) {
                Some(row) => (snap.entry_from_row(id, &row), row.records.to_vec()),
                None => return Ok(None),
            }
        };
        let mut inputs = Vec::new();
        seqs.sort_unstable();
        for (seq, bytes) in self.shared.log.get_many(&seqs)? {
            if let Record::Input(rec) = self.shared.log.decode(seq, &bytes)? {
                let events = rec
                    .events
                    .into_iter()
                    .filter(|(e, _)| *e == Some(id))
                    .map(|(_, ev)| ev)
                    .collect();
                inputs.push(StoredInput {
                    seq,
                    source: rec.source,
                    received_ms: rec.received_ms,
                    raw: rec.raw,
                    events,
                });
            }
        }
        Ok(Some(EntryDetail { entry, inputs }))
    }

    /// The whole timeline of a message: its send, every status event, and
    /// the replies and clicks that answer it, in time order.
    pub fn timeline(&self, wamid: &str) -> Result<Option<Timeline>> {
        let snap = self.snapshot();
        let Some(id) = snap.state.entry_for_wamid(wamid) else {
            return Ok(None);
        };
        let Some((mut timeline, group)) = views::timeline_of(&snap.state, id) else {
            return Ok(None);
        };
        drop(snap);
        if let Some(seqs) = group {
            let mut events = Vec::new();
            for (seq, bytes) in self.shared.log.get_many(&seqs)? {
                let Record::Input(rec) = self.shared.log.decode(seq, &bytes)? else {
                    continue;
                };
                events.extend(
                    rec.events
                        .into_iter()
                        .filter(|(e, _)| *e == Some(id))
                        .map(|(_, event)| event),
                );
            }
            views::name_group_members(id, &events, &mut timeline.items);
        }
        timeline.items.sort_by_key(|i| i.at_ms);
        Ok(Some(timeline))
    }

    /// Reads one log record.
    pub fn record(&self, seq: Seq) -> Result<Option<Record>> {
        match self.shared.log.get(seq)? {
            Some(bytes) => Ok(Some(self.shared.log.decode(seq, &bytes)?)),
            None => Ok(None),
        }
    }

    /// Iterates the log after `after` (from the start with `None`), decoded.
    pub fn records_after(
        &self,
        after: Option<Seq>,
    ) -> impl Iterator<Item = Result<(Seq, Record)>> + '_ {
        self.shared
            .log
            .iter_after(after)
            .map(|r| r.and_then(|(seq, bytes)| Ok((seq, self.shared.log.decode(seq, &bytes)?))))
    }

    /// The last sequence number written, if any.
    pub fn last_seq(&self) -> Option<Seq> {
        self.shared
            .next_seq
            .load(Ordering::SeqCst)
            .checked_sub(1)
            .map(Seq)
    }

    /// Iterates the log from the start, decoded. Used by export and `check`.
    pub fn records(&self) -> impl Iterator<Item = Result<(Seq, Record)>> + '_ {
        self.shared
            .log
            .iter_after(None)
            .map(|r| r.and_then(|(seq, bytes)| Ok((seq, self.shared.log.decode(seq, &bytes)?))))
    }

    /// Calls `each` with the source, receive time and raw bytes of the
    /// input records `seqs` (sorted ascending), in log order. A dense set is
    /// read with one sequential scan of the log, a sparse one record by
    /// record; only the raw bytes are decompressed. Stops at `each`'s first
    /// error.
    pub fn raw_inputs(
        &self,
        seqs: &[Seq],
        mut each: impl FnMut(Seq, Source, i64, &[u8]) -> std::io::Result<()>,
    ) -> Result<()> {
        let log = &self.shared.log;
        let mut call = |seq: Seq, bytes: &[u8]| -> Result<()> {
            if let Some((source, received_ms, raw)) = log.decode_raw(seq, bytes)? {
                each(seq, source, received_ms, &raw).map_err(io_err("export"))?;
            }
            Ok(())
        };
        let (Some(first), Some(last)) = (seqs.first(), seqs.last()) else {
            return Ok(());
        };
        let span = last.0 - first.0 + 1;
        if (seqs.len() as u64) * 4 >= span {
            let mut wanted = seqs.iter().peekable();
            for item in log.iter_after(first.0.checked_sub(1).map(Seq)) {
                let (seq, bytes) = item?;
                while wanted.peek().is_some_and(|w| **w < seq) {
                    wanted.next();
                }
                match wanted.peek() {
                    None => break,
                    Some(w) if **w == seq => call(seq, &bytes)?,
                    Some(_) => {}
                }
            }
        } else {
            // In runs, so that a block is opened once for the records of
            // it that are wanted, and memory stays bounded.
            for run in seqs.chunks(4096) {
                for (seq, bytes) in log.get_many(run)? {
                    call(seq, &bytes)?;
                }
            }
        }
        Ok(())
    }

    /// Deletes entries: appends a purge record (which names them, never
    /// their content), removes them from every index, and removes their
    /// content from the log and the full-text index.
    pub fn purge(
        &self,
        ids: &RoaringBitmap,
        actor: &str,
        filter: &str,
        receipt: Option<String>,
        forced: bool,
    ) -> Result<Seq> {
        let record = PurgeRecord::new(ids, now_ms(), actor, filter, receipt, forced)?;
        let (tx, rx) = mpsc::channel();
        self.send(WriteOp::Purge(record, ids.clone(), tx))
            .map_err(|_| Error::Closed)?;
        rx.recv().map_err(|_| Error::Closed)?
    }

    /// Every purge ever made, oldest first: who, when, which filter, how
    /// many entries, which export receipt. Purge records are never deleted.
    ///
    /// A purge is listed once its entries are gone from queries: its record
    /// is durable a moment before the writer applies it, and a caller that
    /// sees it listed must not then count its entries.
    pub fn purges(&self) -> Result<Vec<(Seq, PurgeRecord)>> {
        let applied = self.snapshot().state.applied;
        let mut out = Vec::new();
        for key in self.shared.meta()?.scan_prefix(PURGE_INDEX).keys() {
            let key = key?;
            let Some(seq) = key
                .strip_prefix(PURGE_INDEX)
                .and_then(|k| <[u8; 8]>::try_from(k).ok())
                .map(|k| Seq(u64::from_be_bytes(k)))
            else {
                continue;
            };
            if Some(seq) > applied {
                break;
            }
            if let Some(Record::Purge(p)) = self.record(seq)? {
                out.push((seq, p));
            }
        }
        Ok(out)
    }

    /// Writes the derived state to a checkpoint, so the next open replays
    /// only what came after; does nothing when the checkpoint file already
    /// holds the last applied record. The text index is committed first,
    /// because a checkpoint must never be ahead of it.
    pub fn checkpoint(&self) -> Result<()> {
        if self.checkpoint_is_current() {
            return Ok(());
        }
        checkpoint_now(&self.shared)
    }

    /// Log records applied since the checkpoint file was written or loaded
    /// (every record when there is none): what an open after a crash would
    /// replay. Waits while a checkpoint is being written.
    pub fn records_since_checkpoint(&self) -> u64 {
        let (on_disk, applied) = self.checkpoint_position();
        let from = match on_disk {
            Some(Some(seq)) => seq.0 + 1,
            _ => 0,
        };
        applied.map_or(0, |a| (a.0 + 1).saturating_sub(from))
    }

    /// Whether the checkpoint file holds the state as it is now: written
    /// or loaded at the last applied record.
    fn checkpoint_is_current(&self) -> bool {
        let (on_disk, applied) = self.checkpoint_position();
        on_disk == Some(applied) && checkpoint_path(&self.shared.dir).exists()
    }

    /// Where the checkpoint file is (see `Shared::checkpointing`), and the
    /// last record applied.
    fn checkpoint_position(&self) -> (Option<Option<Seq>>, Option<Seq>) {
        let on_disk = *self
            .shared
            .checkpointing
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let applied = self
            .shared
            .state
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .applied;
        (on_disk, applied)
    }

    /// Sizes and counts.
    pub fn stats(&self) -> Result<StoreStats> {
        let (live, total, column_bytes, row_bytes) = {
            let s = self.snapshot();
            let columns = s.state.columns.heap_bytes() as u64;
            let rows = s.state.rows.heap_bytes() as u64;
            (s.state.live.len(), s.state.rows.len() as u64, columns, rows)
        };
        Ok(StoreStats {
            log_records: self.shared.log.len()?,
            last_seq: self.shared.log.last_seq()?.map(|s| s.0),
            live_entries: live,
            total_entries: total,
            disk_bytes: dir_size(&self.shared.dir),
            text_lag_records: self.shared.text.lag(),
            column_bytes,
            row_bytes,
            derived_from: self.shared.derived_from,
        })
    }

    /// Verifies the store's invariants and returns what is wrong, if anything:
    /// every log record decodes; replaying the log from nothing gives the same
    /// rows and bitmaps as the live state; every bitmap id is a live entry.
    pub fn check(&self) -> Result<Vec<String>> {
        let mut problems = Vec::new();
        let mut fresh = State::new();
        fresh.attribution_window_ms = self.snapshot().state.attribution_window_ms;
        for item in self.shared.log.iter_after(None) {
            let (seq, bytes) = item?;
            match self.shared.log.decode(seq, &bytes) {
                Ok(record) => apply_record(&mut fresh, seq, record, None)?,
                Err(e) => problems.push(format!("record {}: {e}", seq.0)),
            }
        }
        let snap = self.snapshot();
        let live = &snap.state;
        if fresh.live != live.live {
            problems.push(format!(
                "live entries differ: replay has {}, store has {}",
                fresh.live.len(),
                live.live.len()
            ));
        }
        for field in Field::ALL {
            let column = live.columns.column(field as usize);
            for (key, bm) in live.field_index(field) {
                if bm
                    .iter()
                    .any(|id| column.keys()[column.code(id) as usize] != *key)
                {
                    problems.push(format!(
                        "{field:?}={key}: the key column disagrees with the bitmap"
                    ));
                }
                if !(bm - &live.live).is_empty() {
                    problems.push(format!(
                        "{field:?}={key}: bitmap names entries that are not live"
                    ));
                }
                let fresh_bm = fresh.bitmap(field, *key).cloned().unwrap_or_default();
                if field.is_text() {
                    continue; // symbol numbers may differ between interners
                }
                if &fresh_bm != bm {
                    problems.push(format!(
                        "{field:?}={key}: bitmap differs from a replay of the log"
                    ));
                }
            }
        }
        if let Some(max) = live.live.max() {
            if max as usize >= live.rows.len() {
                problems.push("a bitmap names an entry id that was never created".into());
            }
        }
        // Every live entry reads the same as on a replay (strings compared
        // as text: their numbers may differ between interners). In chunks,
        // so that a large store is compared without holding every entry.
        let ids: Vec<u32> = live.live.iter().collect();
        let mut differing = 0usize;
        for chunk in ids.chunks(4096) {
            let mut mine = Vec::with_capacity(chunk.len());
            live.rows.for_each(chunk.iter().copied(), |id, row| {
                mine.push(entry_of(live, EntryId(id), row));
            });
            let mut theirs = Vec::with_capacity(chunk.len());
            fresh.rows.for_each(chunk.iter().copied(), |id, row| {
                theirs.push(entry_of(&fresh, EntryId(id), row));
            });
            // Both in id order; a side without a row counts as differing.
            differing += mine.len().abs_diff(theirs.len())
                + mine.iter().zip(&theirs).filter(|(a, b)| a != b).count();
        }
        if differing > 0 {
            problems.push(format!(
                "{differing} entries read otherwise than on a replay of the log"
            ));
        }
        // The wamid index finds each live entry's wamid, as a replay's does.
        let lost = live
            .live
            .iter()
            .filter_map(|id| live.rows.get(id)?.own.get(Own::Wamid).map(str::to_string))
            .filter(|wamid| live.entry_for_wamid(wamid) != fresh.entry_for_wamid(wamid))
            .count();
        if lost > 0 {
            problems.push(format!(
                "{lost} wamids lead to another entry than on a replay of the log"
            ));
        }
        Ok(problems)
    }

    /// Stops the writer and the indexer after they finish what they have,
    /// writes a checkpoint (unless the one on disk already holds every
    /// record), and flushes the log.
    pub fn close(&self) -> Result<()> {
        let taken = self.writer.lock().map_err(|_| Error::Closed)?.take();
        if let Some((tx, handle)) = taken {
            drop(tx);
            let _ = handle.join();
        } else {
            return Ok(());
        }
        // A backfill stops between chunks; the next open finishes it.
        self.shared.closing.store(true, Ordering::SeqCst);
        let running: Vec<_> = self
            .backfills
            .lock()
            .map(|mut b| b.drain(..).collect())
            .unwrap_or_default();
        for handle in running {
            let _ = handle.join();
        }
        // With the writer gone, seal every row but the newest few, so the
        // checkpoint holds blocks and the next open has none to seal.
        self.shared
            .state
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .rows
            .seal_all();
        let checkpointed = self.checkpoint();
        self.shared.text.close()?;
        self.shared.db()?.flush()?;
        checkpointed
    }

    /// Saves a named value in the store's settings (saved searches, receipts).
    pub fn put_setting(&self, namespace: &str, key: &str, value: &[u8]) -> Result<()> {
        self.shared
            .meta()?
            .insert(setting_key(namespace, key), value)?;
        self.shared.db()?.flush()?;
        Ok(())
    }

    /// Removes a setting; true when it existed.
    pub fn delete_setting(&self, namespace: &str, key: &str) -> Result<bool> {
        let old = self.shared.meta()?.remove(setting_key(namespace, key))?;
        self.shared.db()?.flush()?;
        Ok(old.is_some())
    }

    /// Lists the settings of a namespace, by key.
    pub fn settings(&self, namespace: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let prefix = setting_key(namespace, "");
        let mut out = Vec::new();
        for item in self.shared.meta()?.scan_prefix(&prefix) {
            let (k, v) = item?;
            let key = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            out.push((key, v.to_vec()));
        }
        Ok(out)
    }
}

/// Removes the derived state from a closed data directory (checkpoint and
/// full-text index) so the next open rebuilds both from the log.
pub fn drop_derived(dir: &Path) -> Result<()> {
    remove_dir(&dir.join("derived"))?;
    remove_dir(&dir.join("text"))
}
