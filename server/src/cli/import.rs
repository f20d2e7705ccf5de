//! `ticks import`: import NDJSON files (send results and webhook bodies); `-` reads stdin; .gz and .zst are decompressed.

use super::common::Place;
use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::Instant;
use ticks_engine::Store;

/// The arguments of `ticks import`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Files to import.
    #[arg(required = true)]
    pub(crate) files: Vec<PathBuf>,
    /// Where to write rejected lines (default: FILE.rejects next to each file, or rejects.ndjson for stdin).
    #[arg(long)]
    pub(crate) rejects: Option<PathBuf>,
}

/// `ticks import`.
pub(crate) fn run(place: &Place, args: Args) -> Result<()> {
    let Args { files, rejects } = args;
    let store = place.open_store()?;
    let result = import_files(&store, &files, rejects.as_deref());
    store.close()?;
    result
}

fn open_input(path: &Path) -> Result<Box<dyn BufRead>> {
    let raw: Box<dyn Read> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?)
    };
    let name = path.to_string_lossy();
    let reader: Box<dyn Read> = if name.ends_with(".gz") {
        Box::new(flate2::read::MultiGzDecoder::new(raw))
    } else if name.ends_with(".zst") {
        Box::new(zstd::stream::read::Decoder::new(raw)?)
    } else {
        raw
    };
    Ok(Box::new(BufReader::with_capacity(1 << 20, reader)))
}

fn import_files(store: &Store, files: &[PathBuf], rejects: Option<&Path>) -> Result<()> {
    let mut any_rejects = false;
    for file in files {
        let started = Instant::now();
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        let progress = |bytes: u64, lines: u64| {
            let secs = started.elapsed().as_secs_f64().max(1e-3);
            bar.set_message(format!(
                "{}: {lines} lines, {:.1} MiB, {:.0} lines/s",
                file.display(),
                bytes as f64 / 1048576.0,
                lines as f64 / secs
            ));
            bar.tick();
        };
        let rejects_path = rejects.map(Path::to_path_buf).unwrap_or_else(|| {
            if file.as_os_str() == "-" {
                PathBuf::from("rejects.ndjson")
            } else {
                PathBuf::from(format!("{}.rejects", file.display()))
            }
        });
        let opts = ticks_ingest::ImportOptions {
            rejects: Some(rejects_path.clone()),
            progress: Some(&progress),
            ..Default::default()
        };
        let report = ticks_ingest::import(store, open_input(file)?, &opts)?;
        bar.finish_and_clear();
        let secs = started.elapsed().as_secs_f64().max(1e-3);
        println!(
            "{}: {} lines: {} stored, {} duplicates, {} rejected in {:.1} s ({:.0} lines/s)",
            file.display(),
            report.lines,
            report.stored,
            report.duplicates,
            report.rejected,
            secs,
            report.lines as f64 / secs
        );
        for r in &report.rejections {
            println!("  line {}: {}", r.line, r.reason);
        }
        if report.rejected > 0 {
            any_rejects = true;
            println!(
                "  rejected lines were written to {}",
                rejects_path.display()
            );
        } else {
            let _ = std::fs::remove_file(&rejects_path);
        }
    }
    store.flush_text()?;
    if any_rejects {
        bail!("some lines were rejected");
    }
    Ok(())
}
