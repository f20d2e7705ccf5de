//! Entries derived in memory from inputs handed in, with the store's own
//! fold: for a backend that keeps the log elsewhere (ClickHouse), so that
//! its entries are the embedded store's, field for field, and not a second
//! implementation of what a status, a reply or a contact is.
//!
//! A [`Derivation`] is a throwaway state: no log, no text index, no
//! checkpoint. Its entry ids are its own; [`entry_key`] names an entry
//! across stores (its wamid, else the fingerprint of the event that made
//! it), and [`Derivation::entries`] gives each entry with its key.

use super::views::{entry_of, name_group_members, timeline_of};
use super::{Entry, Snapshot, Timeline};
use crate::log::InputRecord;
use crate::model::{EntryId, Event, Reached, Seq, Source};
use crate::state::{other_fingerprint, State};
use rustc_hash::FxHashMap;

/// The name of the entry an event belongs to, the same in every store:
/// the message's wamid; for a send without one (refused, timed out) `send:`
/// and its fingerprint; for an account or template event `event:` and its
/// fingerprint (Meta's redelivery of it has the same).
pub fn entry_key(event: &Event, received_ms: i64) -> String {
    match event {
        Event::Send(s) => match &s.wamid {
            Some(w) => w.clone(),
            None => format!("send:{:016x}", s.fingerprint),
        },
        Event::Status(s) => s.wamid.clone(),
        Event::Inbound(m) => m.wamid.clone(),
        Event::Other(o) => format!("event:{:016x}", other_fingerprint(o, received_ms)),
    }
}

/// What is left of an input shared by purged and surviving entries, as a
/// purge in the store leaves it: the purged entries' events dropped (their
/// duplicates too), and the raw JSON's array items that name only them cut
/// out (the whole raw replaced by a placeholder when a purged identifier
/// would remain). `purged` says which entry keys are purged.
pub fn redact_input(
    source: Source,
    received_ms: i64,
    raw: Vec<u8>,
    events: Vec<Event>,
    purged: &dyn Fn(&str) -> bool,
) -> (Vec<u8>, Vec<Event>) {
    // The store redacts by entry id: here 0 is purged, 1 survives.
    let mut rec = InputRecord {
        source,
        received_ms,
        raw,
        events: events
            .into_iter()
            .map(|e| {
                let id = u32::from(!purged(&entry_key(&e, received_ms)));
                (Some(EntryId(id)), e)
            })
            .collect(),
    };
    let mut ids = roaring::RoaringBitmap::new();
    ids.insert(0);
    crate::log::erase::redact(&mut rec, &ids);
    (rec.raw, rec.events.into_iter().map(|(_, e)| e).collect())
}

/// Entries folded from inputs in memory.
pub struct Derivation {
    /// In a lock only so that [`Derivation::snapshot`] reads it as the
    /// store's snapshots do; folding takes it mutably, without locking.
    state: std::sync::RwLock<State>,
    keys: FxHashMap<u32, String>,
    /// The statuses about a group's members, by entry: a group message's
    /// timeline names them.
    member_statuses: FxHashMap<u32, Vec<Event>>,
    /// What the text index would get, by entry: its text values and its
    /// identifiers.
    texts: FxHashMap<u32, (Vec<String>, Vec<String>)>,
}

impl Derivation {
    /// An empty derivation; a reply that quotes nothing is tied to the
    /// person's latest message within `attribution_window_hours` (as the
    /// store's `Config::attribution_window_hours`).
    pub fn new(attribution_window_hours: u32) -> Derivation {
        let mut state = State::new();
        state.attribution_window_ms = i64::from(attribution_window_hours) * 3_600_000;
        Derivation {
            state: std::sync::RwLock::new(state),
            keys: FxHashMap::default(),
            member_statuses: FxHashMap::default(),
            texts: FxHashMap::default(),
        }
    }

    /// Renders templated sends with `catalog` (their shown text and the
    /// words free text finds them by), as the store renders them with
    /// its own; an empty derivation has no catalog.
    pub fn with_templates(mut self, catalog: std::sync::Arc<crate::templates::Catalog>) -> Self {
        let state = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        state.templates = catalog;
        self
    }

    /// The catalog templated sends are rendered with.
    pub fn templates(&self) -> std::sync::Arc<crate::templates::Catalog> {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        state.templates.clone()
    }

    /// Folds one input's events as the store folds an appended input:
    /// duplicates of what was folded before are dropped. Inputs may come in
    /// any order (an entry depends on the set of its events), each once
    /// under its own `seq`. Returns, event by event, the key of the entry
    /// it was folded into, `None` for a duplicate (as the store's record
    /// assigns them: an input is one of an entry's inputs where it has a
    /// new event of the entry).
    pub fn add(&mut self, seq: Seq, received_ms: i64, events: &[Event]) -> Vec<Option<String>> {
        let state = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        let mut overlay = state.overlay();
        let assignments = state.classify(&mut overlay, events, received_ms);
        let folded_into: Vec<Option<String>> = assignments
            .iter()
            .zip(events)
            .map(|(a, e)| a.map(|_| entry_key(e, received_ms)))
            .collect();
        let kept: Vec<(EntryId, Event)> = assignments
            .iter()
            .zip(events)
            .filter_map(|(a, ev)| a.map(|id| (id, ev.clone())))
            .collect();
        for (id, event) in &kept {
            self.keys
                .entry(id.0)
                .or_insert_with(|| entry_key(event, received_ms));
            if matches!(event, Event::Status(st) if st.participant.is_some()) {
                self.member_statuses
                    .entry(id.0)
                    .or_default()
                    .push(event.clone());
            }
        }
        if !kept.is_empty() {
            for doc in state.apply(seq, received_ms, &kept) {
                let (values, exact) = self.texts.entry(doc.entry.0).or_default();
                values.extend(
                    std::iter::once(doc.text)
                        .chain(doc.later_texts)
                        .filter(|t| !t.is_empty()),
                );
                for e in doc.exact {
                    if !exact.contains(&e) {
                        exact.push(e);
                    }
                }
            }
        }
        folded_into
    }

    /// The key of this derivation's entry `id` (an entry's `in_reply_to`
    /// names an entry by this derivation's id).
    pub fn key_of(&self, id: EntryId) -> Option<&str> {
        self.keys.get(&id.0).map(String::as_str)
    }

    /// A read view of the fold, as a store's: contacts, entries, values.
    /// Ids are this derivation's (see [`Derivation::key_of`]).
    pub fn snapshot(&self) -> Snapshot<'_> {
        Snapshot {
            state: self.state.read().unwrap_or_else(|p| p.into_inner()),
        }
    }

    /// The timeline of the message `wamid`, as the store gives it; ids are
    /// this derivation's (see [`Derivation::key_of`]).
    pub fn timeline(&self, wamid: &str) -> Option<Timeline> {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        let id = state.entry_for_wamid(wamid)?;
        let (mut timeline, group) = timeline_of(&state, id)?;
        if group.is_some() {
            let events = self
                .member_statuses
                .get(&id.0)
                .map_or(&[][..], Vec::as_slice);
            name_group_members(id, events, &mut timeline.items);
        }
        timeline.items.sort_by_key(|i| i.at_ms);
        Some(timeline)
    }

    /// The furthest delivery step entry `id` reached (the `reached=`
    /// filter's value), if it is an outbound message that reached one.
    pub fn reached(&self, id: EntryId) -> Option<Reached> {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        state.row(id).and_then(|row| row.reached())
    }

    /// What free text finds entry `id` by: its words (see
    /// [`crate::words_of`]) and its identifiers (wamid, phone digits,
    /// correlation and conversation ids), as the text index has them.
    pub fn search_text(&self, id: EntryId) -> (String, Vec<String>) {
        match self.texts.get(&id.0) {
            Some((values, exact)) => (
                crate::text::words_of(values.iter().map(String::as_str)),
                exact.clone(),
            ),
            None => (String::new(), Vec::new()),
        }
    }

    /// Every entry, with its key, in the order they were made.
    pub fn entries(&self) -> Vec<(String, Entry)> {
        let mut out = Vec::with_capacity(self.keys.len());
        self.each_entry(|key, entry| {
            out.push((key.to_string(), entry));
            Ok::<(), std::convert::Infallible>(())
        })
        .unwrap_or_else(|never| match never {});
        out
    }

    /// The keys of every entry, in the order they were made.
    pub fn entry_keys(&self) -> Vec<&str> {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        state
            .live
            .iter()
            .filter_map(|id| self.keys.get(&id).map(String::as_str))
            .collect()
    }

    /// Every entry with its key, in the order they were made, one at a
    /// time (a whole store's entries need not be in memory at once);
    /// stops at the first error `each` returns.
    pub fn each_entry<E>(
        &self,
        mut each: impl FnMut(&str, Entry) -> Result<(), E>,
    ) -> Result<(), E> {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        for id in state.live.iter() {
            let (Some(key), Some(row)) = (self.keys.get(&id), state.row(EntryId(id))) else {
                continue;
            };
            each(key, entry_of(&state, EntryId(id), &row))?;
        }
        Ok(())
    }
}
