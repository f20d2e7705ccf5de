//! The query layer over a real store filled with generated traffic.
//!
//! Table of contents:
//! - bitmap filters agree with a linear scan of every entry (property test)
//! - sorting, offset paging and cursors
//! - free text: words, phrases, prefixes, phones and wamids as typed
//! - group-by counts agree with a brute-force count
//! - the derived state rebuilt from the log gives identical answers
//! - duplicates, late sends, status rules end to end

use proptest::prelude::*;
use std::collections::BTreeMap;
use std::io::BufReader;
use std::sync::OnceLock;
use ticks_engine::{Entry, EntryId, Source, Store};
use ticks_ingest::generate::{Generator, GeneratorOptions};
use ticks_query::{search, stats, GroupBy, LogQuery};

/// A store configuration that seals all but the newest 8 rows in
/// compressed blocks, so that a small test store reads its rows the way a
/// large one does.
fn sealing(dir: impl Into<std::path::PathBuf>) -> ticks_engine::Config {
    let mut config = ticks_engine::Config::new(dir);
    config.unsealed_rows = 8;
    config
}

const MESSAGES: u64 = 3000;

fn ndjson(messages: u64, seed: u64) -> Vec<u8> {
    let mut opts = GeneratorOptions::new(messages);
    opts.seed = seed;
    let mut out = Vec::new();
    for line in Generator::new(opts) {
        out.extend_from_slice(&line);
        out.push(b'\n');
    }
    out
}

fn import(store: &Store, data: &[u8]) -> ticks_ingest::ImportReport {
    ticks_ingest::import(
        store,
        BufReader::new(data),
        &ticks_ingest::ImportOptions::default(),
    )
    .expect("import")
}

fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn query(pairs: &[(&str, &str)]) -> LogQuery {
    LogQuery::from_params(&params(pairs), &[]).expect("valid query")
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    all: Vec<Entry>,
}

/// One store shared by the read-only tests: building it is the slow part.
fn shared() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(sealing(dir.path())).expect("open");
        let report = import(&store, &ndjson(MESSAGES, 7));
        assert_eq!(report.rejected, 0, "{:?}", report.rejections.first());
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

/// What a linear scan says an entry's value of a filter parameter is.
fn value_of(e: &Entry, param: &str) -> String {
    let s = |o: &Option<String>| o.clone().unwrap_or_else(|| "none".into());
    match param {
        "category" => s(&e.category),
        "name" => s(&e.name),
        "template" => s(&e.template),
        "recipient_type" => s(&e.recipient_type),
        "status" => e.status.as_str().into(),
        "direction" => e.direction.as_str().into(),
        "response_code" => e.response_code.map_or("none".into(), |c| c.to_string()),
        "error_code" => e.error_code.map_or("none".into(), |c| c.to_string()),
        "user" => s(&e.user),
        "subaccount" => s(&e.subaccount),
        "content_type" => s(&e.content_type),
        "conversation_type" => s(&e.conversation_type),
        "phone_number_id" => s(&e.phone_number_id),
        "session" => e.session.map_or("none".into(), |x| x.as_str().into()),
        other => panic!("no scan for {other}"),
    }
}

const PARAMS: &[&str] = &[
    "category",
    "name",
    "template",
    "recipient_type",
    "status",
    "direction",
    "response_code",
    "error_code",
    "user",
    "subaccount",
    "content_type",
    "conversation_type",
    "phone_number_id",
    "session",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Any mix of filters (OR within one, AND across, negations) and a date
    /// range selects exactly what a scan of every entry selects.
    #[test]
    fn bitmap_filters_agree_with_a_linear_scan(
        picks in proptest::collection::vec((0usize..PARAMS.len(), 0usize..1000, any::<bool>()), 0..4),
        extra in 0usize..1000,
        range in proptest::option::of((0i64..30, 1i64..20)),
    ) {
        let f = shared();
        let mut pairs: Vec<(String, String)> = Vec::new();
        let mut wanted: BTreeMap<String, (Vec<String>, Vec<String>)> = BTreeMap::new();
        for (pi, vi, negate) in &picks {
            let param = PARAMS[*pi];
            // Take real values from the data so filters match something.
            let value = value_of(&f.all[(vi * 7919 + extra) % f.all.len()], param);
            let value2 = value_of(&f.all[(vi * 104729 + 3) % f.all.len()], param);
            let key = if *negate { format!("-{param}") } else { param.to_string() };
            pairs.push((key.clone(), value.clone()));
            pairs.push((key, value2.clone()));
            let w = wanted.entry(param.to_string()).or_default();
            if *negate { w.1.extend([value, value2]); } else { w.0.extend([value, value2]); }
        }
        let day = 86_400_000i64;
        let start = 1_735_689_600_000i64;
        let bounds = range.map(|(d, len)| (start + d * day + 3_723_000, start + (d + len) * day - 1_000));
        if let Some((from, to)) = bounds {
            pairs.push(("from".into(), from.to_string()));
            pairs.push(("to".into(), to.to_string()));
        }
        pairs.push(("limit".into(), "1000".into()));
        let q = LogQuery::from_params(&pairs, &[]).expect("valid");
        let page = search(&f.store, &q).expect("search");
        let expected: Vec<&Entry> = f.all.iter().filter(|e| {
            wanted.iter().all(|(param, (inc, exc))| {
                let v = value_of(e, param);
                (inc.is_empty() || inc.contains(&v)) && !exc.contains(&v)
            }) && bounds.is_none_or(|(from, to)| e.recorded_ms >= from && e.recorded_ms < to)
        }).collect();
        prop_assert_eq!(page.total as usize, expected.len(), "query {:?}", pairs);
        // Newest first, ties by id.
        let mut sorted: Vec<(i64, u32)> = expected.iter().map(|e| (e.recorded_ms, e.id.0)).collect();
        sorted.sort_by(|a, b| b.cmp(a));
        let got: Vec<(i64, u32)> = page.entries.iter().map(|e| (e.recorded_ms, e.id.0)).collect();
        prop_assert_eq!(&got[..], &sorted[..got.len()]);
    }
}

#[test]
fn every_message_is_one_entry_and_replies_are_entries_of_their_own() {
    let f = shared();
    // Every message sent through the API is one entry (messages the
    // business sent from the app are entries of their own, source=app).
    let outbound = f
        .all
        .iter()
        .filter(|e| {
            e.direction == ticks_engine::Direction::Outbound
                && e.source == Some(ticks_engine::Origin::Api)
        })
        .count();
    assert_eq!(outbound as u64, MESSAGES);
    let inbound: Vec<_> = f
        .all
        .iter()
        .filter(|e| e.direction == ticks_engine::Direction::Inbound)
        .collect();
    assert!(!inbound.is_empty());
    assert!(
        inbound.iter().all(|e| e.in_reply_to.is_some()),
        "generated replies all answer a campaign message"
    );
    let replies: u32 = f.all.iter().map(|e| e.replies + e.clicks).sum();
    assert_eq!(replies as usize, inbound.len());
}

#[test]
fn sorting_by_any_column_is_a_total_order_and_pages_tile_it() {
    let f = shared();
    for sort in [
        "-recorded_at",
        "recorded_at",
        "name",
        "-response_code",
        "status",
        "phone",
        "-id",
        "template",
    ] {
        let mut seen = Vec::new();
        for page_no in 0..4 {
            let offset = (page_no * 50).to_string();
            let page = search(
                &f.store,
                &query(&[
                    ("sort", sort),
                    ("limit", "50"),
                    ("offset", &offset),
                    ("direction", "outbound"),
                ]),
            )
            .expect("page");
            seen.extend(page.entries.iter().map(|e| e.id.0));
        }
        let full = search(
            &f.store,
            &query(&[("sort", sort), ("limit", "200"), ("direction", "outbound")]),
        )
        .expect("page");
        let expected: Vec<u32> = full.entries.iter().map(|e| e.id.0).collect();
        assert_eq!(
            seen, expected,
            "offset pages of sort={sort} tile the first 200 rows"
        );
        let mut uniq = seen.clone();
        uniq.sort_unstable();
        uniq.dedup();
        assert_eq!(uniq.len(), seen.len(), "no row twice for sort={sort}");
    }
    let by_name = search(
        &f.store,
        &query(&[
            ("sort", "name"),
            ("limit", "1000"),
            ("direction", "outbound"),
        ]),
    )
    .expect("page");
    let names: Vec<String> = by_name
        .entries
        .iter()
        .map(|e| e.name.clone().unwrap_or_default())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
}

#[test]
fn cursor_pages_cover_everything_once_for_several_sorts() {
    let f = shared();
    for sort in ["-recorded_at", "recorded_at", "-status", "phone", "id"] {
        let mut cursor: Option<String> = None;
        let mut ids = Vec::new();
        loop {
            let mut p = vec![("sort", sort), ("limit", "333")];
            let c;
            if let Some(cur) = &cursor {
                c = cur.clone();
                p.push(("cursor", &c));
            }
            let page = search(&f.store, &query(&p)).expect("page");
            ids.extend(page.entries.iter().map(|e| e.id.0));
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let mut uniq = ids.clone();
        uniq.sort_unstable();
        uniq.dedup();
        assert_eq!(uniq.len(), ids.len(), "sort={sort}: no duplicates");
        assert_eq!(ids.len(), f.all.len(), "sort={sort}: every entry once");
    }
}

#[test]
fn a_cursor_stays_stable_while_new_entries_arrive() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(sealing(dir.path())).expect("open");
    import(&store, &ndjson(300, 1));
    let first = search(&store, &query(&[("limit", "100")])).expect("page");
    let cursor = first.next_cursor.clone().expect("more pages");
    let second_before =
        search(&store, &query(&[("limit", "100"), ("cursor", &cursor)])).expect("page");
    // New, newer traffic arrives between the two page loads.
    let mut opts = GeneratorOptions::new(100);
    opts.seed = 99;
    opts.start_ms += 40 * 86_400_000;
    let newer: Vec<u8> = Generator::new(opts)
        .flat_map(|mut l| {
            l.push(b'\n');
            l
        })
        .collect();
    import(&store, &newer);
    let second_after =
        search(&store, &query(&[("limit", "100"), ("cursor", &cursor)])).expect("page");
    let ids = |p: &ticks_query::Page| p.entries.iter().map(|e| e.id.0).collect::<Vec<_>>();
    assert_eq!(ids(&second_before), ids(&second_after));
    assert!(
        second_after.total > second_before.total,
        "the total does grow"
    );
    let bad = LogQuery::from_params(&params(&[("cursor", &cursor), ("sort", "name")]), &[])
        .expect("parses");
    assert!(
        search(&store, &bad).is_err(),
        "a cursor of another sort is refused"
    );
    store.close().expect("close");
}

#[test]
fn free_text_finds_words_phrases_prefixes_phones_and_wamids() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(sealing(dir.path())).expect("open");
    let data = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/data/send_template_accepted.json"
    ))
    .expect("fixture");
    let line =
        serde_json::to_vec(&serde_json::from_slice::<serde_json::Value>(&data).expect("json"))
            .expect("json");
    let mut body = line.clone();
    body.push(b'\n');
    let text = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/data/send_text_accepted.json"
    ))
    .expect("fixture");
    body.extend(
        serde_json::to_vec(&serde_json::from_slice::<serde_json::Value>(&text).expect("json"))
            .expect("json"),
    );
    body.push(b'\n');
    import(&store, &body);
    store.flush_text().expect("flush");
    let hits = |t: &str| {
        search(&store, &query(&[("text", t)]))
            .expect("search")
            .total
    };
    assert_eq!(hits("maria"), 1, "a template parameter value, any case");
    assert_eq!(
        hits("\"black friday\""),
        1,
        "a phrase from the campaign name"
    );
    assert_eq!(hits("\"friday black\""), 0, "phrases keep word order");
    assert_eq!(hits("promo_black*"), 1, "a prefix");
    assert_eq!(hits("entreg*"), 1, "a prefix inside message text");
    assert_eq!(hits("+55 (11) 98765-4321"), 1, "a phone number as typed");
    assert_eq!(hits("5511987654321"), 1, "the same number as digits");
    assert_eq!(
        hits("wamid.HBgNNTUxMTk4NzY1NDMyMRUCABEYEjA3QUY1RjQ3QkM2RjlBMDBBNAA="),
        1,
        "a wamid as pasted"
    );
    assert_eq!(hits("crm-order-778"), 1, "a correlation id");
    assert_eq!(hits("maria entrega"), 0, "every word must match");
    assert_eq!(hits("nothing-like-this"), 0);
    let phone = search(&store, &query(&[("phone", "+55 11 98765-4321")])).expect("search");
    assert_eq!(phone.total, 1, "the phone filter normalises as typed");
    store.close().expect("close");
}

#[test]
fn group_by_counts_agree_with_a_brute_force_count() {
    let f = shared();
    for (group, param) in [
        ("status", "status"),
        ("response_code", "response_code"),
        ("name", "name"),
        ("error_code", "error_code"),
        ("category", "category"),
    ] {
        let s = stats(
            &f.store,
            &query(&[("direction", "outbound"), ("source", "api")]),
            GroupBy::parse(group).expect("group"),
        )
        .expect("stats");
        let mut brute: BTreeMap<String, u64> = BTreeMap::new();
        for e in f.all.iter().filter(|e| {
            e.direction == ticks_engine::Direction::Outbound
                && e.source == Some(ticks_engine::Origin::Api)
        }) {
            *brute.entry(value_of(e, param)).or_default() += 1;
        }
        let got: BTreeMap<String, u64> = s
            .groups
            .iter()
            .map(|g| {
                let k = match &g.key {
                    ticks_engine::FieldValue::None => "none".to_string(),
                    ticks_engine::FieldValue::Int(i) => i.to_string(),
                    ticks_engine::FieldValue::Text(t) => t.clone(),
                };
                (k, g.count)
            })
            .collect();
        assert_eq!(got, brute, "group_by={group}");
        assert_eq!(s.total, MESSAGES);
    }
    for tz in ["UTC", "America/Sao_Paulo", "Asia/Kolkata"] {
        let s = stats(&f.store, &query(&[("tz", tz)]), GroupBy::Day).expect("stats");
        let zone = ticks_query::parse_tz(tz).expect("tz");
        let mut brute: BTreeMap<String, u64> = BTreeMap::new();
        for e in &f.all {
            let d = jiff::Timestamp::from_millisecond(e.recorded_ms)
                .expect("ts")
                .to_zoned(zone.clone())
                .date();
            *brute.entry(d.to_string()).or_default() += 1;
        }
        let got: BTreeMap<String, u64> = s
            .groups
            .iter()
            .map(|g| {
                (
                    match &g.key {
                        ticks_engine::FieldValue::Text(t) => t.clone(),
                        other => format!("{other:?}"),
                    },
                    g.count,
                )
            })
            .collect();
        assert_eq!(got, brute, "days in {tz}");
    }
}

#[test]
fn dropping_every_derived_structure_and_reopening_gives_identical_answers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let queries: Vec<Vec<(&str, &str)>> = vec![
        vec![("limit", "1000")],
        vec![
            ("status", "read"),
            ("status", "delivered"),
            ("sort", "name"),
        ],
        vec![("-response_code", "200"), ("sort", "-recorded_at")],
        vec![("text", "quero")],
        vec![("session", "open")],
    ];
    let answers = |store: &Store| -> Vec<(u64, Vec<Entry>)> {
        store.flush_text().expect("flush");
        queries
            .iter()
            .map(|q| {
                let p = search(store, &query(q)).expect("search");
                (p.total, p.entries)
            })
            .collect()
    };
    let before = {
        let store = Store::open(sealing(dir.path())).expect("open");
        import(&store, &ndjson(800, 3));
        // Purged entries too: their ids stay taken, their values must not
        // come back from any saved index.
        let doomed: roaring::RoaringBitmap = store.snapshot().live().iter().step_by(9).collect();
        store
            .purge(&doomed, "test", "every ninth entry", None, true)
            .expect("purge");
        let a = answers(&store);
        store.close().expect("close");
        a
    };
    ticks_engine::drop_derived(dir.path()).expect("drop");
    let store = Store::open(sealing(dir.path())).expect("reopen");
    let from = store.stats().expect("stats").derived_from;
    assert_eq!(from, ticks_engine::DerivedFrom::Log);
    assert_eq!(answers(&store), before, "rebuilt from the log alone");
    assert!(store.check().expect("check").is_empty());
    store.close().expect("close");
    drop(store);
    // And from the checkpoint written at close, which holds the bitmaps and
    // key columns: the same answers, and they agree with a replay of the
    // log, also after more traffic lands on the loaded indexes.
    let store = Store::open(sealing(dir.path())).expect("reopen");
    let from = store.stats().expect("stats").derived_from;
    assert_eq!(from, ticks_engine::DerivedFrom::Checkpoint);
    assert_eq!(answers(&store), before, "from the checkpoint");
    assert_eq!(store.check().expect("check"), Vec::<String>::new());
    import(&store, &ndjson(300, 4));
    assert_eq!(
        store.check().expect("check"),
        Vec::<String>::new(),
        "after more traffic"
    );
    store.close().expect("close");
}

#[test]
fn a_purge_takes_exactly_its_entries_out_of_every_filters_answers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(sealing(dir.path())).expect("open");
    import(&store, &ndjson(150, 5));
    let filters: Vec<Vec<(&str, &str)>> = vec![
        vec![("status", "failed")],
        vec![("status", "read")],
        vec![("direction", "inbound")],
        vec![("direction", "outbound"), ("status", "delivered")],
        vec![("-status", "read")],
        vec![("response_code", "200")],
    ];
    let ids_of = |store: &Store, pairs: &[(&str, &str)]| -> (u64, Vec<u32>) {
        let mut pairs = pairs.to_vec();
        pairs.push(("limit", "1000"));
        let page = search(store, &query(&pairs)).expect("search");
        let mut ids: Vec<u32> = page.entries.iter().map(|e| e.id.0).collect();
        assert_eq!(
            ids.len() as u64,
            page.total,
            "{pairs:?}: one page holds them all"
        );
        ids.sort_unstable();
        (page.total, ids)
    };
    let before: Vec<(u64, Vec<u32>)> = filters.iter().map(|f| ids_of(&store, f)).collect();
    assert!(before.iter().all(|(total, _)| *total > 0), "{before:?}");
    // Every fifth entry, and one of each filter's at least.
    let mut doomed: roaring::RoaringBitmap = store.snapshot().live().iter().step_by(5).collect();
    doomed.extend(before.iter().filter_map(|(_, ids)| ids.first().copied()));
    store
        .purge(&doomed, "test", "every fifth entry", None, true)
        .expect("purge");
    for (f, (_, ids)) in filters.iter().zip(&before) {
        let left: Vec<u32> = ids
            .iter()
            .copied()
            .filter(|id| !doomed.contains(*id))
            .collect();
        assert!(
            left.len() < ids.len(),
            "{f:?}: the purge named some of them"
        );
        assert_eq!(ids_of(&store, f), (left.len() as u64, left), "{f:?}");
    }
    store.close().expect("close");
}

#[test]
fn importing_the_same_file_twice_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(sealing(dir.path())).expect("open");
    let data = ndjson(500, 11);
    let first = import(&store, &data);
    let stats_before = store.stats().expect("stats");
    let second = import(&store, &data);
    assert!(first.duplicates > 0, "the generator repeats some webhooks");
    assert_eq!(second.stored, 0);
    assert_eq!(second.duplicates, second.lines);
    let stats_after = store.stats().expect("stats");
    assert_eq!(stats_before.log_records, stats_after.log_records);
    assert_eq!(stats_before.live_entries, stats_after.live_entries);
    store.close().expect("close");
}

#[test]
fn bad_lines_are_counted_reported_with_line_numbers_and_kept_in_the_rejects_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(sealing(dir.path())).expect("open");
    let good = ndjson(20, 5);
    let mut lines: Vec<&[u8]> = good
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let n_good = lines.len() as u64;
    lines.insert(3, b"{not json");
    lines.insert(
        7,
        br#"{"recorded_at":"2025-01-01T00:00:00Z","request":{},"response_code":"x"}"#,
    );
    lines.push(b"");
    let data = lines.join(&b'\n');
    let rejects = dir.path().join("rejects.ndjson");
    let report = ticks_ingest::import(
        &store,
        BufReader::new(&data[..]),
        &ticks_ingest::ImportOptions {
            rejects: Some(rejects.clone()),
            ..Default::default()
        },
    )
    .expect("import");
    assert_eq!(report.rejected, 2);
    assert_eq!(report.stored + report.duplicates, n_good);
    assert_eq!(
        report.rejections.iter().map(|r| r.line).collect::<Vec<_>>(),
        vec![4, 8]
    );
    assert!(report.rejections[1].reason.contains("response_code"));
    let kept = std::fs::read_to_string(rejects).expect("rejects file");
    assert_eq!(kept.lines().count(), 2);
    assert!(kept.starts_with("{not json"));
    store.close().expect("close");
}

#[test]
fn a_status_before_its_send_is_queryable_and_the_send_fills_the_same_entry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(sealing(dir.path())).expect("open");
    let fixture = |n: &str| {
        std::fs::read(format!("{}/../tests/data/{n}", env!("CARGO_MANIFEST_DIR"))).expect("fixture")
    };
    let delivered =
        ticks_ingest::webhook_input(fixture("webhook_status_delivered.json"), Source::Webhook, 0)
            .expect("parse");
    store.append_one(delivered).expect("append");
    let page = search(&store, &query(&[("status", "delivered")])).expect("search");
    assert_eq!(page.total, 1);
    let e = &page.entries[0];
    assert!(!e.has_send, "known only from webhooks");
    assert_eq!(e.direction, ticks_engine::Direction::Outbound);
    let send = ticks_ingest::send_input(fixture("send_template_accepted.json"), Source::SendApi, 0)
        .expect("parse");
    let outcome = store.append_one(send).expect("append");
    assert_eq!(outcome.entries, vec![e.id], "attached to the same entry");
    let page = search(&store, &query(&[("name", "Black Friday 2025")])).expect("search");
    assert_eq!(page.total, 1);
    assert_eq!(
        page.entries[0].status,
        ticks_engine::Status::Delivered,
        "the status is kept, not reset by the late send"
    );
    assert_eq!(
        page.entries[0].template.as_deref(),
        Some("promo_black_friday")
    );
    // A failed status after delivery does not move it back.
    let failed =
        ticks_ingest::webhook_input(fixture("webhook_status_failed.json"), Source::Webhook, 0)
            .expect("parse");
    store.append_one(failed).expect("append");
    let read = ticks_ingest::webhook_input(fixture("webhook_status_read.json"), Source::Webhook, 0)
        .expect("parse");
    store.append_one(read.clone()).expect("append");
    assert!(store.append_one(read).expect("append").is_duplicate());
    let timeline = store
        .timeline("wamid.HBgNNTUxMTk4NzY1NDMyMRUCABEYEjA3QUY1RjQ3QkM2RjlBMDBBNAA=")
        .expect("timeline")
        .expect("exists");
    assert_eq!(timeline.entry.status, ticks_engine::Status::Read);
    let kinds: Vec<_> = timeline
        .items
        .iter()
        .map(|i| i.status.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        kinds,
        vec!["accepted", "delivered", "failed", "read"],
        "every event with its own time, in time order"
    );
    let detail = store.entry_detail(e.id).expect("detail").expect("exists");
    assert_eq!(
        detail.inputs.len(),
        4,
        "each stored input, not the duplicate"
    );
    assert_eq!(
        detail.inputs[1].raw,
        fixture("send_template_accepted.json"),
        "raw bytes kept exactly"
    );
    store.close().expect("close");
}

/// Free text searched only within the candidates (the path a query takes
/// when its other filters leave few) answers exactly what searching
/// everywhere and intersecting answers: over several index segments, with
/// purged entries' documents deleted, for every kind of text query.
#[test]
fn text_within_candidates_equals_text_everywhere_intersected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(sealing(dir.path())).expect("open");
    for seed in [21, 22, 23] {
        import(&store, &ndjson(400, seed));
        store.flush_text().expect("flush"); // one segment per batch, at least
    }
    let doomed: roaring::RoaringBitmap = store.snapshot().live().iter().step_by(7).collect();
    store
        .purge(&doomed, "test", "every seventh entry", None, true)
        .expect("purge");
    let live = store.snapshot().live().clone();
    let every_third: roaring::RoaringBitmap = live.iter().step_by(3).collect();
    let a_range: roaring::RoaringBitmap = live.iter().skip(200).take(500).collect();
    let one: roaring::RoaringBitmap = live.iter().skip(10).take(1).collect();
    // Few candidates spread over the whole index: common words seek to
    // each (the others read their postings in the candidates' span).
    let sparse: roaring::RoaringBitmap = live.iter().step_by(150).collect();
    let purged_too = &every_third | &doomed;
    let texts = [
        "quero",
        "entrega",
        "maria",
        "\"black friday\"",
        "promo*",
        "prazo",
        "entreg*",
        "nothing-like-this",
    ];
    let mut nonempty = 0;
    // Twice: the first searches find the merged segments without their
    // entry -> documents maps and read each segment's matches instead; the
    // maps are built meanwhile on another thread (microseconds at this
    // size), so after a pause the second pass takes the map path.
    for pass in 0..2 {
        if pass == 1 {
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
        for text in texts {
            let everywhere = store.text_search(text).expect("text");
            for within in [&live, &every_third, &a_range, &one, &sparse, &purged_too] {
                let expected = &(&everywhere & within) - &doomed;
                let got = store.text_search_within(text, within).expect("within");
                assert_eq!(
                    got,
                    expected,
                    "{text} within {} candidates (pass {pass})",
                    within.len()
                );
                nonempty += usize::from(!expected.is_empty());
            }
        }
    }
    assert!(nonempty > 20, "the comparison must cover real matches");
    // And through the query layer: a narrow filter takes the candidate path.
    let narrow = query(&[("name", "Black Friday 2025"), ("text", "quero")]);
    let page = search(&store, &narrow).expect("search");
    let by_scan = store.text_search("quero").expect("text")
        & ticks_query::matching(&store, &query(&[("name", "Black Friday 2025")])).expect("m");
    assert_eq!(page.total, by_scan.len());
    assert!(
        page.total > 0,
        "the campaign's messages have replies saying quero"
    );
    store.close().expect("close");
}

#[test]
fn engagement_replied_means_at_least_one_reply_and_clicked_at_least_one_click() {
    // A template send; a text reply and a button click that both quote it;
    // and a text send that nobody answered.
    let fixture = |name: &str| {
        std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../tests/data")
                .join(name),
        )
        .expect("fixture")
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(sealing(dir.path())).expect("open");
    for (name, send) in [
        ("send_template_accepted.json", true),
        ("send_text_accepted.json", true),
        ("webhook_inbound_text.json", false),
        ("webhook_inbound_button.json", false),
    ] {
        let input = if send {
            ticks_ingest::send_input(fixture(name), Source::SendApi, 0)
        } else {
            ticks_ingest::webhook_input(fixture(name), Source::Webhook, 0)
        }
        .expect(name);
        store.append_one(input).expect("append");
    }
    let wamids = |q: &[(&str, &str)]| {
        let mut w: Vec<String> = search(&store, &query(q))
            .expect("search")
            .entries
            .into_iter()
            .filter_map(|e| e.wamid)
            .collect();
        w.sort();
        w
    };
    let template = "wamid.HBgNNTUxMTk4NzY1NDMyMRUCABEYEjA3QUY1RjQ3QkM2RjlBMDBBNAA=";
    let replied_and_clicked = vec![template.to_string()];
    assert_eq!(
        wamids(&[("engagement", "replied_and_clicked")]),
        replied_and_clicked
    );
    assert_eq!(
        wamids(&[("engagement", "replied")]),
        replied_and_clicked,
        "replied: at least one reply, clicked or not"
    );
    assert_eq!(wamids(&[("engagement", "clicked")]), replied_and_clicked);
    assert!(
        !wamids(&[("direction", "outbound"), ("-engagement", "replied")])
            .contains(&template.to_string()),
        "the negation excludes it too"
    );
    assert_eq!(
        wamids(&[("direction", "outbound"), ("-engagement", "replied")]).len(),
        1,
        "the unanswered send"
    );
    store.close().expect("close");
}
