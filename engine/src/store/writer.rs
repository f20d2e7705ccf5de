//! The single writer: group commit (classify every op of a group against
//! the state, write all its records with one flush, then apply and answer),
//! purges and their erasure, checkpoints, and recovery after a failed
//! write.

use super::shared::{checkpoint_path, now_ms, open_sled, purge_index_key, Plan, Shared, WriteOp};
use crate::error::{io_err, Error, Result};
use crate::log::{self, erase, keys, Log, Record};
use crate::model::*;
use crate::state::checkpoint;
use crate::state::State;
use crate::text::TextIndex;
use roaring::RoaringBitmap;
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::time::Duration;

/// Most inputs one write group takes: bounds the latency a group adds.
pub(super) const MAX_GROUP_INPUTS: usize = 4096;

/// Folds one decoded record into a state; sends its text documents to the
/// index when given one.
pub(super) fn apply_record(
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
            let docs = state.apply(seq, rec.received_ms, &events);
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

pub(super) fn replay(
    log: &Log,
    state: &mut State,
    text: &TextIndex,
    text_covered: Option<Seq>,
) -> Result<()> {
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
pub(super) fn writer_loop(shared: Arc<Shared>, rx: Receiver<WriteOp>) {
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
pub(super) const RECOVERY_FIRST_WAIT: Duration = Duration::from_millis(100);
pub(super) const RECOVERY_LAST_WAIT: Duration = Duration::from_secs(5);
/// The `meta` key a recovery writes (and flushes) to prove the disk takes
/// writes again.
pub(super) const PROBE_KEY: &[u8] = b"probe";

/// Answers an op without running it: writes are failing.
pub(super) fn refuse(op: WriteOp, reason: &str) {
    let err = || Error::Unavailable(reason.to_string());
    match op {
        WriteOp::Append(_, reply) => reply.send(Err(err())),
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
pub(super) fn recover(shared: &Shared) -> Result<()> {
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

/// Writes one group: classify against the state ([`plan_group`]), write
/// every record and flush once, then apply and answer ([`apply_group`]).
/// A failure answers every caller of the group with the error and applies
/// nothing.
pub(super) fn write_group(shared: &Shared, mut ops: Vec<WriteOp>) {
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
    let planned = plan_group(shared, &meta, &mut ops);
    let written = planned.and_then(|(records, plans, next)| {
        shared.log.write_durable(&records)?;
        Ok((plans, next))
    });
    match written {
        Ok((plans, next)) => {
            shared.next_seq.store(next, Ordering::SeqCst);
            apply_group(shared, ops, plans);
        }
        Err(e) => {
            tracing::error!("log write failed; its writes are refused and the store recovers: {e}");
            // After a failed write sled's state is unknown: nothing is
            // written on top of it until `recover` has reopened it. This
            // group's callers are told; nothing of it was acknowledged or
            // applied.
            let reason = format!("log write failed: {e}");
            shared.write_failures.fetch_add(1, Ordering::SeqCst);
            *shared.fault.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason.clone());
            for op in ops {
                refuse(op, &reason);
            }
        }
    }
}

/// The records of a group and what each op will apply, classified against
/// the state (with an overlay for what earlier ops of the group add), with
/// the sequence number after the group. A purge's erasure marker is put in
/// `meta` here, to be made durable by the group's flush.
#[allow(clippy::type_complexity)]
fn plan_group(
    shared: &Shared,
    meta: &sled::Tree,
    ops: &mut [WriteOp],
) -> Result<(Vec<(Seq, Vec<u8>)>, Vec<Plan>, u64)> {
    let mut next = shared.next_seq.load(Ordering::SeqCst);
    let mut records: Vec<(Seq, Vec<u8>)> = Vec::new();
    let mut plans: Vec<Plan> = Vec::new();
    let state = shared.state.read().unwrap_or_else(|p| p.into_inner());
    let mut overlay = state.overlay();
    for op in ops {
        let mut outcomes = Vec::new();
        let mut applies = Vec::new();
        match op {
            WriteOp::Append(prepared, _) => {
                for p in prepared {
                    let assignments = state.classify(&mut overlay, &p.events, p.received_ms);
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
                    records.push((seq, Log::encode_input(p, &assignments)?));
                    let mut entries: Vec<EntryId> = kept.iter().map(|(id, _)| *id).collect();
                    entries.dedup();
                    outcomes.push(AppendOutcome {
                        seq: Some(seq),
                        stored: kept.len(),
                        duplicates,
                        entries,
                    });
                    applies.push((seq, p.received_ms, kept));
                }
            }
            WriteOp::Purge(record, _, _) => {
                let bytes = log::encode_purge(record)?;
                let seq = Seq(next);
                next += 1;
                // Made durable by the same flush as the record: the next
                // open finishes an erasure a crash interrupted.
                meta.insert(erase::pending_key(seq), &[])?;
                meta.insert(purge_index_key(seq), &[])?;
                records.push((seq, bytes));
                applies.push((seq, 0, Vec::new()));
            }
        }
        plans.push((outcomes, applies));
    }
    Ok((records, plans, next))
}

/// Applies a durable group to the state, hands its documents to the text
/// index, erases its purges' content and answers every caller.
fn apply_group(shared: &Shared, ops: Vec<WriteOp>, plans: Vec<Plan>) {
    let mut docs_by_seq = Vec::new();
    let mut purge_periods: Vec<(Seq, BTreeSet<u32>)> = Vec::new();
    {
        let mut state = shared.state.write().unwrap_or_else(|p| p.into_inner());
        for (op, (_, applies)) in ops.iter().zip(&plans) {
            match op {
                WriteOp::Append(..) => {
                    for (seq, received_ms, events) in applies {
                        docs_by_seq.push((*seq, state.apply(*seq, *received_ms, events)));
                    }
                }
                WriteOp::Purge(_, ids, _) => {
                    if let Some((seq, _, _)) = applies.first() {
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
    if let Some(changed) = shared
        .changes
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_mut()
    {
        for (_, applies) in &plans {
            for (_, _, events) in applies {
                changed.extend(events.iter().map(|(id, _)| id.0));
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
            WriteOp::Append(_, reply) => reply.send(Ok(outcomes)),
            WriteOp::Purge(_, ids, reply) => {
                let result = match applies.first() {
                    Some((seq, _, _)) => {
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

/// Makes a purge's content unrecoverable from the data directory (see the
/// `erase` module): text documents merged away, log periods re-keyed, the
/// checkpoint rewritten. `periods` are where the content lies, when known.
pub(super) fn erase_content(
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
pub(super) fn forget_purged_strings(shared: &Shared) {
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
pub(super) fn checkpoint_now(shared: &Shared) -> Result<()> {
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

/// Finishes the erasure of every purge a crash interrupted.
pub(super) fn resume_erasures(shared: &Shared) -> Result<()> {
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
