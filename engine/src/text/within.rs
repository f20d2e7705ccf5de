//! Free text within candidates: when other filters have narrowed a query
//! to a few entries, the text query is only sought at their documents
//! ([`TextIndex::search_within`]), through a per-segment map from entry id
//! to documents, marks per window of documents, and a bitset of the hits.

use crate::error::{Error, Result};
use roaring::RoaringBitmap;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use tantivy::index::SegmentId;
use tantivy::query::{EnableScoring, Query, Weight};
use tantivy::{DocId, DocSet, Searcher, SeekDangerResult, SegmentReader, TERMINATED};

/// A search's working sets, kept between searches (two of each: a big
/// search runs on two threads).
#[derive(Default)]
pub(super) struct Scratch {
    marks: DocMarks,
    more_marks: DocMarks,
    entries: Vec<u8>,
    more_entries: Vec<u8>,
    /// One segment's candidates, as a list to split.
    candidates: Vec<u32>,
}

/// Searches whose buffers are kept; more concurrent ones allocate.
pub(super) const KEPT_SCRATCH: usize = 2;

/// One segment's documents by entry id, in compressed-row form: the
/// documents of entry `first + i` are `docs[offsets[i]..offsets[i + 1]]`.
pub(super) struct EntryDocs {
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
pub(super) fn prefetch(slice: &[u32], index: usize) {
    std::hint::black_box(slice.get(index).copied());
}

/// A set of a segment's documents, one bit each, with how many marks were
/// made in all and in each window of `1 << WINDOW_BITS` documents.
#[derive(Default)]
pub(super) struct DocMarks {
    words: Vec<u64>,
    per_window: Vec<u32>,
    count: u64,
}

/// Documents per window of [`DocMarks`]: small enough that the marks of a
/// date range fill their windows, large enough that the windows are few.
pub(super) const WINDOW_BITS: u32 = 16;

/// The words of a set of `words` words that hold a window's marks (the
/// last window may be short).
pub(super) fn window_words(window: usize, words: usize) -> std::ops::Range<usize> {
    const WORDS_PER_WINDOW: usize = 1 << (WINDOW_BITS - 6);
    let from = (window * WORDS_PER_WINDOW).min(words);
    from..(from + WORDS_PER_WINDOW).min(words)
}

/// How many postings of a word reading in order costs as much as probing
/// one candidate: a probe finds the block (a skip list) and searches it,
/// reading tests one bit. Measured at 10M messages: reading wins for
/// common words; phrases always probe (see `reads_positions`).
pub(super) const POSTINGS_PER_SEEK: u64 = 8;

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
pub(super) struct EntrySet {
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
pub(super) const SPLIT_FROM: usize = 32_768;

/// One segment's part of [`TextIndex::search_within`], once its
/// candidates' documents are marked.
pub(super) struct SegmentSearch<'a> {
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

/// What searching within candidates keeps between searches: the
/// per-segment maps, the threads building them, and working buffers.
pub(super) struct Within {
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
    pub(super) split_from: usize,
}

impl Within {
    /// Starts mapping the segments there are now in the background, so the
    /// first narrowed text search does not pay for it (about 2 s at 10M
    /// entries). The thread holds the segments, not the store: closing
    /// never waits for it.
    pub(super) fn warm(segments: Vec<SegmentReader>) -> Within {
        let entry_docs = Arc::new(Mutex::new(HashMap::new()));
        if let Ok(mut c) = entry_docs.lock() {
            for segment in &segments {
                c.insert(segment.segment_id(), None);
            }
        }
        let warming = build_maps("ticks-text-warm", segments, entry_docs.clone()).ok();
        Within {
            entry_docs,
            map_builders: Mutex::new(warming.into_iter().collect()),
            scratch: Mutex::new(Vec::new()),
            split_from: SPLIT_FROM,
        }
    }

    /// Waits for the threads building maps: the segment readers they hold
    /// keep old segment files from removal.
    pub(super) fn join_builders(&self) {
        let builders = self
            .map_builders
            .lock()
            .map(|mut b| std::mem::take(&mut *b));
        for builder in builders.unwrap_or_default() {
            let _ = builder.join();
        }
    }

    /// Whether every segment's map is built (for tests).
    #[cfg(test)]
    pub(super) fn all_built(&self) -> bool {
        self.entry_docs
            .lock()
            .is_ok_and(|m| !m.is_empty() && m.values().all(Option::is_some))
    }

    /// The entries of `within` that `query` matches. Each candidate's
    /// documents are looked up (a per-segment map, built once per segment)
    /// and the query's postings are only *sought* to them; `positions`
    /// says the query reads positions (a phrase), which always probes.
    pub(super) fn search(
        &self,
        searcher: &Searcher,
        query: &dyn Query,
        positions: bool,
        within: &RoaringBitmap,
    ) -> Result<RoaringBitmap> {
        let (Some(lowest), Some(highest)) = (within.min(), within.max()) else {
            return Ok(RoaringBitmap::new());
        };
        let weight = query.weight(EnableScoring::disabled_from_searcher(searcher))?;
        // A phrase's estimate of its postings is far below what reading
        // them costs (positions at every document that has all its words):
        // a phrase always probes.
        let postings_per_seek = match positions {
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
}

/// Starts a thread that builds the entry -> documents map of each segment
/// and records it in `cache` (or forgets a failed build, so the next
/// search tries again). The thread holds the segments, not the store.
pub(super) fn build_maps(
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

/// The candidates among one segment's matches, read through its `entry`
/// column: the path for a segment that has no entry -> documents map yet.
pub(super) fn collect_within(
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

#[cfg(test)]
mod tests {
    use super::*;

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
