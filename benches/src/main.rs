//! `ticks-bench`: the large-scale benchmark (1M and 10M messages) that
//! criterion's per-iteration model does not fit. It generates traffic,
//! imports it with every index, and measures what the engine issue names:
//! ingest throughput, query latency percentiles, bytes on disk per message,
//! resident memory and reopen time.
//!
//! ```text
//! cargo run --release -p ticks-benches -- --messages 1000000 --dir /tmp/ticks-bench-1m
//! ```

use anyhow::{Context, Result};
use clap::Parser;
use std::io::BufReader;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use ticks_engine::{Config, Store};
use ticks_ingest::generate::{Generator, GeneratorOptions};
use ticks_query::{GroupBy, LogQuery};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
struct Args {
    /// Messages to generate (each is about 3-4 input events).
    #[arg(long, default_value_t = 100_000)]
    messages: u64,
    /// Data directory (emptied first).
    #[arg(long)]
    dir: PathBuf,
    /// Days the data spans.
    #[arg(long, default_value_t = 30)]
    days: u32,
    /// Samples per query kind.
    #[arg(long, default_value_t = 300)]
    samples: usize,
    /// Reuse an existing store in --dir instead of importing.
    #[arg(long)]
    reuse: bool,
    /// zstd level of record payloads (the store's default is 3).
    #[arg(long, default_value_t = 3)]
    compression_level: i32,
    /// Run only the query kinds whose name contains this.
    #[arg(long)]
    only: Option<String>,
    /// Unmeasured runs of each query kind before its samples (0: the
    /// first samples pay for the page cache and the text maps an open
    /// leaves to background threads).
    #[arg(long, default_value_t = 0)]
    warmup: usize,
    /// Print this many of each kind's slowest samples, with their query.
    #[arg(long, default_value_t = 0)]
    slowest: usize,
    /// sled's page cache in MiB (the store's default is 256).
    #[arg(long, default_value_t = 256)]
    cache_mib: u64,
    /// Lines per import batch (one group commit each; the import's default
    /// is 8192).
    #[arg(long, default_value_t = ticks_ingest::ImportOptions::default().batch_lines)]
    batch_lines: usize,
    /// A previous run's output: each figure is printed with its ratio to
    /// the same figure there (`×1.07`: 7% more), so a regression shows at a
    /// glance.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// When the generated templates' definitions reach the store: `before`
    /// the import (sends are rendered as they are indexed), `after` it (the
    /// backfill indexes them, and is timed), or `none`.
    #[arg(long, value_enum, default_value_t = TemplatesWhen::Before)]
    templates: TemplatesWhen,
    /// Alert rules evaluated during the import, as the server does (twice
    /// a second, on what each write changed): compare the ingest figures
    /// with and without.
    #[arg(long, default_value_t = 0)]
    alerts: usize,
}

/// `n` alert rules of the kinds a messaging team writes: 429 bursts,
/// failure and 131049 rates, opt-outs, one campaign's failures.
fn alert_rules(n: usize) -> Vec<ticks_query::AlertRule> {
    use ticks_query::{AlertRule, Measure};
    let kinds: [(&str, Measure, Option<&str>, f64); 8] = [
        ("response_code=429", Measure::Count, None, 100.0),
        ("error_code=131049", Measure::Rate, None, 0.05),
        (
            "status=failed&category=marketing_campaign",
            Measure::Count,
            None,
            50.0,
        ),
        ("status=failed", Measure::Rate, None, 0.1),
        ("marketing=stop", Measure::Count, None, 20.0),
        (
            "response_code=500&response_code=503",
            Measure::Rate,
            Some("direction=outbound&-response_code=none"),
            0.02,
        ),
        (
            "status=failed&country=MX",
            Measure::Rate,
            Some("direction=outbound&country=MX"),
            0.08,
        ),
        (
            "direction=inbound&-attribution=none",
            Measure::Count,
            None,
            1000.0,
        ),
    ];
    (0..n)
        .map(|i| {
            let (filter, measure, of, threshold) = kinds[i % kinds.len()];
            AlertRule {
                name: format!("rule-{i}"),
                filter: filter.into(),
                measure,
                of: of.map(String::from),
                window: ["5m", "15m", "1h", "10m"][i % 4].into(),
                threshold: threshold * (1.0 + (i / kinds.len()) as f64 * 0.5),
                min_volume: 10,
                notify: Vec::new(),
            }
        })
        .collect()
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum TemplatesWhen {
    Before,
    After,
    None,
}

/// The generator's template definitions, parsed.
fn definitions(
    opts: &GeneratorOptions,
) -> Result<Vec<(ticks_engine::templates::TemplateDef, Option<i64>)>> {
    let page = serde_json::to_vec(&ticks_ingest::generate::template_definitions(opts))?;
    Ok(ticks_ingest::parse_template_page(&page)?.templates)
}

/// The lines of the `--baseline` run, by label (the text before the first
/// `:`).
static BASELINE: std::sync::OnceLock<std::collections::HashMap<String, String>> =
    std::sync::OnceLock::new();

/// Prints a result line, with its figures' ratios to the baseline's.
macro_rules! say {
    ($($arg:tt)*) => {
        println!("{}", against_baseline(&format!($($arg)*)))
    };
}

/// Adds definitions and waits for the backfill they start; prints its rate
/// under `label`.
fn timed_backfill(
    store: &Store,
    defs: Vec<(ticks_engine::templates::TemplateDef, Option<i64>)>,
    seen_ms: i64,
    label: &str,
) -> Result<()> {
    let started = Instant::now();
    let added = store.add_templates(defs, seen_ms)?;
    while !store.backfill_done() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let secs = started.elapsed().as_secs_f64();
    say!(
        "{label}: {} sends in {:.1} s = {:.0} entries/s (rendered and indexed, committed)",
        added.backfill,
        secs,
        added.backfill as f64 / secs.max(1e-9)
    );
    Ok(())
}

/// Reads a previous run's output for `--baseline`.
fn load_baseline(path: &std::path::Path) -> Result<()> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--baseline: reading {}", path.display()))?;
    let lines = text
        .lines()
        .filter_map(|l| Some((label(l)?.to_string(), l.to_string())))
        .collect();
    let _ = BASELINE.set(lines);
    Ok(())
}

/// What a result line is about: a query kind (before its `: p50`), or the
/// text before the first `:`.
fn label(line: &str) -> Option<&str> {
    match line.find(": p50 ") {
        Some(i) => Some(&line[..i]),
        None => line.split_once(':').map(|(l, _)| l.trim()),
    }
}

/// A line split into its numbers (as written) and the text between them.
fn numbers(line: &str) -> (Vec<String>, Vec<String>) {
    let (mut nums, mut gaps, mut text, mut num) =
        (Vec::new(), Vec::new(), String::new(), String::new());
    for c in line.chars() {
        if c.is_ascii_digit() || (c == '.' && !num.is_empty()) {
            num.push(c);
        } else {
            if !num.is_empty() {
                gaps.push(std::mem::take(&mut text));
                nums.push(std::mem::take(&mut num));
            }
            text.push(c);
        }
    }
    if !num.is_empty() {
        gaps.push(std::mem::take(&mut text));
        nums.push(num);
    }
    gaps.push(text);
    (nums, gaps)
}

/// `line` with each figure followed by its ratio to the same figure of the
/// baseline's line of the same label, when both lines have the same shape.
fn against_baseline(line: &str) -> String {
    let Some(old) = BASELINE.get().and_then(|b| b.get(label(line)?)) else {
        return line.to_string();
    };
    let (new_nums, gaps) = numbers(line);
    let (old_nums, old_gaps) = numbers(old);
    if new_nums.len() != old_nums.len() || gaps != old_gaps {
        return format!("{line}   [baseline: {old}]");
    }
    let mut out = String::new();
    for (i, gap) in gaps.iter().enumerate() {
        out.push_str(gap);
        if let (Some(written), Some(o)) = (new_nums.get(i), old_nums.get(i)) {
            out.push_str(written);
            let value = |t: &str| t.trim_end_matches('.').parse::<f64>().unwrap_or(0.0);
            let (n, o) = (value(written), value(o));
            if o != 0.0 && (n / o - 1.0).abs() >= 0.005 {
                out.push_str(&format!(" (×{:.2})", n / o));
            }
        }
    }
    out
}

fn config(args: &Args) -> Config {
    let mut c = Config::new(&args.dir);
    c.compression_level = args.compression_level;
    c.cache_bytes = args.cache_mib << 20;
    c
}

/// A line of `/proc/self/status` in MiB (`VmRSS`, `RssAnon`, `RssFile`).
fn status_mib(key: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn percentiles(mut v: Vec<Duration>) -> (f64, f64, f64) {
    v.sort();
    let at = |p: f64| v[((v.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0;
    (at(0.5), at(0.99), at(1.0))
}

fn params(pairs: &[(&str, String)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.clone()))
        .collect()
}

fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(path) = &args.baseline {
        load_baseline(path)?;
    }
    // The engine reports what reopening spent its time on (RUST_LOG=info).
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let mut opts = GeneratorOptions::new(args.messages);
    opts.span_ms = i64::from(args.days) * 86_400_000;
    if !args.reuse {
        let _ = std::fs::remove_dir_all(&args.dir);
        // Generate to a file first, so generation is not timed as ingest;
        // zstd-compressed (level 1) so that 10M messages fit beside the store.
        let file = args.dir.with_extension("ndjson.zst");
        let started = Instant::now();
        let mut raw_bytes = 0u64;
        let mut lines = 0u64;
        {
            use std::io::Write;
            let mut w = zstd::stream::write::Encoder::new(
                std::io::BufWriter::new(
                    std::fs::File::create(&file).context("creating the data file")?,
                ),
                1,
            )?
            .auto_finish();
            for line in Generator::new(opts.clone()) {
                raw_bytes += line.len() as u64 + 1;
                lines += 1;
                w.write_all(&line)?;
                w.write_all(b"\n")?;
            }
            w.flush()?;
        }
        say!(
            "generated {lines} input events ({:.1} MiB raw) for {} messages in {:.1} s",
            raw_bytes as f64 / 1048576.0,
            args.messages,
            started.elapsed().as_secs_f64()
        );
        let store = Store::open(config(&args))?;
        if args.templates == TemplatesWhen::Before {
            store.add_templates(definitions(&opts)?, opts.start_ms)?;
        }
        let started = Instant::now();
        let cpu_before = process_cpu_secs();
        let threads_before = thread_cpu_secs();
        let importing = std::sync::atomic::AtomicBool::new(true);
        let alert_stats = std::sync::Mutex::new((0u64, Duration::ZERO, 0usize));
        let report = std::thread::scope(|scope| -> anyhow::Result<_> {
            if args.alerts > 0 {
                let mut alerts = ticks_query::Alerts::default();
                for rule in alert_rules(args.alerts) {
                    alerts.put(rule)?;
                }
                store.take_changes();
                let (store, importing, alert_stats) = (&store, &importing, &alert_stats);
                std::thread::Builder::new()
                    .name("bench-alerts".into())
                    .spawn_scoped(scope, move || {
                        while importing.load(std::sync::atomic::Ordering::Relaxed) {
                            std::thread::sleep(Duration::from_millis(500));
                            let t = Instant::now();
                            let changed = store.take_changes();
                            // The generated traffic is dated in the past: the
                            // clock is the newest entry that changed.
                            let now = changed
                                .max()
                                .map_or(0, |id| store.snapshot().recorded_ms(id));
                            let fired = alerts.evaluate(store, &changed, now).len();
                            let mut s = alert_stats.lock().unwrap_or_else(|p| p.into_inner());
                            s.0 += 1;
                            s.1 += t.elapsed();
                            s.2 += fired;
                        }
                    })?;
            }
            let report = ticks_ingest::import(
                &store,
                BufReader::with_capacity(
                    1 << 20,
                    zstd::stream::read::Decoder::new(std::fs::File::open(&file)?)?,
                ),
                &ticks_ingest::ImportOptions {
                    batch_lines: args.batch_lines,
                    ..ticks_ingest::ImportOptions::default()
                },
            );
            importing.store(false, std::sync::atomic::Ordering::Relaxed);
            Ok(report?)
        })?;
        if args.alerts > 0 {
            let (rounds, spent, fired) = *alert_stats.lock().unwrap_or_else(|p| p.into_inner());
            say!(
                "alerts: {} rules evaluated {rounds} times during the import, {:.1} ms each on average ({:.1} s in all), {fired} firings and resolutions",
                args.alerts,
                spent.as_secs_f64() * 1e3 / rounds.max(1) as f64,
                spent.as_secs_f64()
            );
        }
        let import_secs = started.elapsed().as_secs_f64();
        store.flush_text()?;
        let all_secs = started.elapsed().as_secs_f64();
        say!(
            "ingest: {} events in {:.1} s = {:.0} events/s acknowledged durable ({:.0} events/s including the full-text catch-up); {} stored, {} duplicates, {} rejected",
            report.lines, import_secs, report.lines as f64 / import_secs, report.lines as f64 / all_secs, report.stored, report.duplicates, report.rejected
        );
        // The process and its threads read at the same moment, so that
        // the threads' shares add up to the process's time.
        let (cpu_after, threads_after) = (process_cpu_secs(), thread_cpu_secs());
        // CPU time is steadier than wall time on a shared 2-core machine:
        // it tells small changes apart where events/s varies by ±8%.
        if let (Some(before), Some(after)) = (cpu_before, cpu_after) {
            say!(
                "ingest CPU: {:.1} s user+system = {:.1} µs per input event ({:.2} cores busy)",
                after - before,
                (after - before) * 1e6 / report.lines.max(1) as f64,
                (after - before) / all_secs
            );
            // Which threads spent it. Threads that ended during the import
            // (tantivy starts an indexing thread per segment; the import's
            // submitting thread) are counted together as the rest.
            let mut by_thread = threads_after;
            for (name, secs) in &mut by_thread {
                *secs -= threads_before
                    .iter()
                    .find(|(n, _)| n == name)
                    .map_or(0.0, |(_, s)| *s);
            }
            by_thread.sort_by(|a, b| b.1.total_cmp(&a.1));
            let total = (after - before).max(1e-9);
            let live: f64 = by_thread.iter().map(|(_, s)| s).sum();
            let mut shares: Vec<String> = by_thread
                .iter()
                .filter(|(_, secs)| *secs >= total * 0.005)
                .map(|(name, secs)| format!("{name} {:.0}%", secs * 100.0 / total))
                .collect();
            shares.push(format!(
                "ended threads {:.0}%",
                (total - live) * 100.0 / total
            ));
            say!("ingest CPU by thread: {}", shares.join(", "));
        }
        if args.templates == TemplatesWhen::After {
            timed_backfill(
                &store,
                definitions(&opts)?,
                opts.start_ms,
                "template backfill",
            )?;
        }
        store.close()?;
        drop(store);
        let stats_store = Store::open(config(&args))?;
        let stats = stats_store.stats()?;
        stats_store.close()?;
        drop(stats_store);
        say!(
            "disk: {:.1} MiB for {} entries = {:.0} bytes/message; raw input {:.0} bytes/message; ratio {:.2}",
            stats.disk_bytes as f64 / 1048576.0,
            stats.live_entries,
            stats.disk_bytes as f64 / args.messages as f64,
            raw_bytes as f64 / args.messages as f64,
            stats.disk_bytes as f64 / raw_bytes as f64
        );
        let _ = std::fs::remove_file(&file);
    }
    let started = Instant::now();
    let store = Store::open(config(&args))?;
    say!(
        "reopen after a clean stop: {:.3} s (resident right after: {:.0} MiB)",
        started.elapsed().as_secs_f64(),
        status_mib("VmRSS:")
    );
    store.flush_text()?;
    if args.reuse && args.templates == TemplatesWhen::After {
        // A backfill on a store that has its sends already: one template
        // edited (a new version in force from the start), so every send of
        // it is rendered and indexed again.
        let mut defs = definitions(&opts)?;
        defs.truncate(1);
        for (def, _) in &mut defs {
            def.content
                .body
                .push_str(" (edited for the backfill bench)");
        }
        timed_backfill(
            &store,
            defs,
            opts.start_ms,
            "template backfill of one edited template",
        )?;
    }

    let campaigns = [
        "Black Friday 2025",
        "Natal Premiado",
        "Volta às Aulas",
        "Cyber Monday",
        "Liquida Verão",
    ];
    let statuses = ["read", "delivered", "failed", "sent"];
    let day = 86_400_000i64;
    let range = |i: usize| {
        let from = opts.start_ms + (i as i64 % i64::from(args.days.max(8) - 7)) * day;
        (from.to_string(), (from + 7 * day).to_string())
    };
    let run = |name: &str,
               make: &dyn Fn(usize) -> Vec<(String, String)>,
               exec: &dyn Fn(&LogQuery) -> Result<()>|
     -> Result<()> {
        if args
            .only
            .as_deref()
            .is_some_and(|only| !name.contains(only))
        {
            return Ok(());
        }
        for i in 0..args.warmup {
            exec(&LogQuery::from_params(&make(i), &[])?)?;
        }
        let mut times = Vec::with_capacity(args.samples);
        for i in 0..args.samples {
            let q = LogQuery::from_params(&make(i), &[])?;
            let t = Instant::now();
            exec(&q)?;
            times.push(t.elapsed());
        }
        let mut slowest: Vec<(Duration, usize)> = times.iter().copied().zip(0..).collect();
        slowest.sort_by(|a, b| b.cmp(a));
        let (p50, p99, max) = percentiles(times);
        say!(
            "{name}: p50 {p50:.3} ms, p99 {p99:.3} ms, max {max:.3} ms ({} samples{})",
            args.samples,
            match args.warmup {
                0 => String::new(),
                n => format!(" after {n} unmeasured"),
            }
        );
        for (took, i) in slowest.into_iter().take(args.slowest) {
            say!(
                "  sample {i}: {:.2} ms {:?}",
                took.as_secs_f64() * 1000.0,
                make(i)
            );
        }
        Ok(())
    };
    let page = |q: &LogQuery| -> Result<()> {
        let p = ticks_query::search(&store, q)?;
        std::hint::black_box(p.total);
        Ok(())
    };
    run(
        "count + first page of 50, newest first, equality filters + 7-day range",
        &|i| {
            let (from, to) = range(i);
            params(&[
                ("category", "marketing_campaign".into()),
                ("name", campaigns[i % campaigns.len()].into()),
                ("status", statuses[i % statuses.len()].into()),
                ("from", from),
                ("to", to),
            ])
        },
        &page,
    )?;
    // People as a user would type them: numbers with punctuation, the
    // older Brazilian form, user ids and usernames, taken from entries
    // spread over the store.
    let people: Vec<String> = {
        let snap = store.snapshot();
        let n = snap.entry_count() as u32;
        let ids: Vec<u32> = (0..997u32)
            .map(|k| k.wrapping_mul(7_919_993) % n.max(1))
            .collect();
        snap.entries(&ids)
            .into_iter()
            .enumerate()
            .filter_map(|(k, e)| match (e.phone, e.user_id, e.username) {
                (Some(p), _, _) if p.len() == 13 && k % 2 == 0 => Some(format!(
                    "+{} ({}) {}-{}",
                    &p[..2],
                    &p[2..4],
                    &p[4..9],
                    &p[9..]
                )),
                (Some(p), _, _) => Some(p),
                (None, _, Some(u)) if k % 2 == 0 => Some(format!("@{u}")),
                (None, Some(u), _) => Some(u),
                _ => None,
            })
            .collect()
    };
    if !people.is_empty() {
        run(
            "contact= count + first page of 50 (any identifier, both directions)",
            &|i| params(&[("contact", people[i % people.len()].clone())]),
            &page,
        )?;
    }
    let words = [
        "quero",
        "entrega",
        "maria",
        "\"black friday\"",
        "promo*",
        "prazo",
    ];
    let with_text = |i: usize, text: &str| {
        let (from, to) = range(i);
        params(&[
            ("category", "marketing_campaign".into()),
            ("status", statuses[i % statuses.len()].into()),
            ("from", from),
            ("to", to),
            ("text", text.into()),
        ])
    };
    run(
        "the same with free text",
        &|i| with_text(i, words[i % words.len()]),
        &page,
    )?;
    // Each text alone (under `--only "text alone"`): which kind of text
    // query sets the percentiles above.
    for word in words {
        run(
            &format!("text alone: {word} + the same filters"),
            &|i| with_text(i, word),
            &page,
        )?;
    }
    // Words only the templates' fixed text has (found once the sends are
    // rendered: #22), with the same filters.
    let fixed = [
        "cashback",
        "carrinho",
        "juros",
        "\"frete grátis\"",
        "recomenda",
    ];
    run(
        "free text over rendered templates (a fixed-text word) + the same filters",
        &|i| with_text(i, fixed[i % fixed.len()]),
        &page,
    )?;
    let groups = [
        GroupBy::parse("status")?,
        GroupBy::parse("error_code")?,
        GroupBy::parse("name")?,
        GroupBy::Day,
    ];
    let gi = std::cell::Cell::new(0usize);
    run(
        "group-by count (status, error_code, name, day in America/Sao_Paulo)",
        &|i| {
            let (from, to) = range(i);
            params(&[
                ("from", from),
                ("to", to),
                ("tz", "America/Sao_Paulo".into()),
                ("direction", "outbound".into()),
            ])
        },
        &|q| {
            let g = groups[gi.get() % groups.len()];
            gi.set(gi.get() + 1);
            std::hint::black_box(ticks_query::stats(&store, q, g)?);
            Ok(())
        },
    )?;
    let whole_store_report = |name: &str, options: &ticks_query::ReportOptions| {
        run(
            name,
            &|_| params(&[("tz", "America/Sao_Paulo".into())]),
            &|q| {
                std::hint::black_box(ticks_query::report(&store, q, options)?);
                Ok(())
            },
        )
    };
    for plan in [
        ticks_query::Plan::Auto,
        ticks_query::Plan::Scan,
        ticks_query::Plan::Bitmaps,
    ] {
        let options = ticks_query::ReportOptions {
            plan,
            ..Default::default()
        };
        run(
            &format!("consolidated report for one campaign (funnels, reasons, daily series; plan {plan:?})"),
            &|i| {
                params(&[
                    ("name", campaigns[i % campaigns.len()].into()),
                    ("tz", "America/Sao_Paulo".into()),
                ])
            },
            &|q| {
                std::hint::black_box(ticks_query::report(&store, q, &options)?);
                Ok(())
            },
        )?;
        whole_store_report(
            &format!("consolidated report of the whole store with its 30-day daily series (plan {plan:?})"),
            &options,
        )?;
    }
    let series_only =
        ticks_query::ReportOptions::from_params(&params(&[("sections", "series".into())]))?;
    whole_store_report(
        "30-day daily series of the whole store (status, codes, 429/5xx/failure rates)",
        &series_only,
    )?;
    // Cost (priced with the example rate card) and a funnel per country:
    // #24 asks p99 under 50 ms for one campaign, 500 ms for the whole store.
    let card = ticks_query::RateCard::parse(
        "example",
        include_str!("../../server/rate-card.example.csv"),
    )?;
    let cost_options = ticks_query::ReportOptions {
        rate_card: Some(std::sync::Arc::new(card)),
        ..ticks_query::ReportOptions::from_params(&params(&[
            ("sections", "cost,countries".into()),
            ("group", "country".into()),
        ]))?
    };
    run(
        "cost and country sections for one campaign (rate card, group by country, daily)",
        &|i| {
            params(&[
                ("name", campaigns[i % campaigns.len()].into()),
                ("tz", "America/Sao_Paulo".into()),
            ])
        },
        &|q| {
            std::hint::black_box(ticks_query::report(&store, q, &cost_options)?);
            Ok(())
        },
    )?;
    whole_store_report(
        "cost and country sections of the whole store (rate card, group by country, daily)",
        &cost_options,
    )?;
    for section in ["cost", "countries"] {
        let options = ticks_query::ReportOptions {
            sections: ticks_query::ReportOptions::from_params(&params(&[(
                "sections",
                section.into(),
            )]))?
            .sections,
            ..cost_options.clone()
        };
        whole_store_report(
            &format!("whole-store report, section {section} only (rate card, group by country)"),
            &options,
        )?;
    }
    // Each section of the whole-store report by each plan: what Plan::Auto
    // chooses between.
    for section in ["counts", "funnels", "series", "inbound"] {
        for plan in [ticks_query::Plan::Scan, ticks_query::Plan::Bitmaps] {
            let options = ticks_query::ReportOptions {
                plan,
                ..ticks_query::ReportOptions::from_params(&params(&[("sections", section.into())]))?
            };
            whole_store_report(
                &format!("whole-store report, section {section} only (plan {plan:?})"),
                &options,
            )?;
        }
    }
    // Walk 999 pages by cursor once, then time fetching page 1,000.
    let mut cursor = None;
    let base = params(&[("limit", "50".into())]);
    for _ in 0..999 {
        let mut p = base.clone();
        if let Some(c) = &cursor {
            p.push(("cursor".into(), String::clone(c)));
        }
        let page = ticks_query::search(&store, &LogQuery::from_params(&p, &[])?)?;
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    if let Some(c) = cursor {
        run(
            "page 1,000 (50 rows deep by cursor), newest first",
            &|_| {
                let mut p = base.clone();
                p.push(("cursor".into(), c.clone()));
                p
            },
            &page,
        )?;
    }
    say!(
        "resident memory while serving queries: {:.0} MiB ({:.0} MiB anonymous, {:.0} MiB of mapped files)",
        status_mib("VmRSS:"),
        status_mib("RssAnon:"),
        status_mib("RssFile:")
    );
    store.close()?;
    Ok(())
}

/// CPU seconds of each live thread of this process, by thread name with
/// trailing digits dropped (`merge_thread_0` and `_1` add up).
fn thread_cpu_secs() -> Vec<(String, f64)> {
    let mut by_name: std::collections::BTreeMap<String, f64> = Default::default();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        if let Some((name, secs)) = stat_cpu_secs(&stat) {
            let name = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '_' || c == '-');
            *by_name.entry(name.to_string()).or_default() += secs;
        }
    }
    by_name.into_iter().collect()
}

/// User + system CPU seconds of this process so far (Linux: /proc/self/stat,
/// at the kernel's usual 100 ticks a second); `None` elsewhere.
fn process_cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    Some(stat_cpu_secs(&stat)?.1)
}

/// The command name and user + system CPU seconds of a `/proc/.../stat`
/// line: utime and stime are the 14th and 15th fields of the line, the
/// 12th and 13th after the parenthesised name.
fn stat_cpu_secs(stat: &str) -> Option<(&str, f64)> {
    let (head, rest) = stat.rsplit_once(')')?;
    let name = &head[head.find('(')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((name, (utime + stime) / 100.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_get_their_ratio_to_the_baseline() {
        let mut b = std::collections::HashMap::new();
        b.insert(
            "group-by".to_string(),
            "group-by: p50 0.12 ms, p99 0.40 ms (200 samples)".to_string(),
        );
        let _ = BASELINE.set(b);
        assert_eq!(
            against_baseline("group-by: p50 0.12 ms, p99 0.20 ms (200 samples)"),
            "group-by: p50 0.12 ms, p99 0.20 (×0.50) ms (200 samples)"
        );
        assert_eq!(against_baseline("other: 5 s"), "other: 5 s");
    }
}
