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

use super::client::{quote, ChError, Client};
use super::purge;
use super::rowbinary::{read_strings, Rows, Truncated};
use super::schema::latest_value_names;
use super::shared::Shared;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long the settler waits for one of its inserts into `latest`. An
/// insert the client gave up on runs on in ClickHouse (18.16 cannot kill
/// an `INSERT SELECT`) while the next round starts another: at 10M on the
/// cluster, rounds that outlived the usual 60 s piled up eight inserts at
/// once, which starved the writers (their imports answered 503) and
/// settled keys twice.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(3600);

/// The longest pause between two rounds of the settler.
const LONGEST_PAUSE: Duration = Duration::from_secs(60);

/// How long a settler's lease lasts without renewal.
const LEASE_MS: i64 = 10_000;

/// The key of the settled watermark in `meta` (its version the second).
const WATERMARK: &str = "settled_at";

/// The key in `meta` of how far the round under way got: its value the
/// round's end (seconds) and the first key not settled yet, by a tab.
const PROGRESS: &str = "settling";

/// The key of the settler's lease in `meta` (its value the holder's tag).
const LEASE: &str = "settler";

/// The key in `meta` of the settler's writes to `latest`: a row `begin`
/// before each, `end` once it is committed, each with a higher version
/// (see [`Snapshot`]).
const WRITES: &str = "latest_writes";

/// What a reader of `latest` saw before it read: the watermark, and the
/// settler's last mark of a write ([`WRITES`]).
///
/// A count reads `latest` twice in one statement: every matching row, and
/// the fresh keys' rows to take out again (see `search.rs`). ClickHouse
/// picks each read's parts as it comes to it, so a settler's insert
/// committed between the two is counted in one and not the other: a count
/// two short was seen under load. A reader compares the snapshot after it
/// read with the one before: the same, and no write under way, means no
/// write landed between its reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Snapshot {
    /// Every key changed after this second (the server's clock) is fresh:
    /// its row of `latest` may be behind (0: none was settled yet).
    pub(super) watermark: u32,
    /// The version of the last mark (0: none).
    writes: u64,
    /// Whether that mark is a `begin`: a write may be landing now (or one
    /// failed; the next write's marks end it).
    pub(super) writing: bool,
}

impl Snapshot {
    /// The watermark and the settler's last mark, in one statement.
    pub(super) fn read(shared: &Shared) -> Result<Snapshot, ChError> {
        let m = shared.table("meta");
        let text = shared.client.query_text(&format!(
            "SELECT maxIf(version, key = '{WATERMARK}'), maxIf(version, key = '{WRITES}'), \
argMaxIf(value, version, key = '{WRITES}') FROM {m} WHERE key IN ('{WATERMARK}', '{WRITES}')"
        ))?;
        let mut parts = text.trim_end_matches('\n').split('\t');
        let watermark = parts
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            .min(u64::from(u32::MAX)) as u32;
        let writes = parts.next().and_then(|v| v.parse().ok()).unwrap_or(0);
        let writing = parts.next() == Some("begin");
        Ok(Snapshot {
            watermark,
            writes,
            writing,
        })
    }

    /// Whether `latest` may have changed since `self` was read: a write
    /// was under way then, or one was marked since.
    pub(super) fn moved(&self, shared: &Shared) -> Result<bool, ChError> {
        let now = Snapshot::read(shared)?;
        Ok(self.writing || now.writing || now.writes != self.writes)
    }
}

/// Marks a write of the settler to `latest` as begun (`begin`) or
/// committed (`end`), with a version above every mark before it (the
/// server's clock in ms, or one more than the last mark should another
/// settler's clock have been ahead).
fn mark_writes(shared: &Shared, value: &str) -> Result<(), ChError> {
    let m = shared.table("meta");
    let last: u64 = shared
        .client
        .query_text(&format!(
            "SELECT max(version) FROM {m} WHERE key = '{WRITES}'"
        ))?
        .trim()
        .parse()
        .unwrap_or(0);
    let version = (ticks_ingest::now_ms().max(0) as u64).max(last + 1);
    let mut rows = Rows::new();
    rows.string(WRITES.as_bytes())
        .string(value.as_bytes())
        .u64(version);
    shared.insert("meta", "key, value, version", &rows)
}

/// The keys changed after `watermark`, as a subquery.
pub(super) fn fresh_keys(shared: &Shared, watermark: u32) -> String {
    format!(
        "SELECT key FROM {} WHERE at > {watermark}",
        shared.table("entry_changes")
    )
}

/// The settler of one process: a thread that, while this process holds
/// the lease, settles a round a second (after a longer round, a pause as
/// long as it took).
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
                    let started = std::time::Instant::now();
                    match holds_lease(&shared, tag) {
                        Ok(true) => {
                            if let Err(e) = round_renewing(&shared, lag_s, tag) {
                                tracing::warn!(error = %e, "settling the entries failed; retried next round");
                            }
                        }
                        Ok(false) => {}
                        Err(e) => tracing::debug!(error = %e, "the settler lease could not be read"),
                    }
                    // A round of a few changed keys spread over a large
                    // store reads most of `latest` (its granules), however
                    // few they are: after a long round the next waits as
                    // long, so that settling takes at most half the
                    // server's time and each round settles more keys.
                    let pause = started.elapsed().clamp(Duration::from_secs(1), LONGEST_PAUSE);
                    let mut slept = Duration::ZERO;
                    while slept < pause && !stopped.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(200));
                        slept += Duration::from_millis(200);
                    }
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

/// A round under the lease of `tag`, renewed every few seconds while the
/// round runs: one insert of a round can outlast the lease (minutes at
/// 10M), and another process would take the lease and settle the same
/// keys at the same time.
fn round_renewing(shared: &Shared, lag_s: u32, tag: u64) -> Result<(), ChError> {
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut waited = Duration::ZERO;
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                waited += Duration::from_millis(100);
                if waited.as_millis() as i64 >= LEASE_MS / 4 {
                    waited = Duration::ZERO;
                    if let Err(e) = holds_lease(shared, tag) {
                        tracing::debug!(error = %e, "the settler lease could not be renewed");
                    }
                }
            }
        });
        let out = round(shared, lag_s, Some(tag));
        done.store(true, Ordering::Relaxed);
        out
    })
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
///
/// A round over more changes than one statement settles
/// (`ClickHouseConfig::settle_part_rows`) settles them
/// in parts by key range, in key order: `entries` and `latest` are ordered
/// by key, so each part reads only its range's granules and the parts
/// together read each table once. (Parts by hash of key read nearly every
/// granule each: the first round of a 10M copy settled ~250,000 entries a
/// minute.) After each part the round records how far it got
/// ([`PROGRESS`]), and a round that finds such a record for a window after
/// the watermark (a settler stopped, or a lease handed over, mid-round)
/// goes on from there rather than from the first key.
///
/// `holder`: the lease holder's tag, when the round runs under the lease:
/// it renews the lease before each part, and stops (leaving its progress
/// for the next holder) if another process holds it. Two rounds at once
/// would both add a row for a key that had none (counted twice until the
/// key changes again): a round of 21M changes takes minutes, and a lease
/// renewed only between rounds ran out during the first (two processes
/// settled a 10M copy together, 188k entries twice).
pub(super) fn round(shared: &Shared, lag_s: u32, holder: Option<u64>) -> Result<(), ChError> {
    let from = Snapshot::read(shared)?.watermark;
    let (to, resume_after) = match progress(shared, from)? {
        Some((to, key)) => (to, Some(key)),
        None => {
            let now: u32 = shared
                .client
                .query_text("SELECT toUInt32(now())")?
                .trim()
                .parse()
                .map_err(|_| ChError::Server {
                    status: 500,
                    message: "the server's clock could not be read".into(),
                })?;
            (now.saturating_sub(lag_s), None)
        }
    };
    if to <= from {
        return Ok(());
    }
    let c = shared.table("entry_changes");
    let mut window = format!("at > {from} AND at <= {to}");
    if let Some(key) = &resume_after {
        window.push_str(&format!(" AND key >= {}", quote(key)));
    }
    let changed: u64 = shared
        .client
        .query_text(&format!("SELECT count() FROM {c} WHERE {window}"))?
        .trim()
        .parse()
        .unwrap_or(0);
    if changed == 0 && resume_after.is_none() {
        // Nothing to settle: the watermark stays (the next change is after
        // it either way), and no empty part is written.
        return Ok(());
    }
    let started = std::time::Instant::now();
    let purged_before = purge::purged_count(shared)?;
    let bounds = part_bounds(shared, &window, changed)?;
    let patient = shared.client.with_timeout(SETTLE_TIMEOUT);
    let ranges = bounds.len() + 1;
    for part in 0..ranges {
        if part > 0 {
            if let Some(tag) = holder {
                if !holds_lease(shared, tag)? {
                    tracing::info!(part, of = ranges, "the settler lease passed on mid-round");
                    return Ok(());
                }
            }
        }
        let lower = part.checked_sub(1).map(|i| bounds[i].as_str());
        let upper = bounds.get(part).map(String::as_str);
        let mut range = Vec::new();
        if let Some(lo) = lower {
            range.push(format!("key >= {}", quote(lo)));
        }
        if let Some(hi) = upper {
            range.push(format!("key < {}", quote(hi)));
        }
        let range = if range.is_empty() {
            "1".to_string()
        } else {
            range.join(" AND ")
        };
        settle(
            shared,
            &patient,
            &format!("SELECT key FROM {c} WHERE {window} AND {range}"),
            &range,
        )?;
        if let Some(hi) = upper {
            record_progress(shared, to, hi)?;
            tracing::debug!(part, of = ranges, "a part of the entries settled");
        }
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
    shared.insert("meta", "key, value, version", &rows)?;
    if ranges > 1 {
        tracing::info!(
            changes = changed,
            parts = ranges,
            seconds = started.elapsed().as_secs(),
            "a round of many changes settled"
        );
    }
    // The days to drop change when the watermark's day does: once a day,
    // not every round.
    if from / 86_400 != to / 86_400 {
        trim_changes(shared, to)?;
    }
    Ok(())
}

/// Whole days of `entry_changes` kept before the watermark. What reads it:
/// the settler (the changes after the watermark), queries (the same) and
/// alert rounds (the last minutes).
const CHANGES_KEPT_DAYS: u32 = 2;

/// Drops the days of `entry_changes` (its partitions, on each node) before
/// the day [`CHANGES_KEPT_DAYS`] before `watermark`: every change in them
/// is settled, and nothing reads them again. Kept, they grew by three rows
/// a message (31.9M at 10M).
fn trim_changes(shared: &Shared, watermark: u32) -> Result<(), ChError> {
    let before = watermark.saturating_sub(CHANGES_KEPT_DAYS * 86_400);
    let table = shared.local_table("entry_changes");
    if shared.quorum_part_kept {
        // A dropped partition's last quorum part would make every replica
        // refuse reads of the table (see `QUORUM_PARTS_MUTABLE`): the old
        // days' rows are deleted instead, once a day. Each past day
        // keeps its last quorum part (a few seconds of changes): the
        // mutation never reaches it, as no later insert lands in its day.
        let day = before / 86_400;
        let last = shared
            .trimmed_day
            .load(std::sync::atomic::Ordering::Relaxed);
        if last == day {
            return Ok(());
        }
        for node in shared.mutation_nodes() {
            node.query(&format!(
                "ALTER TABLE {table} DELETE WHERE toYYYYMMDD(toDateTime(at)) < toYYYYMMDD(toDateTime({before}))"
            ))?;
        }
        shared
            .trimmed_day
            .store(day, std::sync::atomic::Ordering::Relaxed);
        return Ok(());
    }
    for node in shared.mutation_nodes() {
        let days = read_strings(&node.query(&format!(
            "SELECT DISTINCT partition FROM system.parts WHERE database = {} AND table = {} \
AND active AND toUInt32OrZero(partition) < toYYYYMMDD(toDateTime({before})) FORMAT RowBinary",
            shared.db_literal(),
            quote(&shared.local_name("entry_changes"))
        ))?)
        .map_err(truncated)?;
        for day in days {
            if let Ok(day) = day.parse::<u32>() {
                node.query(&format!("ALTER TABLE {table} DROP PARTITION {day}"))?;
            }
        }
    }
    Ok(())
}

/// Samples per part that [`part_bounds`] reads to place a boundary.
const SAMPLES_PER_PART: u64 = 64;

/// The keys that split the changes in `window` (`changed` rows) into parts
/// of about `settle_part_rows`, ascending (none: one part). Placed
/// by a sample of the changed keys (those whose hash falls in one bucket
/// of many), read in key order.
fn part_bounds(shared: &Shared, window: &str, changed: u64) -> Result<Vec<String>, ChError> {
    let parts = changed.div_ceil(shared.settle_part);
    if parts <= 1 {
        return Ok(Vec::new());
    }
    let every = (changed / (parts * SAMPLES_PER_PART)).max(1);
    let c = shared.table("entry_changes");
    let sample = read_strings(&shared.client.query(&format!(
        "SELECT DISTINCT key FROM {c} WHERE {window} AND cityHash64(key) % {every} = 0 \
ORDER BY key FORMAT RowBinary"
    ))?)
    .map_err(truncated)?;
    let per = (sample.len() as u64 / parts).max(1) as usize;
    Ok(sample.into_iter().skip(per).step_by(per).collect())
}

fn truncated(e: Truncated) -> ChError {
    ChError::Server {
        status: 500,
        message: e.to_string(),
    }
}

/// The round under way after `watermark`, if one was stopped mid-way: its
/// end (`to`) and the first key it has not settled.
fn progress(shared: &Shared, watermark: u32) -> Result<Option<(u32, String)>, ChError> {
    let m = shared.table("meta");
    let last = read_strings(&shared.client.query(&format!(
        "SELECT value FROM {m} WHERE key = '{PROGRESS}' ORDER BY version DESC LIMIT 1 \
FORMAT RowBinary"
    ))?)
    .map_err(truncated)?;
    let Some(value) = last.first() else {
        return Ok(None);
    };
    let Some((to, key)) = value.split_once('\t') else {
        return Ok(None);
    };
    match to.parse::<u32>() {
        Ok(to) if to > watermark => Ok(Some((to, key.to_string()))),
        _ => Ok(None),
    }
}

/// Records that the round ending at `to` settled every key below `key`.
fn record_progress(shared: &Shared, to: u32, key: &str) -> Result<(), ChError> {
    let mut rows = Rows::new();
    rows.string(PROGRESS.as_bytes())
        .string(format!("{to}\t{key}").as_bytes())
        .u64(ticks_ingest::now_ms().max(0) as u64);
    shared.insert("meta", "key, value, version", &rows)
}

/// Brings the net rows of `latest` for the keys `keys` (a subquery of keys
/// within `range`, a condition on `key`) to each key's latest row of
/// `entries`.
fn settle(shared: &Shared, patient: &Client, keys: &str, range: &str) -> Result<(), ChError> {
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
    let wanted =
        format!("SELECT key, max(version) FROM {e} WHERE {range} AND key IN ({keys}) GROUP BY key");
    let settings: &[(&str, &str)] = match shared.layout {
        super::schema::Layout::Single => &[],
        super::schema::Layout::Cluster(_) => &[
            ("insert_distributed_sync", "1"),
            ("distributed_product_mode", "local"),
        ],
    };
    // Readers see the writes as one (see `Snapshot`). Should an insert
    // fail, no `end` is marked: readers take the slower exact way until
    // the next write's marks.
    mark_writes(shared, "begin")?;
    // Each (key, version) present: as many rows of the sign that bring its
    // net count to 1 if it is the key's latest, else to 0. The rows are
    // grouped in a subquery of their own so that the aliases (each
    // column's name) do not stand for the columns in the conditions.
    patient.insert(
        &format!(
            "INSERT INTO {l} ({list}, sign) SELECT {list}, sign FROM \
(SELECT key, version, {anys}, sum(sign) AS net, toInt64((key, version) IN ({wanted})) AS target \
FROM (SELECT {list}, sign FROM {l} WHERE {range} AND key IN ({keys})) GROUP BY key, version HAVING net != target) \
ARRAY JOIN arrayMap(i -> if(target > net, toInt8(1), toInt8(-1)), range(toUInt64(abs(target - net)))) AS sign"
        ),
        b"",
        settings,
    )?;
    // Each key's latest that has no row yet: one.
    patient.insert(
        &format!(
            "INSERT INTO {l} ({list}, sign) SELECT {list}, toInt8(1) FROM {e} \
WHERE {range} AND key IN ({keys}) AND (key, version) IN ({wanted}) \
AND (key, version) NOT IN (SELECT key, version FROM {l} WHERE {range} AND key IN ({keys})) \
AND lower(hex(SHA256(key))) GLOBAL NOT IN (SELECT hash FROM {p}) LIMIT 1 BY key"
        ),
        b"",
        settings,
    )?;
    mark_writes(shared, "end")
}
