//! `ticks`: the Ticks server and command line.
//!
//! # Layout, from the top down (no module imports one above it)
//! - `main`: the command line; `serve` starts the server.
//! - `http`: the accept loop and its connection limit.
//! - `routes`: the route table (method, path, access, metrics label) that
//!   the router, the metrics and the OpenAPI test read; the token check.
//! - `api`, `proxy`, `ui`: the handlers of `/webhook` and `/v1/*`, the
//!   logging proxy, the page.
//! - `export`, `purge`, `retention`, `pdf`, `report_text`, `relay`:
//!   exports with receipts, deletion under the export-first rule, the daily
//!   retention, the relay to the business's own app.
//! - `request`, `app`, `error`, `respond`, `present`: reading requests within
//!   their budgets, the shared state and token checks, errors as statuses,
//!   responses, how entries and times look.
//! - `config`, `metrics`: settings from file, environment and flags;
//!   Prometheus counters.
//!
//! Engine calls block (they wait for fsync), so handlers run them on
//! tokio's blocking pool; the async threads only move bytes.

mod api;
mod app;
mod config;
mod error;
mod export;
mod http;
mod metrics;
mod pdf;
mod present;
mod proxy;
mod purge;
mod relay;
mod report_text;
mod request;
mod respond;
mod retention;
mod routes;
mod ui;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use ticks_engine::{Config as StoreConfig, EntryId, Store};

// Ingest allocates many small strings on several threads at once; glibc's
// malloc spends a quarter of the time in its arena locks there (measured
// with perf), mimalloc does not.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "ticks",
    version,
    about = "Ticks: an embedded log engine for WhatsApp Business messaging"
)]
struct Cli {
    /// Configuration file (TOML). Environment (TICKS_*) and flags override it.
    #[arg(long, global = true, env = "TICKS_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (default ./ticks-data).
    #[arg(long, global = true, env = "TICKS_DATA")]
    data: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API, the webhook endpoint and the web page.
    Serve {
        /// Address to listen on (default 127.0.0.1:8080).
        #[arg(long, env = "TICKS_LISTEN")]
        listen: Option<String>,
        /// Fill an empty store with generated realistic data.
        #[arg(long)]
        demo: bool,
        /// Meta app secret, to check X-Hub-Signature-256.
        #[arg(long, env = "TICKS_APP_SECRET", hide_env_values = true)]
        app_secret: Option<String>,
        /// Token for Meta's GET /webhook verification.
        #[arg(long, env = "TICKS_VERIFY_TOKEN", hide_env_values = true)]
        verify_token: Option<String>,
        /// API token as name:scopes:token (scopes: ingest,send,read,admin); repeatable.
        #[arg(long = "token", env = "TICKS_TOKENS", hide_env_values = true)]
        tokens: Vec<String>,
        /// Graph API base URL for the logging proxy.
        #[arg(long, env = "TICKS_GRAPH_BASE_URL")]
        graph_base_url: Option<String>,
        /// The Graph API token the logging proxy sends upstream.
        #[arg(long, env = "TICKS_GRAPH_TOKEN", hide_env_values = true)]
        graph_token: Option<String>,
        /// The logging proxy forwards the sender's own Authorization header
        /// to the Graph API (the sender then authenticates to Ticks with
        /// X-Ticks-Token).
        #[arg(long, env = "TICKS_PROXY_TRUST_CLIENT_TOKEN")]
        proxy_trust_client_token: bool,
        /// Most connections served at once (default: a quarter of the
        /// descriptor limit, at most 4096).
        #[arg(long, env = "TICKS_MAX_CONNECTIONS")]
        max_connections: Option<usize>,
        /// Downstream URL to relay webhooks to; repeatable.
        #[arg(long = "relay-url", env = "TICKS_RELAY_URLS", value_delimiter = ',')]
        relay_urls: Vec<String>,
        /// Export, then purge, entries older than this many days (daily).
        #[arg(long, env = "TICKS_RETENTION_DAYS")]
        retention_days: Option<u32>,
        /// Where retention writes its exports.
        #[arg(long, env = "TICKS_RETENTION_EXPORT_DIR")]
        retention_export_dir: Option<PathBuf>,
    },
    /// Import NDJSON files (send results and webhook bodies); `-` reads stdin; .gz and .zst are decompressed.
    Import {
        /// Files to import.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Where to write rejected lines (default: FILE.rejects next to each file, or rejects.ndjson for stdin).
        #[arg(long)]
        rejects: Option<PathBuf>,
    },
    /// Query the log with the API's filters, e.g. `ticks query status=failed name="Black Friday" sort=-recorded_at`.
    Query {
        /// Filters as key=value (the parameters of GET /v1/logs).
        params: Vec<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// The consolidated report (funnels, failure reasons, series, inbound) for filters,
    /// e.g. `ticks report name="Black Friday" tz=America/Sao_Paulo interval=day`.
    Report {
        /// Filters as key=value (the parameters of GET /v1/report).
        params: Vec<String>,
        /// Output format: table or json.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Export the entries matching filters (the parameters of GET /v1/logs) to a file, with a receipt.
    Export {
        /// csv, xlsx, pdf or ndjson.
        #[arg(long)]
        format: String,
        /// The file to write.
        #[arg(long)]
        out: PathBuf,
        /// Filters as key=value.
        params: Vec<String>,
    },
    /// Delete the entries matching filters, for good. Runs only when an export
    /// covers them (`--export-to DIR` makes one first, or `--receipt ID` names
    /// one), or with `--force`, which the purge record keeps.
    Purge {
        /// Filters as key=value (the parameters of GET /v1/logs, without paging); `--all` to select every entry.
        params: Vec<String>,
        /// Export the entries to this folder first, then purge them.
        #[arg(long)]
        export_to: Option<PathBuf>,
        /// Format of the --export-to file: ndjson (re-importable), csv, xlsx or pdf.
        #[arg(long, default_value = "ndjson")]
        format: String,
        /// The export receipt that covers the entries.
        #[arg(long)]
        receipt: Option<String>,
        /// Delete without an export, accepting that the entries are lost.
        #[arg(long)]
        force: bool,
        /// Allow a filter that selects every entry (or no filter at all).
        #[arg(long)]
        all: bool,
    },
    /// Show one entry with its raw payloads.
    Show {
        /// The entry id.
        id: u32,
    },
    /// Show a message's timeline.
    Timeline {
        /// The message's wamid.
        wamid: String,
    },
    /// Print generated realistic traffic as NDJSON.
    Generate {
        /// Number of messages.
        #[arg(long)]
        messages: u64,
        /// Seed (the same seed gives the same data).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Days the messages spread over.
        #[arg(long, default_value_t = 30)]
        days: u32,
        /// Make the data end now instead of on 2025-01-31.
        #[arg(long)]
        until_now: bool,
    },
    /// Verify the store's invariants.
    Check,
    /// Sizes and counts.
    Stats,
    /// Create an API token and print the configuration line for it.
    Token {
        /// Who it is for.
        #[arg(long)]
        name: String,
        /// Scopes, comma-separated: ingest, read, admin.
        #[arg(long, default_value = "read")]
        scopes: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Json,
    Ndjson,
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TICKS_LOG")
                .unwrap_or_else(|_| "info,sled=warn,tantivy=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(2);
    }
}

fn data_dir(cli_data: &Option<PathBuf>, config: &Option<PathBuf>) -> Result<PathBuf> {
    let settings = config::Settings::load(
        config.as_deref(),
        config::Overrides {
            data: cli_data.clone(),
            ..Default::default()
        },
    )?;
    Ok(settings.data)
}

fn open_store(dir: &Path) -> Result<Store> {
    Store::open(StoreConfig::new(dir)).with_context(|| {
        format!(
            "opening the store in {} (is `ticks serve` running on it?)",
            dir.display()
        )
    })
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Serve {
            listen,
            demo,
            app_secret,
            verify_token,
            tokens,
            graph_base_url,
            graph_token,
            proxy_trust_client_token,
            max_connections,
            relay_urls,
            retention_days,
            retention_export_dir,
        } => {
            let settings = config::Settings::load(
                cli.config.as_deref(),
                config::Overrides {
                    data: cli.data,
                    listen,
                    app_secret,
                    verify_token,
                    graph_base_url,
                    graph_token,
                    proxy_trust_client_token,
                    max_connections,
                    relay_urls,
                    tokens,
                    retention_days,
                    retention_export_dir,
                },
            )?;
            serve(settings, demo)
        }
        Command::Import { files, rejects } => {
            let store = open_store(&data_dir(&cli.data, &cli.config)?)?;
            let result = import_files(&store, &files, rejects.as_deref());
            store.close()?;
            result
        }
        Command::Query { params, format } => {
            let store = open_store(&data_dir(&cli.data, &cli.config)?)?;
            let pairs = key_values(&params)?;
            let query = ticks_query::LogQuery::from_params(&pairs, &[])?;
            let page = ticks_query::search(&store, &query)?;
            print_page(&page, format)?;
            store.close()?;
            Ok(())
        }
        Command::Report { params, format } => {
            let store = open_store(&data_dir(&cli.data, &cli.config)?)?;
            let pairs = key_values(&params)?;
            let options = ticks_query::ReportOptions::from_params(&pairs)?;
            let query = ticks_query::LogQuery::from_params(&pairs, &ticks_query::REPORT_PARAMS)?;
            let report = ticks_query::report(&store, &query, &options)?;
            store.close()?;
            match format {
                Format::Table => {
                    let zone = query.tz.iana_name().unwrap_or("UTC").to_string();
                    print!("{}", report_text::render(&report, &zone));
                }
                Format::Json | Format::Ndjson => {
                    println!("{}", serde_json::to_string_pretty(&report)?)
                }
            }
            Ok(())
        }
        Command::Export {
            format,
            out,
            params,
        } => {
            let format = export::Format::parse(&format).with_context(|| {
                format!("format: {format:?} is not one of csv, xlsx, pdf, ndjson")
            })?;
            let store = open_store(&data_dir(&cli.data, &cli.config)?)?;
            let pairs = key_values(&params)?;
            let query = ticks_query::LogQuery::from_params(&pairs, &["limit", "offset", "cursor"])?;
            let filter: String = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs.iter())
                .finish();
            let started = Instant::now();
            let receipt = export::export_to_file(&store, &query, &filter, format, &out)?;
            store.close()?;
            let secs = started.elapsed().as_secs_f64().max(1e-3);
            eprintln!(
                "exported {} entries to {} in {:.1} s ({:.0} rows/s)",
                receipt.count,
                out.display(),
                secs,
                receipt.count as f64 / secs
            );
            println!("{}", serde_json::to_string_pretty(&receipt)?);
            Ok(())
        }
        Command::Purge {
            params,
            export_to,
            format,
            receipt,
            force,
            all,
        } => {
            let pairs = key_values(&params)?;
            let query = purge::deletion_query(&pairs, all)?;
            let format = export::Format::parse(&format).with_context(|| {
                format!("format: {format:?} is not one of csv, xlsx, pdf, ndjson")
            })?;
            let store = open_store(&data_dir(&cli.data, &cli.config)?)?;
            let filter: String = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs.iter())
                .finish();
            let started = Instant::now();
            let ids = ticks_query::matching(&store, &query)?;
            let mut receipt = receipt;
            if let Some(dir) = export_to {
                let (r, path) = export::export_to_folder(
                    &store,
                    &query,
                    &filter,
                    format,
                    &dir,
                    "ticks-purge",
                    ticks_ingest::now_ms(),
                )?;
                eprintln!(
                    "exported {} entries to {} (receipt {}, sha256 {})",
                    r.count,
                    path.display(),
                    r.id,
                    r.sha256
                );
                receipt = Some(r.id);
            }
            let outcome = purge::purge(&store, &ids, "cli", &filter, receipt.as_deref(), force)?;
            store.close()?;
            match outcome {
                Ok(p) => {
                    eprintln!(
                        "purged {} entries in {:.1} s",
                        p.deleted,
                        started.elapsed().as_secs_f64()
                    );
                    println!("{}", serde_json::to_string_pretty(&p)?);
                    Ok(())
                }
                Err(refusal) => bail!("{refusal}"),
            }
        }
        Command::Show { id } => {
            let store = open_store(&data_dir(&cli.data, &cli.config)?)?;
            let detail = store
                .entry_detail(EntryId(id))?
                .with_context(|| format!("entry {id} does not exist"))?;
            let mut v = present::entry_json(&detail.entry);
            v["inputs"] = detail
                .inputs
                .iter()
                .map(|i| serde_json::json!({"seq": i.seq.0, "source": i.source.as_str(), "raw": serde_json::from_slice::<serde_json::Value>(&i.raw).unwrap_or_else(|_| String::from_utf8_lossy(&i.raw).into())}))
                .collect();
            println!("{}", serde_json::to_string_pretty(&v)?);
            store.close()?;
            Ok(())
        }
        Command::Timeline { wamid } => {
            let store = open_store(&data_dir(&cli.data, &cli.config)?)?;
            let t = store
                .timeline(&wamid)?
                .with_context(|| format!("no message {wamid}"))?;
            println!(
                "#{} {} {}",
                t.entry.id,
                t.entry.status.as_str(),
                t.entry.name.as_deref().unwrap_or("")
            );
            for item in t.items {
                println!(
                    "{}  {:<7} {:<12} {}{}",
                    present::rfc3339(item.at_ms, t.entry.offset_s),
                    item.kind,
                    item.status.unwrap_or_default(),
                    item.error_code
                        .map(|c| format!("error {c} "))
                        .unwrap_or_default(),
                    item.text.unwrap_or_default()
                );
            }
            store.close()?;
            Ok(())
        }
        Command::Generate {
            messages,
            seed,
            days,
            until_now,
        } => {
            let mut opts = ticks_ingest::generate::GeneratorOptions::new(messages);
            opts.seed = seed;
            opts.span_ms = i64::from(days.max(1)) * 86_400_000;
            if until_now {
                opts.start_ms = ticks_ingest::now_ms() - opts.span_ms;
            }
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            for line in ticks_ingest::generate::Generator::new(opts) {
                out.write_all(&line)?;
                out.write_all(b"\n")?;
            }
            out.flush()?;
            Ok(())
        }
        Command::Check => {
            let store = open_store(&data_dir(&cli.data, &cli.config)?)?;
            let problems = store.check()?;
            let stats = store.stats()?;
            store.close()?;
            println!(
                "checked {} log records, {} entries",
                stats.log_records, stats.live_entries
            );
            if problems.is_empty() {
                println!(
                    "ok: every record decodes, and the derived state equals a replay of the log"
                );
                Ok(())
            } else {
                for p in &problems {
                    println!("problem: {p}");
                }
                bail!("{} problem(s) found", problems.len())
            }
        }
        Command::Stats => {
            let store = open_store(&data_dir(&cli.data, &cli.config)?)?;
            let stats = store.stats()?;
            store.close()?;
            println!("{}", serde_json::to_string_pretty(&stats)?);
            Ok(())
        }
        Command::Token { name, scopes } => {
            for s in scopes.split(',') {
                config::Scope::parse(s)
                    .with_context(|| format!("unknown scope {s:?} (ingest, read, admin)"))?;
            }
            let token: String = (0..32)
                .map(|_| format!("{:02x}", rand::random::<u8>()))
                .collect();
            let hash = hex::encode(config::sha256(token.as_bytes()));
            println!("token: {token}");
            println!("\n# in ticks.toml:\n[[tokens]]\nname = \"{name}\"\nsha256 = \"{hash}\"\nscopes = [{}]", scopes.split(',').map(|s| format!("\"{}\"", s.trim())).collect::<Vec<_>>().join(", "));
            Ok(())
        }
    }
}

/// CLI filters `key=value` as query parameters.
fn key_values(params: &[String]) -> Result<Vec<(String, String)>> {
    params
        .iter()
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .with_context(|| format!("{p:?}: expected key=value"))
        })
        .collect()
}

fn open_input(path: &Path) -> Result<Box<dyn BufRead>> {
    let raw: Box<dyn Read> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?)
    };
    let name = path.to_string_lossy();
    let reader: Box<dyn Read> = if name.ends_with(".gz") {
        Box::new(flate2::read::MultiGzDecoder::new(raw))
    } else if name.ends_with(".zst") {
        Box::new(zstd::stream::read::Decoder::new(raw)?)
    } else {
        raw
    };
    Ok(Box::new(BufReader::with_capacity(1 << 20, reader)))
}

fn import_files(store: &Store, files: &[PathBuf], rejects: Option<&Path>) -> Result<()> {
    let mut any_rejects = false;
    for file in files {
        let started = Instant::now();
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        let progress = |bytes: u64, lines: u64| {
            let secs = started.elapsed().as_secs_f64().max(1e-3);
            bar.set_message(format!(
                "{}: {lines} lines, {:.1} MiB, {:.0} lines/s",
                file.display(),
                bytes as f64 / 1048576.0,
                lines as f64 / secs
            ));
            bar.tick();
        };
        let rejects_path = rejects.map(Path::to_path_buf).unwrap_or_else(|| {
            if file.as_os_str() == "-" {
                PathBuf::from("rejects.ndjson")
            } else {
                PathBuf::from(format!("{}.rejects", file.display()))
            }
        });
        let opts = ticks_ingest::ImportOptions {
            rejects: Some(rejects_path.clone()),
            progress: Some(&progress),
            ..Default::default()
        };
        let report = ticks_ingest::import(store, open_input(file)?, &opts)?;
        bar.finish_and_clear();
        let secs = started.elapsed().as_secs_f64().max(1e-3);
        println!(
            "{}: {} lines: {} stored, {} duplicates, {} rejected in {:.1} s ({:.0} lines/s)",
            file.display(),
            report.lines,
            report.stored,
            report.duplicates,
            report.rejected,
            secs,
            report.lines as f64 / secs
        );
        for r in &report.rejections {
            println!("  line {}: {}", r.line, r.reason);
        }
        if report.rejected > 0 {
            any_rejects = true;
            println!(
                "  rejected lines were written to {}",
                rejects_path.display()
            );
        } else {
            let _ = std::fs::remove_file(&rejects_path);
        }
    }
    store.flush_text()?;
    if any_rejects {
        bail!("some lines were rejected");
    }
    Ok(())
}

fn print_page(page: &ticks_query::Page, format: Format) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match format {
        Format::Json => {
            let v = serde_json::json!({"total": page.total, "entries": page.entries.iter().map(present::entry_json).collect::<Vec<_>>(), "next_cursor": page.next_cursor});
            writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        }
        Format::Ndjson => {
            for e in &page.entries {
                writeln!(out, "{}", serde_json::to_string(&present::entry_json(e))?)?;
            }
        }
        Format::Table => {
            writeln!(
                out,
                "{:>8}  {:<29}  {:<18}  {:<24}  {:<22}  {:>4}  {:<8}  {:<10}  {:<14}  error",
                "#",
                "recorded on",
                "category",
                "name",
                "template",
                "code",
                "type",
                "status",
                "phone"
            )?;
            for e in &page.entries {
                let cut = |s: &Option<String>, n: usize| {
                    s.as_deref()
                        .unwrap_or("")
                        .chars()
                        .take(n)
                        .collect::<String>()
                };
                writeln!(
                    out,
                    "{:>8}  {:<29}  {:<18}  {:<24}  {:<22}  {:>4}  {:<8}  {:<10}  {:<14}  {}",
                    e.id.0,
                    present::rfc3339(e.recorded_ms, e.offset_s),
                    cut(&e.category, 18),
                    cut(&e.name, 24),
                    cut(&e.template, 22),
                    e.response_code
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "-".into()),
                    cut(&e.recipient_type, 8),
                    e.status.as_str(),
                    cut(&e.phone, 14),
                    e.error_code
                        .map(|c| format!("{c} {}", e.error_title.as_deref().unwrap_or("")))
                        .unwrap_or_default()
                )?;
            }
            writeln!(
                out,
                "{} of {} matching entries",
                page.entries.len(),
                page.total
            )?;
        }
    }
    Ok(())
}

/// Raises the soft limit on open descriptors to the hard limit (a server
/// holds one per connection, and sled and tantivy need theirs), and returns
/// the limit now in force, if any.
fn raise_descriptor_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!("could not raise the open-file limit: {e}");
        }
    }
    getrlimit(Resource::Nofile).current
}

/// Connections served at once when the configuration does not say: a
/// quarter of the descriptor limit, so that connections can never take the
/// descriptors the store's files, the checkpoint and the relays need.
fn default_max_connections(descriptor_limit: Option<u64>) -> usize {
    descriptor_limit.map_or(4096, |n| (n / 4).clamp(16, 4096) as usize)
}

fn serve(settings: config::Settings, demo: bool) -> Result<()> {
    let data = settings.data.clone();
    let descriptors = raise_descriptor_limit();
    let max_connections = settings
        .max_connections
        .unwrap_or_else(|| default_max_connections(descriptors));
    if let Some(n) = descriptors {
        if max_connections as u64 > n / 2 {
            tracing::warn!(
                max_connections,
                descriptor_limit = n,
                "max_connections is over half the descriptor limit: a connection storm may starve the store of descriptors"
            );
        }
    }
    let store = open_store(&data)?;
    if settings.app_secret.is_none() {
        tracing::warn!("no app secret configured: webhook signatures are not checked (allowed on loopback only)");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("listening on {}", settings.listen))?;
        let addr = listener.local_addr()?;
        let relays = if settings.relay_urls.is_empty() {
            relay::Relays::none()
        } else {
            relay::start(
                store.clone(),
                &settings.relay_urls,
                settings.app_secret.clone(),
            )
        };
        let retention_settings = settings.retention.clone();
        let app = Arc::new(app::App::new(settings));
        app.set_store(store.clone());
        let _ = app.relays.set(relays);
        println!("ticks listening on http://{addr}");
        let _ = std::io::stdout().flush();
        {
            let app = app.clone();
            let store = store.clone();
            tokio::task::spawn_blocking(move || {
                if demo {
                    if let Err(e) = fill_demo(&store) {
                        tracing::error!("demo data: {e:#}");
                    }
                }
                if let Err(e) = store.flush_text() {
                    tracing::error!("full-text index: {e}");
                }
                app.set_ready();
            });
        }
        if let Some((days, dir)) = retention_settings {
            retention::spawn(store.clone(), days, dir);
        }
        {
            // A checkpoint every 10 minutes keeps the next start short (an
            // idle store has nothing new to write, and writes nothing).
            let store = store.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(600));
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let s = store.clone();
                    let _ = tokio::task::spawn_blocking(move || s.checkpoint()).await;
                }
            });
        }
        http::serve(app, listener, max_connections, shutdown_signal()).await;
        anyhow::Ok(())
    });
    tracing::info!("shutting down: a checkpoint if records came since the last");
    store.close()?;
    result
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Fills an empty store with 30 days of generated traffic ending now.
fn fill_demo(store: &Store) -> Result<()> {
    // Not `stats()`: its log count reads the whole log once.
    if !store.snapshot().live().is_empty() {
        return Ok(());
    }
    let mut opts = ticks_ingest::generate::GeneratorOptions::new(20_000);
    opts.start_ms = ticks_ingest::now_ms() - opts.span_ms;
    let mut data = Vec::new();
    for line in ticks_ingest::generate::Generator::new(opts) {
        data.extend_from_slice(&line);
        data.push(b'\n');
    }
    let report = ticks_ingest::import(
        store,
        BufReader::new(&data[..]),
        &ticks_ingest::ImportOptions::default(),
    )?;
    tracing::info!(
        lines = report.lines,
        stored = report.stored,
        "demo data generated"
    );
    Ok(())
}
