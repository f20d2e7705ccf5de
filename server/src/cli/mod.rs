//! The command line: one module per subcommand, each with its arguments
//! and what it does; `common` holds what they share.

mod check;
mod clickhouse;
mod common;
mod export;
mod generate;
mod import;
mod purge;
mod query;
mod remote;
mod report;
mod serve;
mod show;
mod stats;
mod templates;
mod timeline;
mod token;

use anyhow::Result;
use clap::{Parser, Subcommand};
use common::Place;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "ticks",
    version,
    about = "Ticks: an embedded log engine for WhatsApp Business messaging"
)]
pub(crate) struct Cli {
    /// Configuration file (TOML). Environment (TICKS_*) and flags override it.
    #[arg(long, global = true, env = "TICKS_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (default ./ticks-data).
    #[arg(long, global = true, env = "TICKS_DATA")]
    data: Option<PathBuf>,
    /// A running server to ask (query, show, timeline, report, export,
    /// stats) instead of opening the data directory; without it, the server
    /// running on the data directory is asked, if one is.
    #[arg(long, global = true, env = "TICKS_URL")]
    url: Option<String>,
    /// The API token to ask a running server with.
    #[arg(
        long = "api-token",
        global = true,
        env = "TICKS_API_TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API, the webhook endpoint and the web page.
    Serve(serve::Args),
    /// Import NDJSON files (send results and webhook bodies); `-` reads stdin; .gz and .zst are decompressed.
    Import(import::Args),
    /// Query the log with the API's filters, e.g. `ticks query status=failed name="Black Friday" sort=-recorded_at`.
    Query(query::Args),
    /// The consolidated report (funnels, failure reasons, series, inbound) for filters,
    /// e.g. `ticks report name="Black Friday" tz=America/Sao_Paulo interval=day`.
    Report(report::Args),
    /// Export the entries matching filters (the parameters of GET /v1/logs) to a file, with a receipt.
    Export(export::Args),
    /// Delete the entries matching filters, for good. Runs only when an export
    /// covers them (`--export-to DIR` makes one first, or `--receipt ID` names
    /// one), or with `--force`, which the purge record keeps.
    Purge(purge::Args),
    /// Show one entry with its raw payloads.
    Show(show::Args),
    /// Show a message's timeline.
    Timeline(timeline::Args),
    /// Print generated realistic traffic as NDJSON.
    Generate(generate::Args),
    /// Verify the store's invariants.
    Check,
    /// Sizes and counts.
    Stats,
    /// Create an API token and print the configuration line for it.
    Token(token::Args),
    /// The template catalog: `import FILE...`, `sync --waba ID`, `list`.
    Templates(templates::Args),
    /// The ClickHouse backend: `init` creates or upgrades its tables.
    Clickhouse(clickhouse::Args),
    /// Copy the store into another backend (`--to clickhouse`); resumable.
    Migrate(clickhouse::MigrateArgs),
}

/// Runs the command the arguments name.
pub(crate) fn run(cli: Cli) -> Result<()> {
    let place = Place {
        data: cli.data,
        config: cli.config,
        url: cli.url,
        token: cli.token,
    };
    match cli.command {
        Command::Serve(args) => serve::run(&place, args),
        Command::Import(args) => import::run(&place, args),
        Command::Query(args) => query::run(&place, args),
        Command::Report(args) => report::run(&place, args),
        Command::Export(args) => export::run(&place, args),
        Command::Purge(args) => purge::run(&place, args),
        Command::Show(args) => show::run(&place, args),
        Command::Timeline(args) => timeline::run(&place, args),
        Command::Generate(args) => generate::run(&place, args),
        Command::Check => check::run(&place),
        Command::Stats => stats::run(&place),
        Command::Token(args) => token::run(&place, args),
        Command::Templates(args) => templates::run(&place, args),
        Command::Clickhouse(args) => clickhouse::run(&place, args),
        Command::Migrate(args) => clickhouse::migrate(&place, args),
    }
}
