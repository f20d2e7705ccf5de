//! `ticks stats`: sizes and counts.

use super::common::{Place, Target};
use anyhow::Result;

/// `ticks stats`.
pub(crate) fn run(place: &Place) -> Result<()> {
    let stats = match place.target()? {
        Target::Local(store) => {
            let stats = serde_json::to_value(store.stats()?)?;
            store.close()?;
            stats
        }
        Target::Remote(server) => server.get_json("/v1/store", &[])?,
    };
    println!("{}", serde_json::to_string_pretty(&stats)?);
    Ok(())
}
