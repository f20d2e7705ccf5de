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
use hashbrown::HashTable;
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
/// Serialized as one byte string (bincode copies it whole), not as a
/// sequence of `u8`s read one by one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct OwnStrings(#[serde(with = "serde_bytes")] Box<[u8]>);

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
        let mut changes = [None; OWN_FIELDS];
        changes[field as usize] = Some(value);
        self.rewrite(changes);
    }

    /// Sets several fields, keeping the others, with one re-encoding (one
    /// allocation) for all of them: the writer sets up to three per event.
    pub(crate) fn set_all<'v>(&mut self, values: impl IntoIterator<Item = (Own, &'v str)>) {
        let mut changes = [None; OWN_FIELDS];
        for (field, value) in values {
            changes[field as usize] = Some(Some(value));
        }
        self.rewrite(changes);
    }

    /// Re-encodes with `changes[i]`, where given, as field `i`'s value.
    fn rewrite(&mut self, changes: [Option<Option<&str>>; OWN_FIELDS]) {
        if (0..OWN_FIELDS).all(|i| changes[i].is_none_or(|v| self.field_at(i) == v)) {
            return;
        }
        let mut out = Vec::new();
        {
            let values: [Option<&str>; OWN_FIELDS] =
                std::array::from_fn(|i| changes[i].unwrap_or_else(|| self.field_at(i)));
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

/// A byte string that serializes as one (bincode copies it whole), not as
/// a sequence of `u8`s read one by one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RawBytes(#[serde(with = "serde_bytes")] pub(crate) Vec<u8>);

/// wamid -> entry, for entries whose own strings hold a wamid. The table
/// holds only entry ids; hashing and comparing go through `wamid_of`, the
/// owner's way to read an entry's wamid. Hashes are foldhash, seeded at
/// random per process: wamids come from outside.
#[derive(Default)]
pub(crate) struct WamidIndex {
    table: HashTable<u32>,
    hasher: foldhash::fast::RandomState,
}

impl WamidIndex {
    pub(crate) fn with_capacity(n: usize) -> WamidIndex {
        WamidIndex {
            table: HashTable::with_capacity(n),
            hasher: Default::default(),
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.table.len()
    }

    pub(crate) fn get<'a>(
        &self,
        wamid: &str,
        wamid_of: impl Fn(u32) -> Option<&'a str>,
    ) -> Option<EntryId> {
        let hash = self.hasher.hash_one(wamid);
        self.table
            .find(hash, |id| wamid_of(*id) == Some(wamid))
            .map(|id| EntryId(*id))
    }

    /// Maps `wamid_of(id)` to `id`, replacing an entry that had the same
    /// wamid. The entry's wamid must already be readable through `wamid_of`.
    pub(crate) fn insert<'a>(&mut self, id: EntryId, wamid_of: impl Fn(u32) -> Option<&'a str>) {
        let Some(wamid) = wamid_of(id.0) else {
            return;
        };
        let hasher = &self.hasher;
        let hash = hasher.hash_one(wamid);
        match self.table.entry(
            hash,
            |other| wamid_of(*other) == Some(wamid),
            |other| hasher.hash_one(wamid_of(*other).unwrap_or("")),
        ) {
            hashbrown::hash_table::Entry::Occupied(mut slot) => *slot.get_mut() = id.0,
            hashbrown::hash_table::Entry::Vacant(slot) => {
                slot.insert(id.0);
            }
        }
    }

    /// Forgets `wamid` (call before the entry's own copy is cleared).
    pub(crate) fn remove<'a>(&mut self, wamid: &str, wamid_of: impl Fn(u32) -> Option<&'a str>) {
        let hash = self.hasher.hash_one(wamid);
        if let Ok(slot) = self
            .table
            .find_entry(hash, |id| wamid_of(*id) == Some(wamid))
        {
            slot.remove();
        }
    }
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
        s.set_all([(Own::CorrelationId, "crm-1"), (Own::Wamid, "wamid.X")]);
        assert_eq!(s.get(Own::CorrelationId), Some("crm-1"));
        assert_eq!(s.get(Own::Wamid), Some("wamid.X"));
        assert_eq!(s.get(Own::Text), None);
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
}
