//! `ticks show`: show one entry with its raw payloads.

use super::common::{Place, Target};
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
    let v = match place.target()? {
        Target::Local(store) => {
            let detail = store
                .entry_detail(EntryId(id))?
                .with_context(|| format!("entry {id} does not exist"))?;
            let mut v = present::entry_json(&detail.entry);
            v["inputs"] = detail
                .inputs
                .iter()
                .map(|i| serde_json::json!({"seq": i.seq.0, "source": i.source.as_str(), "raw": serde_json::from_slice::<serde_json::Value>(&i.raw).unwrap_or_else(|_| String::from_utf8_lossy(&i.raw).into())}))
                .collect();
            store.close()?;
            v
        }
        Target::Remote(server) => {
            let mut d = server.get_json(&format!("/v1/logs/{id}"), &[])?;
            let mut v = d["entry"].take();
            v["inputs"] = d["inputs"]
                .as_array()
                .map(|inputs| {
                    inputs
                        .iter()
                        .map(|i| serde_json::json!({"seq": i["seq"], "source": i["source"], "raw": i["raw"]}))
                        .collect()
                })
                .unwrap_or_default();
            v
        }
    };
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}
