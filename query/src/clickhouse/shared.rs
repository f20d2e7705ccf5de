//! What the backend's handles, its writer thread and a purge share: the
//! client, the database's name, the layout, the health of writes, the
//! settings table and the template catalog kept in it.

use super::client::quote;
use super::client::{ChError, Client};
use super::rowbinary::{Reader, Rows};
use super::schema::{Layout, SchemaInfo};
use crate::backend::BackendResult;
use crate::error::QueryError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use ticks_engine::templates::{Catalog, TemplateVersion};
use ticks_engine::{Derivation, WriteHealth};

/// The settings namespace the template catalog is kept in: one key per
/// template version (see [`catalog_key`]), its value the version as JSON.
pub(super) const TEMPLATES_NAMESPACE: &str = "templates";

/// How long a process uses the catalog it read before reading it again:
/// a template another process added renders here at most this late (and
/// that process derives its sends again once this much has passed, so no
/// fold begun with the older catalog outlives it: see `templates.rs`).
pub(super) const CATALOG_FRESH: Duration = Duration::from_secs(1);

/// What the backend's handles and its writer thread share.
pub(super) struct Shared {
    pub(super) client: Client,
    /// The database, quoted.
    pub(super) db: String,
    pub(super) layout: Layout,
    /// Whether the tables are replicated (each URL a replica).
    pub(super) replicated: bool,
    /// Whether the servers keep each partition's most recent part written
    /// with quorum as it is: ClickHouse before 20.4 neither merges nor
    /// mutates it, and once it is dropped refuses reads with
    /// `select_sequential_consistency` until the next quorum insert there.
    pub(super) quorum_part_kept: bool,
    /// The day (since the epoch) before which the settler last deleted the
    /// changes, where it deletes them rather than drops their partitions.
    pub(super) trimmed_day: std::sync::atomic::AtomicU32,
    pub(super) info: SchemaInfo,
    pub(super) attribution_window_hours: u32,
    /// Most inputs one derivation folds (`ClickHouseConfig::max_folded_inputs`).
    pub(super) max_folded: usize,
    /// See `ClickHouseConfig::group_all_max_rows`.
    pub(super) group_all_max: u64,
    /// See `ClickHouseConfig::settle_part_rows`.
    pub(super) settle_part: u64,
    fault: Mutex<Option<String>>,
    failures: AtomicU64,
    /// The template catalog as last read, and when.
    catalog: Mutex<Option<(Arc<Catalog>, Instant)>>,
}

impl Shared {
    pub(super) fn new(
        client: Client,
        db: String,
        layout: Layout,
        info: SchemaInfo,
        config: &super::ClickHouseConfig,
    ) -> Shared {
        Shared {
            client,
            db,
            layout,
            replicated: config.replicated,
            quorum_part_kept: config.replicated
                && config.insert_quorum >= 2
                && info.version < super::QUORUM_PARTS_MUTABLE,
            trimmed_day: std::sync::atomic::AtomicU32::new(0),
            info,
            attribution_window_hours: config.attribution_window_hours,
            max_folded: config.max_folded_inputs.max(1),
            group_all_max: config.group_all_max_rows,
            settle_part: config.settle_part_rows.max(1),
            fault: Mutex::new(None),
            failures: AtomicU64::new(0),
            catalog: Mutex::new(None),
        }
    }

    /// A table's full name (on a cluster, the Distributed one).
    pub(super) fn table(&self, name: &str) -> String {
        format!("{}.{name}", self.db)
    }

    /// A table's name on one server (on a cluster, its local table's),
    /// without the database: what `system` tables call it.
    pub(super) fn local_name(&self, name: &str) -> String {
        super::schema::local_name(name, &self.layout)
    }

    /// A table on one server (on a cluster, its local table), with the
    /// database: what a statement sent to each node names.
    pub(super) fn local_table(&self, name: &str) -> String {
        format!("{}.{}", self.db, self.local_name(name))
    }

    /// The database's name as a string literal, for `system` tables.
    pub(super) fn db_literal(&self) -> String {
        quote(self.db.trim_matches('`'))
    }

    /// The settings an insert needs: on a cluster, answered only once
    /// every shard has its rows.
    pub(super) fn insert_settings(&self) -> &'static [(&'static str, &'static str)] {
        match self.layout {
            Layout::Single => &[],
            Layout::Cluster(_) => &[("insert_distributed_sync", "1")],
        }
    }

    /// The number a `SELECT count()` answers (with [`Shared::select_settings`]).
    pub(super) fn count(&self, select: &str) -> Result<u64, QueryError> {
        let text = self
            .client
            .query_text(&format!("{select}{}", self.select_settings()))?;
        text.trim()
            .parse()
            .map_err(|_| QueryError::Backend(format!("ClickHouse answered {text:?} to a count")))
    }

    /// What a select with a subquery over a Distributed table ends with:
    /// on a cluster the subquery runs on each shard's own table (every
    /// version of an entry is on one shard, sharded by key).
    pub(super) fn select_settings(&self) -> &'static str {
        match self.layout {
            Layout::Single => "",
            Layout::Cluster(_) => " SETTINGS distributed_product_mode = 'local'",
        }
    }

    /// The servers whose own tables hold the data: the nodes of a cluster
    /// or the replicas (a purge is done when each has erased its copy),
    /// else the one server (asked through every URL in turn).
    pub(super) fn nodes(&self) -> Vec<Client> {
        match self.layout {
            Layout::Single if !self.replicated => vec![self.client.copy()],
            _ => self
                .client
                .urls()
                .iter()
                .map(|u| self.client.node(u))
                .collect(),
        }
    }

    /// The servers a statement that changes a table's parts (a mutation,
    /// a dropped partition) is sent to: each node of a cluster, else one
    /// server (asked through every URL in turn), since replication carries
    /// such a statement to the other replicas of its table.
    pub(super) fn mutation_nodes(&self) -> Vec<Client> {
        match self.layout {
            Layout::Single => vec![self.client.copy()],
            Layout::Cluster(_) => self.nodes(),
        }
    }

    pub(super) fn insert(&self, table: &str, columns: &str, rows: &Rows) -> Result<(), ChError> {
        let sql = format!(
            "INSERT INTO {} ({columns}) FORMAT RowBinary",
            self.table(table)
        );
        self.client
            .insert(&sql, rows.as_bytes(), self.insert_settings())
    }

    pub(super) fn write_setting(
        &self,
        namespace: &str,
        key: &str,
        value: &[u8],
        deleted: bool,
    ) -> BackendResult<()> {
        let mut rows = Rows::new();
        rows.string(namespace.as_bytes())
            .string(key.as_bytes())
            .string(value)
            .u64(version_now())
            .u8(u8::from(deleted));
        self.insert("settings", "namespace, key, value, version, deleted", &rows)
            .map_err(unavailable)
    }

    /// The latest value of each key of a settings namespace that is not
    /// deleted, by key: argMax per key over the namespace's rows (a merge
    /// may not have replaced them yet).
    pub(super) fn read_settings(&self, namespace: &str) -> Result<Vec<(String, Vec<u8>)>, ChError> {
        let t = self.table("settings");
        let bytes = self.client.query(&format!(
            "SELECT key, value FROM (SELECT key, argMax(value, version) AS value, argMax(deleted, version) AS gone FROM {t} WHERE namespace = {} GROUP BY key) WHERE gone = 0 ORDER BY key FORMAT RowBinary",
            quote(namespace)
        ))?;
        let mut r = Reader::new(&bytes);
        let mut out = Vec::new();
        let bad = |_| ChError::Server {
            status: 500,
            message: "a setting could not be read".into(),
        };
        while !r.is_done() {
            let key = String::from_utf8_lossy(r.string().map_err(bad)?).into_owned();
            let value = r.string().map_err(bad)?.to_vec();
            out.push((key, value));
        }
        Ok(out)
    }

    /// Saves several settings of one namespace in one insert.
    pub(super) fn write_settings(
        &self,
        namespace: &str,
        values: &[(String, Vec<u8>)],
    ) -> Result<(), ChError> {
        let mut rows = Rows::new();
        let version = version_now();
        for (key, value) in values {
            rows.string(namespace.as_bytes())
                .string(key.as_bytes())
                .string(value)
                .u64(version)
                .u8(0);
        }
        self.insert("settings", "namespace, key, value, version, deleted", &rows)
    }

    /// The template catalog, read again when the copy in hand is older
    /// than [`CATALOG_FRESH`] (another process may have added to it).
    pub(super) fn catalog(&self) -> Result<Arc<Catalog>, ChError> {
        if let Ok(cached) = self.catalog.lock() {
            if let Some((catalog, read)) = cached.as_ref() {
                if read.elapsed() < CATALOG_FRESH {
                    return Ok(catalog.clone());
                }
            }
        }
        self.reload_catalog()
    }

    /// The catalog as last read, whatever its age (none read: empty).
    pub(super) fn cached_catalog(&self) -> Arc<Catalog> {
        self.catalog
            .lock()
            .ok()
            .and_then(|c| c.as_ref().map(|(catalog, _)| catalog.clone()))
            .unwrap_or_default()
    }

    /// Reads the template catalog now.
    pub(super) fn reload_catalog(&self) -> Result<Arc<Catalog>, ChError> {
        let mut versions: Vec<(String, TemplateVersion)> = Vec::new();
        for (key, value) in self.read_settings(TEMPLATES_NAMESPACE)? {
            match serde_json::from_slice::<TemplateVersion>(&value) {
                Ok(v) => versions.push((key, v)),
                Err(e) => tracing::warn!(
                    key,
                    "a stored template definition does not decode ({e}); it is left out"
                ),
            }
        }
        // Generations are each process's own counter: every process numbers
        // the stored versions alike, in the order they were first seen, so
        // the catalog's generation is how many versions it holds.
        versions.sort_by(|a, b| (a.1.first_seen_ms, &a.0).cmp(&(b.1.first_seen_ms, &b.0)));
        let catalog = Arc::new(Catalog::from_versions(
            versions.into_iter().enumerate().map(|(i, (_, mut v))| {
                v.generation = i as u64 + 1;
                v
            }),
        ));
        if let Ok(mut cached) = self.catalog.lock() {
            *cached = Some((catalog.clone(), Instant::now()));
        }
        Ok(catalog)
    }

    /// An empty fold with this deployment's attribution window and the
    /// template catalog (see [`Shared::catalog`]).
    pub(super) fn derivation(&self) -> Result<Derivation, ChError> {
        Ok(Derivation::new(self.attribution_window_hours).with_templates(self.catalog()?))
    }

    pub(super) fn health(&self) -> WriteHealth {
        WriteHealth {
            fault: self.fault.lock().map(|f| f.clone()).unwrap_or(None),
            failures: self.failures.load(Ordering::SeqCst),
        }
    }

    /// Counts a failure that is not a write's (a purge's last step), and
    /// says why until the next write succeeds.
    pub(super) fn note_fault(&self, why: String) {
        self.set_fault(Some(why));
    }

    pub(super) fn set_fault(&self, fault: Option<String>) {
        if fault.is_some() {
            self.failures.fetch_add(1, Ordering::SeqCst);
        }
        if let Ok(mut f) = self.fault.lock() {
            *f = fault;
        }
    }

    pub(super) fn is_faulted(&self) -> bool {
        self.fault.lock().map(|f| f.is_some()).unwrap_or(false)
    }
}

/// Any failure to store is a 503 to the sender (Meta retries), never an
/// acknowledgement.
pub(super) fn unavailable(e: ChError) -> QueryError {
    QueryError::Unavailable(e.to_string())
}

/// A settings row's version: microseconds now, so the latest write wins
/// across processes whose clocks agree to the millisecond.
fn version_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// The settings key of a template version: its name, language and a hash
/// of its content (a version is its content: a later definition with the
/// same content updates its status and category under the same key).
pub(super) fn catalog_key(v: &TemplateVersion) -> String {
    use sha2::{Digest, Sha256};
    let content = serde_json::to_vec(&v.def.content).unwrap_or_default();
    let hash = Sha256::digest(&content);
    format!(
        "{}\n{}\n{}",
        v.def.name,
        v.def.language,
        hex::encode(&hash[..16])
    )
}
