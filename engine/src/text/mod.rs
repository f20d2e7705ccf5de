//! The tantivy full-text index: one document per event that carries text,
//! each naming its entry, searched into a bitmap of entry ids.
//!
//! The index lags the log and never leads it: documents are added only after
//! their record is durable, and every commit carries the sequence number of
//! the last record it covers as its payload. On open, records after that
//! payload are indexed again, so a crash loses nothing and duplicates nothing.
//!
//! - this module: [`TextIndex`], its schema, opening, submitting, searching.
//! - `indexer`: the thread that adds documents and commits.
//! - `query`: free text as a tantivy query.
//! - `within`: free text searched only at given candidates.
//! - `terms`: the same tokens and query clauses for a backend without
//!   tantivy (ClickHouse).

mod indexer;
mod query;
mod schema;
mod terms;
mod within;

use crate::error::{io_err, Error, Result};
use crate::model::{EntryId, Seq};
use crate::state::TextDoc;
use indexer::{indexer_loop, Msg};
use query::{term_query, QueryBuilder};
use roaring::RoaringBitmap;
use schema::{
    is_current, merge_policy, schema, settings, EntryCollector, Fields, WRITER_HEAP_BYTES,
};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy};
pub use terms::{in_a_row, text_clauses, tokens, words_of, TextClause};
use within::Within;

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
    /// Searching within candidates: its maps and buffers.
    within: Within,
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
        read_ahead(dir);
        let within = Within::warm(reader.searcher().segment_readers().to_vec());
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
                within,
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

    /// Queues documents for records already indexed (each with its record).
    pub(crate) fn backfill(&self, docs: Vec<(Seq, TextDoc)>) -> Result<()> {
        self.send(Msg::Backfill(docs))
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
        self.within.join_builders();
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

    fn queries(&self) -> QueryBuilder<'_> {
        QueryBuilder {
            index: &self.index,
            fields: self.fields,
        }
    }

    /// Runs a user's free-text query and returns the matching entries.
    pub(crate) fn search(&self, text: &str) -> Result<RoaringBitmap> {
        let Some(query) = self.queries().build_query(text)? else {
            return Ok(RoaringBitmap::new());
        };
        let searcher = self.reader.searcher();
        Ok(searcher.search(&*query, &EntryCollector)?)
    }

    /// The entries of `within` that match a free-text query: the same answer
    /// as [`TextIndex::search`] intersected with `within`, but its cost
    /// follows `within`, not the number of documents the words occur in
    /// (see the `within` module).
    pub(crate) fn search_within(
        &self,
        text: &str,
        within: &RoaringBitmap,
    ) -> Result<RoaringBitmap> {
        let queries = self.queries();
        let Some(query) = queries.build_query(text)? else {
            return Ok(RoaringBitmap::new());
        };
        let positions = queries.reads_positions(text)?;
        self.within
            .search(&self.reader.searcher(), &*query, positions, within)
    }

    /// Entries with an identifier (wamid, phone digits, correlation or
    /// conversation id) exactly equal to `value`.
    pub(crate) fn exact(&self, value: &str) -> Result<RoaringBitmap> {
        let query = term_query(self.fields.exact, value);
        Ok(self.reader.searcher().search(&*query, &EntryCollector)?)
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

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::schema::{Schema, FAST, INDEXED, STRING, TEXT};
    use tantivy::TantivyDocument;

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
        index.within.split_from = 1;
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
            if index.within.all_built() {
                break;
            }
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
}
