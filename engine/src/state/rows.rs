//! The rows of the derived state, one per entry id, most of them sealed in
//! compressed blocks.
//!
//! An entry changes while it is young (its send result, statuses and
//! replies arrive within minutes to hours of each other) and is only read
//! after that: a page of the table, a detail view, an export. So a row is
//! kept as a struct while it is among the newest ids (`tail`) or while it
//! changed since it was sealed (`changed`); the others are sealed in blocks
//! of [`BLOCK_ROWS`] rows, bincode-encoded and zstd-compressed. At 10M
//! entries a row in the heap cost ~470 bytes (the struct and its three
//! allocations); sealed it costs about a fifth of that.
//!
//! Readers get a [`Cow`]: borrowed for a row held as a struct, decoded for a
//! sealed one. Whoever reads many rows goes through [`Rows::for_each`],
//! which decompresses each block once. Time sorts read `recorded_ms` for
//! thousands of rows per query, so it is kept in a column beside the
//! blocks. The writer calls [`Rows::seal`] after each record: it seals the
//! tail beyond the newest `Config::unsealed_rows` ids (65,536 by default),
//! and when more than a quarter of that many sealed rows changed it writes
//! their blocks anew. The last 256 blocks decompressed are kept in a small
//! cache, which a resealed block leaves.
//!
//! A sealed block is held in memory (`Block::Held`) until a checkpoint
//! writes it; from then on it is read from the checkpoint file when
//! needed (`Block::InFile`, one positioned read): the blocks of a large
//! store stay in the page cache, not in the process. After a checkpoint is
//! written, [`Rows::adopt`] points the blocks it holds at the new file.
//!
//! Block layout, before compression: `n u32 LE | end of row i u32 LE x n |
//! bincode2(Row) x n`; compressed: `plain length u32 LE | zstd frame`.

use super::field::{Field, DAY_MS, HOUR_MS, NFIELDS, NONE_KEY};
use super::interner::Sym;
use super::own::OwnStrings;
use crate::model::*;
use bytes::Bytes;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};

/// Rows per sealed block: large enough to compress well (~16 KB of plain
/// rows), small enough that reading one row costs microseconds.
pub(crate) const BLOCK_ROWS: usize = if cfg!(test) { 4 } else { 64 };
/// The newest ids stay unsealed, by default: their statuses are still
/// arriving (`Config::unsealed_rows`).
const KEEP_RECENT: usize = if cfg!(test) { 3 } else { 1 << 16 };
const LEVEL: i32 = 1;

thread_local! {
    static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

/// Every row of the store, by entry id.
pub(crate) struct Rows {
    /// Sealed rows: block `b` holds ids `b * BLOCK_ROWS ..` and is full.
    blocks: Vec<Block>,
    /// The checkpoint file that `Block::InFile` blocks are read from.
    file: Option<Arc<File>>,
    /// `recorded_ms` of every sealed row, as of its block.
    recorded: Vec<i64>,
    /// Sealed rows changed since: these win over their blocks.
    changed: FxHashMap<u32, Row>,
    /// Rows after the last sealed one.
    tail: VecDeque<Row>,
    /// How many of the newest rows stay unsealed.
    keep_recent: usize,
    /// Blocks decompressed lately.
    cache: Mutex<BlockCache>,
}

/// Blocks decompressed lately, so that rows read again soon (the next
/// page of a search, the same page again, a detail view after the table)
/// are not read and decompressed again. Small (~4 MB of plain rows): a scan
/// passes through it without holding much.
#[derive(Default)]
struct BlockCache {
    blocks: FxHashMap<usize, (Arc<Plain>, u64)>,
    tick: u64,
}

const CACHED_BLOCKS: usize = 256;

impl BlockCache {
    fn get(&mut self, b: usize) -> Option<Arc<Plain>> {
        self.tick += 1;
        let tick = self.tick;
        self.blocks.get_mut(&b).map(|(plain, used)| {
            *used = tick;
            plain.clone()
        })
    }

    fn put(&mut self, b: usize, plain: Arc<Plain>) {
        if self.blocks.len() >= CACHED_BLOCKS {
            // The least recently used goes (a linear look over 256).
            if let Some(oldest) = self.blocks.iter().min_by_key(|(_, (_, used))| *used) {
                let oldest = *oldest.0;
                self.blocks.remove(&oldest);
            }
        }
        self.tick += 1;
        self.blocks.insert(b, (plain, self.tick));
    }
}

impl Default for Rows {
    fn default() -> Rows {
        Rows {
            blocks: Vec::new(),
            file: None,
            recorded: Vec::new(),
            changed: FxHashMap::default(),
            tail: VecDeque::new(),
            keep_recent: KEEP_RECENT,
            cache: Mutex::default(),
        }
    }
}

/// A sealed block of rows.
#[derive(Clone, Debug)]
pub(crate) enum Block {
    /// In memory: sealed since the last checkpoint.
    Held(Bytes),
    /// In the checkpoint file, at `offset`.
    InFile { offset: u64, len: u32 },
}

impl Block {
    /// Whether two handles name the same block (the same bytes in memory,
    /// or the same place in the same file).
    fn same(&self, other: &Block) -> bool {
        match (self, other) {
            (Block::Held(a), Block::Held(b)) => a.as_ptr() == b.as_ptr() && a.len() == b.len(),
            (Block::InFile { offset: a, .. }, Block::InFile { offset: b, .. }) => a == b,
            _ => false,
        }
    }
}

/// The parts of [`Rows`], as a checkpoint saves them.
pub(crate) struct RowParts {
    pub(crate) blocks: Vec<Block>,
    /// The file `Block::InFile` blocks are in.
    pub(crate) file: Option<Arc<File>>,
    pub(crate) recorded: Vec<i64>,
    pub(crate) changed: Vec<(u32, Row)>,
    pub(crate) tail: Vec<Row>,
}

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Encodes and compresses one block.
fn seal_block<'a>(rows: impl Iterator<Item = &'a Row>) -> Option<Block> {
    let rows: Vec<&Row> = rows.collect();
    let n = rows.len();
    let mut plain = vec![0u8; 4 + 4 * n];
    plain[..4].copy_from_slice(&(n as u32).to_le_bytes());
    let header = plain.len();
    for (i, row) in rows.iter().enumerate() {
        if let Err(e) = bincode::serde::encode_into_std_write(row, &mut plain, config()) {
            tracing::error!("a row could not be encoded, its block stays unsealed: {e}");
            return None;
        }
        let end = (plain.len() - header) as u32;
        plain[4 + 4 * i..8 + 4 * i].copy_from_slice(&end.to_le_bytes());
    }
    let compressed = COMPRESSOR.with(|cell| {
        let mut cell = cell.borrow_mut();
        match &mut *cell {
            Some(c) => c.compress(&plain),
            slot => zstd::bulk::Compressor::new(LEVEL).and_then(|mut c| {
                let out = c.compress(&plain);
                *slot = Some(c);
                out
            }),
        }
    });
    match compressed {
        Ok(bytes) => {
            let mut block = Vec::with_capacity(4 + bytes.len());
            block.extend_from_slice(&(plain.len() as u32).to_le_bytes());
            block.extend_from_slice(&bytes);
            Some(Block::Held(Bytes::from(block)))
        }
        Err(e) => {
            tracing::error!("a block of rows could not be compressed, it stays unsealed: {e}");
            None
        }
    }
}

/// A sealed block, decompressed.
struct Plain(Vec<u8>);

impl Plain {
    fn open(block: &[u8]) -> Option<Plain> {
        let len = u32::from_le_bytes(block.get(..4)?.try_into().ok()?) as usize;
        DECOMPRESSOR.with(|cell| {
            let mut cell = cell.borrow_mut();
            if cell.is_none() {
                *cell = zstd::bulk::Decompressor::new().ok();
            }
            let plain = cell.as_mut()?.decompress(&block[4..], len).ok()?;
            (plain.len() == len).then_some(Plain(plain))
        })
    }

    fn count(&self) -> usize {
        self.0
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .map_or(0, |b| u32::from_le_bytes(b) as usize)
    }

    fn row(&self, i: usize) -> Option<Row> {
        let n = self.count();
        if i >= n {
            return None;
        }
        let end_at = |k: usize| -> Option<usize> {
            let b = self.0.get(4 + 4 * k..8 + 4 * k)?;
            Some(u32::from_le_bytes(b.try_into().ok()?) as usize)
        };
        let start = if i == 0 { 0 } else { end_at(i - 1)? };
        let end = end_at(i)?;
        let data = self.0.get(4 + 4 * n..)?;
        let (row, _) = bincode::serde::decode_from_slice(data.get(start..end)?, config()).ok()?;
        Some(row)
    }
}

thread_local! {
    static READ_BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The stored bytes of a block (a positioned read for one in the file),
/// decompressed.
fn open_block(block: &Block, file: Option<&Arc<File>>) -> Option<Plain> {
    match block {
        Block::Held(bytes) => Plain::open(bytes),
        Block::InFile { offset, len } => READ_BUFFER.with(|cell| {
            let mut buf = cell.borrow_mut();
            buf.resize(*len as usize, 0);
            file?.read_exact_at(&mut buf, *offset).ok()?;
            Plain::open(&buf)
        }),
    }
}

/// The stored bytes of a block, for a checkpoint.
pub(crate) fn stored_bytes(block: &Block, file: Option<&Arc<File>>) -> std::io::Result<Bytes> {
    match block {
        Block::Held(bytes) => Ok(bytes.clone()),
        Block::InFile { offset, len } => {
            let file = file.ok_or_else(|| std::io::Error::other("a block in no file"))?;
            let mut buf = vec![0u8; *len as usize];
            file.read_exact_at(&mut buf, *offset)?;
            Ok(Bytes::from(buf))
        }
    }
}

impl Rows {
    fn open_block(&self, b: usize) -> Option<Arc<Plain>> {
        let cache = || self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(plain) = cache().get(b) {
            return Some(plain);
        }
        let plain = Arc::new(open_block(&self.blocks[b], self.file.as_ref())?);
        cache().put(b, plain.clone());
        Some(plain)
    }

    /// How many ids were handed out.
    pub(crate) fn len(&self) -> usize {
        self.sealed_len() + self.tail.len()
    }

    fn sealed_len(&self) -> usize {
        self.blocks.len() * BLOCK_ROWS
    }

    /// Entry `id`'s row; `None` past the end (or, never expected, for a
    /// sealed block that does not decode, which is logged).
    pub(crate) fn get(&self, id: u32) -> Option<Cow<'_, Row>> {
        let idx = id as usize;
        let sealed = self.sealed_len();
        if idx >= sealed {
            return self.tail.get(idx - sealed).map(Cow::Borrowed);
        }
        if let Some(row) = self.changed.get(&id) {
            return Some(Cow::Borrowed(row));
        }
        let row = self
            .open_block(idx / BLOCK_ROWS)
            .and_then(|plain| plain.row(idx % BLOCK_ROWS));
        if row.is_none() {
            tracing::error!("the sealed row of entry {id} does not decode");
        }
        row.map(Cow::Owned)
    }

    /// Entry `id`'s row, to change. Panics past the end, like indexing a
    /// slice: the writer only touches ids it handed out.
    pub(crate) fn get_mut(&mut self, id: u32) -> &mut Row {
        let idx = id as usize;
        let sealed = self.sealed_len();
        if idx >= sealed {
            return &mut self.tail[idx - sealed];
        }
        if !self.changed.contains_key(&id) {
            let row = self
                .open_block(idx / BLOCK_ROWS)
                .and_then(|plain| plain.row(idx % BLOCK_ROWS))
                .unwrap_or_else(|| panic!("the sealed row of entry {id} does not decode"));
            self.changed.insert(id, row);
        }
        match self.changed.get_mut(&id) {
            Some(row) => row,
            None => unreachable!("inserted above"),
        }
    }

    /// Appends the row of the next id.
    pub(crate) fn push(&mut self, row: Row) {
        self.tail.push_back(row);
    }

    /// `recorded_ms` of entry `id` (0 past the end), without decoding it.
    pub(crate) fn recorded_ms(&self, id: u32) -> i64 {
        let idx = id as usize;
        let sealed = self.sealed_len();
        if idx >= sealed {
            return self.tail.get(idx - sealed).map_or(0, |r| r.recorded_ms);
        }
        match self.changed.get(&id) {
            Some(row) => row.recorded_ms,
            None => self.recorded[idx],
        }
    }

    /// Calls `f` with each of `ids` (ascending; ids past the end are
    /// skipped) and its row, decompressing each sealed block once.
    pub(crate) fn for_each(
        &self,
        ids: impl IntoIterator<Item = u32>,
        mut f: impl FnMut(u32, &Row),
    ) {
        let sealed = self.sealed_len();
        let mut open: Option<(usize, Option<Arc<Plain>>)> = None;
        for id in ids {
            let idx = id as usize;
            if idx >= sealed {
                match self.tail.get(idx - sealed) {
                    Some(row) => f(id, row),
                    None => return,
                }
                continue;
            }
            if let Some(row) = self.changed.get(&id) {
                f(id, row);
                continue;
            }
            let b = idx / BLOCK_ROWS;
            if open.as_ref().is_none_or(|(at, _)| *at != b) {
                open = Some((b, self.open_block(b)));
            }
            match open
                .as_ref()
                .and_then(|(_, p)| p.as_ref()?.row(idx % BLOCK_ROWS))
            {
                Some(row) => f(id, &row),
                None => tracing::error!("the sealed row of entry {id} does not decode"),
            }
        }
    }

    /// Calls `f` with every row, in id order.
    pub(crate) fn for_each_all(&self, f: impl FnMut(u32, &Row)) {
        self.for_each(0..self.len() as u32, f)
    }

    /// Seals the tail beyond the newest ids, and writes anew the blocks of
    /// changed rows when there are too many of them. The writer calls this
    /// after each record.
    pub(crate) fn seal(&mut self) {
        while self.tail.len() >= self.keep_recent + BLOCK_ROWS {
            if !self.seal_oldest_of_tail() {
                break;
            }
        }
        if self.changed.len() > self.max_changed() {
            self.reseal_changed();
        }
    }

    /// Sealed rows that may change before their blocks are written anew.
    fn max_changed(&self) -> usize {
        (self.keep_recent / 4).max(4)
    }

    /// Keeps the newest `rows` unsealed from now on, sealing any beyond.
    pub(crate) fn keep_unsealed(&mut self, rows: usize) {
        self.keep_recent = rows;
        self.seal();
    }

    /// Seals every row but the newest: what a checkpoint does, so that it
    /// writes blocks and the next open has nothing to seal.
    pub(crate) fn seal_all(&mut self) {
        while self.tail.len() >= BLOCK_ROWS {
            if !self.seal_oldest_of_tail() {
                break;
            }
        }
        self.reseal_changed();
    }

    /// Seals the tail's oldest block of rows; false when it could not be
    /// (they stay unsealed).
    fn seal_oldest_of_tail(&mut self) -> bool {
        let Some(block) = seal_block(self.tail.range(..BLOCK_ROWS)) else {
            return false;
        };
        self.recorded
            .extend(self.tail.range(..BLOCK_ROWS).map(|r| r.recorded_ms));
        self.tail.drain(..BLOCK_ROWS);
        self.blocks.push(block);
        true
    }

    /// Writes anew each block holding a changed row. A block that cannot
    /// be read or sealed keeps its changed rows unsealed (nothing is lost).
    pub(crate) fn reseal_changed(&mut self) {
        let mut by_block: Vec<u32> = self.changed.keys().copied().collect();
        by_block.sort_unstable();
        by_block.dedup_by_key(|id| *id as usize / BLOCK_ROWS);
        'blocks: for first in by_block {
            let b = first as usize / BLOCK_ROWS;
            let base = b * BLOCK_ROWS;
            let Some(plain) = self.open_block(b) else {
                tracing::error!(
                    "block {b} of rows does not decode; its changed rows stay unsealed"
                );
                continue;
            };
            let mut unchanged: Vec<Option<Row>> = Vec::with_capacity(BLOCK_ROWS);
            for i in 0..BLOCK_ROWS {
                if self.changed.contains_key(&((base + i) as u32)) {
                    unchanged.push(None);
                    continue;
                }
                match plain.row(i) {
                    Some(row) => unchanged.push(Some(row)),
                    None => {
                        tracing::error!("row {i} of block {b} does not decode; it stays unsealed");
                        continue 'blocks;
                    }
                }
            }
            let rows: Vec<&Row> = unchanged
                .iter()
                .enumerate()
                .filter_map(|(i, row)| {
                    row.as_ref()
                        .or_else(|| self.changed.get(&((base + i) as u32)))
                })
                .collect();
            let Some(block) = seal_block(rows.iter().copied()) else {
                continue;
            };
            for (i, row) in rows.iter().enumerate() {
                self.recorded[base + i] = row.recorded_ms;
            }
            self.blocks[b] = block;
            self.cache
                .get_mut()
                .unwrap_or_else(|p| p.into_inner())
                .blocks
                .remove(&b);
            for i in 0..BLOCK_ROWS {
                self.changed.remove(&((base + i) as u32));
            }
        }
    }

    /// Bytes held: sealed blocks in memory (not those in the file), the
    /// time column, and an estimate for the rows held as structs.
    pub(crate) fn heap_bytes(&self) -> usize {
        let sealed: usize = self
            .blocks
            .iter()
            .map(|b| match b {
                Block::Held(bytes) => bytes.len() + 32,
                Block::InFile { .. } => 16,
            })
            .sum();
        sealed + self.recorded.len() * 8 + (self.changed.len() + self.tail.len()) * 480
    }

    /// The parts, for a checkpoint: sealed blocks are shared, the rows
    /// held as structs copied.
    pub(crate) fn parts(&self) -> RowParts {
        let mut changed: Vec<(u32, Row)> = self
            .changed
            .iter()
            .map(|(id, r)| (*id, r.clone()))
            .collect();
        changed.sort_unstable_by_key(|(id, _)| *id);
        RowParts {
            blocks: self.blocks.clone(),
            file: self.file.clone(),
            recorded: self.recorded.clone(),
            changed,
            tail: self.tail.iter().cloned().collect(),
        }
    }

    /// After a checkpoint that held `saved` was written to `file`, with
    /// block `i` at `placed[i]`: each block still as it was saved is read
    /// from the new file from now on (and dropped from memory); blocks
    /// sealed anew since stay held. No block refers to the old file after.
    pub(crate) fn adopt(&mut self, saved: &[Block], file: Arc<File>, placed: &[(u64, u32)]) {
        if saved.len() != placed.len() {
            return;
        }
        for (i, block) in self.blocks.iter_mut().enumerate() {
            match (saved.get(i), placed.get(i)) {
                (Some(old), Some(&(offset, len))) if block.same(old) => {
                    *block = Block::InFile { offset, len };
                }
                _ => {
                    if let Block::InFile { .. } = block {
                        // Changed since the copy yet still in the old file:
                        // cannot happen (resealing makes a held block), but
                        // a block must never outlive its file.
                        if let Ok(bytes) = stored_bytes(block, self.file.as_ref()) {
                            *block = Block::Held(bytes);
                        }
                    }
                }
            }
        }
        self.file = Some(file);
    }

    /// Rows from a checkpoint's parts; `None` when they do not fit together.
    pub(crate) fn from_parts(parts: RowParts) -> Option<Rows> {
        let sealed = parts.blocks.len() * BLOCK_ROWS;
        if parts.recorded.len() != sealed
            || parts.changed.iter().any(|(id, _)| *id as usize >= sealed)
        {
            return None;
        }
        Some(Rows {
            blocks: parts.blocks,
            file: parts.file,
            recorded: parts.recorded,
            changed: parts.changed.into_iter().collect(),
            tail: parts.tail.into(),
            keep_recent: KEEP_RECENT,
            cache: Mutex::default(),
        })
    }
}

/// The current state of one entry.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Row {
    pub(crate) direction: Direction,
    pub(crate) status: Status,
    pub(crate) send: Option<SendOutcome>,
    pub(crate) recorded_ms: i64,
    pub(crate) offset_s: i32,
    pub(crate) response_code: Option<u16>,
    pub(crate) error_code: OptI64,
    pub(crate) error_title: Sym,
    pub(crate) category: Sym,
    pub(crate) name: Sym,
    pub(crate) template: Sym,
    pub(crate) language: Sym,
    pub(crate) recipient_type: Sym,
    pub(crate) recipient_ref: Sym,
    pub(crate) user: Sym,
    pub(crate) subaccount: Sym,
    pub(crate) phone_number_id: Sym,
    pub(crate) phone: Sym,
    pub(crate) wa_id: Sym,
    pub(crate) content_type: Sym,
    pub(crate) conversation_type: Sym,
    pub(crate) conversation_expiry_ms: OptI64,
    pub(crate) pricing_category: Sym,
    pub(crate) pricing_model: Sym,
    pub(crate) pricing_type: Sym,
    pub(crate) billable: Option<bool>,
    /// Derived (`State::derive_market`): the person's country, and whether
    /// Meta charges for the message.
    pub(crate) country: Sym,
    pub(crate) charged: Option<bool>,
    pub(crate) contact_name: Sym,
    /// The person's business-scoped user id, parent user id and username.
    pub(crate) user_id: Sym,
    pub(crate) parent_user_id: Sym,
    pub(crate) username: Sym,
    /// A system message's new user id (`user_changed_user_id`).
    pub(crate) new_user_id: Sym,
    /// An account or template event's change: the value before and after
    /// (a category, a quality score, a messaging limit; the `event` itself
    /// when nothing else changed) and the reason given.
    pub(crate) event_from: Sym,
    pub(crate) event_to: Sym,
    pub(crate) event_reason: Sym,
    pub(crate) button: Sym,
    /// wamid, correlation id, conversation id and text preview.
    pub(crate) own: OwnStrings,
    pub(crate) session: Option<Session>,
    pub(crate) in_reply_to: Option<EntryId>,
    /// An inbound message that quotes the one it answers (`context.id`);
    /// one that does not is attributed by inference (`State::infer_reply`).
    pub(crate) quoted: bool,
    /// A `user_preferences` item's choice.
    pub(crate) preference: Option<Preference>,
    /// Where the message was sent or seen.
    pub(crate) origin: Origin,
    pub(crate) replies: u32,
    pub(crate) clicks: u32,
    /// Status events, sorted (exactly sized: see `with_inserted`).
    pub(crate) marks: Box<[StatusMark]>,
    /// The log records that hold its events, in order (exactly sized).
    pub(crate) records: Box<[Seq]>,
    pub(crate) purged: bool,
}

impl Row {
    /// An outbound message's furthest delivery step any status reported,
    /// even if it failed later.
    pub(crate) fn reached(&self) -> Option<Reached> {
        match self.direction {
            Direction::Outbound => self
                .marks
                .iter()
                .filter_map(|m| Reached::proven_by(m.status))
                .max(),
            _ => None,
        }
    }

    /// Unlinks a reply from the message it answers: the link and what the
    /// reply copied of that message (category, name, template, language,
    /// user, subaccount) go; the answered message, if there was one.
    pub(crate) fn forget_answered(&mut self) -> Option<EntryId> {
        let target = self.in_reply_to.take()?;
        self.set_campaign([0; 6]);
        Some(target)
    }

    /// What a reply copies of the message it answers: category, name,
    /// template, language, user, subaccount.
    pub(crate) fn campaign(&self) -> [Sym; 6] {
        [
            self.category,
            self.name,
            self.template,
            self.language,
            self.user,
            self.subaccount,
        ]
    }

    /// Sets what [`Row::campaign`] reads.
    pub(crate) fn set_campaign(&mut self, c: [Sym; 6]) {
        [
            self.category,
            self.name,
            self.template,
            self.language,
            self.user,
            self.subaccount,
        ] = c;
    }

    pub(crate) fn new(direction: Direction, at_ms: i64) -> Row {
        Row {
            direction,
            status: match direction {
                Direction::Outbound => Status::Accepted,
                Direction::Inbound => Status::Received,
                Direction::Event => Status::Logged,
            },
            send: None,
            recorded_ms: at_ms,
            offset_s: 0,
            response_code: None,
            error_code: OptI64::NONE,
            error_title: 0,
            category: 0,
            name: 0,
            template: 0,
            language: 0,
            recipient_type: 0,
            recipient_ref: 0,
            user: 0,
            subaccount: 0,
            phone_number_id: 0,
            phone: 0,
            wa_id: 0,
            content_type: 0,
            conversation_type: 0,
            conversation_expiry_ms: OptI64::NONE,
            pricing_category: 0,
            pricing_model: 0,
            pricing_type: 0,
            billable: None,
            country: 0,
            charged: None,
            contact_name: 0,
            user_id: 0,
            parent_user_id: 0,
            username: 0,
            new_user_id: 0,
            event_from: 0,
            event_to: 0,
            event_reason: 0,
            button: 0,
            own: OwnStrings::default(),
            session: None,
            in_reply_to: None,
            quoted: false,
            preference: None,
            origin: Origin::Api,
            replies: 0,
            clicks: 0,
            marks: Box::default(),
            records: Box::default(),
            purged: false,
        }
    }

    /// Every interned string the row refers to (0 for none).
    pub(crate) fn syms(&self) -> [Sym; 27] {
        [
            self.error_title,
            self.category,
            self.name,
            self.template,
            self.language,
            self.recipient_type,
            self.recipient_ref,
            self.user,
            self.subaccount,
            self.phone_number_id,
            self.phone,
            self.wa_id,
            self.content_type,
            self.conversation_type,
            self.pricing_category,
            self.pricing_model,
            self.contact_name,
            self.button,
            self.user_id,
            self.parent_user_id,
            self.username,
            self.new_user_id,
            self.pricing_type,
            self.event_from,
            self.event_to,
            self.event_reason,
            self.country,
        ]
    }

    /// The identifiers of the person the entry is with, as its events
    /// named them (all one person: see the `contacts` module).
    /// (The first `n` of the array: no allocation, as the writer asks this
    /// of every event.)
    pub(crate) fn idents(&self) -> ([super::contacts::Ident; 6], usize) {
        use super::contacts::IdKind;
        let all = [
            (IdKind::Phone, self.phone),
            (IdKind::Phone, self.wa_id),
            (IdKind::UserId, self.user_id),
            (IdKind::UserId, self.parent_user_id),
            (IdKind::UserId, self.new_user_id),
            (IdKind::Username, self.username),
        ];
        let mut out = all;
        let mut n = 0;
        for ident in all {
            if ident.1 != 0 {
                out[n] = ident;
                n += 1;
            }
        }
        (out, n)
    }

    /// The person the 24 h window of this entry belongs to, as one string
    /// both directions share: an outbound message's `wa_id` when Meta
    /// answered one (the dialled number may be a variant of it: Brazil's
    /// ninth digit, Mexico's `521`), an inbound message's `from` (which is
    /// the `wa_id`), else the number as given, else the business-scoped
    /// user id of a person without a number. 0 when none is known.
    /// What [`State::derive_market`](super::State) reads: when none of it
    /// changed, neither did the country nor the charge.
    pub(crate) fn market_inputs(&self) -> (Direction, [Sym; 5], Option<bool>) {
        (
            self.direction,
            [
                self.phone,
                self.wa_id,
                self.user_id,
                self.parent_user_id,
                self.pricing_type,
            ],
            self.billable,
        )
    }

    pub(crate) fn customer(&self) -> Sym {
        let wa_id = if self.direction == Direction::Outbound {
            self.wa_id
        } else {
            0
        };
        [wa_id, self.phone, self.user_id]
            .into_iter()
            .find(|s| *s != 0)
            .unwrap_or(0)
    }

    /// The bitmap key of every indexed field, in `Field` order.
    pub(crate) fn index_keys(&self) -> [i64; NFIELDS] {
        let sym = |s: Sym| if s == 0 { NONE_KEY } else { s as i64 };
        let mut keys = [NONE_KEY; NFIELDS];
        keys[Field::Category.slot()] = sym(self.category);
        keys[Field::Name.slot()] = sym(self.name);
        keys[Field::Template.slot()] = sym(self.template);
        keys[Field::ResponseCode.slot()] = self.response_code.map_or(NONE_KEY, i64::from);
        keys[Field::RecipientType.slot()] = sym(self.recipient_type);
        keys[Field::Status.slot()] = self.status as i64;
        keys[Field::Direction.slot()] = self.direction as i64;
        keys[Field::ErrorCode.slot()] = self.error_code.get().unwrap_or(NONE_KEY);
        keys[Field::PhoneNumberId.slot()] = sym(self.phone_number_id);
        keys[Field::Subaccount.slot()] = sym(self.subaccount);
        keys[Field::User.slot()] = sym(self.user);
        keys[Field::ContentType.slot()] = sym(self.content_type);
        keys[Field::ConversationType.slot()] = sym(self.conversation_type);
        keys[Field::PricingCategory.slot()] = sym(self.pricing_category);
        keys[Field::PricingType.slot()] = sym(self.pricing_type);
        keys[Field::Country.slot()] = sym(self.country);
        keys[Field::Billable.slot()] = self.charged.map_or(NONE_KEY, i64::from);
        keys[Field::Origin.slot()] = match self.direction {
            Direction::Event => NONE_KEY,
            _ => self.origin as i64,
        };
        keys[Field::Marketing.slot()] = match self.preference {
            Some(p) => p as i64,
            None if self.error_code.get() == Some(MARKETING_STOPPED) => Preference::Stop as i64,
            None => NONE_KEY,
        };
        keys[Field::Session.slot()] = self.session.map_or(NONE_KEY, |s| s as i64);
        keys[Field::Day.slot()] = self.recorded_ms.div_euclid(DAY_MS);
        keys[Field::Hour.slot()] = self.recorded_ms.div_euclid(HOUR_MS);
        keys[Field::Engagement.slot()] = match (self.replies > 0, self.clicks > 0) {
            (false, false) => NONE_KEY,
            (true, false) => Engagement::Replied as i64,
            (false, true) => Engagement::Clicked as i64,
            (true, true) => Engagement::RepliedAndClicked as i64,
        };
        keys[Field::Language.slot()] = sym(self.language);
        keys[Field::Reached.slot()] = self.reached().map_or(NONE_KEY, |r| r as i64);
        keys[Field::Button.slot()] = sym(self.button);
        keys[Field::Attribution.slot()] = match (self.in_reply_to, self.quoted) {
            (None, _) => NONE_KEY,
            (Some(_), true) => Attribution::Quoted as i64,
            (Some(_), false) => Attribution::Inferred as i64,
        };
        keys
    }
}

/// An `Option<i64>` in 8 bytes instead of 16: `i64::MIN` ([`NONE_KEY`],
/// which is also the bitmap key of an absent value) stands for `None`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct OptI64(i64);

impl OptI64 {
    pub(crate) const NONE: OptI64 = OptI64(NONE_KEY);

    /// `Some(i64::MIN)` reads back as `None`: no error code or time is that.
    pub(crate) fn new(value: Option<i64>) -> OptI64 {
        OptI64(value.unwrap_or(NONE_KEY))
    }

    pub(crate) fn get(self) -> Option<i64> {
        (self.0 != NONE_KEY).then_some(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Direction;

    fn row(i: u32) -> Row {
        let mut r = Row::new(Direction::Outbound, 1_000 + i64::from(i));
        r.replies = i;
        r.own
            .set(crate::state::own::Own::Wamid, Some(&format!("wamid.{i}")));
        r
    }

    #[test]
    fn sealed_rows_read_back_as_they_were_and_changes_survive_resealing() {
        let mut rows = Rows::default();
        for i in 0..1000 {
            rows.push(row(i));
            rows.seal();
        }
        assert!(
            rows.blocks.len() >= 1000 / BLOCK_ROWS - 1,
            "most rows are sealed"
        );
        assert_eq!(rows.len(), 1000);
        for i in [0u32, 63, 64, 500, 999] {
            let r = rows.get(i).expect("row");
            assert_eq!((r.replies, r.recorded_ms), (i, 1_000 + i64::from(i)));
            assert_eq!(
                r.own.get(crate::state::own::Own::Wamid),
                Some(format!("wamid.{i}").as_str())
            );
        }
        assert!(rows.get(1000).is_none());
        // Change more sealed rows than may stay unsealed: their blocks are
        // written anew, and every change reads back.
        for i in (0..900).step_by(7) {
            let r = rows.get_mut(i);
            r.replies += 1_000_000;
            r.recorded_ms = -i64::from(i);
            rows.seal();
        }
        assert!(rows.changed.len() <= rows.max_changed());
        let mut seen = 0;
        rows.for_each_all(|id, r| {
            let changed = id < 900 && id % 7 == 0;
            let want = if changed { id + 1_000_000 } else { id };
            assert_eq!(r.replies, want, "row {id}");
            let want_ms = if changed {
                -i64::from(id)
            } else {
                1_000 + i64::from(id)
            };
            assert_eq!(rows.recorded_ms(id), want_ms, "recorded_ms of {id}");
            seen += 1;
        });
        assert_eq!(seen, 1000);
        rows.seal_all();
        assert!(rows.changed.is_empty() && rows.tail.len() < BLOCK_ROWS);
        assert_eq!(rows.get(7).map(|r| r.replies), Some(1_000_007));
    }
}
