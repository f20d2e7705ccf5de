//! Bulk ingest with every index (sled log, bitmaps, tantivy), in input
//! events per second; and the parsing of its lines alone, the import
//! thread's part.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::io::BufReader;
use ticks_engine::{Config, Source, Store};
use ticks_ingest::generate::{Generator, GeneratorOptions};

fn data(messages: u64) -> (Vec<u8>, u64) {
    let mut out = Vec::new();
    let mut n = 0;
    for line in Generator::new(GeneratorOptions::new(messages)) {
        out.extend_from_slice(&line);
        out.push(b'\n');
        n += 1;
    }
    (out, n)
}

fn ingest(c: &mut Criterion) {
    let mut group = c.benchmark_group("ingest");
    group.sample_size(10);
    for messages in [10_000u64, 30_000] {
        let (bytes, events) = data(messages);
        group.throughput(Throughput::Elements(events));
        group.bench_function(format!("import_{messages}_messages"), |b| {
            b.iter_with_setup(
                || tempfile::tempdir().expect("tempdir"),
                |dir| {
                    let store = Store::open(Config::new(dir.path())).expect("open");
                    ticks_ingest::import(
                        &store,
                        BufReader::new(&bytes[..]),
                        &ticks_ingest::ImportOptions::default(),
                    )
                    .expect("import");
                    store.flush_text().expect("flush");
                    store.close().expect("close");
                },
            )
        });
    }
    group.finish();
}

/// Lines parsed into inputs (JSON, then events), as the import's reading
/// thread does before the store sees them.
fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    let (bytes, events) = data(10_000);
    let lines: Vec<&[u8]> = bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    group.throughput(Throughput::Elements(events));
    group.bench_function("lines_of_10000_messages", |b| {
        b.iter(|| {
            for line in &lines {
                let input = ticks_ingest::line_input(line.to_vec(), Source::Import, 0);
                std::hint::black_box(input.is_ok());
            }
        })
    });
    group.finish();
}

criterion_group!(benches, ingest, parse);
criterion_main!(benches);
