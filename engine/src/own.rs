//! The strings that belong to one entry alone (its wamid, correlation id,
//! conversation id and text preview), and the wamid -> entry lookup that
//! reads them.
//!
//! Names, categories or phones repeat across entries and are interned
//! (4 bytes a row). These do not: at 10M messages there are ~10M of each,
//! and interning them cost a shared `Arc<str>` each plus a lookup-table
//! slot, about 1.5 GB. Here each entry packs its own in one allocation, and
//! the wamid lookup is a hash table of entry ids that compares against the
//! rows' own copy instead of keeping a second one as its key.

use crate::model::EntryId;
use serde::{Deserialize, Serialize};
use std::hash::BuildHasher;

/// One of an entry's own strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Own {
    Wamid = 0,
    CorrelationId = 1,
    ConversationId = 2,
    /// The text preview shown in the table.
    Text = 3,
}

const OWN_FIELDS: usize = 4;

/// An entry's own strings, packed: per field in [`Own`] order, a LEB128
/// tag (0 absent, else byte length + 1) and the UTF-8 bytes. An entry
/// with none of them holds an empty box, which does not allocate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct OwnStrings(Box<[u8]>);

fn read_tag(bytes: &[u8], pos: &mut usize) -> Option<usize> {
    let mut value = 0usize;
    for shift in (0..35).step_by(7) {
        let b = *bytes.get(*pos)?;
        *pos += 1;
        value |= usize::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

fn write_tag(out: &mut Vec<u8>, mut value: usize) {
    loop {
        let b = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

impl OwnStrings {
    fn field_at(&self, index: usize) -> Option<&str> {
        let bytes = &self.0;
        let mut pos = 0;
        for i in 0..OWN_FIELDS {
            let tag = read_tag(bytes, &mut pos)?;
            if tag == 0 {
                if i == index {
                    return None;
                }
                continue;
            }
            let end = pos + (tag - 1);
            if i == index {
                return std::str::from_utf8(bytes.get(pos..end)?).ok();
            }
            pos = end;
        }
        None
    }

    /// The field's value; `None` when it was never set.
    pub(crate) fn get(&self, field: Own) -> Option<&str> {
        self.field_at(field as usize)
    }

    /// The field's value, or "" when absent.
    pub(crate) fn text(&self, field: Own) -> &str {
        self.get(field).unwrap_or("")
    }

    /// Sets (or, with `None`, clears) one field, keeping the others.
    pub(crate) fn set(&mut self, field: Own, value: Option<&str>) {
        if self.get(field) == value {
            return;
        }
        let mut out = Vec::new();
        {
            let values: [Option<&str>; OWN_FIELDS] = std::array::from_fn(|i| {
                if i == field as usize {
                    value
                } else {
                    self.field_at(i)
                }
            });
            if values.iter().any(Option::is_some) {
                out.reserve(
                    OWN_FIELDS + values.iter().flatten().map(|v| v.len() + 1).sum::<usize>(),
                );
                for v in values {
                    match v {
                        None => out.push(0),
                        Some(v) => {
                            write_tag(&mut out, v.len() + 1);
                            out.extend_from_slice(v.as_bytes());
                        }
                    }
                }
            }
        }
        self.0 = out.into_boxed_slice();
    }
}

// As one byte string, not a sequence of `u8`s: a checkpoint holds ~10M of
// them and bincode reads a byte string in one copy.
impl Serialize for OwnStrings {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for OwnStrings {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Bytes;
        impl<'de> serde::de::Visitor<'de> for Bytes {
            type Value = OwnStrings;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("packed entry strings")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<OwnStrings, E> {
                Ok(OwnStrings(Box::from(v)))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<OwnStrings, E> {
                Ok(OwnStrings(v.into_boxed_slice()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<OwnStrings, A::Error> {
                let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
                while let Some(b) = seq.next_element()? {
                    v.push(b);
                }
                Ok(OwnStrings(v.into_boxed_slice()))
            }
        }
        d.deserialize_byte_buf(Bytes)
    }
}

/// A byte string that serializes as one (bincode copies it whole), not as
/// a sequence of `u8`s read one by one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RawBytes(pub(crate) Vec<u8>);

impl Serialize for RawBytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for RawBytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(RawBytes(OwnStrings::deserialize(d)?.0.into_vec()))
    }
}

/// wamid -> entry, for entries whose own strings hold a wamid.
///
/// Open addressing with linear probing over `[entry id + 1, tag]` slots
/// (id 0: empty). The tag is 32 bits of the wamid's hash: it picks the
/// home slot, so the table regrows without reading a single wamid, and it
/// filters probes, so a probe reads a row's wamid (the owner's copy, through
/// `wamid_of`) only when the tags agree. The hash is foldhash with a seed
/// drawn at random when the table is created: wamids come from outside,
/// and an outsider who cannot predict the tags cannot pile them up.
///
/// The slots are plain numbers, so a checkpoint saves them as they are and
/// an open loads them instead of hashing 10M wamids again ([`SavedWamids`]).
pub(crate) struct WamidIndex {
    slots: Vec<[u32; 2]>,
    len: usize,
    seed: u64,
    hasher: foldhash::fast::FixedState,
}

/// A [`WamidIndex`] as a checkpoint holds it.
#[derive(Serialize, Deserialize)]
pub(crate) struct SavedWamids {
    seed: u64,
    /// The hash of [`PROBE`] under `seed` when saved: a different value
    /// on load means the hash function changed (a new foldhash), and the
    /// table is rebuilt instead of trusted.
    probe: u64,
    len: u64,
    /// The slots, little-endian `u32` pairs.
    slots: RawBytes,
}

const PROBE: &str = "wamid.ticks-probe";
const MIN_SLOTS: usize = 16;

impl Default for WamidIndex {
    fn default() -> WamidIndex {
        WamidIndex::with_seed(foldhash::fast::RandomState::default().hash_one(0u64), 0)
    }
}

impl WamidIndex {
    fn with_seed(seed: u64, slots: usize) -> WamidIndex {
        WamidIndex {
            slots: vec![[0, 0]; slots],
            len: 0,
            seed,
            hasher: foldhash::fast::FixedState::with_seed(seed),
        }
    }

    /// An empty index with room for `n` wamids before it regrows.
    pub(crate) fn with_capacity(n: usize) -> WamidIndex {
        WamidIndex {
            slots: vec![[0, 0]; slots_for(n)],
            ..WamidIndex::default()
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.len
    }

    fn tag(&self, wamid: &str) -> u32 {
        (self.hasher.hash_one(wamid) >> 32) as u32
    }

    fn home(&self, tag: u32) -> usize {
        // Fibonacci hashing of the tag: every bit of it counts.
        let bits = self.slots.len().trailing_zeros();
        ((u64::from(tag).wrapping_mul(0x9E37_79B9_7F4A_7C15)) >> (64 - bits)) as usize
    }

    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    /// The slot holding `wamid`, if any.
    fn find<'a>(&self, wamid: &str, wamid_of: impl Fn(u32) -> Option<&'a str>) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let tag = self.tag(wamid);
        let mut i = self.home(tag);
        loop {
            let [id1, t] = self.slots[i];
            if id1 == 0 {
                return None;
            }
            if t == tag && wamid_of(id1 - 1) == Some(wamid) {
                return Some(i);
            }
            i = (i + 1) & self.mask();
        }
    }

    pub(crate) fn get<'a>(
        &self,
        wamid: &str,
        wamid_of: impl Fn(u32) -> Option<&'a str>,
    ) -> Option<EntryId> {
        self.find(wamid, wamid_of)
            .map(|i| EntryId(self.slots[i][0] - 1))
    }

    /// Maps `wamid_of(id)` to `id`, replacing an entry that had the same
    /// wamid. The entry's wamid must already be readable through `wamid_of`.
    pub(crate) fn insert<'a>(&mut self, id: EntryId, wamid_of: impl Fn(u32) -> Option<&'a str>) {
        let Some(wamid) = wamid_of(id.0) else {
            return;
        };
        if let Some(i) = self.find(wamid, &wamid_of) {
            self.slots[i][0] = id.0 + 1;
            return;
        }
        if (self.len + 1) > self.slots.len() / 4 * 3 {
            self.grow();
        }
        let tag = self.tag(wamid);
        self.place([id.0 + 1, tag]);
        self.len += 1;
    }

    fn place(&mut self, slot: [u32; 2]) {
        let mut i = self.home(slot[1]);
        while self.slots[i][0] != 0 {
            i = (i + 1) & self.mask();
        }
        self.slots[i] = slot;
    }

    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(MIN_SLOTS);
        let old = std::mem::replace(&mut self.slots, vec![[0, 0]; size]);
        for slot in old.into_iter().filter(|s| s[0] != 0) {
            self.place(slot);
        }
    }

    /// Forgets `wamid` (call before the entry's own copy is cleared).
    pub(crate) fn remove<'a>(&mut self, wamid: &str, wamid_of: impl Fn(u32) -> Option<&'a str>) {
        let Some(mut hole) = self.find(wamid, wamid_of) else {
            return;
        };
        // Backward-shift deletion: later slots of the run move into the
        // hole unless their home lies after it, so no probe ever stops
        // early at the freed slot.
        let mut j = hole;
        loop {
            j = (j + 1) & self.mask();
            let slot = self.slots[j];
            if slot[0] == 0 {
                break;
            }
            let home = self.home(slot[1]);
            let stays = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !stays {
                self.slots[hole] = slot;
                hole = j;
            }
        }
        self.slots[hole] = [0, 0];
        self.len -= 1;
    }

    /// The index for a checkpoint.
    pub(crate) fn save(&self) -> SavedWamids {
        let mut bytes = Vec::with_capacity(self.slots.len() * 8);
        for [id1, tag] in &self.slots {
            bytes.extend_from_slice(&id1.to_le_bytes());
            bytes.extend_from_slice(&tag.to_le_bytes());
        }
        SavedWamids {
            seed: self.seed,
            probe: self.hasher.hash_one(PROBE),
            len: self.len as u64,
            slots: RawBytes(bytes),
        }
    }

    /// The index a checkpoint saved, for a state of `entries` rows; `None`
    /// when it does not fit them or was hashed by another hash function.
    pub(crate) fn load(saved: SavedWamids, entries: usize) -> Option<WamidIndex> {
        let mut index = WamidIndex::with_seed(saved.seed, 0);
        if index.hasher.hash_one(PROBE) != saved.probe {
            return None;
        }
        let bytes = &saved.slots.0;
        let n = bytes.len() / 8;
        if !bytes.len().is_multiple_of(8) || (n != 0 && (!n.is_power_of_two() || n < MIN_SLOTS)) {
            return None;
        }
        index.slots = bytes
            .chunks_exact(8)
            .map(|c| {
                [
                    u32::from_le_bytes([c[0], c[1], c[2], c[3]]),
                    u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
                ]
            })
            .collect();
        let used = index.slots.iter().filter(|s| s[0] != 0).count();
        let fits = index.slots.iter().all(|s| (s[0] as usize) <= entries);
        if used as u64 != saved.len || !fits || used >= n.max(1) {
            return None;
        }
        index.len = used;
        Some(index)
    }
}

/// Slots for `n` wamids at a load of at most 3/4.
fn slots_for(n: usize) -> usize {
    (n.saturating_mul(4) / 3 + 1)
        .next_power_of_two()
        .max(MIN_SLOTS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_field_reads_back_what_was_set_and_setting_one_keeps_the_others() {
        let mut s = OwnStrings::default();
        assert_eq!(s.get(Own::Wamid), None);
        s.set(Own::Text, Some(&"é".repeat(200)));
        s.set(Own::Wamid, Some("wamid.HBgM"));
        s.set(Own::ConversationId, Some(""));
        assert_eq!(s.get(Own::Wamid), Some("wamid.HBgM"));
        assert_eq!(s.get(Own::CorrelationId), None);
        assert_eq!(s.get(Own::ConversationId), Some(""), "empty is not absent");
        assert_eq!(s.get(Own::Text), Some("é".repeat(200).as_str()));
        s.set(Own::Wamid, None);
        assert_eq!(s.get(Own::Wamid), None);
        assert_eq!(s.get(Own::Text).map(str::len), Some(400));
        s.set(Own::Text, None);
        s.set(Own::ConversationId, None);
        assert_eq!(s, OwnStrings::default(), "nothing set, nothing held");
    }

    #[test]
    fn the_wamid_index_finds_replaces_and_forgets_through_the_owner() {
        let owners: Vec<OwnStrings> = (0..1000)
            .map(|i| {
                let mut s = OwnStrings::default();
                s.set(Own::Wamid, Some(&format!("wamid.{i}")));
                s
            })
            .collect();
        let wamid_of = |id: u32| owners.get(id as usize).and_then(|s| s.get(Own::Wamid));
        let mut index = WamidIndex::default();
        for id in 0..1000 {
            index.insert(EntryId(id), wamid_of);
        }
        assert_eq!(index.len(), 1000);
        assert_eq!(index.get("wamid.617", wamid_of), Some(EntryId(617)));
        assert_eq!(index.get("wamid.1000", wamid_of), None);
        index.remove("wamid.617", wamid_of);
        assert_eq!(index.get("wamid.617", wamid_of), None);
        assert_eq!(index.len(), 999);
        index.insert(EntryId(3), wamid_of);
        assert_eq!(
            index.len(),
            999,
            "the same wamid again replaces, never duplicates"
        );
    }

    /// Against a `HashMap`, through many inserts and removals in a table
    /// small enough that runs wrap around its end: what was inserted and
    /// not removed is found, nothing else is; and a saved table loads to
    /// the same answers.
    #[test]
    fn the_wamid_index_agrees_with_a_map_through_inserts_and_removals() {
        let owners: Vec<OwnStrings> = (0..3000)
            .map(|i| {
                let mut s = OwnStrings::default();
                s.set(Own::Wamid, Some(&format!("w{}", i % 2500)));
                s
            })
            .collect();
        let wamid_of = |id: u32| owners.get(id as usize).and_then(|s| s.get(Own::Wamid));
        let mut index = WamidIndex::default();
        let mut model = std::collections::HashMap::new();
        let mut x = 12345u64;
        for step in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let id = (x % 3000) as u32;
            let wamid = wamid_of(id).expect("wamid").to_string();
            if step % 3 == 0 {
                index.remove(&wamid, wamid_of);
                model.remove(&wamid);
            } else {
                index.insert(EntryId(id), wamid_of);
                model.insert(wamid, id);
            }
            if step % 997 == 0 {
                index = WamidIndex::load(index.save(), 3000).expect("loads");
            }
        }
        assert_eq!(index.len(), model.len());
        assert!(index.len() > 500, "the comparison must cover a full table");
        for i in 0..2600 {
            let wamid = format!("w{i}");
            assert_eq!(
                index.get(&wamid, wamid_of),
                model.get(&wamid).map(|id| EntryId(*id)),
                "{wamid}"
            );
        }
        assert!(
            WamidIndex::load(index.save(), 10).is_none(),
            "ids past the rows"
        );
        let mut saved = index.save();
        saved.probe ^= 1;
        assert!(
            WamidIndex::load(saved, 3000).is_none(),
            "another hash function"
        );
    }
}
