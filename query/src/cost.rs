//! What the matching traffic cost under a rate card: per group (campaign,
//! template, category, pricing type, country, user, subaccount...), per
//! day or hour in the query's zone, free against billable, and per
//! delivered, read and replied message.
//!
//! A billable message (the `billable` field: `pricing.type` regular, or
//! `billable: true` on older traffic) is priced by its person's country
//! (the `country` field) and its `pricing.category`, at its send time; a
//! tier is the message's place among the month's billable messages of
//! that market and category in the whole store (UTC month, in arrival
//! order), whatever the filter. Billable messages the card has no rate for
//! are counted as `unpriced`, never as free.
//!
//! One scan of the matching outbound entries' key columns (as the
//! report's scan plan), in two halves on two threads past 200,000 of
//! them: the price of each (country, category, UTC hour) is looked up once,
//! and entries are summed per UTC hour, then hours into the zone's buckets.

use crate::buckets::{bucket_label, next_bucket, Bucketer, Interval};
use crate::rates::{money, price_among, Rate, RateCard};
use crate::scan::{drill, filter_value, Drill, Map, ScanColumn, SCAN_CHUNK};
use jiff::tz::TimeZone;
use jiff::Zoned;
use roaring::RoaringBitmap;
use serde::Serialize;
use ticks_engine::{Direction, Engagement, Field, FieldValue, Key, Reached, Snapshot, Value};

/// The cost section of the report.
#[derive(Clone, Debug, Serialize)]
pub struct CostReport {
    /// The rate card's name (`null`: none is loaded, so nothing is priced).
    pub rate_card: Option<String>,
    /// Its currency.
    pub currency: Option<String>,
    /// The field `groups` are split by.
    pub group: &'static str,
    /// Matching outbound messages.
    pub messages: u64,
    /// Of them, those Meta charges for.
    pub billable: u64,
    /// Those it does not (a free pricing type).
    pub free: u64,
    /// Those no status has priced yet.
    pub unknown: u64,
    /// Billable messages the card has no rate for (not in `total`).
    pub unpriced: u64,
    /// What the billable messages cost.
    pub total: f64,
    /// `total` / delivered messages (`null` when none was delivered).
    pub cost_per_delivered: Option<f64>,
    /// `total` / read messages.
    pub cost_per_read: Option<f64>,
    /// `total` / messages that got a reply.
    pub cost_per_reply: Option<f64>,
    /// Free messages by pricing type.
    pub free_by_type: Vec<TypeCount>,
    /// Per value of `group`, costliest first (at most `top`).
    pub groups: Vec<CostGroup>,
    /// Per bucket of the report's interval, oldest first.
    pub series: Vec<CostBucket>,
}

/// Free messages of one pricing type.
#[derive(Clone, Debug, Serialize)]
pub struct TypeCount {
    /// The pricing type (`null`: `billable: false` without a type).
    pub key: FieldValue,
    /// How many.
    pub messages: u64,
    /// The filter selecting them.
    pub drill: Drill,
}

/// The cost of one group.
#[derive(Clone, Debug, Serialize)]
pub struct CostGroup {
    /// The group's value (`null` for messages without one).
    pub key: FieldValue,
    /// Outbound messages.
    pub messages: u64,
    /// Billable ones.
    pub billable: u64,
    /// Free ones.
    pub free: u64,
    /// Billable without a rate.
    pub unpriced: u64,
    /// What they cost.
    pub cost: f64,
    /// `cost` / delivered.
    pub cost_per_delivered: Option<f64>,
    /// `cost` / read.
    pub cost_per_read: Option<f64>,
    /// `cost` / replied.
    pub cost_per_reply: Option<f64>,
    /// The filter selecting its messages.
    pub drill: Drill,
}

/// The cost of one time bucket.
#[derive(Clone, Debug, Serialize)]
pub struct CostBucket {
    /// Local start, `YYYY-MM-DD` or `YYYY-MM-DDTHH:00`.
    pub label: String,
    /// Start, UTC milliseconds (inclusive).
    pub from_ms: i64,
    /// End, UTC milliseconds (exclusive).
    pub to_ms: i64,
    /// Outbound messages sent in it.
    pub messages: u64,
    /// Billable ones.
    pub billable: u64,
    /// What they cost.
    pub cost: f64,
}

#[derive(Default, Clone, Copy)]
struct Tally {
    messages: u64,
    billable: u64,
    free: u64,
    unknown: u64,
    unpriced: u64,
    micros: i64,
    delivered: u64,
    read: u64,
    replied: u64,
}

impl Tally {
    fn add(&mut self, o: &Tally) {
        self.messages += o.messages;
        self.billable += o.billable;
        self.free += o.free;
        self.unknown += o.unknown;
        self.unpriced += o.unpriced;
        self.micros += o.micros;
        self.delivered += o.delivered;
        self.read += o.read;
        self.replied += o.replied;
    }
}

fn per(micros: i64, n: u64) -> Option<f64> {
    (n > 0).then(|| money(micros) / n as f64)
}

/// The rates of one (country, category) pair, and what they priced.
struct Rule {
    rates: Vec<Rate>,
    tiered: bool,
    country: Key,
    category: Key,
}

const UNSET: u32 = u32::MAX;
const NO_RULE: u32 = u32::MAX - 1;
const UNSEEN: i64 = i64::MIN;
const UNPRICED: i64 = i64::MIN + 1;

/// Prices billable messages, remembering each answer.
struct Pricer<'s, 'c> {
    snap: &'s Snapshot<'s>,
    card: Option<&'c RateCard>,
    categories: usize,
    /// country code * categories + category code -> rule index.
    rule_of: Vec<u32>,
    rules: Vec<Rule>,
    hours: usize,
    /// rule * hours + hour code -> price micros ([`UNPRICED`]: no rate;
    /// [`UNSEEN`]: not looked up yet).
    by_hour: Vec<i64>,
    /// (rule, UTC month start) -> where each of the rule's tiers starts in
    /// that month: the id of the tier's first message among the month's
    /// billable messages of the rule's market and category (a message's
    /// tier is then the last whose first id is not after it: no rank per
    /// message).
    months: Map<(u32, i64), Vec<(u32, u64)>>,
    /// hour code -> its UTC month (start, end), once looked up.
    month_of_hour: Vec<Option<(i64, i64)>>,
    billable: RoaringBitmap,
}

impl<'s, 'c> Pricer<'s, 'c> {
    fn new(
        snap: &'s Snapshot<'s>,
        card: Option<&'c RateCard>,
        country: &ScanColumn<'_>,
        category: &ScanColumn<'_>,
        hours: usize,
    ) -> Pricer<'s, 'c> {
        let categories = category.keys.len();
        Pricer {
            snap,
            card,
            categories,
            rule_of: vec![UNSET; country.keys.len() * categories],
            rules: Vec::new(),
            hours,
            by_hour: Vec::new(),
            months: Map::default(),
            month_of_hour: vec![None; hours],
            billable: RoaringBitmap::new(),
        }
    }

    fn rule(&mut self, country: (u32, Key), category: (u32, Key)) -> u32 {
        let slot = country.0 as usize * self.categories + category.0 as usize;
        if self.rule_of[slot] == UNSET {
            self.rule_of[slot] = self.make_rule(country.1, category.1);
        }
        self.rule_of[slot]
    }

    fn make_rule(&mut self, country: Key, category: Key) -> u32 {
        let Some(card) = self.card else {
            return NO_RULE;
        };
        let market = match self.snap.value_of(Field::Country, country) {
            FieldValue::Text(t) => Some(t),
            _ => None,
        };
        let FieldValue::Text(cat) = self.snap.value_of(Field::PricingCategory, category) else {
            return NO_RULE;
        };
        let rates = card.rates_for(market.as_deref(), &cat);
        if rates.is_empty() {
            return NO_RULE;
        }
        let tiered = rates.iter().any(|r| r.tier > 0);
        self.rules.push(Rule {
            rates,
            tiered,
            country,
            category,
        });
        self.by_hour.resize(self.rules.len() * self.hours, UNSEEN);
        (self.rules.len() - 1) as u32
    }

    /// The price of billable message `id` of `rule`, sent in UTC hour
    /// `hour` (its code and key).
    fn price(&mut self, rule: u32, hour: (u32, Key), id: u32) -> Option<i64> {
        if rule == NO_RULE {
            return None;
        }
        let at = hour.1.hour_start_ms();
        let r = &self.rules[rule as usize];
        if !r.tiered {
            let slot = rule as usize * self.hours + hour.0 as usize;
            if self.by_hour[slot] == UNSEEN {
                self.by_hour[slot] = price_among(&r.rates, at, 0).map_or(UNPRICED, |p| p.micros);
            }
            return match self.by_hour[slot] {
                UNPRICED => None,
                micros => Some(micros),
            };
        }
        let month = *self.month_of_hour[hour.0 as usize].get_or_insert_with(|| utc_month(at));
        let rank = self.rank(rule, month, id);
        price_among(&self.rules[rule as usize].rates, at, rank).map(|p| p.micros)
    }

    /// The tier message `id` of `rule` falls in (the highest of the rule's
    /// tiers that as many billable messages of its market and category came
    /// before it in its UTC month reach).
    fn rank(&mut self, rule: u32, (start, end): (i64, i64), id: u32) -> u64 {
        if self.billable.is_empty() {
            self.billable = self
                .snap
                .any_of(Field::Billable, &[Value::Billable(true)])
                .into_owned();
        }
        let (snap, billable, r) = (self.snap, &self.billable, &self.rules[rule as usize]);
        let starts = self.months.entry((rule, start)).or_insert_with(|| {
            let mut bm = billable & snap.recorded_between(start, end);
            for (field, key) in [
                (Field::Country, r.country),
                (Field::PricingCategory, r.category),
            ] {
                match snap.bitmap(field, key) {
                    Some(values) => bm &= values,
                    None => bm.clear(),
                }
            }
            let mut tiers: Vec<u64> = r.rates.iter().map(|r| r.tier).filter(|t| *t > 0).collect();
            tiers.sort_unstable();
            tiers.dedup();
            tiers
                .into_iter()
                .filter_map(|t| Some((bm.select(u32::try_from(t).ok()?)?, t)))
                .collect()
        });
        starts
            .iter()
            .take_while(|(first, _)| *first <= id)
            .last()
            .map_or(0, |(_, tier)| *tier)
    }
}

/// The first millisecond of the UTC month holding `ms`, and of the next.
pub(crate) fn utc_month(ms: i64) -> (i64, i64) {
    let day = |d: jiff::civil::Date| {
        d.to_zoned(TimeZone::UTC)
            .map(|z| z.timestamp().as_millisecond())
            .unwrap_or(ms)
    };
    let Ok(ts) = jiff::Timestamp::from_millisecond(ms) else {
        return (ms, ms);
    };
    let first = ts.to_zoned(TimeZone::UTC).date().first_of_month();
    let next = first
        .checked_add(jiff::Span::new().months(1))
        .unwrap_or(first);
    (day(first), day(next))
}

/// What one series bucket (or UTC hour) adds up.
#[derive(Default, Clone, Copy)]
struct Sums {
    messages: u64,
    billable: u64,
    micros: i64,
}

impl Sums {
    fn add(&mut self, o: &Sums) {
        self.messages += o.messages;
        self.billable += o.billable;
        self.micros += o.micros;
    }
}

/// What one scan thread counted.
struct Partial {
    /// Per code of the group column.
    groups: Vec<Tally>,
    /// Per code of the pricing type column: free messages.
    free_types: Vec<u64>,
    /// Per code of the hour column.
    hours: Vec<Sums>,
    /// Per bucket start, for entries of hours a bucket boundary splits (a
    /// zone whose offset is not whole hours).
    split: Map<i64, (Zoned, Sums)>,
}

/// Scans the outbound entries `ids` (one thread's share).
#[allow(clippy::too_many_arguments)]
fn scan(
    snap: &Snapshot<'_>,
    ids: impl Iterator<Item = u32>,
    group: Field,
    card: Option<&RateCard>,
    whole_hours: &[bool],
    tz: &TimeZone,
    interval: Interval,
) -> Partial {
    let column = |field| ScanColumn::new(snap.column(field));
    let mut by = column(group);
    let mut country = column(Field::Country);
    let mut category = column(Field::PricingCategory);
    let mut billable = column(Field::Billable);
    let mut pricing_type = column(Field::PricingType);
    let mut hour = column(Field::Hour);
    let mut reached = column(Field::Reached);
    let mut engagement = column(Field::Engagement);
    let mut pricer = Pricer::new(snap, card, &country, &category, hour.keys.len());
    let (yes, no) = (Key::billable(true), Key::billable(false));
    let replied = [
        Key::engagement(Engagement::Replied),
        Key::engagement(Engagement::RepliedAndClicked),
    ];
    let mut p = Partial {
        groups: vec![Tally::default(); by.keys.len()],
        free_types: vec![0; pricing_type.keys.len()],
        hours: vec![Sums::default(); hour.keys.len()],
        split: Map::default(),
    };
    let bucketer = Bucketer::new(tz, interval);
    let mut chunk = Vec::with_capacity(SCAN_CHUNK);
    let mut rest = ids.peekable();
    while rest.peek().is_some() {
        chunk.clear();
        chunk.extend(rest.by_ref().take(SCAN_CHUNK));
        for c in [
            &mut by,
            &mut country,
            &mut category,
            &mut billable,
            &mut pricing_type,
            &mut hour,
            &mut reached,
            &mut engagement,
        ] {
            c.load(&chunk);
        }
        for (i, id) in chunk.iter().enumerate() {
            let g = &mut p.groups[by.codes[i] as usize];
            let mut sums = Sums {
                messages: 1,
                ..Sums::default()
            };
            g.messages += 1;
            let charge = billable.key_at(i);
            if charge == yes {
                g.billable += 1;
                sums.billable = 1;
                let rule = pricer.rule(
                    (country.codes[i], country.key_at(i)),
                    (category.codes[i], category.key_at(i)),
                );
                match pricer.price(rule, (hour.codes[i], hour.key_at(i)), *id) {
                    Some(micros) => {
                        g.micros += micros;
                        sums.micros = micros;
                    }
                    None => g.unpriced += 1,
                }
            } else if charge == no {
                g.free += 1;
                p.free_types[pricing_type.codes[i] as usize] += 1;
            } else {
                g.unknown += 1;
            }
            if let Some(r) = reached.key_at(i).as_reached() {
                g.delivered += u64::from(r >= Reached::Delivered);
                g.read += u64::from(r >= Reached::Read);
            }
            g.replied += u64::from(replied.contains(&engagement.key_at(i)));
            let code = hour.codes[i] as usize;
            if whole_hours[code] {
                p.hours[code].add(&sums);
            } else if let Some(start) = bucketer.of_ms(snap.recorded_ms(*id)) {
                let ms = start.timestamp().as_millisecond();
                p.split
                    .entry(ms)
                    .or_insert_with(|| (start, Sums::default()))
                    .1
                    .add(&sums);
            }
        }
    }
    p
}

/// Outbound matches from which the scan is split over two threads.
const SPLIT_FROM: u64 = 200_000;

/// Computes the cost section over `matches`: the outbound ones are scanned
/// in two halves, on two threads, when there are many.
pub(crate) fn cost_report(
    snap: &Snapshot<'_>,
    matches: &RoaringBitmap,
    tz: &TimeZone,
    interval: Interval,
    group: Field,
    top: usize,
    card: Option<&RateCard>,
) -> CostReport {
    let options = (interval, group, top);
    cost_report_split(snap, matches, tz, options, card, SPLIT_FROM)
}

fn cost_report_split(
    snap: &Snapshot<'_>,
    matches: &RoaringBitmap,
    tz: &TimeZone,
    (interval, group, top): (Interval, Field, usize),
    card: Option<&RateCard>,
    split_from: u64,
) -> CostReport {
    let outbound = match snap.bitmap(Field::Direction, Key::direction(Direction::Outbound)) {
        Some(bm) => matches & bm,
        None => RoaringBitmap::new(),
    };
    // Each UTC hour's bucket, once: most zones place whole hours.
    let hour_column = ScanColumn::new(snap.column(Field::Hour));
    let mut bucketer = Bucketer::new(tz, interval);
    let hour_bucket: Vec<Option<Zoned>> = hour_column
        .keys
        .iter()
        .map(|k| {
            if k.is_none() {
                None
            } else {
                bucketer.of_hour(*k)
            }
        })
        .collect();
    let whole_hours: Vec<bool> = hour_bucket.iter().map(Option::is_some).collect();
    let scan_range = |range: std::ops::Range<u32>| {
        scan(
            snap,
            outbound.range(range),
            group,
            card,
            &whole_hours,
            tz,
            interval,
        )
    };
    // Two threads only pay for a scan of some size.
    let parts: Vec<Partial> = match outbound.select((outbound.len() / 2) as u32) {
        Some(mid) if outbound.len() >= split_from => std::thread::scope(|s| {
            let upper = s.spawn(|| scan_range(mid..u32::MAX));
            let lower = scan_range(0..mid);
            let mut parts = vec![lower];
            // A panic in the other half is a bug: report what was counted
            // rather than take the server down.
            parts.extend(upper.join().ok());
            parts
        }),
        _ => vec![scan_range(0..u32::MAX)],
    };
    let by_keys = ScanColumn::new(snap.column(group)).keys;
    let type_keys = ScanColumn::new(snap.column(Field::PricingType)).keys;
    let mut groups = vec![Tally::default(); by_keys.len()];
    let mut free_types = vec![0u64; type_keys.len()];
    let mut buckets: Map<i64, (Zoned, Sums)> = Map::default();
    for part in parts {
        for (g, t) in groups.iter_mut().zip(&part.groups) {
            g.add(t);
        }
        for (f, n) in free_types.iter_mut().zip(&part.free_types) {
            *f += n;
        }
        for (code, sums) in part.hours.iter().enumerate() {
            if sums.messages == 0 {
                continue;
            }
            if let Some(Some(start)) = hour_bucket.get(code) {
                let ms = start.timestamp().as_millisecond();
                buckets
                    .entry(ms)
                    .or_insert_with(|| (start.clone(), Sums::default()))
                    .1
                    .add(sums);
            }
        }
        for (ms, (start, sums)) in part.split {
            buckets
                .entry(ms)
                .or_insert_with(|| (start, Sums::default()))
                .1
                .add(&sums);
        }
    }
    let groups: Vec<(FieldValue, Tally)> = groups
        .into_iter()
        .enumerate()
        .filter(|(_, t)| t.messages > 0)
        .map(|(code, t)| (snap.value_of(group, by_keys[code]), t))
        .collect();
    let free_types: Vec<(FieldValue, u64)> = free_types
        .into_iter()
        .enumerate()
        .filter(|(_, n)| *n > 0)
        .map(|(code, n)| (snap.value_of(Field::PricingType, type_keys[code]), n))
        .collect();
    assemble(groups, free_types, buckets, card, (interval, group, top))
}

/// The section from what was counted: per value of the group field, free
/// messages per pricing type, and per bucket of the interval.
fn assemble(
    groups: Vec<(FieldValue, Tally)>,
    free_types: Vec<(FieldValue, u64)>,
    buckets: Map<i64, (Zoned, Sums)>,
    card: Option<&RateCard>,
    (interval, group, top): (Interval, Field, usize),
) -> CostReport {
    let mut total = Tally::default();
    for (_, g) in &groups {
        total.add(g);
    }
    let group_name = group.name();
    let mut listed: Vec<CostGroup> = groups
        .into_iter()
        .filter(|(_, t)| t.messages > 0)
        .map(|(key, t)| {
            let value = filter_value(&key);
            CostGroup {
                drill: drill(&[("direction", "outbound"), (group_name, &value)]),
                key,
                messages: t.messages,
                billable: t.billable,
                free: t.free,
                unpriced: t.unpriced,
                cost: money(t.micros),
                cost_per_delivered: per(t.micros, t.delivered),
                cost_per_read: per(t.micros, t.read),
                cost_per_reply: per(t.micros, t.replied),
            }
        })
        .collect();
    listed.sort_by(|a, b| {
        b.cost
            .total_cmp(&a.cost)
            .then(b.messages.cmp(&a.messages))
            .then_with(|| filter_value(&a.key).cmp(&filter_value(&b.key)))
    });
    listed.truncate(top);
    let mut free_by_type: Vec<TypeCount> = free_types
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(key, n)| {
            let value = filter_value(&key);
            TypeCount {
                drill: drill(&[
                    ("direction", "outbound"),
                    ("billable", "false"),
                    ("pricing_type", &value),
                ]),
                key,
                messages: n,
            }
        })
        .collect();
    free_by_type.sort_by_key(|t| std::cmp::Reverse(t.messages));
    let mut series: Vec<(Zoned, Sums)> = buckets.into_values().collect();
    series.sort_by_key(|(z, _)| z.timestamp());
    let series = fill_gaps(series, interval);
    CostReport {
        rate_card: card.map(|c| c.name.clone()),
        currency: card.map(|c| c.currency.clone()),
        group: group_name,
        messages: total.messages,
        billable: total.billable,
        free: total.free,
        unknown: total.unknown,
        unpriced: total.unpriced,
        total: money(total.micros),
        cost_per_delivered: per(total.micros, total.delivered),
        cost_per_read: per(total.micros, total.read),
        cost_per_reply: per(total.micros, total.replied),
        free_by_type,
        groups: listed,
        series,
    }
}

/// Matching outbound entries alike in everything the cost section reads,
/// as a backend that counts by groups gives them (see
/// [`cost_from_rows`]).
#[derive(Clone, Debug)]
pub(crate) struct CostRow {
    /// The value of the field the section is split by.
    pub(crate) group: FieldValue,
    /// The person's country (ISO code).
    pub(crate) country: Option<String>,
    /// `pricing.category`.
    pub(crate) category: Option<String>,
    /// Whether Meta charges for them (`None`: no status priced them yet).
    pub(crate) billable: Option<bool>,
    /// `pricing.type`.
    pub(crate) pricing_type: FieldValue,
    /// They reached a device.
    pub(crate) delivered: bool,
    /// They were read.
    pub(crate) read: bool,
    /// They got a reply.
    pub(crate) replied: bool,
    /// The UTC hour they were sent in (its first millisecond).
    pub(crate) hour_ms: i64,
    /// The minute they were sent in, when their hour lies in two buckets
    /// of the zone (else the hour's start).
    pub(crate) at_ms: i64,
    /// Their tier (see [`Pricer::rank`]): how many billable messages of
    /// their market and category came before them in their UTC month, as
    /// the highest of the card's tier thresholds it reaches; 0 untiered.
    pub(crate) tier: u64,
    /// How many.
    pub(crate) count: u64,
}

/// The UTC hours (their first milliseconds) that lie in two buckets of
/// `tz` at `interval`: their entries are placed by the minute.
pub(crate) fn split_hours(hours: &[i64], tz: &TimeZone, interval: Interval) -> Vec<i64> {
    let bucketer = Bucketer::new(tz, interval);
    hours
        .iter()
        .copied()
        .filter(|h| bucketer.of_whole_hour(*h).is_none())
        .collect()
}

/// The cost section from groups of matching outbound entries: each group
/// priced as the store's scan prices each of its messages.
pub(crate) fn cost_from_rows(
    rows: Vec<CostRow>,
    tz: &TimeZone,
    interval: Interval,
    group: Field,
    top: usize,
    card: Option<&RateCard>,
) -> CostReport {
    let bucketer = Bucketer::new(tz, interval);
    let mut rules: Map<(Option<String>, Option<String>), Vec<Rate>> = Map::default();
    let mut groups: Map<String, (FieldValue, Tally)> = Map::default();
    let mut free_types: Map<String, (FieldValue, u64)> = Map::default();
    let mut buckets: Map<i64, (Zoned, Sums)> = Map::default();
    for row in rows {
        let n = row.count;
        let g = &mut groups
            .entry(filter_value(&row.group))
            .or_insert_with(|| (row.group.clone(), Tally::default()))
            .1;
        g.messages += n;
        let mut sums = Sums {
            messages: n,
            ..Sums::default()
        };
        match row.billable {
            Some(true) => {
                g.billable += n;
                sums.billable = n;
                let rates = rules
                    .entry((row.country.clone(), row.category.clone()))
                    .or_insert_with(|| match (card, &row.category) {
                        (Some(card), Some(category)) => {
                            card.rates_for(row.country.as_deref(), category)
                        }
                        _ => Vec::new(),
                    });
                match price_among(rates, row.hour_ms, row.tier) {
                    Some(p) => {
                        g.micros += p.micros * n as i64;
                        sums.micros = p.micros * n as i64;
                    }
                    _ => g.unpriced += n,
                }
            }
            Some(false) => {
                g.free += n;
                free_types
                    .entry(filter_value(&row.pricing_type))
                    .or_insert_with(|| (row.pricing_type.clone(), 0))
                    .1 += n;
            }
            None => g.unknown += n,
        }
        g.delivered += if row.delivered { n } else { 0 };
        g.read += if row.read { n } else { 0 };
        g.replied += if row.replied { n } else { 0 };
        let start = if row.at_ms == row.hour_ms {
            bucketer.of_whole_hour(row.hour_ms)
        } else {
            None
        };
        if let Some(start) = start.or_else(|| bucketer.of_ms(row.at_ms)) {
            buckets
                .entry(start.timestamp().as_millisecond())
                .or_insert_with(|| (start, Sums::default()))
                .1
                .add(&sums);
        }
    }
    let mut groups: Vec<(FieldValue, Tally)> = groups.into_values().collect();
    groups.sort_by_key(|(k, _)| filter_value(k));
    let free_types = free_types.into_values().collect();
    assemble(groups, free_types, buckets, card, (interval, group, top))
}

/// Buckets from the first to the last, the empty ones included.
fn fill_gaps(series: Vec<(Zoned, Sums)>, interval: Interval) -> Vec<CostBucket> {
    let mut out = Vec::with_capacity(series.len());
    let mut at: Option<Zoned> = None;
    for (start, t) in series {
        while let Some(z) = at.take() {
            if z.timestamp() >= start.timestamp() {
                break;
            }
            let next = next_bucket(&z, interval);
            out.push(bucket(&z, next.as_ref(), &Sums::default(), interval));
            at = next;
        }
        let next = next_bucket(&start, interval);
        out.push(bucket(&start, next.as_ref(), &t, interval));
        at = next;
    }
    out
}

fn bucket(start: &Zoned, next: Option<&Zoned>, t: &Sums, interval: Interval) -> CostBucket {
    let from_ms = start.timestamp().as_millisecond();
    CostBucket {
        label: bucket_label(start, interval),
        from_ms,
        to_ms: next.map_or(from_ms, |n| n.timestamp().as_millisecond()),
        messages: t.messages,
        billable: t.billable,
        cost: money(t.micros),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufReader;
    use ticks_ingest::generate::{Generator, GeneratorOptions};

    #[test]
    fn two_threads_count_what_one_counts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ticks_engine::Store::open(ticks_engine::Config::new(dir.path())).expect("open");
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
        let card = RateCard::parse(
            "t",
            "market,category,price,currency,valid_from,tier\n*,marketing,0.05,USD,2020-01-01,\nBR,utility,0.01,USD,2020-01-01,\nBR,utility,0.005,USD,2020-01-01,30\n",
        )
        .expect("card");
        let snap = store.snapshot();
        let tz = jiff::tz::TimeZone::get("Asia/Kolkata").expect("zone");
        let json = |split_from| {
            let r = cost_report_split(
                &snap,
                snap.live(),
                &tz,
                (Interval::Hour, Field::Country, 50),
                Some(&card),
                split_from,
            );
            serde_json::to_value(r).expect("json")
        };
        let (one, two) = (json(u64::MAX), json(0));
        assert!(one["billable"].as_u64().is_some_and(|b| b > 100), "{one}");
        assert_eq!(one, two);
        drop(snap);
        store.close().expect("close");
    }
}
