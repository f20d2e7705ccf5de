//! `ticks purge`: delete the entries matching filters, for good. Runs only when an export

use super::common::{key_values, Place};
use crate::{export, purge};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::time::Instant;

/// The arguments of `ticks purge`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Filters as key=value (the parameters of GET /v1/logs, without paging); `--all` to select every entry.
    pub(crate) params: Vec<String>,
    /// Export the entries to this folder first, then purge them.
    #[arg(long)]
    pub(crate) export_to: Option<PathBuf>,
    /// Format of the --export-to file: ndjson (re-importable), csv, xlsx or pdf.
    #[arg(long, default_value = "ndjson")]
    pub(crate) format: String,
    /// The export receipt that covers the entries.
    #[arg(long)]
    pub(crate) receipt: Option<String>,
    /// Delete without an export, accepting that the entries are lost.
    #[arg(long)]
    pub(crate) force: bool,
    /// Allow a filter that selects every entry (or no filter at all).
    #[arg(long)]
    pub(crate) all: bool,
}

/// `ticks purge`.
pub(crate) fn run(place: &Place, args: Args) -> Result<()> {
    let Args {
        params,
        export_to,
        format,
        receipt,
        force,
        all,
    } = args;
    let pairs = key_values(&params)?;
    let query = purge::deletion_query(&pairs, all)?;
    let format = export::Format::parse(&format)
        .with_context(|| format!("format: {format:?} is not one of csv, xlsx, pdf, ndjson"))?;
    let store = place.open_store()?;
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
