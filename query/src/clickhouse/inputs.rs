//! The raw inputs of entries: what an export in NDJSON writes and the
//! detail shows, read through the index (`k:` identifiers name the inputs
//! that hold an entry's events).

use super::client::quote;
use super::named::Named;
use super::rowbinary::{Reader, Rows};
use super::shared::Shared;
use crate::backend::RawInputSink;
use crate::error::QueryError;
use std::collections::BTreeSet;
use ticks_engine::{Derivation, Event, Input, Seq, Source, StoredInput};

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
pub(super) fn seqs_of(shared: &Shared, keys: &[String]) -> Result<Vec<u64>, QueryError> {
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

/// The columns of an input row, in the order `input_row` writes them.
pub(super) const INPUT_COLUMNS: &str =
    "seq, source, received_ms, raw, writer, origin, keys, people, links, events";

/// Appends one input's row; collects the index identifiers it names.
pub(super) fn input_row(
    rows: &mut Rows,
    idents: &mut BTreeSet<String>,
    seq: u64,
    writer: u64,
    origin: u64,
    input: &Input,
) -> Result<(), QueryError> {
    let named = Named::of(&input.events, input.received_ms);
    let events = rmp_serde::to_vec_named(&input.events)
        .map_err(|e| QueryError::Backend(format!("an input's events do not encode: {e}")))?;
    rows.u64(seq)
        .string(input.source.as_str().as_bytes())
        .i64(input.received_ms)
        .string(&input.raw)
        .u64(writer)
        .u64(origin)
        .strings(&named.keys)
        .strings(&named.people)
        .strings(&named.links)
        .string(&events);
    idents.extend(named.joins());
    Ok(())
}

/// One input as `inputs` holds it, its events parsed.
pub(super) struct InputRow {
    pub(super) seq: u64,
    pub(super) source: Source,
    pub(super) received_ms: i64,
    pub(super) raw: Vec<u8>,
    pub(super) writer: u64,
    pub(super) origin: u64,
    pub(super) events: Vec<Event>,
}

/// The inputs `cond` (a condition on `inputs`) selects, in `seq` order,
/// `limit` at most.
pub(super) fn select(
    shared: &Shared,
    cond: &str,
    limit: Option<usize>,
) -> Result<Vec<InputRow>, QueryError> {
    let t = shared.table("inputs");
    let limit = limit.map_or(String::new(), |n| format!(" LIMIT {n}"));
    let bytes = shared.client.query(&format!(
        "SELECT seq, source, received_ms, raw, writer, origin, events FROM {t} WHERE {cond} ORDER BY seq{limit} FORMAT RowBinary"
    ))?;
    let mut r = Reader::new(&bytes);
    let mut out = Vec::new();
    while !r.is_done() {
        let seq = r.u64().map_err(|_| bad("an input"))?;
        let source = source_named(r.string().map_err(|_| bad("an input"))?)?;
        let received_ms = r.i64().map_err(|_| bad("an input"))?;
        let raw = r.string().map_err(|_| bad("an input"))?.to_vec();
        let writer = r.u64().map_err(|_| bad("an input"))?;
        let origin = r.u64().map_err(|_| bad("an input"))?;
        let events: Vec<Event> = rmp_serde::from_slice(r.string().map_err(|_| bad("an input"))?)
            .map_err(|e| QueryError::Backend(format!("the events of input {seq}: {e}")))?;
        out.push(InputRow {
            seq,
            source,
            received_ms,
            raw,
            writer,
            origin,
            events,
        });
    }
    Ok(out)
}

/// The inputs `seqs` names, in `seq` order.
pub(super) fn by_seq(shared: &Shared, seqs: &[u64]) -> Result<Vec<InputRow>, QueryError> {
    let mut out = Vec::new();
    for chunk in seqs.chunks(CHUNK) {
        let list: Vec<String> = chunk.iter().map(u64::to_string).collect();
        out.extend(select(
            shared,
            &format!("seq IN ({})", list.join(",")),
            None,
        )?);
    }
    Ok(out)
}

/// An input of some entries, with the keys its events were folded into.
struct Folded {
    input: InputRow,
    /// Event by event, the key of the entry it was folded into (`None`: a
    /// duplicate of an earlier event).
    into: Vec<Option<String>>,
}

/// Every input of the entries `keys`, in `seq` order, folded as the store
/// assigns a record's events: an input whose every event of an entry
/// repeats an earlier one is not one of that entry's inputs (the store
/// keeps no record of it; ClickHouse keeps every arrival).
fn inputs_of(shared: &Shared, keys: &[String]) -> Result<Vec<Folded>, QueryError> {
    let mut fold = Derivation::new(shared.attribution_window_hours);
    Ok(by_seq(shared, &seqs_of(shared, keys)?)?
        .into_iter()
        .map(|input| {
            let into = fold.add(Seq(input.seq), input.received_ms, &input.events);
            Folded { input, into }
        })
        .collect())
}

/// Calls `each` with every input of the entries `ids`, each once, in
/// `seq` order.
pub(super) fn raw_inputs(
    shared: &Shared,
    ids: &[u32],
    each: &mut RawInputSink<'_>,
) -> Result<(), QueryError> {
    let keys = keys_of(shared, ids)?;
    let wanted: std::collections::HashSet<&str> = keys.iter().map(String::as_str).collect();
    for Folded { input, into } in inputs_of(shared, &keys)? {
        if into.iter().flatten().any(|k| wanted.contains(k.as_str())) {
            each(Seq(input.seq), input.source, input.received_ms, &input.raw)
                .map_err(|e| QueryError::Backend(format!("writing an input: {e}")))?;
        }
    }
    Ok(())
}

/// The inputs of the entry `key`, with only its own events.
pub(super) fn stored_inputs(shared: &Shared, key: &str) -> Result<Vec<StoredInput>, QueryError> {
    let mut out = Vec::new();
    for Folded { input, into } in inputs_of(shared, &[key.to_string()])? {
        let events: Vec<Event> = input
            .events
            .into_iter()
            .zip(into)
            .filter(|(_, k)| k.as_deref() == Some(key))
            .map(|(e, _)| e)
            .collect();
        if events.is_empty() {
            continue;
        }
        out.push(StoredInput {
            seq: Seq(input.seq),
            source: input.source,
            received_ms: input.received_ms,
            raw: input.raw,
            events,
        });
    }
    Ok(out)
}
