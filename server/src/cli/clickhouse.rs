//! `ticks clickhouse init` and `ticks migrate --to clickhouse`: the
//! ClickHouse backend's schema, and an embedded store copied into it.

use super::common::Place;
use crate::config;
use anyhow::{bail, Context, Result};
use std::io::Write;
use ticks_engine::{Input, Record};
use ticks_query::clickhouse::{ClickHouse, ClickHouseConfig};
use ticks_query::Backend;

/// Where the ClickHouse servers are, when not (only) in the configuration.
#[derive(clap::Args)]
pub(crate) struct Servers {
    /// The ClickHouse servers' HTTP URLs, tried in turn (comma-separated;
    /// default: `clickhouse_url` of the configuration).
    #[arg(
        long = "clickhouse-url",
        env = "TICKS_CLICKHOUSE_URL",
        value_delimiter = ','
    )]
    clickhouse_urls: Vec<String>,
}

/// The arguments of `ticks clickhouse`.
#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(clap::Subcommand)]
enum Sub {
    /// Create or upgrade the tables (`ticks serve` does it at start too),
    /// and print what the server is.
    Init(Servers),
}

/// The arguments of `ticks migrate`.
#[derive(clap::Args)]
pub(crate) struct MigrateArgs {
    /// Where to copy the store to (only `clickhouse`).
    #[arg(long)]
    to: String,
    #[command(flatten)]
    servers: Servers,
    /// Inputs per insert.
    #[arg(long, default_value_t = 5000)]
    batch: usize,
    /// Inputs per fold when the copy's entries are derived: people and
    /// their entries are folded in parts of about this many inputs
    /// (memory follows it: ~0.8 GiB per million inputs).
    #[arg(long, default_value_t = 2_000_000)]
    inputs_per_fold: usize,
}

fn clickhouse_config(place: &Place, servers: &Servers) -> Result<ClickHouseConfig> {
    let settings = config::Settings::load(
        place.config.as_deref(),
        config::Overrides {
            data: place.data.clone(),
            backend: Some("clickhouse".into()),
            clickhouse_urls: servers.clickhouse_urls.clone(),
            ..Default::default()
        },
    )?;
    match settings.backend {
        config::BackendChoice::ClickHouse(ch) => Ok(ch),
        config::BackendChoice::Embedded => bail!("backend: not clickhouse"),
    }
}

/// `ticks clickhouse`.
pub(crate) fn run(place: &Place, args: Args) -> Result<()> {
    match args.command {
        Sub::Init(servers) => {
            let ch = clickhouse_config(place, &servers)?;
            let backend = ClickHouse::open(&ch)
                .map_err(|e| anyhow::anyhow!("ClickHouse at {}: {e}", ch.urls.join(", ")))?;
            let info = backend.schema();
            println!(
                "ClickHouse {} at {}: database {} ready ({}; DDL {})",
                info.server_version,
                ch.urls.join(", "),
                ch.database,
                match &ch.cluster {
                    Some(c) => format!("cluster {c}, Distributed tables over local ones"),
                    None => "one server".into(),
                },
                if info.distributed_ddl {
                    "ON CLUSTER"
                } else if ch.cluster.is_some() {
                    "on each URL in turn"
                } else {
                    "on the server"
                }
            );
            Ok(())
        }
    }
}

/// `ticks migrate --to clickhouse`: every input of the store in the data
/// directory, byte for byte with its receive time, into ClickHouse. It
/// resumes after the last input a previous run copied (each insert is
/// all or nothing, and records which input of the store it ends with),
/// then derives every entry in one fold of the whole store. The template
/// catalog is copied first (a rerun adds nothing it has).
pub(crate) fn migrate(place: &Place, args: MigrateArgs) -> Result<()> {
    if args.to != "clickhouse" {
        bail!(
            "--to: {:?} is not a backend Ticks copies to (clickhouse)",
            args.to
        );
    }
    let ch = clickhouse_config(place, &args.servers)?;
    let store = place.open_store()?;
    let target = ClickHouse::open(&ch)
        .map_err(|e| anyhow::anyhow!("ClickHouse at {}: {e}", ch.urls.join(", ")))?;
    let resume = target
        .migrated_up_to()
        .map_err(|e| anyhow::anyhow!("reading where a previous copy stopped: {e}"))?;
    if let Some(seq) = resume {
        eprintln!("resuming after record {}", seq.0);
    }
    // The template catalog first, each version with the time it was first
    // seen: the entries derived below render templated sends with it.
    let versions: Vec<_> = store
        .templates()
        .iter()
        .flat_map(|versions| versions.iter())
        .map(|v| (v.def.clone(), Some(v.first_seen_ms)))
        .collect();
    if !versions.is_empty() {
        let added = target
            .add_templates(versions, ticks_ingest::now_ms())
            .map_err(|e| anyhow::anyhow!("copying the template catalog: {e}"))?;
        eprintln!(
            "template catalog: {} versions copied, {} updated, {} already there",
            added.versions, added.updated, added.unchanged
        );
    }
    let (mut copied, mut purges) = (0u64, 0u64);
    let mut batch = Vec::with_capacity(args.batch.max(1));
    let flush = |batch: &mut Vec<_>, copied: &mut u64| -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let n = batch.len() as u64;
        target
            .append_migrated(std::mem::take(batch))
            .map_err(|e| anyhow::anyhow!("copying to ClickHouse: {e}"))?;
        *copied += n;
        eprint!("\r{copied} inputs copied");
        let _ = std::io::stderr().flush();
        Ok(())
    };
    for record in store.records_after(resume) {
        let (seq, record) = record.context("reading the store's log")?;
        match record {
            Record::Input(input) => {
                batch.push((
                    seq,
                    Input {
                        source: input.source,
                        received_ms: input.received_ms,
                        raw: input.raw,
                        // Duplicates too: the derivation drops them as
                        // the store did.
                        events: input.events.into_iter().map(|(_, e)| e).collect(),
                    },
                ));
                if batch.len() >= args.batch.max(1) {
                    flush(&mut batch, &mut copied)?;
                }
            }
            // A purge names the store's own entry ids; what it deleted is
            // already gone from the inputs copied.
            Record::Purge(_) => purges += 1,
        }
    }
    flush(&mut batch, &mut copied)?;
    eprintln!();
    // The copies were stored without their entries: one fold of the whole
    // store derives them all (a rerun after a stop between the two does it
    // then).
    let derived = if target
        .migration_underived()
        .map_err(|e| anyhow::anyhow!("reading whether the copy has its entries: {e}"))?
    {
        let entries = target
            .derive_migrated(
                args.inputs_per_fold,
                Box::new(|read| {
                    eprint!("\r{read} inputs folded");
                    let _ = std::io::stderr().flush();
                }),
            )
            .map_err(|e| anyhow::anyhow!("deriving the entries in ClickHouse: {e}"))?;
        eprintln!();
        Some(entries)
    } else {
        None
    };
    println!(
        "{copied} inputs copied to ClickHouse at {}{}",
        ch.urls.join(", "),
        if purges > 0 {
            format!(" ({purges} purge records not copied: their entries' content was erased before the copy)")
        } else {
            String::new()
        }
    );
    if let Some(entries) = derived {
        println!("{entries} entries derived");
    }
    store.close()?;
    Ok(())
}
