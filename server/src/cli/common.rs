//! What the subcommands share: where the store is, filters given as
//! `key=value`, output formats.

use super::remote::Remote;
use crate::config;
use anyhow::{Context, Result};
use clap::ValueEnum;
use std::path::{Path, PathBuf};
use ticks_engine::{Config as StoreConfig, Store};

/// Where the store is: the global `--data` and `--config`, or the server
/// to ask (`--url`, `--token`).
pub(crate) struct Place {
    pub(crate) data: Option<PathBuf>,
    pub(crate) config: Option<PathBuf>,
    pub(crate) url: Option<String>,
    pub(crate) token: Option<String>,
}

/// What a reading command reads: the store itself, or the server that
/// holds it.
pub(crate) enum Target {
    Local(Store),
    Remote(Remote),
}

impl Place {
    /// The server named with `--url`, else the one running on the data
    /// directory, else the store opened here.
    pub(crate) fn target(&self) -> Result<Target> {
        if let Some(url) = &self.url {
            return Ok(Target::Remote(Remote::new(url, self.token.clone())?));
        }
        let settings = settings(&self.data, &self.config)?;
        if let Some(remote) = Remote::running_on(&settings.data, self.token.clone())? {
            tracing::info!(
                "asking the server running on {} at {}",
                settings.data.display(),
                remote.url()
            );
            return Ok(Target::Remote(remote));
        }
        Ok(Target::Local(open_store(&settings.data, &settings)?))
    }

    /// Opens the store in the data directory, derived as the configuration
    /// says (the same attribution window as `ticks serve`).
    pub(crate) fn open_store(&self) -> Result<Store> {
        let settings = settings(&self.data, &self.config)?;
        open_store(&settings.data, &settings)
    }
}

fn settings(cli_data: &Option<PathBuf>, config: &Option<PathBuf>) -> Result<config::Settings> {
    config::Settings::load(
        config.as_deref(),
        config::Overrides {
            data: cli_data.clone(),
            ..Default::default()
        },
    )
}

pub(crate) fn open_store(dir: &Path, settings: &config::Settings) -> Result<Store> {
    let mut store_config = StoreConfig::new(dir);
    store_config.attribution_window_hours = settings.attribution_window_hours;
    Store::open(store_config).with_context(|| {
        format!(
            "opening the store in {} (is `ticks serve` running on it?)",
            dir.display()
        )
    })
}

/// CLI filters `key=value` as query parameters.
pub(crate) fn key_values(params: &[String]) -> Result<Vec<(String, String)>> {
    params
        .iter()
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .with_context(|| format!("{p:?}: expected key=value"))
        })
        .collect()
}

/// How `query` and `report` print.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Format {
    Table,
    Json,
    Ndjson,
}
