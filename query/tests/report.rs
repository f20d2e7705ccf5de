//! The consolidated report, checked figure by figure against a brute-force
//! count over every entry of a real store filled with generated traffic,
//! and every drill-down checked to select exactly the entries it counts.

use std::collections::BTreeMap;
use std::io::BufReader;
use std::sync::OnceLock;
use ticks_engine::{Attribution, Direction, Entry, EntryId, FieldValue, Status, Store};
use ticks_ingest::generate::{Generator, GeneratorOptions};
use ticks_query::{report, search, Drill, Interval, LogQuery, Plan, Report, ReportOptions};

/// A store configuration that seals all but the newest 8 rows in
/// compressed blocks, so that a small test store reads its rows the way a
/// large one does.
fn sealing(dir: impl Into<std::path::PathBuf>) -> ticks_engine::Config {
    let mut config = ticks_engine::Config::new(dir);
    config.unsealed_rows = 8;
    config
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    all: Vec<Entry>,
}

fn shared() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(sealing(dir.path())).expect("open");
        let mut opts = GeneratorOptions::new(2500);
        opts.seed = 11;
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
        store.flush_text().expect("flush");
        let snap = store.snapshot();
        let all = (0..snap.entry_count() as u32)
            .filter_map(|i| snap.entry(EntryId(i)))
            .collect();
        drop(snap);
        Fixture {
            _dir: dir,
            store,
            all,
        }
    })
}

fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn run(pairs: &[(&str, &str)], plan: Plan) -> (Report, Vec<&'static Entry>) {
    let f = shared();
    let p = params(pairs);
    let q = LogQuery::from_params(&p, &ticks_query::REPORT_PARAMS).expect("valid query");
    let mut options = ReportOptions::from_params(&p).expect("valid options");
    options.plan = plan;
    let r = report(&f.store, &q, &options).expect("report");
    let page = search(
        &f.store,
        &LogQuery::from_params(
            &[p.clone(), params(&[("limit", "1")])].concat(),
            &ticks_query::REPORT_PARAMS,
        )
        .expect("valid"),
    )
    .expect("search");
    // The report covers the same entries as the log table.
    assert_eq!(r.total, page.total);
    let ids: std::collections::HashSet<u32> = ticks_query::matching(&f.store, &q)
        .expect("matching")
        .iter()
        .collect();
    let entries = f.all.iter().filter(|e| ids.contains(&e.id.0)).collect();
    (r, entries)
}

/// How many entries a drill-down selects when applied on top of the
/// report's query (its parameters replace those of the same name).
fn drilled(base: &[(&str, &str)], drill: &Drill) -> u64 {
    let f = shared();
    let mut p: Vec<(String, String)> = params(base)
        .into_iter()
        .filter(|(k, _)| !drill.iter().any(|(d, _)| d == k))
        .filter(|(k, _)| !ticks_query::REPORT_PARAMS.contains(&k.as_str()))
        .collect();
    p.extend(drill.iter().cloned());
    p.push(("limit".into(), "1".into()));
    let q = LogQuery::from_params(&p, &[]).expect("drill is a valid query");
    search(&f.store, &q).expect("search").total
}

fn text(v: &Option<String>) -> FieldValue {
    v.clone().map_or(FieldValue::None, FieldValue::Text)
}

/// How far along delivery the webhooks prove an entry got (0 to 3).
fn reached(e: &Entry) -> u8 {
    if e.read_ms.is_some() || e.status == Status::Played || e.status == Status::Read {
        3
    } else if e.delivered_ms.is_some() || matches!(e.status, Status::Delivered | Status::Deleted) {
        2
    } else if e.sent_ms.is_some() || e.status == Status::Sent {
        1
    } else {
        0
    }
}

fn funnel_counts(entries: &[&Entry]) -> [u64; 6] {
    let out: Vec<&&Entry> = entries
        .iter()
        .filter(|e| e.direction == Direction::Outbound)
        .collect();
    let n = |f: &dyn Fn(&Entry) -> bool| out.iter().filter(|e| f(e)).count() as u64;
    [
        out.len() as u64,
        n(&|e| !matches!(e.status, Status::Rejected | Status::NoResponse)),
        n(&|e| reached(e) >= 1),
        n(&|e| reached(e) >= 2),
        n(&|e| reached(e) >= 3),
        n(&|e| e.replies > 0 || e.clicks > 0),
    ]
}

fn count_by<K: Ord>(entries: &[&Entry], key: impl Fn(&Entry) -> K) -> BTreeMap<K, u64> {
    let mut m = BTreeMap::new();
    for e in entries {
        *m.entry(key(e)).or_default() += 1;
    }
    m
}

/// Every plan gives the same report (Auto mixes the two, section by
/// section), and every figure of it is checked.
fn check_report(pairs: &[(&str, &str)]) {
    let (bitmaps, _) = run(pairs, Plan::Bitmaps);
    for plan in [Plan::Scan, Plan::Auto] {
        let (other, _) = run(pairs, plan);
        assert_eq!(
            serde_json::to_value(&bitmaps).expect("json"),
            serde_json::to_value(&other).expect("json"),
            "plans Bitmaps and {plan:?} disagree for {pairs:?}"
        );
    }
    check_figures(pairs, Plan::Bitmaps);
    check_figures(pairs, Plan::Scan);
}

fn check_figures(pairs: &[(&str, &str)], plan: Plan) {
    let (r, entries) = run(pairs, plan);
    assert_eq!(r.total, entries.len() as u64);
    assert!(r.total > 0, "the query {pairs:?} should match something");

    // Breakdowns.
    for b in &r.counts {
        let expected = count_by(&entries, |e| -> String {
            let fv = match b.field {
                "status" => FieldValue::Text(e.status.as_str().into()),
                "direction" => FieldValue::Text(e.direction.as_str().into()),
                "response_code" => e
                    .response_code
                    .map_or(FieldValue::None, |c| FieldValue::Int(c.into())),
                "error_code" => e.error_code.map_or(FieldValue::None, FieldValue::Int),
                "category" => text(&e.category),
                "name" => text(&e.name),
                "template" => text(&e.template),
                "recipient_type" => text(&e.recipient_type),
                "content_type" => text(&e.content_type),
                "subaccount" => text(&e.subaccount),
                "user" => text(&e.user),
                "conversation_type" => text(&e.conversation_type),
                "pricing_category" => text(&e.pricing_category),
                other => panic!("no brute force for {other}"),
            };
            format!("{fv:?}")
        });
        let listed: u64 = b.groups.iter().map(|g| g.count).sum();
        assert_eq!(
            listed + b.other,
            r.total,
            "{} groups cover every entry",
            b.field
        );
        for g in &b.groups {
            assert_eq!(
                Some(&g.count),
                expected.get(&format!("{:?}", g.key)),
                "{} = {:?}",
                b.field,
                g.key
            );
        }
        let mut sorted: Vec<u64> = expected.values().copied().collect();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        assert_eq!(
            b.groups.iter().map(|g| g.count).collect::<Vec<_>>(),
            sorted.into_iter().take(b.groups.len()).collect::<Vec<_>>(),
            "{}: the largest groups, largest first",
            b.field
        );
        if b.field == "error_code" {
            for g in &b.groups {
                if let FieldValue::Int(code) = g.key {
                    assert_eq!(
                        g.meaning,
                        ticks_ingest::meta_error_info(code).map(|i| i.meaning)
                    );
                }
            }
        }
    }

    // The overall funnel and one funnel per name.
    let steps = |f: &ticks_query::Funnel| f.steps.iter().map(|s| s.count).collect::<Vec<_>>();
    assert_eq!(steps(&r.funnel), funnel_counts(&entries).to_vec());
    let by_name = count_by(&entries, |e| format!("{:?}", text(&e.name)));
    assert!(!r.funnels.is_empty());
    for f in &r.funnels {
        let of_name: Vec<&Entry> = entries
            .iter()
            .copied()
            .filter(|e| text(&e.name) == f.key)
            .collect();
        assert_eq!(
            steps(f),
            funnel_counts(&of_name).to_vec(),
            "funnel {:?}",
            f.key
        );
        assert!(by_name.contains_key(&format!("{:?}", f.key)));
        let attempted = f.steps[0].count;
        for s in &f.steps {
            let expected = if attempted == 0 {
                0.0
            } else {
                s.count as f64 / attempted as f64
            };
            assert!((s.of_attempted - expected).abs() < 1e-12);
            assert_eq!(
                drilled(pairs, &s.drill),
                s.count,
                "drill of {} {:?}",
                s.step,
                f.key
            );
        }
        let failed = of_name
            .iter()
            .filter(|e| e.direction == Direction::Outbound && e.status == Status::Failed)
            .count() as u64;
        assert_eq!(f.failed, failed);
    }
    for s in &r.funnel.steps {
        assert_eq!(drilled(pairs, &s.drill), s.count, "drill of {}", s.step);
    }

    // Failure reasons.
    let failing: Vec<&Entry> = entries
        .iter()
        .copied()
        .filter(|e| {
            e.direction == Direction::Outbound
                && matches!(
                    e.status,
                    Status::Failed | Status::Rejected | Status::NoResponse
                )
        })
        .collect();
    let reasons = count_by(&failing, |e| e.error_code);
    assert!(!r.failure_reasons.is_empty());
    for g in &r.failure_reasons {
        let code = match g.key {
            FieldValue::Int(c) => Some(c),
            _ => None,
        };
        assert_eq!(Some(&g.count), reasons.get(&code), "reason {code:?}");
        if code.is_some() {
            assert_eq!(
                drilled(pairs, &g.drill),
                g.count,
                "drill of reason {code:?}"
            );
        }
    }

    // Inbound.
    let inbound: Vec<&Entry> = entries
        .iter()
        .copied()
        .filter(|e| e.direction == Direction::Inbound)
        .collect();
    let clicks = inbound.iter().filter(|e| e.button.is_some()).count() as u64;
    let linked_replies = inbound
        .iter()
        .filter(|e| e.button.is_none() && e.name.is_some())
        .count() as u64;
    assert_eq!(r.inbound.total, inbound.len() as u64);
    assert_eq!(r.inbound.clicks, clicks);
    assert_eq!(r.inbound.replies, linked_replies);
    assert!(r.inbound.clicks > 0 && r.inbound.replies > 0);
    let how = |of: &[&&Entry], a: Attribution| {
        of.iter().filter(|e| e.attribution == Some(a)).count() as u64
    };
    let all: Vec<&&Entry> = inbound.iter().collect();
    assert_eq!(r.inbound.quoted, how(&all, Attribution::Quoted));
    assert_eq!(r.inbound.inferred, how(&all, Attribution::Inferred));
    for c in &r.inbound.by_campaign {
        let of: Vec<&&Entry> = inbound.iter().filter(|e| text(&e.name) == c.key).collect();
        let clicks = of.iter().filter(|e| e.button.is_some()).count() as u64;
        assert_eq!((c.replies, c.clicks), (of.len() as u64 - clicks, clicks));
        assert_eq!(
            (c.quoted, c.inferred),
            (
                how(&of, Attribution::Quoted),
                how(&of, Attribution::Inferred)
            ),
            "{:?}",
            c.key
        );
        assert_eq!(drilled(pairs, &c.drill), c.replies + c.clicks);
    }
    let by_button = count_by(&inbound, |e| e.button.clone());
    assert!(!r.inbound.by_button.is_empty());
    for b in &r.inbound.by_button {
        let FieldValue::Text(button) = &b.key else {
            panic!("a button is text")
        };
        assert_eq!(Some(&b.count), by_button.get(&Some(button.clone())));
        assert_eq!(drilled(pairs, &b.drill), b.count);
    }

    // Conversations.
    let by_type = count_by(&entries, |e| e.conversation_type.clone());
    for g in &r.conversations.by_type {
        assert_eq!(
            Some(&g.count),
            by_type.get(&match &g.key {
                FieldValue::Text(t) => Some(t.clone()),
                _ => None,
            })
        );
    }
}

#[test]
fn every_figure_of_the_whole_store_report_matches_a_brute_force_count() {
    check_report(&[]);
}

#[test]
fn every_figure_of_a_filtered_report_matches_a_brute_force_count() {
    check_report(&[
        ("category", "marketing_campaign,template_bot"),
        ("from", "2025-01-05"),
        ("to", "2025-01-20"),
        ("tz", "America/Sao_Paulo"),
        ("funnel_by", "name"),
    ]);
}

fn check_series(pairs: &[(&str, &str)], interval: Interval) {
    for plan in [Plan::Bitmaps, Plan::Scan] {
        check_series_with(pairs, interval, plan);
    }
}

fn check_series_with(pairs: &[(&str, &str)], interval: Interval, plan: Plan) {
    let (r, entries) = run(pairs, plan);
    assert_eq!(r.interval, interval);
    assert!(!r.series.is_empty());
    // Buckets tile time without gaps and together hold every entry once.
    for w in r.series.windows(2) {
        assert_eq!(w[0].to_ms, w[1].from_ms, "no gap after {}", w[0].label);
    }
    assert_eq!(r.series.iter().map(|b| b.total).sum::<u64>(), r.total);
    for b in &r.series {
        let inside: Vec<&Entry> = entries
            .iter()
            .copied()
            .filter(|e| (b.from_ms..b.to_ms).contains(&e.recorded_ms))
            .collect();
        assert_eq!(b.total, inside.len() as u64, "bucket {}", b.label);
        let statuses = count_by(&inside, |e| e.status.as_str());
        assert_eq!(
            b.by_status
                .iter()
                .map(|(k, v)| (*k, *v))
                .collect::<Vec<_>>(),
            statuses.into_iter().collect::<Vec<_>>()
        );
        let with_code: Vec<&&Entry> = inside
            .iter()
            .filter(|e| e.response_code.is_some())
            .collect();
        let n429 = with_code
            .iter()
            .filter(|e| e.response_code == Some(429))
            .count();
        let n5xx = with_code
            .iter()
            .filter(|e| e.response_code.is_some_and(|c| c >= 500))
            .count();
        let rate = |n: usize| {
            if with_code.is_empty() {
                0.0
            } else {
                n as f64 / with_code.len() as f64
            }
        };
        assert!(
            (b.rate_429 - rate(n429)).abs() < 1e-12,
            "429 rate of {}",
            b.label
        );
        assert!(
            (b.rate_5xx - rate(n5xx)).abs() < 1e-12,
            "5xx rate of {}",
            b.label
        );
        let outbound: Vec<&&Entry> = inside
            .iter()
            .filter(|e| e.direction == Direction::Outbound)
            .collect();
        let failing = outbound
            .iter()
            .filter(|e| {
                matches!(
                    e.status,
                    Status::Failed | Status::Rejected | Status::NoResponse
                )
            })
            .count();
        assert_eq!(b.outbound, outbound.len() as u64);
        let expected = if outbound.is_empty() {
            0.0
        } else {
            failing as f64 / outbound.len() as f64
        };
        assert!((b.failure_rate - expected).abs() < 1e-12);
    }
}

#[test]
fn the_daily_series_in_a_whole_hour_zone_matches_a_brute_force_count() {
    check_series(&[("tz", "America/Sao_Paulo")], Interval::Day);
}

#[test]
fn the_daily_series_in_a_half_hour_zone_matches_a_brute_force_count() {
    check_series(&[("tz", "Asia/Kolkata")], Interval::Day);
}

#[test]
fn the_hourly_series_of_a_range_matches_a_brute_force_count() {
    check_series(
        &[
            ("interval", "hour"),
            ("from", "2025-01-10T00:00:00Z"),
            ("to", "2025-01-12T00:00:00Z"),
            ("tz", "Asia/Kolkata"),
        ],
        Interval::Hour,
    );
}

#[test]
fn report_options_are_validated_with_the_parameter_named() {
    for (k, v) in [
        ("interval", "week"),
        ("funnel_by", "status"),
        ("top", "0"),
        ("sections", "series,pie"),
    ] {
        let err = ReportOptions::from_params(&params(&[(k, v)])).expect_err("invalid");
        assert!(err.to_string().contains(k), "{err}");
    }
}

#[test]
fn a_report_limited_to_some_sections_leaves_the_others_empty_and_keeps_its_figures() {
    for plan in [Plan::Bitmaps, Plan::Scan] {
        let pairs = [("tz", "America/Sao_Paulo")];
        let (full, _) = run(&pairs, plan);
        let (series, _) = run(&[pairs[0], ("sections", "series")], plan);
        assert_eq!(
            serde_json::to_value(&full.series).expect("json"),
            serde_json::to_value(&series.series).expect("json")
        );
        assert_eq!(series.total, full.total);
        assert!(series.counts.is_empty() && series.funnels.is_empty());
        assert_eq!(series.funnel.steps[0].count, 0);
        assert_eq!(series.inbound.total, 0);
        let (funnels, _) = run(&[pairs[0], ("sections", "funnels,inbound")], plan);
        assert!(funnels.series.is_empty());
        assert_eq!(
            serde_json::to_value(&full.funnels).expect("json"),
            serde_json::to_value(&funnels.funnels).expect("json")
        );
        assert_eq!(
            full.inbound.by_campaign.len(),
            funnels.inbound.by_campaign.len()
        );
    }
}

#[test]
fn every_templates_health_matches_a_brute_force_count() {
    for pairs in [
        vec![("sections", "templates"), ("top", "100")],
        vec![
            ("sections", "templates"),
            ("top", "100"),
            ("category", "template_bot"),
        ],
    ] {
        let (r, entries) = run(&pairs, Plan::Scan);
        assert!(r.templates.len() >= 3, "{:?}", r.templates.len());
        assert!(r.counts.is_empty(), "only the section asked for");
        for h in &r.templates {
            let theirs = |e: &&&Entry| {
                e.template.as_deref() == Some(h.template.as_str())
                    && e.template_language == h.language
            };
            let sent: Vec<&&Entry> = entries
                .iter()
                .filter(|e| e.direction == Direction::Outbound)
                .filter(theirs)
                .collect();
            let what = format!("{} {:?}", h.template, h.language);
            assert_eq!(h.sent, sent.len() as u64, "{what}");
            let n = |f: &dyn Fn(&Entry) -> bool| sent.iter().filter(|e| f(e)).count() as u64;
            assert_eq!(h.delivered, n(&|e| reached(e) >= 2), "{what}");
            assert_eq!(h.read, n(&|e| reached(e) >= 3), "{what}");
            let failed = n(&|e| {
                matches!(
                    e.status,
                    Status::Failed | Status::Rejected | Status::NoResponse
                )
            });
            assert_eq!(h.failed, failed, "{what}");
            assert!(h.failure_reasons.iter().map(|r| r.count).sum::<u64>() <= failed);
            let answers: Vec<&&Entry> = entries
                .iter()
                .filter(|e| e.direction == Direction::Inbound && e.attribution.is_some())
                .filter(theirs)
                .collect();
            let a = |f: &dyn Fn(&Entry) -> bool| answers.iter().filter(|e| f(e)).count() as u64;
            assert_eq!(h.button_clicks, a(&|e| e.button.is_some()), "{what}");
            assert_eq!(
                h.replies_quoted,
                a(&|e| e.button.is_none() && e.attribution == Some(Attribution::Quoted)),
                "{what}"
            );
            assert_eq!(
                h.replies_inferred,
                a(&|e| e.button.is_none() && e.attribution == Some(Attribution::Inferred)),
                "{what}"
            );
            let series_sent: u64 = h.series.iter().map(|b| b.sent).sum();
            assert_eq!(series_sent, h.sent, "{what}");
            assert_eq!(drilled(&pairs, &h.drill), h.sent, "{what}");
        }
    }
}
