//! Entries derived in ClickHouse with the engine's own fold.
//!
//! After a group of inputs is stored, the writer derives again every entry
//! those inputs could change: it follows the index (`input_index`) from
//! the inputs' entries and people to every input that names them, and from
//! those to their entries and people, until nothing new is named (the
//! person's whole history, joined as the contacts rule joins identifiers),
//! folds them all in memory (`ticks_engine::Derivation`, the embedded
//! store's code), and writes every entry of the fold with its version: how
//! many inputs it folded, then how many ids its entries were given.
//!
//! Why the largest version is the truth with any number of writers: each
//! writer reads after its own insert was confirmed, so of two writers
//! whose inputs touch one person, the one that reads last sees both
//! inputs; and a later read of the same person sees a superset, so more
//! inputs means a later, more complete fold. Readers take each key's row
//! of the largest version (`argMax`), never `FINAL`.
//!
//! Ids: entries are numbered as the API numbers them (`u32`) from blocks
//! of 4,096 ids that each process claims (`id_blocks`, as writer tags are
//! claimed). A key's id is the smallest any process gave it (`entry_ids`):
//! a process that finds none gives one, writes it, and reads the smallest
//! back before it writes the entry. Two processes that give a key an id at
//! once can disagree: the one that read first saw only its own id and
//! wrote rows with it. The one that read last saw both (the key has two
//! ids): it derives the group again, from a fold begun after both, which
//! folds every input either saw, and whose rows outrank the other's by
//! the ids counted in their version (`version`).

use super::client::{quote, ChError};
use super::index_row::IndexRow;
use super::named::Named;
use super::purge::{delete_entries_of, purged_among};
use super::rowbinary::{Reader, Rows};
use super::shared::Shared;
use std::collections::{BTreeMap, BTreeSet};
use ticks_engine::{
    Derivation, Engagement, Entry, EntryId, Event, Field, FieldValue, Reached, Seq, Timeline,
};

/// Ids per block.
const BLOCK: u64 = 4096;
/// Seqs per `IN (...)` list.
const CHUNK: usize = 5_000;

/// Hands out entry ids from blocks this process claimed.
pub(super) struct Ids {
    writer: u64,
    next: u64,
    end: u64,
}

impl Ids {
    pub(super) fn new(writer: u64) -> Ids {
        Ids {
            writer,
            next: 0,
            end: 0,
        }
    }

    fn next(&mut self, shared: &Shared) -> Result<u64, ChError> {
        if self.next == self.end {
            let block = claim_block(shared, self.writer)?;
            self.next = block * BLOCK;
            self.end = self.next + BLOCK;
        }
        let id = self.next;
        self.next += 1;
        Ok(id)
    }
}

/// Claims the first block after every claimed one that no other process
/// claimed meanwhile.
fn claim_block(shared: &Shared, writer: u64) -> Result<u64, ChError> {
    let t = shared.table("id_blocks");
    for _ in 0..64 {
        let max = shared
            .client
            .query_text(&format!("SELECT max(block) FROM {t}"))?;
        let block = max.trim().parse::<u64>().unwrap_or(0) + 1;
        let mut rows = Rows::new();
        rows.u64(block).u64(writer).i64(ticks_ingest::now_ms());
        shared.insert("id_blocks", "block, writer, seen_ms", &rows)?;
        let others = shared.client.query_text(&format!(
            "SELECT count() FROM {t} WHERE block = {block} AND writer != {writer}"
        ))?;
        if others.trim() == "0" {
            return Ok(block);
        }
    }
    Err(ChError::Server {
        status: 409,
        message: "no id block could be claimed after 64 tries".into(),
    })
}

fn string_list<'a>(items: impl IntoIterator<Item = &'a String>) -> String {
    items
        .into_iter()
        .map(|s| quote(s))
        .collect::<Vec<_>>()
        .join(",")
}

fn truncated<T>(_: T) -> ChError {
    ChError::Server {
        status: 500,
        message: "a RowBinary answer ended inside a value".into(),
    }
}

/// Inputs to fold: receive time and events (msgpack) by `seq`.
type FoldInputs = BTreeMap<u64, (i64, Vec<u8>)>;

/// Every input reachable from `idents` (`k:key`, `p:person`) through the
/// entries and people inputs name, with its receive time and events, by
/// `seq`. Everything comes from `input_index`, ordered by identifier: a
/// person's inputs are a few ranges there, where in `inputs` (ordered by
/// `seq`) they are scattered over the whole table, and reading them by
/// `seq` read every granule of the events column, for every group of
/// writes (at 400k inputs: 0.16-0.28 s per 5,000 seqs, and growing with
/// the table). Index rows of an entry (`k:`) carry the input's events;
/// asking for an entry brings every input of it, so every input reached
/// has its events once its entries were asked.
///
/// Also says whether the closure is complete: past `limit` inputs it stops
/// where it got.
fn closure(
    shared: &Shared,
    mut idents: BTreeSet<String>,
    limit: usize,
) -> Result<(FoldInputs, bool), ChError> {
    let index = shared.table("input_index");
    let mut reached: BTreeSet<u64> = BTreeSet::new();
    let mut found: FoldInputs = BTreeMap::new();
    let mut asked: BTreeSet<String> = BTreeSet::new();
    while !idents.is_empty() && reached.len() < limit {
        let mut new_idents: Vec<String> = idents.difference(&asked).cloned().collect();
        asked.extend(new_idents.iter().cloned());
        // An entry's inputs, and the replies that quote it.
        let quoting: Vec<String> = new_idents
            .iter()
            .filter_map(|i| i.strip_prefix("k:").map(|k| format!("q:{k}")))
            .collect();
        new_idents.extend(quoting);
        idents.clear();
        for chunk in new_idents.chunks(CHUNK) {
            let bytes = shared.client.query(&format!(
                "SELECT row FROM {index} WHERE ident IN ({}) FORMAT RowBinary",
                string_list(chunk)
            ))?;
            let mut r = Reader::new(&bytes);
            while !r.is_done() {
                let row = IndexRow::parse(r.string().map_err(truncated)?).ok_or_else(|| {
                    ChError::Server {
                        status: 500,
                        message: "a row of input_index is not of the form index_row.rs reads"
                            .into(),
                    }
                })?;
                if reached.insert(row.seq) {
                    // A quoted message is reached as an entry.
                    let named = [("k:", &row.keys), ("p:", &row.people), ("k:", &row.links)];
                    for (prefix, values) in named {
                        for v in values {
                            let ident = format!("{prefix}{}", String::from_utf8_lossy(v));
                            if !asked.contains(&ident) {
                                idents.insert(ident);
                            }
                        }
                    }
                }
                if !row.events.is_empty() {
                    found
                        .entry(row.seq)
                        .or_insert_with(|| (row.received_ms, row.events.to_vec()));
                }
            }
        }
    }
    Ok((found, idents.is_empty()))
}

/// Derives again every entry the inputs naming `idents` could change.
pub(super) fn derive(
    shared: &Shared,
    ids: &mut Ids,
    idents: BTreeSet<String>,
) -> Result<(), ChError> {
    if idents.is_empty() {
        return Ok(());
    }
    let started = std::time::Instant::now();
    let asked = idents.len();
    let limit = shared.max_folded.saturating_mul(READ_FOLDS);
    let (inputs, complete) = closure(shared, idents.clone(), limit)?;
    if !complete && idents.len() > 1 {
        // Too many inputs to read at once: each half reads its own
        // people's whole history (a person's entries are never folded in
        // part because others shared the group of writes). One person's
        // history past the limit is folded as far as it got (a number that
        // receives everything, a test line): their entries then lack the
        // rest.
        let mut first = idents;
        let second = first.split_off(&first.iter().nth(asked / 2).cloned().unwrap_or_default());
        drop(inputs);
        derive(shared, ids, first)?;
        return derive(shared, ids, second);
    }
    let read_ms = started.elapsed().as_millis();
    let inputs = decode(inputs)?;
    let mut components = Components::of(&inputs);
    let mut contested = false;
    for batch in batches(inputs, &mut components, shared.max_folded) {
        let started = std::time::Instant::now();
        let derivation = fold_decoded(shared, &batch)?;
        let folded_inputs = batch.len();
        drop(batch);
        let folded_ms = started.elapsed().as_millis();
        let written = write_fold(shared, ids, &derivation, &mut components, None)?;
        tracing::debug!(
            asked,
            read_ms,
            folded_inputs,
            entries = written.entries,
            folded_ms,
            ids_ms = written.ids_ms,
            rows_ms = written.rows_ms,
            insert_ms = written.insert_ms,
            "entries derived again"
        );
        contested |= written.contested;
    }
    if contested {
        // Another process gave some of these entries an id at the same
        // time, and may have written rows with its own (larger) one before
        // it could see this process's. This fold began before both ids
        // were given, so it may have seen fewer inputs than that process's;
        // one more, begun after both, sees every input either saw and the
        // smallest id, and its rows win (`version`).
        return derive(shared, ids, idents);
    }
    Ok(())
}

/// How many folds' worth of inputs (`max_folded_inputs` each) a derivation
/// reads before it splits its identifiers in halves. What it read is
/// folded a batch of whole groups at a time: reading one fold's worth and
/// then splitting read the same people again (a post of 5,000 lines at
/// 10M reaches ~117k inputs: it read 50k of them, then 50k for each half,
/// then all of them for each quarter).
const READ_FOLDS: usize = 4;

/// An input of a fold with its events decoded, and the identifiers it
/// joins (see [`Components`]).
struct Decoded {
    seq: u64,
    received_ms: i64,
    events: Vec<Event>,
    joins: Vec<String>,
}

/// The events of `inputs` decoded, in `seq` order.
fn decode(inputs: FoldInputs) -> Result<Vec<Decoded>, ChError> {
    inputs
        .into_iter()
        .map(|(seq, (received_ms, bytes))| {
            let events: Vec<Event> =
                rmp_serde::from_slice(&bytes).map_err(|e| ChError::Server {
                    status: 500,
                    message: format!("the events of input {seq} do not decode: {e}"),
                })?;
            let joins = Named::of(&events, received_ms).joins().collect();
            Ok(Decoded {
                seq,
                received_ms,
                events,
                joins,
            })
        })
        .collect()
}

/// `inputs` (in `seq` order, the order `components` joined them in) in
/// batches of whole groups (inputs that share an identifier), each of at
/// most `per` inputs unless one group alone is larger, each in `seq`
/// order. Groups are independent: an entry's fold and its version depend
/// on its own group's inputs only.
fn batches(inputs: Vec<Decoded>, components: &mut Components, per: usize) -> Vec<Vec<Decoded>> {
    let mut batch_of: std::collections::HashMap<u32, usize> = Default::default();
    let mut batches: Vec<Vec<Decoded>> = Vec::new();
    let mut filled = 0u64;
    for (i, input) in inputs.into_iter().enumerate() {
        let root = components.sets.find(i as u32);
        let size = components.sets.size(root);
        let batch = *batch_of.entry(root).or_insert_with(|| {
            if batches.is_empty() || (filled > 0 && filled + size > per as u64) {
                batches.push(Vec::new());
                filled = 0;
            }
            filled += size;
            batches.len() - 1
        });
        batches[batch].push(input);
    }
    batches
}

/// What [`write_fold`] wrote, and how long its steps took.
struct Written {
    entries: usize,
    contested: bool,
    ids_ms: u128,
    rows_ms: u128,
    insert_ms: u128,
}

/// Entry rows per insert when a fold writes many (a whole store's).
const ROWS_PER_INSERT: usize = 50_000;

/// Writes every entry of a fold (but purged ones) with its id and version.
/// Says whether another process gave some of them an id at the same time
/// (see [`derive`]).
fn write_fold(
    shared: &Shared,
    ids: &mut Ids,
    derivation: &Derivation,
    groups: &mut dyn Groups,
    known: Option<&BTreeMap<String, Claims>>,
) -> Result<Written, ChError> {
    let started = std::time::Instant::now();
    // A purged entry stays purged, whatever comes for it later.
    let all_keys: Vec<&str> = derivation.entry_keys();
    let owned: Vec<String> = all_keys.iter().map(|k| k.to_string()).collect();
    let purged = purged_among(shared, &owned.iter().collect::<Vec<_>>())?;
    let keys: Vec<&String> = owned.iter().filter(|k| !purged.contains(*k)).collect();
    let mut written = Written {
        entries: keys.len(),
        contested: false,
        ids_ms: 0,
        rows_ms: 0,
        insert_ms: 0,
    };
    if keys.is_empty() {
        return Ok(written);
    }
    // The ids given beforehand (a store folded in parts), else read or
    // given now.
    let (id_of, contested) = match known {
        Some(known) => (
            keys.iter()
                .filter_map(|k| known.get(*k).map(|c| ((*k).clone(), *c)))
                .collect(),
            false,
        ),
        None => entry_ids(shared, ids, &keys)?,
    };
    written.contested = contested;
    // The ids given to each group's entries (see `version`).
    let mut given: BTreeMap<usize, u64> = BTreeMap::new();
    for (key, claims) in &id_of {
        if let Some((root, _)) = groups.group_of(&format!("k:{key}")) {
            *given.entry(root).or_default() += claims.given;
        }
    }
    written.ids_ms = started.elapsed().as_millis();
    let templates = derivation.templates().generation();
    let derived_ms = ticks_ingest::now_ms();
    let snapshot = derivation.snapshot();
    let opted_out = snapshot.opted_out_entries();
    let causes: BTreeMap<u32, &str> = snapshot
        .opt_out_causes(i64::MIN, i64::MAX)
        .into_iter()
        .filter_map(|(stop, cause)| Some((stop.0, derivation.key_of(cause)?)))
        .collect();
    let marketing = snapshot.column(Field::Marketing);
    let mut rows = Rows::new();
    let mut in_rows: Vec<String> = Vec::new();
    derivation.each_entry(|key, mut entry| -> Result<(), ChError> {
        if purged.contains(key) {
            return Ok(());
        }
        let Some(id) = id_of.get(key).map(|c| c.id) else {
            return Ok(());
        };
        let ident = format!("k:{key}");
        let version = groups.group_of(&ident).map_or(0, |(root, inputs)| {
            version(inputs, given.get(&root).copied().unwrap_or(0), templates)
        });
        let derived = Derived {
            reached: derivation.reached(entry.id),
            text: derivation.search_text(entry.id),
            opted_out: opted_out.contains(entry.id.0),
            marketing: match snapshot
                .value_of(Field::Marketing, marketing.key(marketing.code(entry.id.0)))
            {
                FieldValue::Text(t) => Some(t),
                _ => None,
            },
            opt_out_cause: causes.get(&entry.id.0).map(|k| k.to_string()),
            at_ms: derived_ms,
        };
        entry.id = EntryId(id as u32);
        entry.in_reply_to = entry
            .in_reply_to
            .and_then(|local| derivation.key_of(local))
            .and_then(|k| id_of.get(k))
            .map(|c| EntryId(c.id as u32));
        entry_row(&mut rows, key, version, id, &entry, &derived)?;
        in_rows.push(key.to_string());
        if in_rows.len() == ROWS_PER_INSERT {
            written.insert_ms += insert_entries(shared, &rows, &in_rows)?;
            rows = Rows::new();
            in_rows.clear();
        }
        Ok(())
    })?;
    drop(snapshot);
    if !in_rows.is_empty() {
        written.insert_ms += insert_entries(shared, &rows, &in_rows)?;
    }
    written.rows_ms = started.elapsed().as_millis() - written.ids_ms - written.insert_ms;
    // A purge recorded after the check above (another process's) has
    // already run its deletions, or runs them after this insert: these
    // rows go in both cases.
    let written_keys: Vec<&String> = id_of.keys().collect();
    let purged = purged_among(shared, &written_keys)?;
    if !purged.is_empty() {
        delete_entries_of(shared, &purged).map_err(|e| ChError::Server {
            status: 503,
            message: e.to_string(),
        })?;
    }
    Ok(written)
}

/// How long an insert of entries may take before its keys are marked
/// changed again: the server stamps `entry_changes` as the insert begins,
/// and the settler leaves a change alone for at least a second.
const SLOW_INSERT: std::time::Duration = std::time::Duration::from_millis(500);

/// Inserts entry rows (of the keys `keys`); returns the milliseconds it
/// took. An insert slower than [`SLOW_INSERT`] marks its keys changed again
/// once it is committed, so that a settler round that read the changes
/// before the commit does not leave them unsettled (see `settle.rs`).
fn insert_entries(shared: &Shared, rows: &Rows, keys: &[String]) -> Result<u128, ChError> {
    let started = std::time::Instant::now();
    shared.insert("entries", ENTRY_INSERT_COLUMNS, rows)?;
    let took = started.elapsed();
    if took >= SLOW_INSERT {
        let mut marks = Rows::new();
        for k in keys {
            marks.string(k.as_bytes());
        }
        shared.insert("entry_changes", "key", &marks)?;
    }
    Ok(took.as_millis())
}

/// Inputs read per query when a whole store is folded.
const INPUTS_PER_READ: usize = 100_000;

/// Every stored input's `seq`, ascending.
fn all_seqs(shared: &Shared) -> Result<Vec<u64>, ChError> {
    let t = shared.table("inputs");
    let bytes = shared.client.query(&format!(
        "SELECT seq FROM {t} ORDER BY seq FORMAT RowBinary"
    ))?;
    let mut r = Reader::new(&bytes);
    let mut out = Vec::with_capacity(bytes.len() / 8);
    while !r.is_done() {
        out.push(r.u64().map_err(truncated)?);
    }
    Ok(out)
}

/// `seqs` (ascending) in ranges of `per`, first and last: a whole store
/// is read a range at a time, each a range of the primary key. (Paging
/// with `seq > last ORDER BY seq LIMIT n` read every later row for each
/// page on 18.16, which does not read in key order for a `LIMIT`: at 10M,
/// 5.7 s and 19.8M rows per page of 100,000.)
fn seq_ranges(seqs: &[u64], per: usize) -> Vec<(u64, u64)> {
    seqs.chunks(per.max(1))
        .filter_map(|c| Some((*c.first()?, *c.last()?)))
        .collect()
}

/// Reads `columns` of the stored inputs in `ranges` (of [`seq_ranges`]),
/// one range at a time, in `seq` order: `range` reads each range's
/// `RowBinary` rows.
fn each_input_range(
    shared: &Shared,
    ranges: &[(u64, u64)],
    columns: &str,
    mut range: impl FnMut(&mut Reader<'_>) -> Result<(), ChError>,
) -> Result<(), ChError> {
    let t = shared.table("inputs");
    for (lo, hi) in ranges {
        let bytes = shared.client.query(&format!(
            "SELECT {columns} FROM {t} WHERE seq >= {lo} AND seq <= {hi} ORDER BY seq FORMAT RowBinary"
        ))?;
        range(&mut Reader::new(&bytes))?;
    }
    Ok(())
}

/// The groups of a whole store's inputs (those that share an entry, a
/// quoted message or a person), from what each input names, without its
/// events: a union-find over inputs, joined through the first input that
/// named each identifier. Identifiers are kept as 64-bit SipHash values,
/// not strings (at 10M messages, ~50M of them).
struct StoreGroups {
    /// Every input's `seq`, ascending.
    seqs: Vec<u64>,
    sets: UnionFind,
    first_of: rustc_hash::FxHashMap<u64, u32>,
    /// Every entry's key, in the order of the input that first named it
    /// (then in key order within that input): the order the entries get
    /// their ids in when the store is folded in parts.
    keys: Vec<String>,
}

fn ident_hash(ident: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    ident.hash(&mut h);
    h.finish()
}

impl StoreGroups {
    /// Reads what every stored input names, in `seq` order.
    fn read(shared: &Shared) -> Result<StoreGroups, ChError> {
        let mut g = StoreGroups {
            seqs: Vec::new(),
            sets: UnionFind::default(),
            first_of: rustc_hash::FxHashMap::default(),
            keys: Vec::new(),
        };
        let ranges = seq_ranges(&all_seqs(shared)?, INPUTS_PER_READ * 10);
        each_input_range(shared, &ranges, "seq, keys, people, links", |r| {
            while !r.is_done() {
                let seq = r.u64().map_err(truncated)?;
                let me = g.sets.push();
                g.seqs.push(seq);
                // Quoted messages join as entries (as `Named::joins`).
                for (column, prefix) in ["k:", "p:", "k:"].into_iter().enumerate() {
                    let n = r.u64_varint().map_err(truncated)?;
                    for _ in 0..n {
                        let v = String::from_utf8_lossy(r.string().map_err(truncated)?);
                        let ident = format!("{prefix}{v}");
                        match g.first_of.entry(ident_hash(&ident)) {
                            std::collections::hash_map::Entry::Occupied(o) => {
                                g.sets.union(me, *o.get());
                            }
                            std::collections::hash_map::Entry::Vacant(slot) => {
                                slot.insert(me);
                                if column == 0 {
                                    g.keys.push(v.into_owned());
                                }
                            }
                        }
                    }
                }
            }
            Ok(())
        })?;
        Ok(g)
    }

    /// The group of the input `seq`, if it was read.
    fn group_of_seq(&mut self, seq: u64) -> Option<u32> {
        let i = self.seqs.binary_search(&seq).ok()?;
        Some(self.sets.find(i as u32))
    }
}

impl Groups for StoreGroups {
    fn group_of(&mut self, ident: &str) -> Option<(usize, u64)> {
        let &first = self.first_of.get(&ident_hash(ident))?;
        let root = self.sets.find(first);
        Some((root as usize, self.sets.size(root)))
    }
}

/// A part's inputs, written aside while the store is read and read back
/// when the part is folded; removed when dropped.
struct Spill {
    path: std::path::PathBuf,
    out: Option<std::io::BufWriter<std::fs::File>>,
}

impl Spill {
    fn create(part: usize) -> Result<Spill, ChError> {
        let path = std::env::temp_dir().join(format!(
            "ticks-fold-{}-{part}-{}",
            std::process::id(),
            ticks_ingest::now_ms()
        ));
        let file = std::fs::File::create(&path).map_err(spill_error)?;
        Ok(Spill {
            path,
            out: Some(std::io::BufWriter::new(file)),
        })
    }

    fn push(&mut self, seq: u64, received_ms: i64, events: &[u8]) -> Result<(), ChError> {
        use std::io::Write;
        let Some(out) = self.out.as_mut() else {
            return Ok(());
        };
        out.write_all(&seq.to_le_bytes())
            .and_then(|()| out.write_all(&received_ms.to_le_bytes()))
            .and_then(|()| out.write_all(&(events.len() as u64).to_le_bytes()))
            .and_then(|()| out.write_all(events))
            .map_err(spill_error)
    }

    /// Every input pushed, in the order pushed.
    fn read_back(&mut self) -> Result<Vec<u8>, ChError> {
        if let Some(out) = self.out.take() {
            out.into_inner().map_err(|e| spill_error(e.into_error()))?;
        }
        std::fs::read(&self.path).map_err(spill_error)
    }
}

impl Drop for Spill {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn spill_error(e: std::io::Error) -> ChError {
    ChError::Server {
        status: 500,
        message: format!("a part of the store's inputs could not be set aside: {e}"),
    }
}

/// The next `n` bytes of a part's file.
fn take<'a>(rest: &mut &'a [u8], n: usize) -> Result<&'a [u8], ChError> {
    if rest.len() < n {
        return Err(truncated(()));
    }
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    Ok(head)
}

fn le_u64(b: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&b[..8]);
    u64::from_le_bytes(word)
}

fn decode_events(seq: u64, bytes: &[u8]) -> Result<Vec<Event>, ChError> {
    rmp_serde::from_slice(bytes).map_err(|e| ChError::Server {
        status: 500,
        message: format!("the events of input {seq} do not decode: {e}"),
    })
}

/// Derives every entry from every stored input: what `ticks migrate` does
/// once its inputs are copied, instead of deriving again, after each group
/// of copied inputs, the whole history of every person the group touches
/// (which grows with the store: a group of 5,000 inputs folded 35-55k at
/// 400k). First what every input names is read (no events) and the inputs
/// are joined into groups (people and their entries); the groups are
/// dealt into parts of about `inputs_per_fold` inputs, each folded on its
/// own (a group is never split: an entry's fold sees all of its person's
/// inputs), so memory follows the part, not the store. With more than one
/// part, the inputs' events are set aside in a file per part (in the
/// temporary directory) while the store is read once. `progress` is told
/// how many inputs were folded so far. Returns how many entries were
/// written.
pub(super) fn derive_all(
    shared: &Shared,
    ids: &mut Ids,
    inputs_per_fold: usize,
    progress: &mut dyn FnMut(u64),
) -> Result<usize, ChError> {
    let started = std::time::Instant::now();
    let mut groups = StoreGroups::read(shared)?;
    let parts = groups.seqs.len().div_ceil(inputs_per_fold.max(1)).max(1);
    let grouped_ms = started.elapsed().as_millis();
    let mut spills: Vec<Spill> = Vec::new();
    if parts > 1 {
        for part in 0..parts {
            spills.push(Spill::create(part)?);
        }
    }
    let mut whole = if parts == 1 {
        Some(shared.derivation()?)
    } else {
        None
    };
    let mut folded = 0u64;
    let ranges = seq_ranges(&groups.seqs, INPUTS_PER_READ);
    each_input_range(shared, &ranges, "seq, received_ms, events", |r| {
        while !r.is_done() {
            let seq = r.u64().map_err(truncated)?;
            let received_ms = r.i64().map_err(truncated)?;
            let events = r.string().map_err(truncated)?;
            // An input stored after the groups were read is another
            // writer's, which derives it.
            let Some(root) = groups.group_of_seq(seq) else {
                continue;
            };
            match whole.as_mut() {
                Some(derivation) => {
                    derivation.add(Seq(seq), received_ms, &decode_events(seq, events)?);
                    folded += 1;
                }
                None => spills[root as usize % parts].push(seq, received_ms, events)?,
            }
        }
        if whole.is_some() {
            progress(folded);
        }
        Ok(())
    })?;
    let mut entries = 0;
    let mut contested = false;
    let mut parts_written = Vec::new();
    // In parts, each part's entries would get their ids part by part:
    // they are given first, all of them, in the order the store made them
    // (as one fold would give them: the log table's ties are in id order).
    let mut known = None;
    if parts > 1 {
        let keys: Vec<String> = std::mem::take(&mut groups.keys);
        let purged = purged_among(shared, &keys.iter().collect::<Vec<_>>())?;
        let live: Vec<&String> = keys.iter().filter(|k| !purged.contains(*k)).collect();
        let (claims, raced) = entry_ids(shared, ids, &live)?;
        contested |= raced;
        known = Some(claims);
    }
    if let Some(derivation) = whole {
        let written = write_fold(shared, ids, &derivation, &mut groups, None)?;
        contested |= written.contested;
        entries += written.entries;
        parts_written.push(written);
    }
    for mut spill in spills {
        let bytes = spill.read_back()?;
        drop(spill);
        let mut derivation = shared.derivation()?;
        let mut rest: &[u8] = &bytes;
        while !rest.is_empty() {
            let seq = le_u64(take(&mut rest, 8)?);
            let received_ms = le_u64(take(&mut rest, 8)?) as i64;
            let len = le_u64(take(&mut rest, 8)?) as usize;
            let events = decode_events(seq, take(&mut rest, len)?)?;
            derivation.add(Seq(seq), received_ms, &events);
            folded += 1;
        }
        drop(bytes);
        progress(folded);
        let written = write_fold(shared, ids, &derivation, &mut groups, known.as_ref())?;
        contested |= written.contested;
        entries += written.entries;
        parts_written.push(written);
    }
    tracing::info!(
        inputs = folded,
        parts,
        entries,
        grouped_ms,
        ids_ms = parts_written.iter().map(|w| w.ids_ms).sum::<u128>(),
        rows_ms = parts_written.iter().map(|w| w.rows_ms).sum::<u128>(),
        insert_ms = parts_written.iter().map(|w| w.insert_ms).sum::<u128>(),
        total_ms = started.elapsed().as_millis(),
        "every entry derived"
    );
    if contested {
        // Another process gave some of these entries an id in the same
        // moment (it wrote inputs of theirs meanwhile): all are derived
        // again, each then with the smallest id (rare: a migration runs
        // alone).
        return derive_all(shared, ids, inputs_per_fold, progress);
    }
    Ok(entries)
}

/// The version an entry row is written with: the inputs of its group
/// (the entry's own person and entries), then the ids given to the group's
/// entries, then the template versions the fold's catalog held. All three
/// only grow, so a later fold writes a version at least as large: more
/// inputs is a later fold; as many inputs and more ids given is a fold
/// that read the ids later, after a race (`entry_ids`) changed which is
/// the smallest; as many of both and more templates is the fold that
/// renders sends with a template added since (`templates.rs`). Rows
/// written before the templates' part held the ids given in the low 32
/// bits (a few): a row of as many inputs written now outranks them.
fn version(inputs: u64, ids_given: u64, templates: u64) -> u64 {
    (inputs << 32) | (ids_given.min(0xffff) << 16) | templates.min(0xffff)
}

/// The timeline of the message `wamid`, folded from its person's inputs
/// as `derive` folds them, with the ids of `entry_ids`.
pub(super) fn timeline(shared: &Shared, wamid: &str) -> Result<Option<Timeline>, ChError> {
    let (derivation, _, _) = fold(shared, BTreeSet::from([format!("k:{wamid}")]))?;
    let Some(mut timeline) = derivation.timeline(wamid) else {
        return Ok(None);
    };
    let mut keys: Vec<String> = timeline
        .items
        .iter()
        .map(|i| i.entry)
        .chain([timeline.entry.id])
        .chain(timeline.entry.in_reply_to)
        .filter_map(|id| derivation.key_of(id).map(String::from))
        .collect();
    keys.sort();
    keys.dedup();
    let id_of = read_ids(shared, &keys.iter().collect::<Vec<_>>())?;
    let global = |local: EntryId| {
        derivation
            .key_of(local)
            .and_then(|k| id_of.get(k))
            .map(|&id| EntryId(id as u32))
    };
    let Some(id) = global(timeline.entry.id) else {
        // Stored, but its entries not derived yet: as if not there.
        return Ok(None);
    };
    timeline.entry.id = id;
    timeline.entry.in_reply_to = timeline.entry.in_reply_to.and_then(global);
    for item in &mut timeline.items {
        item.entry = global(item.entry).unwrap_or(item.entry);
    }
    Ok(Some(timeline))
}

/// The index identifiers a person typed as `typed` may be stored under:
/// as typed, as a number's digits and its other forms, as a username.
fn typed_people(typed: &str) -> BTreeSet<String> {
    let typed = typed.trim();
    let digits = ticks_engine::normalize_phone(typed);
    let mut out: BTreeSet<String> = [typed.to_string(), digits.clone()].into_iter().collect();
    out.extend(ticks_engine::number_variants(&digits));
    out.insert(ticks_engine::normalize_username(typed));
    out.insert(typed.trim_start_matches('@').to_string());
    out.into_iter()
        .filter(|p| !p.is_empty())
        .map(|p| format!("p:{p}"))
        .collect()
}

/// The person `typed` names, folded from their inputs as `derive` folds
/// them: their card (its entries' ids those of `entry_ids`), and the keys
/// of every entry of theirs and of the people their number's other forms
/// name (what `contact=` selects, as the store's `contact_entries`).
pub(super) fn contact(
    shared: &Shared,
    typed: &str,
) -> Result<(Option<ticks_engine::Contact>, Vec<String>), ChError> {
    let (derivation, _, _) = fold(shared, typed_people(typed))?;
    let snapshot = derivation.snapshot();
    let local_keys = |ids: &roaring::RoaringBitmap| -> Vec<String> {
        ids.iter()
            .filter_map(|id| derivation.key_of(EntryId(id)).map(String::from))
            .collect()
    };
    let selected = local_keys(&snapshot.contact_entries(typed));
    let Some(mut card) = snapshot.contact(typed) else {
        return Ok((None, selected));
    };
    drop(snapshot);
    let keys = local_keys(&card.entries);
    let id_of = read_ids(shared, &keys.iter().collect::<Vec<_>>())?;
    let global = |local: EntryId| {
        derivation
            .key_of(local)
            .and_then(|k| id_of.get(k))
            .map(|&id| EntryId(id as u32))
    };
    for change in &mut card.marketing.history {
        change.entry = global(change.entry).unwrap_or(change.entry);
    }
    // In the store's order: by time, then by entry id (here the global one).
    card.marketing.history.sort_by_key(|c| (c.at_ms, c.entry));
    card.entries = card
        .entries
        .iter()
        .filter_map(|local| global(EntryId(local)).map(|id| id.0))
        .collect();
    Ok((Some(card), selected))
}

/// Every input reachable from `idents`, folded; and which share a person
/// or an entry.
fn fold(
    shared: &Shared,
    idents: BTreeSet<String>,
) -> Result<(Derivation, Components, bool), ChError> {
    let (inputs, complete) = closure(shared, idents, shared.max_folded)?;
    let inputs = decode(inputs)?;
    Ok((
        fold_decoded(shared, &inputs)?,
        Components::of(&inputs),
        complete,
    ))
}

/// `inputs` (in `seq` order) folded.
fn fold_decoded(shared: &Shared, inputs: &[Decoded]) -> Result<Derivation, ChError> {
    let mut derivation = shared.derivation()?;
    for input in inputs {
        derivation.add(Seq(input.seq), input.received_ms, &input.events);
    }
    Ok(derivation)
}

/// The ids `entry_ids` gives `keys` (the smallest of each).
fn read_ids(shared: &Shared, keys: &[&String]) -> Result<BTreeMap<String, u64>, ChError> {
    Ok(read_claims(shared, keys)?
        .into_iter()
        .map(|(key, claims)| (key, claims.id))
        .collect())
}

/// What `entry_ids` holds for one key: the smallest id given and how many
/// ids were given (more than one when processes gave one at once).
#[derive(Clone, Copy)]
struct Claims {
    id: u64,
    given: u64,
}

/// Past this many keys their claims are read with one pass over the
/// whole table, not a list of keys at a time: a whole store's fold asked
/// 1.96M keys in 392 lists, 64 s of its migration.
const WHOLE_TABLE_PAST: usize = 100_000;

/// The claims of `keys` that have any.
fn read_claims(shared: &Shared, keys: &[&String]) -> Result<BTreeMap<String, Claims>, ChError> {
    let t = shared.table("entry_ids");
    let mut out = BTreeMap::new();
    let mut read = |bytes: &[u8], wanted: Option<&std::collections::HashSet<&str>>| {
        let mut r = Reader::new(bytes);
        while !r.is_done() {
            let key = r.string().map_err(truncated)?;
            let id = r.u64().map_err(truncated)?;
            let given = r.u64().map_err(truncated)?;
            let key = String::from_utf8_lossy(key);
            if wanted.is_none_or(|w| w.contains(key.as_ref())) {
                out.insert(key.into_owned(), Claims { id, given });
            }
        }
        Ok::<(), ChError>(())
    };
    if keys.len() > WHOLE_TABLE_PAST {
        let wanted: std::collections::HashSet<&str> = keys.iter().map(|k| k.as_str()).collect();
        let bytes = shared.client.query(&format!(
            "SELECT key, min(id), count() FROM {t} GROUP BY key FORMAT RowBinary"
        ))?;
        read(&bytes, Some(&wanted))?;
    } else {
        for chunk in keys.chunks(CHUNK) {
            let bytes = shared.client.query(&format!(
                "SELECT key, min(id), count() FROM {t} WHERE key IN ({}) GROUP BY key FORMAT RowBinary",
                string_list(chunk.iter().copied())
            ))?;
            read(&bytes, None)?;
        }
    }
    Ok(out)
}

/// Which group of inputs an identifier (`k:key`, `p:person`) is in: the
/// group's root and how many inputs it has.
trait Groups {
    fn group_of(&mut self, ident: &str) -> Option<(usize, u64)>;
}

impl Groups for Components {
    fn group_of(&mut self, ident: &str) -> Option<(usize, u64)> {
        let &i = self.by_ident.get(ident)?;
        let root = self.sets.find(i);
        Some((root as usize, self.sets.size(root)))
    }
}

/// The inputs of a fold joined into groups that share an identifier (an
/// entry's key or a person's), by union-find: an entry's version is the
/// size of its group, not of the whole fold (which may hold other people
/// the same group of writes named).
#[derive(Default)]
struct Components {
    sets: UnionFind,
    by_ident: BTreeMap<String, u32>,
}

impl Components {
    /// `inputs` joined, each the number of its place.
    fn of(inputs: &[Decoded]) -> Components {
        let mut components = Components::default();
        for input in inputs {
            components.add(input.joins.iter().cloned());
        }
        components
    }

    /// One input and the identifiers it names.
    fn add(&mut self, idents: impl Iterator<Item = String>) {
        let me = self.sets.push();
        for ident in idents {
            match self.by_ident.get(&ident) {
                Some(&other) => self.sets.union(me, other),
                None => {
                    self.by_ident.insert(ident, me);
                }
            }
        }
    }
}

/// Inputs joined into groups: a union-find by size, with path halving.
#[derive(Default)]
struct UnionFind {
    parent: Vec<u32>,
    size: Vec<u32>,
}

impl UnionFind {
    /// A new input, in a group of its own; its number.
    fn push(&mut self) -> u32 {
        let me = self.parent.len() as u32;
        self.parent.push(me);
        self.size.push(1);
        me
    }

    fn find(&mut self, mut i: u32) -> u32 {
        while self.parent[i as usize] != i {
            let up = self.parent[self.parent[i as usize] as usize];
            self.parent[i as usize] = up;
            i = up;
        }
        i
    }

    fn union(&mut self, a: u32, b: u32) {
        let (a, b) = (self.find(a), self.find(b));
        if a == b {
            return;
        }
        let (big, small) = if self.size[a as usize] >= self.size[b as usize] {
            (a, b)
        } else {
            (b, a)
        };
        self.parent[small as usize] = big;
        self.size[big as usize] += self.size[small as usize];
    }

    /// How many inputs the group of `root` holds.
    fn size(&self, root: u32) -> u64 {
        u64::from(self.size[root as usize])
    }
}

/// The ids of `keys`: the smallest given, else one given now. Also says
/// whether another process gave one of the missing keys an id meanwhile.
fn entry_ids(
    shared: &Shared,
    ids: &mut Ids,
    keys: &[&String],
) -> Result<(BTreeMap<String, Claims>, bool), ChError> {
    let mut known = read_claims(shared, keys)?;
    let missing: Vec<&String> = keys
        .iter()
        .copied()
        .filter(|k| !known.contains_key(*k))
        .collect();
    let mut contested = false;
    if !missing.is_empty() {
        let mut rows = Rows::new();
        for key in &missing {
            rows.string(key.as_bytes()).u64(ids.next(shared)?);
        }
        shared.insert("entry_ids", "key, id", &rows)?;
        // Another process may have given some of them an id meanwhile:
        // the smallest wins, for both.
        let now = read_claims(shared, &missing)?;
        contested = now.values().any(|c| c.given > 1);
        known.extend(now);
    }
    Ok((known, contested))
}

/// The columns an entry row is written with, in order.
pub(super) const ENTRY_INSERT_COLUMNS: &str =
    "key, version, id, purged, direction, status, recorded_ms, \
category, name, template, language, recipient_type, phone_number_id, subaccount, user, \
content_type, conversation_type, pricing_category, pricing_type, button, country, wamid, \
correlation_id, phone, session, source, attribution, billable, engagement, reached, \
response_code, error_code, entry, words, exact, opted_out, marketing, opt_out_cause, derived_ms";

/// What an entry got back: replies, clicks or both (the store's
/// `engagement` key, from the same counts).
fn engagement(e: &Entry) -> Option<Engagement> {
    match (e.replies > 0, e.clicks > 0) {
        (false, false) => None,
        (true, false) => Some(Engagement::Replied),
        (false, true) => Some(Engagement::Clicked),
        (true, true) => Some(Engagement::RepliedAndClicked),
    }
}

/// What an entry row holds beside the entry: what the fold knows of it.
struct Derived {
    /// The furthest delivery step (`reached=`).
    reached: Option<Reached>,
    /// Its words and identifiers (free text).
    text: (String, Vec<String>),
    /// Whether its person last said stop to marketing (`opted_out=`).
    opted_out: bool,
    /// The marketing preference it records (`marketing=`).
    marketing: Option<String>,
    /// On an opt-out, the key of the marketing message its person got
    /// last before it (what a template's opt-outs are counted from).
    opt_out_cause: Option<String>,
    /// When the row is written (alerts count the rows written since their
    /// last round).
    at_ms: i64,
}

fn entry_row(
    rows: &mut Rows,
    key: &str,
    version: u64,
    id: u64,
    e: &Entry,
    derived: &Derived,
) -> Result<(), ChError> {
    let packed = rmp_serde::to_vec_named(e).map_err(|err| ChError::Server {
        status: 500,
        message: format!("an entry does not encode: {err}"),
    })?;
    rows.string(key.as_bytes())
        .u64(version)
        .u64(id)
        .u8(0)
        .string(e.direction.as_str().as_bytes())
        .string(e.status.as_str().as_bytes())
        .i64(e.recorded_ms);
    for v in [
        &e.category,
        &e.name,
        &e.template,
        &e.template_language,
        &e.recipient_type,
        &e.phone_number_id,
        &e.subaccount,
        &e.user,
        &e.content_type,
        &e.conversation_type,
        &e.pricing_category,
        &e.pricing_type,
        &e.button,
        &e.country,
        &e.wamid,
        &e.correlation_id,
        &e.phone,
    ] {
        rows.opt_string(v.as_deref());
    }
    rows.opt_string(e.session.map(|v| v.as_str()))
        .opt_string(e.source.map(|v| v.as_str()))
        .opt_string(e.attribution.map(|v| v.as_str()))
        .opt_string(e.billable.map(|b| if b { "true" } else { "false" }))
        .opt_string(engagement(e).map(Engagement::as_str))
        .opt_string(derived.reached.map(Reached::as_str));
    rows.opt_i64(e.response_code.map(i64::from))
        .opt_i64(e.error_code)
        .string(&packed)
        .string(derived.text.0.as_bytes())
        .strings(&derived.text.1)
        .u8(u8::from(derived.opted_out))
        .opt_string(derived.marketing.as_deref())
        .opt_string(derived.opt_out_cause.as_deref())
        .i64(derived.at_ms);
    Ok(())
}

/// An entry as stored in its row.
pub(super) fn decode_entry(bytes: &[u8]) -> Result<Entry, String> {
    rmp_serde::from_slice(bytes).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(seq: u64, joins: &[&str]) -> Decoded {
        Decoded {
            seq,
            received_ms: 0,
            events: Vec::new(),
            joins: joins.iter().map(|j| j.to_string()).collect(),
        }
    }

    #[test]
    fn batches_keep_each_group_whole_in_seq_order_and_under_the_limit_unless_alone() {
        // Ana's send and its status (joined through the message), Bia's
        // five inputs (a group larger than a batch), Caio's and Duda's
        // one each, interleaved in seq order.
        let inputs = vec![
            input(1, &["k:m1", "p:ana"]),
            input(2, &["p:bia"]),
            input(3, &["k:m1", "p:ana-wa"]),
            input(4, &["p:bia"]),
            input(5, &["p:caio"]),
            input(6, &["p:bia"]),
            input(7, &["p:bia"]),
            input(8, &["p:duda"]),
            input(9, &["p:bia"]),
        ];
        let mut components = Components::of(&inputs);
        let batches = batches(inputs, &mut components, 3);
        let seqs: Vec<Vec<u64>> = batches
            .iter()
            .map(|b| b.iter().map(|i| i.seq).collect())
            .collect();
        assert_eq!(seqs, vec![vec![1, 3], vec![2, 4, 6, 7, 9], vec![5, 8]]);
    }

    #[test]
    fn nothing_read_is_no_batch() {
        assert!(batches(Vec::new(), &mut Components::default(), 10).is_empty());
    }
}
