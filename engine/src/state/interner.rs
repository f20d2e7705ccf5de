//! The string interner every row shares.

use super::own::RawBytes;
use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};
use std::hash::BuildHasher;

/// An interned string; 0 is the empty string, which stands for "absent".
pub(crate) type Sym = u32;

/// String interner shared by all rows: names, categories or phones cost 4
/// bytes a row instead of a heap string each. The strings are packed in
/// one arena (a byte vector and the end of each string), and the lookup is
/// a hash table of numbers that hashes and compares through the arena: a
/// string costs its bytes and about 9 more, where a shared `Arc<str>` with
/// a map entry cost ~80 (at 10M entries, ~3M phones: 250 MB -> ~70 MB).
#[derive(Default)]
pub(crate) struct Interner {
    /// Every string, one after another. A `String`, not bytes, so that
    /// resolving a symbol is a slice at two char boundaries rather than a
    /// UTF-8 check of the whole string: that check was 7% of rendering a
    /// page of entries (perf of `ticks-bench --only "page 1,000"`).
    bytes: String,
    /// `ends[n]`: where string `n` ends in `bytes` (it starts where
    /// string `n - 1` ends).
    ends: Vec<u32>,
    /// Strings blanked by a purge: their bytes are zeroed, they read as "".
    forgotten: RoaringBitmap,
    lookup: hashbrown::HashTable<Sym>,
    hasher: foldhash::fast::RandomState,
}

/// The strings of an [`Interner`], as a checkpoint saves them.
#[derive(Serialize, Deserialize)]
pub(crate) struct SavedStrings {
    bytes: RawBytes,
    /// `ends`, u32 LE each.
    ends: RawBytes,
    forgotten: RawBytes,
}

impl Interner {
    pub(crate) fn new() -> Interner {
        let mut i = Interner::default();
        i.intern("");
        i
    }

    fn text(&self, sym: Sym) -> &str {
        arena_text(&self.bytes, &self.ends, sym)
    }

    pub(crate) fn intern(&mut self, s: &str) -> Sym {
        if let Some(sym) = self.get(s) {
            return sym;
        }
        let sym = self.ends.len() as Sym;
        self.bytes.push_str(s);
        self.ends.push(self.bytes.len() as u32);
        let hash = self.hasher.hash_one(s);
        let (bytes, ends, hasher) = (&self.bytes, &self.ends, &self.hasher);
        self.lookup.insert_unique(hash, sym, |other| {
            hasher.hash_one(arena_text(bytes, ends, *other))
        });
        sym
    }
    pub(crate) fn intern_opt(&mut self, s: Option<&str>) -> Sym {
        match s {
            Some(s) => self.intern(s),
            None => 0,
        }
    }
    pub(crate) fn get(&self, s: &str) -> Option<Sym> {
        let hash = self.hasher.hash_one(s);
        self.lookup
            .find(hash, |sym| {
                self.text(*sym) == s && !self.forgotten.contains(*sym)
            })
            .copied()
    }
    pub(crate) fn resolve(&self, sym: Sym) -> &str {
        if self.forgotten.contains(sym) {
            return "";
        }
        self.text(sym)
    }
    pub(crate) fn opt(&self, sym: Sym) -> Option<String> {
        (sym != 0).then(|| self.resolve(sym).to_string())
    }

    /// Rebuilds the string -> number lookup (forgotten strings are not in it).
    fn rebuild_lookup(&mut self) {
        let mut lookup = hashbrown::HashTable::with_capacity(self.ends.len());
        let (bytes, ends, hasher) = (&self.bytes, &self.ends, &self.hasher);
        for sym in 0..ends.len() as Sym {
            if !self.forgotten.contains(sym) {
                lookup.insert_unique(
                    hasher.hash_one(arena_text(bytes, ends, sym)),
                    sym,
                    |other| hasher.hash_one(arena_text(bytes, ends, *other)),
                );
            }
        }
        self.lookup = lookup;
    }

    /// Blanks a string no entry uses any more: its bytes are zeroed, its
    /// number stays taken, and the same text interned again gets a new one.
    pub(crate) fn forget(&mut self, sym: Sym) {
        if sym == 0 || sym as usize >= self.ends.len() || self.forgotten.contains(sym) {
            return;
        }
        let hash = self.hasher.hash_one(self.text(sym));
        if let Ok(found) = self.lookup.find_entry(hash, |other| *other == sym) {
            found.remove();
        }
        let span = arena_span(&self.ends, sym);
        if self.bytes.get(span.clone()).is_some() {
            // NUL bytes in place of the text: still UTF-8, the same length,
            // so every other string stays where it was.
            self.bytes
                .replace_range(span.clone(), &"\0".repeat(span.len()));
        }
        self.forgotten.insert(sym);
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.bytes.capacity()
            + self.ends.capacity() * 4
            + self.lookup.capacity() * 5
            + self.forgotten.serialized_size()
    }

    pub(crate) fn save(&self) -> SavedStrings {
        let mut forgotten = Vec::new();
        // Serializing into a Vec cannot fail.
        let _ = self.forgotten.serialize_into(&mut forgotten);
        SavedStrings {
            bytes: RawBytes(self.bytes.clone().into_bytes()),
            ends: RawBytes::from_u32s(&self.ends),
            forgotten: RawBytes(forgotten),
        }
    }

    /// The interner a checkpoint saved; `None` when it does not hold
    /// together (ends out of order or past the bytes, no empty string 0).
    pub(crate) fn load(saved: SavedStrings) -> Option<Interner> {
        let ends: Vec<u32> = saved.ends.u32s().collect();
        let ordered = ends.windows(2).all(|w| w[0] <= w[1]);
        if ends.first() != Some(&0)
            || !ordered
            || ends
                .last()
                .is_some_and(|end| *end as usize > saved.bytes.0.len())
        {
            return None;
        }
        let mut interner = Interner {
            bytes: String::from_utf8(saved.bytes.0).ok()?,
            ends,
            forgotten: RoaringBitmap::deserialize_from(&saved.forgotten.0[..]).ok()?,
            lookup: hashbrown::HashTable::new(),
            hasher: Default::default(),
        };
        interner.rebuild_lookup();
        Some(interner)
    }
}

/// Where string `sym` lies in an arena.
pub(crate) fn arena_span(ends: &[u32], sym: Sym) -> std::ops::Range<usize> {
    let n = sym as usize;
    let start = if n == 0 {
        0
    } else {
        ends.get(n - 1).copied().unwrap_or(0)
    };
    let end = ends.get(n).copied().unwrap_or(start);
    start as usize..end as usize
}

/// String `sym` of an arena (what the lookup hashes when it grows).
pub(crate) fn arena_text<'a>(bytes: &'a str, ends: &[u32], sym: Sym) -> &'a str {
    bytes.get(arena_span(ends, sym)).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interner_finds_forgets_and_reloads_its_strings() {
        let mut i = Interner::new();
        let a = i.intern("Black Friday");
        let b = i.intern("5511999990001");
        assert_eq!(
            i.intern("Black Friday"),
            a,
            "the same text, the same number"
        );
        assert_eq!((i.get(""), i.get("5511999990001")), (Some(0), Some(b)));
        for n in 0..10_000 {
            i.intern(&format!("phone {n}"));
        }
        assert_eq!(
            i.resolve(b),
            "5511999990001",
            "kept across the table's growth"
        );
        i.forget(b);
        assert_eq!((i.resolve(b), i.get("5511999990001")), ("", None));
        assert!(
            !i.bytes
                .as_bytes()
                .windows(13)
                .any(|w| w == b"5511999990001"),
            "its bytes are gone"
        );
        let again = i.intern("5511999990001");
        assert_ne!(again, b, "interned again, it gets a new number");
        let loaded = Interner::load(i.save()).expect("loads");
        assert_eq!(loaded.get("5511999990001"), Some(again));
        assert_eq!(
            (
                loaded.resolve(b),
                loaded.get("phone 9999").map(|s| loaded.resolve(s))
            ),
            ("", Some("phone 9999"))
        );
        assert_eq!(loaded.get("Black Friday"), Some(a));
    }
}
