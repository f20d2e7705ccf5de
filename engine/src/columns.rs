//! Key columns: every entry's bitmap key of every field, stored column by
//! column as small dense codes.
//!
//! Bitmaps answer "which entries have this value"; a scan over a match set
//! needs the opposite, "which value has this entry", for many fields at once
//! (a report of one campaign reads a dozen fields of half a million entries).
//! Reading that from the rows costs a few cache misses per entry (rows are
//! hundreds of bytes, status marks sit behind a pointer). A column holds one
//! code per entry, 1 to 4 bytes wide, so the same scan reads a few bytes per
//! entry per field, mostly from cache lines it has just loaded.
//!
//! Codes are given out per field in order of first appearance and never
//! reused while the state lives; a column widens (u8 -> u16 -> u32) the
//! first time it needs a code that does not fit. The columns are derived
//! from the same keys as the bitmaps, in the same place (`State::reindex`),
//! so the two always agree.

use rustc_hash::FxHashMap;

/// The codes of one field, as narrow as its number of distinct keys allows.
#[derive(Clone, Debug)]
enum Codes {
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
}

impl Codes {
    fn len(&self) -> usize {
        match self {
            Codes::U8(v) => v.len(),
            Codes::U16(v) => v.len(),
            Codes::U32(v) => v.len(),
        }
    }

    #[inline]
    fn get(&self, index: usize) -> u32 {
        match self {
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
            Codes::U8(v) => run(v, ids, out),
            Codes::U16(v) => run(v, ids, out),
            Codes::U32(v) => run(v, ids, out),
        }
    }

    /// Widens the column until `code` fits.
    fn make_room_for(&mut self, code: u32) {
        match self {
            Codes::U8(v) if code > u32::from(u8::MAX) => {
                *self = Codes::U16(v.iter().map(|c| u16::from(*c)).collect());
                self.make_room_for(code);
            }
            Codes::U16(v) if code > u32::from(u16::MAX) => {
                *self = Codes::U32(v.iter().map(|c| u32::from(*c)).collect());
            }
            _ => {}
        }
    }

    fn set(&mut self, index: usize, code: u32) {
        self.make_room_for(code);
        if index >= self.len() {
            let len = index + 1;
            match self {
                Codes::U8(v) => v.resize(len, 0),
                Codes::U16(v) => v.resize(len, 0),
                Codes::U32(v) => v.resize(len, 0),
            }
        }
        // The casts cannot truncate: make_room_for widened the column.
        match self {
            Codes::U8(v) => v[index] = code as u8,
            Codes::U16(v) => v[index] = code as u16,
            Codes::U32(v) => v[index] = code,
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Codes::U8(v) => v.capacity(),
            Codes::U16(v) => v.capacity() * 2,
            Codes::U32(v) => v.capacity() * 4,
        }
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
            codes: Codes::U8(Vec::new()),
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
    fn ids_never_set_read_as_code_zero() {
        let mut column = Column::new();
        column.set(3, 7);
        assert_eq!(column.code(1), 0);
        assert_eq!(column.code(1_000), 0);
    }
}
