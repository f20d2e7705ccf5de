//! `ticks show`: show one entry with its raw payloads.

use super::common::Place;
use crate::present;
use anyhow::{Context, Result};
use ticks_engine::EntryId;

/// The arguments of `ticks show`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The entry id.
    pub(crate) id: u32,
}

/// `ticks show`.
pub(crate) fn run(place: &Place, args: Args) -> Result<()> {
    let Args { id } = args;
    let store = place.open_store()?;
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
