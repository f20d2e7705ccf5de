//! `ticks export`: export the entries matching filters (the parameters of GET /v1/logs) to a file, with a receipt.

use super::common::{key_values, Place, Target};
use crate::export;
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::time::Instant;

/// The arguments of `ticks export`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// csv, xlsx, pdf or ndjson.
    #[arg(long)]
    pub(crate) format: String,
    /// The file to write.
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// Filters as key=value.
    pub(crate) params: Vec<String>,
}

/// `ticks export`.
pub(crate) fn run(place: &Place, args: Args) -> Result<()> {
    let Args {
        format,
        out,
        params,
    } = args;
    let format = export::Format::parse(&format)
        .with_context(|| format!("format: {format:?} is not one of csv, xlsx, pdf, ndjson"))?;
    let pairs = key_values(&params)?;
    let query = ticks_query::LogQuery::from_params(&pairs, &["limit", "offset", "cursor"])?;
    let filter: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.iter())
        .finish();
    let started = Instant::now();
    let store = match place.target()? {
        Target::Local(store) => store,
        Target::Remote(server) => {
            // The server exports and keeps the receipt; it is read back
            // by its filter and format.
            let mut asked = pairs;
            asked.push(("format".into(), format.extension().into()));
            let bytes = server.get("/v1/export", &asked)?;
            std::fs::write(&out, &bytes).with_context(|| format!("writing {}", out.display()))?;
            let receipts = server.get_json("/v1/receipts", &[])?;
            let receipt = receipts["receipts"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|r| r["filter"] == filter.as_str() && r["format"] == format.extension())
                .max_by_key(|r| r["created_at"].as_str().map(String::from))
                .cloned()
                .context("the server kept no receipt of the export")?;
            eprintln!(
                "exported {} entries to {} through {} in {:.1} s",
                receipt["count"],
                out.display(),
                server.url(),
                started.elapsed().as_secs_f64()
            );
            println!("{}", serde_json::to_string_pretty(&receipt)?);
            return Ok(());
        }
    };
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
