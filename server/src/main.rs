//! `ticks`: the Ticks server and command line.
//!
//! # Layout, from the top down (no module imports one above it)
//! - `main`, `cli`: the command line, one module per subcommand; `serve`
//!   starts the server.
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

mod alert_service;
mod alerts;
mod api;
mod app;
mod cli;
mod config;
mod error;
mod export;
mod http;
mod metrics;
mod openapi;
mod pdf;
mod present;
mod proxy;
mod purge;
mod rates;
mod relay;
mod report_text;
mod request;
mod respond;
mod retention;
mod routes;
mod templates;
mod ui;

use clap::Parser;

// Ingest allocates many small strings on several threads at once; glibc's
// malloc spends a quarter of the time in its arena locks there (measured
// with perf), mimalloc does not.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TICKS_LOG")
                .unwrap_or_else(|_| "info,sled=warn,tantivy=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = cli::Cli::parse();
    if let Err(e) = cli::run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(2);
    }
}
