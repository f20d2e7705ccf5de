//! `ticks check`: verify the store's invariants.

use super::common::Place;
use anyhow::{bail, Result};

/// `ticks check`.
pub(crate) fn run(place: &Place) -> Result<()> {
    let store = place.open_store()?;
    let problems = store.check()?;
    let stats = store.stats()?;
    store.close()?;
    println!(
        "checked {} log records, {} entries",
        stats.log_records, stats.live_entries
    );
    if problems.is_empty() {
        println!("ok: every record decodes, and the derived state equals a replay of the log");
        Ok(())
    } else {
        for p in &problems {
            println!("problem: {p}");
        }
        bail!("{} problem(s) found", problems.len())
    }
}
