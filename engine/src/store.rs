//! The store: opening, the single writer with group commit, checkpoints, and
//! the read API that queries run against.

use crate::error::{io_err, Error, Result};
use crate::log::{self, Log, PreparedInput, PurgeRecord, Record};
use crate::log::{erase, keys};
use crate::model::*;
use crate::state::checkpoint;
use crate::state::own::Own;
use crate::state::{Field, Row, State, DAY_MS, HOUR_MS, NONE_KEY};
use crate::text::TextIndex;
use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// Most inputs one write group takes: bounds the latency a group adds.
const MAX_GROUP_INPUTS: usize = 4096;

/// How to open a store.
#[derive(Clone, Debug)]
pub struct Config {
    /// The data directory; created if missing.
    pub dir: PathBuf,
    /// sled's page cache, in bytes.
    pub cache_bytes: u64,
    /// How often the full-text index commits (its maximum lag behind the log).
    pub text_commit_interval: Duration,
    /// zstd level for log blocks (1 is fast; higher is smaller).
    pub compression_level: i32,
    /// Encrypt log blocks with per-period keys (the default), so that
    /// a purge can make deleted content unrecoverable (see `keys`). Without
    /// it a purge removes content from the log, but sled may keep the freed
    /// bytes in its files until it rewrites them.
    pub encrypt: bool,
    /// How many of the newest entries keep their rows unsealed (as structs,
    /// not in compressed blocks): their statuses are still arriving. Lower
    /// costs less memory and more re-sealing; tests set it low so that
    /// small stores are sealed too.
    pub unsealed_rows: usize,
}

impl Config {
    /// Defaults for a data directory: 256 MiB cache, 500 ms text commits, zstd level 3.
    pub fn new(dir: impl Into<PathBuf>) -> Config {
        Config {
            dir: dir.into(),
            cache_bytes: 256 * 1024 * 1024,
            text_commit_interval: Duration::from_millis(500),
            compression_level: 3,
            encrypt: true,
            unsealed_rows: 1 << 16,
        }
    }

    fn validate(&self) -> Result<()> {
        if !(1..=19).contains(&self.compression_level) {
            return Err(Error::Config(format!(
                "compression_level must be 1..=19, got {}",
                self.compression_level
            )));
        }
        if self.text_commit_interval > Duration::from_secs(1) || self.text_commit_interval.is_zero()
        {
            return Err(Error::Config(
                "text_commit_interval must be above 0 and at most 1 s (the index may lag by at most a second)".into(),
            ));
        }
        Ok(())
    }
}

/// The writer thread and the channel to it.
type WriterHandle = (Sender<WriteOp>, JoinHandle<()>);
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

/// Per write op: the outcomes to answer, and the (seq, events) to apply.
type Plan = (Vec<AppendOutcome>, Vec<(Seq, Vec<(EntryId, Event)>)>);

enum WriteOp {
    Append(Vec<PreparedInput>, Sender<Result<Vec<AppendOutcome>>>),
    Purge(PurgeRecord, RoaringBitmap, Sender<Result<Seq>>),
}

struct Shared {
    /// sled and its `meta` tree. `None` while the writer reopens sled after
    /// a failed write (see [`recover`]).
    sled: RwLock<Option<(sled::Db, sled::Tree)>>,
    log: Log,
    state: RwLock<State>,
    text: TextIndex,
    dir: PathBuf,
    /// sled's page cache, for a reopen.
    cache_bytes: u64,
    next_seq: AtomicU64,
    /// Why writes fail now; `None` while they succeed. Set by a failed
    /// group commit, cleared once the writer has recovered.
    fault: Mutex<Option<String>>,
    /// Group commits that failed since the store opened.
    write_failures: AtomicU64,
    derived_from: DerivedFrom,
    /// Held while a checkpoint is written: one at a time. It holds the log
    /// position of the checkpoint file as written or loaded (`None`: no
    /// file matches the state, or the state was rebuilt from it), so a
    /// checkpoint of a state that has not moved since (at close, or the
    /// server's timer) is not written again: at 10M messages it is 1.1 GB
    /// and seconds of work.
    checkpointing: Mutex<Option<Option<Seq>>>,
}

/// See [`Store::write_health`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteHealth {
    /// Why writes fail now; `None` while they succeed.
    pub fault: Option<String>,
    /// Group commits that failed since the store opened (their writes were
    /// refused, never acknowledged).
    pub failures: u64,
}

/// Where the derived state came from when the store opened (records after
/// it are replayed from the log in every case).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DerivedFrom {
    /// No usable checkpoint: the whole log was replayed.
    Log,
    /// The checkpoint's rows; bitmaps and key columns rebuilt from them.
    CheckpointRows,
    /// The checkpoint's rows, bitmaps and key columns, loaded as saved.
    Checkpoint,
}

/// An open Ticks store. Cheap to clone; all clones share one writer.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
    writer: Arc<Mutex<Option<WriterHandle>>>,
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

/// The process's resident memory in MiB, for the log (0 where
/// `/proc/self/status` does not exist).
fn resident_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

impl Store {
    /// Opens the store in `config.dir`, replaying the log into the derived
    /// state (from the last checkpoint when there is a valid one).
    pub fn open(config: Config) -> Result<Store> {
        config.validate()?;
        let dir = config.dir.clone();
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let opening = std::time::Instant::now();
        // The checkpoint loads on its own thread while sled and tantivy
        // open (each takes seconds at 10M entries); whether it is usable is
        // decided once the log's and the text index's positions are known.
        let path = checkpoint_path(&dir);
        let loading = std::thread::Builder::new()
            .name("ticks-checkpoint-load".into())
            .spawn(move || load_checkpoint(&path))
            .map_err(io_err(&dir))?;
        // sled opens on its own thread while the text index opens: when the
        // files are out of the page cache both wait on many small reads, and
        // side by side they wait less (10M messages, cold page cache: both
        // open in 0.8-1.1 s instead of 1.5-2.3 s one after the other).
        let sled_opening = {
            let (path, cache_bytes) = (dir.join("log"), config.cache_bytes);
            std::thread::Builder::new()
                .name("ticks-sled-open".into())
                .spawn(move || {
                    let db = open_sled(&path, cache_bytes);
                    (db, opening.elapsed().as_millis() as u64)
                })
                .map_err(io_err(&dir))?
        };
        let text = open_text(&dir.join("text"), config.text_commit_interval);
        let text_ms = opening.elapsed().as_millis() as u64;
        // Joined before any error returns, so a failed open leaves no sled
        // handle (and its lock) behind.
        let (db, sled_ms) = sled_opening.join().unwrap_or_else(|_| {
            let bug = "the thread opening sled panicked".to_string();
            (Err(sled::Error::ReportableBug(bug).into()), 0)
        });
        let (text, mut text_covered) = text?;
        let db = db?;
        let meta = db.open_tree("meta")?;
        match meta.get("format")?.and_then(|v| v.first().copied()) {
            Some(v) if v == log::STORE_FORMAT => {}
            Some(v) if (log::OLDEST_READABLE..log::STORE_FORMAT).contains(&v) => {
                // Older records and layouts stay readable; new ones are
                // written in the current format, so older builds must no
                // longer open it.
                meta.insert("format", &[log::STORE_FORMAT])?;
                db.flush()?;
            }
            Some(v) => {
                return Err(Error::IncompatibleFormat {
                    found: u32::from(v),
                    expected: u32::from(log::STORE_FORMAT),
                })
            }
            None => {
                meta.insert("format", &[log::STORE_FORMAT])?;
                db.flush()?;
            }
        }
        let log = Log::open(
            &db,
            &dir.join("keyring"),
            config.encrypt,
            config.compression_level,
        )?;
        let last = log.last_seq()?;
        tracing::info!(
            text_ms,
            sled_ms,
            log_and_text_ms = opening.elapsed().as_millis() as u64,
            resident_mib = resident_mib(),
            "opened the log and the text index"
        );
        if text_covered > last {
            // The index claims records the log does not have: it cannot be
            // trusted, so it is rebuilt from the log.
            tracing::warn!("full-text index is ahead of the log; rebuilding it");
            text.close()?;
            remove_dir(&dir.join("text"))?;
            let (t, c) = TextIndex::open(&dir.join("text"), config.text_commit_interval)?;
            return Self::finish_open(config, db, meta, log, last, t, c, loading);
        }
        if text_covered.is_none() && last.is_some() {
            text_covered = None;
        }
        Self::finish_open(config, db, meta, log, last, text, text_covered, loading)
    }

    #[allow(clippy::too_many_arguments)]
    fn finish_open(
        config: Config,
        db: sled::Db,
        meta: sled::Tree,
        log: Log,
        last: Option<Seq>,
        text: TextIndex,
        text_covered: Option<Seq>,
        loading: std::thread::JoinHandle<Option<LoadedCheckpoint>>,
    ) -> Result<Store> {
        let dir = config.dir.clone();
        let started = std::time::Instant::now();
        // A checkpoint is usable when it is not ahead of the log, and not
        // ahead of the text index (documents are produced by replay). A
        // panic while loading it is a checkpoint that does not load.
        let loaded = loading.join().ok().flatten();
        let waited = started.elapsed();
        let (mut state, derived_from, read) = match loaded {
            Some(l) if l.state.applied <= last && l.state.applied <= text_covered => {
                (l.state, l.derived_from, l.read)
            }
            Some(_) => {
                tracing::warn!(
                    "the checkpoint is ahead of the log or of the text index; replaying the log"
                );
                (State::new(), DerivedFrom::Log, Duration::ZERO)
            }
            None => (State::new(), DerivedFrom::Log, Duration::ZERO),
        };
        state.rows.keep_unsealed(config.unsealed_rows);
        let from = state.applied;
        let on_disk = (derived_from == DerivedFrom::Checkpoint).then_some(from);
        replay(&log, &mut state, &text, text_covered)?;
        tracing::info!(
            entries = state.rows.len(),
            checkpoint_load_ms = read.as_millis() as u64,
            waited_for_checkpoint_ms = waited.as_millis() as u64,
            replayed_from = ?from,
            replay_ms = (started.elapsed() - waited).as_millis() as u64,
            ?derived_from,
            "derived state ready"
        );
        let memory: Vec<String> = state
            .heap_report()
            .into_iter()
            .map(|(part, bytes)| format!("{part} {} MiB", bytes >> 20))
            .collect();
        tracing::info!(
            memory = %memory.join(", "),
            resident_mib = resident_mib(),
            "derived state memory (estimates)"
        );
        let next = last.map_or(0, |s| s.0 + 1);
        let shared = Arc::new(Shared {
            sled: RwLock::new(Some((db, meta))),
            log,
            state: RwLock::new(state),
            text,
            dir,
            cache_bytes: config.cache_bytes,
            next_seq: AtomicU64::new(next),
            fault: Mutex::new(None),
            write_failures: AtomicU64::new(0),
            derived_from,
            checkpointing: Mutex::new(on_disk),
        });
        resume_erasures(&shared)?;
        // A purge replayed from the log whose erasure had finished: its
        // strings are blanked here (the writer has not started yet).
        forget_purged_strings(&shared);
        let (tx, rx) = mpsc::channel();
        let handle = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("ticks-writer".into())
                .spawn(move || writer_loop(shared, rx))
                .map_err(io_err(&config.dir))?
        };
        Ok(Store {
            shared,
            writer: Arc::new(Mutex::new(Some((tx, handle)))),
        })
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

    fn send(&self, op: WriteOp) -> Result<()> {
        let guard = self.writer.lock().map_err(|_| Error::Closed)?;
        let (tx, _) = guard.as_ref().ok_or(Error::Closed)?;
        tx.send(op).map_err(|_| Error::Closed)
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
        self.send(WriteOp::Append(prepared, tx))?;
        Ok(PendingAppend { reply: rx })
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
        let Some(row) = snap.state.row(id) else {
            return Ok(None);
        };
        let entry = snap.entry_from_row(id, &row);
        let mut items = Vec::new();
        if let Some(outcome) = row.send {
            items.push(TimelineItem {
                at_ms: row.recorded_ms,
                kind: "send".into(),
                status: Some(
                    match outcome {
                        SendOutcome::Accepted => Status::Accepted,
                        SendOutcome::Held => Status::Held,
                        SendOutcome::Paused => Status::Paused,
                        SendOutcome::Rejected => Status::Rejected,
                        SendOutcome::NoResponse => Status::NoResponse,
                    }
                    .as_str()
                    .to_string(),
                ),
                error_code: row.error_code.get().filter(|_| row.marks.is_empty()),
                entry: id,
                text: None,
            });
        }
        if row.direction == Direction::Inbound {
            items.push(TimelineItem {
                at_ms: row.recorded_ms,
                kind: "inbound".into(),
                status: None,
                error_code: None,
                entry: id,
                text: Some(row.own.text(Own::Text).to_string()),
            });
        }
        for m in &row.marks {
            items.push(TimelineItem {
                at_ms: m.at_ms,
                kind: "status".into(),
                status: Some(m.status.as_str().to_string()),
                error_code: m.error_code(),
                entry: id,
                text: None,
            });
        }
        for reply in snap.state.replies_to(id) {
            if let Some(r) = snap.state.row(reply) {
                items.push(TimelineItem {
                    at_ms: r.recorded_ms,
                    kind: if r.button != 0 {
                        "click".into()
                    } else {
                        "reply".into()
                    },
                    status: None,
                    error_code: None,
                    entry: reply,
                    text: Some(if r.button != 0 {
                        snap.state.interner.resolve(r.button).to_string()
                    } else {
                        r.own.text(Own::Text).to_string()
                    }),
                });
            }
        }
        items.sort_by_key(|i| i.at_ms);
        Ok(Some(Timeline { entry, items }))
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
        let mut bytes = Vec::new();
        ids.serialize_into(&mut bytes)
            .map_err(|e| Error::Encode(e.to_string()))?;
        let record = PurgeRecord {
            at_ms: now_ms(),
            actor: actor.to_string(),
            filter: filter.to_string(),
            count: ids.len(),
            receipt,
            forced,
            ids: bytes,
        };
        let (tx, rx) = mpsc::channel();
        self.send(WriteOp::Purge(record, ids.clone(), tx))?;
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

    /// Whether the checkpoint file holds the state as it is now: written
    /// or loaded at the last applied record.
    fn checkpoint_is_current(&self) -> bool {
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
        on_disk == Some(applied) && checkpoint_path(&self.shared.dir).exists()
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

/// Opens sled, waiting briefly for the lock: sled 0.34 releases it from its
/// flusher thread a moment after the previous handle is dropped.
fn open_sled(path: &Path, cache_bytes: u64) -> Result<sled::Db> {
    let mut waited = Duration::ZERO;
    loop {
        let result = sled::Config::new()
            .path(path)
            .cache_capacity(cache_bytes)
            .mode(sled::Mode::HighThroughput)
            .flush_every_ms(Some(1000))
            .open();
        match result {
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && waited < Duration::from_secs(3) =>
            {
                std::thread::sleep(Duration::from_millis(50));
                waited += Duration::from_millis(50);
            }
            other => return Ok(other?),
        }
    }
}

/// Opens the text index, waiting up to 3 s for a store of this directory
/// that was dropped without `close` to release its writer's lock (as
/// `open_sled` waits for sled's).
fn open_text(path: &Path, commit_interval: Duration) -> Result<(TextIndex, Option<Seq>)> {
    let mut waited = Duration::ZERO;
    loop {
        match TextIndex::open(path, commit_interval) {
            Err(Error::Text(e)) if e.contains("LockBusy") && waited < Duration::from_secs(3) => {
                std::thread::sleep(Duration::from_millis(50));
                waited += Duration::from_millis(50);
            }
            other => return other,
        }
    }
}

fn setting_key(namespace: &str, key: &str) -> Vec<u8> {
    format!("setting/{namespace}/{key}").into_bytes()
}

fn checkpoint_path(dir: &Path) -> PathBuf {
    dir.join("derived").join("state.ckpt")
}

fn remove_dir(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(dir)(e)),
    }
}

fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => total += dir_size(&e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

/// API names of the [`Field::Engagement`] keys 1, 2 and 3.
const ENGAGEMENT_NAMES: [&str; 3] = ["replied", "clicked", "replied_and_clicked"];
/// API names of the [`Field::Reached`] keys 1, 2 and 3.
const REACHED_NAMES: [&str; 3] = ["sent", "delivered", "read"];

fn named(names: &[&str], key: i64) -> FieldValue {
    usize::try_from(key - 1)
        .ok()
        .and_then(|i| names.get(i))
        .map_or(FieldValue::Int(key), |n| FieldValue::Text((*n).into()))
}

/// Removes the derived state from a closed data directory (checkpoint and
/// full-text index) so the next open rebuilds both from the log.
pub fn drop_derived(dir: &Path) -> Result<()> {
    remove_dir(&dir.join("derived"))?;
    remove_dir(&dir.join("text"))
}

/// Folds one decoded record into a state; sends its text documents to the
/// index when given one.
fn apply_record(
    state: &mut State,
    seq: Seq,
    record: Record,
    text: Option<&TextIndex>,
) -> Result<()> {
    match record {
        Record::Input(rec) => {
            let events: Vec<(EntryId, Event)> = rec
                .events
                .into_iter()
                .filter_map(|(id, e)| id.map(|id| (id, e)))
                .collect();
            let docs = state.apply(seq, &events);
            if let Some(text) = text {
                text.submit(seq, docs)?;
            }
        }
        Record::Purge(p) => {
            let ids = RoaringBitmap::deserialize_from(&p.ids[..]).map_err(|e| Error::Corrupt {
                seq: seq.0,
                reason: format!("purge ids: {e}"),
            })?;
            state.purge(&ids);
            state.applied = Some(seq);
            if let Some(text) = text {
                text.delete(ids.iter().map(EntryId).collect(), seq)?;
            }
        }
    }
    Ok(())
}

fn replay(log: &Log, state: &mut State, text: &TextIndex, text_covered: Option<Seq>) -> Result<()> {
    let mut replayed = 0u64;
    for item in log.iter_after(state.applied) {
        let (seq, bytes) = item?;
        let record = log.decode(seq, &bytes)?;
        let index = (Some(seq) > text_covered).then_some(text);
        apply_record(state, seq, record, index)?;
        replayed += 1;
    }
    if replayed > 0 {
        tracing::info!(
            records = replayed,
            "replayed the log into the derived state"
        );
    }
    Ok(())
}

/// The writer thread: takes write ops in groups and commits each group
/// with one flush. After a failed commit it refuses ops at once (their
/// callers can retry: nothing of them was acknowledged) and tries to
/// recover with backoff until a write succeeds again.
fn writer_loop(shared: Arc<Shared>, rx: Receiver<WriteOp>) {
    let mut backoff = RECOVERY_FIRST_WAIT;
    let mut next_try = std::time::Instant::now();
    loop {
        if let Some(reason) = shared.fault() {
            let now = std::time::Instant::now();
            if now >= next_try {
                match recover(&shared) {
                    Ok(()) => {
                        tracing::warn!("the store writes again after a failed write ({reason})");
                        *shared.fault.lock().unwrap_or_else(|p| p.into_inner()) = None;
                        backoff = RECOVERY_FIRST_WAIT;
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(
                            retry_in_ms = backoff.as_millis() as u64,
                            "the store cannot write yet: {e}"
                        );
                        next_try = std::time::Instant::now() + backoff;
                        backoff = (backoff * 2).min(RECOVERY_LAST_WAIT);
                    }
                }
                continue;
            }
            match rx.recv_timeout(next_try - now) {
                Ok(op) => refuse(op, &reason),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
            continue;
        }
        let Ok(first) = rx.recv() else { return };
        let mut ops = vec![first];
        let mut inputs = match &ops[0] {
            WriteOp::Append(v, _) => v.len(),
            WriteOp::Purge(..) => MAX_GROUP_INPUTS,
        };
        while inputs < MAX_GROUP_INPUTS {
            match rx.try_recv() {
                Ok(op) => {
                    inputs += match &op {
                        WriteOp::Append(v, _) => v.len(),
                        WriteOp::Purge(..) => MAX_GROUP_INPUTS,
                    };
                    ops.push(op);
                }
                Err(_) => break,
            }
        }
        write_group(&shared, ops);
        if shared.fault().is_some() {
            backoff = RECOVERY_FIRST_WAIT;
            next_try = std::time::Instant::now() + backoff;
        }
    }
}

/// The first wait before reopening sled after a failed write, doubled
/// after each attempt that fails, up to [`RECOVERY_LAST_WAIT`].
const RECOVERY_FIRST_WAIT: Duration = Duration::from_millis(100);
const RECOVERY_LAST_WAIT: Duration = Duration::from_secs(5);
/// The `meta` key a recovery writes (and flushes) to prove the disk takes
/// writes again.
const PROBE_KEY: &[u8] = b"probe";

/// Answers an op without running it: writes are failing.
fn refuse(op: WriteOp, reason: &str) {
    let err = || Error::Unavailable(reason.to_string());
    match op {
        WriteOp::Append(_, reply) => drop(reply.send(Err(err()))),
        WriteOp::Purge(_, _, reply) => drop(reply.send(Err(err()))),
    }
}

/// Brings the store back after a failed write, without a restart. sled
/// keeps the first I/O error it meets and refuses every write after it, so
/// it is closed (every handle dropped) and opened again; a probe write
/// proves the cause is gone. Records of the failed group that reached the
/// disk after all are applied, as an open would apply them (their callers
/// were told of a failure, so a retry is then recognised as a duplicate);
/// a purge among them is erased, one that did not reach the disk is
/// forgotten.
fn recover(shared: &Shared) -> Result<()> {
    shared.log.release();
    drop(
        shared
            .sled
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .take(),
    );
    let db = open_sled(&shared.dir.join("log"), shared.cache_bytes)?;
    let meta = db.open_tree("meta")?;
    meta.insert(PROBE_KEY, &now_ms().to_be_bytes())?;
    db.flush()?;
    shared.log.attach(&db)?;
    *shared.sled.write().unwrap_or_else(|p| p.into_inner()) = Some((db, meta));
    let next = shared.next_seq.load(Ordering::SeqCst);
    let mut reached = next;
    {
        let mut state = shared.state.write().unwrap_or_else(|p| p.into_inner());
        for item in shared.log.iter_after(next.checked_sub(1).map(Seq)) {
            let (seq, bytes) = item?;
            let record = shared.log.decode(seq, &bytes)?;
            apply_record(&mut state, seq, record, Some(&shared.text))?;
            reached = seq.0 + 1;
        }
    }
    if reached > next {
        tracing::info!(
            records = reached - next,
            "records of the failed write reached the disk and are applied"
        );
    }
    shared.next_seq.store(reached, Ordering::SeqCst);
    resume_erasures(shared)
}

/// Writes one group: classify against the state, write every record and
/// flush once, then apply and answer. A failure answers every caller of the
/// group with the error and applies nothing.
fn write_group(shared: &Shared, mut ops: Vec<WriteOp>) {
    let meta = match shared.meta() {
        Ok(m) => m,
        Err(e) => {
            let reason = e.to_string();
            for op in ops {
                refuse(op, &reason);
            }
            return;
        }
    };
    let mut next = shared.next_seq.load(Ordering::SeqCst);
    let mut records: Vec<(Seq, Vec<u8>)> = Vec::new();
    let mut encode_error: Option<Error> = None;
    let mut plans: Vec<Plan> = Vec::new();
    {
        let state = shared.state.read().unwrap_or_else(|p| p.into_inner());
        let mut overlay = state.overlay();
        for op in &mut ops {
            let mut outcomes = Vec::new();
            let mut applies = Vec::new();
            match op {
                WriteOp::Append(prepared, _) => {
                    for p in prepared {
                        let assignments = state.classify(&mut overlay, &p.events);
                        let events = p.events.len();
                        let kept: Vec<(EntryId, Event)> = assignments
                            .iter()
                            .zip(std::mem::take(&mut p.events))
                            .filter_map(|(a, ev)| a.map(|id| (id, ev)))
                            .collect();
                        let duplicates = events - kept.len();
                        if kept.is_empty() {
                            outcomes.push(AppendOutcome {
                                seq: None,
                                stored: 0,
                                duplicates,
                                entries: vec![],
                            });
                            continue;
                        }
                        let seq = Seq(next);
                        next += 1;
                        match Log::encode_input(p, &assignments) {
                            Ok(bytes) => records.push((seq, bytes)),
                            Err(e) => encode_error = Some(e),
                        }
                        let mut entries: Vec<EntryId> = kept.iter().map(|(id, _)| *id).collect();
                        entries.dedup();
                        outcomes.push(AppendOutcome {
                            seq: Some(seq),
                            stored: kept.len(),
                            duplicates,
                            entries,
                        });
                        applies.push((seq, kept));
                    }
                }
                WriteOp::Purge(record, _, _) => match log::encode_purge(record) {
                    Ok(bytes) => {
                        let seq = Seq(next);
                        next += 1;
                        // Made durable by the same flush as the record: the
                        // next open finishes an erasure a crash interrupted.
                        let marked = meta
                            .insert(erase::pending_key(seq), &[])
                            .and_then(|_| meta.insert(purge_index_key(seq), &[]));
                        if let Err(e) = marked {
                            encode_error = Some(e.into());
                        }
                        records.push((seq, bytes));
                        applies.push((seq, Vec::new()));
                    }
                    Err(e) => tracing::error!("encoding a purge record: {e}"),
                },
            }
            plans.push((outcomes, applies));
        }
    }
    let written = match encode_error {
        Some(e) => Err(e),
        None => shared.log.write_durable(&records),
    };
    if let Err(e) = written {
        tracing::error!("log write failed; its writes are refused and the store recovers: {e}");
        // After a failed write sled's state is unknown: nothing is written
        // on top of it until `recover` has reopened it. This group's
        // callers are told; nothing of it was acknowledged or applied.
        let reason = format!("log write failed: {e}");
        shared.write_failures.fetch_add(1, Ordering::SeqCst);
        *shared.fault.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason.clone());
        for op in ops {
            refuse(op, &reason);
        }
        return;
    }
    shared.next_seq.store(next, Ordering::SeqCst);
    let mut docs_by_seq = Vec::new();
    let mut purge_periods: Vec<(Seq, BTreeSet<u32>)> = Vec::new();
    {
        let mut state = shared.state.write().unwrap_or_else(|p| p.into_inner());
        for (op, (_, applies)) in ops.iter().zip(&plans) {
            match op {
                WriteOp::Append(..) => {
                    for (seq, events) in applies {
                        docs_by_seq.push((*seq, state.apply(*seq, events)));
                    }
                }
                WriteOp::Purge(_, ids, _) => {
                    if let Some((seq, _)) = applies.first() {
                        // Where their content lies, before the rows forget it.
                        let mut periods = BTreeSet::new();
                        state.rows.for_each(ids.iter(), |_, row| {
                            periods.extend(row.records.iter().map(|s| keys::period_of(s.0)));
                        });
                        purge_periods.push((*seq, periods));
                        state.purge(ids);
                        state.applied = Some(*seq);
                    }
                }
            }
        }
    }
    crate::state::coalesce_docs(&mut docs_by_seq);
    for (seq, docs) in docs_by_seq {
        if let Err(e) = shared.text.submit(seq, docs) {
            tracing::error!("full-text index unavailable: {e}");
        }
    }
    for (op, (outcomes, applies)) in ops.into_iter().zip(plans) {
        match op {
            WriteOp::Append(_, reply) => drop(reply.send(Ok(outcomes))),
            WriteOp::Purge(_, ids, reply) => {
                let result = match applies.first() {
                    Some((seq, _)) => {
                        let periods = purge_periods
                            .iter()
                            .find(|(s, _)| s == seq)
                            .map(|(_, p)| p.clone());
                        erase_content(shared, &ids, *seq, periods).map(|()| *seq)
                    }
                    None => Err(Error::Encode("purge record".into())),
                };
                drop(reply.send(result));
            }
        }
    }
}

impl Shared {
    fn db(&self) -> Result<sled::Db> {
        Ok(self.sled_handles()?.0)
    }

    fn meta(&self) -> Result<sled::Tree> {
        Ok(self.sled_handles()?.1)
    }

    fn sled_handles(&self) -> Result<(sled::Db, sled::Tree)> {
        self.sled
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| Error::Unavailable("sled is being reopened".into()))
    }

    fn fault(&self) -> Option<String> {
        self.fault.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// `meta` keys listing the purge records.
const PURGE_INDEX: &[u8] = b"purge/";

fn purge_index_key(seq: Seq) -> Vec<u8> {
    let mut k = PURGE_INDEX.to_vec();
    k.extend_from_slice(&seq.0.to_be_bytes());
    k
}

/// Makes a purge's content unrecoverable from the data directory (see the
/// `erase` module): text documents merged away, log periods re-keyed, the
/// checkpoint rewritten. `periods` are where the content lies, when known.
fn erase_content(
    shared: &Shared,
    ids: &RoaringBitmap,
    seq: Seq,
    periods: Option<BTreeSet<u32>>,
) -> Result<()> {
    shared.text.delete(ids.iter().map(EntryId).collect(), seq)?;
    let mut periods = match periods {
        Some(p) => p,
        None => erase::periods_holding(&shared.log, ids, seq)?,
    };
    // A re-key an earlier crash interrupted is finished too.
    periods.extend(shared.log.rekeying());
    for period in periods {
        erase::rewrite_period(&shared.log, period, ids)?;
    }
    forget_purged_strings(shared);
    // The checkpoint holds rows: replace it with one without them.
    checkpoint_now(shared)?;
    shared.meta()?.remove(erase::pending_key(seq))?;
    shared.db()?.flush()?;
    Ok(())
}

/// Blanks the strings only purged entries used. Called by the writer
/// thread (the erasure runs on it), so no record is applied between the
/// scan, under the read lock where queries go on, and the blanking.
fn forget_purged_strings(shared: &Shared) {
    let unused = {
        let state = shared.state.read().unwrap_or_else(|p| p.into_inner());
        if !state.has_purged_strings() {
            return;
        }
        state.unused_purged_strings()
    };
    shared
        .state
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .forget_strings(&unused);
}

/// Writes the derived state to the checkpoint file. The text index is
/// committed first, because a checkpoint must never be ahead of it.
///
/// Then the sealed blocks it holds are read from the new file: they leave
/// memory, and no block refers to the replaced file any more.
fn checkpoint_now(shared: &Shared) -> Result<()> {
    let mut on_disk = shared
        .checkpointing
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    shared.text.flush()?;
    let (cp, applied) = {
        let state = shared.state.read().unwrap_or_else(|p| p.into_inner());
        (state.to_checkpoint(), state.applied)
    };
    let path = checkpoint_path(&shared.dir);
    // Until the new file is in place, the old one no longer counts as
    // current: a failed write leaves it to the next checkpoint.
    *on_disk = None;
    let placed = checkpoint::write(&path, &cp)?;
    *on_disk = Some(applied);
    let file = Arc::new(std::fs::File::open(&path).map_err(io_err(&path))?);
    shared
        .state
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .rows
        .adopt(&cp.rows.blocks, file, &placed);
    Ok(())
}

/// A checkpoint loaded into a state, not yet checked against the log.
struct LoadedCheckpoint {
    state: State,
    derived_from: DerivedFrom,
    /// How long reading and loading it took.
    read: Duration,
}

/// The state the checkpoint at `path` holds; `None` when there is none or
/// it does not load (then the log is replayed: it is derived data).
fn load_checkpoint(path: &Path) -> Option<LoadedCheckpoint> {
    let started = std::time::Instant::now();
    let checkpoint = checkpoint::read(path, |_| true).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "the checkpoint could not be read; replaying the log");
        None
    })?;
    let Some((state, saved_indexes)) = State::from_checkpoint(checkpoint) else {
        tracing::warn!("the checkpoint's parts do not fit together; replaying the log");
        return None;
    };
    Some(LoadedCheckpoint {
        state,
        derived_from: if saved_indexes {
            DerivedFrom::Checkpoint
        } else {
            DerivedFrom::CheckpointRows
        },
        read: started.elapsed(),
    })
}

/// Finishes the erasure of every purge a crash interrupted.
fn resume_erasures(shared: &Shared) -> Result<()> {
    let meta = shared.meta()?;
    let pending: Vec<Seq> = meta
        .scan_prefix(b"erase/")
        .keys()
        .filter_map(|k| k.ok().and_then(|k| erase::pending_seq(&k)))
        .collect();
    for seq in pending {
        match shared.log.get(seq)? {
            Some(bytes) => {
                if let Record::Purge(p) = shared.log.decode(seq, &bytes)? {
                    tracing::info!(seq = seq.0, "finishing an interrupted purge");
                    let ids = erase::purge_ids(seq, &p.ids)?;
                    erase_content(shared, &ids, seq, None)?;
                }
            }
            // The marker reached the disk but the purge record did not:
            // that purge never happened.
            None => {
                meta.remove(erase::pending_key(seq))?;
                meta.remove(purge_index_key(seq))?;
            }
        }
    }
    shared.db()?.flush()?;
    Ok(())
}

/// A consistent read view of the derived state.
pub struct Snapshot<'a> {
    state: RwLockReadGuard<'a, State>,
}

/// One field's bitmap key of every entry (see [`Snapshot::column`]). Each
/// entry has a *code*, a small dense number that stands for one key; a scan
/// counts codes in an array and decodes each distinct code once.
#[derive(Clone, Copy)]
pub struct KeyColumn<'s>(&'s crate::state::columns::Column);

impl KeyColumn<'_> {
    /// The code of entry `id`.
    #[inline]
    pub fn code(&self, id: u32) -> u32 {
        self.0.code(id)
    }

    /// Appends the code of each of `ids` to `out`: the fast way to read
    /// many entries (a scan reads a chunk of ids column by column).
    pub fn gather(&self, ids: &[u32], out: &mut Vec<u32>) {
        self.0.gather(ids, out);
    }

    /// The number of codes given out: every code is below it.
    pub fn codes(&self) -> usize {
        self.0.keys().len()
    }

    /// The bitmap key a code stands for, as [`Snapshot::values`] lists it
    /// ([`crate::NONE_KEY`] when the entry has no value).
    pub fn key(&self, code: u32) -> i64 {
        self.0
            .keys()
            .get(code as usize)
            .copied()
            .unwrap_or(NONE_KEY)
    }
}

/// A bitmap key decoded for display: absent, a number, or a text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FieldValue {
    /// The field is absent.
    None,
    /// A numeric value (codes, days, hours).
    Int(i64),
    /// A text value.
    Text(String),
}

impl<'a> Snapshot<'a> {
    /// Every live entry.
    pub fn live(&self) -> &RoaringBitmap {
        &self.state.live
    }

    /// The log records the events of the live entries among `ids` came
    /// from: each entry's in log order, entries in id order, a record
    /// shared by several entries once per entry. Reads each block of rows
    /// once.
    pub fn entry_records(&self, ids: &[u32]) -> Vec<Seq> {
        let mut sorted = ids.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let mut seqs = Vec::new();
        self.state.rows.for_each(sorted, |_, row| {
            if !row.purged {
                seqs.extend_from_slice(&row.records);
            }
        });
        seqs
    }

    /// The entry of a message id.
    pub fn entry_for_wamid(&self, wamid: &str) -> Option<EntryId> {
        self.state.entry_for_wamid(wamid)
    }

    /// Number of entry ids ever handed out (live or purged).
    pub fn entry_count(&self) -> usize {
        self.state.rows.len()
    }

    /// The bitmap of entries whose `field` has the given value; `None` when
    /// no entry has it.
    pub fn bitmap(&self, field: Field, value: &FieldValue) -> Option<&RoaringBitmap> {
        let key = self.key_of(field, value)?;
        self.state.bitmap(field, key)
    }

    fn key_of(&self, field: Field, value: &FieldValue) -> Option<i64> {
        match value {
            FieldValue::None => Some(NONE_KEY),
            FieldValue::Int(i) => Some(*i),
            FieldValue::Text(t) if field.is_text() => self.state.interner.get(t).map(i64::from),
            FieldValue::Text(t) => match field {
                Field::Status => Status::parse(t).map(|s| s as i64),
                Field::Direction => Direction::parse(t).map(|d| d as i64),
                Field::Session => match t.as_str() {
                    "open" => Some(Session::Open as i64),
                    "closed" => Some(Session::Closed as i64),
                    _ => None,
                },
                Field::Engagement => ENGAGEMENT_NAMES
                    .iter()
                    .position(|n| n == t)
                    .map(|i| i as i64 + 1),
                Field::Reached => REACHED_NAMES
                    .iter()
                    .position(|n| n == t)
                    .map(|i| i as i64 + 1),
                _ => t.parse().ok(),
            },
        }
    }

    /// Decodes a bitmap key of `field` for display.
    pub fn value_of(&self, field: Field, key: i64) -> FieldValue {
        if key == NONE_KEY {
            return FieldValue::None;
        }
        if field.is_text() {
            return FieldValue::Text(self.state.interner.resolve(key as u32).to_string());
        }
        match field {
            Field::Status => Status::ALL
                .iter()
                .find(|s| **s as i64 == key)
                .map_or(FieldValue::Int(key), |s| {
                    FieldValue::Text(s.as_str().into())
                }),
            Field::Direction => FieldValue::Text(
                match key {
                    0 => "outbound",
                    1 => "inbound",
                    _ => "event",
                }
                .into(),
            ),
            Field::Session => FieldValue::Text(
                if key == Session::Open as i64 {
                    "open"
                } else {
                    "closed"
                }
                .into(),
            ),
            Field::Engagement => named(&ENGAGEMENT_NAMES, key),
            Field::Reached => named(&REACHED_NAMES, key),
            _ => FieldValue::Int(key),
        }
    }

    /// Every value of a field with its bitmap, in key order.
    ///
    /// The [`Field::Engagement`] keys are 1 replied, 2 clicked, 3 both;
    /// the [`Field::Reached`] keys are 1 sent, 2 delivered, 3 read.
    pub fn values(&self, field: Field) -> impl Iterator<Item = (i64, &RoaringBitmap)> + '_ {
        self.state.field_index(field).iter().map(|(k, v)| (*k, v))
    }

    /// The values of a text field sorted by their text, for sorting by it.
    pub fn values_by_text(&self, field: Field) -> Vec<(String, &RoaringBitmap)> {
        let mut v: Vec<(String, &RoaringBitmap)> = self
            .state
            .field_index(field)
            .iter()
            .map(|(k, bm)| {
                let text = match self.value_of(field, *k) {
                    FieldValue::Text(t) => t,
                    FieldValue::Int(i) => i.to_string(),
                    FieldValue::None => String::new(),
                };
                (text, bm)
            })
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// One field's key of every entry, as a column of small codes: what a
    /// scan reads instead of intersecting bitmaps. Meaningful for live
    /// entries only (a purged entry keeps its last code).
    pub fn column(&self, field: Field) -> KeyColumn<'_> {
        KeyColumn(self.state.columns.column(field as usize))
    }

    /// The entries recorded in `[from, to)` (UTC milliseconds): whole days
    /// and hours come straight from their bitmaps; only the edge hours are
    /// checked entry by entry.
    pub fn recorded_between(&self, from: i64, to: i64) -> RoaringBitmap {
        let mut parts: Vec<&RoaringBitmap> = Vec::new();
        let mut edges = RoaringBitmap::new();
        let first_full_day = from.div_euclid(DAY_MS) + i64::from(from.rem_euclid(DAY_MS) != 0);
        let last_full_day = to.div_euclid(DAY_MS) - 1; // the day ending at or before `to`
        for (day, bm) in self.values(Field::Day) {
            if day >= first_full_day && day <= last_full_day {
                parts.push(bm);
            }
        }
        let full_days_from = first_full_day.saturating_mul(DAY_MS);
        let full_days_to = (last_full_day + 1).saturating_mul(DAY_MS);
        for (hour, bm) in self.values(Field::Hour) {
            let start = hour.saturating_mul(HOUR_MS);
            let end = start.saturating_add(HOUR_MS);
            if end <= from || start >= to {
                continue;
            }
            if first_full_day <= last_full_day && start >= full_days_from && end <= full_days_to {
                continue; // covered by a whole day
            }
            if start >= from && end <= to {
                parts.push(bm);
            } else {
                for id in bm {
                    let ms = self.recorded_ms(id);
                    if ms >= from && ms < to {
                        edges.insert(id);
                    }
                }
            }
        }
        let mut all = edges;
        for p in parts {
            all |= p;
        }
        all
    }

    /// `recorded_at` of an entry, UTC milliseconds (0 for unknown ids).
    pub fn recorded_ms(&self, id: u32) -> i64 {
        self.state.rows.recorded_ms(id)
    }

    /// The entry's value of a column, for sorting by columns without a bitmap.
    pub fn sort_text(&self, id: u32, column: TextColumn) -> String {
        self.state
            .rows
            .get(id)
            .map(|r| self.text_of(&r, column).to_string())
            .unwrap_or_default()
    }

    /// [`Snapshot::sort_text`] of each of `ids`, in their order. Reads
    /// each block of rows once when `ids` ascend (what sorting a match set
    /// by a text column asks).
    pub fn sort_texts(&self, ids: &[u32], column: TextColumn) -> Vec<String> {
        let mut out = vec![String::new(); ids.len()];
        let mut pos = 0;
        self.state.rows.for_each(ids.iter().copied(), |id, row| {
            while pos < ids.len() && ids[pos] != id {
                pos += 1;
            }
            if let Some(slot) = out.get_mut(pos) {
                *slot = self.text_of(row, column).to_string();
                pos += 1;
            }
        });
        out
    }

    fn text_of<'r>(&'r self, r: &'r Row, column: TextColumn) -> &'r str {
        let i = &self.state.interner;
        match column {
            TextColumn::Phone => i.resolve(r.phone),
            TextColumn::CorrelationId => r.own.text(Own::CorrelationId),
            TextColumn::Wamid => r.own.text(Own::Wamid),
            TextColumn::ConversationId => r.own.text(Own::ConversationId),
            TextColumn::RecipientRef => i.resolve(r.recipient_ref),
            TextColumn::Text => r.own.text(Own::Text),
        }
    }

    /// Entries whose text column equals `value` exactly (a scan of the
    /// candidates: meant for high-cardinality columns without a bitmap).
    pub fn filter_text_eq(
        &self,
        candidates: &RoaringBitmap,
        column: TextColumn,
        values: &[String],
    ) -> RoaringBitmap {
        let mut out = RoaringBitmap::new();
        self.state.rows.for_each(candidates.iter(), |id, row| {
            let text = self.text_of(row, column);
            if values.iter().any(|v| v == text) {
                out.insert(id);
            }
        });
        out
    }

    /// The live entries among `ids`, in the order of `ids`, as shown in the
    /// log table. Reads each block of rows once (a page of the table
    /// often lies in one or two).
    pub fn entries(&self, ids: &[u32]) -> Vec<Entry> {
        let mut order: Vec<(u32, usize)> = ids.iter().copied().zip(0..).collect();
        order.sort_unstable();
        let mut distinct: Vec<u32> = order.iter().map(|(id, _)| *id).collect();
        distinct.dedup();
        let mut found: Vec<Option<Entry>> = vec![None; ids.len()];
        let mut k = 0;
        self.state.rows.for_each(distinct, |id, row| {
            while k < order.len() && order[k].0 < id {
                k += 1;
            }
            while k < order.len() && order[k].0 == id {
                if !row.purged {
                    found[order[k].1] = Some(self.entry_from_row(EntryId(id), row));
                }
                k += 1;
            }
        });
        found.into_iter().flatten().collect()
    }

    /// The entry, as shown in the log table.
    pub fn entry(&self, id: EntryId) -> Option<Entry> {
        self.state.row(id).map(|row| self.entry_from_row(id, &row))
    }

    fn entry_from_row(&self, id: EntryId, r: &Row) -> Entry {
        entry_of(&self.state, id, r)
    }
}

/// The entry of a row, its strings resolved through `state`'s interner.
fn entry_of(state: &State, id: EntryId, r: &Row) -> Entry {
    let i = &state.interner;
    Entry {
        id,
        direction: r.direction,
        status: r.status,
        recorded_ms: r.recorded_ms,
        offset_s: r.offset_s,
        category: i.opt(r.category),
        name: i.opt(r.name),
        template: i.opt(r.template),
        template_language: i.opt(r.language),
        response_code: r.response_code,
        recipient_type: i.opt(r.recipient_type),
        recipient_ref: i.opt(r.recipient_ref),
        user: i.opt(r.user),
        subaccount: i.opt(r.subaccount),
        phone_number_id: i.opt(r.phone_number_id),
        phone: i.opt(r.phone),
        wa_id: i.opt(r.wa_id),
        contact_name: i.opt(r.contact_name),
        wamid: r.own.get(Own::Wamid).map(str::to_string),
        correlation_id: non_empty(r.own.text(Own::CorrelationId)),
        content_type: i.opt(r.content_type),
        text: r.own.text(Own::Text).to_string(),
        button: i.opt(r.button),
        error_code: r.error_code.get(),
        error_title: i.opt(r.error_title),
        conversation_id: non_empty(r.own.text(Own::ConversationId)),
        conversation_type: i.opt(r.conversation_type),
        conversation_expiry_ms: r.conversation_expiry_ms.get(),
        pricing_category: i.opt(r.pricing_category),
        pricing_model: i.opt(r.pricing_model),
        billable: r.billable,
        session: r.session,
        in_reply_to: r.in_reply_to,
        replies: r.replies,
        clicks: r.clicks,
        sent_ms: first_mark(&r.marks, WebhookStatus::Sent),
        delivered_ms: first_mark(&r.marks, WebhookStatus::Delivered),
        read_ms: first_mark(&r.marks, WebhookStatus::Read),
        failed_ms: first_mark(&r.marks, WebhookStatus::Failed),
        has_send: r.send.is_some(),
    }
}

/// Absent and empty read the same in an [`Entry`], as interned strings do.
fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

fn first_mark(marks: &[StatusMark], status: WebhookStatus) -> Option<i64> {
    marks
        .iter()
        .filter(|m| m.status == status)
        .map(|m| m.at_ms)
        .min()
}

/// High-cardinality columns that have no bitmap index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextColumn {
    /// Recipient or sender phone.
    Phone,
    /// Correlation id.
    CorrelationId,
    /// Message id.
    Wamid,
    /// Conversation id.
    ConversationId,
    /// The CRM's recipient reference.
    RecipientRef,
    /// The message text preview.
    Text,
}

/// One entry as the log table shows it: every column of both reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The entry id (the table's `#`).
    pub id: EntryId,
    /// outbound (MT), inbound (MO) or event.
    pub direction: Direction,
    /// Current status.
    pub status: Status,
    /// Recorded on, UTC milliseconds.
    pub recorded_ms: i64,
    /// The original UTC offset of the recorded time, seconds.
    pub offset_s: i32,
    /// Category (marketing campaign, template bot...).
    pub category: Option<String>,
    /// Campaign, bot or automation name.
    pub name: Option<String>,
    /// Template name.
    pub template: Option<String>,
    /// Template language.
    pub template_language: Option<String>,
    /// HTTP response code.
    pub response_code: Option<u16>,
    /// Recipient type (lead, customer, contact).
    pub recipient_type: Option<String>,
    /// CRM contact reference.
    pub recipient_ref: Option<String>,
    /// User who sent it.
    pub user: Option<String>,
    /// Subaccount.
    pub subaccount: Option<String>,
    /// Business phone number id.
    pub phone_number_id: Option<String>,
    /// Customer phone.
    pub phone: Option<String>,
    /// WhatsApp user id.
    pub wa_id: Option<String>,
    /// Customer profile name (inbound).
    pub contact_name: Option<String>,
    /// Message id.
    pub wamid: Option<String>,
    /// Correlation id.
    pub correlation_id: Option<String>,
    /// Content type.
    pub content_type: Option<String>,
    /// Message text (preview).
    pub text: String,
    /// Button payload of a quick-reply click.
    pub button: Option<String>,
    /// Meta error code.
    pub error_code: Option<i64>,
    /// Meta error title.
    pub error_title: Option<String>,
    /// Conversation id.
    pub conversation_id: Option<String>,
    /// Conversation type (origin).
    pub conversation_type: Option<String>,
    /// Conversation expiry, UTC milliseconds.
    pub conversation_expiry_ms: Option<i64>,
    /// Pricing category.
    pub pricing_category: Option<String>,
    /// Pricing model (CBP, PMP).
    pub pricing_model: Option<String>,
    /// Whether the message is billable.
    pub billable: Option<bool>,
    /// Whether a 24 h session was open at send time.
    pub session: Option<Session>,
    /// The outbound message an inbound one answers.
    pub in_reply_to: Option<EntryId>,
    /// Replies received to this message.
    pub replies: u32,
    /// Quick-reply clicks on this message.
    pub clicks: u32,
    /// First `sent` status time.
    pub sent_ms: Option<i64>,
    /// First `delivered` status time.
    pub delivered_ms: Option<i64>,
    /// First `read` status time.
    pub read_ms: Option<i64>,
    /// First `failed` status time.
    pub failed_ms: Option<i64>,
    /// Whether a send result was logged (false: known only from webhooks).
    pub has_send: bool,
}

/// An entry with every input it came from.
#[derive(Clone, Debug)]
pub struct EntryDetail {
    /// The entry's columns.
    pub entry: Entry,
    /// The inputs, in log order.
    pub inputs: Vec<StoredInput>,
}

/// One stored input of an entry.
#[derive(Clone, Debug)]
pub struct StoredInput {
    /// Its log record.
    pub seq: Seq,
    /// Where it came from.
    pub source: Source,
    /// When it was received, UTC milliseconds.
    pub received_ms: i64,
    /// The exact bytes received.
    pub raw: Vec<u8>,
    /// The events of this input that belong to the entry.
    pub events: Vec<Event>,
}

/// A message's timeline.
#[derive(Clone, Debug, Serialize)]
pub struct Timeline {
    /// The message's entry.
    pub entry: Entry,
    /// What happened, in time order.
    pub items: Vec<TimelineItem>,
}

/// One step of a timeline.
#[derive(Clone, Debug, Serialize)]
pub struct TimelineItem {
    /// When, UTC milliseconds.
    pub at_ms: i64,
    /// `send`, `status`, `inbound`, `reply` or `click`.
    pub kind: String,
    /// The status reached, for `send` and `status`.
    pub status: Option<String>,
    /// The error code, when the step failed.
    pub error_code: Option<i64>,
    /// The entry the step belongs to (replies are entries of their own).
    pub entry: EntryId,
    /// The text of a reply or the title of a click.
    pub text: Option<String>,
}
