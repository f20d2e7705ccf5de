//! The consolidated report: breakdowns, delivery funnels, failure reasons,
//! time series, inbound engagement and conversations, for any filter of the
//! log table, computed from bitmap intersections only (no entry is read,
//! except the edge hours of a time zone with a non-whole-hour offset).
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

use crate::error::QueryError;
use crate::exec::{matches_in, prefetch, HOUR_MS};
use crate::params::LogQuery;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, Zoned};
use roaring::RoaringBitmap;
use serde::Serialize;
use std::collections::BTreeMap;
use ticks_engine::{Direction, Field, FieldValue, Snapshot, Status, Store};
use ticks_ingest::{http_code_info, meta_error_info};

/// Parameters of `/v1/report` and `ticks report` that are not filters.
pub const REPORT_PARAMS: [&str; 3] = ["interval", "funnel_by", "top"];

/// Most buckets a series may have (a year of days, or 60 days of hours).
const MAX_BUCKETS: usize = 1500;

/// Width of a time-series bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Interval {
    /// Local hours of the query's time zone.
    Hour,
    /// Local calendar days of the query's time zone.
    Day,
}

/// How the report is laid out (not which entries it covers: that is the query).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportOptions {
    /// Bucket width of the series.
    pub interval: Interval,
    /// The field whose values get a funnel each (name, template or category).
    pub funnel_by: Field,
    /// How many funnels, failure reasons and groups per breakdown to list.
    pub top: usize,
}

impl Default for ReportOptions {
    fn default() -> ReportOptions {
        ReportOptions {
            interval: Interval::Day,
            funnel_by: Field::Name,
            top: 20,
        }
    }
}

impl ReportOptions {
    /// Reads `interval` (day, hour), `funnel_by` (name, template, category,
    /// user, subaccount) and `top` (1..=200); other parameters are ignored.
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
                    ]
                    .into_iter()
                    .find(|f| f.name() == value)
                    .ok_or_else(|| {
                        invalid(
                            key,
                            format!("{value:?}: use name, template, category, user or subaccount"),
                        )
                    })?
                }
                "top" => {
                    o.top = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=200).contains(n))
                        .ok_or_else(|| invalid(key, format!("{value:?}: use 1 to 200")))?
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

/// Query parameters that select exactly the entries behind a figure.
pub type Drill = Vec<(String, String)>;

fn drill(pairs: &[(&str, &str)]) -> Drill {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The filter value that selects `key` of `field` (`none` for no value).
fn filter_value(key: &FieldValue) -> String {
    match key {
        FieldValue::None => "none".into(),
        FieldValue::Int(i) => i.to_string(),
        FieldValue::Text(t) => t.clone(),
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

/// Fields with a breakdown in `counts`.
const BREAKDOWNS: [Field; 13] = [
    Field::Status,
    Field::ResponseCode,
    Field::ErrorCode,
    Field::Category,
    Field::Name,
    Field::Template,
    Field::RecipientType,
    Field::ContentType,
    Field::Direction,
    Field::Subaccount,
    Field::User,
    Field::ConversationType,
    Field::PricingCategory,
];

/// Computes the report of the entries matching `q` (its sort and paging are ignored).
pub fn report(store: &Store, q: &LogQuery, options: &ReportOptions) -> Result<Report, QueryError> {
    let pre = prefetch(store, q)?;
    let snap = store.snapshot();
    let matches = matches_in(&snap, q, &pre);
    Ok(report_in(&snap, &matches, &q.tz, options))
}

fn report_in(
    snap: &Snapshot<'_>,
    matches: &RoaringBitmap,
    tz: &TimeZone,
    options: &ReportOptions,
) -> Report {
    let bits = Bits::new(snap);
    let outbound = matches & &bits.outbound;
    let counts = BREAKDOWNS
        .iter()
        .map(|&field| {
            let mut groups = counts_in(snap, matches, field, &[]);
            let listed: u64 = groups.iter().take(options.top).map(|g| g.count).sum();
            let all: u64 = groups.iter().map(|g| g.count).sum();
            groups.truncate(options.top);
            Breakdown {
                field: field.name(),
                groups,
                other: all - listed,
            }
        })
        .collect();
    let by = options.funnel_by;
    let mut funnels: Vec<Funnel> = snap
        .values(by)
        .filter_map(|(key, bm)| {
            let part = &outbound & bm;
            (!part.is_empty()).then(|| {
                let key = snap.value_of(by, key);
                let value = filter_value(&key);
                funnel(snap, &bits, &part, key, &[(by.name(), &value)])
            })
        })
        .collect();
    funnels.sort_by(|a, b| b.steps[0].count.cmp(&a.steps[0].count));
    funnels.truncate(options.top);
    let failing = &outbound & &bits.failing;
    let mut failure_reasons = counts_in(
        snap,
        &failing,
        Field::ErrorCode,
        &[("direction", "outbound"), ("status", "failed,rejected")],
    );
    failure_reasons.truncate(options.top);
    Report {
        total: matches.len(),
        counts,
        funnel: funnel(snap, &bits, &outbound, FieldValue::None, &[]),
        funnel_by: by.name(),
        funnels,
        failure_reasons,
        interval: options.interval,
        series: series(snap, &bits, matches, tz, options.interval),
        inbound: inbound(snap, &bits, matches, options),
        conversations: Conversations {
            by_type: known(counts_in(snap, matches, Field::ConversationType, &[])),
            by_pricing_category: known(counts_in(snap, matches, Field::PricingCategory, &[])),
        },
    }
}

/// Bitmaps the report combines, gathered once.
struct Bits {
    outbound: RoaringBitmap,
    inbound: RoaringBitmap,
    /// Rejected or no response: the API never took the message.
    refused: RoaringBitmap,
    /// Failed, rejected or no response.
    failing: RoaringBitmap,
    failed: RoaringBitmap,
    /// Reached at least sent, delivered, read.
    reached: [RoaringBitmap; 3],
    /// Replied to or clicked.
    engaged: RoaringBitmap,
    /// Has a button click.
    clicked: RoaringBitmap,
    /// Has a response code.
    with_code: RoaringBitmap,
    code_429: RoaringBitmap,
    code_5xx: RoaringBitmap,
}

impl Bits {
    fn new(snap: &Snapshot<'_>) -> Bits {
        let get = |field: Field, value: FieldValue| {
            snap.bitmap(field, &value).cloned().unwrap_or_default()
        };
        let text = |s: &str| FieldValue::Text(s.to_string());
        let status = |s: Status| get(Field::Status, text(s.as_str()));
        let refused = status(Status::Rejected) | status(Status::NoResponse);
        let failed = status(Status::Failed);
        let reached_exactly = ["sent", "delivered", "read"].map(|s| get(Field::Reached, text(s)));
        let reached = [
            &reached_exactly[0] | &reached_exactly[1] | &reached_exactly[2],
            &reached_exactly[1] | &reached_exactly[2],
            reached_exactly[2].clone(),
        ];
        let mut engaged = RoaringBitmap::new();
        for (key, bm) in snap.values(Field::Engagement) {
            if snap.value_of(Field::Engagement, key) != FieldValue::None {
                engaged |= bm;
            }
        }
        let mut with_code = RoaringBitmap::new();
        let mut code_5xx = RoaringBitmap::new();
        for (key, bm) in snap.values(Field::ResponseCode) {
            if snap.value_of(Field::ResponseCode, key) != FieldValue::None {
                with_code |= bm;
                if (500..600).contains(&key) {
                    code_5xx |= bm;
                }
            }
        }
        let clicked = snap.live() - get(Field::Button, FieldValue::None);
        Bits {
            outbound: get(Field::Direction, text(Direction::Outbound.as_str())),
            inbound: get(Field::Direction, text(Direction::Inbound.as_str())),
            failing: &refused | &failed,
            refused,
            failed,
            reached,
            engaged,
            clicked,
            with_code,
            code_429: get(Field::ResponseCode, FieldValue::Int(429)),
            code_5xx,
        }
    }
}

/// Counts of `matches` by `field`, largest first, each drilled by `base` plus its value.
fn counts_in(
    snap: &Snapshot<'_>,
    matches: &RoaringBitmap,
    field: Field,
    base: &[(&str, &str)],
) -> Vec<Count> {
    let mut groups: Vec<Count> = snap
        .values(field)
        .filter_map(|(key, bm)| {
            let count = matches.intersection_len(bm);
            (count > 0).then(|| {
                let key = snap.value_of(field, key);
                let (meaning, action) = explain(field, &key);
                let value = filter_value(&key);
                let mut d = drill(base);
                d.push((field.name().to_string(), value));
                Count {
                    key,
                    count,
                    meaning,
                    action,
                    drill: d,
                }
            })
        })
        .collect();
    groups.sort_by_key(|g| std::cmp::Reverse(g.count));
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

/// A funnel step: its name, its count, and the filter that adds it.
type StepSpec<'a> = (&'static str, u64, &'a [(&'a str, &'a str)]);

fn funnel(
    snap: &Snapshot<'_>,
    bits: &Bits,
    outbound: &RoaringBitmap,
    key: FieldValue,
    base: &[(&str, &str)],
) -> Funnel {
    let mut base = base.to_vec();
    base.push(("direction", "outbound"));
    let attempted = outbound.len();
    let accepted = attempted - outbound.intersection_len(&bits.refused);
    let steps_raw: [StepSpec; 6] = [
        ("attempted", attempted, &[]),
        ("accepted", accepted, &[("-status", "rejected,no_response")]),
        (
            "sent",
            outbound.intersection_len(&bits.reached[0]),
            &[("reached", "sent,delivered,read")],
        ),
        (
            "delivered",
            outbound.intersection_len(&bits.reached[1]),
            &[("reached", "delivered,read")],
        ),
        (
            "read",
            outbound.intersection_len(&bits.reached[2]),
            &[("reached", "read")],
        ),
        (
            "engaged",
            outbound.intersection_len(&bits.engaged),
            &[("engagement", "replied,clicked,replied_and_clicked")],
        ),
    ];
    let mut previous = attempted;
    let steps = steps_raw
        .iter()
        .map(|(step, count, extra)| {
            let mut d = drill(&base);
            d.extend(drill(extra));
            let s = Step {
                step,
                count: *count,
                of_attempted: ratio(*count, attempted),
                of_previous: if *step == "attempted" {
                    1.0
                } else {
                    ratio(*count, previous)
                },
                drill: d,
            };
            previous = *count;
            s
        })
        .collect();
    let failing = outbound & &bits.failing;
    let mut reasons_base = base.clone();
    reasons_base.push(("status", "failed,rejected"));
    let mut failure_reasons = counts_in(snap, &failing, Field::ErrorCode, &reasons_base);
    failure_reasons.truncate(5);
    Funnel {
        key,
        steps,
        failed: outbound.intersection_len(&bits.failed),
        rejected: outbound.intersection_len(&bits.refused),
        failure_reasons,
        drill: drill(&base),
    }
}

fn inbound(
    snap: &Snapshot<'_>,
    bits: &Bits,
    matches: &RoaringBitmap,
    options: &ReportOptions,
) -> Inbound {
    let inbound = matches & &bits.inbound;
    let clicks = &inbound & &bits.clicked;
    let by = options.funnel_by;
    let base = [("direction", "inbound")];
    let mut by_campaign: Vec<CampaignReplies> = snap
        .values(by)
        .filter_map(|(key, bm)| {
            let all = inbound.intersection_len(bm);
            (all > 0).then(|| {
                let key = snap.value_of(by, key);
                let value = filter_value(&key);
                let mut d = drill(&base);
                d.push((by.name().to_string(), value));
                let clicks = clicks.intersection_len(bm);
                CampaignReplies {
                    key,
                    replies: all - clicks,
                    clicks,
                    drill: d,
                }
            })
        })
        .collect();
    by_campaign.sort_by_key(|c| std::cmp::Reverse(c.replies + c.clicks));
    by_campaign.truncate(options.top);
    // Linked replies carry the campaign of the message they answer.
    let unlinked = snap.bitmap(by, &FieldValue::None).map_or(0, |bm| {
        inbound.intersection_len(bm) - clicks.intersection_len(bm)
    });
    let mut by_button = known(counts_in(snap, &inbound, Field::Button, &base));
    by_button.truncate(options.top);
    let mut by_content_type = counts_in(snap, &inbound, Field::ContentType, &base);
    by_content_type.truncate(options.top);
    Inbound {
        total: inbound.len(),
        replies: inbound.len() - clicks.len() - unlinked,
        clicks: clicks.len(),
        by_content_type,
        by_campaign,
        by_button,
    }
}

/// The local bucket containing `ms`: its label and start.
fn bucket_of(ms: i64, tz: &TimeZone, interval: Interval) -> Option<Zoned> {
    let z = Timestamp::from_millisecond(ms).ok()?.to_zoned(tz.clone());
    match interval {
        Interval::Day => z.start_of_day().ok(),
        Interval::Hour => {
            let dt = z.datetime();
            let into_hour_ms = (i64::from(dt.minute()) * 60 + i64::from(dt.second())) * 1000
                + i64::from(dt.subsec_nanosecond()) / 1_000_000;
            Some(
                Timestamp::from_millisecond(ms - into_hour_ms)
                    .ok()?
                    .to_zoned(tz.clone()),
            )
        }
    }
}

fn bucket_label(z: &Zoned, interval: Interval) -> String {
    let dt = z.datetime();
    match interval {
        Interval::Day => format!("{:04}-{:02}-{:02}", dt.year(), dt.month(), dt.day()),
        Interval::Hour => format!(
            "{:04}-{:02}-{:02}T{:02}:00",
            dt.year(),
            dt.month(),
            dt.day(),
            dt.hour()
        ),
    }
}

fn next_bucket(z: &Zoned, interval: Interval) -> Option<Zoned> {
    match interval {
        Interval::Day => z.checked_add(1.day()).ok()?.start_of_day().ok(),
        Interval::Hour => z.checked_add(1.hour()).ok(),
    }
}

fn series(
    snap: &Snapshot<'_>,
    bits: &Bits,
    matches: &RoaringBitmap,
    tz: &TimeZone,
    interval: Interval,
) -> Vec<Bucket> {
    // Gather each local bucket's entries from the UTC hour bitmaps: an hour
    // lies in one local bucket unless the zone's offset is not whole hours.
    let mut buckets: BTreeMap<i64, (Zoned, RoaringBitmap)> = BTreeMap::new();
    for (hour, bm) in snap.values(Field::Hour) {
        if matches.intersection_len(bm) == 0 {
            continue;
        }
        let start = hour * HOUR_MS;
        let whole = Timestamp::from_millisecond(start)
            .map(|ts| tz.to_offset(ts).seconds() % 3600 == 0)
            .unwrap_or(false);
        if whole {
            if let Some(z) = bucket_of(start, tz, interval) {
                let slot = buckets
                    .entry(z.timestamp().as_millisecond())
                    .or_insert_with(|| (z, RoaringBitmap::new()));
                slot.1 |= matches & bm;
            }
        } else {
            for id in matches & bm {
                if let Some(z) = bucket_of(snap.recorded_ms(id), tz, interval) {
                    buckets
                        .entry(z.timestamp().as_millisecond())
                        .or_insert_with(|| (z, RoaringBitmap::new()))
                        .1
                        .insert(id);
                }
            }
        }
    }
    let statuses: Vec<(&'static str, RoaringBitmap)> = snap
        .values(Field::Status)
        .map(|(k, bm)| {
            let name = match snap.value_of(Field::Status, k) {
                FieldValue::Text(t) => Status::parse(&t).map_or("unknown", |s| s.as_str()),
                _ => "unknown",
            };
            (name, bm.clone())
        })
        .collect();
    let codes: Vec<(String, &RoaringBitmap)> = snap
        .values(Field::ResponseCode)
        .map(|(k, bm)| (filter_value(&snap.value_of(Field::ResponseCode, k)), bm))
        .collect();
    let (Some(first), Some(last)) = (
        buckets.values().next().map(|(z, _)| z.clone()),
        buckets.values().next_back().map(|(z, _)| z.clone()),
    ) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut at = first;
    let empty = RoaringBitmap::new();
    while at.timestamp() <= last.timestamp() && out.len() < MAX_BUCKETS {
        let Some(next) = next_bucket(&at, interval) else {
            break;
        };
        let from_ms = at.timestamp().as_millisecond();
        let entries = buckets.get(&from_ms).map_or(&empty, |(_, bm)| bm);
        let mut by_status = BTreeMap::new();
        let mut by_code = BTreeMap::new();
        if !entries.is_empty() {
            for (name, bm) in &statuses {
                let n = entries.intersection_len(bm);
                if n > 0 {
                    by_status.insert(*name, n);
                }
            }
            for (code, bm) in &codes {
                let n = entries.intersection_len(bm);
                if n > 0 {
                    by_code.insert(code.clone(), n);
                }
            }
        }
        let outbound = entries.intersection_len(&bits.outbound);
        let with_code = entries.intersection_len(&bits.with_code);
        out.push(Bucket {
            label: bucket_label(&at, interval),
            from_ms,
            to_ms: next.timestamp().as_millisecond(),
            total: entries.len(),
            outbound,
            rate_429: ratio(entries.intersection_len(&bits.code_429), with_code),
            rate_5xx: ratio(entries.intersection_len(&bits.code_5xx), with_code),
            failure_rate: ratio(entries.intersection_len(&bits.failing), outbound),
            by_status,
            by_code,
        });
        at = next;
    }
    out
}
