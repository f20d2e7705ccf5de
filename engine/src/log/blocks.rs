//! How log records are laid out in sled: a few consecutive records per key.
//!
//! One sled key per record made sled's page table the largest part of the
//! memory at 10M messages (sled 0.34 splits a leaf past 16 keys, so 33.5M
//! keys made millions of pages, each with its own bookkeeping), and its leaf
//! splits a third of the writer's time. A *block* holds up to
//! [`MAX_RECORDS`] records with consecutive sequence numbers of one key
//! period, about [`TARGET_PLAIN_BYTES`] in all, under the key of its first
//! sequence number.
//!
//! # Open block (the layout inside a sealed block)
//! ```text
//! [0]          BLOCK_TAG (0x80)
//! [1..3]       n = number of slots, u16 LE; slot i holds sequence number key + i
//! [3..3+4n]    end of each slot's record, u32 LE, counted from the data start;
//!              a slot that ends where the one before it ends is empty
//!              (its record was removed by a purge)
//! [3+4n..]     the records, one after the other
//! ```
//!
//! # Sealed block (store format 4)
//! ```text
//! [0]          SEALED_TAG (0x81)
//! [1..3]       n = number of slots, u16 LE
//! [3..5]       records held (slots not empty), u16 LE
//! [5..13]      the first slot's sequence number, u64 LE (the block's key)
//! [13..17]     key generation, u32 LE (0: not encrypted)
//! [17..]       zstd(open block), with the records' dictionary; when the
//!              generation is not 0: nonce (12) | ChaCha20-Poly1305 of it,
//!              with bytes 0..17 as associated data (so a block cannot be
//!              moved to another key, nor its counts changed)
//! ```
//! Records stored in format 4 blocks are plain (record version 3: no zstd,
//! no encryption of their own): compressed together, the status webhooks of
//! one campaign share their keys, numbers and names, and a block of 64 is
//! less than half the bytes of its records compressed one by one (measured
//! on generated traffic: 175 MB -> 78 MB). One encryption per block also
//! saves each record's nonce and tag. Reading one record opens its block
//! (tens of microseconds); reading the log in order opens each block once.
//!
//! A block never spans two key periods, so a period's records are the
//! blocks whose keys fall in it, and a period's key opens all of them.
//! Size: 17 keys of a leaf (sled splits past 16) should stay under sled's
//! 128 KiB threshold for writing a page to a file of its own; 64 KiB of
//! JSON compresses to well under a tenth of that.

use crate::log::keys;
use crate::model::Seq;

/// The first byte of an open block.
pub(crate) const BLOCK_TAG: u8 = 0x80;
/// The first byte of a sealed block.
pub(crate) const SEALED_TAG: u8 = 0x81;
/// Records per block at most.
pub(crate) const MAX_RECORDS: usize = 64;
/// A block is closed once its (plain) records reach this many bytes.
pub(crate) const TARGET_PLAIN_BYTES: usize = 64 * 1024;
const HEAD: usize = 3;
/// Length of a sealed block's header (the associated data of its encryption).
pub(crate) const SEALED_HEAD: usize = 17;

/// Whether a stored value is an open block (not a record of the older
/// layout, nor a sealed block).
pub(crate) fn is_block(value: &[u8]) -> bool {
    value.first() == Some(&BLOCK_TAG)
}

/// Whether a stored value is a sealed block.
pub(crate) fn is_sealed(value: &[u8]) -> bool {
    value.first() == Some(&SEALED_TAG)
}

/// The header of a sealed block.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct SealedHead {
    /// Number of slots.
    pub(crate) slots: usize,
    /// Slots that hold a record.
    pub(crate) records: usize,
    /// The first slot's sequence number.
    pub(crate) first: Seq,
    /// Key generation (0: not encrypted).
    pub(crate) generation: u32,
}

impl SealedHead {
    /// Parses the header of a sealed block; `None` when it is not one.
    pub(crate) fn parse(value: &[u8]) -> Option<SealedHead> {
        if !is_sealed(value) || value.len() < SEALED_HEAD {
            return None;
        }
        let u16_at = |i: usize| usize::from(u16::from_le_bytes([value[i], value[i + 1]]));
        let first = u64::from_le_bytes(value[5..13].try_into().ok()?);
        let generation = u32::from_le_bytes(value[13..17].try_into().ok()?);
        Some(SealedHead {
            slots: u16_at(1),
            records: u16_at(3),
            first: Seq(first),
            generation,
        })
    }

    /// The header's bytes.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(SEALED_HEAD);
        out.push(SEALED_TAG);
        out.extend_from_slice(&(self.slots as u16).to_le_bytes());
        out.extend_from_slice(&(self.records as u16).to_le_bytes());
        out.extend_from_slice(&self.first.0.to_le_bytes());
        out.extend_from_slice(&self.generation.to_le_bytes());
        out
    }
}

/// A parsed block header: where each slot's record lies in the value.
pub(crate) struct BlockView<'a> {
    ends: &'a [u8],
    data_start: usize,
    data_len: usize,
}

impl<'a> BlockView<'a> {
    /// Parses a block value; `None` when its header is damaged.
    pub(crate) fn parse(value: &'a [u8]) -> Option<BlockView<'a>> {
        if !is_block(value) || value.len() < HEAD {
            return None;
        }
        let n = usize::from(u16::from_le_bytes([value[1], value[2]]));
        let data_start = HEAD + 4 * n;
        let ends = value.get(HEAD..data_start)?;
        let mut view = BlockView {
            ends,
            data_start,
            data_len: 0,
        };
        view.data_len = if n == 0 { 0 } else { view.end(n - 1) };
        (data_start.checked_add(view.data_len)? == value.len()).then_some(view)
    }

    /// Number of slots (including empty ones).
    pub(crate) fn slots(&self) -> usize {
        self.ends.len() / 4
    }

    fn end(&self, i: usize) -> usize {
        let b = &self.ends[4 * i..4 * i + 4];
        u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize
    }

    /// Offset and length of slot `i`'s record in the value, `None` when the
    /// slot is empty or out of range (or the offsets are damaged).
    pub(crate) fn slot(&self, i: usize) -> Option<(usize, usize)> {
        if i >= self.slots() {
            return None;
        }
        let start = if i == 0 { 0 } else { self.end(i - 1) };
        let end = self.end(i);
        (end > start && end <= self.data_len).then_some((self.data_start + start, end - start))
    }
}

/// A block being assembled: the writer's open tail, or a block rewritten by
/// a purge.
#[derive(Clone, Debug)]
pub(crate) struct BlockBuilder {
    first: Seq,
    ends: Vec<u32>,
    data: Vec<u8>,
}

impl BlockBuilder {
    /// An empty block whose first slot is `first`.
    pub(crate) fn new(first: Seq) -> BlockBuilder {
        BlockBuilder {
            first,
            ends: Vec::new(),
            data: Vec::new(),
        }
    }

    /// The block as it is stored under `first`, or `None` if the value is
    /// not a well-formed block.
    pub(crate) fn from_value(first: Seq, value: &[u8]) -> Option<BlockBuilder> {
        let view = BlockView::parse(value)?;
        let mut block = BlockBuilder::new(first);
        for i in 0..view.slots() {
            match view.slot(i) {
                Some((at, len)) => block.push(&value[at..at + len]),
                None => block.push(&[]),
            }
        }
        Some(block)
    }

    /// The key: the first slot's sequence number.
    pub(crate) fn first(&self) -> Seq {
        self.first
    }

    /// The sequence number the next pushed record gets.
    pub(crate) fn next_seq(&self) -> Seq {
        Seq(self.first.0 + self.ends.len() as u64)
    }

    /// Whether `seq`, a record of `len` bytes, may be added: it must be the
    /// next sequence number, of the same key period, and the block not full
    /// (an empty block takes any record, however large).
    pub(crate) fn accepts(&self, seq: Seq, len: usize) -> bool {
        if self.ends.is_empty() {
            return seq == self.first;
        }
        seq == self.next_seq()
            && keys::period_of(seq.0) == keys::period_of(self.first.0)
            && self.ends.len() < MAX_RECORDS
            && self.data.len() + len <= TARGET_PLAIN_BYTES
    }

    /// Adds the next slot (an empty `record` marks a removed one).
    pub(crate) fn push(&mut self, record: &[u8]) {
        self.data.extend_from_slice(record);
        self.ends.push(self.data.len() as u32);
    }

    /// Replaces the record of an existing slot (empty: removes it).
    pub(crate) fn set(&mut self, seq: Seq, record: &[u8]) -> bool {
        let Some((i, start, end)) = self.slot_of(seq) else {
            return false;
        };
        self.data.splice(start..end, record.iter().copied());
        let delta = record.len() as i64 - (end - start) as i64;
        for e in &mut self.ends[i..] {
            *e = (i64::from(*e) + delta) as u32;
        }
        true
    }

    /// Whether slot `seq` holds a record.
    pub(crate) fn holds(&self, seq: Seq) -> bool {
        self.slot_of(seq).is_some_and(|(_, start, end)| end > start)
    }

    /// The slot index of `seq` and where its record lies in the data.
    fn slot_of(&self, seq: Seq) -> Option<(usize, usize, usize)> {
        let i = seq
            .0
            .checked_sub(self.first.0)
            .and_then(|i| usize::try_from(i).ok())
            .filter(|&i| i < self.ends.len())?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        Some((i, start, self.ends[i] as usize))
    }

    /// Whether no slot holds a record.
    pub(crate) fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Number of slots, empty ones included.
    pub(crate) fn slots(&self) -> usize {
        self.ends.len()
    }

    /// Number of slots that hold a record.
    pub(crate) fn records(&self) -> usize {
        let mut start = 0;
        self.ends
            .iter()
            .filter(|&&end| {
                let held = end > start;
                start = end;
                held
            })
            .count()
    }

    /// The records of the slots, in order (`None`: an empty slot).
    #[cfg(test)]
    pub(crate) fn each(&self) -> impl Iterator<Item = (Seq, Option<&[u8]>)> + '_ {
        (0..self.ends.len()).map(move |i| {
            let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
            let end = self.ends[i] as usize;
            let seq = Seq(self.first.0 + i as u64);
            (seq, (end > start).then(|| &self.data[start..end]))
        })
    }

    /// The header a sealed form of this block has, under `generation`.
    pub(crate) fn sealed_head(&self, generation: u32) -> SealedHead {
        SealedHead {
            slots: self.slots(),
            records: self.records(),
            first: self.first,
            generation,
        }
    }

    /// The open form of the block (what a sealed block holds).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEAD + 4 * self.ends.len() + self.data.len());
        out.push(BLOCK_TAG);
        out.extend_from_slice(&(self.ends.len() as u16).to_le_bytes());
        for e in &self.ends {
            out.extend_from_slice(&e.to_le_bytes());
        }
        out.extend_from_slice(&self.data);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records_of(value: &[u8]) -> Vec<Option<Vec<u8>>> {
        let view = BlockView::parse(value).expect("a block");
        (0..view.slots())
            .map(|i| view.slot(i).map(|(at, len)| value[at..at + len].to_vec()))
            .collect()
    }

    #[test]
    fn a_block_returns_each_record_by_its_slot() {
        let mut b = BlockBuilder::new(Seq(10));
        b.push(b"first");
        b.push(b"second record");
        b.push(b"3");
        let value = b.encode();
        assert_eq!(
            records_of(&value),
            vec![
                Some(b"first".to_vec()),
                Some(b"second record".to_vec()),
                Some(b"3".to_vec())
            ]
        );
        assert_eq!(b.next_seq(), Seq(13));
    }

    #[test]
    fn replacing_and_removing_slots_keeps_the_others() {
        let mut b = BlockBuilder::new(Seq(0));
        for r in [&b"aa"[..], b"bbb", b"c"] {
            b.push(r);
        }
        assert!(b.set(Seq(1), b"BBBBBB"));
        assert!(b.set(Seq(0), b""));
        assert!(!b.set(Seq(3), b"x"), "no such slot");
        let value = b.encode();
        assert_eq!(
            records_of(&value),
            vec![None, Some(b"BBBBBB".to_vec()), Some(b"c".to_vec())]
        );
        assert!(!b.holds(Seq(0)) && b.holds(Seq(1)) && b.holds(Seq(2)));
        let again = BlockBuilder::from_value(Seq(0), &value).expect("a block");
        assert_eq!(again.encode(), value);
        b.set(Seq(1), b"");
        b.set(Seq(2), b"");
        assert!(b.is_empty());
    }

    #[test]
    fn a_block_closes_at_its_size_its_count_or_a_period_boundary() {
        let mut b = BlockBuilder::new(Seq(0));
        assert!(!b.accepts(Seq(1), 1), "the first record must be the key's");
        assert!(
            b.accepts(Seq(0), TARGET_PLAIN_BYTES * 4),
            "an empty block takes any size"
        );
        b.push(&[7; 100]);
        assert!(
            !b.accepts(Seq(2), 1),
            "sequence numbers must be consecutive"
        );
        assert!(
            !b.accepts(Seq(1), TARGET_PLAIN_BYTES),
            "over the target size"
        );
        for i in 1..MAX_RECORDS as u64 {
            assert!(b.accepts(Seq(i), 1));
            b.push(&[1]);
        }
        assert!(!b.accepts(Seq(MAX_RECORDS as u64), 1), "full");

        let last_of_period = (1u64 << keys::PERIOD_BITS) - 1;
        let mut b = BlockBuilder::new(Seq(last_of_period));
        b.push(b"x");
        assert!(!b.accepts(Seq(last_of_period + 1), 1), "next period");
    }

    #[test]
    fn damaged_headers_are_not_blocks() {
        let mut b = BlockBuilder::new(Seq(0));
        b.push(b"abc");
        let mut value = b.encode();
        assert!(BlockView::parse(&value).is_some());
        value.pop();
        assert!(BlockView::parse(&value).is_none(), "truncated");
        assert!(
            BlockView::parse(&[2, 1, 0]).is_none(),
            "a record, not a block"
        );
        assert!(BlockView::parse(&[BLOCK_TAG, 5]).is_none(), "short header");
    }

    #[test]
    fn a_sealed_header_counts_slots_and_held_records() {
        let mut b = BlockBuilder::new(Seq(70));
        for r in [&b"a"[..], b"", b"ccc", b""] {
            b.push(r);
        }
        assert_eq!((b.slots(), b.records()), (4, 2));
        let head = b.sealed_head(9);
        let bytes = head.encode();
        assert_eq!(bytes.len(), SEALED_HEAD);
        assert_eq!(SealedHead::parse(&bytes), Some(head));
        assert_eq!(
            (head.slots, head.records, head.first, head.generation),
            (4, 2, Seq(70), 9)
        );
        assert!(
            SealedHead::parse(&bytes[..SEALED_HEAD - 1]).is_none(),
            "short"
        );
        assert!(SealedHead::parse(&b.encode()).is_none(), "an open block");
        let held: Vec<(Seq, Option<&[u8]>)> = b.each().collect();
        assert_eq!(held[2], (Seq(72), Some(&b"ccc"[..])));
        assert_eq!(held[3], (Seq(73), None));
    }
}
