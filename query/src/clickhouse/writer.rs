//! The group commit of inputs into ClickHouse, and the writer tag.
//!
//! ClickHouse wants few large inserts, not one per webhook: a thread takes
//! every append queued while the previous insert ran and writes them as
//! one `INSERT` (one block: all of it is stored or none). Each caller is
//! answered once ClickHouse confirmed the insert (on a cluster, once every
//! shard did: `insert_distributed_sync`), so an acknowledged input is in
//! ClickHouse, whatever happens to this process after.
//!
//! Sequence numbers: `seq = ms << 20 | tag << 8 | n`: the time of receipt
//! in milliseconds, the process's writer tag (12 bits, claimed in the
//! `writers` table at open and renewed every minute, free again after ten
//! minutes of silence), and a counter within the millisecond (past 256 the
//! millisecond moves on). They order by time of receipt across processes,
//! and two processes never hand out the same one while each holds its tag.
//! Tag 0 is `ticks migrate`'s.

use super::client::ChError;
use super::derive::{derive, derive_all, Ids};
use super::inputs::{input_row, INPUT_COLUMNS};
use super::rowbinary::Rows;
use super::shared::{unavailable, Shared};
use crate::backend::BackendResult;
use crate::error::QueryError;
use std::collections::BTreeSet;
use std::hash::{BuildHasher, Hasher};

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use ticks_engine::{AppendOutcome, Input, Seq};

/// The `writer` column of inputs copied by `ticks migrate`.
pub(super) const MIGRATION_WRITER: u64 = 0;
/// A tag is another process's while its last claim is this recent.
pub(super) const TAG_LEASE_MS: i64 = 10 * 60 * 1000;
/// How often a process renews its claim.
const TAG_RENEW: Duration = Duration::from_secs(60);
/// Most inputs in one insert.
const MAX_GROUP: usize = 16_384;

fn now_ms() -> i64 {
    ticks_ingest::now_ms()
}

/// A random number from the standard library's per-process hash keys
/// (nothing here needs more than distinct values across processes).
fn random_u64(salt: u64) -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(salt);
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.finish()
}

/// Hands out sequence numbers for one tag.
struct Seqs {
    tag: u64,
    last_ms: i64,
    n: u64,
}

impl Seqs {
    fn next(&mut self, received_ms: i64) -> u64 {
        if received_ms > self.last_ms {
            self.last_ms = received_ms;
            self.n = 0;
        } else if self.n == 255 {
            self.last_ms += 1;
            self.n = 0;
        } else {
            self.n += 1;
        }
        ((self.last_ms.max(0) as u64) << 20) | (self.tag << 8) | self.n
    }
}

type Done = Box<dyn FnOnce(BackendResult<Vec<AppendOutcome>>) + Send>;

enum Op {
    Append(Vec<Input>, Done),
    /// A sequence number for a record that is not an input (a purge's).
    NextSeq(mpsc::Sender<u64>),
    /// Inputs copied by `ticks migrate`: stored, not derived (see
    /// `DeriveAll`).
    Migrated(Vec<(Seq, Input)>, mpsc::Sender<Result<(), QueryError>>),
    /// Every entry derived from every stored input in one fold.
    DeriveAll(usize, Progress, mpsc::Sender<Result<usize, QueryError>>),
    /// The entries of these keys (and their people's) derived again.
    Rederive(Vec<String>, mpsc::Sender<Result<(), QueryError>>),
}

/// Told how many inputs a whole-store fold has read so far.
pub(super) type Progress = Box<dyn FnMut(u64) + Send>;

/// The writer thread and its queue.
pub(super) struct Writer {
    tx: Mutex<Option<mpsc::Sender<Op>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    tag: u64,
}

impl Writer {
    /// Claims a tag and starts the thread.
    pub(super) fn start(shared: Arc<Shared>) -> Result<Writer, QueryError> {
        let writer_id = random_u64(1) | 1;
        let tag = claim_tag(&shared, writer_id)?;
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("ticks-clickhouse".into())
            .spawn(move || run(&shared, rx, tag, writer_id))
            .map_err(|e| QueryError::Backend(format!("starting the ClickHouse writer: {e}")))?;
        Ok(Writer {
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            tag,
        })
    }

    pub(super) fn tag(&self) -> u64 {
        self.tag
    }

    fn send(&self, op: Op) -> Result<(), Op> {
        let tx = self.tx.lock().ok().and_then(|t| t.clone());
        match tx {
            Some(tx) => tx.send(op).map_err(|e| e.0),
            None => Err(op),
        }
    }

    /// Queues `inputs`; `done` is called once they are stored (or not).
    pub(super) fn submit_then(&self, inputs: Vec<Input>, done: Done) {
        if let Err(Op::Append(_, done)) = self.send(Op::Append(inputs, done)) {
            done(Err(QueryError::Unavailable(
                "the ClickHouse writer stopped".into(),
            )));
        }
    }

    /// Queues `inputs`; the answer comes on the returned channel.
    pub(super) fn submit(
        &self,
        inputs: Vec<Input>,
    ) -> mpsc::Receiver<BackendResult<Vec<AppendOutcome>>> {
        let (tx, rx) = mpsc::channel();
        self.submit_then(
            inputs,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        rx
    }

    /// Sends the writer thread `op` made with a reply channel, and waits
    /// for the reply.
    fn ask<T>(&self, op: impl FnOnce(mpsc::Sender<T>) -> Op) -> Result<T, QueryError> {
        let stopped = || QueryError::Unavailable("the ClickHouse writer stopped".into());
        let (tx, rx) = mpsc::channel();
        self.send(op(tx)).map_err(|_| stopped())?;
        rx.recv().map_err(|_| stopped())
    }

    pub(super) fn append_migrated(&self, inputs: Vec<(Seq, Input)>) -> Result<(), QueryError> {
        self.ask(|tx| Op::Migrated(inputs, tx))?
    }

    /// Derives every entry from every stored input in one fold (on this
    /// thread: it holds the process's id blocks).
    pub(super) fn derive_all(
        &self,
        inputs_per_fold: usize,
        progress: Progress,
    ) -> Result<usize, QueryError> {
        self.ask(|tx| Op::DeriveAll(inputs_per_fold, progress, tx))?
    }

    /// Derives again the entries of `keys` and of their people (on this
    /// thread, between groups of writes: it holds the process's id
    /// blocks).
    pub(super) fn rederive(&self, keys: Vec<String>) -> Result<(), QueryError> {
        self.ask(|tx| Op::Rederive(keys, tx))?
    }

    /// A sequence number from this process's tag, for a purge record.
    pub(super) fn next_seq(&self) -> Result<Seq, QueryError> {
        self.ask(Op::NextSeq).map(Seq)
    }

    /// Stops the thread once it wrote what was queued.
    pub(super) fn stop(&self) {
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        let handle = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

/// Claims a tag no other live process holds: a claim is written, then the
/// tag's recent claims are read; another process's claim sends this one
/// to another tag. (Of two processes claiming one tag at once, the one
/// that reads second sees both claims and moves on; the first may too.)
fn claim_tag(shared: &Shared, writer_id: u64) -> Result<u64, QueryError> {
    let t = shared.table("writers");
    for attempt in 0..64u64 {
        let tag = 1 + random_u64(attempt + 2) % 4095;
        renew(shared, tag, writer_id).map_err(unavailable)?;
        let others = shared
            .client
            .query_text(&format!(
                "SELECT count() FROM {t} WHERE tag = {tag} AND writer != {writer_id} AND seen_ms > {}",
                now_ms() - TAG_LEASE_MS
            ))
            .map_err(unavailable)?;
        if others.trim() == "0" {
            return Ok(tag);
        }
    }
    Err(QueryError::Backend(
        "no free ClickHouse writer tag after 64 tries: are 4,095 Ticks processes writing?".into(),
    ))
}

fn renew(shared: &Shared, tag: u64, writer_id: u64) -> Result<(), ChError> {
    let mut rows = Rows::new();
    rows.u64(tag).u64(writer_id).i64(now_ms());
    shared.insert("writers", "tag, writer, seen_ms", &rows)
}

fn run(shared: &Shared, rx: mpsc::Receiver<Op>, tag: u64, writer_id: u64) {
    let mut seqs = Seqs {
        tag,
        last_ms: 0,
        n: 0,
    };
    let mut migrated = Seqs {
        tag: 0,
        last_ms: 0,
        n: 0,
    };
    let mut renewed = Instant::now();
    let mut ids = Ids::new(writer_id);
    loop {
        let first = match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(op) => op,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                // Idle: renew the tag, and see whether a failing server is back.
                if renewed.elapsed() >= TAG_RENEW && renew(shared, tag, writer_id).is_ok() {
                    renewed = Instant::now();
                }
                if shared.is_faulted() && shared.client.query("SELECT 1").is_ok() {
                    shared.set_fault(None);
                }
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        let mut appends = Vec::new();
        let mut queued = 0;
        let mut op = Some(first);
        while let Some(next) = op.take() {
            match next {
                Op::Append(inputs, done) => {
                    queued += inputs.len();
                    appends.push((inputs, done));
                }
                Op::NextSeq(reply) => {
                    let _ = reply.send(seqs.next(now_ms()));
                }
                Op::Migrated(inputs, reply) => {
                    let _ = reply.send(write_migrated(shared, &mut migrated, inputs));
                }
                Op::Rederive(keys, reply) => {
                    let idents = keys.into_iter().map(|k| format!("k:{k}")).collect();
                    let _ = reply.send(derive(shared, &mut ids, idents).map_err(unavailable));
                }
                Op::DeriveAll(per_fold, mut progress, reply) => {
                    let _ = reply.send(
                        derive_all(shared, &mut ids, per_fold, &mut *progress).map_err(unavailable),
                    );
                }
            }
            if queued < MAX_GROUP {
                op = rx.try_recv().ok();
            }
        }
        if !appends.is_empty() {
            write_group(shared, &mut seqs, &mut ids, writer_id, appends);
        }
    }
}

/// Stores a group's rows, then derives what they change; `Unavailable`
/// (a 503) for any failure, so that nothing is acknowledged that is not
/// stored and derived.
fn store_and_derive(
    shared: &Shared,
    ids: &mut Ids,
    rows: &Rows,
    idents: BTreeSet<String>,
) -> Result<(), QueryError> {
    let result = shared
        .insert("inputs", INPUT_COLUMNS, rows)
        .and_then(|()| derive(shared, ids, idents));
    match result {
        Ok(()) => {
            shared.set_fault(None);
            Ok(())
        }
        Err(e) => {
            let message = e.to_string();
            shared.set_fault(Some(message.clone()));
            Err(QueryError::Unavailable(message))
        }
    }
}

fn write_group(
    shared: &Shared,
    seqs: &mut Seqs,
    ids: &mut Ids,
    writer_id: u64,
    group: Vec<(Vec<Input>, Done)>,
) {
    let mut rows = Rows::new();
    let mut idents = BTreeSet::new();
    let mut answers = Vec::with_capacity(group.len());
    for (inputs, done) in group {
        let mut outcomes = Vec::with_capacity(inputs.len());
        let mut failed = None;
        for input in &inputs {
            let seq = seqs.next(input.received_ms);
            if let Err(e) = input_row(&mut rows, &mut idents, seq, writer_id, 0, input) {
                failed = Some(e);
                break;
            }
            outcomes.push(AppendOutcome {
                seq: Some(Seq(seq)),
                stored: input.events.len(),
                duplicates: 0,
                entries: Vec::new(),
            });
        }
        match failed {
            // An input that cannot be encoded fails its own caller only.
            Some(e) => done(Err(e)),
            None => answers.push((outcomes, done)),
        }
    }
    if answers.is_empty() {
        return;
    }
    match store_and_derive(shared, ids, &rows, idents) {
        Ok(()) => {
            for (outcomes, done) in answers {
                done(Ok(outcomes));
            }
        }
        Err(e) => {
            let message = e.to_string();
            for (_, done) in answers {
                done(Err(QueryError::Unavailable(message.clone())));
            }
        }
    }
}

/// Stores copied inputs without deriving their entries: `ticks migrate`
/// derives them all at the end, in one fold (`derive_all`).
fn write_migrated(
    shared: &Shared,
    seqs: &mut Seqs,
    inputs: Vec<(Seq, Input)>,
) -> Result<(), QueryError> {
    let mut rows = Rows::new();
    let mut idents = BTreeSet::new();
    for (origin, input) in &inputs {
        let seq = seqs.next(input.received_ms);
        input_row(
            &mut rows,
            &mut idents,
            seq,
            MIGRATION_WRITER,
            origin.0,
            input,
        )?;
    }
    if rows.is_empty() {
        return Ok(());
    }
    shared
        .insert("inputs", INPUT_COLUMNS, &rows)
        .map_err(unavailable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_order_by_time_and_never_repeat_within_a_tag() {
        let mut s = Seqs {
            tag: 7,
            last_ms: 0,
            n: 0,
        };
        let mut seen = std::collections::BTreeSet::new();
        let mut last = 0;
        for i in 0..1000 {
            // 1000 inputs in two milliseconds, then one from the past.
            let ms = if i < 500 { 1_000 } else { 1_001 };
            let seq = s.next(ms);
            assert!(seq > last, "{seq} after {last}");
            assert!(seen.insert(seq));
            assert_eq!((seq >> 8) & 0xfff, 7);
            last = seq;
        }
        let late = s.next(5);
        assert!(late > last, "a clock step back never reuses a number");
    }
}
