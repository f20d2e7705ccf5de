//! Key columns: every entry's bitmap key of every field, stored column by
//! column as small dense codes.
//!
//! Bitmaps answer "which entries have this value"; a scan over a match set
//! needs the opposite, "which value has this entry", for many fields at once
//! (a report of one campaign reads a dozen fields of half a million entries).
//! Reading that from the rows costs a few cache misses per entry (rows are
//! hundreds of bytes, status marks sit behind a pointer). A column holds one
//! code per entry, 2 bits to 4 bytes wide, so the same scan reads a few
//! bytes per entry per field, mostly from cache lines it has just loaded.
//!
//! Codes are given out per field in order of first appearance and never
//! reused while the state lives; a column widens (2 bits -> 4 bits -> u8 ->
//! u16 -> u32) the first time it needs a code that does not fit. The
//! columns are derived from the same keys as the bitmaps, in the same place
//! (`State::reindex`), so the two always agree.

use crate::state::own::RawBytes;
use roaring::RoaringBitmap;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

/// Codes of 2 or 4 bits, packed into bytes lowest bits first.
///
/// Most fields have a handful of keys (direction, attribution, origin,
/// billable: 3 or 4 with "never set"), and a byte per entry per field was
/// 16 of a 1M store's 28 MiB of key columns; packed they take a quarter.
#[derive(Clone, Debug)]
struct Packed<const BITS: usize> {
    bytes: Vec<u8>,
    len: usize,
}

impl<const BITS: usize> Packed<BITS> {
    const PER_BYTE: usize = 8 / BITS;
    const MASK: u8 = (1 << BITS) - 1;

    #[inline]
    fn get(&self, index: usize) -> u32 {
        match self.bytes.get(index / Self::PER_BYTE) {
            Some(b) => u32::from((b >> (index % Self::PER_BYTE * BITS)) & Self::MASK),
            None => 0,
        }
    }

    /// Sets the code at `index`, which is below `len`; `code` fits in BITS.
    fn put(&mut self, index: usize, code: u32) {
        let shift = index % Self::PER_BYTE * BITS;
        let byte = &mut self.bytes[index / Self::PER_BYTE];
        *byte = (*byte & !(Self::MASK << shift)) | ((code as u8 & Self::MASK) << shift);
    }

    fn resize(&mut self, len: usize) {
        self.bytes.resize(len.div_ceil(Self::PER_BYTE), 0);
        self.len = len;
    }

    /// Whether every code is below `limit`, a byte at a time (a load checks
    /// a dozen columns of millions of codes).
    fn all_below(&self, limit: usize) -> bool {
        let fits = |b: u8| {
            (0..Self::PER_BYTE).all(|i| usize::from((b >> (i * BITS)) & Self::MASK) < limit)
        };
        let table: Vec<bool> = (0..=u8::MAX).map(fits).collect();
        self.bytes.iter().all(|b| table[usize::from(*b)])
    }
}

/// The codes of one field, as narrow as its number of distinct keys allows.
#[derive(Clone, Debug)]
enum Codes {
    U2(Packed<2>),
    U4(Packed<4>),
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
}

impl Codes {
    fn empty() -> Codes {
        Codes::U2(Packed {
            bytes: Vec::new(),
            len: 0,
        })
    }

    fn len(&self) -> usize {
        match self {
            Codes::U2(p) => p.len,
            Codes::U4(p) => p.len,
            Codes::U8(v) => v.len(),
            Codes::U16(v) => v.len(),
            Codes::U32(v) => v.len(),
        }
    }

    /// Bits per code.
    fn bits(&self) -> u8 {
        match self {
            Codes::U2(_) => 2,
            Codes::U4(_) => 4,
            Codes::U8(_) => 8,
            Codes::U16(_) => 16,
            Codes::U32(_) => 32,
        }
    }

    #[inline]
    fn get(&self, index: usize) -> u32 {
        match self {
            Codes::U2(p) => p.get(index),
            Codes::U4(p) => p.get(index),
            Codes::U8(v) => v.get(index).map_or(0, |c| u32::from(*c)),
            Codes::U16(v) => v.get(index).map_or(0, |c| u32::from(*c)),
            Codes::U32(v) => v.get(index).copied().unwrap_or(0),
        }
    }

    /// Appends the code of each of `ids` to `out`; one loop per width, so
    /// the width is decided once, not per entry.
    fn gather(&self, ids: &[u32], out: &mut Vec<u32>) {
        fn run<T: Copy + Into<u32>>(v: &[T], ids: &[u32], out: &mut Vec<u32>) {
            out.extend(
                ids.iter()
                    .map(|id| v.get(*id as usize).map_or(0, |c| (*c).into())),
            );
        }
        match self {
            Codes::U2(p) => out.extend(ids.iter().map(|id| p.get(*id as usize))),
            Codes::U4(p) => out.extend(ids.iter().map(|id| p.get(*id as usize))),
            Codes::U8(v) => run(v, ids, out),
            Codes::U16(v) => run(v, ids, out),
            Codes::U32(v) => run(v, ids, out),
        }
    }

    /// Widens the codes until `code` fits.
    fn make_room_for(&mut self, code: u32) {
        let bits = 32 - code.leading_zeros();
        if bits <= u32::from(self.bits()) {
            return;
        }
        let len = self.len();
        let mut wider = match bits {
            0..=4 => Codes::U4(Packed {
                bytes: Vec::with_capacity(len.div_ceil(2)),
                len: 0,
            }),
            5..=8 => Codes::U8(Vec::with_capacity(len)),
            9..=16 => Codes::U16(Vec::with_capacity(len)),
            _ => Codes::U32(Vec::with_capacity(len)),
        };
        wider.resize(len);
        for index in 0..len {
            wider.put(index, self.get(index));
        }
        *self = wider;
    }

    fn resize(&mut self, len: usize) {
        match self {
            Codes::U2(p) => p.resize(len),
            Codes::U4(p) => p.resize(len),
            Codes::U8(v) => v.resize(len, 0),
            Codes::U16(v) => v.resize(len, 0),
            Codes::U32(v) => v.resize(len, 0),
        }
    }

    /// Sets the code at `index` (below `len`); the codes are wide enough.
    fn put(&mut self, index: usize, code: u32) {
        // The casts cannot truncate: make_room_for widened the codes.
        match self {
            Codes::U2(p) => p.put(index, code),
            Codes::U4(p) => p.put(index, code),
            Codes::U8(v) => v[index] = code as u8,
            Codes::U16(v) => v[index] = code as u16,
            Codes::U32(v) => v[index] = code,
        }
    }

    fn set(&mut self, index: usize, code: u32) {
        self.make_room_for(code);
        if index >= self.len() {
            self.resize(index + 1);
        }
        self.put(index, code);
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Codes::U2(p) => p.bytes.capacity(),
            Codes::U4(p) => p.bytes.capacity(),
            Codes::U8(v) => v.capacity(),
            Codes::U16(v) => v.capacity() * 2,
            Codes::U32(v) => v.capacity() * 4,
        }
    }
}

/// A column as a checkpoint holds it: `len` codes of `bits` each (2 and
/// 4 packed lowest bits first, 8, 16 and 32 as little-endian integers),
/// and the code -> key table.
#[derive(Serialize, Deserialize)]
pub(crate) struct SavedColumn {
    bits: u8,
    len: u64,
    codes: RawBytes,
    keys: Vec<i64>,
}

impl Codes {
    fn save(&self, erased: &RoaringBitmap) -> (u8, Vec<u8>) {
        fn bytes<T: Copy, const W: usize>(v: &[T], le: impl Fn(T) -> [u8; W]) -> Vec<u8> {
            let mut out = Vec::with_capacity(v.len() * W);
            for c in v {
                out.extend_from_slice(&le(*c));
            }
            out
        }
        let mut out = match self {
            Codes::U2(p) => p.bytes.clone(),
            Codes::U4(p) => p.bytes.clone(),
            Codes::U8(v) => v.clone(),
            Codes::U16(v) => bytes(v, u16::to_le_bytes),
            Codes::U32(v) => bytes(v, u32::to_le_bytes),
        };
        // A purged entry's last codes say what it was: they do not go to
        // disk (zeroed in the copy, not in memory, where queries go on).
        let bits = usize::from(self.bits());
        for id in erased.iter().take_while(|id| (*id as usize) < self.len()) {
            let at = id as usize * bits;
            match bits {
                2 | 4 => {
                    if let Some(byte) = out.get_mut(at / 8) {
                        *byte &= !((((1u16 << bits) - 1) as u8) << (at % 8));
                    }
                }
                _ => {
                    if let Some(code) = out.get_mut(at / 8..(at + bits) / 8) {
                        code.fill(0);
                    }
                }
            }
        }
        (self.bits(), out)
    }

    fn load(bits: u8, len: usize, bytes: Vec<u8>) -> Option<Codes> {
        let codes = match bits {
            2 => Codes::U2(Packed { bytes, len }),
            4 => Codes::U4(Packed { bytes, len }),
            8 => Codes::U8(bytes),
            16 => Codes::U16(
                bytes
                    .chunks_exact(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]))
                    .collect(),
            ),
            32 => Codes::U32(
                bytes
                    .chunks_exact(4)
                    .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            ),
            _ => return None,
        };
        let whole = match &codes {
            Codes::U2(p) => p.bytes.len() == len.div_ceil(4),
            Codes::U4(p) => p.bytes.len() == len.div_ceil(2),
            other => other.len() == len,
        };
        whole.then_some(codes)
    }
}

/// One field's column: a code per entry and the key each code stands for.
#[derive(Clone, Debug)]
pub(crate) struct Column {
    codes: Codes,
    /// code -> bitmap key. Code 0 is the key of entries never set (ids past
    /// the end, purged gaps); it is given to the first key set.
    keys: Vec<i64>,
    lookup: FxHashMap<i64, u32>,
}

impl Column {
    fn new() -> Column {
        Column {
            codes: Codes::empty(),
            keys: Vec::new(),
            lookup: FxHashMap::default(),
        }
    }

    /// Records that entry `id` has bitmap key `key`.
    pub(crate) fn set(&mut self, id: u32, key: i64) {
        let code = match self.lookup.get(&key) {
            Some(code) => *code,
            None => {
                let code = self.keys.len() as u32;
                self.keys.push(key);
                self.lookup.insert(key, code);
                code
            }
        };
        self.codes.set(id as usize, code);
    }

    /// The code of entry `id` (0 for ids never set).
    #[inline]
    pub(crate) fn code(&self, id: u32) -> u32 {
        self.codes.get(id as usize)
    }

    /// Appends the code of each of `ids` to `out`.
    pub(crate) fn gather(&self, ids: &[u32], out: &mut Vec<u32>) {
        self.codes.gather(ids, out);
    }

    /// code -> key, for every code given out.
    pub(crate) fn keys(&self) -> &[i64] {
        &self.keys
    }

    fn heap_bytes(&self) -> usize {
        self.codes.heap_bytes() + self.keys.capacity() * 8 + self.lookup.capacity() * 16
    }

    fn save(&self, erased: &RoaringBitmap, key_to_saved: impl Fn(u32, i64) -> i64) -> SavedColumn {
        let (bits, codes) = self.codes.save(erased);
        SavedColumn {
            bits,
            len: self.codes.len() as u64,
            codes: RawBytes(codes),
            keys: (0u32..)
                .zip(&self.keys)
                .map(|(code, key)| key_to_saved(code, *key))
                .collect(),
        }
    }

    fn load(saved: SavedColumn, entries: usize) -> Option<Column> {
        let len = usize::try_from(saved.len).ok()?;
        let codes = Codes::load(saved.bits, len, saved.codes.0)?;
        let keys = saved.keys;
        let valid = codes.len() <= entries
            && match &codes {
                Codes::U8(v) => v.iter().all(|c| usize::from(*c) < keys.len().max(1)),
                Codes::U16(v) => v.iter().all(|c| usize::from(*c) < keys.len().max(1)),
                Codes::U32(v) => v.iter().all(|c| (*c as usize) < keys.len().max(1)),
                Codes::U2(p) => p.all_below(keys.len().max(1)),
                Codes::U4(p) => p.all_below(keys.len().max(1)),
            };
        if !valid {
            return None;
        }
        let mut lookup = FxHashMap::default();
        lookup.reserve(keys.len());
        for (code, key) in (0u32..).zip(&keys) {
            lookup.entry(*key).or_insert(code);
        }
        Some(Column {
            codes,
            keys,
            lookup,
        })
    }
}

/// The columns of every field, in `Field` order.
#[derive(Clone, Debug)]
pub(crate) struct KeyColumns {
    columns: Vec<Column>,
}

impl KeyColumns {
    pub(crate) fn new(fields: usize) -> KeyColumns {
        KeyColumns {
            columns: (0..fields).map(|_| Column::new()).collect(),
        }
    }

    pub(crate) fn set(&mut self, slot: usize, id: u32, key: i64) {
        self.columns[slot].set(id, key);
    }

    pub(crate) fn column(&self, slot: usize) -> &Column {
        &self.columns[slot]
    }

    /// The columns for a checkpoint. `erased` are ids whose codes are
    /// zeroed (purged entries); `key_to_saved(slot, code, key)` gives the
    /// key to save for each table entry (a checkpoint renumbers strings).
    pub(crate) fn save(
        &self,
        erased: &RoaringBitmap,
        key_to_saved: impl Fn(usize, u32, i64) -> i64,
    ) -> Vec<SavedColumn> {
        self.columns
            .iter()
            .enumerate()
            .map(|(slot, c)| c.save(erased, |code, key| key_to_saved(slot, code, key)))
            .collect()
    }

    /// Columns from a checkpoint of a state with `entries` rows; `None`
    /// when they do not fit it (then the caller rebuilds them).
    pub(crate) fn load(saved: Vec<SavedColumn>, entries: usize) -> Option<KeyColumns> {
        let columns = saved
            .into_iter()
            .map(|c| Column::load(c, entries))
            .collect::<Option<Vec<Column>>>()?;
        Some(KeyColumns { columns })
    }

    /// Memory held by the columns, for the store's statistics.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.columns.iter().map(Column::heap_bytes).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_column_returns_the_key_last_set_for_each_entry() {
        let mut column = Column::new();
        column.set(0, 200);
        column.set(5, 404);
        column.set(2, 200);
        column.set(5, 200);
        let key = |id| column.keys()[column.code(id) as usize];
        assert_eq!(key(0), 200);
        assert_eq!(key(2), 200);
        assert_eq!(key(5), 200);
        assert_eq!(column.keys(), &[200, 404]);
    }

    #[test]
    fn a_column_widens_without_changing_earlier_codes() {
        let mut column = Column::new();
        for id in 0..70_000u32 {
            column.set(id, i64::from(id) * 3);
        }
        assert!(matches!(column.codes, Codes::U32(_)));
        for id in [0u32, 255, 256, 65_535, 65_536, 69_999] {
            assert_eq!(column.keys()[column.code(id) as usize], i64::from(id) * 3);
        }
    }

    #[test]
    fn gather_reads_the_same_codes_as_code() {
        let mut column = Column::new();
        for id in 0..300u32 {
            column.set(id, i64::from(id % 7));
        }
        let ids = [0u32, 6, 7, 299, 5_000];
        let mut out = vec![42];
        column.gather(&ids, &mut out);
        let expected: Vec<u32> = std::iter::once(42)
            .chain(ids.iter().map(|id| column.code(*id)))
            .collect();
        assert_eq!(out, expected);
    }

    #[test]
    fn a_saved_column_loads_with_the_same_codes_and_keys_and_erased_ids_zeroed() {
        for distinct in [3i64, 10, 100, 300, 70_000] {
            let mut columns = KeyColumns::new(1);
            for id in 0..80_000u32 {
                columns.set(0, id, i64::from(id) % distinct * 10);
            }
            let erased: RoaringBitmap = [7u32, 79_999].into_iter().collect();
            let saved = columns.save(&erased, |_, _, key| key + 1);
            let loaded = KeyColumns::load(saved, 80_000).expect("fits");
            let (before, after) = (columns.column(0), loaded.column(0));
            for id in [0u32, 1, 299, 300, 65_536, 79_998] {
                assert_eq!(after.code(id), before.code(id));
            }
            assert_eq!(after.code(7), 0);
            assert_eq!(after.code(79_999), 0);
            let shifted: Vec<i64> = before.keys().iter().map(|k| k + 1).collect();
            assert_eq!(after.keys(), &shifted[..]);
            let mut grown = loaded;
            grown.set(0, 80_000, 11);
            assert_eq!(
                grown.column(0).keys()[grown.column(0).code(80_000) as usize],
                11
            );
            let saved = columns.save(&erased, |_, _, key| key);
            assert!(
                KeyColumns::load(saved, 1_000).is_none(),
                "more codes than rows"
            );
        }
    }

    #[test]
    fn columns_of_few_keys_pack_codes_into_bits_and_widen_as_keys_come() {
        let mut column = Column::new();
        for id in 0..1_000u32 {
            column.set(id, i64::from(id % 3));
        }
        assert_eq!(column.codes.bits(), 2);
        assert!(
            matches!(&column.codes, Codes::U2(p) if p.bytes.len() == 250),
            "four codes a byte"
        );
        column.set(1_000, 77);
        column.set(1_001, 78);
        assert_eq!(column.codes.bits(), 4, "a fifth key widens to 4 bits");
        for id in 0..1_000u32 {
            assert_eq!(column.keys()[column.code(id) as usize], i64::from(id % 3));
        }
        column.set(5, 78);
        assert_eq!(column.keys()[column.code(5) as usize], 78);
        assert_eq!(
            column.keys()[column.code(4) as usize],
            1,
            "neighbours untouched"
        );
        assert_eq!(column.keys()[column.code(6) as usize], 0);
    }

    #[test]
    fn a_saved_packed_column_with_a_code_past_its_keys_is_refused() {
        let mut columns = KeyColumns::new(1);
        for id in 0..9u32 {
            columns.set(0, id, i64::from(id % 3));
        }
        let mut saved = columns.save(&RoaringBitmap::new(), |_, _, key| key);
        saved[0].keys.truncate(2);
        assert!(KeyColumns::load(saved, 9).is_none());
    }

    #[test]
    fn ids_never_set_read_as_code_zero() {
        let mut column = Column::new();
        column.set(3, 7);
        assert_eq!(column.code(1), 0);
        assert_eq!(column.code(1_000), 0);
    }
}
