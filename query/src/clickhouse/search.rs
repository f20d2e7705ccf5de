//! The log table over ClickHouse: a `LogQuery` as SQL over the latest
//! version of each entry.
//!
//! Each key's latest row is its row of the largest version (`argMax`);
//! rows of older versions may still be there until a merge. A filter is
//! applied twice: first to any version (so that only the keys that could
//! match are grouped: `key IN (...)`), then to the latest, so that an
//! entry matches on what it is now. No `FINAL`.
//!
//! What is translated: the fields with a column in `entries` (category,
//! name, template, status, direction, codes...), the message and
//! correlation ids, entry ids, the phone (with its other forms), the
//! person (`contact=`), `event=`, `opted_out=`, free text (see
//! `text_condition`), the date range, sorting (by time, id or a column), and cursors
//! (the next page's position).
//! Anything else is refused by name (`QueryError::Unsupported`).

use super::client::quote;
use super::derive::decode_entry;
use super::rowbinary::{read_strings, Reader};
use super::settle::Snapshot;
use super::shared::Shared;
use crate::buckets::{bucket_label, Bucketer, Interval};
use crate::cost::{split_hours, utc_month, CostRow};
use crate::error::QueryError;
use crate::exec::{Group, GroupBy, Page, Stats};
use crate::fields::FilterField;
use crate::health::{template_change, Answer, HealthRow, TemplateChange, TEMPLATE_EVENTS};
use crate::params::LogQuery;
use crate::params::{Column, Filter, FilterValue};
use crate::rates::RateCard;
use crate::report::{ReportGroups, ReportOptions, MINUTE_FIELDS};
use std::collections::BTreeSet;
use ticks_engine::{Entry, Field, FieldValue, TextClause, Value};

/// The fields with a column of their own in `entries`, named as the
/// field is (`Field::name`).
const COLUMN_FIELDS: [Field; 25] = [
    Field::Category,
    Field::Name,
    Field::Template,
    Field::Language,
    Field::ResponseCode,
    Field::RecipientType,
    Field::Status,
    Field::Direction,
    Field::ErrorCode,
    Field::PhoneNumberId,
    Field::Subaccount,
    Field::User,
    Field::ContentType,
    Field::ConversationType,
    Field::PricingCategory,
    Field::PricingType,
    Field::Button,
    Field::Country,
    Field::Session,
    Field::Origin,
    Field::Attribution,
    Field::Billable,
    Field::Engagement,
    Field::Reached,
    Field::Marketing,
];

/// The column of `entries` that holds a field's value, if there is one.
fn column(field: Field) -> Option<&'static str> {
    COLUMN_FIELDS.contains(&field).then(|| field.name())
}

fn unsupported(param: &str) -> QueryError {
    QueryError::Unsupported(format!(
        "{param}: this filter is not yet available on the ClickHouse backend"
    ))
}

/// One value as a condition on `col` (true, false or NULL: callers wrap
/// it in `ifNull(.., 0)`).
fn value_condition(param: &str, col: &str, value: &FilterValue) -> Result<String, QueryError> {
    Ok(match value {
        FilterValue::Indexed(Value::None) => format!("isNull({col})"),
        FilterValue::Indexed(Value::Text(t)) => format!("{col} = {}", quote(t)),
        FilterValue::Indexed(Value::Code(c)) => format!("{col} = {c}"),
        FilterValue::Indexed(Value::Status(s)) => format!("{col} = {}", quote(s.as_str())),
        FilterValue::Indexed(Value::Direction(d)) => format!("{col} = {}", quote(d.as_str())),
        FilterValue::Indexed(Value::Session(v)) => format!("{col} = {}", quote(v.as_str())),
        FilterValue::Indexed(Value::Origin(v)) => format!("{col} = {}", quote(v.as_str())),
        FilterValue::Indexed(Value::Attribution(v)) => format!("{col} = {}", quote(v.as_str())),
        FilterValue::Indexed(Value::Reached(v)) => format!("{col} = {}", quote(v.as_str())),
        FilterValue::Indexed(Value::Marketing(v)) => format!("{col} = {}", quote(v.as_str())),
        // `replied` takes the messages that also got a click, as the store.
        FilterValue::Indexed(Value::Engagement(asked)) => {
            let names: Vec<String> = ticks_engine::Engagement::ALL
                .into_iter()
                .filter(|e| e.includes(*asked))
                .map(|e| quote(e.as_str()))
                .collect();
            format!("{col} IN ({})", names.join(", "))
        }
        FilterValue::Indexed(Value::Billable(b)) => {
            format!("{col} = {}", quote(if *b { "true" } else { "false" }))
        }
        FilterValue::Exact(s) => format!("{col} = {}", quote(s)),
        FilterValue::Id(id) => format!("{col} = {id}"),
        _ => return Err(unsupported(param)),
    })
}

/// A filter's condition: any of its values (`any` of the included ones)
/// and none of the excluded ones.
fn include_exclude(
    f: &Filter,
    any: impl Fn(&[FilterValue]) -> Result<String, QueryError>,
) -> Result<String, QueryError> {
    let mut parts = Vec::new();
    if !f.include.is_empty() {
        parts.push(format!("({})", any(&f.include)?));
    }
    if !f.exclude.is_empty() {
        parts.push(format!("NOT ({})", any(&f.exclude)?));
    }
    Ok(parts.join(" AND "))
}

/// `contact=`: the entries of the people each typed identifier names,
/// found by folding their inputs (`derive::contact`), as keys.
fn contact_condition(shared: &Shared, f: &Filter) -> Result<String, QueryError> {
    let keys_of = |values: &[FilterValue]| -> Result<String, QueryError> {
        let mut keys = Vec::new();
        for v in values {
            let FilterValue::Exact(typed) = v else {
                return Err(unsupported(&f.param));
            };
            keys.extend(super::derive::contact(shared, typed)?.1);
        }
        if keys.is_empty() {
            return Ok("0".into());
        }
        let list: Vec<String> = keys.iter().map(|k| quote(k)).collect();
        Ok(format!("key IN ({})", list.join(", ")))
    };
    include_exclude(f, keys_of)
}

fn filter_condition(f: &Filter) -> Result<String, QueryError> {
    let col = match f.field {
        FilterField::Event => return event_condition(f),
        FilterField::OptedOut => return opted_out_condition(f),
        FilterField::Indexed(field) => column(field).ok_or_else(|| unsupported(&f.param))?,
        // A message's entry is named by its wamid: the primary key.
        FilterField::Wamid => "key",
        FilterField::CorrelationId => "correlation_id",
        FilterField::Id => "id",
        FilterField::Phone => return phone_condition(f),
        _ => return Err(unsupported(&f.param)),
    };
    // A nullable column's comparison is NULL where it is; the columns that
    // are never NULL are compared bare, so that 18.16 uses the primary key
    // for `key` (wrapped in `ifNull`, a wamid was found by reading every
    // key: 0.76 s at 10M).
    let nullable = !matches!(col, "key" | "id" | "status" | "direction");
    let any = |values: &[FilterValue]| -> Result<String, QueryError> {
        let parts = values
            .iter()
            .map(|v| {
                value_condition(&f.param, col, v).map(|c| {
                    if nullable {
                        format!("ifNull({c}, 0)")
                    } else {
                        c
                    }
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(parts.join(" OR "))
    };
    include_exclude(f, any)
}

/// `event=`: account and template events of these webhook fields (an
/// event keeps its field as its category).
fn event_condition(f: &Filter) -> Result<String, QueryError> {
    let any = |values: &[FilterValue]| -> Result<String, QueryError> {
        let parts = values
            .iter()
            .map(|v| value_condition(&f.param, "category", v).map(|c| format!("ifNull({c}, 0)")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(format!("direction = 'event' AND ({})", parts.join(" OR ")))
    };
    include_exclude(f, any)
}

/// `opted_out=`: entries of people whose latest marketing preference is a
/// stop (`true`), or not.
fn opted_out_condition(f: &Filter) -> Result<String, QueryError> {
    let any = |values: &[FilterValue]| -> Result<String, QueryError> {
        let parts = values
            .iter()
            .map(|v| match v {
                FilterValue::Flag(b) => Ok(format!("opted_out = {}", u8::from(*b))),
                _ => Err(unsupported(&f.param)),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(parts.join(" OR "))
    };
    include_exclude(f, any)
}

/// Free text: every clause somewhere in the entry's words (a phrase within
/// one text value) or, for a word or a prefix, among its identifiers.
/// The text index asks every clause of one document; here of one entry,
/// all its documents together (a document is an entry's inputs of one
/// write, so which words share one depends on how writes were grouped).
fn text_condition(text: &str) -> String {
    let has_words = |tokens: &[String]| {
        format!(
            "position(words, {}) > 0",
            quote(&ticks_engine::in_a_row(tokens))
        )
    };
    let clauses: Vec<String> = ticks_engine::text_clauses(text)
        .into_iter()
        .map(|clause| match clause {
            TextClause::Word { exact, tokens } if tokens.is_empty() => {
                format!("has(exact, {})", quote(&exact))
            }
            TextClause::Word { exact, tokens } => {
                format!("(has(exact, {}) OR {})", quote(&exact), has_words(&tokens))
            }
            TextClause::Phrase(tokens) => has_words(&tokens),
            TextClause::Prefix { words, last, exact } => {
                let mut parts: Vec<String> = words
                    .iter()
                    .map(|w| has_words(std::slice::from_ref(w)))
                    .collect();
                parts.push(format!(
                    "(position(words, {}) > 0 OR arrayExists(x -> substring(x, 1, {}) = {}, exact))",
                    quote(&format!(" {last}")),
                    exact.len(),
                    quote(&exact)
                ));
                parts.join(" AND ")
            }
        })
        .collect();
    if clauses.is_empty() {
        // The index matches nothing for a query without a clause.
        "0".into()
    } else {
        clauses.join(" AND ")
    }
}

/// `phone=`: the entry's number is the one typed or one of its other
/// forms (Brazil's ninth digit, Mexico's `521`...), as the store matches it.
fn phone_condition(f: &Filter) -> Result<String, QueryError> {
    let forms = |values: &[FilterValue]| -> Result<String, QueryError> {
        let mut all = Vec::new();
        for v in values {
            let FilterValue::Exact(typed) = v else {
                return Err(unsupported(&f.param));
            };
            all.push(typed.clone());
            all.extend(ticks_engine::number_variants(typed));
        }
        let list: Vec<String> = all.iter().map(|p| quote(p)).collect();
        Ok(format!("ifNull(phone IN ({}), 0)", list.join(", ")))
    };
    include_exclude(f, forms)
}

/// For a filter that names only exact phones, ids or correlation ids: the
/// keys `entry_lookup` holds for them, as a condition (`key IN`), beside
/// the filter's own. `entries` and `latest` are ordered by key, so that
/// a few keys are read by the primary key instead of every row's column
/// (an exact phone at 10M: every row's `phone`, ~0.5 s).
fn looked_up(shared: &Shared, f: &Filter) -> Option<String> {
    if f.include.is_empty() || !f.exclude.is_empty() {
        return None;
    }
    let mut values = Vec::new();
    for v in &f.include {
        match (f.field, v) {
            (FilterField::Phone, FilterValue::Exact(typed)) => {
                values.push(format!("p:{typed}"));
                values.extend(
                    ticks_engine::number_variants(typed)
                        .into_iter()
                        .map(|n| format!("p:{n}")),
                );
            }
            (FilterField::Id, FilterValue::Id(id)) => values.push(format!("i:{id}")),
            (FilterField::CorrelationId, FilterValue::Exact(c)) => values.push(format!("c:{c}")),
            _ => return None,
        }
    }
    let list: Vec<String> = values.iter().map(|v| quote(v)).collect();
    Some(format!(
        "key IN (SELECT key FROM {} WHERE value IN ({}))",
        shared.table("entry_lookup"),
        list.join(", ")
    ))
}

/// The query's conditions, ANDed (`1` for none).
fn conditions(shared: &Shared, q: &LogQuery) -> Result<String, QueryError> {
    let mut parts = Vec::new();
    if let Some(text) = &q.text {
        let mut found = text_condition(text);
        // A search that is one person's identifier also finds every entry
        // of that person, as the store's does.
        if crate::exec::looks_like_identifier(text) {
            let keys = super::derive::contact(shared, text)?.1;
            if !keys.is_empty() {
                let list: Vec<String> = keys.iter().map(|k| quote(k)).collect();
                found = format!("{found} OR key IN ({})", list.join(", "));
            }
        }
        parts.push(format!("({found})"));
    }
    for f in &q.filters {
        let c = match f.field {
            FilterField::Contact => contact_condition(shared, f)?,
            _ => filter_condition(f)?,
        };
        if !c.is_empty() {
            parts.push(c);
        }
        if let Some(keys) = looked_up(shared, f) {
            parts.push(keys);
        }
    }
    if let Some(from) = q.from_ms {
        parts.push(format!("recorded_ms >= {from}"));
    }
    if let Some(to) = q.to_ms {
        parts.push(format!("recorded_ms < {to}"));
    }
    Ok(if parts.is_empty() {
        "1".into()
    } else {
        parts.join(" AND ")
    })
}

/// Every column of `entries` but the key, the version, the entry itself
/// and its text: what a query of the latest versions may read. The entry
/// is read for the page's ids only: carrying it through the grouping of
/// every match cost 90 of 91 ms on a page of all 32,000 entries of a
/// 30k-message store.
const LATEST_COLUMNS: [&str; 34] = [
    "id",
    "purged",
    "direction",
    "status",
    "recorded_ms",
    "category",
    "name",
    "template",
    "language",
    "recipient_type",
    "phone_number_id",
    "subaccount",
    "user",
    "content_type",
    "conversation_type",
    "pricing_category",
    "pricing_type",
    "button",
    "country",
    "wamid",
    "correlation_id",
    "phone",
    "session",
    "source",
    "attribution",
    "billable",
    "engagement",
    "reached",
    "response_code",
    "error_code",
    "opted_out",
    "marketing",
    "opt_out_cause",
    "derived_ms",
];

/// What free text reads, carried through the grouping only when a query
/// has text.
const TEXT_COLUMNS: [&str; 2] = ["words", "exact"];

/// The columns a reading of the entries that `cond` selects carries:
/// `purged`, those `cond` and `reads` (the SQL that reads the reading,
/// `None` for every column) name, and the text's when the query has text.
fn carried(cond: &str, reads: Option<&str>, text: bool) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = LATEST_COLUMNS
        .iter()
        .copied()
        .filter(|c| *c == "purged" || names(cond, c) || reads.is_none_or(|sql| names(sql, c)))
        .collect();
    if text {
        out.extend(TEXT_COLUMNS);
    }
    out
}

/// Each of `columns` of its key's newest version, under its own name (for
/// a `GROUP BY key`).
fn newest(columns: &[&str]) -> String {
    columns
        .iter()
        .map(|c| format!("argMax({c}, version) AS {c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether `sql` names `column` as a whole word (not inside a longer name).
fn names(sql: &str, column: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    sql.match_indices(column).any(|(at, _)| {
        let before = sql.as_bytes().get(at.wrapping_sub(1)).copied();
        let after = sql.as_bytes().get(at + column.len()).copied();
        !before.is_some_and(word) && !after.is_some_and(word)
    })
}

/// The entries a query's condition selects, as the latest version of
/// each: what counts, pages and groupings read.
///
/// Two sources (see `settle.rs`): the settled rows of `latest` for the
/// keys not changed since the settler's watermark, and `entries` grouped
/// by key (`argMax`) for the keys changed since (the fresh ones). A count
/// sums the settled rows' signs (no grouping at all); rows are the settled
/// states that are not cancelled, grouped by key and version among the
/// matching rows only.
///
/// The fresh keys' settled rows are taken out by subtraction where the
/// answer is a sum (their signs summed again, negated: a look-up of a few
/// keys by the primary key), not by `key NOT IN` the fresh keys, which
/// reads every matching row's key (15 of 23 ms of a count at 1M, with no
/// fresh key at all).
struct Latest<'a> {
    shared: &'a Shared,
    q: &'a LogQuery,
    cond: &'a str,
    /// The keys changed since the watermark, as a subquery.
    fresh: String,
    /// How many changes were recorded since the watermark (at least the
    /// number of fresh keys; 0: none is fresh).
    changes: u64,
    /// The watermark and the settler's writes before the reading.
    snapshot: Snapshot,
    /// Whether sums leave out the fresh keys' settled rows as they read
    /// them (`key NOT IN` the fresh keys: every matching row's key read),
    /// rather than subtracting them in a second read: right whatever the
    /// settler writes meanwhile (see [`steady`]).
    exact: bool,
}

/// An answer over the matching entries that no write of the settler
/// landed under: `answer` is run with the subtracting (fast) form, its
/// result kept when the settler marked no write meanwhile (see
/// [`Snapshot`]), run again once when it did, and else (or while a write
/// is under way) run with the exact form.
fn steady<T>(
    shared: &Shared,
    q: &LogQuery,
    cond: &str,
    answer: impl Fn(&Latest<'_>) -> Result<T, QueryError>,
) -> Result<T, QueryError> {
    for _ in 0..2 {
        let latest = Latest::of(shared, q, cond)?;
        if latest.snapshot.writing {
            break;
        }
        let out = answer(&latest)?;
        if !latest.snapshot.moved(shared)? {
            return Ok(out);
        }
    }
    let mut latest = Latest::of(shared, q, cond)?;
    latest.exact = true;
    answer(&latest)
}

impl<'a> Latest<'a> {
    /// The entries that match `cond`.
    fn of(shared: &'a Shared, q: &'a LogQuery, cond: &'a str) -> Result<Latest<'a>, QueryError> {
        let snapshot = Snapshot::read(shared)?;
        let fresh = super::settle::fresh_keys(shared, snapshot.watermark);
        let changes = shared.count(&format!("SELECT count() FROM ({fresh})"))?;
        Ok(Latest {
            shared,
            q,
            cond,
            fresh,
            changes,
            snapshot,
            exact: false,
        })
    }

    /// The columns a reading carries: `purged`, those the condition and
    /// `reads` (the SQL that reads the subquery, `None` for every column)
    /// name, and the text's when the query has text.
    fn carried(&self, reads: Option<&str>) -> Vec<&'static str> {
        carried(self.cond, reads, self.q.text.is_some())
    }

    /// The fresh entries' latest rows with the columns `carried`, grouped
    /// from `entries` (a subquery).
    fn fresh_rows(&self, carried: &[&str]) -> String {
        format!(
            "SELECT key, {} FROM {} WHERE key IN ({}) GROUP BY key",
            newest(carried),
            self.shared.table("entries"),
            self.fresh
        )
    }

    /// The latest rows of the matching entries, as a subquery (then a
    /// `WHERE`, which callers may extend with `AND`) with the key and the
    /// columns [`Latest::carried`] names.
    fn reading(&self, reads: Option<&str>) -> String {
        let (l, cond) = (self.shared.table("latest"), self.cond);
        let carried = self.carried(reads);
        let read = carried.join(", ");
        let anys: Vec<String> = carried.iter().map(|c| format!("any({c}) AS {c}")).collect();
        // The settled rows are filtered in a subquery of their own, so
        // that the aliases of the grouping (each column's own name) do not
        // stand for the columns in the condition.
        let not_fresh = if self.changes == 0 {
            String::new()
        } else {
            format!(" AND key NOT IN ({})", self.fresh)
        };
        format!(
            "(SELECT key, {} FROM (SELECT key, version, sign, {read} FROM {l} WHERE ({cond}){not_fresh}) \
GROUP BY key, version HAVING sum(sign) > 0 UNION ALL {}) WHERE purged = 0 AND ({cond})",
            anys.join(", "),
            self.fresh_rows(&carried)
        )
    }

    /// The rows of the matching entries with their signs, as a subquery
    /// (then a `WHERE`, which callers may extend with `AND`) with the
    /// columns [`Latest::carried`] names and `sign`: the settled rows as
    /// they are (a state and its cancel both), the fresh entries' latest
    /// rows with sign 1. What a grouping counts with [`NET`] (and keeps
    /// with [`KEEP_NET`]), without grouping versions.
    fn signed(&self, reads: Option<&str>) -> String {
        let (l, cond) = (self.shared.table("latest"), self.cond);
        let carried = self.carried(reads);
        let read = carried.join(", ");
        let settled = format!("SELECT key, {read}, sign FROM {l} WHERE purged = 0 AND ({cond})");
        if self.changes == 0 {
            return format!("({settled}) WHERE 1");
        }
        if self.exact {
            return format!(
                "({settled} AND key NOT IN ({}) \
UNION ALL SELECT key, {read}, toInt8(1) AS sign FROM ({}) WHERE purged = 0 AND ({cond})) WHERE 1",
                self.fresh,
                self.fresh_rows(&carried)
            );
        }
        format!(
            "({settled} \
UNION ALL SELECT key, {read}, -sign AS sign FROM {l} WHERE key IN ({}) AND purged = 0 AND ({cond}) \
UNION ALL SELECT key, {read}, toInt8(1) AS sign FROM ({}) WHERE purged = 0 AND ({cond})) WHERE 1",
            self.fresh,
            self.fresh_rows(&carried)
        )
    }

    /// How many entries match: the settled rows' signs summed, and the
    /// fresh entries counted.
    fn count(&self) -> Result<u64, QueryError> {
        Ok(self.tally()?.0)
    }

    /// How many entries match, and how many cancel rows match: each hides
    /// one settled state from a page (see [`Latest::page_keys`]).
    fn tally(&self) -> Result<(u64, u64), QueryError> {
        let signed = self.signed(Some(""));
        let text = self.shared.client.query_text(&format!(
            "SELECT sum(sign), countIf(sign = -1) FROM {signed}{}",
            self.shared.select_settings()
        ))?;
        let mut numbers = text.trim().split('\t').map(|n| n.parse::<i64>());
        match (numbers.next(), numbers.next()) {
            (Some(Ok(total)), Some(Ok(cancels))) => {
                Ok((total.max(0) as u64, cancels.max(0) as u64))
            }
            _ => Err(QueryError::Backend(format!(
                "ClickHouse answered {text:?} to a count"
            ))),
        }
    }

    /// The keys of the page `offset`, `limit` in `order` of `total`
    /// matching entries, read from the first settled states in that order
    /// rather than from all matches: once `offset + limit` of the first
    /// state rows that match are live, the page's settled entries are all
    /// among them. `None` when few rows match (grouping them all is one
    /// statement, cheaper than finding candidates first: at 1M, a 429 page
    /// took 81 against 143 ms), when more than [`CANDIDATES_MAX`] would be
    /// needed, or when the candidates fell short (a state settled twice at
    /// a lease's hand-over): then the caller groups every match.
    fn page_keys(
        &self,
        order: &str,
        offset: usize,
        limit: usize,
        total: u64,
        cancels: u64,
    ) -> Result<Option<Vec<String>>, QueryError> {
        let (l, cond) = (self.shared.table("latest"), self.cond);
        let settings = self.shared.select_settings();
        let expected = limit.min((total as usize).saturating_sub(offset));
        let settled = cancels == 0 && self.changes == 0;
        if !settled && total + cancels <= self.shared.group_all_max {
            return Ok(None);
        }
        if settled {
            // Every matching state is an entry as it is now: the page is
            // the first states in its order, once each should a state have
            // been settled twice (two settlers at a lease's hand-over). The
            // first states are found with a top-N sort, and only those are
            // told apart by key: `LIMIT 1 BY key` over every match sorted
            // them all (a 7-day range at 10M, 2.5M states: 1.2 s against
            // 0.5). Past a few such twins among them, the page is short
            // and grouped instead.
            let top = offset + limit + TWINS;
            // The rows of a window are the first rows in this order: its
            // page is the page once it holds as many keys.
            for since in newest_windows(self.shared, order, total, top as u64)?
                .into_iter()
                .map(Some)
                .chain([None])
            {
                let bytes = self.shared.client.query(&format!(
                    "SELECT key FROM (SELECT key, {sort_columns} FROM {l} \
WHERE sign = 1 AND purged = 0 AND ({cond}){window} ORDER BY {order} LIMIT {top}) \
ORDER BY {order} LIMIT 1 BY key LIMIT {offset}, {limit}{settings} FORMAT RowBinary",
                    sort_columns = sort_columns(order),
                    window = window_condition(since)
                ))?;
                let found = read_keys(&bytes)?;
                if found.len() >= expected {
                    return Ok(Some(found));
                }
            }
            return Ok(None);
        }
        // The first `wanted` state rows in order are the candidates. A live
        // settled state outside them ranks after every one of them, so once
        // `need` of them are live (neither cancelled nor a fresh key's) the
        // page is among those and the fresh rows; or once they are every
        // match. Else four times as many are taken. (Bounding `wanted` by
        // every matching cancel row instead grouped every match after each
        // settler round, until merges dropped the cancels: a page of 2.8M
        // matches at 10M, 3.5 s.)
        let need = (offset + limit) as u64;
        let mut wanted = need + 64;
        let (mut keys, mut pairs) = (BTreeSet::new(), BTreeSet::new());
        let not_fresh = if self.changes == 0 {
            String::new()
        } else {
            format!(" AND key NOT IN ({})", self.fresh)
        };
        let mut fetched: u64 = 0;
        let (mut key_list, mut pair_list);
        loop {
            if wanted > CANDIDATES_MAX {
                return Ok(None);
            }
            // A window's rows are the first rows in this order: its
            // candidates are the candidates once it holds as many rows.
            for since in newest_windows(self.shared, order, total, wanted)?
                .into_iter()
                .map(Some)
                .chain([None])
            {
                let top = self.shared.client.query(&format!(
                    "SELECT key, version FROM {l} WHERE sign = 1 AND purged = 0 AND ({cond}){window} \
ORDER BY {order} LIMIT {wanted}{settings} FORMAT RowBinary",
                    window = window_condition(since)
                ))?;
                let mut r = Reader::new(&top);
                keys.clear();
                pairs.clear();
                let mut rows = 0;
                while !r.is_done() {
                    let bad = |_| QueryError::Backend("a candidate row could not be read".into());
                    let key = quote(&String::from_utf8_lossy(r.string().map_err(bad)?));
                    pairs.insert(format!("({key}, {})", r.u64().map_err(bad)?));
                    keys.insert(key);
                    rows += 1;
                }
                fetched = rows;
                if fetched >= wanted {
                    break;
                }
            }
            // The lists go into the statement's text, which ClickHouse
            // parses up to `max_query_size` (256 KiB by default).
            key_list = keys.iter().cloned().collect::<Vec<_>>().join(", ");
            pair_list = pairs.iter().cloned().collect::<Vec<_>>().join(", ");
            if key_list.len() + pair_list.len() > CANDIDATES_MAX_BYTES {
                return Ok(None);
            }
            if fetched < wanted {
                break;
            }
            let live = self.shared.count(&format!(
                "SELECT count() FROM (SELECT key, version FROM {l} WHERE key IN ({key_list}) \
AND (key, version) IN ({pair_list}){not_fresh} GROUP BY key, version HAVING sum(sign) > 0)"
            ))?;
            if live >= need {
                break;
            }
            if wanted == CANDIDATES_MAX {
                return Ok(None);
            }
            wanted = (wanted * 4).min(CANDIDATES_MAX);
        }
        let carried = self.carried(Some(order));
        let read = carried.join(", ");
        let anys: Vec<String> = carried.iter().map(|c| format!("any({c}) AS {c}")).collect();
        let settled = if pairs.is_empty() {
            String::new()
        } else {
            format!(
                "SELECT key, {} FROM (SELECT key, version, sign, {read} FROM {l} \
WHERE key IN ({}) AND (key, version) IN ({}){}) GROUP BY key, version HAVING sum(sign) > 0 UNION ALL ",
                anys.join(", "),
                key_list,
                pair_list,
                not_fresh
            )
        };
        let bytes = self.shared.client.query(&format!(
            "SELECT key FROM ({settled}{}) WHERE purged = 0 AND ({cond}) ORDER BY {order} LIMIT {offset}, {limit}{settings} FORMAT RowBinary",
            self.fresh_rows(&carried)
        ))?;
        let found = read_keys(&bytes)?;
        Ok((found.len() >= expected).then_some(found))
    }
}

/// The lower bounds of `recorded_ms` a page newest first tries, narrowest
/// first, before it reads every match: the weeks of `latest` from the
/// newest (its partitions: a bound reads only the weeks after it): one
/// week, then two, four, eight... while some older week is left out. None
/// for another order, for a `latest` not by week, and when the `total`
/// matches are fewer than [`WINDOW_MATCHES`] times the `rows` the page
/// needs: few matches are read at little cost (or by key, a phone's),
/// and a week would seldom hold enough of them (a statement per window:
/// a wamid's page at 10M took 29 ms against 12).
///
/// A page of the newest of millions of matches sorted all their times (a
/// category and status at 10M: 2.8M matches, ~1 s on 18.16); the newest
/// week of a month's store holds a quarter of its rows. The bounds come
/// from one server's parts (on a cluster, one shard's: the shards hold the
/// same weeks), and a bound only narrows the read: a window's answer is
/// kept only when it holds enough rows (see [`Latest::page_keys`]). Weeks
/// are the server's calendar's (`toMonday` in its zone): a zone other than
/// UTC moves a bound by hours, never the answer.
fn newest_windows(
    shared: &Shared,
    order: &str,
    total: u64,
    rows: u64,
) -> Result<Vec<i64>, QueryError> {
    if !order.starts_with("recorded_ms DESC") || total < rows.saturating_mul(WINDOW_MATCHES) {
        return Ok(Vec::new());
    }
    let text = shared.client.query_text(&format!(
        "SELECT min(partition_id), max(partition_id) FROM system.parts \
WHERE database = {} AND table = {} AND active",
        shared.db_literal(),
        quote(&shared.local_name("latest"))
    ))?;
    let monday_ms = |id: &str| -> Option<i64> {
        let (y, md) = (id.get(..4)?.parse().ok()?, id.get(4..)?);
        let (m, d) = (md.get(..2)?.parse().ok()?, md.get(2..)?.parse().ok()?);
        let day = jiff::civil::Date::new(y, m, d).ok()?;
        Some(
            day.to_zoned(jiff::tz::TimeZone::UTC)
                .ok()?
                .timestamp()
                .as_millisecond(),
        )
    };
    let mut ids = text.trim().split('\t').map(monday_ms);
    let (Some(Some(oldest)), Some(Some(newest))) = (ids.next(), ids.next()) else {
        return Ok(Vec::new());
    };
    const WEEK_MS: i64 = 7 * 86_400_000;
    let mut out = Vec::new();
    let mut weeks = 1;
    while newest - (weeks - 1) * WEEK_MS > oldest {
        out.push(newest - (weeks - 1) * WEEK_MS);
        weeks *= 2;
    }
    Ok(out)
}

/// How many times more matches than rows a page needs make it read the
/// newest weeks first (see [`newest_windows`]).
const WINDOW_MATCHES: u64 = 16;

/// The condition a window of [`newest_windows`] adds (none: every row).
fn window_condition(since: Option<i64>) -> String {
    since.map_or_else(String::new, |ms| format!(" AND recorded_ms >= {ms}"))
}

/// The most candidates a page reads before it groups every match instead
/// (see [`Latest::page_keys`]).
const CANDIDATES_MAX: u64 = 20_000;

/// The most bytes of candidate keys and pairs a statement's text holds
/// (ClickHouse's `max_query_size` is 256 KiB): past it, every match is
/// grouped instead. A page of a store whose states were settled many
/// times over failed on it with 20,000 candidates.
const CANDIDATES_MAX_BYTES: usize = 200_000;

/// States of one entry settled twice that a page's first states may hold
/// (see [`Matching::page_keys`]).
const TWINS: usize = 64;

/// The columns an ORDER BY clause of [`order_by`] reads, for a subquery
/// that keeps them.
fn sort_columns(order: &str) -> String {
    LATEST_COLUMNS
        .iter()
        .copied()
        .filter(|c| *c != "key" && names(order, c))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The keys a `SELECT key ... FORMAT RowBinary` answers, in its order.
fn read_keys(bytes: &[u8]) -> Result<Vec<String>, QueryError> {
    read_strings(bytes).map_err(|_| QueryError::Backend("a key could not be read".into()))
}

/// How many entries a group of [`Latest::signed`] rows holds.
const NET: &str = "toUInt64(sum(sign))";

/// What a grouping of [`Latest::signed`] rows ends with: a group whose
/// states were all cancelled holds no entry.
const KEEP_NET: &str = " HAVING sum(sign) > 0";

/// The log table's order, as the store's: by time and id, by id, or by a
/// column's value (a text's bytes, no value as the empty text; another
/// field's keys, no value first) and then newest first.
fn order_by(q: &LogQuery) -> Result<String, QueryError> {
    let dir = if q.sort.descending { "DESC" } else { "ASC" };
    let by_value = |value: String| format!("{value} {dir}, recorded_ms DESC, id DESC");
    match q.sort.column {
        Column::RecordedAt => Ok(format!("recorded_ms {dir}, id {dir}")),
        Column::Id => Ok(format!("id {dir}")),
        Column::Phone => Ok(by_value("ifNull(phone, '')".into())),
        Column::CorrelationId => Ok(by_value("ifNull(correlation_id, '')".into())),
        Column::Indexed(f) => {
            let col = column(f).ok_or_else(|| unsupported("sort"))?;
            if f.is_text() {
                return Ok(by_value(format!("ifNull({col}, '')")));
            }
            // No value sorts before every key (the store's is the least).
            let none = -i64::MAX;
            Ok(by_value(match f.value_names() {
                Some(names) => {
                    let arms: Vec<String> = names
                        .iter()
                        .filter_map(|n| {
                            let rank = ticks_engine::sort_rank(f, n)?;
                            Some(format!("ifNull({col} = {}, 0), {rank}", quote(n)))
                        })
                        .collect();
                    format!(
                        "multiIf(isNull({col}), {none}, {}, {none})",
                        arms.join(", ")
                    )
                }
                None => format!("ifNull({col}, {none})"),
            }))
        }
    }
}

fn read_entries(bytes: &[u8]) -> Result<Vec<Entry>, QueryError> {
    let mut r = Reader::new(bytes);
    let mut out = Vec::new();
    while !r.is_done() {
        let packed = r
            .string()
            .map_err(|_| QueryError::Backend("an entry row could not be read".into()))?;
        out.push(
            decode_entry(packed)
                .map_err(|e| QueryError::Backend(format!("a stored entry: {e}")))?,
        );
    }
    Ok(out)
}

/// A page of the log table with the exact total.
pub(super) fn search(shared: &Shared, q: &LogQuery) -> Result<Page, QueryError> {
    // A cursor here is the position of the next page (`o` and a number):
    // exact while the matches do not change before it.
    let offset = match q.cursor.as_deref() {
        None => q.offset,
        Some(c) => c
            .strip_prefix('o')
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| QueryError::InvalidParam {
                param: "cursor".into(),
                message: format!("{c:?} is not a cursor this server gave"),
            })?,
    };
    let cond = conditions(shared, q)?;
    let order = order_by(q)?;
    let (total, keys) = steady(shared, q, &cond, |latest| {
        let (total, cancels) = latest.tally()?;
        if q.limit == 0 || total == 0 {
            return Ok((total, Vec::new()));
        }
        let keys = match latest.page_keys(&order, offset, q.limit, total, cancels)? {
            Some(keys) => keys,
            None => read_keys(&shared.client.query(&format!(
                "SELECT key FROM {} ORDER BY {order} LIMIT {}, {}{} FORMAT RowBinary",
                latest.reading(Some(&order)),
                offset,
                q.limit,
                shared.select_settings()
            ))?)?,
        };
        Ok((total, keys))
    })?;
    let entries = entries_by_key(shared, &keys)?;
    let next = offset + q.limit;
    Ok(Page {
        total,
        entries,
        next_cursor: (q.limit > 0 && (next as u64) < total).then(|| format!("o{next}")),
    })
}

/// The ids of every entry the query selects, in its sort order.
pub(super) fn sorted_ids(shared: &Shared, q: &LogQuery) -> Result<Vec<u32>, QueryError> {
    let cond = conditions(shared, q)?;
    let order = order_by(q)?;
    let matching = Latest::of(shared, q, &cond)?;
    let latest = matching.reading(Some(&format!("id {order}")));
    select_ids(
        shared,
        &format!(
            "SELECT id FROM {latest} ORDER BY {order}{}",
            shared.select_settings()
        ),
    )
}

/// The ids a `SELECT id` answers, in its order.
fn select_ids(shared: &Shared, sql: &str) -> Result<Vec<u32>, QueryError> {
    Ok(shared
        .client
        .query_text(sql)?
        .lines()
        .filter_map(|l| l.trim().parse::<u32>().ok())
        .collect())
}

/// The entries of `keys`, in the order given: a look-up by the table's
/// primary key (a look-up by id reads the whole id column).
fn entries_by_key(shared: &Shared, keys: &[String]) -> Result<Vec<Entry>, QueryError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let t = shared.table("entries");
    let list: Vec<String> = keys.iter().map(|k| quote(k)).collect();
    let bytes = shared.client.query(&format!(
        "SELECT key, argMax(entry, version) FROM {t} WHERE key IN ({}) GROUP BY key FORMAT RowBinary",
        list.join(",")
    ))?;
    let mut r = Reader::new(&bytes);
    let mut found = std::collections::HashMap::new();
    while !r.is_done() {
        let bad = |_| QueryError::Backend("an entry row could not be read".into());
        let key = String::from_utf8_lossy(r.string().map_err(bad)?).into_owned();
        let entry = decode_entry(r.string().map_err(bad)?)
            .map_err(|e| QueryError::Backend(format!("a stored entry: {e}")))?;
        found.insert(key, entry);
    }
    Ok(keys.iter().filter_map(|k| found.remove(k)).collect())
}

/// The live entries of `ids`, in the order given.
pub(super) fn entries(shared: &Shared, ids: &[u32]) -> Result<Vec<Entry>, QueryError> {
    let mut found = std::collections::HashMap::new();
    for chunk in ids.chunks(5_000) {
        let list = chunk
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let t = shared.table("entries");
        let bytes = shared.client.query(&format!(
            "SELECT entry FROM (SELECT key, argMax(entry, version) AS entry, argMax(purged, version) AS purged FROM {t} WHERE key IN (SELECT key FROM {t} WHERE id IN ({list})) GROUP BY key) WHERE purged = 0{} FORMAT RowBinary",
            shared.select_settings()
        ))?;
        for e in read_entries(&bytes)? {
            found.insert(e.id.0, e);
        }
    }
    Ok(ids.iter().filter_map(|id| found.get(id).cloned()).collect())
}

/// Group-by counts over the latest version of the matching entries.
pub(super) fn stats(shared: &Shared, q: &LogQuery, by: GroupBy) -> Result<Stats, QueryError> {
    let cond = conditions(shared, q)?;
    steady(shared, q, &cond, |matching| {
        stats_of(shared, q, by, matching)
    })
}

fn stats_of(
    shared: &Shared,
    q: &LogQuery,
    by: GroupBy,
    matching: &Latest<'_>,
) -> Result<Stats, QueryError> {
    let settings = shared.select_settings();
    let total = matching.count()?;
    let groups = match by {
        GroupBy::Field(field) => {
            let col = column(field).ok_or_else(|| unsupported("group_by"))?;
            let signed = matching.signed(Some(col));
            let bytes = shared.client.query(&format!(
                "SELECT {col}, {NET} AS n FROM {signed} GROUP BY {col}{KEEP_NET} ORDER BY n DESC{settings} FORMAT RowBinary"
            ))?;
            let mut r = Reader::new(&bytes);
            let mut groups = Vec::new();
            while !r.is_done() {
                let key = read_value(&mut r, field)?;
                let count = r.u64().map_err(bad_group)?;
                groups.push(Group { key, count });
            }
            groups
        }
        GroupBy::Day | GroupBy::Hour => {
            // Minutes in SQL, local buckets here: every zone's offset is a
            // whole number of minutes, and the buckets are the store's.
            let signed = matching.signed(Some("recorded_ms"));
            let interval = if by == GroupBy::Day {
                Interval::Day
            } else {
                Interval::Hour
            };
            let text = shared.client.query_text(&format!(
                "SELECT intDiv(recorded_ms, 60000) AS minute, {NET} FROM {signed} GROUP BY minute{KEEP_NET}{settings}"
            ))?;
            let bucketer = Bucketer::new(&q.tz, interval);
            let mut counts: std::collections::BTreeMap<String, u64> = Default::default();
            for line in text.lines() {
                let mut parts = line.split('\t');
                let (Some(Ok(minute)), Some(Ok(n))) = (
                    parts.next().map(str::parse::<i64>),
                    parts.next().map(str::parse::<u64>),
                ) else {
                    return Err(QueryError::Backend(format!("a group answered {line:?}")));
                };
                let label = bucketer
                    .of_ms(minute * 60_000)
                    .map_or_else(|| "invalid".to_string(), |z| bucket_label(&z, interval));
                *counts.entry(label).or_default() += n;
            }
            counts
                .into_iter()
                .map(|(k, count)| Group {
                    key: FieldValue::Text(k),
                    count,
                })
                .collect()
        }
    };
    Ok(Stats { total, groups })
}

fn bad_group<T>(_: T) -> QueryError {
    QueryError::Backend("a group could not be read".into())
}

/// One field's value in a `RowBinary` answer: status and direction are
/// plain strings, the codes `Nullable(Int64)`, the rest `Nullable(String)`.
fn read_value(r: &mut Reader<'_>, field: Field) -> Result<FieldValue, QueryError> {
    let plain = matches!(field, Field::Status | Field::Direction);
    if !plain && r.u8().map_err(bad_group)? == 1 {
        return Ok(FieldValue::None);
    }
    Ok(if matches!(field, Field::ResponseCode | Field::ErrorCode) {
        FieldValue::Int(r.i64().map_err(bad_group)?)
    } else {
        FieldValue::Text(String::from_utf8_lossy(r.string().map_err(bad_group)?).into_owned())
    })
}

/// The matching entries counted in groups of the values each asked report
/// section reads (see `report::grouped`): three statements at most, each
/// one pass over the latest versions.
pub(super) fn report_groups(
    shared: &Shared,
    q: &LogQuery,
    options: &ReportOptions,
) -> Result<ReportGroups, QueryError> {
    let cond = conditions(shared, q)?;
    steady(shared, q, &cond, |matching| {
        report_groups_of(shared, options, matching)
    })
}

fn report_groups_of(
    shared: &Shared,
    options: &ReportOptions,
    matching: &Latest<'_>,
) -> Result<ReportGroups, QueryError> {
    let signed = matching.signed(None);
    let settings = shared.select_settings();
    let columns = |fields: &[Field]| -> Result<Vec<&'static str>, QueryError> {
        fields
            .iter()
            .map(|f| column(*f).ok_or_else(|| unsupported(f.name())))
            .collect()
    };
    let grouped = |fields: &[Field],
                   lead: &str,
                   only: &str|
     -> Result<Vec<(i64, Vec<FieldValue>, u64)>, QueryError> {
        let cols = columns(fields)?.join(", ");
        let (lead_select, lead_group) = if lead.is_empty() {
            (String::new(), String::new())
        } else {
            (format!("{lead} AS lead, "), "lead, ".to_string())
        };
        let bytes = shared.client.query(&format!(
            "SELECT {lead_select}{cols}, {NET} FROM {signed}{only} GROUP BY {lead_group}{cols}{KEEP_NET}{settings} FORMAT RowBinary"
        ))?;
        let mut r = Reader::new(&bytes);
        let mut out = Vec::new();
        while !r.is_done() {
            let at = if lead.is_empty() {
                0
            } else {
                r.i64().map_err(bad_group)?
            };
            let values = fields
                .iter()
                .map(|f| read_value(&mut r, *f))
                .collect::<Result<Vec<_>, _>>()?;
            out.push((at, values, r.u64().map_err(bad_group)?));
        }
        Ok(out)
    };
    let total = matching.count()?;
    let wanted = options.sections;
    let (counts, messages, minutes) = (
        wanted.counts,
        wanted.funnels || wanted.inbound,
        wanted.series,
    );
    let strip = |groups: Vec<(i64, Vec<FieldValue>, u64)>| {
        groups.into_iter().map(|(_, v, n)| (v, n)).collect()
    };
    Ok(ReportGroups {
        total,
        counts: if counts {
            strip(grouped(ReportGroups::counted_fields(), "", "")?)
        } else {
            Vec::new()
        },
        messages: if messages {
            strip(grouped(
                &ReportGroups::message_fields(options.funnel_by),
                "",
                " AND direction IN ('outbound', 'inbound')",
            )?)
        } else {
            Vec::new()
        },
        countries: if wanted.countries {
            strip(grouped(
                &ReportGroups::message_fields(Field::Country),
                "",
                " AND direction = 'outbound'",
            )?)
        } else {
            Vec::new()
        },
        minutes: if minutes {
            grouped(&MINUTE_FIELDS, "intDiv(recorded_ms, 60000) * 60000", "")?
        } else {
            Vec::new()
        },
    })
}

/// The matching outbound entries counted in groups of what the cost
/// section reads (`cost::cost_from_rows` prices them): by UTC hour, and by
/// minute in the hours the zone splits between two buckets, with each
/// billable message's tier computed in the query from where each tier
/// starts in its month (as the store's `Pricer::rank`).
pub(super) fn cost_rows(
    shared: &Shared,
    q: &LogQuery,
    options: &ReportOptions,
) -> Result<Vec<CostRow>, QueryError> {
    let cond = conditions(shared, q)?;
    steady(shared, q, &cond, |matching| {
        cost_rows_of(shared, q, options, matching)
    })
}

fn cost_rows_of(
    shared: &Shared,
    q: &LogQuery,
    options: &ReportOptions,
    matching: &Latest<'_>,
) -> Result<Vec<CostRow>, QueryError> {
    let latest = format!("{} AND direction = 'outbound'", matching.reading(None));
    let signed = format!("{} AND direction = 'outbound'", matching.signed(None));
    let settings = shared.select_settings();
    let group = column(options.group).ok_or_else(|| unsupported(options.group.name()))?;
    let tier = tier_expression(shared, &latest, options.rate_card.as_deref())?;
    let hour = HOUR_MS_SQL;
    let rows = |at: &str, only: &str| -> Result<Vec<CostRow>, QueryError> {
        let bytes = shared.client.query(&format!(
            "SELECT {hour} AS hour_ms, {at} AS at_ms, {group}, country, pricing_category, billable, pricing_type, \
             toUInt8(ifNull(reached IN ('delivered', 'read'), 0)) AS was_delivered, \
             toUInt8(ifNull(reached = 'read', 0)) AS was_read, \
             toUInt8(ifNull(engagement IN ('replied', 'replied_and_clicked'), 0)) AS was_replied, \
             toUInt64({tier}) AS tier_reached, {NET} \
             FROM {signed}{only} \
             GROUP BY hour_ms, at_ms, {group}, country, pricing_category, billable, pricing_type, was_delivered, was_read, was_replied, tier_reached{KEEP_NET}{settings} FORMAT RowBinary"
        ))?;
        let text = |v: FieldValue| match v {
            FieldValue::Text(t) => Some(t),
            _ => None,
        };
        let mut r = Reader::new(&bytes);
        let mut out = Vec::new();
        while !r.is_done() {
            let hour_ms = r.i64().map_err(bad_group)?;
            let at_ms = r.i64().map_err(bad_group)?;
            let group = read_value(&mut r, options.group)?;
            let country = text(read_value(&mut r, Field::Country)?);
            let category = text(read_value(&mut r, Field::PricingCategory)?);
            let billable = match text(read_value(&mut r, Field::Billable)?).as_deref() {
                Some("true") => Some(true),
                Some("false") => Some(false),
                _ => None,
            };
            let pricing_type = read_value(&mut r, Field::PricingType)?;
            let delivered = r.u8().map_err(bad_group)? == 1;
            let read = r.u8().map_err(bad_group)? == 1;
            let replied = r.u8().map_err(bad_group)? == 1;
            let tier = r.u64().map_err(bad_group)?;
            let count = r.u64().map_err(bad_group)?;
            out.push(CostRow {
                group,
                country,
                category,
                billable,
                pricing_type,
                delivered,
                read,
                replied,
                hour_ms,
                at_ms,
                tier,
                count,
            });
        }
        Ok(out)
    };
    by_hour_then_minute(&q.tz, options.interval, rows, |r| r.hour_ms)
}

/// Rows counted by UTC hour (`rows(at, only)` with `at` the hour's start),
/// then, in the hours the zone splits between two buckets, counted again
/// by the minute (`at` the minute's start, `only` those hours) in their
/// place.
fn by_hour_then_minute<T>(
    tz: &jiff::tz::TimeZone,
    interval: Interval,
    mut rows: impl FnMut(&str, &str) -> Result<Vec<T>, QueryError>,
    hour_of: impl Fn(&T) -> i64,
) -> Result<Vec<T>, QueryError> {
    let mut by_hour = rows(HOUR_MS_SQL, "")?;
    let mut hours: Vec<i64> = by_hour.iter().map(&hour_of).collect();
    hours.sort_unstable();
    hours.dedup();
    let split = split_hours(&hours, tz, interval);
    if split.is_empty() {
        return Ok(by_hour);
    }
    by_hour.retain(|r| split.binary_search(&hour_of(r)).is_err());
    let list: Vec<String> = split.iter().map(|h| h.to_string()).collect();
    by_hour.extend(rows(
        "toInt64(intDiv(recorded_ms, 60000) * 60000)",
        &format!(" AND {HOUR_MS_SQL} IN ({})", list.join(", ")),
    )?);
    Ok(by_hour)
}

/// The first millisecond of an entry's UTC hour, in SQL.
const HOUR_MS_SQL: &str = "toInt64(intDiv(recorded_ms, 3600000) * 3600000)";

/// The tier of a matching outbound entry as SQL over the latest versions'
/// columns: for each market, category and UTC month of the matching
/// billable messages whose rates are tiered, where each tier starts among
/// all billable messages of that market and category in that month (the
/// id of the message that as many came before), whatever the filter.
fn tier_expression(
    shared: &Shared,
    matching: &str,
    card: Option<&RateCard>,
) -> Result<String, QueryError> {
    let Some(card) = card.filter(|c| c.rates().iter().any(|r| r.tier > 0)) else {
        return Ok("0".into());
    };
    let settings = shared.select_settings();
    let bytes = shared.client.query(&format!(
        "SELECT DISTINCT country, pricing_category, toInt64(intDiv(recorded_ms, 3600000) * 3600000) \
         FROM {matching} AND billable = 'true'{settings} FORMAT RowBinary"
    ))?;
    let mut r = Reader::new(&bytes);
    let mut months: BTreeSet<(Option<String>, String, (i64, i64))> = BTreeSet::new();
    while !r.is_done() {
        let country = match read_value(&mut r, Field::Country)? {
            FieldValue::Text(t) => Some(t),
            _ => None,
        };
        let category = read_value(&mut r, Field::PricingCategory)?;
        let hour_ms = r.i64().map_err(bad_group)?;
        if let FieldValue::Text(category) = category {
            months.insert((country, category, utc_month(hour_ms)));
        }
    }
    let mut arms = Vec::new();
    let unfiltered = LogQuery::default();
    for (country, category, (start, end)) in months {
        let rates = card.rates_for(country.as_deref(), &category);
        let mut tiers: Vec<u64> = rates.iter().map(|r| r.tier).filter(|t| *t > 0).collect();
        tiers.sort_unstable();
        tiers.dedup();
        let Some(last) = tiers.last().copied() else {
            continue;
        };
        let market = match &country {
            Some(c) => format!("ifNull(country = {}, 0)", quote(c)),
            None => "isNull(country)".into(),
        };
        let cond = format!(
            "ifNull(billable = 'true', 0) AND {market} AND ifNull(pricing_category = {}, 0) \
             AND recorded_ms >= {start} AND recorded_ms < {end}",
            quote(&category)
        );
        let whole = Latest::of(shared, &unfiltered, &cond)?;
        let ids = select_ids(
            shared,
            &format!(
                "SELECT id FROM {} ORDER BY id LIMIT {}{settings}",
                whole.reading(Some("id")),
                last.saturating_add(1)
            ),
        )?;
        // The highest tier first: a message takes the first whose start it
        // is not before.
        for t in tiers.iter().rev() {
            if let Some(first) = usize::try_from(*t).ok().and_then(|i| ids.get(i)) {
                arms.push(format!("{cond} AND id >= {first}, {t}"));
            }
        }
    }
    Ok(if arms.is_empty() {
        "0".into()
    } else {
        format!("multiIf({}, 0)", arms.join(", "))
    })
}

/// What template health reads, counted in ClickHouse: the matching
/// entries with a template in groups (`health::health_from_rows`), the
/// opt-outs they caused (the cause's template and language, the stop's
/// time: stops from the earliest match's time on, as the store's
/// section), and every template event.
pub(super) fn health_rows(
    shared: &Shared,
    q: &LogQuery,
    interval: Interval,
) -> Result<HealthInputs, QueryError> {
    let events = template_events(shared)?;
    let cond = conditions(shared, q)?;
    let (rows, opt_outs) = steady(shared, q, &cond, |matching| {
        health_rows_of(shared, q, interval, matching)
    })?;
    Ok((rows, opt_outs, events))
}

/// The template groups and opt-outs of [`health_rows`].
type HealthGroups = (Vec<HealthRow>, Vec<(String, Option<String>, i64)>);

fn health_rows_of(
    shared: &Shared,
    q: &LogQuery,
    interval: Interval,
    matching: &Latest<'_>,
) -> Result<HealthGroups, QueryError> {
    let latest = matching.reading(None);
    let settings = shared.select_settings();
    let with_template = format!(
        "{} AND isNotNull(template) AND direction IN ('outbound', 'inbound')",
        matching.signed(None)
    );
    let rows = |at: &str, only: &str| -> Result<Vec<HealthRow>, QueryError> {
        let bytes = shared.client.query(&format!(
            "SELECT {HOUR_MS_SQL} AS hour_ms, {at} AS at_ms, template, language, \
             toUInt8(direction = 'outbound') AS was_sent, \
             toUInt8(ifNull(reached IN ('delivered', 'read'), 0)) AS was_delivered, \
             toUInt8(ifNull(reached = 'read', 0)) AS was_read, \
             toUInt8(status IN ('failed', 'rejected', 'no_response')) AS was_failed, error_code, \
             toUInt8(multiIf(direction = 'outbound' OR isNull(attribution), 0, \
                 ifNull(content_type = 'link_click', 0), 1, isNotNull(button), 2, \
                 ifNull(attribution = 'quoted', 0), 3, 4)) AS answer_kind, {NET} \
             FROM {with_template}{only} \
             GROUP BY hour_ms, at_ms, template, language, was_sent, was_delivered, was_read, was_failed, error_code, answer_kind{KEEP_NET}{settings} FORMAT RowBinary"
        ))?;
        let mut r = Reader::new(&bytes);
        let mut out = Vec::new();
        while !r.is_done() {
            let hour_ms = r.i64().map_err(bad_group)?;
            let at_ms = r.i64().map_err(bad_group)?;
            let FieldValue::Text(template) = read_value(&mut r, Field::Template)? else {
                return Err(bad_group(()));
            };
            let language = match read_value(&mut r, Field::Language)? {
                FieldValue::Text(l) => Some(l),
                _ => None,
            };
            let outbound = r.u8().map_err(bad_group)? == 1;
            let delivered = r.u8().map_err(bad_group)? == 1;
            let read = r.u8().map_err(bad_group)? == 1;
            let failed = r.u8().map_err(bad_group)? == 1;
            let error_code = read_value(&mut r, Field::ErrorCode)?;
            let answer = match r.u8().map_err(bad_group)? {
                1 => Answer::Link,
                2 => Answer::Button,
                3 => Answer::Quoted,
                4 => Answer::Inferred,
                _ => Answer::None,
            };
            let count = r.u64().map_err(bad_group)?;
            out.push(HealthRow {
                template,
                language,
                outbound,
                delivered,
                read,
                failed,
                error_code,
                answer,
                hour_ms,
                at_ms,
                count,
            });
        }
        Ok(out)
    };
    let rows = by_hour_then_minute(&q.tz, interval, rows, |r| r.hour_ms)?;
    // Opt-outs: stops from the earliest match's time on whose cause is a
    // match with a template.
    let first = shared
        .client
        .query_text(&format!("SELECT min(recorded_ms) FROM {latest}{settings}"))?;
    let from_ms: i64 = first.trim().parse().unwrap_or(i64::MAX);
    let unfiltered = LogQuery::default();
    let stops = Latest::of(shared, &unfiltered, "isNotNull(opt_out_cause)")?;
    let mut opt_outs = Vec::new();
    {
        let bytes = shared.client.query(&format!(
            "SELECT opt_out_cause, recorded_ms FROM {} AND recorded_ms >= {from_ms}{settings} FORMAT RowBinary",
            stops.reading(Some("opt_out_cause, recorded_ms"))
        ))?;
        let mut r = Reader::new(&bytes);
        let mut stops: Vec<(String, i64)> = Vec::new();
        while !r.is_done() {
            let cause = read_value(&mut r, Field::Template)?;
            let at = r.i64().map_err(bad_group)?;
            if let FieldValue::Text(cause) = cause {
                stops.push((cause, at));
            }
        }
        if !stops.is_empty() {
            let keys: BTreeSet<&String> = stops.iter().map(|(k, _)| k).collect();
            let list: Vec<String> = keys.iter().map(|k| quote(k)).collect();
            let bytes = shared.client.query(&format!(
                "SELECT key, template, language FROM {latest} AND isNotNull(template) AND direction IN ('outbound', 'inbound') AND key IN ({}){settings} FORMAT RowBinary",
                list.join(", ")
            ))?;
            let mut r = Reader::new(&bytes);
            let mut causes: std::collections::BTreeMap<String, (String, Option<String>)> =
                Default::default();
            while !r.is_done() {
                let key = String::from_utf8_lossy(r.string().map_err(bad_group)?).into_owned();
                let FieldValue::Text(template) = read_value(&mut r, Field::Template)? else {
                    return Err(bad_group(()));
                };
                let language = match read_value(&mut r, Field::Language)? {
                    FieldValue::Text(l) => Some(l),
                    _ => None,
                };
                causes.insert(key, (template, language));
            }
            for (cause, at) in stops {
                if let Some((template, language)) = causes.get(&cause) {
                    opt_outs.push((template.clone(), language.clone(), at));
                }
            }
        }
    }
    Ok((rows, opt_outs))
}

/// What [`health_rows`] gives: groups, opt-outs, template events.
pub(super) type HealthInputs = (
    Vec<HealthRow>,
    Vec<(String, Option<String>, i64)>,
    Vec<(String, Option<String>, TemplateChange)>,
);

/// Every template event entry as a change of its template, oldest first.
fn template_events(
    shared: &Shared,
) -> Result<Vec<(String, Option<String>, TemplateChange)>, QueryError> {
    let params = vec![
        ("direction".to_string(), "event".to_string()),
        ("category".to_string(), TEMPLATE_EVENTS.join(",")),
    ];
    let q = LogQuery::from_params(&params, &[])?;
    let ids = sorted_ids(shared, &q)?;
    let mut out: Vec<(String, Option<String>, TemplateChange)> = entries(shared, &ids)?
        .into_iter()
        .filter_map(template_change)
        .collect();
    out.sort_by_key(|(_, _, e)| (e.at_ms, e.id));
    Ok(out)
}

/// The ids of the entries whose latest row was written at or after
/// `since_ms`, recorded at or after `cutoff_ms`, that `q` selects (what an
/// alert counts).
///
/// Read from the rows `entry_changes` recorded since then, which carry
/// each written row's version and values: an entry written since
/// `since_ms` has its latest row among them (a later one would be later
/// still), so the latest of its rows there is the entry.
pub(super) fn changed_matching(
    shared: &Shared,
    q: &LogQuery,
    since_ms: i64,
    cutoff_ms: i64,
) -> Result<roaring::RoaringBitmap, QueryError> {
    let cond = format!(
        "({}) AND recorded_ms >= {cutoff_ms}",
        conditions(shared, q)?
    );
    let sql = format!(
        "SELECT id FROM (SELECT key, {} FROM {} GROUP BY key) WHERE purged = 0 AND ({cond}){}",
        newest(&carried(&cond, Some("id"), q.text.is_some())),
        written_since(shared, since_ms),
        shared.select_settings()
    );
    Ok(select_ids(shared, &sql)?.into_iter().collect())
}

/// The event entries whose latest row was written at or after `since_ms`,
/// recorded at or after `cutoff_ms`, whose event is one of `fields`.
pub(super) fn changed_events(
    shared: &Shared,
    since_ms: i64,
    cutoff_ms: i64,
    fields: &[&str],
) -> Result<Vec<Entry>, QueryError> {
    let params = vec![
        ("direction".to_string(), "event".to_string()),
        ("category".to_string(), fields.join(",")),
    ];
    let q = LogQuery::from_params(&params, &[])?;
    let ids: Vec<u32> = changed_matching(shared, &q, since_ms, cutoff_ms)?
        .iter()
        .collect();
    entries(shared, &ids)
}

/// Whether any entry row was written at or after `since_ms`.
pub(super) fn changed_since(shared: &Shared, since_ms: i64) -> Result<bool, QueryError> {
    Ok(shared.count(&format!(
        "SELECT count() FROM {}",
        written_since(shared, since_ms)
    ))? > 0)
}

/// How far the ClickHouse server's clock (which stamps `entry_changes`)
/// may be behind the clocks of the Ticks processes (which stamp
/// `derived_ms`) before an alert misses a change.
const CLOCK_SKEW_S: i64 = 300;

/// The rows of `entries` written at or after `since_ms`, as the table and
/// condition of a `FROM`: `entry_changes` is ordered by the time of
/// writing (the server's clock, read from a few minutes before: see
/// [`CLOCK_SKEW_S`]), and its `derived_ms` (the writer's clock, as in
/// `entries`) keeps only the rows written since `since_ms`. `derived_ms`
/// is a column of `entries` and `latest` that only a read of all of it
/// finds: alert rounds read this every second during ingest, and at 10M
/// each round's `derived_ms` scans read 10.7M rows (about 19 of the 33 s
/// of CPU of a post of 2,826 lines); the changed keys looked up in
/// `latest` and `entries`, 5–10M rows (1.1–1.4 s a round).
fn written_since(shared: &Shared, since_ms: i64) -> String {
    let since_s = (since_ms.div_euclid(1000) - CLOCK_SKEW_S).max(0);
    format!(
        "{} WHERE at >= {since_s} AND derived_ms >= {since_ms}",
        shared.table("entry_changes")
    )
}
