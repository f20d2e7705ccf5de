//! `ticks stats`: sizes and counts.

use super::common::Place;
use anyhow::Result;

/// `ticks stats`.
pub(crate) fn run(place: &Place) -> Result<()> {
    let store = place.open_store()?;
    let stats = store.stats()?;
    store.close()?;
    println!("{}", serde_json::to_string_pretty(&stats)?);
    Ok(())
}
