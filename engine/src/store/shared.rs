//! What the store's handles, its writer thread and its opening share: the
//! sled handles (replaced when the writer reopens sled after a failed
//! write), the log, the derived state, the text index, and where writes
//! stand.

use crate::error::{io_err, Error, Result};
use crate::log::Log;
use crate::log::{PreparedInput, PurgeRecord};
use crate::model::*;
use crate::state::State;
use crate::text::TextIndex;
use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::mpsc::Sender;
use std::sync::{Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

/// The writer thread and the channel to it.
pub(super) type WriterHandle = (Sender<WriteOp>, JoinHandle<()>);
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

/// Per write op: the outcomes to answer, and the (seq, received_ms, events)
/// to apply.
pub(super) type Plan = (Vec<AppendOutcome>, Vec<(Seq, i64, Vec<(EntryId, Event)>)>);

/// Who is told an append's outcome: a caller waiting on a channel, or a
/// callback the writer runs (an async caller's wake-up, with no thread
/// parked per request).
pub(super) enum AppendReply {
    Channel(Sender<Result<Vec<AppendOutcome>>>),
    Callback(AppendCallback),
}

/// See [`Store::submit_then`](super::Store::submit_then).
pub type AppendCallback = Box<dyn FnOnce(Result<Vec<AppendOutcome>>) + Send>;

impl AppendReply {
    pub(super) fn send(self, result: Result<Vec<AppendOutcome>>) {
        match self {
            AppendReply::Channel(tx) => drop(tx.send(result)),
            AppendReply::Callback(done) => done(result),
        }
    }
}

pub(super) enum WriteOp {
    Append(Vec<PreparedInput>, AppendReply),
    Purge(PurgeRecord, RoaringBitmap, Sender<Result<Seq>>),
}

pub(super) struct Shared {
    /// sled and its `meta` tree. `None` while the writer reopens sled after
    /// a failed write (see [`recover`]).
    pub(super) sled: RwLock<Option<(sled::Db, sled::Tree)>>,
    pub(super) log: Log,
    pub(super) state: RwLock<State>,
    pub(super) text: TextIndex,
    pub(super) dir: PathBuf,
    /// sled's page cache, for a reopen.
    pub(super) cache_bytes: u64,
    pub(super) next_seq: AtomicU64,
    /// Why writes fail now; `None` while they succeed. Set by a failed
    /// group commit, cleared once the writer has recovered.
    pub(super) fault: Mutex<Option<String>>,
    /// Group commits that failed since the store opened.
    pub(super) write_failures: AtomicU64,
    pub(super) derived_from: DerivedFrom,
    /// Held while a checkpoint is written: one at a time. It holds the log
    /// position of the checkpoint file as written or loaded (`None`: no
    /// file matches the state, or the state was rebuilt from it), so a
    /// checkpoint of a state that has not moved since (at close, or the
    /// server's timer) is not written again: at 10M messages it is 1.1 GB
    /// and seconds of work.
    pub(super) checkpointing: Mutex<Option<Option<Seq>>>,
    /// Set by `close`: background work (a template backfill) stops.
    pub(super) closing: std::sync::atomic::AtomicBool,
    /// The entries changed since the watcher last took them (`None`: no
    /// one watches, and the writer keeps nothing).
    pub(super) changes: Mutex<Option<RoaringBitmap>>,
}

/// The process's resident memory in MiB, for the log (0 where
/// `/proc/self/status` does not exist).
pub(super) fn resident_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}

pub(super) fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// Opens sled, waiting briefly for the lock: sled 0.34 releases it from its
/// flusher thread a moment after the previous handle is dropped.
pub(super) fn open_sled(path: &Path, cache_bytes: u64) -> Result<sled::Db> {
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

pub(super) fn setting_key(namespace: &str, key: &str) -> Vec<u8> {
    format!("setting/{namespace}/{key}").into_bytes()
}

pub(super) fn checkpoint_path(dir: &Path) -> PathBuf {
    dir.join("derived").join("state.ckpt")
}

pub(super) fn remove_dir(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(dir)(e)),
    }
}

pub(super) fn dir_size(dir: &Path) -> u64 {
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

impl Shared {
    pub(super) fn db(&self) -> Result<sled::Db> {
        Ok(self.sled_handles()?.0)
    }

    pub(super) fn meta(&self) -> Result<sled::Tree> {
        Ok(self.sled_handles()?.1)
    }

    pub(super) fn sled_handles(&self) -> Result<(sled::Db, sled::Tree)> {
        self.sled
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| Error::Unavailable("sled is being reopened".into()))
    }

    pub(super) fn fault(&self) -> Option<String> {
        self.fault.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// `meta` keys listing the purge records.
pub(super) const PURGE_INDEX: &[u8] = b"purge/";

pub(super) fn purge_index_key(seq: Seq) -> Vec<u8> {
    let mut k = PURGE_INDEX.to_vec();
    k.extend_from_slice(&seq.0.to_be_bytes());
    k
}
