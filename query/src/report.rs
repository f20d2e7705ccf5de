//! The consolidated report: breakdowns, delivery funnels, failure reasons,
//! time series, inbound engagement and conversations, for any filter of the
//! log table. Figures are exact counts, never samples.
//!
//! Two plans compute the same figures: the bitmap plan intersects
//! the match set with the index bitmaps (its cost follows the size of the
//! value bitmaps, so it suits match sets near the whole store, where an
//! intersection with everything is just a bitmap's length), and the scan
//! plan reads the index keys of each matching entry once (its cost follows
//! the match set: a campaign, a week). [`Plan::Auto`] picks by size; the
//! tests check both plans against a brute-force count.
//!
//! Every figure comes with the filter that selects exactly the entries it
//! counts (`drill`), so a user interface can open the log table behind any
//! bar or number: the drill parameters replace the parameters of the same
//! name in the report's own query.
//!
//! The funnel's steps, over the matching outbound entries:
//!
//! | step | entries |
//! | --- | --- |
//! | attempted | every outbound entry |
//! | accepted | not `rejected` and not `no_response` (the API took it) |
//! | sent | a webhook reported at least `sent` (`reached`), even if it failed later |
//! | delivered | a webhook reported `delivered` or more |
//! | read | a webhook reported `read` (or `played`) |
//! | engaged | the customer replied to it or clicked one of its buttons |

use crate::buckets::{bucket_label, next_bucket, Bucketer, Interval};
use crate::cost::{cost_report, CostReport};
use crate::error::QueryError;
use crate::exec::{matches_in, prefetch};
use crate::health::{template_health, TemplateHealth};
use crate::params::LogQuery;
use crate::rates::RateCard;
pub use crate::scan::Drill;
use crate::scan::{drill, filter_value, Map, ScanColumn, SCAN_CHUNK};
use jiff::tz::TimeZone;
use jiff::Zoned;
use roaring::RoaringBitmap;
use serde::Serialize;
use std::collections::BTreeMap;
use ticks_engine::{Field, FieldValue, Key, KeyBook, Snapshot, Store};
use ticks_ingest::{http_code_info, meta_error_info};

mod grouped;
mod tally;
pub(crate) use grouped::{ReportGroups, MINUTE_FIELDS};
use tally::*;

/// What decodes the keys of tallies for the report: the store's snapshot,
/// or the [`KeyBook`] of tallies counted elsewhere.
trait KeyNames {
    fn value_of(&self, field: Field, key: Key) -> FieldValue;
}

impl KeyNames for Snapshot<'_> {
    fn value_of(&self, field: Field, key: Key) -> FieldValue {
        Snapshot::value_of(self, field, key)
    }
}

impl KeyNames for KeyBook {
    fn value_of(&self, field: Field, key: Key) -> FieldValue {
        KeyBook::value_of(self, field, key)
    }
}

/// Parameters of `/v1/report` and `ticks report` that are not filters.
pub const REPORT_PARAMS: [&str; 7] = [
    "format",
    "interval",
    "funnel_by",
    "top",
    "sections",
    "group",
    "rate_card",
];

/// Most buckets a series may have (a year of days, or 60 days of hours).
const MAX_BUCKETS: usize = 1500;

/// How the report is laid out (not which entries it covers: that is the query).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportOptions {
    /// Bucket width of the series.
    pub interval: Interval,
    /// The field whose values get a funnel each (name, template or category).
    pub funnel_by: Field,
    /// The field the cost section is split by (`group=`).
    pub group: Field,
    /// The rate card that prices the cost section (`rate_card=` names it;
    /// the caller loads it). Without one, messages are counted, not priced.
    pub rate_card: Option<std::sync::Arc<RateCard>>,
    /// How many funnels, failure reasons and groups per breakdown to list.
    pub top: usize,
    /// Which parts to compute; the others are left empty.
    pub sections: Sections,
    /// How to compute it (every plan gives the same report).
    pub plan: Plan,
}

/// The parts of a report (`sections=counts,funnels,series,inbound,cost,countries`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sections {
    /// `counts` and `conversations`.
    pub counts: bool,
    /// `funnel`, `funnels` and `failure_reasons`.
    pub funnels: bool,
    /// `series`.
    pub series: bool,
    /// `inbound`.
    pub inbound: bool,
    /// `cost` (see the `cost` module).
    pub cost: bool,
    /// `countries`: a funnel with failure reasons per country.
    pub countries: bool,
    /// `templates`: each template's health (see the `health` module).
    pub templates: bool,
}

impl Sections {
    /// What a report has unless `sections=` says otherwise.
    pub const DEFAULT: Sections = Sections {
        counts: true,
        funnels: true,
        series: true,
        inbound: true,
        cost: false,
        countries: false,
        templates: false,
    };
    /// No section.
    pub const NONE: Sections = Sections {
        counts: false,
        funnels: false,
        series: false,
        inbound: false,
        cost: false,
        countries: false,
        templates: false,
    };
}

/// How a report is computed. The answer never depends on it, only the time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Plan {
    /// Pick by the size of the match set.
    #[default]
    Auto,
    /// Intersect the match set with the index bitmaps: the cost follows the
    /// size of the value bitmaps, so it suits match sets near the whole store.
    Bitmaps,
    /// Read the index keys of each matching entry once: the cost follows
    /// the match set, so it suits a campaign, a week, a filter.
    Scan,
}

impl Default for ReportOptions {
    fn default() -> ReportOptions {
        ReportOptions {
            interval: Interval::Day,
            funnel_by: Field::Name,
            group: Field::Name,
            rate_card: None,
            top: 20,
            sections: Sections::DEFAULT,
            plan: Plan::Auto,
        }
    }
}

impl ReportOptions {
    /// Reads `interval` (day, hour), `funnel_by` (name, template, category,
    /// user, subaccount), `top` (1..=200) and `sections` (a comma-separated
    /// list of counts, funnels, series, inbound); other parameters are ignored.
    pub fn from_params(params: &[(String, String)]) -> Result<ReportOptions, QueryError> {
        let mut o = ReportOptions::default();
        for (key, value) in params {
            match key.as_str() {
                "interval" => {
                    o.interval = match value.as_str() {
                        "day" => Interval::Day,
                        "hour" => Interval::Hour,
                        _ => return Err(invalid(key, format!("{value:?}: use day or hour"))),
                    }
                }
                "funnel_by" => {
                    o.funnel_by = [
                        Field::Name,
                        Field::Template,
                        Field::Category,
                        Field::User,
                        Field::Subaccount,
                        Field::Country,
                    ]
                    .into_iter()
                    .find(|f| f.name() == value)
                    .ok_or_else(|| {
                        invalid(
                            key,
                            format!(
                                "{value:?}: use name, template, category, user, subaccount or country"
                            ),
                        )
                    })?
                }
                "group" => {
                    o.group = match crate::fields::field(value).and_then(|f| f.filter) {
                        Some(crate::fields::FilterField::Indexed(f))
                            if !matches!(f, Field::Day | Field::Hour) =>
                        {
                            f
                        }
                        _ => {
                            return Err(invalid(
                                key,
                                format!(
                                    "{value:?}: use an indexed field (campaign, template, category, pricing_category, pricing_type, country, user, subaccount...)"
                                ),
                            ))
                        }
                    }
                }
                "top" => {
                    o.top = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=200).contains(n))
                        .ok_or_else(|| invalid(key, format!("{value:?}: use 1 to 200")))?
                }
                "sections" => {
                    let mut sections = Sections::NONE;
                    for part in value.split(',').filter(|p| !p.is_empty()) {
                        match part {
                            "counts" => sections.counts = true,
                            "funnels" => sections.funnels = true,
                            "series" => sections.series = true,
                            "inbound" => sections.inbound = true,
                            "cost" => sections.cost = true,
                            "countries" => sections.countries = true,
                            "templates" => sections.templates = true,
                            other => {
                                return Err(invalid(
                                    key,
                                    format!(
                                        "{other:?}: use counts, funnels, series, inbound, cost, countries or templates"
                                    ),
                                ))
                            }
                        }
                    }
                    o.sections = sections;
                }
                _ => {}
            }
        }
        Ok(o)
    }
}

fn invalid(param: &str, message: String) -> QueryError {
    QueryError::InvalidParam {
        param: param.to_string(),
        message,
    }
}

/// The consolidated report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Matching entries.
    pub total: u64,
    /// Counts by each field, largest first (at most `top` groups each).
    pub counts: Vec<Breakdown>,
    /// The funnel of every matching outbound entry.
    pub funnel: Funnel,
    /// The field `funnels` are split by.
    pub funnel_by: &'static str,
    /// One funnel per value of `funnel_by`, most attempted first.
    pub funnels: Vec<Funnel>,
    /// Error codes of failed and rejected outbound entries, most frequent first.
    pub failure_reasons: Vec<Count>,
    /// Bucket width of `series`.
    pub interval: Interval,
    /// Volume, statuses, codes and rates per bucket, oldest first, without gaps.
    pub series: Vec<Bucket>,
    /// Customer messages: replies and button clicks.
    pub inbound: Inbound,
    /// Conversations by origin type and by pricing category.
    pub conversations: Conversations,
    /// `sections=countries`: one funnel per country, most attempted first,
    /// each with its failure reasons.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub countries: Vec<Funnel>,
    /// `sections=cost`: what the matching messages cost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<CostReport>,
    /// `sections=templates`: each template's health, most sent first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub templates: Vec<TemplateHealth>,
}

/// Counts by the values of one field.
#[derive(Clone, Debug, Serialize)]
pub struct Breakdown {
    /// The field's parameter name.
    pub field: &'static str,
    /// Its values, largest first.
    pub groups: Vec<Count>,
    /// Matching entries not listed (beyond `top`).
    pub other: u64,
}

/// One counted value.
#[derive(Clone, Debug, Serialize)]
pub struct Count {
    /// The value (`null` for entries without one).
    pub key: FieldValue,
    /// How many matching entries have it.
    pub count: u64,
    /// For response and error codes: what the code means.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meaning: Option<&'static str>,
    /// For response and error codes: what to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<&'static str>,
    /// The filter selecting these entries.
    pub drill: Drill,
}

/// A delivery funnel.
#[derive(Clone, Debug, Serialize)]
pub struct Funnel {
    /// The `funnel_by` value (`null` for the overall funnel and for entries without one).
    pub key: FieldValue,
    /// attempted, accepted, sent, delivered, read, engaged.
    pub steps: Vec<Step>,
    /// Currently `failed` (Meta could not deliver).
    pub failed: u64,
    /// `rejected` by the API or `no_response`.
    pub rejected: u64,
    /// Error codes of this funnel's failed and rejected entries (at most 5).
    pub failure_reasons: Vec<Count>,
    /// The filter selecting this funnel's entries.
    pub drill: Drill,
}

/// One step of a funnel.
#[derive(Clone, Debug, Serialize)]
pub struct Step {
    /// The step's name.
    pub step: &'static str,
    /// Entries that reached it.
    pub count: u64,
    /// `count` / attempted (0 when nothing was attempted).
    pub of_attempted: f64,
    /// `count` / the previous step's count (1 for the first step).
    pub of_previous: f64,
    /// The filter selecting the entries that reached it.
    pub drill: Drill,
}

/// One time bucket of the series.
#[derive(Clone, Debug, Serialize)]
pub struct Bucket {
    /// Local start, `YYYY-MM-DD` or `YYYY-MM-DDTHH:00`.
    pub label: String,
    /// Start, UTC milliseconds (inclusive).
    pub from_ms: i64,
    /// End, UTC milliseconds (exclusive).
    pub to_ms: i64,
    /// Matching entries recorded in the bucket.
    pub total: u64,
    /// Outbound entries among them.
    pub outbound: u64,
    /// Counts by current status (only statuses present).
    pub by_status: BTreeMap<&'static str, u64>,
    /// Counts by response code (`none` for entries without one).
    pub by_code: BTreeMap<String, u64>,
    /// Entries answered with 429 / entries with a response code.
    pub rate_429: f64,
    /// Entries answered with a 5xx / entries with a response code.
    pub rate_5xx: f64,
    /// Failed, rejected or unanswered / outbound entries.
    pub failure_rate: f64,
}

/// The inbound (MO) side.
#[derive(Clone, Debug, Serialize)]
pub struct Inbound {
    /// Matching inbound messages.
    pub total: u64,
    /// Those answering a known outbound message with text or media.
    pub replies: u64,
    /// Those that are quick-reply or interactive button clicks.
    pub clicks: u64,
    /// Replies and clicks tied to what they answer by a quote.
    pub quoted: u64,
    /// Replies tied to what they answer by inference (no quote).
    pub inferred: u64,
    /// Inbound messages by content type.
    pub by_content_type: Vec<Count>,
    /// Replies and clicks per `funnel_by` value of the message they answer.
    pub by_campaign: Vec<CampaignReplies>,
    /// Clicks per button payload.
    pub by_button: Vec<Count>,
}

/// Replies and clicks answering one campaign (or bot, or template).
#[derive(Clone, Debug, Serialize)]
pub struct CampaignReplies {
    /// The `funnel_by` value (`null`: not linked to a known message).
    pub key: FieldValue,
    /// Text or media replies.
    pub replies: u64,
    /// Button clicks.
    pub clicks: u64,
    /// Of the replies and clicks, those that quote the message they answer.
    pub quoted: u64,
    /// Those that quote nothing, attributed to the person's latest message.
    pub inferred: u64,
    /// The filter selecting them.
    pub drill: Drill,
}

/// Conversations (from status webhooks' `conversation` and `pricing`).
#[derive(Clone, Debug, Serialize)]
pub struct Conversations {
    /// By `conversation.origin.type`.
    pub by_type: Vec<Count>,
    /// By `pricing.category`.
    pub by_pricing_category: Vec<Count>,
}

/// Computes the report of the entries matching `q` (its sort and paging are ignored).
pub fn report(store: &Store, q: &LogQuery, options: &ReportOptions) -> Result<Report, QueryError> {
    let pre = prefetch(store, q)?;
    let snap = store.snapshot();
    let matches = matches_in(&snap, q, &pre);
    // Cost, countries and templates are computed apart, below.
    let wanted = Sections {
        cost: false,
        countries: false,
        templates: false,
        ..options.sections
    };
    let none = Sections::NONE;
    let (scanned, intersected) = match options.plan {
        Plan::Scan => (wanted, none),
        Plan::Bitmaps => (none, wanted),
        Plan::Auto => {
            // Counts and series take one intersection per value bitmap (per
            // hour and status for the series): near the whole store that is
            // a bitmap's length each, far less than reading every entry.
            // Funnels and inbound intersect per funnel and step, which costs
            // more than a scan of the outbound or inbound matches, whatever
            // their size (benches/RESULTS.md, "report sections").
            let big = matches.len() * 4 >= snap.live().len();
            (
                Sections {
                    counts: wanted.counts && !big,
                    series: wanted.series && !big,
                    ..wanted
                },
                Sections {
                    counts: wanted.counts && big,
                    series: wanted.series && big,
                    ..none
                },
            )
        }
    };
    let mut tallies = Tallies {
        total: matches.len(),
        ..Tallies::default()
    };
    if scanned != none {
        let part = ReportOptions {
            sections: scanned,
            ..options.clone()
        };
        take_sections(
            &mut tallies,
            scan_on_two_threads(&snap, &matches, &q.tz, &part, SPLIT_FROM),
            scanned,
        );
    }
    if intersected != none {
        let part = ReportOptions {
            sections: intersected,
            ..options.clone()
        };
        take_sections(
            &mut tallies,
            bitmap_tallies(&snap, &matches, &q.tz, &part),
            intersected,
        );
    }
    let mut report = assemble(&snap, tallies, options);
    if options.sections.countries {
        let by_country = ReportOptions {
            sections: Sections {
                funnels: true,
                ..none
            },
            funnel_by: Field::Country,
            ..options.clone()
        };
        let t = scan_on_two_threads(&snap, &matches, &q.tz, &by_country, SPLIT_FROM);
        report.countries = assemble(&snap, t, &by_country).funnels;
    }
    if options.sections.templates {
        report.templates = template_health(&snap, &matches, &q.tz, options.interval, options.top);
    }
    if options.sections.cost {
        report.cost = Some(cost_report(
            &snap,
            &matches,
            &q.tz,
            options.interval,
            options.group,
            options.top,
            options.rate_card.as_deref(),
        ));
    }
    Ok(report)
}

/// Moves the figures of `sections` from `other` (computed with those
/// sections) into `self`.
fn take_sections(t: &mut Tallies, other: Tallies, sections: Sections) {
    if sections.counts {
        t.breakdowns = other.breakdowns;
    }
    if sections.funnels {
        t.overall = other.overall;
        t.funnels = other.funnels;
    }
    if sections.series {
        t.buckets = other.buckets;
    }
    if sections.inbound {
        t.inbound = other.inbound;
        t.clicks = other.clicks;
        t.unlinked = other.unlinked;
        t.inbound_content = other.inbound_content;
        t.inbound_by = other.inbound_by;
        t.quoted = other.quoted;
        t.inferred = other.inferred;
        t.buttons = other.buttons;
    }
}

/// The report of entries a backend counted in groups (see `grouped.rs`),
/// as the store's report lays it out. The cost and templates sections are
/// not made from these groups, and are refused by name (a backend that
/// prices groups of its own, `cost::cost_from_rows`, adds the cost
/// section after).
pub(crate) fn report_from_groups(
    mut groups: ReportGroups,
    tz: &TimeZone,
    options: &ReportOptions,
) -> Result<Report, QueryError> {
    let s = options.sections;
    for (asked, name) in [(s.cost, "cost"), (s.templates, "templates")] {
        if asked {
            return Err(QueryError::Unsupported(format!(
                "sections={name}: this report section is not yet available on this backend"
            )));
        }
    }
    let wanted = grouped::Wanted {
        counts: s.counts,
        funnels: s.funnels,
        inbound: s.inbound,
        series: s.series,
        funnel_by: options.funnel_by,
        interval: options.interval,
    };
    let countries = std::mem::take(&mut groups.countries);
    let (tallies, book) = grouped::tallies(groups, tz, wanted)?;
    let mut report = assemble(&book, tallies, options);
    if s.countries {
        // The store's: a funnel per country over the outbound matches.
        let by_country = ReportOptions {
            sections: Sections {
                funnels: true,
                ..Sections::NONE
            },
            funnel_by: Field::Country,
            ..options.clone()
        };
        let groups = ReportGroups {
            messages: countries,
            ..ReportGroups::default()
        };
        let wanted = grouped::Wanted {
            counts: false,
            funnels: true,
            inbound: false,
            series: false,
            funnel_by: Field::Country,
            interval: options.interval,
        };
        let (t, book) = grouped::tallies(groups, tz, wanted)?;
        report.countries = assemble(&book, t, &by_country).funnels;
    }
    Ok(report)
}

/// Matches from which a scan is split over two threads.
const SPLIT_FROM: u64 = 200_000;

/// The scan plan's tallies of `options` over `matches`, scanned in two
/// halves on two threads from `split_from` matches on.
fn scan_on_two_threads(
    snap: &Snapshot<'_>,
    matches: &RoaringBitmap,
    tz: &TimeZone,
    options: &ReportOptions,
    split_from: u64,
) -> Tallies {
    let Some(mid) = matches
        .select((matches.len() / 2) as u32)
        .filter(|_| matches.len() >= split_from)
    else {
        return scan_tallies(snap, matches, tz, options);
    };
    let mut lower = matches.clone();
    lower.remove_range(mid..);
    let mut upper = matches.clone();
    upper.remove_range(..mid);
    let (mut t, other) = std::thread::scope(|s| {
        let high = s.spawn(|| scan_tallies(snap, &upper, tz, options));
        let low = scan_tallies(snap, &lower, tz, options);
        (low, high.join())
    });
    match other {
        Ok(other) => t.merge(other),
        // A panic in the other half is a bug: count that half alone.
        Err(_) => return scan_tallies(snap, matches, tz, options),
    }
    t
}

/// The scan plan: read the matching entries' key codes from the key
/// columns, a chunk of ids at a time and column by column (sequential reads
/// into small buffers that stay in cache), count codes in arrays, and decode
/// each distinct code once at the end.
fn scan_tallies(
    snap: &Snapshot<'_>,
    matches: &RoaringBitmap,
    tz: &TimeZone,
    options: &ReportOptions,
) -> Tallies {
    let sections = options.sections;
    let column = |field| ScanColumn::new(snap.column(field));
    let mut breakdowns: Vec<(Field, ScanColumn<'_>, Vec<u64>)> = if sections.counts {
        BREAKDOWNS
            .iter()
            .map(|f| {
                let c = column(*f);
                let counts = vec![0; c.keys.len() * LANES];
                (*f, c, counts)
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut direction = column(Field::Direction);
    let mut status = column(Field::Status);
    let mut code = column(Field::ResponseCode);
    let mut reached = column(Field::Reached);
    let mut engagement = column(Field::Engagement);
    let mut error = column(Field::ErrorCode);
    let mut by = column(options.funnel_by);
    let mut content = column(Field::ContentType);
    let mut button = column(Field::Button);
    let mut attribution = column(Field::Attribution);
    let mut hour = column(Field::Hour);
    let mut t = Tallies::default();
    let mut funnels: Vec<Option<FunnelTally>> = vec![None; by.keys.len()];
    let mut inbound_content = vec![0u64; content.keys.len()];
    let mut inbound_by = vec![ReplyTally::default(); by.keys.len()];
    let mut buttons = vec![0u64; button.keys.len()];
    let mut series = DenseSeries::new(tz, options.interval, &hour, &status, &code);
    // Funnels read outbound entries only and inbound inbound ones: without
    // counts or a series, the other directions are not read at all.
    let subset;
    let read = if sections.counts || sections.series {
        matches
    } else {
        let mut directions = RoaringBitmap::new();
        for (wanted, direction) in [(sections.funnels, OUTBOUND), (sections.inbound, INBOUND)] {
            if let Some(bm) = bitmap_of(snap, Field::Direction, direction).filter(|_| wanted) {
                directions |= bm;
            }
        }
        subset = directions & matches;
        &subset
    };
    let mut ids = Vec::with_capacity(SCAN_CHUNK);
    let mut rest = read.iter().peekable();
    while rest.peek().is_some() {
        ids.clear();
        ids.extend(rest.by_ref().take(SCAN_CHUNK));
        for (_, c, counts) in &mut breakdowns {
            c.load(&ids);
            count_codes(&c.codes, counts);
        }
        direction.load(&ids);
        status.load(&ids);
        if sections.funnels {
            for c in [&mut reached, &mut engagement, &mut error] {
                c.load(&ids);
            }
        }
        if sections.funnels || sections.inbound {
            by.load(&ids);
        }
        if sections.inbound {
            content.load(&ids);
            button.load(&ids);
            attribution.load(&ids);
        }
        if sections.series {
            hour.load(&ids);
            code.load(&ids);
        }
        for (i, id) in ids.iter().enumerate() {
            let outbound = direction.key_at(i) == OUTBOUND;
            if outbound && sections.funnels {
                let (status, reached, engagement, error) = (
                    status.key_at(i),
                    reached.key_at(i),
                    engagement.key_at(i),
                    error.key_at(i),
                );
                tally_outbound(&mut t.overall, status, reached, engagement, error);
                let f = funnels[by.codes[i] as usize].get_or_insert_with(FunnelTally::default);
                tally_outbound(f, status, reached, engagement, error);
            } else if direction.key_at(i) == INBOUND && sections.inbound {
                t.inbound += 1;
                inbound_content[content.codes[i] as usize] += 1;
                let by_code = by.codes[i] as usize;
                let click = button.key_at(i) != Key::NONE;
                let how = attribution.key_at(i);
                inbound_by[by_code].count(click, how);
                t.quoted += u64::from(how == QUOTED);
                t.inferred += u64::from(how == INFERRED);
                if click {
                    t.clicks += 1;
                    buttons[button.codes[i] as usize] += 1;
                } else if by.keys[by_code] == Key::NONE {
                    t.unlinked += 1;
                }
            }
            if sections.series {
                let placed = series.bucket(hour.codes[i] as usize, hour.key_at(i), || {
                    snap.recorded_ms(*id)
                });
                if let Some(b) = placed {
                    b.total += 1;
                    b.outbound += u64::from(outbound);
                    b.status[status.codes[i] as usize] += 1;
                    b.code[code.codes[i] as usize] += 1;
                }
            }
        }
    }
    t.breakdowns = breakdowns
        .into_iter()
        .map(|(field, c, counts)| (field, c.decode(&fold_lanes(&counts))))
        .collect();
    t.funnels = funnels
        .into_iter()
        .enumerate()
        .filter_map(|(code, f)| Some((by.keys[code], f?)))
        .collect();
    t.inbound_content = content.decode(&inbound_content);
    for (code, tally) in inbound_by.into_iter().enumerate() {
        if tally != ReplyTally::default() {
            t.inbound_by.entry(by.keys[code]).or_default().add(tally);
        }
    }
    t.buttons = button.decode(&buttons);
    t.buckets = series.finish(&status, &code);
    t
}

/// Counters per code in [`count_codes`]: consecutive entries mostly share
/// a value (most messages are delivered), and one counter per code would
/// make each increment wait for the previous one's store.
const LANES: usize = 4;

/// Adds one per code to `counts`, laid out as `LANES` counters per code.
fn count_codes(codes: &[u32], counts: &mut [u64]) {
    let mut chunks = codes.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (lane, code) in chunk.iter().enumerate() {
            counts[*code as usize * LANES + lane] += 1;
        }
    }
    for code in chunks.remainder() {
        counts[*code as usize * LANES] += 1;
    }
}

/// `LANES` counters per code -> one count per code.
fn fold_lanes(counts: &[u64]) -> Vec<u64> {
    counts.chunks_exact(LANES).map(|c| c.iter().sum()).collect()
}

/// The series of the scan plan: buckets counted by status and response code
/// codes; each UTC hour is placed in its local bucket once.
struct DenseSeries<'a> {
    bucketer: Bucketer<'a>,
    /// Hour code -> index in `buckets`, or `UNPLACED`/`BY_ENTRY`.
    hour_bucket: Vec<u32>,
    by_start: Map<i64, u32>,
    buckets: Vec<DenseBucket>,
    /// Codes of the status and response code columns, for a bucket's arrays.
    widths: (usize, usize),
}

struct DenseBucket {
    start: Zoned,
    total: u64,
    outbound: u64,
    status: Vec<u64>,
    code: Vec<u64>,
}

/// An hour code not looked at yet.
const UNPLACED: u32 = u32::MAX;
/// An hour that does not lie in one bucket: each entry is placed by its time.
const BY_ENTRY: u32 = u32::MAX - 1;

impl<'a> DenseSeries<'a> {
    fn new(
        tz: &'a TimeZone,
        interval: Interval,
        hour: &ScanColumn<'_>,
        status: &ScanColumn<'_>,
        code: &ScanColumn<'_>,
    ) -> DenseSeries<'a> {
        DenseSeries {
            bucketer: Bucketer::new(tz, interval),
            hour_bucket: vec![UNPLACED; hour.keys.len()],
            by_start: Map::default(),
            buckets: Vec::new(),
            widths: (status.keys.len(), code.keys.len()),
        }
    }

    fn index_of(&mut self, start: Zoned) -> u32 {
        let ms = start.timestamp().as_millisecond();
        let next = self.buckets.len() as u32;
        let (statuses, codes) = self.widths;
        *self.by_start.entry(ms).or_insert_with(|| {
            self.buckets.push(DenseBucket {
                start,
                total: 0,
                outbound: 0,
                status: vec![0; statuses],
                code: vec![0; codes],
            });
            next
        })
    }

    /// The bucket of an entry whose UTC hour has code `hour_code` (key
    /// `hour`); `recorded_ms` is asked only when the hour is split.
    fn bucket(
        &mut self,
        hour_code: usize,
        hour: Key,
        recorded_ms: impl FnOnce() -> i64,
    ) -> Option<&mut DenseBucket> {
        if self.hour_bucket[hour_code] == UNPLACED {
            self.hour_bucket[hour_code] = match self.bucketer.of_hour(hour) {
                Some(start) => self.index_of(start),
                None => BY_ENTRY,
            };
        }
        let index = match self.hour_bucket[hour_code] {
            BY_ENTRY => {
                let start = self.bucketer.of_ms(recorded_ms())?;
                self.index_of(start)
            }
            index => index,
        };
        self.buckets.get_mut(index as usize)
    }

    fn finish(self, status: &ScanColumn<'_>, code: &ScanColumn<'_>) -> BTreeMap<i64, BucketTally> {
        self.buckets
            .into_iter()
            .map(|b| {
                let ms = b.start.timestamp().as_millisecond();
                let mut tally = BucketTally::new(b.start);
                tally.total = b.total;
                tally.outbound = b.outbound;
                tally.status = status.decode(&b.status);
                tally.code = code.decode(&b.code);
                (ms, tally)
            })
            .collect()
    }
}

/// The bitmap plan: intersect the match set with the index bitmaps.
fn bitmap_tallies(
    snap: &Snapshot<'_>,
    matches: &RoaringBitmap,
    tz: &TimeZone,
    options: &ReportOptions,
) -> Tallies {
    // Every index bitmap holds live entries only, so when everything
    // matches, an intersection is the bitmap itself.
    let everything = matches.len() == snap.live().len();
    let sections = options.sections;
    let mut t = Tallies {
        total: matches.len(),
        ..Tallies::default()
    };
    if sections.counts {
        t.breakdowns = BREAKDOWNS
            .iter()
            .map(|f| {
                let counts = snap
                    .values(*f)
                    .filter_map(|(key, bm)| {
                        let n = if everything {
                            bm.len()
                        } else {
                            matches.intersection_len(bm)
                        };
                        (n > 0).then_some((key, n))
                    })
                    .collect();
                (*f, counts)
            })
            .collect();
    }
    let statuses: Map<Key, &RoaringBitmap> = snap.values(Field::Status).collect();
    if sections.funnels {
        funnel_tallies(
            snap,
            matches,
            everything,
            &statuses,
            options.funnel_by,
            &mut t,
        );
    }
    if sections.inbound {
        inbound_tallies(snap, matches, options.funnel_by, &mut t);
    }
    if sections.series {
        let bucketer = Bucketer::new(tz, options.interval);
        series_tallies(snap, matches, everything, &statuses, bucketer, &mut t);
    }
    t
}

/// The bitmap of one key of one field.
fn bitmap_of<'s>(snap: &'s Snapshot<'_>, field: Field, key: Key) -> Option<&'s RoaringBitmap> {
    snap.bitmap(field, key)
}

fn funnel_tallies(
    snap: &Snapshot<'_>,
    matches: &RoaringBitmap,
    everything: bool,
    statuses: &Map<Key, &RoaringBitmap>,
    by: Field,
    t: &mut Tallies,
) {
    let outbound =
        bitmap_of(snap, Field::Direction, OUTBOUND).map_or_else(RoaringBitmap::new, |bm| {
            if everything {
                bm.clone()
            } else {
                matches & bm
            }
        });
    let reached: Vec<(Key, &RoaringBitmap)> = snap
        .values(Field::Reached)
        .filter(|(k, _)| *k != Key::NONE)
        .collect();
    let engaged: Vec<&RoaringBitmap> = snap
        .values(Field::Engagement)
        .filter(|(k, _)| *k != Key::NONE)
        .map(|(_, bm)| bm)
        .collect();
    let funnel_of = |part: &RoaringBitmap| -> FunnelTally {
        let status = |s: Key| statuses.get(&s).map_or(0, |bm| part.intersection_len(bm));
        let mut f = FunnelTally {
            attempted: part.len(),
            refused: status(REJECTED) + status(NO_RESPONSE),
            failed: status(FAILED),
            engaged: engaged.iter().map(|bm| part.intersection_len(bm)).sum(),
            ..FunnelTally::default()
        };
        for (key, bm) in &reached {
            let n = part.intersection_len(bm);
            let steps = key.as_reached().map_or(0, |r| r as usize);
            for step in f.reached.iter_mut().take(steps) {
                *step += n;
            }
        }
        let mut failing = RoaringBitmap::new();
        for s in [FAILED, REJECTED, NO_RESPONSE] {
            if let Some(bm) = statuses.get(&s) {
                failing |= part & *bm;
            }
        }
        if !failing.is_empty() {
            for (key, bm) in snap.values(Field::ErrorCode) {
                let n = failing.intersection_len(bm);
                if n > 0 {
                    f.reasons.insert(key, n);
                }
            }
        }
        f
    };
    t.overall = funnel_of(&outbound);
    for (key, bm) in snap.values(by) {
        let part = &outbound & bm;
        if !part.is_empty() {
            t.funnels.insert(key, funnel_of(&part));
        }
    }
}

fn inbound_tallies(snap: &Snapshot<'_>, matches: &RoaringBitmap, by: Field, t: &mut Tallies) {
    let Some(bm) = bitmap_of(snap, Field::Direction, INBOUND) else {
        return;
    };
    let keyed = |m: &RoaringBitmap, field: Field| -> Map<Key, u64> {
        snap.values(field)
            .filter_map(|(key, bm)| {
                let n = m.intersection_len(bm);
                (n > 0).then_some((key, n))
            })
            .collect()
    };
    let inbound = matches & bm;
    let clicks = match bitmap_of(snap, Field::Button, Key::NONE) {
        Some(no_button) => &inbound - no_button,
        None => inbound.clone(),
    };
    t.inbound = inbound.len();
    t.clicks = clicks.len();
    let quoted = bitmap_of(snap, Field::Attribution, QUOTED).map(|q| &inbound & q);
    let inferred = bitmap_of(snap, Field::Attribution, INFERRED).map(|q| &inbound & q);
    t.quoted = quoted.as_ref().map_or(0, RoaringBitmap::len);
    t.inferred = inferred.as_ref().map_or(0, RoaringBitmap::len);
    // A reply has a `funnel_by` value only from the message it answers: for
    // every value but none, its replies are quoted or inferred, so one
    // intersection tells both (the smaller set's, the cheaper). The value's
    // replies are gathered once; clicks and attribution are counted within
    // them, a few replies, instead of within all the value's entries
    // (sends and statuses among them) again each time.
    let quoted_smaller = t.quoted <= t.inferred;
    for (key, bm) in snap.values(by) {
        let part = &inbound & bm;
        let all = part.len();
        if all > 0 {
            let c = part.intersection_len(&clicks);
            let within =
                |set: &Option<RoaringBitmap>| set.as_ref().map_or(0, |s| part.intersection_len(s));
            let (quoted_n, inferred_n) = if key == Key::NONE {
                (within(&quoted), within(&inferred))
            } else if quoted_smaller {
                let q = within(&quoted);
                (q, all - q)
            } else {
                let i = within(&inferred);
                (all - i, i)
            };
            t.inbound_by.insert(
                key,
                ReplyTally {
                    replies: all - c,
                    clicks: c,
                    quoted: quoted_n,
                    inferred: inferred_n,
                },
            );
            if key == Key::NONE {
                t.unlinked = all - c;
            }
        }
    }
    t.inbound_content = keyed(&inbound, Field::ContentType);
    t.buttons = keyed(&inbound, Field::Button);
    t.buttons.remove(&Key::NONE);
}

fn series_tallies(
    snap: &Snapshot<'_>,
    matches: &RoaringBitmap,
    everything: bool,
    statuses: &Map<Key, &RoaringBitmap>,
    mut bucketer: Bucketer<'_>,
    t: &mut Tallies,
) {
    // Gather each bucket's entries from the UTC hour bitmaps.
    let mut members: BTreeMap<i64, (Zoned, RoaringBitmap)> = BTreeMap::new();
    for (hour, bm) in snap.values(Field::Hour) {
        let part = if everything { bm.clone() } else { matches & bm };
        if part.is_empty() {
            continue;
        }
        match bucketer.of_hour(hour) {
            Some(z) => {
                members
                    .entry(z.timestamp().as_millisecond())
                    .or_insert_with(|| (z, RoaringBitmap::new()))
                    .1 |= part;
            }
            None => {
                for id in part {
                    if let Some(z) = bucketer.of_ms(snap.recorded_ms(id)) {
                        members
                            .entry(z.timestamp().as_millisecond())
                            .or_insert_with(|| (z, RoaringBitmap::new()))
                            .1
                            .insert(id);
                    }
                }
            }
        }
    }
    let outbound_bm = bitmap_of(snap, Field::Direction, OUTBOUND);
    let codes: Vec<(Key, &RoaringBitmap)> = snap.values(Field::ResponseCode).collect();
    for (start_ms, (start, entries)) in members {
        let mut b = BucketTally::new(start);
        b.total = entries.len();
        b.outbound = outbound_bm.map_or(0, |bm| entries.intersection_len(bm));
        for (key, bm) in statuses {
            let n = entries.intersection_len(bm);
            if n > 0 {
                b.status.insert(*key, n);
            }
        }
        for (key, bm) in &codes {
            let n = entries.intersection_len(bm);
            if n > 0 {
                b.code.insert(*key, n);
            }
        }
        t.buckets.insert(start_ms, b);
    }
}

/// Counts of `counts` (raw keys of `field`) as listed groups, largest
/// first, each drilled by `base` plus its value.
fn groups(
    snap: &dyn KeyNames,
    counts: &Map<Key, u64>,
    field: Field,
    base: &[(&str, &str)],
) -> Vec<Count> {
    let mut groups: Vec<Count> = counts
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(key, count)| {
            let key = snap.value_of(field, *key);
            let (meaning, action) = explain(field, &key);
            let mut d = drill(base);
            d.push((field.name().to_string(), filter_value(&key)));
            Count {
                key,
                count: *count,
                meaning,
                action,
                drill: d,
            }
        })
        .collect();
    // Largest first; ties in a stable order so reports are reproducible.
    groups.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| filter_value(&a.key).cmp(&filter_value(&b.key)))
    });
    groups
}

fn known(mut groups: Vec<Count>) -> Vec<Count> {
    groups.retain(|g| g.key != FieldValue::None);
    groups
}

fn explain(field: Field, key: &FieldValue) -> (Option<&'static str>, Option<&'static str>) {
    let info = match (field, key) {
        (Field::ErrorCode, FieldValue::Int(code)) => meta_error_info(*code),
        (Field::ResponseCode, FieldValue::Int(code)) => {
            u16::try_from(*code).ok().and_then(http_code_info)
        }
        _ => None,
    };
    match info {
        Some(i) => (Some(i.meaning), Some(i.action)),
        None => (None, None),
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Decodes the tallies and lays the report out, with every drill-down.
fn assemble(snap: &dyn KeyNames, t: Tallies, options: &ReportOptions) -> Report {
    let top = options.top;
    let by = options.funnel_by;
    let breakdown = |field: Field| -> Vec<Count> {
        t.breakdowns
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, counts)| groups(snap, counts, field, &[]))
            .unwrap_or_default()
    };
    let counts = t
        .breakdowns
        .iter()
        .map(|&(field, _)| {
            let mut groups = breakdown(field);
            let listed: u64 = groups.iter().take(top).map(|g| g.count).sum();
            groups.truncate(top);
            Breakdown {
                field: field.name(),
                groups,
                other: t.total - listed,
            }
        })
        .collect();
    let mut funnels: Vec<Funnel> = t
        .funnels
        .iter()
        .map(|(key, f)| {
            let key = snap.value_of(by, *key);
            let value = filter_value(&key);
            funnel(snap, f, key, &[(by.name(), &value)])
        })
        .collect();
    funnels.sort_by(|a, b| {
        b.steps[0]
            .count
            .cmp(&a.steps[0].count)
            .then_with(|| filter_value(&a.key).cmp(&filter_value(&b.key)))
    });
    funnels.truncate(top);
    let mut failure_reasons = groups(
        snap,
        &t.overall.reasons,
        Field::ErrorCode,
        &[("direction", "outbound"), ("status", "failed,rejected")],
    );
    failure_reasons.truncate(top);

    let base = [("direction", "inbound")];
    let mut by_campaign: Vec<CampaignReplies> = t
        .inbound_by
        .iter()
        .map(|(key, tally)| {
            let key = snap.value_of(by, *key);
            let mut d = drill(&base);
            d.push((by.name().to_string(), filter_value(&key)));
            CampaignReplies {
                key,
                replies: tally.replies,
                clicks: tally.clicks,
                quoted: tally.quoted,
                inferred: tally.inferred,
                drill: d,
            }
        })
        .collect();
    by_campaign.sort_by(|a, b| {
        (b.replies + b.clicks)
            .cmp(&(a.replies + a.clicks))
            .then_with(|| filter_value(&a.key).cmp(&filter_value(&b.key)))
    });
    by_campaign.truncate(top);
    let mut by_button = known(groups(snap, &t.buttons, Field::Button, &base));
    by_button.truncate(top);
    let mut by_content_type = groups(snap, &t.inbound_content, Field::ContentType, &base);
    by_content_type.truncate(top);

    Report {
        total: t.total,
        counts,
        funnel: funnel(snap, &t.overall, FieldValue::None, &[]),
        funnel_by: by.name(),
        funnels,
        failure_reasons,
        interval: options.interval,
        series: series(snap, &t.buckets, options.interval),
        inbound: Inbound {
            total: t.inbound,
            replies: t.inbound - t.clicks - t.unlinked,
            clicks: t.clicks,
            quoted: t.quoted,
            inferred: t.inferred,
            by_content_type,
            by_campaign,
            by_button,
        },
        conversations: Conversations {
            by_type: known(breakdown(Field::ConversationType)),
            by_pricing_category: known(breakdown(Field::PricingCategory)),
        },
        countries: Vec::new(),
        cost: None,
        templates: Vec::new(),
    }
}

/// A funnel step: its name, its count, and the filter that adds it.
type StepSpec<'a> = (&'static str, u64, &'a [(&'a str, &'a str)]);

fn funnel(snap: &dyn KeyNames, f: &FunnelTally, key: FieldValue, base: &[(&str, &str)]) -> Funnel {
    let mut base = base.to_vec();
    base.push(("direction", "outbound"));
    let attempted = f.attempted;
    let steps_raw: [StepSpec; 6] = [
        ("attempted", attempted, &[]),
        (
            "accepted",
            attempted - f.refused,
            &[("-status", "rejected,no_response")],
        ),
        ("sent", f.reached[0], &[("reached", "sent,delivered,read")]),
        ("delivered", f.reached[1], &[("reached", "delivered,read")]),
        ("read", f.reached[2], &[("reached", "read")]),
        (
            "engaged",
            f.engaged,
            &[("engagement", "replied,clicked,replied_and_clicked")],
        ),
    ];
    let mut previous = attempted;
    let steps = steps_raw
        .iter()
        .enumerate()
        .map(|(i, (step, count, extra))| {
            let mut d = drill(&base);
            d.extend(drill(extra));
            let s = Step {
                step,
                count: *count,
                of_attempted: ratio(*count, attempted),
                of_previous: if i == 0 { 1.0 } else { ratio(*count, previous) },
                drill: d,
            };
            previous = *count;
            s
        })
        .collect();
    let mut reasons_base = base.clone();
    reasons_base.push(("status", "failed,rejected"));
    let mut failure_reasons = groups(snap, &f.reasons, Field::ErrorCode, &reasons_base);
    failure_reasons.truncate(5);
    Funnel {
        key,
        steps,
        failed: f.failed,
        rejected: f.refused,
        failure_reasons,
        drill: drill(&base),
    }
}

/// Lays the buckets out oldest first, filling the gaps with empty buckets.
fn series(
    snap: &dyn KeyNames,
    buckets: &BTreeMap<i64, BucketTally>,
    interval: Interval,
) -> Vec<Bucket> {
    let (Some(first), Some(last)) = (buckets.values().next(), buckets.values().next_back()) else {
        return Vec::new();
    };
    let last_ms = last.start.timestamp().as_millisecond();
    let mut out = Vec::new();
    let mut at = first.start.clone();
    while at.timestamp().as_millisecond() <= last_ms && out.len() < MAX_BUCKETS {
        let Some(next) = next_bucket(&at, interval) else {
            break;
        };
        let from_ms = at.timestamp().as_millisecond();
        let mut bucket = Bucket {
            label: bucket_label(&at, interval),
            from_ms,
            to_ms: next.timestamp().as_millisecond(),
            total: 0,
            outbound: 0,
            by_status: BTreeMap::new(),
            by_code: BTreeMap::new(),
            rate_429: 0.0,
            rate_5xx: 0.0,
            failure_rate: 0.0,
        };
        if let Some(b) = buckets.get(&from_ms) {
            let status = |s: Key| b.status.get(&s).copied().unwrap_or(0);
            let mut with_code = 0;
            let (mut n429, mut n5xx) = (0, 0);
            for (key, n) in &b.code {
                let Some(code) = key.as_code() else {
                    continue;
                };
                with_code += n;
                if code == 429 {
                    n429 += n;
                }
                if (500..600).contains(&code) {
                    n5xx += n;
                }
                bucket
                    .by_code
                    .insert(filter_value(&snap.value_of(Field::ResponseCode, *key)), *n);
            }
            if let Some(n) = b.code.get(&Key::NONE) {
                bucket.by_code.insert("none".into(), *n);
            }
            for (key, n) in &b.status {
                if let Some(s) = key.as_status() {
                    bucket.by_status.insert(s.as_str(), *n);
                }
            }
            bucket.total = b.total;
            bucket.outbound = b.outbound;
            bucket.rate_429 = ratio(n429, with_code);
            bucket.rate_5xx = ratio(n5xx, with_code);
            bucket.failure_rate = ratio(
                status(FAILED) + status(REJECTED) + status(NO_RESPONSE),
                b.outbound,
            );
        }
        out.push(bucket);
        at = next;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufReader;
    use ticks_ingest::generate::{Generator, GeneratorOptions};

    #[test]
    fn a_report_scanned_on_two_threads_is_the_one_scanned_on_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(ticks_engine::Config::new(dir.path())).expect("open");
        let mut data = Vec::new();
        for line in Generator::new(GeneratorOptions::new(1500)) {
            data.extend_from_slice(&line);
            data.push(b'\n');
        }
        ticks_ingest::import(
            &store,
            BufReader::new(&data[..]),
            &ticks_ingest::ImportOptions::default(),
        )
        .expect("import");
        let snap = store.snapshot();
        let tz = TimeZone::get("Asia/Kolkata").expect("zone");
        for options in [
            ReportOptions {
                plan: Plan::Scan,
                ..ReportOptions::default()
            },
            ReportOptions {
                sections: Sections {
                    funnels: true,
                    ..Sections::NONE
                },
                funnel_by: Field::Country,
                ..ReportOptions::default()
            },
        ] {
            let report = |split_from| {
                let mut t = scan_on_two_threads(&snap, snap.live(), &tz, &options, split_from);
                t.total = snap.live().len();
                serde_json::to_value(assemble(&snap, t, &options)).expect("json")
            };
            let (one, two) = (report(u64::MAX), report(0));
            assert!(
                one["funnels"].as_array().is_some_and(|f| f.len() >= 5),
                "{one}"
            );
            assert_eq!(one, two);
        }
        drop(snap);
        store.close().expect("close");
    }
}
