//! The tantivy full-text index: one document per event that carries text,
//! each naming its entry, searched into a bitmap of entry ids.
//!
//! The index lags the log and never leads it: documents are added only after
//! their record is durable, and every commit carries the sequence number of
//! the last record it covers as its payload. On open, records after that
//! payload are indexed again, so a crash loses nothing and duplicates nothing.

use crate::error::{io_err, Error, Result};
use crate::model::{EntryId, Seq};
use crate::state::TextDoc;
use roaring::RoaringBitmap;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::index::SegmentId;
use tantivy::merge_policy::LogMergePolicy;
use tantivy::query::{
    BooleanQuery, EnableScoring, Occur, PhraseQuery, Query, RegexQuery, TermQuery, Weight,
};
use tantivy::schema::{Field, IndexRecordOption, Schema, FAST, INDEXED, STRING, TEXT};
use tantivy::tokenizer::TokenStream;
use tantivy::{
    DocId, DocSet, Index, IndexReader, IndexSettings, IndexSortByField, IndexWriter, Order,
    ReloadPolicy, SeekDangerResult, SegmentReader, TantivyDocument, Term, TERMINATED,
};

const WRITER_HEAP_BYTES: usize = 64 * 1024 * 1024;
/// Upper bound on terms in one user query, so a pasted novel cannot build a
/// query that takes seconds.
const MAX_QUERY_TERMS: usize = 32;

#[derive(Clone, Copy)]
struct Fields {
    entry: Field,
    seq: Field,
    text: Field,
    exact: Field,
}

enum Msg {
    Docs(Seq, Vec<TextDoc>),
    Delete(Vec<EntryId>, Seq, Sender<Result<()>>),
    Flush(Sender<Result<()>>),
}

/// Handle to the index and its background indexer thread.
pub(crate) struct TextIndex {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    tx: Mutex<Option<Sender<Msg>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Last sequence number committed, plus one (0: nothing yet).
    committed: Arc<AtomicU64>,
    /// Last sequence number handed to the indexer, plus one.
    submitted: AtomicU64,
    /// Why the index writer is dead (until the indexer has made it again).
    fault: Arc<Mutex<Option<String>>>,
    /// Per segment (segments never change once written): which documents
    /// each entry has, for searching within a set of entries; `None` while
    /// a thread builds it.
    entry_docs: Arc<Mutex<HashMap<SegmentId, Option<Arc<EntryDocs>>>>>,
    /// The threads building those maps (at open, and for segments made
    /// since). A deletion waits for them: the segment readers they hold
    /// would keep old segment files from removal.
    map_builders: Mutex<Vec<JoinHandle<()>>>,
    /// Buffers of finished searches, taken by the next ones (one per
    /// concurrent search), so their pages stay faulted in.
    scratch: Mutex<Vec<Scratch>>,
    /// Candidates (or marks) from which a segment's search is split over
    /// two threads: [`SPLIT_FROM`], lower in tests.
    split_from: usize,
}

/// A search's working sets, kept between searches (two of each: a big
/// search runs on two threads).
#[derive(Default)]
struct Scratch {
    marks: DocMarks,
    more_marks: DocMarks,
    entries: Vec<u8>,
    more_entries: Vec<u8>,
    /// One segment's candidates, as a list to split.
    candidates: Vec<u32>,
}

/// Searches whose buffers are kept; more concurrent ones allocate.
const KEPT_SCRATCH: usize = 2;

/// One segment's documents by entry id, in compressed-row form: the
/// documents of entry `first + i` are `docs[offsets[i]..offsets[i + 1]]`.
struct EntryDocs {
    first: u32,
    offsets: Vec<u32>,
    docs: Vec<DocId>,
    /// doc -> entry (`u32::MAX`: none), the reverse of the above; cheaper
    /// than decoding the fast field for every hit.
    entry_of: Vec<u32>,
    /// The entries with at least one document here. A segment's entry span
    /// is wide (a status can name a message months old), so a search
    /// intersects its candidates with this instead of looking up every
    /// candidate of the span.
    present: RoaringBitmap,
}

impl EntryDocs {
    /// Reads the segment's `entry` column in runs (not document by
    /// document) and places each document by a counting sort over the
    /// entry span: documents are in log order, so each entry's documents
    /// come out ascending without sorting (3.0 s -> well under 1 s at 10M
    /// messages, where the first narrowed text search after an open used
    /// to wait for it).
    fn build(segment: &SegmentReader) -> Result<EntryDocs> {
        let column = segment.fast_fields().u64("entry")?;
        let max_doc = segment.max_doc() as usize;
        let mut entry_of = vec![u32::MAX; max_doc];
        if matches!(column.index, tantivy::columnar::ColumnIndex::Full) {
            let mut run = vec![0u64; 4096];
            for (start, out) in (0..).step_by(run.len()).zip(entry_of.chunks_mut(run.len())) {
                let values = &mut run[..out.len()];
                column.values.get_range(start, values);
                for (slot, value) in out.iter_mut().zip(values.iter()) {
                    *slot = *value as u32;
                }
            }
        } else {
            for (doc, slot) in entry_of.iter_mut().enumerate() {
                if let Some(entry) = column.first(doc as DocId) {
                    *slot = entry as u32;
                }
            }
        }
        let held = || entry_of.iter().copied().filter(|&e| e != u32::MAX);
        let (Some(first), Some(last)) = (held().min(), held().max()) else {
            return Ok(EntryDocs {
                first: 0,
                offsets: vec![0],
                docs: Vec::new(),
                entry_of,
                present: RoaringBitmap::new(),
            });
        };
        let span = (last - first) as usize + 1;
        let mut offsets = vec![0u32; span + 1];
        for entry in held() {
            offsets[(entry - first) as usize + 1] += 1;
        }
        for i in 1..offsets.len() {
            offsets[i] += offsets[i - 1];
        }
        let mut next = offsets[..span].to_vec();
        let mut docs = vec![0 as DocId; offsets[span] as usize];
        for (doc, &entry) in entry_of.iter().enumerate() {
            if entry != u32::MAX {
                let at = &mut next[(entry - first) as usize];
                docs[*at as usize] = doc as DocId;
                *at += 1;
            }
        }
        let present = RoaringBitmap::from_sorted_iter(
            offsets
                .windows(2)
                .zip(first..)
                .filter(|(pair, _)| pair[0] < pair[1])
                .map(|(_, entry)| entry),
        )
        .map_err(|e| Error::Text(format!("building a segment's entry map: {e}")))?;
        Ok(EntryDocs {
            first,
            offsets,
            docs,
            entry_of,
            present,
        })
    }

    fn heap_bytes(&self) -> usize {
        (self.offsets.capacity() + self.docs.capacity() + self.entry_of.capacity()) * 4
            + self.present.serialized_size()
    }

    /// Marks the documents of `entries` (ascending). A sparse set of
    /// candidates misses the cache twice per entry (its offsets, then its
    /// documents), one after the other; fetching both ahead of use lets
    /// the misses of several entries overlap.
    fn mark_docs(&self, entries: &[u32], marks: &mut DocMarks) {
        const AHEAD: usize = 8;
        for (i, &entry) in entries.iter().enumerate() {
            if let Some(&later) = entries.get(i + 2 * AHEAD) {
                prefetch(&self.offsets, later.wrapping_sub(self.first) as usize);
            }
            if let Some(&soon) = entries.get(i + AHEAD) {
                if let Some(&at) = self.offsets.get(soon.wrapping_sub(self.first) as usize) {
                    prefetch(&self.docs, at as usize);
                }
            }
            for doc in self.docs_of(entry) {
                marks.mark(*doc);
            }
        }
    }

    fn docs_of(&self, entry: u32) -> &[DocId] {
        let i = entry.wrapping_sub(self.first) as usize;
        match (self.offsets.get(i), self.offsets.get(i + 1)) {
            (Some(from), Some(to)) => &self.docs[*from as usize..*to as usize],
            _ => &[],
        }
    }
}

/// Brings `slice[index]` into the cache ahead of its use (nothing if out
/// of range). A plain load the optimiser may not drop: the workspace
/// forbids `unsafe`, so no prefetch instruction.
#[inline(always)]
fn prefetch(slice: &[u32], index: usize) {
    std::hint::black_box(slice.get(index).copied());
}

/// A set of a segment's documents, one bit each, with how many marks were
/// made in all and in each window of `1 << WINDOW_BITS` documents.
#[derive(Default)]
struct DocMarks {
    words: Vec<u64>,
    per_window: Vec<u32>,
    count: u64,
}

/// Documents per window of [`DocMarks`]: small enough that the marks of a
/// date range fill their windows, large enough that the windows are few.
const WINDOW_BITS: u32 = 16;

/// The words of a set of `words` words that hold a window's marks (the
/// last window may be short).
fn window_words(window: usize, words: usize) -> std::ops::Range<usize> {
    const WORDS_PER_WINDOW: usize = 1 << (WINDOW_BITS - 6);
    let from = (window * WORDS_PER_WINDOW).min(words);
    from..(from + WORDS_PER_WINDOW).min(words)
}

/// How many postings of a word reading in order costs as much as probing
/// one candidate: a probe finds the block (a skip list) and searches it,
/// reading tests one bit. Measured at 10M messages: reading wins for
/// common words; phrases always probe (see `reads_positions`).
const POSTINGS_PER_SEEK: u64 = 8;

impl DocMarks {
    /// Empties the set and sizes it for a segment of `max_doc` documents.
    /// Only the windows that hold marks are cleared, and the buffers are
    /// kept: a fresh set per segment and query faulted in (and zeroed)
    /// megabytes of new pages, a quarter of a search's time at 10M.
    fn reset(&mut self, max_doc: DocId) {
        for (window, marks) in self.per_window.iter_mut().enumerate() {
            if *marks != 0 {
                let words = window_words(window, self.words.len());
                self.words[words].fill(0);
                *marks = 0;
            }
        }
        self.count = 0;
        self.words.resize((max_doc as usize).div_ceil(64), 0);
        self.per_window
            .resize((max_doc as usize).div_ceil(1 << WINDOW_BITS), 0);
    }

    /// Moves `other`'s marks (of other documents: each document has one
    /// entry) into this set, leaving `other` empty.
    fn absorb(&mut self, other: &mut DocMarks) {
        for (window, marks) in other.per_window.iter_mut().enumerate() {
            if *marks == 0 {
                continue;
            }
            // Both sets are sized for the same segment.
            let words = window_words(window, other.words.len());
            if let (Some(mine), Some(theirs)) = (
                self.words.get_mut(words.clone()),
                other.words.get_mut(words),
            ) {
                for (mine, theirs) in mine.iter_mut().zip(theirs) {
                    *mine |= std::mem::take(theirs);
                }
            }
            if let Some(n) = self.per_window.get_mut(window) {
                *n += *marks;
            }
            *marks = 0;
        }
        self.count += std::mem::take(&mut other.count);
    }

    /// The first window of the second half of the marks.
    fn middle_window(&self) -> usize {
        let mut seen = 0u64;
        for (window, &marks) in self.per_window.iter().enumerate() {
            seen += u64::from(marks);
            if seen * 2 >= self.count {
                return window + 1;
            }
        }
        self.per_window.len()
    }

    fn mark(&mut self, doc: DocId) {
        if let Some(w) = self.words.get_mut(doc as usize / 64) {
            let bit = 1 << (doc % 64);
            if *w & bit == 0 {
                *w |= bit;
                self.count += 1;
                if let Some(n) = self.per_window.get_mut((doc >> WINDOW_BITS) as usize) {
                    *n += 1;
                }
            }
        }
    }

    fn contains(&self, doc: DocId) -> bool {
        self.words
            .get(doc as usize / 64)
            .is_some_and(|w| w & (1 << (doc % 64)) != 0)
    }

    /// The first marked document at or after `from`.
    fn next_from(&self, from: DocId) -> Option<DocId> {
        let mut index = from as usize / 64;
        let mut word = self.words.get(index)? & (u64::MAX << (from % 64));
        loop {
            if word != 0 {
                return Some((index * 64) as DocId + word.trailing_zeros());
            }
            index += 1;
            word = *self.words.get(index)?;
        }
    }
}

/// The entries a search found, as one bit each over the span of the
/// candidates: hits come in document order, not entry order, and setting
/// bits then reading them out in order beats sorting a list of hits.
struct EntrySet {
    /// Entry id of bit 0: a multiple of 65,536, so the bitmap is built
    /// container by container.
    base: u32,
    bits: Vec<u8>,
}

impl EntrySet {
    /// An empty set over `lowest..=highest`, in `bits` (all zero: see
    /// [`EntrySet::into_bitmap`]).
    fn new(lowest: u32, highest: u32, mut bits: Vec<u8>) -> EntrySet {
        let base = lowest & !0xFFFF;
        bits.resize(((highest - base) as usize >> 3) + 1, 0);
        EntrySet { base, bits }
    }

    /// Adds an entry (ignored outside the span: not a candidate).
    fn insert(&mut self, entry: u32) {
        if let Some(offset) = entry.checked_sub(self.base) {
            if let Some(byte) = self.bits.get_mut(offset as usize >> 3) {
                *byte |= 1 << (offset & 7);
            }
        }
    }

    /// Adds the entry of a marked document (every marked one has one).
    fn insert_doc(&mut self, map: &EntryDocs, doc: DocId) {
        if let Some(&entry) = map.entry_of.get(doc as usize) {
            if entry != u32::MAX {
                self.insert(entry);
            }
        }
    }

    /// Moves `other`'s entries (a set over the same span) into this one,
    /// leaving `other` empty.
    fn absorb(&mut self, other: &mut EntrySet) {
        for (mine, theirs) in self.bits.iter_mut().zip(&mut other.bits) {
            *mine |= std::mem::take(theirs);
        }
    }

    /// The set as a bitmap, and its buffer zeroed for the next search.
    fn into_bitmap(mut self) -> (RoaringBitmap, Vec<u8>) {
        let bitmap = RoaringBitmap::from_lsb0_bytes(self.base, &self.bits);
        self.bits.fill(0);
        (bitmap, self.bits)
    }
}

/// Candidates at which a search's marking, and then its scoring, is
/// split over two threads: below it, waking the second costs more than it
/// saves.
const SPLIT_FROM: usize = 32_768;

/// One segment's part of [`TextIndex::search_within`], once its
/// candidates' documents are marked.
struct SegmentSearch<'a> {
    weight: &'a dyn Weight,
    segment: &'a SegmentReader,
    map: &'a EntryDocs,
    marked: &'a DocMarks,
    /// See [`POSTINGS_PER_SEEK`] (0: always probe).
    postings_per_seek: u64,
}

impl SegmentSearch<'_> {
    /// Adds to `found` the entries of the marked documents in `windows`
    /// that the query matches, with a scorer of its own (so that two
    /// threads can search two ranges of windows).
    ///
    /// Documents are in log order (the index is sorted by sequence number),
    /// so a date range's candidates gather in a part of the segment. Window
    /// by window: where the query's postings are few against the marks (a
    /// common word), they are read in order and each tested against the
    /// marks; elsewhere (a rare word, few candidates, a phrase) each mark
    /// is probed, which for a phrase reads positions only at the marks.
    fn run(&self, windows: std::ops::Range<usize>, found: &mut EntrySet) -> Result<()> {
        let (segment, marked, map) = (self.segment, self.marked, self.map);
        let alive = segment.alive_bitset();
        let mut scorer = self.weight.scorer(segment, 1.0)?;
        // False after a probe that missed: the scorer may then only be
        // probed again (`seek_danger`) until one hits.
        let mut valid = true;
        let postings = u64::from(scorer.size_hint());
        let max_doc = u64::from(segment.max_doc().max(1));
        for window in windows {
            let Some(&marks) = marked.per_window.get(window).filter(|m| **m != 0) else {
                continue;
            };
            let window_start = (window as DocId) << WINDOW_BITS;
            let window_end = window_start.saturating_add(1 << WINDOW_BITS);
            let span = u64::from(window_end.min(segment.max_doc()) - window_start);
            let postings_here = postings * span / max_doc;
            let from = if valid {
                scorer.doc().max(window_start)
            } else {
                window_start
            };
            let Some(mut target) = marked.next_from(from).filter(|t| *t < window_end) else {
                continue;
            };
            if postings_here <= u64::from(marks) * self.postings_per_seek {
                if !valid {
                    scorer = self.weight.scorer(segment, 1.0)?;
                    valid = true;
                }
                let mut at = scorer.doc();
                if at < target {
                    at = scorer.seek(target);
                }
                // TERMINATED is above every window's end: it ends this too.
                while at < window_end {
                    if marked.contains(at) && alive.is_none_or(|a| a.is_alive(at)) {
                        found.insert_doc(map, at);
                    }
                    at = scorer.advance();
                }
                continue;
            }
            loop {
                let next = match scorer.seek_danger(target) {
                    SeekDangerResult::Found => {
                        valid = true;
                        if alive.is_none_or(|a| a.is_alive(target)) {
                            found.insert_doc(map, target);
                        }
                        target + 1
                    }
                    SeekDangerResult::SeekLowerBound(bound) => {
                        valid = false;
                        bound
                    }
                };
                match marked.next_from(next) {
                    Some(t) if t < window_end => target = t,
                    _ => break,
                }
            }
        }
        Ok(())
    }
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let entry = b.add_u64_field("entry", INDEXED | FAST);
    let seq = b.add_u64_field("seq", FAST);
    let text = b.add_text_field("text", TEXT);
    let exact = b.add_text_field("exact", STRING);
    (
        b.build(),
        Fields {
            entry,
            seq,
            text,
            exact,
        },
    )
}

/// Every segment keeps its documents in log order, merged segments too:
/// documents are added in that order, and a merge of segments whose
/// sequence numbers do not overlap (always the case) just stacks them by
/// their first one. Without it a merge stacks segments in whatever order
/// it picked them, and a week of candidates spreads over the whole index.
fn settings() -> IndexSettings {
    IndexSettings {
        sort_by_field: Some(IndexSortByField {
            field: "seq".into(),
            order: Order::Asc,
        }),
        ..IndexSettings::default()
    }
}

/// Segments over this many documents are not merged again (tantivy's
/// default is 10M): eight or more smaller ones merge into one of up to
/// about 2M, which then stays (at 10M messages: 26 segments, the largest
/// 1.2M documents). Each merge level rewrites every posting of its
/// segments; at 10M messages merges were a quarter of an import's CPU, and
/// 44% of it two thirds in. Queries lose little: a query's candidates sit
/// in the few segments of their days, each searched through its own map.
const MERGE_SEGMENTS_UP_TO_DOCS: usize = 250_000;

fn merge_policy() -> LogMergePolicy {
    let mut policy = LogMergePolicy::default();
    policy.set_max_docs_before_merge(MERGE_SEGMENTS_UP_TO_DOCS);
    policy
}

/// Whether an index on disk has this build's schema and document order
/// (indexes written before documents carried their sequence number are
/// rebuilt from the log).
fn is_current(index: &Index) -> bool {
    let (schema, _) = schema();
    index.schema() == schema && index.settings().sort_by_field == settings().sort_by_field
}

fn seq_plus_one(seq: Option<Seq>) -> u64 {
    seq.map_or(0, |s| s.0 + 1)
}

impl TextIndex {
    /// Opens (or creates) the index in `dir`. Returns it with the last log
    /// sequence number it covers.
    pub(crate) fn open(dir: &Path, commit_every: Duration) -> Result<(TextIndex, Option<Seq>)> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let (schema, fields) = schema();
        let existing = match dir.join("meta.json").exists() {
            true => Some(Index::open_in_dir(dir)?),
            false => None,
        };
        let index = match existing {
            Some(index) if is_current(&index) => index,
            existing => {
                if existing.is_some() {
                    // Derived data: the store indexes the whole log again.
                    tracing::warn!(
                        "full-text index of an older layout: rebuilding it from the log"
                    );
                    drop(existing);
                    std::fs::remove_dir_all(dir).map_err(io_err(dir))?;
                    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
                }
                Index::builder()
                    .schema(schema)
                    .settings(settings())
                    .create_in_dir(dir)?
            }
        };
        let covered = index
            .load_metas()?
            .payload
            .and_then(|p| p.parse::<u64>().ok())
            .map(Seq);
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let writer: IndexWriter = index.writer_with_num_threads(1, WRITER_HEAP_BYTES)?;
        writer.set_merge_policy(Box::new(merge_policy()));
        // A crash between writing a commit's files and its meta.json leaves
        // files no commit names, e.g. a segment's `.del` bitset. Replaying
        // the same deletion after the restart reaches the same opstamp and
        // so the same file name, which tantivy refuses to overwrite: remove
        // the leftovers before anything is written.
        writer.garbage_collect_files().wait()?;
        let committed = Arc::new(AtomicU64::new(seq_plus_one(covered)));
        let entry_docs = Arc::new(Mutex::new(HashMap::new()));
        read_ahead(dir);
        let warming = {
            // Map the segments there are now in the background, so the
            // first narrowed text search does not pay for it (about 2 s at
            // 10M entries). It holds the segments, not the store: closing
            // never waits for it.
            let segments = reader.searcher().segment_readers().to_vec();
            if let Ok(mut c) = entry_docs.lock() {
                for segment in &segments {
                    c.insert(segment.segment_id(), None);
                }
            }
            build_maps("ticks-text-warm", segments, entry_docs.clone()).ok()
        };
        let (tx, rx) = mpsc::channel();
        let fault = Arc::new(Mutex::new(None));
        let thread = {
            let reader = reader.clone();
            let committed = committed.clone();
            let fault = fault.clone();
            std::thread::Builder::new()
                .name("ticks-indexer".into())
                .spawn(move || {
                    indexer_loop(writer, reader, fields, rx, committed, commit_every, fault)
                })
                .map_err(io_err(dir))?
        };
        Ok((
            TextIndex {
                index,
                reader,
                fields,
                tx: Mutex::new(Some(tx)),
                thread: Mutex::new(Some(thread)),
                committed,
                fault,
                submitted: AtomicU64::new(seq_plus_one(covered)),
                entry_docs,
                map_builders: Mutex::new(warming.into_iter().collect()),
                scratch: Mutex::new(Vec::new()),
                split_from: SPLIT_FROM,
            },
            covered,
        ))
    }

    fn send(&self, msg: Msg) -> Result<()> {
        let guard = self.tx.lock().map_err(|_| Error::Closed)?;
        guard
            .as_ref()
            .ok_or(Error::Closed)?
            .send(msg)
            .map_err(|_| Error::Closed)
    }

    /// Queues the documents of one durable record.
    pub(crate) fn submit(&self, seq: Seq, docs: Vec<TextDoc>) -> Result<()> {
        self.submitted.fetch_max(seq.0 + 1, Ordering::SeqCst);
        self.send(Msg::Docs(seq, docs))
    }

    /// Commits everything queued and makes it searchable.
    pub(crate) fn flush(&self) -> Result<()> {
        let (tx, rx) = mpsc::channel();
        self.send(Msg::Flush(tx))?;
        rx.recv().map_err(|_| Error::Closed)?
    }

    /// Deletes every document of these entries, merges the segments that held
    /// them and removes the old files, so their terms leave the disk.
    pub(crate) fn delete(&self, ids: Vec<EntryId>, seq: Seq) -> Result<()> {
        // Map builders hold segment readers, which keep the files a purge
        // must remove from being collected.
        let builders = self
            .map_builders
            .lock()
            .map(|mut b| std::mem::take(&mut *b));
        for builder in builders.unwrap_or_default() {
            let _ = builder.join();
        }
        let (tx, rx) = mpsc::channel();
        self.submitted.fetch_max(seq.0 + 1, Ordering::SeqCst);
        self.send(Msg::Delete(ids, seq, tx))?;
        rx.recv().map_err(|_| Error::Closed)?
    }

    /// Why documents cannot be indexed now; `None` while they can.
    pub(crate) fn fault(&self) -> Option<String> {
        self.fault.lock().ok().and_then(|f| f.clone())
    }

    /// How many records are queued but not yet searchable.
    pub(crate) fn lag(&self) -> u64 {
        self.submitted
            .load(Ordering::SeqCst)
            .saturating_sub(self.committed.load(Ordering::SeqCst))
    }

    /// Runs a user's free-text query and returns the matching entries.
    pub(crate) fn search(&self, text: &str) -> Result<RoaringBitmap> {
        let Some(query) = self.build_query(text)? else {
            return Ok(RoaringBitmap::new());
        };
        let searcher = self.reader.searcher();
        Ok(searcher.search(&*query, &EntryCollector)?)
    }

    /// The entries of `within` that match a free-text query: the same answer
    /// as [`TextIndex::search`] intersected with `within`, but its cost
    /// follows `within`, not the number of documents the words occur in.
    /// Each candidate's documents are looked up (a per-segment map, built
    /// once per segment) and the query's postings are only *sought* to them.
    pub(crate) fn search_within(
        &self,
        text: &str,
        within: &RoaringBitmap,
    ) -> Result<RoaringBitmap> {
        let (Some(query), Some(lowest), Some(highest)) =
            (self.build_query(text)?, within.min(), within.max())
        else {
            return Ok(RoaringBitmap::new());
        };
        let searcher = self.reader.searcher();
        let weight = query.weight(EnableScoring::disabled_from_searcher(&searcher))?;
        // A phrase's estimate of its postings is far below what reading
        // them costs (positions at every document that has all its words):
        // a phrase always probes.
        let postings_per_seek = match self.reads_positions(text)? {
            true => 0,
            false => POSTINGS_PER_SEEK,
        };
        let mut scratch = self
            .scratch
            .lock()
            .ok()
            .and_then(|mut kept| kept.pop())
            .unwrap_or_default();
        let mut found = EntrySet::new(lowest, highest, std::mem::take(&mut scratch.entries));
        let mut found_too =
            EntrySet::new(lowest, highest, std::mem::take(&mut scratch.more_entries));
        let Scratch {
            marks: marked,
            more_marks,
            candidates,
            ..
        } = &mut scratch;
        let mut split = false;
        for segment in searcher.segment_readers() {
            let Some(map) = self.entry_docs_or_build_later(segment) else {
                // No map yet (just opened, or a fresh merge): building one
                // takes seconds for a big segment, reading the segment's
                // matches takes one query. A thread builds it meanwhile.
                collect_within(&*weight, segment, within, &mut found)?;
                continue;
            };
            candidates.clear();
            candidates.extend(&(within & &map.present));
            if candidates.is_empty() {
                continue;
            }
            // The candidates' documents, marked in doc order (no sort); a
            // big set on both cores, each marking half the candidates.
            marked.reset(segment.max_doc());
            if candidates.len() >= self.split_from {
                more_marks.reset(segment.max_doc());
                let (first, second) = candidates.split_at(candidates.len() / 2);
                rayon::join(
                    || map.mark_docs(first, marked),
                    || map.mark_docs(second, more_marks),
                );
                marked.absorb(more_marks);
            } else {
                map.mark_docs(candidates, marked);
            }
            let search = SegmentSearch {
                weight: &*weight,
                segment,
                map: &map,
                marked,
                postings_per_seek,
            };
            let windows = marked.per_window.len();
            if marked.count >= self.split_from as u64 {
                // Both cores again, each over windows holding half the marks.
                split = true;
                let middle = marked.middle_window();
                let (early, late) = rayon::join(
                    || search.run(0..middle, &mut found),
                    || search.run(middle..windows, &mut found_too),
                );
                early?;
                late?;
            } else {
                search.run(0..windows, &mut found)?;
            }
        }
        let searched: Vec<SegmentId> = searcher
            .segment_readers()
            .iter()
            .map(|s| s.segment_id())
            .collect();
        if let Ok(mut cache) = self.entry_docs.lock() {
            // Merged-away segments will not come back.
            cache.retain(|id, _| searched.contains(id));
        }
        if split {
            found.absorb(&mut found_too);
        }
        // The marks left in `scratch.marks` are cleared by the next
        // search's first `reset`; `more_marks` was emptied by `absorb`.
        let (found, entries) = found.into_bitmap();
        (scratch.entries, scratch.more_entries) = (entries, found_too.bits);
        if let Ok(mut kept) = self.scratch.lock() {
            if kept.len() < KEPT_SCRATCH {
                kept.push(scratch);
            }
        }
        Ok(found)
    }

    /// The segment's entry -> documents map if it is built; otherwise starts
    /// a thread building it (once) and returns `None`.
    fn entry_docs_or_build_later(&self, segment: &SegmentReader) -> Option<Arc<EntryDocs>> {
        let id = segment.segment_id();
        let mut cache = self.entry_docs.lock().ok()?;
        match cache.get(&id) {
            Some(Some(map)) => return Some(map.clone()),
            Some(None) => return None,
            None => {}
        }
        cache.insert(id, None);
        drop(cache);
        match build_maps(
            "ticks-text-map",
            vec![segment.clone()],
            self.entry_docs.clone(),
        ) {
            Ok(handle) => {
                if let Ok(mut builders) = self.map_builders.lock() {
                    builders.retain(|b| !b.is_finished());
                    builders.push(handle);
                }
            }
            Err(_) => {
                if let Ok(mut c) = self.entry_docs.lock() {
                    c.remove(&id);
                }
            }
        }
        None
    }

    /// Entries with an identifier (wamid, phone digits, correlation or
    /// conversation id) exactly equal to `value`.
    pub(crate) fn exact(&self, value: &str) -> Result<RoaringBitmap> {
        let query = term_query(self.fields.exact, value);
        Ok(self.reader.searcher().search(&*query, &EntryCollector)?)
    }

    fn tokens(&self, s: &str) -> Result<Vec<String>> {
        let mut analyzer = self
            .index
            .tokenizer_for_field(self.fields.text)
            .map_err(|e| Error::Text(e.to_string()))?;
        let mut stream = analyzer.token_stream(s);
        let mut out = Vec::new();
        while stream.advance() {
            out.push(stream.token().text.clone());
        }
        Ok(out)
    }

    /// Builds the query: every clause must match. A clause is a quoted
    /// phrase, a `prefix*`, or a word that matches as a tokenized word or as
    /// a whole identifier (wamid, correlation id). A query that reads as a
    /// phone number (digits with `+ - ( ) .` and spaces) is one clause of its
    /// digits, so a number matches however it was typed.
    fn build_query(&self, text: &str) -> Result<Option<Box<dyn Query>>> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        let f = self.fields;
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        if let Some(digits) = crate::phone::as_phone_number(text) {
            clauses.push((Occur::Must, self.word_clause(&digits)?));
            return Ok(Some(Box::new(BooleanQuery::new(clauses))));
        }
        for part in split_query(text).into_iter().take(MAX_QUERY_TERMS) {
            let clause: Box<dyn Query> = match part {
                QueryPart::Phrase(p) => {
                    let toks = self.tokens(&p)?;
                    match toks.len() {
                        0 => continue,
                        1 => term_query(f.text, &toks[0]),
                        _ => Box::new(PhraseQuery::new(
                            toks.iter()
                                .map(|t| Term::from_field_text(f.text, t))
                                .collect(),
                        )),
                    }
                }
                QueryPart::Prefix(p) => {
                    let toks = self.tokens(&p)?;
                    let Some(last) = toks.last() else { continue };
                    let mut must: Vec<(Occur, Box<dyn Query>)> = toks[..toks.len() - 1]
                        .iter()
                        .map(|t| (Occur::Must, term_query(f.text, t)))
                        .collect();
                    let pattern = format!("{}.*", regex_escape(last));
                    let re = RegexQuery::from_pattern(&pattern, f.text)?;
                    let exact_re =
                        RegexQuery::from_pattern(&format!("{}.*", regex_escape(&p)), f.exact)?;
                    must.push((
                        Occur::Must,
                        Box::new(BooleanQuery::new(vec![
                            (Occur::Should, Box::new(re) as Box<dyn Query>),
                            (Occur::Should, Box::new(exact_re)),
                        ])),
                    ));
                    Box::new(BooleanQuery::new(must))
                }
                QueryPart::Word(w) => self.word_clause(&w)?,
            };
            clauses.push((Occur::Must, clause));
        }
        if clauses.is_empty() {
            return Ok(None);
        }
        Ok(Some(Box::new(BooleanQuery::new(clauses))))
    }

    /// Whether the query matches a phrase (two or more tokens in a row):
    /// reading its postings then means reading positions, document by
    /// document, so probing the candidates pays sooner than for words.
    fn reads_positions(&self, text: &str) -> Result<bool> {
        for part in split_query(text.trim()) {
            let (QueryPart::Word(t) | QueryPart::Phrase(t) | QueryPart::Prefix(t)) = part;
            if self.tokens(&t)?.len() > 1 {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn word_clause(&self, word: &str) -> Result<Box<dyn Query>> {
        let f = self.fields;
        let toks = self.tokens(word)?;
        let mut should: Vec<(Occur, Box<dyn Query>)> =
            vec![(Occur::Should, term_query(f.exact, word))];
        match toks.len() {
            0 => {}
            1 => should.push((Occur::Should, term_query(f.text, &toks[0]))),
            _ => should.push((
                Occur::Should,
                Box::new(PhraseQuery::new(
                    toks.iter()
                        .map(|t| Term::from_field_text(f.text, t))
                        .collect(),
                )),
            )),
        }
        Ok(Box::new(BooleanQuery::new(should)))
    }

    /// Stops the indexer after committing what it has.
    pub(crate) fn close(&self) -> Result<()> {
        let flushed = self.flush();
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        if let Ok(mut t) = self.thread.lock() {
            if let Some(handle) = t.take() {
                let _ = handle.join();
            }
        }
        flushed
    }
}

fn term_query(field: Field, text: &str) -> Box<dyn Query> {
    Box::new(TermQuery::new(
        Term::from_field_text(field, text),
        IndexRecordOption::Basic,
    ))
}

fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_alphanumeric() {
            out.push(c);
        } else {
            out.push('\\');
            out.push(c);
        }
    }
    out
}

#[derive(Debug, PartialEq)]
enum QueryPart {
    Word(String),
    Phrase(String),
    Prefix(String),
}

fn split_query(text: &str) -> Vec<QueryPart> {
    let mut parts = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if c == '"' {
            chars.next();
            let phrase: String = chars.by_ref().take_while(|&c| c != '"').collect();
            if !phrase.trim().is_empty() {
                parts.push(QueryPart::Phrase(phrase));
            }
            continue;
        }
        let mut word = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            word.push(c);
            chars.next();
        }
        if let Some(stem) = word.strip_suffix('*') {
            if !stem.is_empty() {
                parts.push(QueryPart::Prefix(stem.to_string()));
            }
        } else {
            parts.push(QueryPart::Word(word));
        }
    }
    parts
}

/// The indexer thread's side of the index: the writer, and what it must
/// be able to write again if the writer dies.
///
/// An I/O error in one of tantivy's writer threads (no descriptor left for
/// a new segment file, a full disk) kills the `IndexWriter` for good. The
/// documents added since the last commit are kept here until a commit
/// succeeds, so that a new writer, made once the cause is gone (retried
/// with backoff), adds them again; nothing needs a restart.
struct Indexer {
    index: Index,
    /// `None` while it is dead and not yet made again.
    writer: Option<IndexWriter>,
    reader: IndexReader,
    fields: Fields,
    committed: Arc<AtomicU64>,
    /// Documents added since the last commit, by record.
    uncommitted: Vec<(Seq, Vec<TextDoc>)>,
    /// Why the writer is dead, shared with [`TextIndex::fault`].
    fault: Arc<Mutex<Option<String>>>,
    /// When to make the writer again, and the wait after that.
    retry: Option<(Instant, Duration)>,
}

/// The first wait before making a dead writer again; doubled up to
/// [`REPAIR_LAST_WAIT`].
const REPAIR_FIRST_WAIT: Duration = Duration::from_millis(200);
const REPAIR_LAST_WAIT: Duration = Duration::from_secs(5);

impl Indexer {
    fn document(&self, seq: Seq, doc: &TextDoc) -> TantivyDocument {
        let fields = self.fields;
        let mut d = TantivyDocument::default();
        d.add_u64(fields.entry, u64::from(doc.entry.0));
        d.add_u64(fields.seq, seq.0);
        d.add_text(fields.text, &doc.text);
        for later in &doc.later_texts {
            d.add_text(fields.text, later);
        }
        for e in &doc.exact {
            d.add_text(fields.exact, e);
        }
        d
    }

    /// Adds one record's documents (kept until they are committed).
    fn add(&mut self, seq: Seq, docs: Vec<TextDoc>) {
        if let Some(writer) = &self.writer {
            let mut failed = None;
            for doc in &docs {
                if let Err(e) = writer.add_document(self.document(seq, doc)) {
                    failed = Some(e);
                    break;
                }
            }
            if let Some(e) = failed {
                self.died(&format!("adding a document: {e}"));
            }
        }
        self.uncommitted.push((seq, docs));
    }

    /// Commits what was added, up to `seq`, and makes it searchable.
    fn commit(&mut self, seq: Seq) -> Result<()> {
        if self.writer.is_none() {
            self.repair();
        }
        let Some(writer) = self.writer.as_mut() else {
            return Err(Error::Text(self.fault_text()));
        };
        let result = (|| -> Result<()> {
            let mut prepared = writer.prepare_commit()?;
            prepared.set_payload(&seq.0.to_string());
            prepared.commit()?;
            self.reader.reload()?;
            Ok(())
        })();
        match result {
            Ok(()) => {
                self.uncommitted.clear();
                self.committed.fetch_max(seq.0 + 1, Ordering::SeqCst);
                Ok(())
            }
            Err(e) => {
                self.died(&format!("commit: {e}"));
                Err(e)
            }
        }
    }

    fn fault_text(&self) -> String {
        self.fault
            .lock()
            .ok()
            .and_then(|f| f.clone())
            .unwrap_or_else(|| "the index writer is being made again".into())
    }

    /// The writer failed: it is dropped (tantivy's lock with it) and made
    /// again later.
    fn died(&mut self, why: &str) {
        tracing::error!("full-text index: {why}; the writer is made again once it can be");
        if let Ok(mut f) = self.fault.lock() {
            *f = Some(format!("full-text index: {why}"));
        }
        self.writer = None;
        if self.retry.is_none() {
            self.retry = Some((Instant::now() + REPAIR_FIRST_WAIT, REPAIR_FIRST_WAIT));
        }
    }

    /// Makes a new writer and adds again what the dead one had not
    /// committed; on failure, tries again after a longer wait.
    fn repair(&mut self) {
        let made = (|| -> Result<IndexWriter> {
            let writer: IndexWriter = self.index.writer_with_num_threads(1, WRITER_HEAP_BYTES)?;
            writer.set_merge_policy(Box::new(merge_policy()));
            writer.garbage_collect_files().wait()?;
            for (seq, docs) in &self.uncommitted {
                for doc in docs {
                    writer.add_document(self.document(*seq, doc))?;
                }
            }
            Ok(writer)
        })();
        match made {
            Ok(writer) => {
                tracing::warn!(
                    records = self.uncommitted.len(),
                    "full-text index: the writer works again"
                );
                self.writer = Some(writer);
                self.retry = None;
                if let Ok(mut f) = self.fault.lock() {
                    *f = None;
                }
            }
            Err(e) => {
                let wait = self.retry.map_or(REPAIR_FIRST_WAIT, |(_, w)| w);
                tracing::warn!(
                    retry_in_ms = wait.as_millis() as u64,
                    "full-text index: the writer cannot be made yet: {e}"
                );
                self.retry = Some((Instant::now() + wait, (wait * 2).min(REPAIR_LAST_WAIT)));
            }
        }
    }

    /// When the loop must wake up without a message: to commit, or to
    /// make the writer again.
    fn deadline(&self, pending: Option<(Instant, Seq)>, commit_every: Duration) -> Option<Instant> {
        let commit_at = pending.map(|(since, _)| since + commit_every);
        let retry_at = self.retry.map(|(at, _)| at);
        match (commit_at, retry_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

fn indexer_loop(
    writer: IndexWriter,
    reader: IndexReader,
    fields: Fields,
    rx: Receiver<Msg>,
    committed: Arc<AtomicU64>,
    commit_every: Duration,
    fault: Arc<Mutex<Option<String>>>,
) {
    let mut ix = Indexer {
        index: writer.index().clone(),
        writer: Some(writer),
        reader,
        fields,
        committed,
        uncommitted: Vec::new(),
        fault,
        retry: None,
    };
    let mut pending: Option<(Instant, Seq)> = None;
    loop {
        let msg = match ix.deadline(pending, commit_every) {
            Some(at) => rx.recv_timeout(at.saturating_duration_since(Instant::now())),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match msg {
            Ok(Msg::Docs(seq, docs)) => {
                ix.add(seq, docs);
                let since = pending.map_or_else(Instant::now, |(t, _)| t);
                pending = Some((since, seq));
                if since.elapsed() >= commit_every && ix.commit(seq).is_ok() {
                    pending = None;
                }
            }
            Ok(Msg::Flush(done)) => {
                let result = match pending {
                    Some((_, seq)) => ix.commit(seq),
                    None => Ok(()),
                };
                if result.is_ok() {
                    pending = None;
                }
                let _ = done.send(result);
            }
            Ok(Msg::Delete(ids, seq, done)) => {
                if ix.writer.is_none() {
                    ix.repair();
                }
                let result = match ix.writer.as_mut() {
                    None => Err(Error::Text(ix.fault_text())),
                    Some(writer) => {
                        for id in &ids {
                            writer.delete_term(Term::from_field_u64(fields.entry, u64::from(id.0)));
                        }
                        Ok(())
                    }
                };
                let result = result.and_then(|()| ix.commit(seq)).and_then(|()| {
                    pending = None;
                    let fault = ix.fault_text();
                    let writer = ix.writer.as_mut().ok_or(Error::Text(fault))?;
                    // Merging drops deleted documents and their terms; then the
                    // old segment files are removed so no purged word stays on disk.
                    let ids = writer.index().searchable_segment_ids()?;
                    if !ids.is_empty() {
                        writer.merge(&ids).wait()?;
                    }
                    writer.garbage_collect_files().wait()?;
                    ix.reader.reload()?;
                    Ok(())
                });
                let _ = done.send(result);
            }
            Err(RecvTimeoutError::Timeout) => {
                if ix.writer.is_none() && ix.retry.is_some_and(|(at, _)| Instant::now() >= at) {
                    ix.repair();
                }
                if let Some((since, seq)) = pending {
                    if since.elapsed() >= commit_every && ix.commit(seq).is_ok() {
                        pending = None;
                    }
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                if let Some((_, seq)) = pending.take() {
                    let _ = ix.commit(seq);
                }
                if let Some(writer) = ix.writer.take() {
                    let _ = writer.wait_merging_threads();
                }
                return;
            }
        }
    }
}

/// Collects the `entry` fast field of every matching document.
struct EntryCollector;

/// Starts a thread that builds the entry -> documents map of each segment
/// and records it in `cache` (or forgets a failed build, so the next
/// search tries again). The thread holds the segments, not the store.
fn build_maps(
    name: &str,
    segments: Vec<SegmentReader>,
    cache: Arc<Mutex<HashMap<SegmentId, Option<Arc<EntryDocs>>>>>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let started = std::time::Instant::now();
            let count = segments.len();
            let mut bytes = 0usize;
            for segment in segments {
                let built = EntryDocs::build(&segment).ok().map(Arc::new);
                bytes += built.as_ref().map_or(0, |m| m.heap_bytes());
                if let Ok(mut c) = cache.lock() {
                    match built {
                        Some(map) => c.insert(segment.segment_id(), Some(map)),
                        None => c.remove(&segment.segment_id()),
                    };
                }
            }
            tracing::debug!(
                segments = count,
                ms = started.elapsed().as_millis() as u64,
                mib = bytes >> 20,
                "full-text index: entry -> documents maps built"
            );
        })
}

/// At most this much of the index is read ahead at open: an index much
/// bigger than memory would push out what queries read more often (at 10M
/// messages the whole index is 875 MiB).
#[cfg(target_os = "linux")]
const READ_AHEAD_BYTES: u64 = 2 << 30;

/// Asks the kernel to read the index's files into the page cache, term
/// dictionaries and postings first, so the first searches after an open do
/// not wait on hundreds of small reads each. Files are out of the cache
/// after a restart (and on a machine that reclaims cache, after an idle
/// while): at 10M messages, with the store's files dropped from the cache,
/// the first free-text searches had p99 51-56 ms without the advice and
/// 26-30 ms with it. The kernel reads in the background; when the files
/// are cached already, the advice costs nothing.
fn read_ahead(dir: &Path) {
    #[cfg(target_os = "linux")]
    {
        let Ok(listing) = std::fs::read_dir(dir) else {
            return;
        };
        let mut files: Vec<(u8, u64, std::path::PathBuf)> = listing
            .flatten()
            .map(|e| {
                let path = e.path();
                let order = match path.extension().and_then(|e| e.to_str()) {
                    Some("term") => 0,
                    Some("idx") => 1,
                    Some("fast") => 2,
                    Some("pos") => 3,
                    _ => 4,
                };
                (order, e.metadata().map_or(0, |m| m.len()), path)
            })
            .collect();
        files.sort();
        let mut budget = READ_AHEAD_BYTES;
        files.retain(|(_, bytes, _)| match budget.checked_sub(*bytes) {
            Some(left) => {
                budget = left;
                true
            }
            None => false,
        });
        // The advice itself can wait while the kernel queues the reads.
        let _ = std::thread::Builder::new()
            .name("ticks-text-readahead".into())
            .spawn(move || {
                for (_, _, path) in files {
                    if let Ok(file) = std::fs::File::open(&path) {
                        let _ = rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::WillNeed);
                    }
                }
            });
    }
    #[cfg(not(target_os = "linux"))]
    let _ = dir;
}

/// The candidates among one segment's matches, read through its `entry`
/// column: the path for a segment that has no entry -> documents map yet.
fn collect_within(
    weight: &dyn tantivy::query::Weight,
    segment: &SegmentReader,
    within: &RoaringBitmap,
    found: &mut EntrySet,
) -> Result<()> {
    let column = segment.fast_fields().u64("entry")?;
    let alive = segment.alive_bitset();
    let mut scorer = weight.scorer(segment, 1.0)?;
    let mut doc = scorer.doc();
    while doc != TERMINATED {
        if alive.is_none_or(|a| a.is_alive(doc)) {
            if let Some(entry) = column.first(doc) {
                let entry = entry as u32;
                if within.contains(entry) {
                    found.insert(entry);
                }
            }
        }
        doc = scorer.advance();
    }
    Ok(())
}

struct EntrySegmentCollector {
    column: tantivy::columnar::Column<u64>,
    /// Entry ids in document order: nearly ascending (documents are added
    /// as records are applied), so collecting them in a vector and sorting
    /// once beats inserting each into a bitmap, which shifts array
    /// containers on every out-of-order id.
    ids: Vec<u32>,
}

impl Collector for EntryCollector {
    type Fruit = RoaringBitmap;
    type Child = EntrySegmentCollector;

    fn for_segment(
        &self,
        _segment_local_id: tantivy::SegmentOrdinal,
        segment: &tantivy::SegmentReader,
    ) -> tantivy::Result<EntrySegmentCollector> {
        Ok(EntrySegmentCollector {
            column: segment.fast_fields().u64("entry")?,
            ids: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<RoaringBitmap>) -> tantivy::Result<RoaringBitmap> {
        let mut all = RoaringBitmap::new();
        for f in fruits {
            all |= f;
        }
        Ok(all)
    }
}

impl SegmentCollector for EntrySegmentCollector {
    type Fruit = RoaringBitmap;

    fn collect(&mut self, doc: tantivy::DocId, _score: tantivy::Score) {
        if let Some(id) = self.column.first(doc) {
            self.ids.push(id as u32);
        }
    }

    fn harvest(mut self) -> RoaringBitmap {
        self.ids.sort_unstable();
        self.ids.dedup();
        // Sorted and deduplicated just above, so this cannot fail; the
        // fallback only keeps the type honest.
        RoaringBitmap::from_sorted_iter(self.ids.iter().copied())
            .unwrap_or_else(|_| self.ids.iter().copied().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_splits_into_words_phrases_and_prefixes() {
        assert_eq!(
            split_query(r#"black "friday sale" camp* x"#),
            vec![
                QueryPart::Word("black".into()),
                QueryPart::Phrase("friday sale".into()),
                QueryPart::Prefix("camp".into()),
                QueryPart::Word("x".into()),
            ]
        );
    }

    /// The state a `kill -9` leaves when it lands inside a deletion's
    /// commit: the segment's new `.del` file is written (and listed in
    /// `.managed.json`), `meta.json` is not. Redoing the deletion after the
    /// restart reaches the same opstamp, so the same file name: it used to
    /// fail with "FileAlreadyExists" and the store would not open.
    #[test]
    fn a_deletion_redone_after_a_crash_inside_its_commit_succeeds() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text_dir = dir.path().join("text");
        let docs = (0..10)
            .map(|i| TextDoc {
                entry: EntryId(i),
                text: format!("pedido numero {i}"),
                exact: vec![],
                later_texts: Vec::new(),
            })
            .collect();
        let (index, _) = TextIndex::open(&text_dir, Duration::from_millis(50)).expect("open");
        index.submit(Seq(0), docs).expect("submit");
        index.flush().expect("flush");
        index.close().expect("close");

        // What the crash leaves: delete bitsets for every opstamp the redo
        // could reach, managed but named by no commit.
        let meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(text_dir.join("meta.json")).expect("meta"))
                .expect("json");
        let managed_path = text_dir.join(".managed.json");
        let mut managed: Vec<String> =
            serde_json::from_slice(&std::fs::read(&managed_path).expect("managed")).expect("json");
        let segments = meta["segments"].as_array().expect("segments");
        assert!(!segments.is_empty());
        for segment in segments {
            let id = segment["segment_id"].as_str().expect("id").replace('-', "");
            for opstamp in 0..=64 {
                let name = format!("{id}.{opstamp}.del");
                std::fs::write(text_dir.join(&name), b"left by a crash").expect("write");
                managed.push(name);
            }
        }
        std::fs::write(&managed_path, serde_json::to_vec(&managed).expect("json"))
            .expect("managed");

        let (index, covered) =
            TextIndex::open(&text_dir, Duration::from_millis(50)).expect("open after the crash");
        assert_eq!(covered, Some(Seq(0)));
        index
            .delete(vec![EntryId(3)], Seq(1))
            .expect("the deletion is redone");
        let left = index.search("pedido").expect("search");
        assert_eq!(left.len(), 9);
        assert!(!left.contains(3));
        index.close().expect("close");
    }

    #[test]
    fn merged_segments_keep_their_documents_in_log_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (index, _) = TextIndex::open(dir.path(), Duration::from_millis(50)).expect("open");
        // One segment per flush, and entries that do not follow the log
        // order (a status of an old message arrives later).
        for seq in 0..6u64 {
            let docs = vec![TextDoc {
                entry: EntryId((seq as u32 * 7) % 5),
                text: format!("pedido {seq}"),
                exact: vec![],
                later_texts: Vec::new(),
            }];
            index.submit(Seq(seq), docs).expect("submit");
            index.flush().expect("flush");
        }
        // A purge merges every segment.
        index.delete(vec![EntryId(99)], Seq(6)).expect("merge");
        let searcher = index.reader.searcher();
        assert_eq!(searcher.segment_readers().len(), 1, "merged");
        let segment = &searcher.segment_readers()[0];
        let column = segment.fast_fields().u64("seq").expect("seq column");
        let order: Vec<u64> = (0..segment.max_doc())
            .filter_map(|doc| column.first(doc))
            .collect();
        assert_eq!(order, (0..6).collect::<Vec<_>>());
        index.close().expect("close");
    }

    #[test]
    fn an_index_without_sequence_numbers_is_rebuilt_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            // The layout before documents carried their sequence number.
            let mut b = Schema::builder();
            let entry = b.add_u64_field("entry", INDEXED | FAST);
            let text = b.add_text_field("text", TEXT);
            b.add_text_field("exact", STRING);
            let old = Index::create_in_dir(dir.path(), b.build()).expect("old index");
            let mut writer: IndexWriter = old
                .writer_with_num_threads(1, WRITER_HEAP_BYTES)
                .expect("writer");
            let mut d = TantivyDocument::default();
            d.add_u64(entry, 1);
            d.add_text(text, "pedido antigo");
            writer.add_document(d).expect("add");
            let mut commit = writer.prepare_commit().expect("prepare");
            commit.set_payload("41");
            commit.commit().expect("commit");
        }
        let (index, covered) =
            TextIndex::open(dir.path(), Duration::from_millis(50)).expect("open");
        assert_eq!(covered, None, "the store must index the whole log again");
        assert!(index.search("antigo").expect("search").is_empty());
        assert!(is_current(&index.index));
        index.close().expect("close");
    }

    /// A search split over two threads (candidates halved for marking,
    /// windows halved for scoring) finds exactly what one thread finds,
    /// for words read in order, words probed, phrases and prefixes.
    #[test]
    fn a_search_split_over_two_threads_finds_what_one_finds() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut index, _) = TextIndex::open(dir.path(), Duration::from_millis(50)).expect("open");
        index.split_from = 1;
        let words = ["quero", "entrega", "black friday", "promocao", "prazo"];
        for batch in 0..3u32 {
            let mut docs = Vec::new();
            for entry in batch * 1500..(batch + 1) * 1500 {
                docs.push(TextDoc {
                    entry: EntryId(entry),
                    text: format!("pedido {}", words[entry as usize % words.len()]),
                    exact: vec![],
                    later_texts: Vec::new(),
                });
                // A later document of an older entry, as a status brings.
                if entry % 4 == 0 && entry >= 700 {
                    docs.push(TextDoc {
                        entry: EntryId(entry - 700),
                        text: format!("erro {}", words[entry as usize % 3]),
                        exact: vec![],
                        later_texts: Vec::new(),
                    });
                }
            }
            index.submit(Seq(u64::from(batch)), docs).expect("submit");
            index.flush().expect("flush");
        }
        let all: RoaringBitmap = (0..4500).collect();
        index.search_within("pedido", &all).expect("start the maps");
        for _ in 0..200 {
            let built = index.entry_docs.lock().expect("maps");
            if !built.is_empty() && built.values().all(Option::is_some) {
                break;
            }
            drop(built);
            std::thread::sleep(Duration::from_millis(10));
        }
        let sets: [RoaringBitmap; 4] = [
            all.clone(),
            (0..4500).step_by(3).collect(),
            (0..4500).step_by(150).collect(),
            (1000..2600).collect(),
        ];
        let mut matched = 0;
        for text in [
            "quero",
            "entrega",
            "\"black friday\"",
            "promo*",
            "erro",
            "nada",
        ] {
            let everywhere = index.search(text).expect("search");
            for within in &sets {
                let got = index.search_within(text, within).expect("within");
                assert_eq!(got, &everywhere & within, "{text} within {}", within.len());
                matched += got.len();
            }
        }
        assert!(matched > 1000, "the comparison covers real matches");
        index.close().expect("close");
    }

    #[test]
    fn doc_marks_find_the_next_marked_document_across_words() {
        let mut marks = DocMarks::default();
        marks.reset(300);
        for doc in [0, 63, 64, 200, 299] {
            marks.mark(doc);
        }
        let mut seen = Vec::new();
        let mut from = 0;
        while let Some(doc) = marks.next_from(from) {
            seen.push(doc);
            from = doc + 1;
        }
        assert_eq!(seen, vec![0, 63, 64, 200, 299]);
        assert_eq!(marks.next_from(65), Some(200));
        assert_eq!(marks.next_from(300), None);
    }
}
