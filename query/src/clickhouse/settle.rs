//! The settled form of the entries: one row per entry that a count reads
//! without grouping versions.
//!
//! `entries` keeps every version a derivation wrote, and its latest per
//! key is found by grouping (`argMax`): at 10M messages, a count of one
//! category and status grouped 10.7M keys (seconds). `latest` holds what
//! the settler last saw as each key's latest row, and for every state it
//! replaced a cancel row (`sign` -1, the same values): `sum(sign)` over
//! the rows that match a filter is the number of entries that match, with
//! no grouping (a VersionedCollapsingMergeTree drops each state and its
//! cancel at its merges).
//!
//! `entry_changes` says when each key's row was written (the server's
//! clock, stamped by a materialized view of `entries`). One process of a
//! deployment settles (the holder of the `settler` lease in `meta`): each
//! round takes the keys changed between the last watermark and now less
//! [`Settler::lag`], writes for each the rows that bring its net rows in
//! `latest` to its latest row of `entries` (a diff of sums, so a round run
//! twice, or by two processes at once, is mended when the key is settled
//! again), then moves the watermark (`meta`, key `settled_at`).
//!
//! A query reads `latest` for the keys not changed since the watermark,
//! and groups `entries` for the others (the fresh keys): its answer is as
//! fresh as `entries`, whether or not a settler runs (without one, every
//! key is fresh and queries group as before). The lag covers an insert's
//! commit after its stamp: a row stamped more than `lag` before a round
//! but committed after it would stay unsettled until its key changes again
//! (a writer whose insert took longer marks its keys changed again, see
//! `derive.rs`).

use super::client::ChError;
use super::purge;
use super::rowbinary::Rows;
use super::schema::latest_value_names;
use super::shared::Shared;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Rows of `entry_changes` one statement of a round settles at most: a
/// round over more splits its keys by hash.
const CHANGES_PER_STATEMENT: u64 = 200_000;

/// How long a settler's lease lasts without renewal.
const LEASE_MS: i64 = 10_000;

/// The key of the settled watermark in `meta` (its version the second).
const WATERMARK: &str = "settled_at";

/// The key of the settler's lease in `meta` (its value the holder's tag).
const LEASE: &str = "settler";

/// Every key changed after this second (the server's clock) is fresh: its
/// row of `latest` may be behind (0: none was settled yet).
pub(super) fn watermark(shared: &Shared) -> Result<u32, ChError> {
    let m = shared.table("meta");
    let text = shared.client.query_text(&format!(
        "SELECT max(version) FROM {m} WHERE key = '{WATERMARK}'"
    ))?;
    Ok(text
        .trim()
        .parse::<u64>()
        .unwrap_or(0)
        .min(u64::from(u32::MAX)) as u32)
}

/// The keys changed after `watermark`, as a subquery.
pub(super) fn fresh_keys(shared: &Shared, watermark: u32) -> String {
    format!(
        "SELECT key FROM {} WHERE at > {watermark}",
        shared.table("entry_changes")
    )
}

/// The settler of one process: a thread that, while this process holds
/// the lease, settles a round a second.
pub(super) struct Settler {
    stop: Arc<AtomicBool>,
}

impl Settler {
    /// Starts the thread; `tag` is this process's writer tag, `lag` how
    /// long a change waits before it is settled.
    pub(super) fn start(shared: Arc<Shared>, tag: u64, lag: Duration) -> Settler {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let lag_s = lag.as_secs().clamp(1, 3600) as u32;
        let spawned = std::thread::Builder::new()
            .name("ticks-settler".into())
            .spawn(move || {
                while !stopped.load(Ordering::Relaxed) {
                    match holds_lease(&shared, tag) {
                        Ok(true) => {
                            if let Err(e) = round(&shared, lag_s) {
                                tracing::warn!(error = %e, "settling the entries failed; retried next round");
                            }
                        }
                        Ok(false) => {}
                        Err(e) => tracing::debug!(error = %e, "the settler lease could not be read"),
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "the settler could not start: queries group every entry");
        }
        Settler { stop }
    }

    /// Stops the thread after its round.
    pub(super) fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Whether the process of `tag` holds the settler lease, taking it when no
/// one holds it (or it holds it already: renewed).
fn holds_lease(shared: &Shared, tag: u64) -> Result<bool, ChError> {
    let m = shared.table("meta");
    let read = || -> Result<(u64, i64), ChError> {
        let text = shared.client.query_text(&format!(
            "SELECT argMax(value, version), max(version) FROM {m} WHERE key = '{LEASE}'"
        ))?;
        let mut parts = text.trim().split('\t');
        let holder = parts.next().and_then(|v| v.parse().ok()).unwrap_or(0);
        let at = parts.next().and_then(|v| v.parse().ok()).unwrap_or(0);
        Ok((holder, at))
    };
    let now = ticks_ingest::now_ms();
    let (holder, at) = read()?;
    if holder != tag && at > now - LEASE_MS {
        return Ok(false);
    }
    if holder == tag && at > now - LEASE_MS / 3 {
        // Held, and renewed recently enough.
        return Ok(true);
    }
    let mut rows = Rows::new();
    rows.string(LEASE.as_bytes())
        .string(tag.to_string().as_bytes())
        .u64(now.max(0) as u64);
    shared.insert("meta", "key, value, version", &rows)?;
    if holder == tag {
        return Ok(true);
    }
    // Two processes taking a free lease at once: the later claim wins,
    // and the earlier one sees it before it settles.
    std::thread::sleep(Duration::from_millis(200));
    Ok(read()?.0 == tag)
}

/// One round: settles the keys changed after the watermark and up to `lag`
/// seconds ago, then moves the watermark there.
pub(super) fn round(shared: &Shared, lag_s: u32) -> Result<(), ChError> {
    let from = watermark(shared)?;
    let now: u32 = shared
        .client
        .query_text("SELECT toUInt32(now())")?
        .trim()
        .parse()
        .map_err(|_| ChError::Server {
            status: 500,
            message: "the server's clock could not be read".into(),
        })?;
    let to = now.saturating_sub(lag_s);
    if to <= from {
        return Ok(());
    }
    let c = shared.table("entry_changes");
    let window = format!("at > {from} AND at <= {to}");
    let changed: u64 = shared
        .client
        .query_text(&format!("SELECT count() FROM {c} WHERE {window}"))?
        .trim()
        .parse()
        .unwrap_or(0);
    if changed == 0 {
        // Nothing to settle: the watermark stays (the next change is after
        // it either way), and no empty part is written.
        return Ok(());
    }
    let purged_before = purge::purged_count(shared)?;
    let parts = changed.div_ceil(CHANGES_PER_STATEMENT);
    for part in 0..parts {
        let keys =
            format!("SELECT key FROM {c} WHERE {window} AND cityHash64(key) % {parts} = {part}");
        settle(shared, &keys)?;
    }
    if purge::purged_count(shared)? != purged_before {
        purge::unsettle_purged(shared).map_err(|e| ChError::Server {
            status: 503,
            message: e.to_string(),
        })?;
    }
    let mut rows = Rows::new();
    rows.string(WATERMARK.as_bytes())
        .string(to.to_string().as_bytes())
        .u64(u64::from(to));
    shared.insert("meta", "key, value, version", &rows)
}

/// Brings the net rows of `latest` for the keys `keys` (a subquery) to
/// each key's latest row of `entries`.
fn settle(shared: &Shared, keys: &str) -> Result<(), ChError> {
    let (e, l) = (shared.table("entries"), shared.table("latest"));
    let p = shared.table("purged_keys");
    let names = latest_value_names();
    let list = names.join(", ");
    let anys = names
        .iter()
        .filter(|n| !matches!(**n, "key" | "version"))
        .map(|n| format!("any({n}) AS {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let wanted = format!("SELECT key, max(version) FROM {e} WHERE key IN ({keys}) GROUP BY key");
    let settings: &[(&str, &str)] = match shared.layout {
        super::schema::Layout::Single => &[],
        super::schema::Layout::Cluster(_) => &[
            ("insert_distributed_sync", "1"),
            ("distributed_product_mode", "local"),
        ],
    };
    // Each (key, version) present: as many rows of the sign that bring its
    // net count to 1 if it is the key's latest, else to 0. The rows are
    // grouped in a subquery of their own so that the aliases (each
    // column's name) do not stand for the columns in the conditions.
    shared.client.insert(
        &format!(
            "INSERT INTO {l} ({list}, sign) SELECT {list}, sign FROM \
(SELECT key, version, {anys}, sum(sign) AS net, toInt64((key, version) IN ({wanted})) AS target \
FROM (SELECT {list}, sign FROM {l} WHERE key IN ({keys})) GROUP BY key, version HAVING net != target) \
ARRAY JOIN arrayMap(i -> if(target > net, toInt8(1), toInt8(-1)), range(toUInt64(abs(target - net)))) AS sign"
        ),
        b"",
        settings,
    )?;
    // Each key's latest that has no row yet: one.
    shared.client.insert(
        &format!(
            "INSERT INTO {l} ({list}, sign) SELECT {list}, toInt8(1) FROM {e} \
WHERE key IN ({keys}) AND (key, version) IN ({wanted}) \
AND (key, version) NOT IN (SELECT key, version FROM {l} WHERE key IN ({keys})) \
AND lower(hex(SHA256(key))) GLOBAL NOT IN (SELECT hash FROM {p}) LIMIT 1 BY key"
        ),
        b"",
        settings,
    )
}
