//! What the report's and the cost report's scans share: key columns read a
//! chunk of ids at a time, and the filters that select a figure's entries.

use ticks_engine::{FieldValue, Key, KeyColumn};

pub(crate) type Map<K, V> = rustc_hash::FxHashMap<K, V>;

/// Query parameters that select exactly the entries behind a figure.
pub type Drill = Vec<(String, String)>;

pub(crate) fn drill(pairs: &[(&str, &str)]) -> Drill {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The filter value that selects `key` of `field` (`none` for no value).
pub(crate) fn filter_value(key: &FieldValue) -> String {
    match key {
        FieldValue::None => "none".into(),
        FieldValue::Int(i) => i.to_string(),
        FieldValue::Text(t) => t.clone(),
    }
}

/// Ids the scan plan reads per round: their codes, a few columns of 4 bytes
/// each, stay in the first-level caches.
pub(crate) const SCAN_CHUNK: usize = 2048;

/// A key column read by the scan plan, with its codes decoded once.
pub(crate) struct ScanColumn<'s> {
    column: KeyColumn<'s>,
    /// code -> key.
    pub(crate) keys: Vec<Key>,
    /// The codes of the current chunk of ids.
    pub(crate) codes: Vec<u32>,
}

impl<'s> ScanColumn<'s> {
    pub(crate) fn new(column: KeyColumn<'s>) -> ScanColumn<'s> {
        let keys = (0..column.codes() as u32).map(|c| column.key(c)).collect();
        ScanColumn {
            column,
            keys,
            codes: Vec::with_capacity(SCAN_CHUNK),
        }
    }
    pub(crate) fn load(&mut self, ids: &[u32]) {
        self.codes.clear();
        self.column.gather(ids, &mut self.codes);
    }
    /// The key of the chunk's `i`-th entry.
    #[inline]
    pub(crate) fn key_at(&self, i: usize) -> Key {
        self.keys[self.codes[i] as usize]
    }
    /// Counts per code -> counts per key (codes never counted are left out).
    pub(crate) fn decode(&self, counts: &[u64]) -> Map<Key, u64> {
        let mut out = Map::default();
        for (code, n) in counts.iter().enumerate() {
            if *n > 0 {
                *out.entry(self.keys[code]).or_default() += n;
            }
        }
        out
    }
}
