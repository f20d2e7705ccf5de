//! `ticks timeline`: show a message's timeline.

use super::common::Place;
use crate::present;
use anyhow::{Context, Result};

/// The arguments of `ticks timeline`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The message's wamid.
    pub(crate) wamid: String,
}

/// `ticks timeline`.
pub(crate) fn run(place: &Place, args: Args) -> Result<()> {
    let Args { wamid } = args;
    let store = place.open_store()?;
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
