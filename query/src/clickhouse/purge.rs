//! Purge on ClickHouse: the same rule as the embedded store (the server
//! checks the export receipt first), done with mutations.
//!
//! A purge records who purged what (`purges`: the entry ids, never their
//! content) and the SHA-256 of each purged entry's key (`purged_keys`: a
//! redelivered webhook never derives the entry again), then erases:
//!
//! 1. Inputs that hold only purged events are deleted; inputs shared with
//!    surviving entries are redacted as the store redacts them
//!    (`ticks_engine::redact_input`) and staged in `redactions` first, so
//!    that a crash never loses a survivor's input.
//! 2. Mutations delete the inputs, their index rows and the entries' rows,
//!    and wait until ClickHouse finished them; the staged redactions are
//!    then inserted back under their own `seq` (the materialized view
//!    indexes them), the staging rows and the entries' ids deleted.
//! 3. The request is answered (nothing of the entries can be read any
//!    more); a thread waits until the parts the mutations replaced are gone
//!    from disk (60 s after, see `schema.rs`) and records the erasure as
//!    finished (`purges_erased`).
//!
//! Every step can run again: an open resumes a purge whose erasure did not
//! finish. What "unrecoverable" cannot cover here: replicas Ticks is not
//! given the URLs of, backups, and parts ClickHouse moved to `detached/`
//! (it does that with parts it finds broken at start).

use super::client::{quote, ChError, Client};
use super::inputs::{by_seq, input_row, keys_of, seqs_of, INPUT_COLUMNS};
use super::rowbinary::{read_strings, Reader, Rows};
use super::shared::Shared;
use crate::error::QueryError;
use roaring::RoaringBitmap;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::collections::HashSet;
use std::time::{Duration, Instant};
use ticks_engine::{entry_key, redact_input, Input, PurgeRecord, Seq};

/// Values per `IN (...)` list of a mutation (a statement is at most 256 KiB).
const MUTATION_CHUNK: usize = 2_000;
/// How long a purge waits for ClickHouse to finish a step.
const PATIENCE: Duration = Duration::from_secs(600);

/// The hash a purged key is remembered by.
pub(super) fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

fn failed(what: &str) -> QueryError {
    QueryError::Unavailable(format!("purge: {what}"))
}

/// Deletes the rows of `table` where `column` is one of `values`, and
/// waits until the mutations are done on every node (every replica).
fn delete_where_in(
    shared: &Shared,
    table: &str,
    column: &str,
    values: &[String],
) -> Result<(), QueryError> {
    if values.is_empty() {
        return Ok(());
    }
    let nodes = shared.mutation_nodes();
    for chunk in values.chunks(MUTATION_CHUNK) {
        for node in &nodes {
            node.query(&format!(
                "ALTER TABLE {} DELETE WHERE {column} IN ({})",
                shared.local_table(table),
                chunk.join(",")
            ))?;
        }
    }
    for node in &shared.nodes() {
        wait_mutations(shared, node, table)?;
    }
    Ok(())
}

fn wait_mutations(shared: &Shared, node: &Client, table: &str) -> Result<(), QueryError> {
    let started = Instant::now();
    let db = shared.db_literal();
    let t = quote(&shared.local_name(table));
    loop {
        let left = node.query_text(&format!(
            "SELECT count() FROM system.mutations WHERE database = {db} AND table = {t} AND is_done = 0"
        ))?;
        if left.trim() == "0" {
            return Ok(());
        }
        if started.elapsed() > PATIENCE {
            return Err(failed(&format!(
                "ClickHouse has not finished deleting from {table} in {} s",
                PATIENCE.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until no part a mutation replaced is left on any node.
fn wait_old_parts_gone(shared: &Shared) -> Result<(), QueryError> {
    let db = shared.db_literal();
    let tables: Vec<String> = [
        "inputs",
        "input_index",
        "entries",
        "latest",
        "entry_changes",
        "entry_lookup",
        "entry_ids",
        "redactions",
    ]
    .iter()
    .map(|t| quote(&shared.local_name(t)))
    .collect();
    let started = Instant::now();
    for node in shared.nodes() {
        loop {
            let left = node.query_text(&format!(
                "SELECT count() FROM system.parts WHERE database = {db} AND table IN ({}) AND active = 0",
                tables.join(", ")
            ))?;
            if left.trim() == "0" {
                break;
            }
            if started.elapsed() > PATIENCE {
                return Err(failed("replaced parts are still on disk after 600 s"));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    Ok(())
}

/// The live keys among `ids`: those with an entry row.
fn live_keys(shared: &Shared, ids: &[u32]) -> Result<Vec<String>, QueryError> {
    let keys = keys_of(shared, ids)?;
    if keys.is_empty() {
        return Ok(keys);
    }
    let t = shared.table("entries");
    let mut live = Vec::new();
    for chunk in keys.chunks(MUTATION_CHUNK) {
        let list: Vec<String> = chunk.iter().map(|k| quote(k)).collect();
        let bytes = shared.client.query(&format!(
            "SELECT DISTINCT key FROM {t} WHERE key IN ({}) FORMAT RowBinary",
            list.join(",")
        ))?;
        let mut r = Reader::new(&bytes);
        while !r.is_done() {
            let k = r.string().map_err(|_| failed("a key could not be read"))?;
            live.push(String::from_utf8_lossy(k).into_owned());
        }
    }
    Ok(live)
}

/// The ids among `ids` whose entries exist and are not purged.
pub(super) fn live(shared: &Shared, ids: &RoaringBitmap) -> Result<RoaringBitmap, QueryError> {
    let ids: Vec<u32> = ids.iter().collect();
    let keys = live_keys(shared, &ids)?;
    let t = shared.table("entries");
    let mut out = RoaringBitmap::new();
    for chunk in keys.chunks(MUTATION_CHUNK) {
        let list: Vec<String> = chunk.iter().map(|k| quote(k)).collect();
        let text = shared.client.query_text(&format!(
            "SELECT argMax(id, version) FROM {t} WHERE key IN ({}) GROUP BY key",
            list.join(",")
        ))?;
        out.extend(text.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
    }
    Ok(out)
}

/// Records the purge of the entries `ids` and erases them; `seq` is the
/// purge record's.
pub(super) fn purge(
    shared: &std::sync::Arc<Shared>,
    seq: Seq,
    ids: &RoaringBitmap,
    record: &PurgeRecord,
) -> Result<Seq, QueryError> {
    if shared.quorum_part_kept {
        // Refused before anything is recorded: the erasure could not
        // finish, and a purge that says it is done must be.
        return Err(QueryError::Unsupported(format!(
            "purge: ClickHouse {} never mutates the most recent part written with quorum in each \
partition, so a purge could not erase what that part holds; on replicated tables with \
clickhouse_insert_quorum purges need ClickHouse {}.{} or later",
            shared.info.server_version,
            super::QUORUM_PARTS_MUTABLE.0,
            super::QUORUM_PARTS_MUTABLE.1
        )));
    }
    let id_list: Vec<u32> = ids.iter().collect();
    let keys = live_keys(shared, &id_list)?;
    let json = serde_json::to_vec(record).map_err(|e| failed(&e.to_string()))?;
    let mut rows = Rows::new();
    rows.u64(seq.0).string(&json);
    shared.insert("purges", "seq, record", &rows)?;
    let mut hashes = Rows::new();
    for k in &keys {
        hashes.string(key_hash(k).as_bytes()).u64(seq.0);
    }
    if !keys.is_empty() {
        shared.insert("purged_keys", "hash, purge", &hashes)?;
    }
    erase(shared, seq, &keys)?;
    // The content is unreadable now; its old parts leave the disk within
    // a minute or so, which the caller does not wait for (an open resumes
    // the wait if this process stops first).
    let shared = shared.clone();
    std::thread::spawn(move || {
        if let Err(e) = finish(&shared, seq) {
            shared.note_fault(format!("finishing purge {}: {e}", seq.0));
        }
    });
    Ok(seq)
}

/// Erases the content of the purged `keys` (see the module's steps).
fn erase(shared: &Shared, purge: Seq, keys: &[String]) -> Result<(), QueryError> {
    let purged: HashSet<&str> = keys.iter().map(String::as_str).collect();
    let seqs = seqs_of(shared, keys)?;
    // Stage what survives of shared inputs.
    let mut staged = Rows::new();
    for input in by_seq(shared, &seqs)? {
        let survives = input
            .events
            .iter()
            .any(|e| !purged.contains(entry_key(e, input.received_ms).as_str()));
        if !survives {
            continue;
        }
        let (raw, events) = redact_input(
            input.source,
            input.received_ms,
            input.raw,
            input.events,
            &|k| purged.contains(k),
        );
        let redacted = Input {
            source: input.source,
            received_ms: input.received_ms,
            raw,
            events,
        };
        staged.u64(purge.0);
        input_row(
            &mut staged,
            &mut BTreeSet::new(),
            input.seq,
            input.writer,
            input.origin,
            &redacted,
        )?;
    }
    if !staged.is_empty() {
        shared.insert("redactions", &format!("purge, {INPUT_COLUMNS}"), &staged)?;
    }
    let seq_values: Vec<String> = seqs.iter().map(u64::to_string).collect();
    let key_values: Vec<String> = keys.iter().map(|k| quote(k)).collect();
    delete_where_in(shared, "inputs", "seq", &seq_values)?;
    delete_where_in(shared, "input_index", "seq", &seq_values)?;
    delete_where_in(shared, "entries", "key", &key_values)?;
    delete_where_in(shared, "entry_changes", "key", &key_values)?;
    delete_where_in(shared, "entry_lookup", "key", &key_values)?;
    // The survivors' inputs back under their own seq, once (a resumed
    // purge finds some back already).
    let t = shared.table("inputs");
    let r = shared.table("redactions");
    let present = shared.client.query_text(&format!(
        "SELECT seq FROM {t} WHERE seq IN (SELECT seq FROM {r} WHERE purge = {}){}",
        purge.0,
        shared.select_settings()
    ))?;
    let present: Vec<&str> = present.lines().map(str::trim).collect();
    let not_yet = if present.is_empty() {
        String::new()
    } else {
        format!(" AND seq NOT IN ({})", present.join(","))
    };
    shared.client.insert(
        &format!(
            "INSERT INTO {t} ({INPUT_COLUMNS}) SELECT {INPUT_COLUMNS} FROM {r} WHERE purge = {}{not_yet}",
            purge.0
        ),
        b"",
        shared.insert_settings(),
    )?;
    delete_where_in(shared, "redactions", "purge", &[purge.0.to_string()])?;
    delete_where_in(shared, "entry_ids", "key", &key_values)?;
    // Last, so that a settler statement that read `entries` before the
    // purge was recorded has most likely ended (one still running is
    // caught by the settler itself: see `unsettle_purged`).
    delete_where_in(shared, "latest", "key", &key_values)?;
    Ok(())
}

/// How many keys were ever purged: the settler compares it before and
/// after a round.
pub(super) fn purged_count(shared: &Shared) -> Result<u64, ChError> {
    let t = shared.table("purged_keys");
    Ok(shared
        .client
        .query_text(&format!("SELECT count() FROM {t}"))?
        .trim()
        .parse()
        .unwrap_or(0))
}

/// Deletes the settled rows of every purged key: run by a settler round
/// during which a purge was recorded (the round may have copied a purged
/// entry's row after the purge deleted it).
pub(super) fn unsettle_purged(shared: &Shared) -> Result<(), QueryError> {
    let (l, p) = (shared.table("latest"), shared.table("purged_keys"));
    let bytes = shared.client.query(&format!(
        "SELECT DISTINCT key FROM {l} WHERE lower(hex(SHA256(key))) GLOBAL IN (SELECT hash FROM {p}){} FORMAT RowBinary",
        shared.select_settings()
    ))?;
    let keys: Vec<String> = read_strings(&bytes)
        .map_err(|e| QueryError::Backend(e.to_string()))?
        .iter()
        .map(|k| quote(k))
        .collect();
    delete_where_in(shared, "latest", "key", &keys)
}

/// Waits until the replaced parts are gone, then records the erasure as
/// finished.
fn finish(shared: &Shared, purge: Seq) -> Result<(), QueryError> {
    wait_old_parts_gone(shared)?;
    let mut done = Rows::new();
    done.u64(purge.0);
    shared.insert("purges_erased", "seq", &done)?;
    Ok(())
}

/// Finishes every purge whose erasure did not (a crash, ClickHouse down
/// midway); the purge record names the ids, `entry_ids` still their keys
/// until the erasure's last mutation.
pub(super) fn resume(shared: &Shared) -> Result<usize, QueryError> {
    let p = shared.table("purges");
    let e = shared.table("purges_erased");
    let bytes = shared.client.query(&format!(
        "SELECT seq, record FROM {p} WHERE seq NOT IN (SELECT seq FROM {e}){} FORMAT RowBinary",
        shared.select_settings()
    ))?;
    let mut r = Reader::new(&bytes);
    let mut unfinished = Vec::new();
    while !r.is_done() {
        let bad = |_| failed("a purge record could not be read");
        let seq = r.u64().map_err(bad)?;
        let record: PurgeRecord =
            serde_json::from_slice(r.string().map_err(bad)?).map_err(|e| failed(&e.to_string()))?;
        unfinished.push((Seq(seq), record));
    }
    for (seq, record) in &unfinished {
        let ids = RoaringBitmap::deserialize_from(&record.ids[..])
            .map_err(|e| failed(&format!("the ids of purge {}: {e}", seq.0)))?;
        let id_list: Vec<u32> = ids.iter().collect();
        let keys = keys_of(shared, &id_list)?;
        erase(shared, *seq, &keys)?;
        finish(shared, *seq)?;
    }
    Ok(unfinished.len())
}

/// The keys among `keys` that a purge removed.
pub(super) fn purged_among(shared: &Shared, keys: &[&String]) -> Result<HashSet<String>, ChError> {
    let t = shared.table("purged_keys");
    let by_hash: std::collections::HashMap<String, &String> =
        keys.iter().map(|k| (key_hash(k), *k)).collect();
    let mut out = HashSet::new();
    if keys.len() > MUTATION_CHUNK * 20 {
        // A whole store's keys: one pass over the (small) table instead.
        let text = shared
            .client
            .query_text(&format!("SELECT DISTINCT hash FROM {t}"))?;
        for h in text.lines() {
            if let Some(k) = by_hash.get(h.trim()) {
                out.insert((*k).clone());
            }
        }
        return Ok(out);
    }
    let hashes: Vec<&String> = by_hash.keys().collect();
    for chunk in hashes.chunks(MUTATION_CHUNK) {
        let list: Vec<String> = chunk.iter().map(|h| quote(h)).collect();
        let text = shared.client.query_text(&format!(
            "SELECT DISTINCT hash FROM {t} WHERE hash IN ({})",
            list.join(",")
        ))?;
        for h in text.lines() {
            if let Some(k) = by_hash.get(h.trim()) {
                out.insert((*k).clone());
            }
        }
    }
    Ok(out)
}

/// Deletes entry rows a derivation wrote for keys a purge removed
/// meanwhile (it read before the purge was recorded).
pub(super) fn delete_entries_of(shared: &Shared, keys: &HashSet<String>) -> Result<(), QueryError> {
    let values: Vec<String> = keys.iter().map(|k| quote(k)).collect();
    delete_where_in(shared, "entries", "key", &values)?;
    delete_where_in(shared, "latest", "key", &values)?;
    delete_where_in(shared, "entry_changes", "key", &values)?;
    delete_where_in(shared, "entry_lookup", "key", &values)?;
    delete_where_in(shared, "entry_ids", "key", &values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_purged_key_is_remembered_by_its_hash_only() {
        let h = key_hash("wamid.HBgM0000");
        assert_eq!(h.len(), 64);
        assert!(!h.contains("wamid"));
        assert_eq!(h, key_hash("wamid.HBgM0000"));
    }
}
