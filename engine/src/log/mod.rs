//! The log: the append-only truth of a store, on sled.
//!
//! - `record`: the byte format of one record (an input with its parsed
//!   events, or a purge), encoded and decoded.
//! - `blocks`: records stored a few at a time, compressed and sealed as a
//!   block under the sequence number of the first.
//! - `keys`: the per-period keys blocks are encrypted with, so that a purge
//!   can destroy what sled keeps.
//! - `erase`: rewriting a period without purged content, under a new key.
//! - this module: [`Log`], the sled tree of blocks: group-commit writes,
//!   reads by sequence number, iteration in log order, rewrites.

pub(crate) mod blocks;
pub(crate) mod erase;
pub(crate) mod keys;
mod record;

pub(crate) use record::{decode_header, encode_purge, is_input, PreparedInput, STORE_FORMAT};
pub use record::{train_dictionary, InputRecord, PurgeRecord, Record, FORMAT_VERSION};
// The record codec's helpers, for the log's own reading and writing.
use record::*;

use crate::error::{Error, Result};
use crate::model::{EntryId, Event, Input, Seq, Source};
use blocks::{BlockBuilder, BlockView, SealedHead};
use keys::Keyring;
use std::sync::{Mutex, RwLock};

/// The sled tree that holds the log, with the keys that encrypt its
/// records. Records sit in blocks of consecutive sequence numbers (see the
/// `blocks` module), keyed by the big-endian sequence number of each
/// block's first slot, so sled's order is log order.
pub(crate) struct Log {
    /// The sled database and its log tree. `None` while the store recovers
    /// from a failed write: sled keeps the first I/O error it meets and
    /// refuses every later write until it is opened again, and it opens
    /// again only once every handle of the failed one is dropped (see
    /// [`Log::release`] and [`Log::attach`]).
    handles: RwLock<Option<Handles>>,
    keys: RwLock<Keyring>,
    encrypt: bool,
    /// zstd level of sealed blocks.
    level: i32,
    /// The newest block while it is not full: the next group commit adds
    /// to it (sealing and rewriting its value) instead of starting a block
    /// of its own, so that single webhooks do not make one key each. `None`
    /// when the next record starts a block (after a full one, a purge's
    /// rewrite, or a failed write).
    tail: Mutex<Option<BlockBuilder>>,
    /// Records in the log, counted on first use and then kept.
    records: Mutex<Option<u64>>,
}

/// What [`Log`] holds of sled.
#[derive(Clone)]
struct Handles {
    db: sled::Db,
    tree: sled::Tree,
}

pub(crate) fn seq_key(seq: Seq) -> [u8; 8] {
    seq.0.to_be_bytes()
}

fn key_seq(key: &[u8]) -> Result<Seq> {
    let arr: [u8; 8] = key.try_into().map_err(|_| Error::Corrupt {
        seq: 0,
        reason: "log key is not 8 bytes".into(),
    })?;
    Ok(Seq(u64::from_be_bytes(arr)))
}

/// The header of the (open) block stored under `key`.
fn block_view(key: Seq, value: &[u8]) -> Result<BlockView<'_>> {
    BlockView::parse(value).ok_or_else(|| corrupt(key, "damaged block header"))
}

/// How many records a stored value holds, read from its header alone.
fn records_held(key: Seq, value: &[u8]) -> Result<u64> {
    if let Some(head) = SealedHead::parse(value) {
        return Ok(head.records as u64);
    }
    let view = block_view(key, value)?;
    Ok((0..view.slots())
        .filter(|&i| view.slot(i).is_some())
        .count() as u64)
}

/// Every record of the values of a sled range, in log order, from `from`
/// on: blocks are opened into their records (a sealed one decrypted and
/// decompressed once).
struct Records<'a> {
    log: &'a Log,
    /// `None` when the log was detached from sled (`pending` says so).
    values: Option<sled::Iter>,
    from: Seq,
    /// The open block being read, with the next slot to look at.
    block: Option<(Seq, sled::IVec, usize)>,
    /// An error to report first (from finding the start).
    pending: Option<Error>,
}

impl Iterator for Records<'_> {
    type Item = Result<(Seq, sled::IVec)>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.pending.take() {
            return Some(Err(e));
        }
        loop {
            if let Some((key, value, next)) = &mut self.block {
                let view = match block_view(*key, value) {
                    Ok(view) => view,
                    Err(e) => {
                        self.block = None;
                        return Some(Err(e));
                    }
                };
                while *next < view.slots() {
                    let i = *next;
                    *next += 1;
                    let seq = Seq(key.0 + i as u64);
                    if seq < self.from {
                        continue;
                    }
                    if let Some((at, len)) = view.slot(i) {
                        return Some(Ok((seq, value.subslice(at, len))));
                    }
                }
                self.block = None;
            }
            let (key, value) = match self.values.as_mut()?.next()? {
                Ok(kv) => kv,
                Err(e) => return Some(Err(e.into())),
            };
            let key = match key_seq(&key) {
                Ok(k) => k,
                Err(e) => return Some(Err(e)),
            };
            let value = match self.log.open_value(key, value) {
                Ok(v) => v,
                Err(e) => return Some(Err(e)),
            };
            if blocks::is_block(&value) {
                self.block = Some((key, value, 0));
            } else {
                return Some(Err(corrupt(key, "a log value that is not a block")));
            }
        }
    }
}

impl Log {
    /// Opens the log tree of `db` with the keyring at `keyring`; new blocks
    /// are compressed at zstd `level`, and encrypted if `encrypt`.
    pub(crate) fn open(
        db: &sled::Db,
        keyring: &std::path::Path,
        encrypt: bool,
        level: i32,
    ) -> Result<Log> {
        let log = Log {
            handles: RwLock::new(None),
            keys: RwLock::new(Keyring::load(keyring)?),
            encrypt,
            level,
            tail: Mutex::new(None),
            records: Mutex::new(None),
        };
        log.attach(db)?;
        Ok(log)
    }

    /// Works on the log tree of `db` from now on, as if just opened: a
    /// block the last writer left open is added to, and the record count
    /// is taken again on first use.
    pub(crate) fn attach(&self, db: &sled::Db) -> Result<()> {
        let tree = db.open_tree("log")?;
        let mut tail = None;
        if let Some((k, v)) = tree.last()? {
            let first = key_seq(&k)?;
            // A last block that does not open is left as it is (reading it
            // reports the damage); new records start a block of their own.
            tail = match self.load_block(first, &v) {
                Ok(block) => block,
                Err(e) => {
                    tracing::warn!("the log's last block is not added to: {e}");
                    None
                }
            };
        }
        *self.tail() = tail.filter(|b| !b.is_empty() && b.accepts(b.next_seq(), 0));
        *self.record_count() = None;
        *self.handles.write().unwrap_or_else(|p| p.into_inner()) = Some(Handles {
            db: db.clone(),
            tree,
        });
        Ok(())
    }

    /// Drops the log's handles of sled, so that it can be opened again;
    /// until [`Log::attach`], every read and write answers
    /// [`Error::Unavailable`].
    pub(crate) fn release(&self) {
        *self.tail() = None;
        *self.handles.write().unwrap_or_else(|p| p.into_inner()) = None;
    }

    fn handles(&self) -> Result<Handles> {
        self.handles
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| Error::Unavailable("the log is being reopened".into()))
    }

    /// The log's sled tree.
    fn tree(&self) -> Result<sled::Tree> {
        Ok(self.handles()?.tree)
    }

    fn ring(&self) -> std::sync::RwLockReadGuard<'_, Keyring> {
        self.keys.read().unwrap_or_else(|p| p.into_inner())
    }

    fn ring_mut(&self) -> std::sync::RwLockWriteGuard<'_, Keyring> {
        self.keys.write().unwrap_or_else(|p| p.into_inner())
    }

    fn tail(&self) -> std::sync::MutexGuard<'_, Option<BlockBuilder>> {
        self.tail.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn record_count(&self) -> std::sync::MutexGuard<'_, Option<u64>> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The newest key of `period`, made and saved first if it has none.
    fn period_key(&self, period: u32) -> Result<(u32, keys::KeyBytes)> {
        // Readers decode under the read lock; the write lock is taken only
        // for a period's first block, when its key is made.
        if let Some(k) = self.ring().newest(period) {
            return Ok(k);
        }
        let mut ring = self.ring_mut();
        let (generation, key, created) = ring.current(period);
        if created {
            ring.save()?;
        }
        Ok((generation, key))
    }

    /// The stored value of a block: its open form compressed and, when the
    /// store encrypts, sealed under the newest key of its period.
    fn seal(&self, block: &BlockBuilder) -> Result<Vec<u8>> {
        let frame = compress(&block.encode(), self.level)?;
        let key = if self.encrypt {
            Some(self.period_key(keys::period_of(block.first().0))?)
        } else {
            None
        };
        let mut out = block.sealed_head(key.map_or(0, |(g, _)| g)).encode();
        match key {
            Some((_, k)) => keys::seal_onto(&k, &mut out, &frame)?,
            None => out.extend_from_slice(&frame),
        }
        Ok(out)
    }

    /// The open form of the sealed block stored under `key`.
    fn open_sealed(&self, key: Seq, value: &[u8]) -> Result<sled::IVec> {
        let head = SealedHead::parse(value).ok_or_else(|| corrupt(key, "damaged block header"))?;
        if head.first != key {
            return Err(corrupt(key, "a block stored under another key"));
        }
        let (aad, body) = value.split_at(blocks::SEALED_HEAD);
        let frame = if head.generation == 0 {
            decompress(key, body)?
        } else {
            let ring = self.ring();
            let k = ring
                .get(keys::period_of(key.0), head.generation)
                .ok_or_else(|| corrupt(key, "its encryption key was destroyed"))?;
            let compressed = keys::open(k, aad, body)
                .ok_or_else(|| corrupt(key, "the block does not authenticate"))?;
            drop(ring);
            decompress(key, &compressed)?
        };
        if block_view(key, &frame)?.slots() != head.slots {
            return Err(corrupt(key, "block header and content disagree"));
        }
        Ok(sled::IVec::from(frame))
    }

    /// A stored value as an open block to change.
    fn load_block(&self, key: Seq, value: &sled::IVec) -> Result<Option<BlockBuilder>> {
        let open = self.open_value(key, value.clone())?;
        let block = BlockBuilder::from_value(key, &open)
            .ok_or_else(|| corrupt(key, "damaged block header"))?;
        Ok(Some(block))
    }

    /// A stored value with its sealed block opened.
    fn open_value(&self, key: Seq, value: sled::IVec) -> Result<sled::IVec> {
        if blocks::is_sealed(&value) {
            self.open_sealed(key, &value)
        } else {
            Ok(value)
        }
    }

    /// The record of `seq` in `open` (stored under `key`, sealed blocks
    /// opened), if it holds one.
    fn record_in(key: Seq, open: &sled::IVec, seq: Seq) -> Result<Option<sled::IVec>> {
        let view = block_view(key, open)?;
        let slot = usize::try_from(seq.0 - key.0).unwrap_or(usize::MAX);
        Ok(view.slot(slot).map(|(at, len)| open.subslice(at, len)))
    }

    /// The records of `seqs` (ascending) that the log holds, with their
    /// sequence numbers: each block is opened once for all the records it
    /// holds, not once per record.
    pub(crate) fn get_many(&self, seqs: &[Seq]) -> Result<Vec<(Seq, sled::IVec)>> {
        let mut found = Vec::with_capacity(seqs.len());
        let mut current: Option<(Seq, u64, sled::IVec)> = None;
        for &seq in seqs {
            let held = current
                .as_ref()
                .is_some_and(|(key, span, _)| seq >= *key && seq.0 - key.0 < *span);
            if !held {
                current = match self.holder(seq)? {
                    Some((key, value)) => {
                        let open = self.open_value(key, value)?;
                        let span = block_view(key, &open)?.slots() as u64;
                        Some((key, span, open))
                    }
                    None => None,
                };
            }
            if let Some((key, _, open)) = &current {
                if let Some(record) = Self::record_in(*key, open, seq)? {
                    found.push((seq, record));
                }
            }
        }
        Ok(found)
    }

    /// Encodes an input record, given which entry each of its events went
    /// to: a version 3 record, plain until its block is sealed (so the
    /// record itself does not depend on its sequence number).
    pub(crate) fn encode_input(
        input: &PreparedInput,
        assignments: &[Option<EntryId>],
    ) -> Result<Vec<u8>> {
        finish_record(input.header(assignments), &input.payload)
    }

    /// Decodes one log record.
    pub(crate) fn decode(&self, seq: Seq, bytes: &[u8]) -> Result<Record> {
        if bytes.len() < 2 {
            return Err(corrupt(seq, "record shorter than 2 bytes"));
        }
        check_version(bytes)?;
        match bytes[1] {
            KIND_INPUT => {
                let header = decode_header(seq, bytes)?;
                let (source, received_ms) = input_meta(seq, bytes)?;
                let payload = header.payload;
                let (raw, events) = decode_payload(seq, payload)?;
                if events.len() != header.assignments.len() {
                    return Err(corrupt(seq, "event count differs from assignments"));
                }
                Ok(Record::Input(InputRecord {
                    source,
                    received_ms,
                    raw,
                    events: header.assignments.into_iter().zip(events).collect(),
                }))
            }
            KIND_PURGE => {
                let p = decode_purge(&bytes[2..])
                    .map_err(|e| corrupt(seq, &format!("purge record: {e}")))?;
                Ok(Record::Purge(p))
            }
            k => Err(corrupt(seq, &format!("unknown record kind {k}"))),
        }
    }

    /// Only the source, receive time and raw bytes of an input record
    /// (`None` for a purge record): the events are not decoded.
    pub(crate) fn decode_raw(
        &self,
        seq: Seq,
        bytes: &[u8],
    ) -> Result<Option<(Source, i64, Vec<u8>)>> {
        if bytes.len() < 2 {
            return Err(corrupt(seq, "record shorter than 2 bytes"));
        }
        check_version(bytes)?;
        if !is_input(bytes) {
            return Ok(None);
        }
        let header = decode_header(seq, bytes)?;
        let (source, received_ms) = input_meta(seq, bytes)?;
        let plain = header.payload;
        let raw = plain[4..raw_end(seq, plain)?].to_vec();
        Ok(Some((source, received_ms, raw)))
    }

    /// Re-encodes a decoded input record (used by purges for redacted
    /// records).
    pub(crate) fn reencode(rec: &InputRecord) -> Result<Vec<u8>> {
        let assignments: Vec<Option<EntryId>> = rec.events.iter().map(|(a, _)| *a).collect();
        let events: Vec<Event> = rec.events.iter().map(|(_, e)| e.clone()).collect();
        let prepared = PreparedInput::prepare(Input {
            source: rec.source,
            received_ms: rec.received_ms,
            raw: rec.raw.clone(),
            events,
        })?;
        Self::encode_input(&prepared, &assignments)
    }

    /// What a re-key of its period writes for a record that stays: the
    /// record for its block to be sealed again under the period's new key
    /// or `None` when nothing needs writing (the store does not encrypt).
    pub(crate) fn reseal(&self, bytes: &[u8]) -> Result<Option<Vec<u8>>> {
        if !self.encrypt {
            return Ok(None);
        }
        Ok(Some(bytes.to_vec()))
    }

    /// Makes every write so far durable.
    pub(crate) fn flush(&self) -> Result<()> {
        self.handles()?.db.flush()?;
        Ok(())
    }

    /// Starts re-keying `period` (a new generation, saved); see `keys`.
    pub(crate) fn begin_rekey(&self, period: u32) -> Result<()> {
        if !self.encrypt {
            return Ok(());
        }
        let mut ring = self.ring_mut();
        let (_, changed) = ring.begin_rekey(period);
        if changed {
            ring.save()?;
        }
        Ok(())
    }

    /// Destroys the old keys of `period` once every record uses the new one.
    pub(crate) fn finish_rekey(&self, period: u32) -> Result<()> {
        if !self.encrypt {
            return Ok(());
        }
        let mut ring = self.ring_mut();
        ring.retire_old(period);
        ring.save()
    }

    /// Periods whose re-key was interrupted.
    pub(crate) fn rekeying(&self) -> Vec<u32> {
        self.ring().rekeying()
    }

    /// The key and value that hold `seq`'s record, if any value does: the
    /// last key at or before it (a block holds the sequence numbers from
    /// its key on).
    fn holder(&self, seq: Seq) -> Result<Option<(Seq, sled::IVec)>> {
        match self.tree()?.range(..=seq_key(seq)).next_back() {
            None => Ok(None),
            Some(item) => {
                let (k, v) = item?;
                Ok(Some((key_seq(&k)?, v)))
            }
        }
    }

    /// Replaces existing records (`Some`) or removes them (`None`), in one
    /// sled batch, without a flush. Blocks are rewritten whole and sealed
    /// under their period's newest key; a block left without records is
    /// removed. A sequence number that no value holds is written as a block
    /// of its own (or, for a removal, ignored).
    pub(crate) fn rewrite(&self, mut changes: Vec<(Seq, Option<Vec<u8>>)>) -> Result<()> {
        changes.sort_by_key(|(seq, _)| *seq);
        // Held throughout: the writer must not add to a block between our
        // reading it and writing it back.
        let mut tail = self.tail();
        let mut batch = sled::Batch::default();
        let mut removed = 0u64;
        let mut added = 0u64;
        let mut open: Option<BlockBuilder> = None;
        let mut rewritten: Vec<Seq> = Vec::new();
        let close = |block: BlockBuilder, batch: &mut sled::Batch| -> Result<()> {
            if block.is_empty() {
                batch.remove(&seq_key(block.first()));
            } else {
                batch.insert(&seq_key(block.first()), self.seal(&block)?);
            }
            Ok(())
        };
        for (seq, record) in changes {
            if open.as_ref().is_some_and(|b| seq >= b.next_seq()) {
                if let Some(b) = open.take() {
                    close(b, &mut batch)?;
                }
            }
            if open.is_none() {
                if let Some((key, value)) = self.holder(seq)? {
                    match self.load_block(key, &value)? {
                        Some(block) if seq < block.next_seq() => {
                            rewritten.push(key);
                            open = Some(block);
                        }
                        Some(_) | None => {}
                    }
                }
            }
            match (&mut open, record) {
                (Some(block), record) => {
                    let had = block.holds(seq);
                    let bytes = record.unwrap_or_default();
                    removed += u64::from(had && bytes.is_empty());
                    added += u64::from(!had && !bytes.is_empty());
                    block.set(seq, &bytes);
                }
                (None, Some(bytes)) => {
                    let mut block = BlockBuilder::new(seq);
                    block.push(&bytes);
                    batch.insert(&seq_key(seq), self.seal(&block)?);
                    added += 1;
                }
                (None, None) => {}
            }
        }
        if let Some(b) = open.take() {
            close(b, &mut batch)?;
        }
        // The writer starts a new block rather than add to a rewritten one.
        if tail
            .as_ref()
            .is_some_and(|t| rewritten.contains(&t.first()))
        {
            *tail = None;
        }
        // Under the count's lock, so that a count being taken sees each
        // change once (see `len`).
        let mut count = self.record_count();
        self.tree()?.apply_batch(batch)?;
        if let Some(n) = count.as_mut() {
            *n = (*n + added).saturating_sub(removed);
        }
        Ok(())
    }

    /// Iterates raw records of one period.
    pub(crate) fn iter_period(
        &self,
        period: u32,
    ) -> impl Iterator<Item = Result<(Seq, sled::IVec)>> + '_ {
        let start = u64::from(period) << keys::PERIOD_BITS;
        let end = start + (1u64 << keys::PERIOD_BITS);
        // No block spans two periods: the period's records are the values
        // keyed in it.
        let (values, pending) = match self.tree() {
            Ok(tree) => (
                Some(tree.range(seq_key(Seq(start))..seq_key(Seq(end)))),
                None,
            ),
            Err(e) => (None, Some(e)),
        };
        Records {
            log: self,
            values,
            from: Seq(start),
            block: None,
            pending,
        }
    }

    /// The last sequence number written, if any.
    pub(crate) fn last_seq(&self) -> Result<Option<Seq>> {
        let Some((k, v)) = self.tree()?.last()? else {
            return Ok(None);
        };
        let key = key_seq(&k)?;
        let slots = if let Some(head) = SealedHead::parse(&v) {
            head.slots
        } else {
            block_view(key, &v)?.slots()
        };
        Ok(Some(Seq(key.0 + slots.saturating_sub(1) as u64)))
    }

    /// Writes a group of records (consecutive sequence numbers, after every
    /// record written so far) and makes them durable with one fsync: the
    /// group commit that lets concurrent appends share a flush. Records go
    /// into the open tail block while it has room, then into new blocks;
    /// every block touched is sealed and written in one sled batch.
    pub(crate) fn write_durable(&self, records: &[(Seq, Vec<u8>)]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let handles = self.handles()?;
        let mut tail = self.tail();
        let mut batch = sled::Batch::default();
        let mut block = match tail.take() {
            Some(t) if t.accepts(records[0].0, records[0].1.len()) => t,
            _ => BlockBuilder::new(records[0].0),
        };
        for (seq, bytes) in records {
            if !block.accepts(*seq, bytes.len()) {
                batch.insert(&seq_key(block.first()), self.seal(&block)?);
                block = BlockBuilder::new(*seq);
            }
            block.push(bytes);
        }
        batch.insert(&seq_key(block.first()), self.seal(&block)?);
        {
            let mut count = self.record_count();
            handles.tree.apply_batch(batch)?;
            if let Some(n) = count.as_mut() {
                *n += records.len() as u64;
            }
        }
        handles.db.flush()?;
        if block.accepts(block.next_seq(), 0) {
            *tail = Some(block);
        }
        Ok(())
    }

    /// The record of `seq`, if the log holds it.
    pub(crate) fn get(&self, seq: Seq) -> Result<Option<sled::IVec>> {
        match self.holder(seq)? {
            Some((key, value)) => Self::record_in(key, &self.open_value(key, value)?, seq),
            None => Ok(None),
        }
    }

    /// Iterates raw records with a sequence number strictly after `after`.
    pub(crate) fn iter_after(
        &self,
        after: Option<Seq>,
    ) -> impl Iterator<Item = Result<(Seq, sled::IVec)>> + '_ {
        let from = match after {
            None => Some(Seq(0)),
            Some(s) => s.0.checked_add(1).map(Seq),
        };
        let tree = match self.tree() {
            Ok(tree) => tree,
            Err(e) => {
                return Records {
                    log: self,
                    values: None,
                    from: Seq(u64::MAX),
                    block: None,
                    pending: Some(e),
                }
            }
        };
        let (values, from, pending) = match from {
            None => {
                let end = seq_key(Seq(u64::MAX));
                (tree.range(end..end), Seq(u64::MAX), None)
            }
            Some(from) => {
                // The block that holds `from` may start before it.
                let (start, pending) = match self.holder(from) {
                    Ok(Some((key, _))) => (key, None),
                    Ok(None) => (from, None),
                    Err(e) => (from, Some(e)),
                };
                (tree.range(seq_key(start)..), from, pending)
            }
        };
        Records {
            log: self,
            values: Some(values),
            from,
            block: None,
            pending,
        }
    }

    /// How many records the log holds: counted from the blocks' headers on
    /// first use (nothing is decompressed), then kept up to date by every
    /// write.
    pub(crate) fn len(&self) -> Result<u64> {
        if let Some(n) = *self.record_count() {
            return Ok(n);
        }
        // The long scan runs without the lock, over the values before the
        // last one when it started; the last (the writer's tail) and any
        // after it are counted under the lock, while writes wait (they
        // change the count under it too).
        let tree = self.tree()?;
        let last_key = match tree.last()? {
            Some((k, _)) => key_seq(&k)?,
            None => Seq(0),
        };
        let mut n = 0u64;
        for item in tree.range(..seq_key(last_key)) {
            let (k, v) = item?;
            n += records_held(key_seq(&k)?, &v)?;
        }
        let mut count = self.record_count();
        if let Some(n) = *count {
            return Ok(n);
        }
        for item in tree.range(seq_key(last_key)..) {
            let (k, v) = item?;
            n += records_held(key_seq(&k)?, &v)?;
        }
        *count = Some(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record's bytes for these tests: the log layer never decodes them.
    fn record(seq: u64, len: usize) -> Vec<u8> {
        let mut r = vec![FORMAT_VERSION, KIND_PURGE];
        r.extend(std::iter::repeat_n((seq % 251) as u8, len));
        r.extend_from_slice(&seq.to_le_bytes());
        r
    }

    fn open(dir: &std::path::Path) -> (sled::Db, Log) {
        open_with(dir, false)
    }

    fn open_with(dir: &std::path::Path, encrypt: bool) -> (sled::Db, Log) {
        // sled's flusher thread lets go of the file lock of a dropped
        // database a moment later: a reopen waits for it.
        let mut tries = 0;
        let db = loop {
            match sled::Config::new().path(dir.join("log")).open() {
                Ok(db) => break db,
                Err(_) if tries < 100 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => panic!("sled opens: {e}"),
            }
        };
        let log = Log::open(&db, &dir.join("keyring"), encrypt, 3).expect("log opens");
        (db, log)
    }

    fn write(log: &Log, seqs: std::ops::Range<u64>, len: usize) {
        let records: Vec<(Seq, Vec<u8>)> = seqs.map(|s| (Seq(s), record(s, len))).collect();
        log.write_durable(&records).expect("written");
    }

    fn all(log: &Log, after: Option<u64>) -> Vec<(u64, Vec<u8>)> {
        log.iter_after(after.map(Seq))
            .map(|r| r.map(|(s, v)| (s.0, v.to_vec())).expect("readable"))
            .collect()
    }

    #[test]
    fn records_read_back_one_by_one_and_in_order_from_any_point() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_db, log) = open(dir.path());
        write(&log, 0..150, 40);
        write(&log, 150..151, 9000); // larger than a block on its own
        write(&log, 151..160, 40);
        for s in [0, 63, 64, 100, 149, 150, 151, 159] {
            assert_eq!(
                log.get(Seq(s)).expect("get").map(|v| v.to_vec()),
                Some(record(s, if s == 150 { 9000 } else { 40 })),
                "record {s}"
            );
        }
        assert_eq!(log.get(Seq(160)).expect("get"), None);
        let expected: Vec<u64> = (0..160).collect();
        assert_eq!(
            all(&log, None).iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            expected
        );
        assert_eq!(
            all(&log, Some(99)).first().map(|(s, _)| *s),
            Some(100),
            "from inside a block"
        );
        assert_eq!(all(&log, Some(159)), vec![]);
        assert_eq!(log.last_seq().expect("last"), Some(Seq(159)));
        assert_eq!(log.len().expect("len"), 160);
        assert!(
            log.tree().expect("attached").len() < 20,
            "160 records in {} keys",
            log.tree().expect("attached").len()
        );
    }

    #[test]
    fn single_appends_share_a_block_and_the_block_survives_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let (_db, log) = open(dir.path());
            for s in 0..10 {
                write(&log, s..s + 1, 30);
            }
            assert_eq!(
                log.tree().expect("attached").len(),
                1,
                "ten appends, one block"
            );
        }
        let (_db, log) = open(dir.path());
        write(&log, 10..11, 30);
        assert_eq!(
            log.tree().expect("attached").len(),
            1,
            "the reopened log adds to its last block"
        );
        assert_eq!(all(&log, None).len(), 11);
        assert_eq!(log.last_seq().expect("last"), Some(Seq(10)));
    }

    #[test]
    fn blocks_never_span_a_key_period() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_db, log) = open(dir.path());
        let boundary = 1u64 << keys::PERIOD_BITS;
        write(&log, boundary - 3..boundary + 3, 10);
        let first: Vec<u64> = log.iter_period(0).map(|r| r.expect("read").0 .0).collect();
        let second: Vec<u64> = log.iter_period(1).map(|r| r.expect("read").0 .0).collect();
        assert_eq!(first, (boundary - 3..boundary).collect::<Vec<_>>());
        assert_eq!(second, (boundary..boundary + 3).collect::<Vec<_>>());
    }

    #[test]
    fn a_rewrite_replaces_and_removes_records_and_new_writes_go_after_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_db, log) = open(dir.path());
        write(&log, 0..20, 40);
        assert_eq!(log.len().expect("len"), 20);
        log.rewrite(vec![
            (Seq(3), Some(b"redacted".to_vec())),
            (Seq(4), None),
            (Seq(19), None),
            (Seq(99), None), // held by nothing: ignored
        ])
        .expect("rewritten");
        assert_eq!(
            log.get(Seq(3)).expect("get").map(|v| v.to_vec()),
            Some(b"redacted".to_vec())
        );
        assert_eq!(log.get(Seq(4)).expect("get"), None);
        assert_eq!(
            log.get(Seq(5)).expect("get").map(|v| v.to_vec()),
            Some(record(5, 40))
        );
        assert_eq!(log.len().expect("len"), 18);
        // The tail block was rewritten: the next write must not bring back
        // what the rewrite removed.
        write(&log, 20..22, 40);
        assert_eq!(log.get(Seq(19)).expect("get"), None);
        assert_eq!(
            log.get(Seq(3)).expect("get").map(|v| v.to_vec()),
            Some(b"redacted".to_vec())
        );
        assert_eq!(all(&log, None).len(), 20);
        assert_eq!(log.len().expect("len"), 20);
        // A block whose every record goes is removed.
        let gone: Vec<(Seq, Option<Vec<u8>>)> = (0..22).map(|s| (Seq(s), None)).collect();
        log.rewrite(gone).expect("rewritten");
        assert_eq!(log.tree().expect("attached").len(), 0);
        assert_eq!(log.len().expect("len"), 0);
    }

    fn open_encrypting(dir: &std::path::Path) -> (sled::Db, Log) {
        open_with(dir, true)
    }

    /// The bytes sled holds under a block's key, as stored (sealed or not).
    fn stored(log: &Log, key: Seq) -> Vec<u8> {
        log.tree()
            .expect("attached")
            .get(seq_key(key))
            .expect("read")
            .expect("held")
            .to_vec()
    }

    fn input(raw: &str) -> PreparedInput {
        PreparedInput::prepare(Input {
            source: Source::Webhook,
            received_ms: 1_700_000_000_000,
            raw: raw.as_bytes().to_vec(),
            events: vec![Event::Other(Box::default())],
        })
        .expect("prepared")
    }

    fn raw_of(log: &Log, seq: u64) -> Vec<u8> {
        let bytes = log.get(Seq(seq)).expect("get").expect("held");
        match log.decode(Seq(seq), &bytes).expect("decodes") {
            Record::Input(rec) => rec.raw,
            Record::Purge(_) => panic!("an input"),
        }
    }

    fn stored_values(log: &Log) -> Vec<Vec<u8>> {
        log.tree()
            .expect("attached")
            .iter()
            .map(|kv| kv.expect("readable").1.to_vec())
            .collect()
    }

    fn holds(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn a_sealed_block_shows_nothing_of_its_records_and_needs_its_period_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_db, log) = open_encrypting(dir.path());
        let records: Vec<(Seq, Vec<u8>)> = (0..40u64)
            .map(|s| {
                let raw = format!("{{\"body\":\"needle-{s:03}\"}}");
                let bytes =
                    Log::encode_input(&input(&raw), &[Some(EntryId(s as u32))]).expect("encoded");
                (Seq(s), bytes)
            })
            .collect();
        log.write_durable(&records).expect("written");
        let values = stored_values(&log);
        assert_eq!(values.len(), 1, "forty small records, one block");
        assert!(blocks::is_sealed(&values[0]));
        assert!(!holds(&values[0], b"needle-"), "the block is encrypted");
        assert_eq!(raw_of(&log, 17), b"{\"body\":\"needle-017\"}");
        assert_eq!(log.len().expect("len"), 40);
        assert_eq!(log.last_seq().expect("last"), Some(Seq(39)));

        // With the period's key destroyed the block no longer opens.
        log.begin_rekey(0).expect("rekey");
        log.finish_rekey(0).expect("retired");
        let err = log.get(Seq(17)).expect_err("unreadable");
        assert!(err.to_string().contains("destroyed"), "{err}");
    }

    #[test]
    fn a_sealed_block_copied_under_another_key_does_not_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_db, log) = open_encrypting(dir.path());
        write(&log, 0..3, 20);
        log.tree()
            .expect("attached")
            .insert(seq_key(Seq(3)), stored(&log, Seq(0)))
            .expect("copied");
        assert!(log.get(Seq(3)).is_err(), "a block names its own key");
        let mut tampered = stored(&log, Seq(0));
        tampered[3] ^= 1; // the record count, authenticated with the content
        log.tree()
            .expect("attached")
            .insert(seq_key(Seq(0)), tampered)
            .expect("written");
        assert!(
            log.get(Seq(1)).is_err(),
            "a changed header does not authenticate"
        );
    }

    #[test]
    fn many_records_read_at_once_are_those_a_get_each_would_return() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (db, log) = open(dir.path());
        write(&log, 0..1, 30);
        // Reopened: the next records go into the block the last run left.
        let log = Log::open(&db, &dir.path().join("keyring"), false, 3).expect("opens");
        write(&log, 1..200, 300);
        log.rewrite(vec![(Seq(70), None)]).expect("rewritten");
        let wanted: Vec<Seq> = [0u64, 1, 2, 63, 64, 70, 71, 150, 199, 200, 5000]
            .into_iter()
            .map(Seq)
            .collect();
        let many: Vec<(u64, Vec<u8>)> = log
            .get_many(&wanted)
            .expect("read")
            .into_iter()
            .map(|(s, v)| (s.0, v.to_vec()))
            .collect();
        let one_by_one: Vec<(u64, Vec<u8>)> = wanted
            .iter()
            .filter_map(|s| log.get(*s).expect("get").map(|v| (s.0, v.to_vec())))
            .collect();
        assert_eq!(many, one_by_one);
        let seqs: Vec<u64> = many.iter().map(|(s, _)| *s).collect();
        assert_eq!(
            seqs,
            vec![0, 1, 2, 63, 64, 71, 150, 199],
            "removed and unwritten left out"
        );
        assert!(
            log.tree().expect("attached").len() > 2,
            "the records span several blocks"
        );
    }

    #[test]
    fn a_damaged_last_block_is_reported_and_new_records_go_after_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (db, log) = open_encrypting(dir.path());
        write(&log, 0..3, 20);
        let mut value = stored(&log, Seq(0));
        if let Some(last) = value.last_mut() {
            *last ^= 0xff;
        }
        log.tree()
            .expect("attached")
            .insert(seq_key(Seq(0)), value)
            .expect("damaged");
        let log = Log::open(&db, &dir.path().join("keyring"), true, 3).expect("still opens");
        write(&log, 3..4, 20);
        assert!(log.get(Seq(1)).is_err(), "the damage is reported");
        assert_eq!(
            log.get(Seq(3)).expect("get").map(|v| v.to_vec()),
            Some(record(3, 20)),
            "the new record has a block of its own"
        );
    }
}
