//! Template health (`sections=templates`): per template and language, what
//! its messages did (sent, delivered, read, failed by error, replied to
//! with a quote or by inference, clicked by button or link), the opt-outs
//! that followed it (a marketing stop whose person's last marketing message
//! before it was one of the template's), and its status, category and
//! quality changes from the template webhooks, on one time axis with a
//! series of the same counts.
//!
//! One scan of the matching entries' key columns; a reply or click counts
//! for the template of the message it answers (the engine gives the reply
//! that message's template and language).

use crate::buckets::{bucket_label, next_bucket, Bucketer, Interval};
use crate::scan::{drill, filter_value, Drill, Map, ScanColumn, SCAN_CHUNK};
use jiff::tz::TimeZone;
use jiff::Zoned;
use roaring::RoaringBitmap;
use serde::Serialize;
use std::collections::BTreeMap;
use ticks_engine::{Attribution, Direction, Field, FieldValue, Key, Reached, Snapshot, Status};

/// The webhook fields of template events.
pub(crate) const TEMPLATE_EVENTS: [&str; 3] = [
    "message_template_status_update",
    "template_category_update",
    "message_template_quality_update",
];

/// One template in one language.
#[derive(Clone, Debug, Serialize)]
pub struct TemplateHealth {
    /// The template's name.
    pub template: String,
    /// Its language (`null`: sends that named none).
    pub language: Option<String>,
    /// Outbound messages.
    pub sent: u64,
    /// Of them, delivered (or read).
    pub delivered: u64,
    /// Read.
    pub read: u64,
    /// Failed, rejected or unanswered.
    pub failed: u64,
    /// Replies that quote one of its messages.
    pub replies_quoted: u64,
    /// Replies attributed to one of its messages without a quote.
    pub replies_inferred: u64,
    /// Quick-reply and interactive button clicks on its messages.
    pub button_clicks: u64,
    /// Link clicks on its messages (Marketing Messages API).
    pub link_clicks: u64,
    /// Marketing stops whose person's last marketing message before the
    /// stop was one of its messages.
    pub opt_outs: u64,
    /// `failed` by error code, most frequent first (at most 5).
    pub failure_reasons: Vec<Reason>,
    /// Status, category and quality changes, oldest first.
    pub events: Vec<TemplateChange>,
    /// The counts per bucket of the report's interval, oldest first.
    pub series: Vec<HealthBucket>,
    /// The filter selecting its messages.
    pub drill: Drill,
}

/// One error code of a template's failures.
#[derive(Clone, Debug, Serialize)]
pub struct Reason {
    /// The Meta error code (`null`: none given).
    pub error_code: FieldValue,
    /// How many.
    pub count: u64,
}

/// A template webhook: a status, category or quality change.
#[derive(Clone, Debug, Serialize)]
pub struct TemplateChange {
    /// UTC milliseconds.
    pub at_ms: i64,
    /// The webhook field (`message_template_status_update`...).
    pub field: String,
    /// The value before (a category, a quality score), when given.
    pub from: Option<String>,
    /// The value after (`APPROVED`, `PAUSED`, `RED`, `MARKETING`...).
    pub to: Option<String>,
    /// The reason given.
    pub reason: Option<String>,
    /// The event's entry id.
    pub id: u32,
}

/// A template's counts in one bucket.
#[derive(Clone, Debug, Default, Serialize)]
pub struct HealthBucket {
    /// Local start, `YYYY-MM-DD` or `YYYY-MM-DDTHH:00`.
    pub label: String,
    /// Start, UTC milliseconds.
    pub from_ms: i64,
    /// End, UTC milliseconds (exclusive).
    pub to_ms: i64,
    /// Sent in it.
    pub sent: u64,
    /// Of those, delivered.
    pub delivered: u64,
    /// Of those, read.
    pub read: u64,
    /// Of those, failed.
    pub failed: u64,
    /// Replies and clicks received in it.
    pub replies: u64,
    /// Opt-outs in it.
    pub opt_outs: u64,
}

#[derive(Default, Clone)]
struct Counts {
    sent: u64,
    delivered: u64,
    read: u64,
    failed: u64,
    quoted: u64,
    inferred: u64,
    buttons: u64,
    links: u64,
    opt_outs: u64,
    reasons: Map<Key, u64>,
    /// Bucket start -> counts.
    buckets: BTreeMap<i64, (Zoned, HealthBucket)>,
}

/// The bucket starting at `start`, made empty if new.
fn bucket(buckets: &mut BTreeMap<i64, (Zoned, HealthBucket)>, start: Zoned) -> &mut HealthBucket {
    let ms = start.timestamp().as_millisecond();
    &mut buckets
        .entry(ms)
        .or_insert_with(|| (start, HealthBucket::default()))
        .1
}

/// The template health of the matching entries, the `top` templates (by
/// messages sent) listed.
pub(crate) fn template_health(
    snap: &Snapshot<'_>,
    matches: &RoaringBitmap,
    tz: &TimeZone,
    interval: Interval,
    top: usize,
) -> Vec<TemplateHealth> {
    let column = |field| ScanColumn::new(snap.column(field));
    let mut template = column(Field::Template);
    let mut language = column(Field::Language);
    let mut direction = column(Field::Direction);
    let mut status = column(Field::Status);
    let mut reached = column(Field::Reached);
    let mut error = column(Field::ErrorCode);
    let mut button = column(Field::Button);
    let mut attribution = column(Field::Attribution);
    let mut content = column(Field::ContentType);
    let mut hour = column(Field::Hour);
    let outbound = Key::direction(Direction::Outbound);
    let inbound = Key::direction(Direction::Inbound);
    let refused = [
        Key::status(Status::Failed),
        Key::status(Status::Rejected),
        Key::status(Status::NoResponse),
    ];
    let link_click = snap.any_of(
        Field::ContentType,
        &[ticks_engine::Value::Text("link_click".into())],
    );
    let mut bucketer = Bucketer::new(tz, interval);
    let mut by_template: Map<(u32, u32), Counts> = Map::default();
    // Only entries with a template: sends of one, and replies to them.
    let with_template = match snap.bitmap(Field::Template, Key::NONE) {
        Some(none) => matches - none,
        None => matches.clone(),
    };
    let mut ids = Vec::with_capacity(SCAN_CHUNK);
    let mut rest = with_template.iter().peekable();
    while rest.peek().is_some() {
        ids.clear();
        ids.extend(rest.by_ref().take(SCAN_CHUNK));
        for c in [
            &mut template,
            &mut language,
            &mut direction,
            &mut status,
            &mut reached,
            &mut error,
            &mut button,
            &mut attribution,
            &mut content,
            &mut hour,
        ] {
            c.load(&ids);
        }
        for (i, id) in ids.iter().enumerate() {
            let d = direction.key_at(i);
            if d != outbound && d != inbound {
                continue;
            }
            let c = by_template
                .entry((template.codes[i], language.codes[i]))
                .or_default();
            let start = match bucketer.of_hour(hour.key_at(i)) {
                Some(z) => Some(z),
                None => bucketer.of_ms(snap.recorded_ms(*id)),
            };
            let b = start.map(|z| bucket(&mut c.buckets, z));
            if d == outbound {
                c.sent += 1;
                let r = reached.key_at(i).as_reached();
                let delivered = r.is_some_and(|r| r >= Reached::Delivered);
                let read = r.is_some_and(|r| r >= Reached::Read);
                let failed = refused.contains(&status.key_at(i));
                c.delivered += u64::from(delivered);
                c.read += u64::from(read);
                if failed {
                    c.failed += 1;
                    *c.reasons.entry(error.key_at(i)).or_default() += 1;
                }
                if let Some(b) = b {
                    b.sent += 1;
                    b.delivered += u64::from(delivered);
                    b.read += u64::from(read);
                    b.failed += u64::from(failed);
                }
            } else {
                if attribution.key_at(i).is_none() {
                    continue;
                }
                if link_click.contains(*id) {
                    c.links += 1;
                } else if !button.key_at(i).is_none() {
                    c.buttons += 1;
                } else if attribution.key_at(i) == Key::attribution(Attribution::Quoted) {
                    c.quoted += 1;
                } else {
                    c.inferred += 1;
                }
                if let Some(b) = b {
                    b.replies += 1;
                }
            }
        }
    }
    // Opt-outs: each stop from the earliest match's time on whose cause is
    // a match (the earliest by time, not the first the store made: a send
    // logged late is no later for it).
    let span = (earliest_ms(snap, matches), i64::MAX);
    let template_col = snap.column(Field::Template);
    let language_col = snap.column(Field::Language);
    for (stop, cause) in snap.opt_out_causes(span.0, span.1) {
        if !with_template.contains(cause.0) {
            continue;
        }
        let key = (template_col.code(cause.0), language_col.code(cause.0));
        let c = by_template.entry(key).or_default();
        c.opt_outs += 1;
        if let Some(z) = bucketer.of_ms(snap.recorded_ms(stop.0)) {
            bucket(&mut c.buckets, z).opt_outs += 1;
        }
    }
    let events = template_events(snap);
    let listed = by_template
        .into_iter()
        .filter_map(|((t, l), c)| {
            let FieldValue::Text(name) = snap.value_of(Field::Template, template.keys[t as usize])
            else {
                return None;
            };
            let lang = match snap.value_of(Field::Language, language.keys[l as usize]) {
                FieldValue::Text(l) => Some(l),
                _ => None,
            };
            let reasons = c
                .reasons
                .iter()
                .map(|(k, n)| (snap.value_of(Field::ErrorCode, *k), *n))
                .collect();
            Some(((name, lang), c, reasons))
        })
        .collect();
    assemble(listed, &events, interval, top)
}

/// The time of the earliest of `matches` (`i64::MAX` for none): the first
/// hour of the hour index that holds a match, then the earliest match in
/// it.
fn earliest_ms(snap: &Snapshot<'_>, matches: &RoaringBitmap) -> i64 {
    snap.values(Field::Hour)
        .filter(|(hour, _)| !hour.is_none())
        .find(|(_, ids)| !ids.is_disjoint(matches))
        .and_then(|(_, ids)| (ids & matches).iter().map(|id| snap.recorded_ms(id)).min())
        .unwrap_or(i64::MAX)
}

/// A template's name and language.
type TemplateName = (String, Option<String>);
/// Failures by error code (`None`: without one).
type Reasons = Vec<(FieldValue, u64)>;
/// The same while counted, by the code's text.
type ReasonsByText = Map<String, (FieldValue, u64)>;

/// The health of each template from its counts (failures by error code
/// apart), the `top` (by messages sent, then by name and language)
/// listed, each with its events.
fn assemble(
    mut listed: Vec<(TemplateName, Counts, Reasons)>,
    events: &[(String, Option<String>, TemplateChange)],
    interval: Interval,
    top: usize,
) -> Vec<TemplateHealth> {
    listed.retain(|(_, c, _)| c.sent > 0 || c.opt_outs > 0);
    listed.sort_by(|a, b| b.1.sent.cmp(&a.1.sent).then_with(|| a.0.cmp(&b.0)));
    listed.truncate(top);
    listed
        .into_iter()
        .map(|((name, lang), c, mut reasons)| {
            let mut reasons: Vec<Reason> = reasons
                .drain(..)
                .map(|(error_code, count)| Reason { error_code, count })
                .collect();
            reasons.sort_by(|a, b| {
                b.count
                    .cmp(&a.count)
                    .then_with(|| filter_value(&a.error_code).cmp(&filter_value(&b.error_code)))
            });
            reasons.truncate(5);
            let lang_value = lang.clone().unwrap_or_else(|| "none".into());
            TemplateHealth {
                drill: drill(&[
                    ("direction", "outbound"),
                    ("template", &name),
                    ("template_language", &lang_value),
                ]),
                events: events
                    .iter()
                    .filter(|(n, l, _)| *n == name && *l == lang)
                    .map(|(_, _, e)| e.clone())
                    .collect(),
                template: name,
                language: lang,
                sent: c.sent,
                delivered: c.delivered,
                read: c.read,
                failed: c.failed,
                replies_quoted: c.quoted,
                replies_inferred: c.inferred,
                button_clicks: c.buttons,
                link_clicks: c.links,
                opt_outs: c.opt_outs,
                failure_reasons: reasons,
                series: series(c.buckets, interval),
            }
        })
        .collect()
}

/// What a reply or click to a template's message counts as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Not an answer: an outbound message, or an inbound one answering
    /// nothing.
    None,
    /// A link click.
    Link,
    /// A button click.
    Button,
    /// A reply that quotes the message.
    Quoted,
    /// A reply attributed to the message by inference.
    Inferred,
}

/// Matching entries with a template, alike in everything template health
/// reads, as a backend that counts by groups gives them (see
/// [`health_from_rows`]).
#[derive(Clone, Debug)]
pub(crate) struct HealthRow {
    /// The template's name.
    pub(crate) template: String,
    /// Its language.
    pub(crate) language: Option<String>,
    /// Sent (outbound), else inbound.
    pub(crate) outbound: bool,
    /// They reached a device.
    pub(crate) delivered: bool,
    /// They were read.
    pub(crate) read: bool,
    /// They failed, were rejected or got no answer.
    pub(crate) failed: bool,
    /// Their error code.
    pub(crate) error_code: FieldValue,
    /// What an inbound one counts as.
    pub(crate) answer: Answer,
    /// The UTC hour of their time (its first millisecond).
    pub(crate) hour_ms: i64,
    /// The minute of their time, when their hour lies in two buckets of
    /// the zone (else the hour's start).
    pub(crate) at_ms: i64,
    /// How many.
    pub(crate) count: u64,
}

/// Template health from groups of the matching entries with a template,
/// the opt-outs caused by them (the cause's template and language, the
/// stop's time) and every template event.
pub(crate) fn health_from_rows(
    rows: Vec<HealthRow>,
    opt_outs: Vec<(String, Option<String>, i64)>,
    events: Vec<(String, Option<String>, TemplateChange)>,
    tz: &TimeZone,
    interval: Interval,
    top: usize,
) -> Vec<TemplateHealth> {
    let bucketer = Bucketer::new(tz, interval);
    let mut by_template: BTreeMap<TemplateName, (Counts, ReasonsByText)> = BTreeMap::new();
    for row in rows {
        let (c, reasons) = by_template.entry((row.template, row.language)).or_default();
        let n = row.count;
        let start = if row.at_ms == row.hour_ms {
            bucketer.of_whole_hour(row.hour_ms)
        } else {
            None
        }
        .or_else(|| bucketer.of_ms(row.at_ms));
        // As the store's scan: the bucket is made before an answer to
        // nothing is passed over.
        let b = start.map(|z| bucket(&mut c.buckets, z));
        if !row.outbound && row.answer == Answer::None {
            continue;
        }
        if row.outbound {
            let count = |yes: bool| if yes { n } else { 0 };
            if let Some(b) = b {
                b.sent += n;
                b.delivered += count(row.delivered);
                b.read += count(row.read);
                b.failed += count(row.failed);
            }
            c.sent += n;
            c.delivered += count(row.delivered);
            c.read += count(row.read);
            if row.failed {
                c.failed += n;
                reasons
                    .entry(filter_value(&row.error_code))
                    .or_insert_with(|| (row.error_code.clone(), 0))
                    .1 += n;
            }
        } else {
            if let Some(b) = b {
                b.replies += n;
            }
            match row.answer {
                Answer::Link => c.links += n,
                Answer::Button => c.buttons += n,
                Answer::Quoted => c.quoted += n,
                Answer::Inferred => c.inferred += n,
                Answer::None => {}
            }
        }
    }
    for (template, language, stop_ms) in opt_outs {
        let (c, _) = by_template.entry((template, language)).or_default();
        c.opt_outs += 1;
        if let Some(z) = bucketer.of_ms(stop_ms) {
            bucket(&mut c.buckets, z).opt_outs += 1;
        }
    }
    let listed = by_template
        .into_iter()
        .map(|(key, (c, reasons))| (key, c, reasons.into_values().collect()))
        .collect();
    assemble(listed, &events, interval, top)
}

/// A template event entry as a change of its template (none without
/// one).
pub(crate) fn template_change(
    e: ticks_engine::Entry,
) -> Option<(String, Option<String>, TemplateChange)> {
    Some((
        e.template?,
        e.template_language,
        TemplateChange {
            at_ms: e.recorded_ms,
            field: e.category.unwrap_or_default(),
            from: e.event_from,
            to: e.event_to,
            reason: e.event_reason,
            id: e.id.0,
        },
    ))
}

/// Every template event with its template and language, oldest first.
fn template_events(snap: &Snapshot<'_>) -> Vec<(String, Option<String>, TemplateChange)> {
    let values: Vec<ticks_engine::Value> = TEMPLATE_EVENTS
        .iter()
        .map(|f| ticks_engine::Value::Text((*f).into()))
        .collect();
    let mut ids = snap.any_of(Field::Category, &values).into_owned();
    if let Some(events) = snap.bitmap(Field::Direction, Key::direction(Direction::Event)) {
        ids &= events;
    }
    let ids: Vec<u32> = ids.iter().collect();
    let mut out: Vec<(String, Option<String>, TemplateChange)> = snap
        .entries(&ids)
        .into_iter()
        .filter_map(template_change)
        .collect();
    out.sort_by_key(|(_, _, e)| (e.at_ms, e.id));
    out
}

/// Buckets from the first to the last, the empty ones included.
fn series(buckets: BTreeMap<i64, (Zoned, HealthBucket)>, interval: Interval) -> Vec<HealthBucket> {
    let mut out: Vec<HealthBucket> = Vec::with_capacity(buckets.len());
    let mut at: Option<Zoned> = None;
    for (_, (start, mut b)) in buckets {
        while let Some(z) = at.take() {
            if z.timestamp() >= start.timestamp() {
                break;
            }
            let next = next_bucket(&z, interval);
            out.push(HealthBucket {
                label: bucket_label(&z, interval),
                from_ms: z.timestamp().as_millisecond(),
                to_ms: next.as_ref().map_or(0, |n| n.timestamp().as_millisecond()),
                ..HealthBucket::default()
            });
            at = next;
        }
        let next = next_bucket(&start, interval);
        b.label = bucket_label(&start, interval);
        b.from_ms = start.timestamp().as_millisecond();
        b.to_ms = next
            .as_ref()
            .map_or(b.from_ms, |n| n.timestamp().as_millisecond());
        out.push(b);
        at = next;
    }
    out
}
