//! The tallies of a report from groups counted elsewhere: a backend that
//! keeps its entries in a database (ClickHouse) counts the matching
//! entries grouped by the fields each section reads, and the tallies are
//! made from those groups with the rules of the scan plan
//! (`tally_outbound_n`, `ReplyTally`); the report lays them out with the
//! same `assemble`. Only the counting moves; what a funnel step or a reply
//! is stays in `tally.rs`.

use super::tally::{
    tally_outbound_n, BucketTally, ReplyTally, Tallies, BREAKDOWNS, INBOUND, OUTBOUND,
};
use crate::buckets::{Bucketer, Interval};
use crate::error::QueryError;
use crate::scan::Map;
use jiff::tz::TimeZone;
use ticks_engine::{Field, FieldValue, Key, KeyBook};

/// The fields of each series group, beside its minute.
pub(crate) const MINUTE_FIELDS: [Field; 3] = [Field::Direction, Field::Status, Field::ResponseCode];

/// Matching entries counted by groups of equal values.
#[derive(Debug, Default)]
pub(crate) struct ReportGroups {
    /// How many entries match.
    pub(crate) total: u64,
    /// For `counts`: values of [`ReportGroups::counted_fields`], and how
    /// many entries have them.
    pub(crate) counts: Vec<(Vec<FieldValue>, u64)>,
    /// For `funnels` and `inbound`, over outbound and inbound entries:
    /// values of [`ReportGroups::message_fields`], and how many.
    pub(crate) messages: Vec<(Vec<FieldValue>, u64)>,
    /// For `countries`: as `messages` with the country as the funnel's
    /// field, over outbound entries.
    pub(crate) countries: Vec<(Vec<FieldValue>, u64)>,
    /// For `series`: the minute (UTC milliseconds of its start), values of
    /// [`MINUTE_FIELDS`], and how many.
    pub(crate) minutes: Vec<(i64, Vec<FieldValue>, u64)>,
}

impl ReportGroups {
    /// The fields `counts` groups are made of, in order.
    pub(crate) fn counted_fields() -> &'static [Field] {
        &BREAKDOWNS
    }

    /// The fields `messages` groups are made of, in order.
    pub(crate) fn message_fields(funnel_by: Field) -> [Field; 9] {
        [
            Field::Direction,
            Field::Status,
            Field::Reached,
            Field::Engagement,
            Field::ErrorCode,
            funnel_by,
            Field::ContentType,
            Field::Button,
            Field::Attribution,
        ]
    }
}

/// The sections a report asks for, and how (what `tallies` needs of the
/// report's options).
#[derive(Clone, Copy)]
pub(super) struct Wanted {
    pub(super) counts: bool,
    pub(super) funnels: bool,
    pub(super) inbound: bool,
    pub(super) series: bool,
    pub(super) funnel_by: Field,
    pub(super) interval: Interval,
}

/// The tallies of `groups`, with the book their keys are named in.
pub(super) fn tallies(
    groups: ReportGroups,
    tz: &TimeZone,
    wanted: Wanted,
) -> Result<(Tallies, KeyBook), QueryError> {
    let mut book = KeyBook::default();
    let mut keys_of = |fields: &[Field], values: &[FieldValue]| -> Result<Vec<Key>, QueryError> {
        fields
            .iter()
            .zip(values)
            .map(|(f, v)| {
                book.key(*f, v).ok_or_else(|| {
                    QueryError::Backend(format!("{}: {v:?} is not a value it takes", f.name()))
                })
            })
            .collect()
    };
    let mut t = Tallies {
        total: groups.total,
        ..Tallies::default()
    };
    if wanted.counts {
        let fields = ReportGroups::counted_fields();
        let mut counted: Vec<Map<Key, u64>> = vec![Map::default(); fields.len()];
        for (values, n) in &groups.counts {
            for (i, key) in keys_of(fields, values)?.into_iter().enumerate() {
                *counted[i].entry(key).or_default() += n;
            }
        }
        t.breakdowns = fields.iter().copied().zip(counted).collect();
    }
    if wanted.funnels || wanted.inbound {
        let fields = ReportGroups::message_fields(wanted.funnel_by);
        for (values, n) in &groups.messages {
            let k = keys_of(&fields, values)?;
            let (direction, status, reached, engagement, error) = (k[0], k[1], k[2], k[3], k[4]);
            let (by, content, button, attribution) = (k[5], k[6], k[7], k[8]);
            if direction == OUTBOUND && wanted.funnels {
                tally_outbound_n(&mut t.overall, status, reached, engagement, error, *n);
                let f = t.funnels.entry(by).or_default();
                tally_outbound_n(f, status, reached, engagement, error, *n);
            } else if direction == INBOUND && wanted.inbound {
                t.inbound += n;
                *t.inbound_content.entry(content).or_default() += n;
                let click = button != Key::NONE;
                let mut reply = ReplyTally::default();
                reply.count_n(click, attribution, *n);
                t.quoted += reply.quoted;
                t.inferred += reply.inferred;
                t.inbound_by.entry(by).or_default().add(reply);
                if click {
                    t.clicks += n;
                    *t.buttons.entry(button).or_default() += n;
                } else if by == Key::NONE {
                    t.unlinked += n;
                }
            }
        }
    }
    if wanted.series {
        let bucketer = Bucketer::new(tz, wanted.interval);
        for (minute_ms, values, n) in &groups.minutes {
            let Some(start) = bucketer.of_ms(*minute_ms) else {
                continue;
            };
            let k = keys_of(&MINUTE_FIELDS, values)?;
            let b = t
                .buckets
                .entry(start.timestamp().as_millisecond())
                .or_insert_with(|| BucketTally::new(start));
            b.total += n;
            if k[0] == OUTBOUND {
                b.outbound += n;
            }
            *b.status.entry(k[1]).or_default() += n;
            *b.code.entry(k[2]).or_default() += n;
        }
    }
    Ok((t, book))
}
