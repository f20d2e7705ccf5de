//! The read view queries run against: bitmaps, key columns, rows, and
//! the field values as the API names them.

use super::views::{entry_of, Entry, TextColumn};
use crate::model::*;
use crate::state::own::Own;
use crate::state::{Field, Key, Row, State, Value, DAY_MS, HOUR_MS, NONE_KEY};
use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::sync::RwLockReadGuard;

/// A consistent read view of the derived state.
pub struct Snapshot<'a> {
    pub(super) state: RwLockReadGuard<'a, State>,
}

/// One field's bitmap key of every entry (see [`Snapshot::column`]). Each
/// entry has a *code*, a small dense number that stands for one key; a scan
/// counts codes in an array and decodes each distinct code once.
#[derive(Clone, Copy)]
pub struct KeyColumn<'s>(&'s crate::state::columns::Column);

impl KeyColumn<'_> {
    /// The code of entry `id`.
    #[inline]
    pub fn code(&self, id: u32) -> u32 {
        self.0.code(id)
    }

    /// Appends the code of each of `ids` to `out`: the fast way to read
    /// many entries (a scan reads a chunk of ids column by column).
    pub fn gather(&self, ids: &[u32], out: &mut Vec<u32>) {
        self.0.gather(ids, out);
    }

    /// The number of codes given out: every code is below it.
    pub fn codes(&self) -> usize {
        self.0.keys().len()
    }

    /// The key a code stands for, as [`Snapshot::values`] lists it
    /// ([`Key::NONE`] when the entry has no value).
    pub fn key(&self, code: u32) -> Key {
        Key::from_raw(
            self.0
                .keys()
                .get(code as usize)
                .copied()
                .unwrap_or(NONE_KEY),
        )
    }
}

/// A bitmap key decoded for display: absent, a number, or a text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FieldValue {
    /// The field is absent.
    None,
    /// A numeric value (codes, days, hours).
    Int(i64),
    /// A text value.
    Text(String),
}

impl<'a> Snapshot<'a> {
    /// Every live entry.
    pub fn live(&self) -> &RoaringBitmap {
        &self.state.live
    }

    /// The log records the events of the live entries among `ids` came
    /// from: each entry's in log order, entries in id order, a record
    /// shared by several entries once per entry. Reads each block of rows
    /// once.
    pub fn entry_records(&self, ids: &[u32]) -> Vec<Seq> {
        let mut sorted = ids.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let mut seqs = Vec::new();
        self.state.rows.for_each(sorted, |_, row| {
            if !row.purged {
                seqs.extend_from_slice(&row.records);
            }
        });
        seqs
    }

    /// The entry of a message id.
    pub fn entry_for_wamid(&self, wamid: &str) -> Option<EntryId> {
        self.state.entry_for_wamid(wamid)
    }

    /// Number of entry ids ever handed out (live or purged).
    pub fn entry_count(&self) -> usize {
        self.state.rows.len()
    }

    /// The bitmap of entries whose `field` has the key; `None` when no
    /// entry has it.
    pub fn bitmap(&self, field: Field, key: Key) -> Option<&RoaringBitmap> {
        self.state.bitmap(field, key.raw())
    }

    /// The entries whose `field` has any of `values`. An engagement value
    /// means "at least": `replied` also takes the entries that got a click.
    pub fn any_of(&self, field: Field, values: &[Value]) -> Cow<'_, RoaringBitmap> {
        let mut found = values
            .iter()
            .flat_map(|v| self.keys_of(field, v))
            .filter_map(|k| self.state.bitmap(field, k));
        match (found.next(), found.next()) {
            (None, _) => Cow::Owned(RoaringBitmap::new()),
            (Some(only), None) => Cow::Borrowed(only),
            (Some(a), Some(b)) => {
                let mut union = a | b;
                for more in found {
                    union |= more;
                }
                Cow::Owned(union)
            }
        }
    }

    /// The keys a value matches: one, except an engagement's "at least"
    /// (none when the value never occurs, e.g. an unseen text).
    fn keys_of(&self, field: Field, value: &Value) -> Vec<i64> {
        match value {
            Value::Text(t) if field.is_text() => match self.state.interner.get(t) {
                Some(sym) => vec![i64::from(sym)],
                None => Vec::new(),
            },
            Value::Engagement(asked) => Engagement::ALL
                .into_iter()
                .filter(|e| e.includes(*asked))
                .map(|e| Key::engagement(e).raw())
                .collect(),
            plain => plain_key(plain).map(Key::raw).into_iter().collect(),
        }
    }

    /// Decodes a key of `field` for display.
    pub fn value_of(&self, field: Field, key: Key) -> FieldValue {
        if field.is_text() && !key.is_none() {
            return FieldValue::Text(self.state.interner.resolve(key.raw() as u32).to_string());
        }
        plain_value_of(field, key)
    }

    /// Every key of a field with its bitmap, in key order.
    pub fn values(&self, field: Field) -> impl Iterator<Item = (Key, &RoaringBitmap)> + '_ {
        self.state
            .field_index(field)
            .iter()
            .map(|(k, v)| (Key::from_raw(*k), v))
    }

    /// The values of a text field sorted by their text, for sorting by it.
    pub fn values_by_text(&self, field: Field) -> Vec<(String, &RoaringBitmap)> {
        let mut v: Vec<(String, &RoaringBitmap)> = self
            .state
            .field_index(field)
            .iter()
            .map(|(k, bm)| {
                let text = match self.value_of(field, Key::from_raw(*k)) {
                    FieldValue::Text(t) => t,
                    FieldValue::Int(i) => i.to_string(),
                    FieldValue::None => String::new(),
                };
                (text, bm)
            })
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// One field's key of every entry, as a column of small codes: what a
    /// scan reads instead of intersecting bitmaps. Meaningful for live
    /// entries only (a purged entry keeps its last code).
    pub fn column(&self, field: Field) -> KeyColumn<'_> {
        KeyColumn(self.state.columns.column(field as usize))
    }

    /// The entries recorded in `[from, to)` (UTC milliseconds): whole days
    /// and hours come straight from their bitmaps; only the edge hours are
    /// checked entry by entry.
    pub fn recorded_between(&self, from: i64, to: i64) -> RoaringBitmap {
        let mut parts: Vec<&RoaringBitmap> = Vec::new();
        let mut edges = RoaringBitmap::new();
        let first_full_day = from.div_euclid(DAY_MS) + i64::from(from.rem_euclid(DAY_MS) != 0);
        let last_full_day = to.div_euclid(DAY_MS) - 1; // the day ending at or before `to`
        for (day, bm) in self.state.field_index(Field::Day) {
            let day = *day;
            if day >= first_full_day && day <= last_full_day {
                parts.push(bm);
            }
        }
        let full_days_from = first_full_day.saturating_mul(DAY_MS);
        let full_days_to = (last_full_day + 1).saturating_mul(DAY_MS);
        for (hour, bm) in self.state.field_index(Field::Hour) {
            let start = hour.saturating_mul(HOUR_MS);
            let end = start.saturating_add(HOUR_MS);
            if end <= from || start >= to {
                continue;
            }
            if first_full_day <= last_full_day && start >= full_days_from && end <= full_days_to {
                continue; // covered by a whole day
            }
            if start >= from && end <= to {
                parts.push(bm);
            } else {
                for id in bm {
                    let ms = self.recorded_ms(id);
                    if ms >= from && ms < to {
                        edges.insert(id);
                    }
                }
            }
        }
        let mut all = edges;
        for p in parts {
            all |= p;
        }
        all
    }

    /// `recorded_at` of an entry, UTC milliseconds (0 for unknown ids).
    pub fn recorded_ms(&self, id: u32) -> i64 {
        self.state.rows.recorded_ms(id)
    }

    /// The entry's value of a column, for sorting by columns without a bitmap.
    pub fn sort_text(&self, id: u32, column: TextColumn) -> String {
        self.state
            .rows
            .get(id)
            .map(|r| self.text_of(&r, column).to_string())
            .unwrap_or_default()
    }

    /// [`Snapshot::sort_text`] of each of `ids`, in their order. Reads
    /// each block of rows once when `ids` ascend (what sorting a match set
    /// by a text column asks).
    pub fn sort_texts(&self, ids: &[u32], column: TextColumn) -> Vec<String> {
        let mut out = vec![String::new(); ids.len()];
        let mut pos = 0;
        self.state.rows.for_each(ids.iter().copied(), |id, row| {
            while pos < ids.len() && ids[pos] != id {
                pos += 1;
            }
            if let Some(slot) = out.get_mut(pos) {
                *slot = self.text_of(row, column).to_string();
                pos += 1;
            }
        });
        out
    }

    fn text_of<'r>(&'r self, r: &'r Row, column: TextColumn) -> Cow<'r, str> {
        let i = &self.state.interner;
        Cow::Borrowed(match column {
            TextColumn::Phone => i.resolve(r.phone),
            TextColumn::CorrelationId => r.own.text(Own::CorrelationId),
            TextColumn::Wamid => r.own.text(Own::Wamid),
            TextColumn::ConversationId => r.own.text(Own::ConversationId),
            TextColumn::RecipientRef => i.resolve(r.recipient_ref),
            TextColumn::Text => return self.state.shown_text(r).text,
        })
    }

    /// Entries whose text column equals `value` exactly (a scan of the
    /// candidates: meant for high-cardinality columns without a bitmap).
    pub fn filter_text_eq(
        &self,
        candidates: &RoaringBitmap,
        column: TextColumn,
        values: &[String],
    ) -> RoaringBitmap {
        let mut out = RoaringBitmap::new();
        self.state.rows.for_each(candidates.iter(), |id, row| {
            let text = self.text_of(row, column);
            if values.iter().any(|v| *v == text) {
                out.insert(id);
            }
        });
        out
    }

    /// The live entries among `ids`, in the order of `ids`, as shown in the
    /// log table. Reads each block of rows once (a page of the table
    /// often lies in one or two).
    pub fn entries(&self, ids: &[u32]) -> Vec<Entry> {
        let mut order: Vec<(u32, usize)> = ids.iter().copied().zip(0..).collect();
        order.sort_unstable();
        let mut distinct: Vec<u32> = order.iter().map(|(id, _)| *id).collect();
        distinct.dedup();
        let mut found: Vec<Option<Entry>> = vec![None; ids.len()];
        let mut k = 0;
        self.state.rows.for_each(distinct, |id, row| {
            while k < order.len() && order[k].0 < id {
                k += 1;
            }
            while k < order.len() && order[k].0 == id {
                if !row.purged {
                    found[order[k].1] = Some(self.entry_from_row(EntryId(id), row));
                }
                k += 1;
            }
        });
        found.into_iter().flatten().collect()
    }

    /// The entry, as shown in the log table.
    pub fn entry(&self, id: EntryId) -> Option<Entry> {
        self.state.row(id).map(|row| self.entry_from_row(id, &row))
    }

    pub(super) fn entry_from_row(&self, id: EntryId, r: &Row) -> Entry {
        entry_of(&self.state, id, r)
    }
}

/// Where the value `name` of a field that is not a text (a status, a
/// direction, a flag) sorts among the field's values: the store sorts the
/// log table by such a field in the order of its keys, no value first.
/// `None` for a text field or a name the field does not have.
pub fn sort_rank(field: Field, name: &str) -> Option<i64> {
    let value = field.parse_value(name).ok()?;
    plain_key(&value).map(Key::raw)
}

/// The key of a value of a field that is not a text (a status, a code, a
/// flag...): the same in every store; `None` for a text. An engagement is
/// its own key here (a filter's "at least" is `Snapshot::keys_of`'s).
fn plain_key(value: &Value) -> Option<Key> {
    Some(match value {
        Value::None => Key::NONE,
        Value::Code(c) => Key::from_raw(*c),
        Value::Status(s) => Key::status(*s),
        Value::Direction(d) => Key::direction(*d),
        Value::Engagement(e) => Key::engagement(*e),
        Value::Reached(r) => Key::reached(*r),
        Value::Attribution(a) => Key::attribution(*a),
        Value::Billable(b) => Key::billable(*b),
        Value::Session(s) => Key::from_raw(*s as i64),
        Value::Marketing(p) => Key::from_raw(*p as i64),
        Value::Origin(o) => Key::from_raw(*o as i64),
        Value::Text(_) => return None,
    })
}

/// Decodes a key of a field that is not a text (a status, a code, a
/// flag...): the same in every store.
fn plain_value_of(field: Field, key: Key) -> FieldValue {
    let key = key.raw();
    if key == NONE_KEY {
        return FieldValue::None;
    }
    let name = match field {
        Field::Status => Status::ALL
            .into_iter()
            .find(|s| *s as i64 == key)
            .map(Status::as_str),
        Field::Direction => [Direction::Outbound, Direction::Inbound, Direction::Event]
            .into_iter()
            .find(|d| *d as i64 == key)
            .map(Direction::as_str),
        Field::Session => [Session::Open, Session::Closed]
            .into_iter()
            .find(|s| *s as i64 == key)
            .map(Session::as_str),
        Field::Engagement => Engagement::ALL
            .into_iter()
            .find(|e| *e as i64 == key)
            .map(Engagement::as_str),
        Field::Reached => Key::from_raw(key).as_reached().map(Reached::as_str),
        Field::Origin => Origin::ALL
            .into_iter()
            .find(|o| *o as i64 == key)
            .map(Origin::as_str),
        Field::Marketing => [Preference::Stop, Preference::Resume]
            .into_iter()
            .find(|p| *p as i64 == key)
            .map(Preference::as_str),
        Field::Attribution => [Attribution::Quoted, Attribution::Inferred]
            .into_iter()
            .find(|a| *a as i64 == key)
            .map(Attribution::as_str),
        Field::Billable => match key {
            0 => Some("false"),
            1 => Some("true"),
            _ => None,
        },
        _ => None,
    };
    name.map_or(FieldValue::Int(key), |n| FieldValue::Text(n.into()))
}

/// Keys of field values for tallies made outside a store (a backend that
/// counts in its database): fields that are not texts keyed as every store
/// keys them (so that a report's rules, `status == failed`, read them
/// alike), texts numbered in the order they come.
#[derive(Default)]
pub struct KeyBook {
    texts: Vec<String>,
    numbers: rustc_hash::FxHashMap<String, u32>,
}

impl KeyBook {
    /// The key of `value` of `field`; `None` for a value the field cannot
    /// take (a status name no status has).
    pub fn key(&mut self, field: Field, value: &FieldValue) -> Option<Key> {
        Some(match value {
            FieldValue::None => Key::NONE,
            FieldValue::Int(i) if !field.is_text() => Key::from_raw(*i),
            FieldValue::Int(i) => self.text_key(&i.to_string()),
            FieldValue::Text(t) if field.is_text() => self.text_key(t),
            FieldValue::Text(t) => plain_key(&field.parse_value(t).ok()?)?,
        })
    }

    fn text_key(&mut self, text: &str) -> Key {
        let next = self.texts.len() as u32;
        let n = *self.numbers.entry(text.to_string()).or_insert(next);
        if n == next {
            self.texts.push(text.to_string());
        }
        Key::from_raw(i64::from(n))
    }

    /// Decodes a key this book gave, as [`Snapshot::value_of`] decodes the
    /// store's.
    pub fn value_of(&self, field: Field, key: Key) -> FieldValue {
        if field.is_text() && !key.is_none() {
            return self
                .texts
                .get(key.raw() as usize)
                .map_or(FieldValue::None, |t| FieldValue::Text(t.clone()));
        }
        plain_value_of(field, key)
    }
}
