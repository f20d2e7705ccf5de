//! The raw inputs of entries: what an export in NDJSON writes and the
//! detail shows, read through the index (`k:` identifiers name the inputs
//! that hold an entry's events).

use super::client::quote;
use super::rowbinary::Reader;
use super::writer::Shared;
use crate::backend::RawInputSink;
use crate::error::QueryError;
use ticks_engine::{entry_key, Event, Seq, Source, StoredInput};

/// Seqs or ids per `IN (...)` list.
const CHUNK: usize = 5_000;

fn bad(what: &str) -> QueryError {
    QueryError::Backend(format!("{what} could not be read"))
}

/// The keys of the entries `ids` names (an id given twice to one key by
/// two processes at once names it too).
pub(super) fn keys_of(shared: &Shared, ids: &[u32]) -> Result<Vec<String>, QueryError> {
    let t = shared.table("entry_ids");
    let mut keys = Vec::new();
    for chunk in ids.chunks(CHUNK) {
        let list: Vec<String> = chunk.iter().map(u32::to_string).collect();
        let bytes = shared.client.query(&format!(
            "SELECT DISTINCT key FROM {t} WHERE id IN ({}) FORMAT RowBinary",
            list.join(",")
        ))?;
        let mut r = Reader::new(&bytes);
        while !r.is_done() {
            keys.push(String::from_utf8_lossy(r.string().map_err(|_| bad("a key"))?).into_owned());
        }
    }
    Ok(keys)
}

/// The seqs of the inputs that hold events of `keys`, ascending, each once.
fn seqs_of(shared: &Shared, keys: &[String]) -> Result<Vec<u64>, QueryError> {
    let t = shared.table("input_index");
    let mut seqs = Vec::new();
    for chunk in keys.chunks(CHUNK) {
        let list: Vec<String> = chunk.iter().map(|k| quote(&format!("k:{k}"))).collect();
        let text = shared.client.query_text(&format!(
            "SELECT DISTINCT seq FROM {t} WHERE ident IN ({})",
            list.join(",")
        ))?;
        seqs.extend(text.lines().filter_map(|l| l.trim().parse::<u64>().ok()));
    }
    seqs.sort_unstable();
    seqs.dedup();
    Ok(seqs)
}

pub(super) fn source_named(name: &[u8]) -> Result<Source, QueryError> {
    [
        Source::SendApi,
        Source::Webhook,
        Source::Import,
        Source::Proxy,
    ]
    .into_iter()
    .find(|s| s.as_str().as_bytes() == name)
    .ok_or_else(|| {
        QueryError::Backend(format!(
            "a stored input has an unknown source {:?}",
            String::from_utf8_lossy(name)
        ))
    })
}

/// Calls `each` with every input of the entries `ids`, each once, in
/// `seq` order.
pub(super) fn raw_inputs(
    shared: &Shared,
    ids: &[u32],
    each: &mut RawInputSink<'_>,
) -> Result<(), QueryError> {
    let seqs = seqs_of(shared, &keys_of(shared, ids)?)?;
    let t = shared.table("inputs");
    for chunk in seqs.chunks(CHUNK) {
        let list: Vec<String> = chunk.iter().map(u64::to_string).collect();
        let bytes = shared.client.query(&format!(
            "SELECT seq, source, received_ms, raw FROM {t} WHERE seq IN ({}) ORDER BY seq FORMAT RowBinary",
            list.join(",")
        ))?;
        let mut r = Reader::new(&bytes);
        while !r.is_done() {
            let seq = r.u64().map_err(|_| bad("an input"))?;
            let source = source_named(r.string().map_err(|_| bad("an input"))?)?;
            let received_ms = r.i64().map_err(|_| bad("an input"))?;
            let raw = r.string().map_err(|_| bad("an input"))?;
            each(Seq(seq), source, received_ms, raw)
                .map_err(|e| QueryError::Backend(format!("writing an input: {e}")))?;
        }
    }
    Ok(())
}

/// The inputs of the entry `key`, with only its own events.
pub(super) fn stored_inputs(shared: &Shared, key: &str) -> Result<Vec<StoredInput>, QueryError> {
    let seqs = seqs_of(shared, &[key.to_string()])?;
    let t = shared.table("inputs");
    let mut out = Vec::new();
    for chunk in seqs.chunks(CHUNK) {
        let list: Vec<String> = chunk.iter().map(u64::to_string).collect();
        let bytes = shared.client.query(&format!(
            "SELECT seq, source, received_ms, raw, events FROM {t} WHERE seq IN ({}) ORDER BY seq FORMAT RowBinary",
            list.join(",")
        ))?;
        let mut r = Reader::new(&bytes);
        while !r.is_done() {
            let seq = r.u64().map_err(|_| bad("an input"))?;
            let source = source_named(r.string().map_err(|_| bad("an input"))?)?;
            let received_ms = r.i64().map_err(|_| bad("an input"))?;
            let raw = r.string().map_err(|_| bad("an input"))?.to_vec();
            let events: Vec<Event> =
                rmp_serde::from_slice(r.string().map_err(|_| bad("an input"))?)
                    .map_err(|e| QueryError::Backend(format!("the events of input {seq}: {e}")))?;
            let events = events
                .into_iter()
                .filter(|e| entry_key(e, received_ms) == key)
                .collect();
            out.push(StoredInput {
                seq: Seq(seq),
                source,
                received_ms,
                raw,
                events,
            });
        }
    }
    Ok(out)
}
