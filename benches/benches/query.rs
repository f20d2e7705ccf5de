//! Log-table queries and group-by over a 100k-message store.

use criterion::{criterion_group, criterion_main, Criterion};
use std::io::BufReader;
use ticks_engine::{Config, Store};
use ticks_ingest::generate::{Generator, GeneratorOptions};
use ticks_query::{GroupBy, LogQuery};

fn store(messages: u64) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(Config::new(dir.path())).expect("open");
    let mut bytes = Vec::new();
    for line in Generator::new(GeneratorOptions::new(messages)) {
        bytes.extend_from_slice(&line);
        bytes.push(b'\n');
    }
    ticks_ingest::import(
        &store,
        BufReader::new(&bytes[..]),
        &ticks_ingest::ImportOptions::default(),
    )
    .expect("import");
    store.flush_text().expect("flush");
    (dir, store)
}

fn q(pairs: &[(&str, &str)]) -> LogQuery {
    let p: Vec<(String, String)> = pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    LogQuery::from_params(&p, &[]).expect("query")
}

fn queries(c: &mut Criterion) {
    let (_dir, store) = store(100_000);
    let mut group = c.benchmark_group("query_100k");
    let filtered = q(&[
        ("category", "marketing_campaign"),
        ("name", "Black Friday 2025"),
        ("status", "read"),
        ("from", "2025-01-05"),
        ("to", "2025-01-12"),
    ]);
    group.bench_function("filters_range_first_page", |b| {
        b.iter(|| {
            ticks_query::search(&store, &filtered)
                .expect("search")
                .total
        })
    });
    let text = q(&[
        ("category", "marketing_campaign"),
        ("text", "quero"),
        ("from", "2025-01-05"),
        ("to", "2025-01-12"),
    ]);
    group.bench_function("filters_text_first_page", |b| {
        b.iter(|| ticks_query::search(&store, &text).expect("search").total)
    });
    let all = q(&[("direction", "outbound")]);
    group.bench_function("group_by_error_code", |b| {
        b.iter(|| {
            ticks_query::stats(&store, &all, GroupBy::parse("error_code").expect("g"))
                .expect("stats")
                .total
        })
    });
    let tz = q(&[("tz", "America/Sao_Paulo")]);
    group.bench_function("group_by_day_in_tz", |b| {
        b.iter(|| {
            ticks_query::stats(&store, &tz, GroupBy::Day)
                .expect("stats")
                .total
        })
    });
    let options = ticks_query::ReportOptions::default();
    let campaign = q(&[("name", "Black Friday 2025"), ("tz", "America/Sao_Paulo")]);
    group.bench_function("report_one_campaign", |b| {
        b.iter(|| {
            ticks_query::report(&store, &campaign, &options)
                .expect("report")
                .total
        })
    });
    group.bench_function("report_whole_store_daily_series", |b| {
        b.iter(|| {
            ticks_query::report(&store, &tz, &options)
                .expect("report")
                .total
        })
    });
    let deep = q(&[("offset", "50000"), ("limit", "50")]);
    group.bench_function("offset_50000", |b| {
        b.iter(|| ticks_query::search(&store, &deep).expect("search").total)
    });
    group.finish();
}

criterion_group!(benches, queries);
criterion_main!(benches);
