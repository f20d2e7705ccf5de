//! The template catalog's side of the store: loading it before the log is
//! replayed, adding definitions durably, and the backfill that indexes the
//! rendered text of sends logged before their definition was known.
//!
//! A backfill is derived work, like the rest of the text index: it runs on
//! a thread of its own (ingest goes on), a chunk of entries per read lock,
//! and `meta["templates_backfilled"]` records the catalog generation it
//! finished. An open whose catalog is newer than that (a crash or a stop in
//! the middle) runs it again; running it twice only adds a document the
//! index already has words for.

use super::shared::Shared;
use super::Store;
use crate::error::{Error, Result};
use crate::model::{Direction, EntryId, Seq};
use crate::state::own::Own;
use crate::state::{push_words, Field, TextDoc, Value};
use crate::templates::{version_key, Catalog, TemplateDef, TemplateVersion};
use roaring::RoaringBitmap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

const TREE: &str = "templates";
const BACKFILLED: &str = "templates_backfilled";
/// Entries rendered per read lock: a few milliseconds of the writer's wait.
const CHUNK: usize = 2_048;

pub use crate::templates::TemplatesAdded;

/// The catalog stored in `db`'s `templates` tree.
pub(super) fn load_catalog(db: &sled::Db) -> Result<Catalog> {
    let tree = db.open_tree(TREE)?;
    let mut versions = Vec::new();
    for item in tree.iter() {
        let (key, bytes) = item?;
        match rmp_serde::from_slice::<TemplateVersion>(&bytes) {
            Ok(v) => versions.push(v),
            Err(e) => tracing::warn!(
                key = %String::from_utf8_lossy(&key),
                "a stored template definition does not decode ({e}); it is left out"
            ),
        }
    }
    Ok(Catalog::from_versions(versions))
}

/// The generation the last finished backfill covered.
pub(super) fn backfilled(meta: &sled::Tree) -> Result<u64> {
    Ok(meta
        .get(BACKFILLED)?
        .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
        .map_or(0, u64::from_be_bytes))
}

impl Store {
    /// The template catalog as it is now.
    pub fn templates(&self) -> Arc<Catalog> {
        self.snapshot().state.templates.clone()
    }

    /// Adds template definitions (as Meta's `message_templates` answers
    /// them, parsed by `ticks-ingest`), each first seen at the time given
    /// with it, else at `seen_ms`, unless it is known already. Durable on
    /// return; the sends they render are re-indexed in the background (see
    /// [`TemplatesAdded`]).
    pub fn add_templates(
        &self,
        defs: Vec<(TemplateDef, Option<i64>)>,
        seen_ms: i64,
    ) -> Result<TemplatesAdded> {
        let _one_at_a_time = self.importing_templates.lock().map_err(|_| Error::Closed)?;
        let mut catalog = (*self.templates()).clone();
        let before = catalog.generation();
        let (mut added, stored) = catalog.add_all(defs, seen_ms);
        if stored.is_empty() {
            return Ok(added);
        }
        {
            let guard = self.shared.sled.read().map_err(|_| Error::Closed)?;
            let (db, _) = guard.as_ref().ok_or(Error::Closed)?;
            let tree = db.open_tree(TREE)?;
            for v in &stored {
                let bytes = rmp_serde::to_vec_named(v).map_err(|e| Error::Encode(e.to_string()))?;
                tree.insert(version_key(v), bytes)?;
            }
            db.flush()?;
        }
        let changed = catalog.changed_since(before);
        let generation = catalog.generation();
        {
            let mut state = self.shared.state.write().map_err(|_| Error::Closed)?;
            state.templates = Arc::new(catalog);
        }
        if added.versions > 0 {
            added.backfill = self.start_backfill(changed, generation)?;
        }
        Ok(added)
    }

    /// Starts re-indexing the sends of `templates` (name, language) on a
    /// thread of its own; returns how many sends it covers.
    pub(super) fn start_backfill(
        &self,
        templates: Vec<(String, String)>,
        generation: u64,
    ) -> Result<u64> {
        let ids = sends_of(&self.shared, &templates);
        let count = ids.len();
        let shared = self.shared.clone();
        let mut running = self.backfills.lock().map_err(|_| Error::Closed)?;
        let previous = running.pop();
        let handle = std::thread::Builder::new()
            .name("ticks-template-backfill".into())
            .spawn(move || {
                if let Some(previous) = previous {
                    let _ = previous.join();
                }
                let started = std::time::Instant::now();
                match backfill(&shared, &ids, generation) {
                    Ok(()) => tracing::info!(
                        entries = count,
                        ms = started.elapsed().as_millis() as u64,
                        "template backfill done"
                    ),
                    Err(e) => tracing::warn!(
                        "template backfill stopped: {e}; the next open runs it again"
                    ),
                }
            })
            .map_err(|e| Error::Invalid(format!("starting the template backfill: {e}")))?;
        running.push(handle);
        Ok(count)
    }

    /// Whether every template backfill started has finished.
    pub fn backfill_done(&self) -> bool {
        self.backfills
            .lock()
            .map(|b| b.iter().all(std::thread::JoinHandle::is_finished))
            .unwrap_or(true)
    }

    /// Runs again the backfill an earlier process did not finish.
    pub(super) fn resume_backfill(&self) -> Result<()> {
        let done = backfilled(&self.shared.meta()?)?;
        let catalog = self.templates();
        if catalog.generation() > done {
            let changed = catalog.changed_since(done);
            let count = self.start_backfill(changed, catalog.generation())?;
            tracing::info!(
                entries = count,
                "finishing the template backfill an earlier run left"
            );
        }
        Ok(())
    }
}

/// The live outbound entries of these templates.
fn sends_of(shared: &Shared, templates: &[(String, String)]) -> RoaringBitmap {
    let Ok(state) = shared.state.read() else {
        return RoaringBitmap::new();
    };
    let snap = super::Snapshot { state };
    let outbound = snap.any_of(Field::Direction, &[Value::Direction(Direction::Outbound)]);
    let mut ids = RoaringBitmap::new();
    for (name, language) in templates {
        let named = snap.any_of(Field::Template, &[Value::Text(name.clone())]);
        let spoken = snap.any_of(Field::Language, &[Value::Text(language.clone())]);
        ids |= &(named.as_ref() & spoken.as_ref()) & outbound.as_ref();
    }
    ids
}

/// Indexes the rendered text of `ids`, then records `generation` as done.
fn backfill(shared: &Shared, ids: &RoaringBitmap, generation: u64) -> Result<()> {
    let ids: Vec<u32> = ids.iter().collect();
    for chunk in ids.chunks(CHUNK) {
        if shared.closing.load(Ordering::SeqCst) {
            return Err(Error::Closed);
        }
        let mut docs: Vec<(Seq, TextDoc)> = Vec::with_capacity(chunk.len());
        {
            let state = shared.state.read().map_err(|_| Error::Closed)?;
            state.rows.for_each(chunk.iter().copied(), |id, row| {
                if row.purged || row.own.get(Own::Params).is_none() {
                    return;
                }
                let Some(seq) = row.records.first().copied() else {
                    return;
                };
                let shown = state.shown_text(row);
                if shown.template_known != Some(true) {
                    return;
                }
                let mut text = String::new();
                push_words(&mut text, &shown.text);
                docs.push((
                    seq,
                    TextDoc {
                        entry: EntryId(id),
                        text,
                        later_texts: Vec::new(),
                        exact: Vec::new(),
                    },
                ));
            });
        }
        shared.text.backfill(docs)?;
    }
    shared.text.flush()?;
    let guard = shared.sled.read().map_err(|_| Error::Closed)?;
    let (db, meta) = guard.as_ref().ok_or(Error::Closed)?;
    let done = backfilled(meta)?;
    if generation > done {
        meta.insert(BACKFILLED, &generation.to_be_bytes())?;
        db.flush()?;
    }
    Ok(())
}
