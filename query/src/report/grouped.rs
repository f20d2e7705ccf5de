//! The report from groups counted elsewhere: a backend that keeps its
//! entries in a database (ClickHouse) counts the matching entries grouped
//! by the fields each section reads, and the report is tallied from those
//! groups with the rules of the scan plan (`tally_outbound`,
//! `ReplyTally`), then laid out by the same `assemble`. Only the counting
//! moves; what a funnel step or a reply is stays here.

use super::{
    assemble, tally_outbound_n, BucketTally, ReplyTally, Report, ReportOptions, Sections, Tallies,
    BREAKDOWNS, INBOUND, OUTBOUND,
};
use crate::buckets::Bucketer;
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

    /// Which of the three kinds of groups a report of `sections` needs:
    /// counts, messages, minutes.
    pub(crate) fn needed(sections: Sections) -> (bool, bool, bool) {
        (
            sections.counts,
            sections.funnels || sections.inbound,
            sections.series,
        )
    }
}

/// The report of `groups`, as the store's report lays it out. The cost,
/// countries and templates sections need the store's rows, and are refused
/// by name.
pub(crate) fn report_from_groups(
    groups: ReportGroups,
    tz: &TimeZone,
    options: &ReportOptions,
) -> Result<Report, QueryError> {
    let s = options.sections;
    for (asked, name) in [
        (s.cost, "cost"),
        (s.countries, "countries"),
        (s.templates, "templates"),
    ] {
        if asked {
            return Err(QueryError::Unsupported(format!(
                "sections={name}: this report section is not yet available on this backend"
            )));
        }
    }
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
    if s.counts {
        let fields = ReportGroups::counted_fields();
        let mut counted: Vec<Map<Key, u64>> = vec![Map::default(); fields.len()];
        for (values, n) in &groups.counts {
            for (i, key) in keys_of(fields, values)?.into_iter().enumerate() {
                *counted[i].entry(key).or_default() += n;
            }
        }
        t.breakdowns = fields.iter().copied().zip(counted).collect();
    }
    if s.funnels || s.inbound {
        let fields = ReportGroups::message_fields(options.funnel_by);
        for (values, n) in &groups.messages {
            let k = keys_of(&fields, values)?;
            let (direction, status, reached, engagement, error) = (k[0], k[1], k[2], k[3], k[4]);
            let (by, content, button, attribution) = (k[5], k[6], k[7], k[8]);
            if direction == OUTBOUND && s.funnels {
                tally_outbound_n(&mut t.overall, status, reached, engagement, error, *n);
                let f = t.funnels.entry(by).or_default();
                tally_outbound_n(f, status, reached, engagement, error, *n);
            } else if direction == INBOUND && s.inbound {
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
    if s.series {
        let bucketer = Bucketer::new(tz, options.interval);
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
    Ok(assemble(&book, t, options))
}
