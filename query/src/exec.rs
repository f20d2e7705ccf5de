//! Running a [`LogQuery`]: filters to a bitmap, then sort and page.

use crate::buckets::{bucket_label, Bucketer, Interval};
use crate::error::QueryError;
use crate::fields::FilterField;
use crate::params::{Column, FilterValue, LogQuery, Sort};
use jiff::Zoned;
use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::cmp::Ordering;
use ticks_engine::{Entry, Field, FieldValue, Key, Snapshot, Store, TextColumn, Value};

/// One page of the log table.
#[derive(Clone, Debug, Serialize)]
pub struct Page {
    /// Exact number of entries matching the query.
    pub total: u64,
    /// The page, in sort order.
    pub entries: Vec<Entry>,
    /// Pass as `cursor` to get the page after this one; `None` at the end.
    pub next_cursor: Option<String>,
}

/// Matches computed outside the snapshot lock (text index look-ups).
pub(crate) struct Prefetched {
    text: Option<RoaringBitmap>,
    exact: Vec<(usize, RoaringBitmap)>,
}

impl Prefetched {
    /// Nothing looked up: for queries without free text or correlation ids.
    pub(crate) const NONE: Prefetched = Prefetched {
        text: None,
        exact: Vec::new(),
    };
}

pub(crate) fn prefetch(store: &Store, q: &LogQuery) -> Result<Prefetched, QueryError> {
    let mut exact = Vec::new();
    for (i, f) in q.filters.iter().enumerate() {
        // `phone=` narrows through the contacts instead (`matches_in`).
        if f.field == FilterField::CorrelationId {
            let mut bm = RoaringBitmap::new();
            for v in exact_candidates(f.field, &f.include)
                .iter()
                .chain(&exact_candidates(f.field, &f.exclude))
            {
                bm |= store.exact_search(v)?;
            }
            exact.push((i, bm));
        }
    }
    let mut pre = Prefetched { text: None, exact };
    if let Some(t) = &q.text {
        // The other filters first: when they leave few candidates, the text
        // query only checks theirs (a common word can occur in millions of
        // documents). The snapshot is not held during the text search.
        let (candidates, live) = {
            let snap = store.snapshot();
            (matches_in(&snap, q, &pre), snap.live().len())
        };
        let mut found = if candidates.len() * TEXT_WITHIN_RATIO < live {
            store.text_search_within(t, &candidates)?
        } else {
            store.text_search(t)?
        };
        // A search that is one person's identifier (a number as typed, a
        // user id, `@username`) also finds every entry of that person, as
        // `contact=` would.
        if looks_like_identifier(t) {
            found |= store.snapshot().contact_entries(t);
        }
        pre.text = Some(found);
    }
    Ok(pre)
}

/// Whether free text is one identifier of a person: `@username`, a
/// business-scoped user id, or a phone number typed with or without
/// punctuation (at least 8 digits).
pub(crate) fn looks_like_identifier(text: &str) -> bool {
    let t = text.trim();
    if t.starts_with('@') && t.len() > 1 && !t.contains(char::is_whitespace) {
        return true;
    }
    if ticks_engine::is_user_id(t) {
        return true;
    }
    let digits = t.chars().filter(char::is_ascii_digit).count();
    digits >= 8
        && t.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | '(' | ')' | '.' | ' '))
}

/// Below one candidate in this many live entries, free text is searched
/// within the candidates instead of everywhere.
const TEXT_WITHIN_RATIO: u64 = 8;

/// The entries matching the query's filters, range and text.
pub fn matching(store: &Store, q: &LogQuery) -> Result<RoaringBitmap, QueryError> {
    let pre = prefetch(store, q)?;
    let snap = store.snapshot();
    Ok(matches_in(&snap, q, &pre))
}

pub(crate) fn matches_in(snap: &Snapshot<'_>, q: &LogQuery, pre: &Prefetched) -> RoaringBitmap {
    matches_among(snap, q, pre, None)
}

/// The entries of `among` (every live entry when `None`) that `q` selects:
/// an alert's filter over what just changed costs what changed, not the store.
pub(crate) fn matches_among(
    snap: &Snapshot<'_>,
    q: &LogQuery,
    pre: &Prefetched,
    among: Option<&RoaringBitmap>,
) -> RoaringBitmap {
    // Every set the entries must be in. The smallest is copied; the others
    // are probed, narrowest id span first: whole containers outside a span
    // drop without a look, and a date range spans few (ids follow arrival),
    // so it goes right after the seed whatever its size.
    let mut musts: Vec<Cow<'_, RoaringBitmap>> = vec![Cow::Borrowed(snap.live())];
    if let Some(among) = among {
        musts.push(Cow::Borrowed(among));
    }
    let mut excludes: Vec<RoaringBitmap> = Vec::new();
    // Whether a field index is among the musts: the indexes hold live
    // entries only (an entry leaves every index when it stops being live),
    // so the live set adds nothing to them. At 10M the live set has ~160
    // containers, and intersecting it came to a tenth of a filtered page.
    let mut indexed = false;
    for (i, f) in q.filters.iter().enumerate() {
        let one_of = |values: &[FilterValue]| -> Cow<'_, RoaringBitmap> {
            match f.field {
                FilterField::Indexed(field) => {
                    let values: Vec<Value> = values
                        .iter()
                        .filter_map(|v| match v {
                            FilterValue::Indexed(v) => Some(v.clone()),
                            _ => None,
                        })
                        .collect();
                    snap.any_of(field, &values)
                }
                FilterField::Wamid => Cow::Owned(
                    exact_values(values)
                        .filter_map(|w| snap.entry_for_wamid(w))
                        .map(|id| id.0)
                        .collect(),
                ),
                FilterField::Id => Cow::Owned(
                    values
                        .iter()
                        .filter_map(|v| match v {
                            FilterValue::Id(id) => Some(*id),
                            _ => None,
                        })
                        .collect(),
                ),
                FilterField::CorrelationId => {
                    // The text index narrows; the row confirms (the exact
                    // field mixes all identifiers).
                    let candidates = pre
                        .exact
                        .iter()
                        .find(|(j, _)| *j == i)
                        .map(|(_, bm)| bm.clone())
                        .unwrap_or_default();
                    let wanted = exact_candidates(f.field, values);
                    Cow::Owned(snap.filter_text_eq(&candidates, TextColumn::CorrelationId, &wanted))
                }
                FilterField::Phone => {
                    // Every entry with a number as its phone is in the
                    // contact that number (or one of its other forms) names:
                    // a hash look-up and a list, where the text index's
                    // term look-ups per form cost more than the page. The
                    // row confirms the phone itself.
                    let mut candidates = RoaringBitmap::new();
                    for typed in exact_values(values) {
                        candidates |= snap.contact_entries(typed);
                    }
                    let wanted = exact_candidates(f.field, values);
                    Cow::Owned(snap.filter_text_eq(&candidates, TextColumn::Phone, &wanted))
                }
                FilterField::Event => {
                    let values: Vec<Value> = values
                        .iter()
                        .filter_map(|v| match v {
                            FilterValue::Indexed(v) => Some(v.clone()),
                            _ => None,
                        })
                        .collect();
                    let fields = snap.any_of(Field::Category, &values);
                    let events = snap
                        .bitmap(
                            Field::Direction,
                            Key::direction(ticks_engine::Direction::Event),
                        )
                        .map_or_else(RoaringBitmap::new, |events| &*fields & events);
                    Cow::Owned(events)
                }
                FilterField::OptedOut => {
                    let opted_out = snap.opted_out_entries();
                    let mut found = RoaringBitmap::new();
                    for v in values {
                        match v {
                            FilterValue::Flag(true) => found |= &opted_out,
                            FilterValue::Flag(false) => found |= snap.live() - &opted_out,
                            _ => {}
                        }
                    }
                    Cow::Owned(found)
                }
                FilterField::Contact => {
                    let mut found = RoaringBitmap::new();
                    for typed in exact_values(values) {
                        found |= snap.contact_entries(typed);
                    }
                    Cow::Owned(found)
                }
            }
        };
        if !f.include.is_empty() {
            indexed |= matches!(f.field, FilterField::Indexed(_));
            musts.push(one_of(&f.include));
        }
        if !f.exclude.is_empty() {
            excludes.push(one_of(&f.exclude).into_owned());
        }
    }
    if q.from_ms.is_some() || q.to_ms.is_some() {
        musts.push(Cow::Owned(snap.recorded_between(
            q.from_ms.unwrap_or(i64::MIN),
            q.to_ms.unwrap_or(i64::MAX),
        )));
    }
    if let Some(text) = &pre.text {
        musts.push(Cow::Borrowed(text));
    }
    if indexed {
        musts.remove(0);
    }
    let smallest = (0..musts.len()).min_by_key(|i| musts[*i].len());
    let mut result = smallest
        .map(|i| musts.swap_remove(i).into_owned())
        .unwrap_or_default();
    let span = |bm: &RoaringBitmap| match (bm.min(), bm.max()) {
        (Some(lo), Some(hi)) => u64::from(hi - lo) + 1,
        _ => 0,
    };
    musts.sort_by_key(|bm| (span(bm), bm.len()));
    for set in musts {
        if result.is_empty() {
            break;
        }
        result &= &*set;
    }
    for set in &excludes {
        result -= set;
    }
    result
}

/// Where a page resumes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Cursor {
    /// The sort it belongs to.
    sort: String,
    /// The bucket (UTC hour for the time sort, field value) of the last row.
    bucket: BucketKey,
    /// Its recorded time.
    ms: i64,
    /// Its id.
    id: u32,
}

#[derive(Clone, Debug, PartialEq, PartialOrd, Serialize, Deserialize)]
enum BucketKey {
    #[serde(rename = "Int")]
    Key(Key),
    Text(String),
}

fn sort_tag(sort: &Sort) -> String {
    // The time sort's buckets are hours ("/h"): a cursor from when they were
    // days is refused instead of being read with the wrong buckets.
    format!(
        "{}{:?}{}",
        if sort.descending { "-" } else { "" },
        sort.column,
        if sort.column == Column::RecordedAt {
            "/h"
        } else {
            ""
        }
    )
}

fn encode_cursor(c: &Cursor) -> String {
    let json = serde_json::to_vec(c).unwrap_or_default();
    json.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_cursor(s: &str, sort: &Sort) -> Result<Cursor, QueryError> {
    let bad = || QueryError::InvalidParam {
        param: "cursor".into(),
        message: "not a cursor of this query (it belongs to another sort, or was altered)".into(),
    };
    if !s.len().is_multiple_of(2) || s.len() > 4096 {
        return Err(bad());
    }
    let bytes: Vec<u8> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2).unwrap_or("zz"), 16))
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    let c: Cursor = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if c.sort != sort_tag(sort) {
        return Err(bad());
    }
    Ok(c)
}

/// Runs the query: total count and one page.
pub fn search(store: &Store, q: &LogQuery) -> Result<Page, QueryError> {
    let pre = prefetch(store, q)?;
    let cursor = q
        .cursor
        .as_deref()
        .map(|c| decode_cursor(c, &q.sort))
        .transpose()?;
    let snap = store.snapshot();
    let matches = matches_in(&snap, q, &pre);
    let total = matches.len();
    if q.limit == 0 {
        // The total alone: no page is sorted or read.
        return Ok(Page {
            total,
            entries: Vec::new(),
            next_cursor: None,
        });
    }
    let (ids, last) = page_ids(
        &snap,
        &matches,
        &q.sort,
        cursor.as_ref(),
        if cursor.is_some() { 0 } else { q.offset },
        q.limit,
    );
    let more = match &cursor {
        Some(_) => ids.len() == q.limit,
        None => (q.offset + ids.len()) < total as usize,
    };
    let next_cursor = match (more, last) {
        (true, Some(c)) => Some(encode_cursor(&c)),
        _ => None,
    };
    let entries = snap.entries(&ids);
    Ok(Page {
        total,
        entries,
        next_cursor,
    })
}

/// All matching ids in sort order, for exports. Holds the snapshot only
/// while sorting; rows are read afterwards in chunks.
pub fn sorted_ids(store: &Store, q: &LogQuery) -> Result<Vec<u32>, QueryError> {
    let pre = prefetch(store, q)?;
    let snap = store.snapshot();
    let matches = matches_in(&snap, q, &pre);
    let (ids, _) = page_ids(&snap, &matches, &q.sort, None, 0, usize::MAX);
    Ok(ids)
}

/// True when (ms, id) comes strictly after the cursor inside its bucket.
fn after_in_bucket(ms: i64, id: u32, c: &Cursor, ascending_time: bool) -> bool {
    if ascending_time {
        (ms, id) > (c.ms, c.id)
    } else {
        (ms, id) < (c.ms, c.id)
    }
}

/// What an exact filter looks for: its values, and for `phone=` the other
/// forms of each number (a Brazilian number with and without its ninth
/// digit), which WhatsApp may have used for the same person.
fn exact_candidates(field: FilterField, values: &[FilterValue]) -> Vec<String> {
    let mut out: Vec<String> = exact_values(values).map(str::to_string).collect();
    if field == FilterField::Phone {
        let variants: Vec<String> = out
            .iter()
            .flat_map(|v| ticks_engine::number_variants(v))
            .collect();
        out.extend(variants);
    }
    out
}

/// The texts of exact-match values.
fn exact_values(values: &[FilterValue]) -> impl Iterator<Item = &str> {
    values.iter().filter_map(|v| match v {
        FilterValue::Exact(t) => Some(t.as_str()),
        _ => None,
    })
}

fn page_ids(
    snap: &Snapshot<'_>,
    matches: &RoaringBitmap,
    sort: &Sort,
    cursor: Option<&Cursor>,
    offset: usize,
    limit: usize,
) -> (Vec<u32>, Option<Cursor>) {
    let tag = sort_tag(sort);
    match sort.column {
        Column::Id => {
            let mut out = Vec::new();
            let start_after = cursor.map(|c| c.id);
            let iter: Box<dyn Iterator<Item = u32>> = if sort.descending {
                Box::new(
                    matches
                        .iter()
                        .rev()
                        .filter(move |id| start_after.is_none_or(|s| *id < s)),
                )
            } else {
                Box::new(
                    matches
                        .iter()
                        .filter(move |id| start_after.is_none_or(|s| *id > s)),
                )
            };
            out.extend(iter.skip(offset).take(limit));
            let last = out.last().map(|id| Cursor {
                sort: tag,
                bucket: BucketKey::Key(Key::NONE),
                ms: snap.recorded_ms(*id),
                id: *id,
            });
            (out, last)
        }
        Column::Phone | Column::CorrelationId => {
            let column = if sort.column == Column::Phone {
                TextColumn::Phone
            } else {
                TextColumn::CorrelationId
            };
            // Each match's text read once (rows may be sealed in
            // compressed blocks), then sorted by text, newest first within
            // equal texts.
            let ids: Vec<u32> = matches.iter().collect();
            let texts = snap.sort_texts(&ids, column);
            let mut keyed: Vec<(String, i64, u32)> = texts
                .into_iter()
                .zip(&ids)
                .map(|(text, id)| (text, snap.recorded_ms(*id), *id))
                .collect();
            let cmp = |a: &(String, i64, u32), b: &(String, i64, u32)| {
                let o = a.0.cmp(&b.0);
                let o = if sort.descending { o.reverse() } else { o };
                o.then_with(|| (b.1, b.2).cmp(&(a.1, a.2)))
            };
            keyed.sort_unstable_by(cmp);
            let start = match cursor {
                Some(c) => {
                    let BucketKey::Text(t) = &c.bucket else {
                        return (vec![], None);
                    };
                    keyed.partition_point(|(text, ms, id)| {
                        let o = text.as_str().cmp(t.as_str());
                        let o = if sort.descending { o.reverse() } else { o };
                        o == Ordering::Less
                            || (o == Ordering::Equal && !after_in_bucket(*ms, *id, c, false))
                    })
                }
                None => offset.min(keyed.len()),
            };
            let page = &keyed[start.min(keyed.len())..];
            let page = &page[..limit.min(page.len())];
            let out: Vec<u32> = page.iter().map(|(_, _, id)| *id).collect();
            let last = page.last().map(|(text, ms, id)| Cursor {
                sort: tag,
                bucket: BucketKey::Text(text.clone()),
                ms: *ms,
                id: *id,
            });
            (out, last)
        }
        Column::RecordedAt | Column::Indexed(_) => {
            let ascending_time = sort.column == Column::RecordedAt && !sort.descending;
            let buckets: Vec<(BucketKey, &RoaringBitmap)> = match sort.column {
                // Hours, not days: the bucket a cursor resumes in is read
                // whole and sorted by time, so a small bucket keeps deep
                // pages cheap (an hour is a few thousand entries at 10M).
                Column::RecordedAt => snap
                    .values(Field::Hour)
                    .map(|(k, b)| (BucketKey::Key(k), b))
                    .collect(),
                Column::Indexed(f) if f.is_text() => snap
                    .values_by_text(f)
                    .into_iter()
                    .map(|(t, b)| (BucketKey::Text(t), b))
                    .collect(),
                Column::Indexed(f) => snap
                    .values(f)
                    .map(|(k, b)| (BucketKey::Key(k), b))
                    .collect(),
                _ => Vec::new(),
            };
            let ordered: Box<dyn Iterator<Item = &(BucketKey, &RoaringBitmap)>> = if sort.descending
            {
                Box::new(buckets.iter().rev())
            } else {
                Box::new(buckets.iter())
            };
            let mut skip = offset;
            let mut out = Vec::new();
            let mut last_bucket = None;
            let cmp_bucket = |k: &BucketKey, c: &BucketKey| -> Ordering {
                let o = k.partial_cmp(c).unwrap_or(Ordering::Equal);
                if sort.descending {
                    o.reverse()
                } else {
                    o
                }
            };
            for (key, bm) in ordered {
                if out.len() >= limit {
                    break;
                }
                let in_cursor_bucket = match cursor {
                    Some(c) => match cmp_bucket(key, &c.bucket) {
                        Ordering::Less => continue,
                        Ordering::Equal => true,
                        Ordering::Greater => false,
                    },
                    None => false,
                };
                let n = matches.intersection_len(bm) as usize;
                if n == 0 {
                    continue;
                }
                if !in_cursor_bucket && skip >= n {
                    skip -= n;
                    continue;
                }
                // Each id's time is read once (a sealed row's is a hash
                // probe of the changed rows, then the time column), not
                // at every comparison of the sort.
                let mut keyed: Vec<(i64, u32)> = (matches & *bm)
                    .iter()
                    .map(|id| (snap.recorded_ms(id), id))
                    .collect();
                if let (true, Some(c)) = (in_cursor_bucket, cursor) {
                    keyed.retain(|(ms, id)| after_in_bucket(*ms, *id, c, ascending_time));
                }
                let need = limit - out.len();
                let w = |a: &(i64, u32), b: &(i64, u32)| {
                    if ascending_time {
                        a.cmp(b)
                    } else {
                        b.cmp(a)
                    }
                };
                if keyed.len() > skip + need && skip + need < 4096 {
                    // Only the first rows of a big bucket are needed.
                    keyed.select_nth_unstable_by(skip + need - 1, w);
                    keyed.truncate(skip + need);
                }
                keyed.sort_unstable_by(w);
                out.extend(keyed.into_iter().skip(skip).take(need).map(|(_, id)| id));
                skip = 0;
                last_bucket = Some(key.clone());
            }
            let last = match (out.last(), last_bucket) {
                (Some(id), Some(bucket)) => Some(Cursor {
                    sort: tag,
                    bucket,
                    ms: snap.recorded_ms(*id),
                    id: *id,
                }),
                _ => None,
            };
            (out, last)
        }
    }
}

/// What to group counts by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupBy {
    /// The values of an indexed field.
    Field(Field),
    /// Local calendar day in the query's time zone.
    Day,
    /// Local hour in the query's time zone.
    Hour,
}

impl GroupBy {
    /// Parses a `group_by` value.
    pub fn parse(s: &str) -> Result<GroupBy, QueryError> {
        match s {
            "day" => Ok(GroupBy::Day),
            "hour" => Ok(GroupBy::Hour),
            other => match FilterField::parse(other) {
                Some(FilterField::Indexed(f)) if f != Field::Day && f != Field::Hour => {
                    Ok(GroupBy::Field(f))
                }
                _ => Err(QueryError::InvalidParam {
                    param: "group_by".into(),
                    message: format!("cannot group by {other:?}"),
                }),
            },
        }
    }
}

/// One group of a group-by.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Group {
    /// The value (`null` for entries without one).
    pub key: FieldValue,
    /// How many matching entries have it.
    pub count: u64,
}

/// Group-by counts.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Stats {
    /// Matching entries.
    pub total: u64,
    /// Groups: by count (largest first) for fields, by time for day and hour.
    pub groups: Vec<Group>,
}

/// Counts the matching entries per value, from bitmap intersections only.
pub fn stats(store: &Store, q: &LogQuery, group_by: GroupBy) -> Result<Stats, QueryError> {
    let pre = prefetch(store, q)?;
    let snap = store.snapshot();
    let matches = matches_in(&snap, q, &pre);
    Ok(Stats {
        total: matches.len(),
        groups: group_in(&snap, &matches, group_by, &q.tz),
    })
}

/// Group-by over an already computed match set.
pub fn group_in(
    snap: &Snapshot<'_>,
    matches: &RoaringBitmap,
    group_by: GroupBy,
    tz: &jiff::tz::TimeZone,
) -> Vec<Group> {
    match group_by {
        GroupBy::Field(field) => {
            let mut groups: Vec<Group> = snap
                .values(field)
                .filter_map(|(key, bm)| {
                    let count = matches.intersection_len(bm);
                    (count > 0).then(|| Group {
                        key: snap.value_of(field, key),
                        count,
                    })
                })
                .collect();
            groups.sort_by_key(|g| std::cmp::Reverse(g.count));
            groups
        }
        GroupBy::Day | GroupBy::Hour => {
            let interval = if group_by == GroupBy::Day {
                Interval::Day
            } else {
                Interval::Hour
            };
            let mut bucketer = Bucketer::new(tz, interval);
            let label = |z: Option<Zoned>| {
                z.map_or_else(|| String::from("invalid"), |z| bucket_label(&z, interval))
            };
            let mut counts: std::collections::BTreeMap<String, u64> =
                std::collections::BTreeMap::new();
            for (hour, bm) in snap.values(Field::Hour) {
                let n = matches.intersection_len(bm);
                if n == 0 {
                    continue;
                }
                match bucketer.of_hour(hour) {
                    // The UTC hour lies in one local bucket.
                    Some(z) => *counts.entry(label(Some(z))).or_default() += n,
                    None => {
                        for id in matches & bm {
                            let z = bucketer.of_ms(snap.recorded_ms(id));
                            *counts.entry(label(z)).or_default() += 1;
                        }
                    }
                }
            }
            counts
                .into_iter()
                .map(|(k, count)| Group {
                    key: FieldValue::Text(k),
                    count,
                })
                .collect()
        }
    }
}
