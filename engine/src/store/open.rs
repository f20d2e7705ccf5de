//! Opening a store: sled, the text index and the checkpoint side by side,
//! then the log replayed into the derived state from where the checkpoint
//! (if usable) left it, interrupted purges finished, and the writer started.

use super::config::Config;
use super::shared::{
    checkpoint_path, open_sled, remove_dir, resident_mib, DerivedFrom, Shared, WriterHandle,
};
use super::writer::{forget_purged_strings, replay, resume_erasures, writer_loop};
use crate::error::{io_err, Error, Result};
use crate::log::{self, Log};
use crate::model::*;
use crate::state::checkpoint;
use crate::state::State;
use crate::text::TextIndex;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// Opens the store in `config.dir`, replaying the log into the derived
/// state (from the last checkpoint when there is a valid one).
pub(super) fn open(config: Config) -> Result<(Arc<Shared>, WriterHandle)> {
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
        return finish_open(config, db, meta, log, last, t, c, loading);
    }
    if text_covered.is_none() && last.is_some() {
        text_covered = None;
    }
    finish_open(config, db, meta, log, last, text, text_covered, loading)
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
) -> Result<(Arc<Shared>, WriterHandle)> {
    let dir = config.dir.clone();
    let started = std::time::Instant::now();
    // A checkpoint is usable when it is not ahead of the log, and not
    // ahead of the text index (documents are produced by replay). A
    // panic while loading it is a checkpoint that does not load.
    let loaded = loading.join().ok().flatten();
    let waited = started.elapsed();
    let window_ms = i64::from(config.attribution_window_hours) * 3_600_000;
    let (mut state, derived_from, read) = match loaded {
        Some(l) if l.state.attribution_window_ms != window_ms => {
            tracing::info!(
                "the attribution window changed since the checkpoint; replaying the log"
            );
            (State::new(), DerivedFrom::Log, Duration::ZERO)
        }
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
    state.attribution_window_ms = window_ms;
    // Sends replayed now are rendered with every definition known.
    state.templates = std::sync::Arc::new(super::templates::load_catalog(&db)?);
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
        closing: std::sync::atomic::AtomicBool::new(false),
        changes: Mutex::new(None),
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
    Ok((shared, (tx, handle)))
}

/// Opens the text index, waiting up to 3 s for a store of this directory
/// that was dropped without `close` to release its writer's lock (as
/// `open_sled` waits for sled's).
pub(super) fn open_text(
    path: &Path,
    commit_interval: Duration,
) -> Result<(TextIndex, Option<Seq>)> {
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

/// A checkpoint loaded into a state, not yet checked against the log.
pub(super) struct LoadedCheckpoint {
    state: State,
    derived_from: DerivedFrom,
    /// How long reading and loading it took.
    read: Duration,
}

/// The state the checkpoint at `path` holds; `None` when there is none or
/// it does not load (then the log is replayed: it is derived data).
pub(super) fn load_checkpoint(path: &Path) -> Option<LoadedCheckpoint> {
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
