//! The indexer thread: documents of durable records in, commits out, and a
//! writer made again when an I/O error kills it.

use super::schema::{merge_policy, Fields, WRITER_HEAP_BYTES};
use crate::error::{Error, Result};
use crate::model::EntryId;
use crate::model::Seq;
use crate::state::TextDoc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tantivy::schema::Term;
use tantivy::{Index, IndexReader, IndexWriter, TantivyDocument};

pub(super) enum Msg {
    Docs(Seq, Vec<TextDoc>),
    /// Documents of records already indexed (a template's rendered text,
    /// added once its definition is known), each with its record: they
    /// move no log position forward.
    Backfill(Vec<(Seq, TextDoc)>),
    Delete(Vec<EntryId>, Seq, Sender<Result<()>>),
    Flush(Sender<Result<()>>),
}

/// The indexer thread's side of the index: the writer, and what it must
/// be able to write again if the writer dies.
///
/// An I/O error in one of tantivy's writer threads (no descriptor left for
/// a new segment file, a full disk) kills the `IndexWriter` for good. The
/// documents added since the last commit are kept here until a commit
/// succeeds, so that a new writer, made once the cause is gone (retried
/// with backoff), adds them again; nothing needs a restart.
pub(super) struct Indexer {
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
pub(super) const REPAIR_FIRST_WAIT: Duration = Duration::from_millis(200);
pub(super) const REPAIR_LAST_WAIT: Duration = Duration::from_secs(5);

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

pub(super) fn indexer_loop(
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
            Ok(Msg::Backfill(docs)) => {
                for (seq, doc) in docs {
                    ix.add(seq, vec![doc]);
                }
                // Committed with the next commit, at the position the index
                // covers already (or the one pending).
                let covered = ix.committed.load(Ordering::SeqCst).checked_sub(1).map(Seq);
                let since = pending.map_or_else(Instant::now, |(t, _)| t);
                pending = match (pending, covered) {
                    (Some((_, p)), Some(c)) => Some((since, p.max(c))),
                    (Some((_, p)), None) => Some((since, p)),
                    (None, Some(c)) => Some((since, c)),
                    (None, None) => None,
                };
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
