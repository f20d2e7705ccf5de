//! `ticks templates`: the template catalog from files or from the Graph API.

use super::common::Place;
use crate::config;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use ticks_query::Backend;

/// The arguments of `ticks templates`.
#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Import definitions from files in the Graph API's format (the answer
    /// of GET /{version}/{WABA_ID}/message_templates: one page or many, a
    /// list of definitions, or one).
    Import {
        /// Files to import.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Read every template of a WhatsApp Business Account from the Graph API
    /// (`graph_base_url`, `graph_token`); a sync that fails changes nothing.
    Sync {
        /// The WhatsApp Business Account id (default: `waba_id` of the
        /// configuration).
        #[arg(long)]
        waba: Option<String>,
        /// The Graph API's base URL (default: `graph_base_url`).
        #[arg(long)]
        graph_base_url: Option<String>,
        /// Seconds to wait for each page.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
        /// Attempts per page (with backoff) before the sync gives up.
        #[arg(long, default_value_t = 4)]
        attempts: u32,
    },
    /// List the catalog: each template with its status, versions and sends.
    List,
}

/// `ticks templates`.
pub(crate) fn run(place: &Place, args: Args) -> Result<()> {
    let store = place.open_store()?;
    let result = match args.command {
        Command::Import { files } => import(&store, &files),
        Command::Sync {
            waba,
            graph_base_url,
            timeout,
            attempts,
        } => sync(place, &store, waba, graph_base_url, timeout, attempts),
        Command::List => list(&store),
    };
    store.close()?;
    result
}

fn import(store: &ticks_engine::Store, files: &[PathBuf]) -> Result<()> {
    let mut defs = Vec::new();
    let mut bad = 0;
    for file in files {
        let raw = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        let page = ticks_ingest::parse_template_page(&raw)
            .with_context(|| format!("{}", file.display()))?;
        for e in &page.rejected {
            eprintln!("{}: {e}", file.display());
            bad += 1;
        }
        defs.extend(page.templates);
    }
    let added = store.add_templates(defs, ticks_ingest::now_ms())?;
    println!(
        "{} new versions, {} updated, {} unchanged, {} left out; {} sends to re-index",
        added.versions, added.updated, added.unchanged, bad, added.backfill
    );
    if added.backfill > 0 {
        // The backfill runs in the background of a server; here it is the
        // command's work, finished before the store closes.
        wait_for_backfill(store);
    }
    Ok(())
}

fn wait_for_backfill(store: &ticks_engine::Store) {
    while !store.backfill_done() {
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn sync(
    place: &Place,
    store: &ticks_engine::Store,
    waba: Option<String>,
    graph_base_url: Option<String>,
    timeout: u64,
    attempts: u32,
) -> Result<()> {
    let settings = config::Settings::load(
        place.config.as_deref(),
        config::Overrides {
            data: place.data.clone(),
            graph_base_url,
            ..Default::default()
        },
    )?;
    let Some(waba) = waba.or(settings.waba_id.clone()) else {
        bail!("--waba: name the WhatsApp Business Account (or set waba_id)");
    };
    let source = crate::templates::SyncSource {
        base_url: settings.graph_base_url.clone(),
        token: settings.graph_token.clone(),
        waba,
        version: settings.graph_version.clone(),
        timeout: Duration::from_secs(timeout.max(1)),
        attempts,
    };
    let backend: Arc<dyn Backend> = Arc::new(store.clone());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let added = runtime.block_on(crate::templates::sync(backend, &source))?;
    println!(
        "{} new versions, {} updated, {} unchanged; {} sends to re-index",
        added.versions, added.updated, added.unchanged, added.backfill
    );
    wait_for_backfill(store);
    Ok(())
}

fn list(store: &ticks_engine::Store) -> Result<()> {
    for t in ticks_query::template_list(store)? {
        println!(
            "{}\t{}\t{}\t{}\tversions {}\tsends {}",
            t.name,
            t.language,
            t.status.as_deref().unwrap_or("-"),
            t.category.as_deref().unwrap_or("-"),
            t.versions,
            t.sends
        );
    }
    Ok(())
}
