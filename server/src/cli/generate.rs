//! `ticks generate`: print generated realistic traffic as NDJSON.

use super::common::Place;
use anyhow::Result;
use std::io::Write;

/// The arguments of `ticks generate`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Number of messages.
    #[arg(long)]
    pub(crate) messages: u64,
    /// Seed (the same seed gives the same data).
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
    /// Days the messages spread over.
    #[arg(long, default_value_t = 30)]
    pub(crate) days: u32,
    /// Make the data end a day before now (its webhooks and replies, up to
    /// hours later, then fall before now) instead of on 2025-01-31.
    #[arg(long)]
    pub(crate) until_now: bool,
    /// Also write the definitions of the templates the data uses, as the
    /// Graph API answers them (for `ticks templates import`), to this file.
    #[arg(long)]
    pub(crate) templates: Option<std::path::PathBuf>,
}

/// `ticks generate`.
pub(crate) fn run(_place: &Place, args: Args) -> Result<()> {
    let Args {
        messages,
        seed,
        days,
        until_now,
        templates,
    } = args;
    let mut opts = ticks_ingest::generate::GeneratorOptions::new(messages);
    opts.seed = seed;
    opts.span_ms = i64::from(days.max(1)) * 86_400_000;
    if until_now {
        opts = opts.ending_before(ticks_ingest::now_ms());
    }
    if let Some(path) = templates {
        let page = ticks_ingest::generate::template_definitions(&opts);
        std::fs::write(&path, serde_json::to_vec_pretty(&page)?)?;
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for line in ticks_ingest::generate::Generator::new(opts) {
        out.write_all(&line)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}
