//! What the backend's handles, its writer thread and a purge share: the
//! client, the database's name, the layout, and the health of writes.

use super::client::{ChError, Client};
use super::rowbinary::Rows;
use super::schema::{Layout, SchemaInfo};
use crate::backend::BackendResult;
use crate::error::QueryError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use ticks_engine::WriteHealth;

/// What the backend's handles and its writer thread share.
pub(super) struct Shared {
    pub(super) client: Client,
    /// The database, quoted.
    pub(super) db: String,
    pub(super) layout: Layout,
    pub(super) info: SchemaInfo,
    pub(super) attribution_window_hours: u32,
    /// Most inputs one derivation folds (`ClickHouseConfig::max_folded_inputs`).
    pub(super) max_folded: usize,
    /// See `ClickHouseConfig::prefilter_max_rows`.
    pub(super) prefilter_max_rows: u64,
    fault: Mutex<Option<String>>,
    failures: AtomicU64,
}

impl Shared {
    pub(super) fn new(
        client: Client,
        db: String,
        layout: Layout,
        info: SchemaInfo,
        attribution_window_hours: u32,
        max_folded: usize,
        prefilter_max_rows: u64,
    ) -> Shared {
        Shared {
            client,
            db,
            layout,
            info,
            attribution_window_hours,
            max_folded: max_folded.max(1),
            prefilter_max_rows,
            fault: Mutex::new(None),
            failures: AtomicU64::new(0),
        }
    }

    /// A table's full name (on a cluster, the Distributed one).
    pub(super) fn table(&self, name: &str) -> String {
        format!("{}.{name}", self.db)
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

    /// The servers whose own tables hold the data: the nodes of a cluster,
    /// else the one server (asked through every URL in turn).
    pub(super) fn nodes(&self) -> Vec<Client> {
        match self.layout {
            Layout::Single => vec![self.client.copy()],
            Layout::Cluster(_) => self
                .client
                .urls()
                .iter()
                .map(|u| self.client.node(u))
                .collect(),
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
