//! The cost and country sections of the report, checked against a
//! brute-force pricing of every entry of a store filled with generated
//! traffic, under a rate card whose prices change in the middle of the
//! period and whose utility prices drop past a monthly volume tier.

use std::collections::BTreeMap;
use std::io::BufReader;
use std::sync::{Arc, OnceLock};
use ticks_engine::{Direction, Entry, EntryId, FieldValue, Status, Store};
use ticks_ingest::generate::{Generator, GeneratorOptions};
use ticks_query::{report, search, LogQuery, Plan, RateCard, ReportOptions};

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    all: Vec<Entry>,
    card: Arc<RateCard>,
    /// The day the card's prices change.
    change: String,
}

fn day_of(ms: i64) -> jiff::civil::Date {
    jiff::Timestamp::from_millisecond(ms)
        .expect("time")
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
}

fn shared() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = ticks_engine::Config::new(dir.path());
        config.unsealed_rows = 8;
        let store = Store::open(config).expect("open");
        let mut opts = GeneratorOptions::new(3000);
        opts.seed = 5;
        let mut data = Vec::new();
        for line in Generator::new(opts) {
            data.extend_from_slice(&line);
            data.push(b'\n');
        }
        let imported = ticks_ingest::import(
            &store,
            BufReader::new(&data[..]),
            &ticks_ingest::ImportOptions::default(),
        )
        .expect("import");
        assert_eq!(imported.rejected, 0);
        let snap = store.snapshot();
        let all: Vec<Entry> = (0..snap.entry_count() as u32)
            .filter_map(|i| snap.entry(EntryId(i)))
            .collect();
        drop(snap);
        let sent: Vec<i64> = all
            .iter()
            .filter(|e| e.direction == Direction::Outbound)
            .map(|e| e.recorded_ms)
            .collect();
        let (first, last) = (
            *sent.iter().min().expect("sends"),
            *sent.iter().max().expect("sends"),
        );
        let change = day_of(first + (last - first) / 2).to_string();
        let start = day_of(first).to_string();
        let text = format!(
            "market,category,price,currency,valid_from,tier
BR,marketing,0.0625,USD,{start},
BR,marketing,0.0700,USD,{change},
MX,marketing,0.0436,USD,{start},
*,marketing,0.0500,USD,{start},
*,marketing,0.0550,USD,{change},
BR,utility,0.0080,USD,{start},0
BR,utility,0.0040,USD,{start},40
"
        );
        let card = Arc::new(RateCard::parse("test", &text).expect("card"));
        Fixture {
            _dir: dir,
            store,
            all,
            card,
            change,
        }
    })
}

fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn run(
    pairs: &[(&str, &str)],
    plan: Plan,
    card: bool,
) -> (ticks_query::Report, Vec<&'static Entry>) {
    let f = shared();
    let p = params(pairs);
    let q = LogQuery::from_params(&p, &ticks_query::REPORT_PARAMS).expect("valid query");
    let mut options = ReportOptions::from_params(&p).expect("valid options");
    options.plan = plan;
    if card {
        options.rate_card = Some(f.card.clone());
    }
    let r = report(&f.store, &q, &options).expect("report");
    let ids: std::collections::HashSet<u32> = ticks_query::matching(&f.store, &q)
        .expect("matching")
        .iter()
        .collect();
    (r, f.all.iter().filter(|e| ids.contains(&e.id.0)).collect())
}

/// Country, pricing category and UTC month (year, month).
type Market = (Option<String>, Option<String>, (i16, i8));

/// Each billable entry's place among its UTC month's billable entries of
/// the same country and category, over the whole store, in id order.
fn ranks() -> BTreeMap<u32, u64> {
    let mut seen: BTreeMap<Market, u64> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for e in &shared().all {
        if e.direction != Direction::Outbound || e.billable != Some(true) {
            continue;
        }
        let d = day_of(e.recorded_ms);
        let n = seen
            .entry((
                e.country.clone(),
                e.pricing_category.clone(),
                (d.year(), d.month()),
            ))
            .or_default();
        out.insert(e.id.0, *n);
        *n += 1;
    }
    out
}

/// The brute-force price of one entry, in millionths.
fn price(e: &Entry, ranks: &BTreeMap<u32, u64>) -> Option<i64> {
    let category = e.pricing_category.as_deref()?;
    let rank = ranks.get(&e.id.0).copied().unwrap_or(0);
    shared()
        .card
        .price(e.country.as_deref(), category, e.recorded_ms, rank)
        .map(|p| p.micros)
}

fn reached(e: &Entry) -> u8 {
    if e.read_ms.is_some() || matches!(e.status, Status::Played | Status::Read) {
        3
    } else if e.delivered_ms.is_some() || matches!(e.status, Status::Delivered | Status::Deleted) {
        2
    } else {
        0
    }
}

#[derive(Default, Debug, PartialEq)]
struct Expected {
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

fn expect<'a>(entries: impl Iterator<Item = &'a &'static Entry>) -> Expected {
    let ranks = ranks();
    let mut x = Expected::default();
    for e in entries.filter(|e| e.direction == Direction::Outbound) {
        x.messages += 1;
        match e.billable {
            Some(true) => {
                x.billable += 1;
                match price(e, &ranks) {
                    Some(p) => x.micros += p,
                    None => x.unpriced += 1,
                }
            }
            Some(false) => x.free += 1,
            None => x.unknown += 1,
        }
        x.delivered += u64::from(reached(e) >= 2);
        x.read += u64::from(reached(e) >= 3);
        x.replied += u64::from(e.replies > 0);
    }
    x
}

fn close(a: f64, micros: i64) -> bool {
    (a - micros as f64 / 1e6).abs() < 1e-6
}

#[test]
fn the_whole_stores_cost_is_every_billable_message_priced_by_hand() {
    for plan in [Plan::Scan, Plan::Auto] {
        let (r, entries) = run(&[("sections", "cost"), ("group", "campaign")], plan, true);
        let cost = r.cost.expect("a cost section");
        let x = expect(entries.iter());
        assert!(x.billable > 100 && x.free > 50 && x.unpriced > 0, "{x:?}");
        // Both of the card's periods and both of its tiers priced messages.
        let ranks = ranks();
        let prices: std::collections::BTreeSet<i64> =
            entries.iter().filter_map(|e| price(e, &ranks)).collect();
        for p in [62_500, 70_000, 8_000, 4_000] {
            assert!(prices.contains(&p), "no message at {p}: {prices:?}");
        }
        assert_eq!(cost.currency.as_deref(), Some("USD"));
        assert_eq!(
            (
                cost.messages,
                cost.billable,
                cost.free,
                cost.unknown,
                cost.unpriced
            ),
            (x.messages, x.billable, x.free, x.unknown, x.unpriced)
        );
        assert!(
            close(cost.total, x.micros),
            "{} vs {}",
            cost.total,
            x.micros
        );
        let per = cost.cost_per_delivered.expect("delivered some");
        assert!((per - x.micros as f64 / 1e6 / x.delivered as f64).abs() < 1e-9);
        let per = cost.cost_per_read.expect("read some");
        assert!((per - x.micros as f64 / 1e6 / x.read as f64).abs() < 1e-9);
        let per = cost.cost_per_reply.expect("replied to some");
        assert!((per - x.micros as f64 / 1e6 / x.replied as f64).abs() < 1e-9);
        // The series adds up to the total.
        let series: f64 = cost.series.iter().map(|b| b.cost).sum();
        assert!((series - cost.total).abs() < 1e-6);
        assert_eq!(
            cost.series.iter().map(|b| b.messages).sum::<u64>(),
            x.messages
        );
    }
}

#[test]
fn every_group_costs_what_its_messages_cost_by_hand() {
    for (group, of) in [
        (
            "campaign",
            (|e: &Entry| e.name.clone()) as fn(&Entry) -> Option<String>,
        ),
        ("country", |e: &Entry| e.country.clone()),
        ("pricing_category", |e: &Entry| e.pricing_category.clone()),
        ("pricing_type", |e: &Entry| e.pricing_type.clone()),
        ("template", |e: &Entry| e.template.clone()),
    ] {
        let (r, entries) = run(
            &[("sections", "cost"), ("group", group), ("top", "200")],
            Plan::Scan,
            true,
        );
        let cost = r.cost.expect("cost");
        assert!(cost.groups.len() > 1, "{group}");
        for g in &cost.groups {
            let key = match &g.key {
                FieldValue::Text(t) => Some(t.clone()),
                _ => None,
            };
            let x = expect(entries.iter().filter(|e| of(e) == key));
            assert_eq!(
                (g.messages, g.billable, g.free, g.unpriced),
                (x.messages, x.billable, x.free, x.unpriced),
                "{group}={key:?}"
            );
            assert!(
                close(g.cost, x.micros),
                "{group}={key:?}: {} vs {}",
                g.cost,
                x.micros
            );
            // The drill selects exactly the group's messages.
            let mut p = params(&[("limit", "1")]);
            p.extend(g.drill.iter().cloned());
            let q = LogQuery::from_params(&p, &[]).expect("drill is a query");
            assert_eq!(
                search(&shared().store, &q).expect("search").total,
                g.messages
            );
        }
    }
}

#[test]
fn a_filtered_report_prices_tiers_by_the_whole_month_not_the_filter() {
    let f = shared();
    let campaign = f
        .all
        .iter()
        .filter(|e| e.billable == Some(true) && e.pricing_category.as_deref() == Some("utility"))
        .find_map(|e| e.name.clone())
        .expect("a utility campaign");
    let (r, entries) = run(
        &[
            ("sections", "cost"),
            ("name", &campaign),
            ("from", &f.change),
        ],
        Plan::Scan,
        true,
    );
    let cost = r.cost.expect("cost");
    let x = expect(entries.iter());
    assert!(x.billable > 0);
    assert!(
        close(cost.total, x.micros),
        "{} vs {}",
        cost.total,
        x.micros
    );
}

#[test]
fn without_a_rate_card_messages_are_counted_and_nothing_is_priced() {
    let (r, entries) = run(&[("sections", "cost")], Plan::Scan, false);
    let cost = r.cost.expect("cost");
    let x = expect(entries.iter());
    assert_eq!(cost.rate_card, None);
    assert_eq!(
        (cost.billable, cost.unpriced, cost.total),
        (x.billable, x.billable, 0.0)
    );
    let free: u64 = cost.free_by_type.iter().map(|t| t.messages).sum();
    assert_eq!(free, x.free);
}

#[test]
fn countries_get_a_funnel_each_with_their_failure_reasons() {
    let (r, entries) = run(
        &[("sections", "countries"), ("top", "50")],
        Plan::Scan,
        false,
    );
    assert!(r.countries.len() >= 5, "{:?}", r.countries.len());
    for funnel in &r.countries {
        let key = match &funnel.key {
            FieldValue::Text(t) => Some(t.clone()),
            _ => None,
        };
        let mine: Vec<_> = entries
            .iter()
            .filter(|e| e.direction == Direction::Outbound && e.country == key)
            .collect();
        assert_eq!(funnel.steps[0].count, mine.len() as u64, "{key:?}");
        let failed = mine.iter().filter(|e| e.status == Status::Failed).count() as u64;
        assert_eq!(funnel.failed, failed, "{key:?}");
        let reasons: u64 = funnel.failure_reasons.iter().map(|c| c.count).sum();
        let refused = mine
            .iter()
            .filter(|e| {
                matches!(
                    e.status,
                    Status::Failed | Status::Rejected | Status::NoResponse
                )
            })
            .count() as u64;
        assert!(
            reasons <= refused && (reasons > 0) == (refused > 0),
            "{key:?}"
        );
    }
    // Without the section, nothing is computed for it.
    let (r, _) = run(&[], Plan::Scan, false);
    assert!(r.countries.is_empty() && r.cost.is_none());
}

#[test]
fn report_options_name_what_is_wrong() {
    for (k, v) in [("group", "text"), ("group", "day"), ("sections", "costs")] {
        let err = ReportOptions::from_params(&params(&[(k, v)])).expect_err("invalid");
        assert!(err.to_string().starts_with(&format!("{k}: ")), "{err}");
    }
}
