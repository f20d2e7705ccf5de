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
    /// A templated send's parameters ([`encode_params`]): its text is
    /// rendered from them when it is read.
    Params = 4,
}

const OWN_FIELDS: usize = 5;

/// Separates the parts of one parameter, and parameters (ASCII unit and
/// record separators: no parameter a person reads holds them, and one that
/// did would only split wrongly in its own rendering).
const UNIT: char = '\u{1f}';
const RECORD: char = '\u{1e}';

/// A send's template parameters as one own string: `component UNIT name
/// UNIT kind UNIT value`, joined by RECORD.
pub(crate) fn encode_params(params: &[crate::model::TemplateParam]) -> String {
    let mut out = String::with_capacity(
        params
            .iter()
            .map(|p| p.component.len() + p.name.len() + p.kind.len() + p.value.len() + 4)
            .sum(),
    );
    for (i, p) in params.iter().enumerate() {
        if i > 0 {
            out.push(RECORD);
        }
        for (j, part) in [&p.component, &p.name, &p.kind, &p.value]
            .into_iter()
            .enumerate()
        {
            if j > 0 {
                out.push(UNIT);
            }
            // Both separators are ASCII, so a byte test finds them; parts
            // almost never hold one, and copying them whole is the common case.
            if part.bytes().any(|b| b == UNIT as u8 || b == RECORD as u8) {
                out.extend(part.chars().filter(|c| *c != UNIT && *c != RECORD));
            } else {
                out.push_str(part);
            }
        }
    }
    out
}

/// One parameter [`encode_params`] wrote, borrowed from the encoded string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ParamRef<'a> {
    pub(crate) component: &'a str,
    pub(crate) name: &'a str,
    pub(crate) value: &'a str,
}

impl crate::templates::ParamParts for ParamRef<'_> {
    fn component(&self) -> &str {
        self.component
    }
    fn name(&self) -> &str {
        self.name
    }
    fn value(&self) -> &str {
        self.value
    }
}

/// The parameters [`encode_params`] wrote, without copying them.
pub(crate) fn decode_params(encoded: &str) -> Vec<ParamRef<'_>> {
    let mut out = Vec::with_capacity(8);
    each_param(encoded, |p| out.push(p));
    out
}

/// The values of the parameters [`encode_params`] wrote, one per line
/// (empty ones left out): a send's text while its template is unknown.
pub(crate) fn params_text(encoded: &str) -> String {
    let mut out = String::with_capacity(encoded.len());
    each_param(encoded, |p| {
        if p.value.is_empty() {
            return;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(p.value);
    });
    out
}

/// Calls `f` with each parameter [`encode_params`] wrote, in order.
///
/// One pass over the bytes, with one predictable test for most of them
/// (both separators are ASCII below 0x20, so every cut is a character
/// boundary). `str::split` on a `char` took 240 ns for five parameters,
/// and so did `memchr2` (a call per separator, twenty of them); this loop
/// takes about half (a page of the table renders fifty sends).
fn each_param<'a>(encoded: &'a str, mut f: impl FnMut(ParamRef<'a>)) {
    if encoded.is_empty() {
        return;
    }
    // Where each part of the current parameter starts, and how many
    // separators it has had.
    let mut starts = [0usize; 4];
    let mut units = 0;
    let param = |starts: &[usize; 4], units: usize, end: usize| {
        let part = |i: usize| {
            if i > units {
                return "";
            }
            // The value is all that follows the third separator.
            let stop = if i < units.min(3) {
                starts[i + 1] - 1
            } else {
                end
            };
            encoded.get(starts[i]..stop).unwrap_or_default()
        };
        ParamRef {
            component: part(0),
            name: part(1),
            value: part(3),
        }
    };
    for (at, &b) in encoded.as_bytes().iter().enumerate() {
        if b > 0x1f {
            continue;
        }
        if b == UNIT as u8 {
            units += 1;
            if let Some(start) = starts.get_mut(units) {
                *start = at + 1;
            }
        } else if b == RECORD as u8 {
            f(param(&starts, units, at));
            starts = [at + 1; 4];
            units = 0;
        }
    }
    f(param(&starts, units, encoded.len()));
}

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

impl RawBytes {
    /// `v` as little-endian u32s, one after the other.
    pub(crate) fn from_u32s(v: &[u32]) -> RawBytes {
        let mut out = Vec::with_capacity(v.len() * 4);
        for n in v {
            out.extend_from_slice(&n.to_le_bytes());
        }
        RawBytes(out)
    }

    /// The little-endian u32s these bytes hold (a trailing partial one is
    /// left out: callers that must refuse it check the length).
    pub(crate) fn u32s(&self) -> impl Iterator<Item = u32> + '_ {
        self.0
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// wamid -> entry, for entries whose own strings hold a wamid. A slot
/// holds the entry id and 32 bits of the wamid's hash, never the wamid:
/// comparing goes through `is(id, wamid)`, the owner's way to check an
/// entry's wamid (which may decode a sealed row), and only for slots whose
/// hash bits match, so a miss decodes nothing; growing the table rehashes
/// from the stored bits. Hashes are foldhash, seeded at random when the
/// index is made (wamids come from outside); a checkpoint saves the seed
/// with the slots, so an open loads the table instead of reading every
/// row's wamid.
pub(crate) struct WamidIndex {
    table: HashTable<u64>,
    seed: u64,
    hasher: foldhash::fast::SeedableRandomState,
}

impl Default for WamidIndex {
    fn default() -> WamidIndex {
        WamidIndex::with_seed(rand::random(), 0)
    }
}

/// The table's hash of a slot's 32 stored bits: spread over 64, so that
/// both the bucket (low bits) and hashbrown's tag (top bits) vary.
fn spread(bits: u32) -> u64 {
    u64::from(bits).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

fn slot_bits(slot: u64) -> u32 {
    (slot >> 32) as u32
}

impl WamidIndex {
    fn with_seed(seed: u64, capacity: usize) -> WamidIndex {
        WamidIndex {
            table: HashTable::with_capacity(capacity),
            seed,
            hasher: foldhash::fast::SeedableRandomState::with_seed(
                seed,
                foldhash::SharedSeed::global_fixed(),
            ),
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.table.len()
    }

    /// Slots allocated.
    pub(crate) fn capacity(&self) -> usize {
        self.table.capacity()
    }

    fn bits(&self, wamid: &str) -> u32 {
        (self.hasher.hash_one(wamid) >> 32) as u32
    }

    pub(crate) fn get(&self, wamid: &str, is: impl Fn(u32, &str) -> bool) -> Option<EntryId> {
        let bits = self.bits(wamid);
        self.table
            .find(spread(bits), |slot| {
                slot_bits(*slot) == bits && is(*slot as u32, wamid)
            })
            .map(|slot| EntryId(*slot as u32))
    }

    /// Maps `wamid` to `id`, replacing an entry that had the same wamid.
    pub(crate) fn insert(&mut self, id: EntryId, wamid: &str, is: impl Fn(u32, &str) -> bool) {
        let bits = self.bits(wamid);
        let slot = (u64::from(bits) << 32) | u64::from(id.0);
        match self.table.entry(
            spread(bits),
            |other| slot_bits(*other) == bits && is(*other as u32, wamid),
            |other| spread(slot_bits(*other)),
        ) {
            hashbrown::hash_table::Entry::Occupied(mut found) => *found.get_mut() = slot,
            hashbrown::hash_table::Entry::Vacant(free) => {
                free.insert(slot);
            }
        }
    }

    /// Forgets `wamid` (call before the entry's own copy is cleared).
    pub(crate) fn remove(&mut self, wamid: &str, is: impl Fn(u32, &str) -> bool) {
        let bits = self.bits(wamid);
        if let Ok(found) = self.table.find_entry(spread(bits), |slot| {
            slot_bits(*slot) == bits && is(*slot as u32, wamid)
        }) {
            found.remove();
        }
    }

    /// The seed and every slot (u64 LE each), for a checkpoint.
    pub(crate) fn save(&self) -> (u64, Vec<u8>) {
        let mut slots = Vec::with_capacity(self.table.len() * 8);
        for slot in self.table.iter() {
            slots.extend_from_slice(&slot.to_le_bytes());
        }
        (self.seed, slots)
    }

    /// The index a checkpoint saved (slots of entries that are no longer
    /// live, as `keep` says, are left out).
    pub(crate) fn load(seed: u64, slots: &[u8], keep: impl Fn(u32) -> bool) -> WamidIndex {
        let mut index = WamidIndex::with_seed(seed, slots.len() / 8);
        for bytes in slots.chunks_exact(8) {
            let slot = u64::from_le_bytes(bytes.try_into().unwrap_or_default());
            if keep(slot as u32) {
                index
                    .table
                    .insert_unique(spread(slot_bits(slot)), slot, |s| spread(slot_bits(*s)));
            }
        }
        index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_read_back_as_written_with_separators_taken_out_of_values() {
        let param = |component: &str, name: &str, value: &str| crate::model::TemplateParam {
            component: component.into(),
            name: name.into(),
            kind: "text".into(),
            value: value.into(),
        };
        let params = [
            param("header", "1", "Pedido 7"),
            param("body", "first_name", "Ana\u{1f}Maria\u{1e}"),
            param("button", "url[0]", ""),
        ];
        let encoded = encode_params(&params);
        let read: Vec<(&str, &str, &str)> = decode_params(&encoded)
            .iter()
            .map(|p| (p.component, p.name, p.value))
            .collect();
        assert_eq!(
            read,
            [
                ("header", "1", "Pedido 7"),
                ("body", "first_name", "AnaMaria"),
                ("button", "url[0]", ""),
            ]
        );
        assert!(decode_params(&encode_params(&[])).is_empty());
        assert_eq!(params_text(&encoded), "Pedido 7\nAnaMaria");
        assert_eq!(params_text(""), "");
    }

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
        let is = |id: u32, wamid: &str| {
            owners.get(id as usize).and_then(|s| s.get(Own::Wamid)) == Some(wamid)
        };
        let mut index = WamidIndex::default();
        for id in 0..1000 {
            index.insert(EntryId(id), &format!("wamid.{id}"), is);
        }
        assert_eq!(index.len(), 1000);
        assert_eq!(index.get("wamid.617", is), Some(EntryId(617)));
        assert_eq!(index.get("wamid.1000", is), None);
        index.remove("wamid.617", is);
        assert_eq!(index.get("wamid.617", is), None);
        assert_eq!(index.len(), 999);
        index.insert(EntryId(3), "wamid.3", is);
        assert_eq!(
            index.len(),
            999,
            "the same wamid again replaces, never duplicates"
        );
        let (seed, slots) = index.save();
        let loaded = WamidIndex::load(seed, &slots, |id| id != 5);
        assert_eq!(loaded.len(), 998, "what `keep` refuses is left out");
        assert_eq!(loaded.get("wamid.999", is), Some(EntryId(999)));
        assert_eq!(loaded.get("wamid.5", is), None);
    }
}
