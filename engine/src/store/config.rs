//! How to open a store.

use crate::error::{Error, Result};
use std::path::PathBuf;
use std::time::Duration;

/// How to open a store.
#[derive(Clone, Debug)]
pub struct Config {
    /// The data directory; created if missing.
    pub dir: PathBuf,
    /// sled's page cache, in bytes.
    pub cache_bytes: u64,
    /// How often the full-text index commits (its maximum lag behind the log).
    pub text_commit_interval: Duration,
    /// zstd level for log blocks (1 is fast; higher is smaller).
    pub compression_level: i32,
    /// Encrypt log blocks with per-period keys (the default), so that
    /// a purge can make deleted content unrecoverable (see `keys`). Without
    /// it a purge removes content from the log, but sled may keep the freed
    /// bytes in its files until it rewrites them.
    pub encrypt: bool,
    /// How many of the newest entries keep their rows unsealed (as structs,
    /// not in compressed blocks): their statuses are still arriving. Lower
    /// costs less memory and more re-sealing; tests set it low so that
    /// small stores are sealed too.
    pub unsealed_rows: usize,
    /// How long after a message an inbound message that quotes nothing is
    /// still attributed to it, in hours (0: never). Part of the derived
    /// state: a change rebuilds it from the log at the next open.
    pub attribution_window_hours: u32,
}

impl Config {
    /// Defaults for a data directory: 256 MiB cache, 500 ms text commits, zstd level 3.
    pub fn new(dir: impl Into<PathBuf>) -> Config {
        Config {
            dir: dir.into(),
            cache_bytes: 256 * 1024 * 1024,
            text_commit_interval: Duration::from_millis(500),
            compression_level: 3,
            encrypt: true,
            unsealed_rows: 1 << 16,
            attribution_window_hours: 24,
        }
    }

    pub(super) fn validate(&self) -> Result<()> {
        if !(1..=19).contains(&self.compression_level) {
            return Err(Error::Config(format!(
                "compression_level must be 1..=19, got {}",
                self.compression_level
            )));
        }
        if self.text_commit_interval > Duration::from_secs(1) || self.text_commit_interval.is_zero()
        {
            return Err(Error::Config(
                "text_commit_interval must be above 0 and at most 1 s (the index may lag by at most a second)".into(),
            ));
        }
        Ok(())
    }
}
