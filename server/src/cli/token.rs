//! `ticks token`: create an API token and print the configuration line for it.

use super::common::Place;
use crate::config;
use anyhow::{Context, Result};

/// The arguments of `ticks token`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Who it is for.
    #[arg(long)]
    pub(crate) name: String,
    /// Scopes, comma-separated: ingest, send, read, admin.
    #[arg(long, default_value = "read")]
    pub(crate) scopes: String,
}

/// `ticks token`.
pub(crate) fn run(_place: &Place, args: Args) -> Result<()> {
    let Args { name, scopes } = args;
    for s in scopes.split(',') {
        config::Scope::parse(s)
            .with_context(|| format!("unknown scope {s:?} (ingest, send, read, admin)"))?;
    }
    let token: String = (0..32)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect();
    let hash = hex::encode(config::sha256(token.as_bytes()));
    println!("token: {token}");
    println!(
        "\n# in ticks.toml:\n[[tokens]]\nname = \"{name}\"\nsha256 = \"{hash}\"\nscopes = [{}]",
        scopes
            .split(',')
            .map(|s| format!("\"{}\"", s.trim()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}
