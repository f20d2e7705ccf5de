//! Derived state: every entry's current row, the roaring-bitmap indexes, and
//! the maps that deduplication and linking need.
//!
//! All of it is a pure function of the log: [`State::apply`] folds one log
//! record in, and replaying the whole log from an empty `State` gives the
//! same state as the live writer built (invariant 1 of `ARCHITECTURE.md`).
//! Deduplication happens *before* a record is written ([`State::classify`]),
//! so records hold only new events and replay never needs to deduplicate.
//!
//! - this module: [`State`] and the fold itself (classify, apply, the event
//!   kinds, reply links, sessions, purge), longer than the others because
//!   the fold and the maps it keeps (deduplication, replies, sessions,
//!   bitmaps) change together under one set of invariants;
//! - `field`: the field catalog; `interner`: shared strings; `rows`: `Row`
//!   and `Rows`; `own`: strings one row has; `columns`: key columns;
//!   `docs`: text documents; `links`: outbound lists per customer;
//!   `checkpoint`: the checkpoint file.

pub(crate) mod checkpoint;
pub(crate) mod columns;
pub(crate) mod contacts;
mod docs;
mod field;
mod interner;
mod links;
pub(crate) mod own;
pub(crate) mod rows;

pub(crate) use docs::{coalesce_docs, push_words, TextDoc};
pub(crate) use field::NONE_KEY;
pub use field::{Field, Key, Value};
pub(crate) use field::{DAY_MS, HOUR_MS};
pub(crate) use rows::Row;

use crate::model::*;
use crate::templates::{render, SharedCatalog};
use columns::{KeyColumns, SavedColumn};
use contacts::{Contacts, SavedContacts};
use docs::{push_error_words, push_identifier_words};
use field::NFIELDS;
use interner::{Interner, SavedStrings, Sym};
use links::OutboundByPair;
use own::{decode_params, encode_params, params_text, Own, RawBytes, WamidIndex};
use roaring::RoaringBitmap;
use rows::{OptI64, RowParts, Rows};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};

/// Hash maps keyed by strings from the outside world (wamids, names) use
/// foldhash seeded at random per process: several times faster than SipHash
/// on short keys, and an outsider still cannot aim collisions at them.
type StrMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
type StrSet<K> = HashSet<K, foldhash::fast::RandomState>;

const SESSION_WINDOW_MS: i64 = 24 * HOUR_MS;
/// The attribution window unless configured (`Config::attribution_window_hours`).
pub(crate) const DEFAULT_ATTRIBUTION_WINDOW_MS: i64 = 24 * HOUR_MS;
/// How much message text a row keeps for the table; the full text stays in
/// the log and the full-text index.
const TEXT_PREVIEW_CHARS: usize = 280;

/// Keys that identify an event for deduplication within one write group.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum DedupKey {
    SendWamid(String),
    SendFingerprint(u64),
    Status(String, WebhookStatus, i64, Option<i64>),
    MemberStatus(String, u64),
    Inbound(String),
    Other(u64),
}

/// Ids and keys given out in the current write group but not yet applied.
#[derive(Default)]
pub(crate) struct Overlay {
    next_id: u32,
    wamids: StrMap<String, EntryId>,
    keys: StrSet<DedupKey>,
}

/// The derived state of the whole store.
pub(crate) struct State {
    pub(crate) rows: Rows,
    /// Entries that exist and are not purged.
    pub(crate) live: RoaringBitmap,
    pub(crate) interner: Interner,
    /// Per field: bitmap key -> entries.
    pub(crate) indexes: Vec<BTreeMap<i64, RoaringBitmap>>,
    /// Per field: every entry's key, as a column (what scans read).
    pub(crate) columns: KeyColumns,
    wamids: WamidIndex,
    // Maps keyed by numbers Ticks makes (hashes, symbols, ids) use Fx, a
    // fast hash for keys an outsider cannot choose; string-keyed maps use a
    // randomly seeded one (`StrMap`).
    fingerprints: FxHashMap<u64, EntryId>,
    others: FxHashSet<u64>,
    /// Statuses of a group message about one member each
    /// (`recipient_participant_id`): entry -> [`member_status_key`]s. A
    /// mark is one per time and status, and two members reading in one
    /// second are two statuses, not a redelivery.
    member_statuses: FxHashMap<u32, Vec<u64>>,
    /// Tracking tokens in sent URLs (hashed) -> the newest send that
    /// carried them: what a link click naming no wamid is linked by.
    tracked: FxHashMap<u64, u32>,
    /// Inbound replies whose `context.id` names a message not seen yet.
    pending_replies: StrMap<Box<str>, Vec<EntryId>>,
    /// (phone_number_id, customer) -> times of inbound messages, for session windows.
    inbound_times: FxHashMap<(Sym, Sym), Vec<i64>>,
    /// (phone_number_id, customer) -> outbound entries, to open their window
    /// when an earlier inbound message is learned late.
    outbound_by_pair: OutboundByPair,
    /// Outbound entry -> the inbound entries that answer it.
    replies: FxHashMap<EntryId, Vec<EntryId>>,
    /// The people behind the entries (see the `contacts` module).
    pub(crate) contacts: Contacts,
    /// Live inbound entries that quote nothing: their reply is inferred.
    unquoted: RoaringBitmap,
    /// Unquoted reply -> the message it was inferred to answer.
    inferred: FxHashMap<u32, u32>,
    /// How long after a message an unquoted reply is still attributed to
    /// it (0: never).
    pub(crate) attribution_window_ms: i64,
    /// The template catalog sends are rendered with (loaded from its sled
    /// tree before the log is replayed; replaced whole by an import).
    pub(crate) templates: SharedCatalog,
    /// The last log record folded in.
    pub(crate) applied: Option<Seq>,
    /// Strings purged entries used, until the purge's erasure blanks those
    /// no live entry uses (not saved: a replay of the purge sets it again).
    purged_strings: FxHashSet<Sym>,
}

/// An entry's text as shown (see [`State::shown_text`]).
pub(crate) struct ShownText<'r> {
    pub(crate) text: Cow<'r, str>,
    /// For a templated send: whether its template is in the catalog.
    pub(crate) template_known: Option<bool>,
    /// For a templated send: why its parameters did not fit the definition.
    pub(crate) render_error: Option<String>,
}

/// Deserializes a checkpoint's vector with its whole length reserved up front.
/// serde's own `Vec` reserves at most 1 MiB and then doubles: for millions
/// of strings or fingerprints that is a dozen regrowths, each one copied
/// into fresh pages the kernel must zero. The length
/// comes from Ticks' own file; the cap bounds what a corrupt one could ask.
fn vec_reserved<'de, D, T>(deserializer: D) -> std::result::Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Reserved<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Reserved<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a sequence")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> std::result::Result<Vec<T>, A::Error> {
            const MAX_RESERVED: usize = 1 << 27;
            let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(MAX_RESERVED));
            while let Some(item) = seq.next_element()? {
                items.push(item);
            }
            Ok(items)
        }
    }
    deserializer.deserialize_seq(Reserved(std::marker::PhantomData))
}

/// The persisted part of a [`State`]: everything, in the parts
/// `checkpoint.rs` writes as separate frames, so that an open decodes no
/// row: the sealed blocks are loaded as they are.
pub(crate) struct StateCheckpoint {
    pub(crate) head: CheckpointHead,
    pub(crate) rows: RowParts,
    /// The bitmaps and key columns. `None` when they could not be saved
    /// (then an open rebuilds them from the rows).
    pub(crate) indexes: Option<SavedIndexes>,
    pub(crate) lookups: SavedLookups,
}

/// Everything of a checkpoint but the rows, the indexes and the lookups.
#[derive(Serialize, Deserialize)]
pub(crate) struct CheckpointHead {
    pub(crate) applied: Option<Seq>,
    /// How many entry ids were handed out.
    pub(crate) rows: u64,
    /// The interned strings by number; those only purged entries used are
    /// blanked (see [`State::purge`]).
    strings: SavedStrings,
    #[serde(deserialize_with = "vec_reserved")]
    fingerprints: Vec<(u64, EntryId)>,
    others: Vec<u64>,
    #[serde(default)]
    member_statuses: Vec<(u32, u64)>,
    #[serde(default)]
    tracked: Vec<(u64, u32)>,
    pending_replies: Vec<(Box<str>, Vec<EntryId>)>,
    /// The attribution window the state was derived with: a checkpoint of
    /// another is not used.
    pub(crate) attribution_window_ms: i64,
    unquoted: RawBytes,
}

/// The lookup maps, so that an open does not read every row to rebuild
/// them.
#[derive(Serialize, Deserialize)]
pub(crate) struct SavedLookups {
    wamid_seed: u64,
    /// [`WamidIndex`] slots, u64 LE each.
    wamid_slots: RawBytes,
    #[serde(deserialize_with = "vec_reserved")]
    inbound_times: Vec<((Sym, Sym), Vec<i64>)>,
    #[serde(deserialize_with = "vec_reserved")]
    outbound_newest: Vec<((Sym, Sym), u32)>,
    /// [`OutboundByPair`]'s links, u32 LE each.
    outbound_previous: RawBytes,
    #[serde(deserialize_with = "vec_reserved")]
    replies: Vec<(EntryId, Vec<EntryId>)>,
    contacts: SavedContacts,
    #[serde(deserialize_with = "vec_reserved")]
    inferred: Vec<(u32, u32)>,
}

/// Bitmaps (roaring's portable format) and key columns as a checkpoint
/// holds them.
#[derive(Serialize, Deserialize)]
pub(crate) struct SavedIndexes {
    live: RawBytes,
    /// Per field, in `Field` order: (key, bitmap), keys ascending.
    bitmaps: Vec<Vec<(i64, RawBytes)>>,
    columns: Vec<SavedColumn>,
}

impl SavedIndexes {
    fn save(state: &State) -> Option<SavedIndexes> {
        let serialize = |bm: &RoaringBitmap| {
            let mut bytes = Vec::with_capacity(bm.serialized_size());
            bm.serialize_into(&mut bytes).ok().map(|()| RawBytes(bytes))
        };
        let mut bitmaps = Vec::with_capacity(NFIELDS);
        for index in &state.indexes {
            let mut field = Vec::with_capacity(index.len());
            for (key, bm) in index {
                field.push((*key, serialize(bm)?));
            }
            bitmaps.push(field);
        }
        let mut erased = RoaringBitmap::new();
        erased.insert_range(0..state.rows.len() as u32);
        erased -= &state.live;
        let columns = state.columns.save(&erased, |_, _, key| key);
        Some(SavedIndexes {
            live: serialize(&state.live)?,
            bitmaps,
            columns,
        })
    }

    fn load(self, entries: usize) -> Option<Indexes> {
        let deserialize = |bytes: &RawBytes| RoaringBitmap::deserialize_from(&bytes.0[..]).ok();
        let live = deserialize(&self.live)?;
        if live.max().is_some_and(|max| max as usize >= entries) || self.bitmaps.len() != NFIELDS {
            return None;
        }
        let mut indexes = Vec::with_capacity(NFIELDS);
        for field in &self.bitmaps {
            let mut index = BTreeMap::new();
            for (key, bytes) in field {
                index.insert(*key, deserialize(bytes)?);
            }
            indexes.push(index);
        }
        let columns = KeyColumns::load(self.columns, entries)?;
        Some(Indexes {
            indexes,
            columns,
            live,
        })
    }
}

fn hash64(parts: &[&[u8]]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for p in parts {
        p.hash(&mut h);
    }
    h.finish()
}

/// What tells two statuses of a group message apart: the member, the
/// status, its time and error code (hashed: the member's number is not
/// kept in the clear beside the rows).
fn member_status_key(st: &StatusEvent, member: &str) -> u64 {
    let code = st.errors.first().and_then(|e| e.code).unwrap_or(i64::MIN);
    hash64(&[
        member.as_bytes(),
        st.status.as_str().as_bytes(),
        &st.at_ms.to_le_bytes(),
        &code.to_le_bytes(),
    ])
}

/// The values in a send's URLs that a business can use as tracking tokens:
/// each dynamic URL-button suffix whole (where Meta's docs put the token),
/// and every query value of the URLs in it and in the text.
fn tracking_tokens(send: &SendEvent) -> Vec<&str> {
    let mut tokens = Vec::new();
    for p in &send.params {
        if p.component == "button" && p.name.starts_with("url") && !p.value.is_empty() {
            tokens.push(p.value.as_str());
            push_query_values(&p.value, &mut tokens);
        }
    }
    for word in send.text.split_whitespace() {
        if word.starts_with("http://") || word.starts_with("https://") {
            push_query_values(word, &mut tokens);
        }
    }
    tokens
}

/// `a=1&b=xyz` values of a URL (or URL suffix) after its `?`.
fn push_query_values<'a>(url: &'a str, tokens: &mut Vec<&'a str>) {
    let Some((_, query)) = url.split_once('?') else {
        return;
    };
    let query = query.split('#').next().unwrap_or("");
    for pair in query.split('&') {
        if let Some((_, value)) = pair.split_once('=') {
            if value.len() >= 4 {
                tokens.push(value);
            }
        }
    }
}

/// The key a click waits under for the send carrying its token (no wamid
/// starts with a control character).
fn tracking_key(token: &str) -> String {
    format!("\u{1}tt:{token}")
}

/// What makes an account or template event the same event again: its
/// field, account, text and its own time. An event whose body carries no
/// time has its arrival as `at_ms` (equal to the input's `received_ms`),
/// which a redelivery does not share, so that time is left out: the same
/// bytes posted twice are one event.
pub(crate) fn other_fingerprint(o: &OtherEvent, received_ms: i64) -> u64 {
    let own_time = if o.at_ms == received_ms { 0 } else { o.at_ms };
    hash64(&[
        o.field.as_bytes(),
        o.account.as_deref().unwrap_or("").as_bytes(),
        &own_time.to_le_bytes(),
        o.text.as_bytes(),
    ])
}

fn preview(text: &str) -> &str {
    match text.char_indices().nth(TEXT_PREVIEW_CHARS) {
        Some((cut, _)) => &text[..cut],
        None => text,
    }
}

/// `slice` with `item` inserted at `pos`, in one exactly sized allocation
/// (rows keep their marks and records in boxes: a `Vec`'s spare capacity,
/// times 10M rows, is hundreds of MB).
fn with_inserted<T: Clone>(slice: &[T], pos: usize, item: T) -> Box<[T]> {
    let mut out = Vec::with_capacity(slice.len() + 1);
    out.extend_from_slice(&slice[..pos]);
    out.push(item);
    out.extend_from_slice(&slice[pos..]);
    out.into_boxed_slice()
}

/// Whether entry `id`'s wamid is `wamid` (how [`WamidIndex`] compares).
fn wamid_is(rows: &Rows, id: u32, wamid: &str) -> bool {
    rows.get(id)
        .is_some_and(|r| r.own.get(Own::Wamid) == Some(wamid))
}

impl State {
    pub(crate) fn new() -> State {
        State {
            rows: Rows::default(),
            live: RoaringBitmap::new(),
            interner: Interner::new(),
            indexes: vec![BTreeMap::new(); NFIELDS],
            columns: KeyColumns::new(NFIELDS),
            wamids: WamidIndex::default(),
            fingerprints: FxHashMap::default(),
            others: FxHashSet::default(),
            member_statuses: FxHashMap::default(),
            tracked: FxHashMap::default(),
            templates: SharedCatalog::default(),
            pending_replies: StrMap::default(),
            inbound_times: FxHashMap::default(),
            outbound_by_pair: OutboundByPair::default(),
            replies: FxHashMap::default(),
            contacts: Contacts::default(),
            unquoted: RoaringBitmap::new(),
            inferred: FxHashMap::default(),
            attribution_window_ms: DEFAULT_ATTRIBUTION_WINDOW_MS,
            applied: None,
            purged_strings: FxHashSet::default(),
        }
    }

    pub(crate) fn row(&self, id: EntryId) -> Option<Cow<'_, Row>> {
        self.rows.get(id.0).filter(|r| !r.purged)
    }

    /// The text a person saw of an entry: a templated send rendered with
    /// the version of its template in force when it was sent (its
    /// parameters one per line while the template is unknown), any other
    /// entry's own text.
    pub(crate) fn shown_text<'r>(&self, row: &'r Row) -> ShownText<'r> {
        let Some(encoded) = row.own.get(Own::Params) else {
            return ShownText {
                text: Cow::Borrowed(row.own.text(Own::Text)),
                template_known: None,
                render_error: None,
            };
        };
        let name = self.interner.resolve(row.template);
        let language = self.interner.resolve(row.language);
        match self.templates.in_force(name, language, row.recorded_ms) {
            Some(def) => {
                let rendered = render(&def.content, &decode_params(encoded));
                ShownText {
                    text: Cow::Owned(rendered.text),
                    template_known: Some(true),
                    render_error: rendered.error,
                }
            }
            None => ShownText {
                text: Cow::Owned(params_text(encoded)),
                template_known: Some(false),
                render_error: None,
            },
        }
    }

    /// Whether entry `id` is a group message whose statuses name members.
    pub(crate) fn names_group_members(&self, id: EntryId) -> bool {
        self.member_statuses.contains_key(&id.0)
    }

    pub(crate) fn entry_for_wamid(&self, wamid: &str) -> Option<EntryId> {
        self.wamids
            .get(wamid, |id, w| wamid_is(&self.rows, id, w))
            .filter(|id| self.live.contains(id.0))
    }

    pub(crate) fn replies_to(&self, id: EntryId) -> Vec<EntryId> {
        self.replies.get(&id).cloned().unwrap_or_default()
    }

    pub(crate) fn bitmap(&self, field: Field, key: i64) -> Option<&RoaringBitmap> {
        self.indexes[field.slot()].get(&key)
    }

    pub(crate) fn field_index(&self, field: Field) -> &BTreeMap<i64, RoaringBitmap> {
        &self.indexes[field.slot()]
    }

    fn lookup_wamid(&self, overlay: &Overlay, wamid: &str) -> Option<EntryId> {
        self.wamids
            .get(wamid, |id, w| wamid_is(&self.rows, id, w))
            .or_else(|| overlay.wamids.get(wamid).copied())
    }

    pub(crate) fn overlay(&self) -> Overlay {
        Overlay {
            next_id: self.rows.len() as u32,
            ..Overlay::default()
        }
    }

    /// Decides, for each event of an input, whether it is new and which entry
    /// it belongs to: `Some(entry)` for a new event, `None` for a duplicate,
    /// position by position. Does not modify the state: the writer applies
    /// the record only once it is durable.
    pub(crate) fn classify(
        &self,
        overlay: &mut Overlay,
        events: &[Event],
        received_ms: i64,
    ) -> Vec<Option<EntryId>> {
        let mut assignments = Vec::with_capacity(events.len());
        for event in events {
            let target = match event {
                Event::Send(send) => match &send.wamid {
                    Some(wamid) => {
                        let key = DedupKey::SendWamid(wamid.clone());
                        let existing = self.lookup_wamid(overlay, wamid);
                        let already_sent = existing
                            .and_then(|id| self.rows.get(id.0))
                            .is_some_and(|r| r.send.is_some());
                        if already_sent || overlay.keys.contains(&key) {
                            None
                        } else {
                            overlay.keys.insert(key);
                            Some(existing.unwrap_or_else(|| new_id(overlay, Some(wamid))))
                        }
                    }
                    None => {
                        let key = DedupKey::SendFingerprint(send.fingerprint);
                        if self.fingerprints.contains_key(&send.fingerprint)
                            || !overlay.keys.insert(key)
                        {
                            None
                        } else {
                            Some(new_id(overlay, None))
                        }
                    }
                },
                Event::Status(st) if st.participant.is_some() => {
                    let member = member_status_key(st, st.participant.as_deref().unwrap_or(""));
                    let key = DedupKey::MemberStatus(st.wamid.clone(), member);
                    let existing = self.lookup_wamid(overlay, &st.wamid);
                    let seen = existing.is_some_and(|id| {
                        self.member_statuses
                            .get(&id.0)
                            .is_some_and(|keys| keys.contains(&member))
                    });
                    if seen || !overlay.keys.insert(key) {
                        None
                    } else {
                        Some(existing.unwrap_or_else(|| new_id(overlay, Some(&st.wamid))))
                    }
                }
                Event::Status(st) => {
                    let code = st.errors.first().and_then(|e| e.code);
                    let key = DedupKey::Status(st.wamid.clone(), st.status, st.at_ms, code);
                    let existing = self.lookup_wamid(overlay, &st.wamid);
                    let seen = existing
                        .and_then(|id| self.rows.get(id.0))
                        .is_some_and(|r| {
                            r.marks.iter().any(|m| {
                                m.status == st.status
                                    && m.at_ms == st.at_ms
                                    && m.error_code() == code
                            })
                        });
                    if seen || !overlay.keys.insert(key) {
                        None
                    } else {
                        Some(existing.unwrap_or_else(|| new_id(overlay, Some(&st.wamid))))
                    }
                }
                Event::Inbound(msg) => {
                    let key = DedupKey::Inbound(msg.wamid.clone());
                    if self.lookup_wamid(overlay, &msg.wamid).is_some() || !overlay.keys.insert(key)
                    {
                        None
                    } else {
                        Some(new_id(overlay, Some(&msg.wamid)))
                    }
                }
                Event::Other(other) => {
                    let fp = other_fingerprint(other, received_ms);
                    if self.others.contains(&fp) || !overlay.keys.insert(DedupKey::Other(fp)) {
                        None
                    } else {
                        Some(new_id(overlay, None))
                    }
                }
            };
            assignments.push(target);
        }
        assignments
    }

    /// Folds one log record's events into the state and returns the
    /// full-text documents they produce. Deterministic: the same records in
    /// the same order always give the same state.
    pub(crate) fn apply(
        &mut self,
        seq: Seq,
        received_ms: i64,
        events: &[(EntryId, Event)],
    ) -> Vec<TextDoc> {
        let mut docs = Vec::new();
        for (id, event) in events {
            let idx = id.0 as usize;
            let (before, market_before) = if idx < self.rows.len() {
                let row = self.rows.get_mut(id.0);
                (
                    (!row.purged).then(|| row.index_keys()),
                    Some(row.market_inputs()),
                )
            } else {
                (None, None)
            };
            while self.rows.len() < idx {
                // A gap: the ids of entries whose records a purge removed.
                let mut gap = Row::new(Direction::Outbound, 0);
                gap.purged = true;
                self.rows.push(gap);
            }
            if self.rows.len() == idx {
                let direction = match event {
                    Event::Send(_) | Event::Status(_) => Direction::Outbound,
                    Event::Inbound(_) => Direction::Inbound,
                    Event::Other(_) => Direction::Event,
                };
                let at = match event {
                    Event::Send(s) => s.recorded_ms,
                    Event::Status(s) => s.at_ms,
                    Event::Inbound(m) => m.at_ms,
                    Event::Other(o) => o.at_ms,
                };
                self.rows.push(Row::new(direction, at));
            }
            if self.rows.get_mut(id.0).purged {
                continue;
            }
            let row = self.rows.get_mut(id.0);
            if row.records.last() != Some(&seq) {
                row.records = with_inserted(&row.records, row.records.len(), seq);
            }
            let doc = match event {
                Event::Send(send) => self.apply_send(*id, send),
                Event::Status(st) => self.apply_status(*id, st),
                Event::Inbound(msg) => self.apply_inbound(*id, msg),
                Event::Other(other) => self.apply_other(*id, other, received_ms),
            };
            if let Some(doc) = doc {
                docs.push(doc);
            }
            // Most events (statuses) change none of what the market is
            // derived from; looking the country up again for each was 1% of
            // an import's CPU.
            if market_before != Some(self.rows.get_mut(id.0).market_inputs()) {
                self.derive_market(*id);
            }
            let (idents, n) = self.rows.get_mut(id.0).idents();
            let joined = self.contacts.observe(*id, &idents[..n]);
            let after = self.rows.get_mut(id.0).index_keys();
            self.reindex(*id, before, Some(after));
            if matches!(event, Event::Send(_)) {
                // Replies that came before their send copied an empty
                // campaign from the entry its statuses made.
                self.recopy_to_replies(*id);
            }
            // A message, a reply, or two people found to be one: the
            // person's unquoted replies may answer another message now.
            if joined || matches!(event, Event::Send(_) | Event::Inbound(_)) {
                self.reattribute(*id, joined, matches!(event, Event::Inbound(_)));
            }
        }
        self.rows.seal();
        self.applied = Some(seq);
        docs
    }

    fn reindex(
        &mut self,
        id: EntryId,
        before: Option<[i64; NFIELDS]>,
        after: Option<[i64; NFIELDS]>,
    ) {
        for slot in 0..NFIELDS {
            let old = before.map(|k| k[slot]);
            let new = after.map(|k| k[slot]);
            if old == new {
                continue;
            }
            if let Some(old) = old {
                if let Some(bm) = self.indexes[slot].get_mut(&old) {
                    bm.remove(id.0);
                    if bm.is_empty() {
                        self.indexes[slot].remove(&old);
                    }
                }
            }
            if let Some(new) = new {
                self.indexes[slot].entry(new).or_default().insert(id.0);
                self.columns.set(slot, id.0, new);
            }
        }
        match after {
            Some(_) => self.live.insert(id.0),
            None => self.live.remove(id.0),
        };
    }

    /// Sets what the row's strings imply and its index keys need: the
    /// person's country (their number's calling code, else their user id's
    /// prefix) and whether Meta charges for an outbound message (`pricing.type`
    /// regular; `billable` on traffic from before the type existed).
    fn derive_market(&mut self, id: EntryId) {
        let row = self.rows.get_mut(id.0);
        let i = &mut self.interner;
        let number = match row.direction {
            Direction::Outbound => [row.wa_id, row.phone],
            _ => [row.phone, row.wa_id],
        };
        let country = number
            .into_iter()
            .filter(|s| *s != 0)
            .find_map(|s| crate::country::country_of_number(i.resolve(s)))
            .or_else(|| {
                [row.user_id, row.parent_user_id]
                    .into_iter()
                    .filter(|s| *s != 0)
                    .find_map(|s| crate::country::country_of_user_id(i.resolve(s)))
            })
            .map(|c| [c.as_bytes()[0], c.as_bytes()[1]]);
        row.country = match country {
            Some(c) => i.intern(std::str::from_utf8(&c).unwrap_or_default()),
            None => 0,
        };
        if row.direction == Direction::Outbound {
            row.charged = match row.pricing_type {
                0 => row.billable,
                t => Some(i.resolve(t) == "regular"),
            };
        }
    }

    fn apply_send(&mut self, id: EntryId, send: &SendEvent) -> Option<TextDoc> {
        let i = &mut self.interner;
        let row = self.rows.get_mut(id.0);
        let was = (row.phone_number_id, row.customer());
        row.send = send.outcome.or(Some(SendOutcome::Accepted));
        row.origin = send.origin;
        row.recorded_ms = send.recorded_ms;
        row.offset_s = send.offset_s;
        row.response_code = send.response_code;
        row.category = i.intern_opt(send.category.as_deref());
        row.name = i.intern_opt(send.name.as_deref());
        row.template = i.intern_opt(send.template.as_deref());
        row.language = i.intern_opt(send.template_language.as_deref());
        row.recipient_type = i.intern_opt(send.recipient_type.as_deref());
        row.recipient_ref = i.intern_opt(send.recipient_ref.as_deref());
        row.user = i.intern_opt(send.user.as_deref());
        row.subaccount = i.intern_opt(send.subaccount.as_deref());
        row.content_type = i.intern_opt(send.content_type.as_deref());
        if send.phone_number_id.is_some() {
            row.phone_number_id = i.intern_opt(send.phone_number_id.as_deref());
        }
        if send.phone.is_some() {
            row.phone = i.intern_opt(send.phone.as_deref());
        }
        if send.wa_id.is_some() {
            row.wa_id = i.intern_opt(send.wa_id.as_deref());
        }
        if send.user_id.is_some() {
            row.user_id = i.intern_opt(send.user_id.as_deref());
        }
        if let Some(err) = &send.error {
            row.error_code = OptI64::new(err.code);
            row.error_title = i.intern_opt(err.title.as_deref().or(err.message.as_deref()));
        } else if let Some(t) = &send.transport_error {
            row.error_title = i.intern(t);
        }
        // A templated send keeps its parameters, not their joined text: its
        // text is rendered from them when read (`State::shown_text`).
        let params = (!send.params.is_empty()).then(|| encode_params(&send.params));
        row.own.set_all(
            [
                match &params {
                    Some(p) => Some((Own::Params, p.as_str())),
                    None => Some((Own::Text, preview(&send.text))),
                },
                send.correlation_id
                    .as_deref()
                    .map(|c| (Own::CorrelationId, c)),
                send.wamid.as_deref().map(|w| (Own::Wamid, w)),
            ]
            .into_iter()
            .flatten(),
        );
        row.status = derive_status(row.send, &row.marks);
        match &send.wamid {
            Some(wamid) => {
                let rows = &self.rows;
                self.wamids.insert(id, wamid, |id, w| wamid_is(rows, id, w));
            }
            None => {
                self.fingerprints.insert(send.fingerprint, id);
            }
        }
        self.track_session(id, was);
        self.resolve_pending_replies(id);
        for token in tracking_tokens(send) {
            self.tracked.insert(hash64(&[token.as_bytes()]), id.0);
            self.resolve_pending(&tracking_key(token), id);
        }

        let mut text = String::new();
        for part in [
            send.category.as_deref(),
            send.name.as_deref(),
            send.template.as_deref(),
            send.user.as_deref(),
            send.subaccount.as_deref(),
            send.recipient_ref.as_deref(),
            send.transport_error.as_deref(),
        ]
        .into_iter()
        .flatten()
        {
            push_words(&mut text, part);
        }
        push_words(&mut text, &send.text);
        // The text the person read, when the template is known: its fixed
        // words are found too (a backfill adds it for sends logged before
        // their definition).
        if let (Some(name), Some(language)) = (&send.template, &send.template_language) {
            if let Some(def) = self.templates.in_force(name, language, send.recorded_ms) {
                push_words(&mut text, &render(&def.content, &send.params).text);
            }
        }
        if let Some(err) = &send.error {
            push_error_words(&mut text, err);
        }
        // The WhatsApp id is usually the phone number itself: once is enough.
        let wa_id = send
            .wa_id
            .as_ref()
            .filter(|w| send.phone.as_ref() != Some(*w));
        let mut exact = Vec::new();
        exact.extend(send.wamid.iter().cloned());
        exact.extend(send.phone.iter().cloned());
        exact.extend(wa_id.cloned());
        exact.extend(send.correlation_id.iter().cloned());
        exact.extend(send.user_id.iter().cloned());
        for p in [send.phone.as_ref(), wa_id, send.user_id.as_ref()]
            .into_iter()
            .flatten()
        {
            push_identifier_words(&mut text, p);
        }
        Some(TextDoc {
            entry: id,
            text,
            exact,
            later_texts: Vec::new(),
        })
    }

    fn apply_status(&mut self, id: EntryId, st: &StatusEvent) -> Option<TextDoc> {
        let is_new_entry = self.rows.get_mut(id.0).records.len() == 1
            && self.rows.get_mut(id.0).send.is_none()
            && self.rows.get_mut(id.0).marks.is_empty();
        if let Some(member) = &st.participant {
            let keys = self.member_statuses.entry(id.0).or_default();
            let key = member_status_key(st, member);
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        let i = &mut self.interner;
        let row = self.rows.get_mut(id.0);
        let was = (row.phone_number_id, row.customer());
        let code = st.errors.first().and_then(|e| e.code);
        let mark = StatusMark::new(st.at_ms, st.status, code);
        if let Err(pos) = row.marks.binary_search(&mark) {
            row.marks = with_inserted(&row.marks, pos, mark);
        }
        let learned_wamid = row.own.get(Own::Wamid).is_none();
        // Ids the entry's documents do not hold yet: every status of a
        // message repeats its correlation id (and some its conversation),
        // and a document per repeat was most of the index's documents.
        let unseen = |field: Own, value: &Option<String>| {
            value
                .clone()
                .filter(|v| row.own.get(field) != Some(v.as_str()))
        };
        let new_conversation = unseen(Own::ConversationId, &st.conversation_id);
        let new_correlation = unseen(Own::CorrelationId, &st.correlation_id);
        let correlation_id = st
            .correlation_id
            .as_deref()
            .filter(|_| row.own.get(Own::CorrelationId).is_none());
        row.own.set_all(
            [
                learned_wamid.then_some((Own::Wamid, st.wamid.as_str())),
                correlation_id.map(|c| (Own::CorrelationId, c)),
                st.conversation_id
                    .as_deref()
                    .map(|c| (Own::ConversationId, c)),
            ]
            .into_iter()
            .flatten(),
        );
        if row.send.is_none() {
            // Known only from webhooks so far: its time is the earliest event.
            row.recorded_ms = row.marks.first().map_or(st.at_ms, |m| m.at_ms);
        }
        if row.phone == 0 {
            row.phone = i.intern_opt(st.recipient.as_deref());
        }
        // `recipient_id` is the WhatsApp account the message reached: its
        // `wa_id`, when the send response named none.
        if row.wa_id == 0 {
            row.wa_id = i.intern_opt(st.recipient.as_deref());
        }
        let new_user_id = st.user_id.is_some() && row.user_id == 0;
        if new_user_id {
            row.user_id = i.intern_opt(st.user_id.as_deref());
        }
        if row.parent_user_id == 0 {
            row.parent_user_id = i.intern_opt(st.parent_user_id.as_deref());
        }
        if row.phone_number_id == 0 {
            row.phone_number_id = i.intern_opt(st.phone_number_id.as_deref());
        }
        if let Some(c) = &st.conversation_type {
            row.conversation_type = i.intern(c);
        }
        if st.conversation_expiry_ms.is_some() {
            row.conversation_expiry_ms = OptI64::new(st.conversation_expiry_ms);
        }
        if let Some(p) = &st.pricing_category {
            row.pricing_category = i.intern(p);
        }
        if let Some(p) = &st.pricing_model {
            row.pricing_model = i.intern(p);
        }
        // Pricing comes on some statuses only: each fills what it has.
        if let Some(p) = &st.pricing_type {
            row.pricing_type = i.intern(p);
        }
        if st.billable.is_some() {
            row.billable = st.billable;
        }
        if let Some(err) = st.errors.first() {
            row.error_code = OptI64::new(err.code);
            row.error_title = i.intern_opt(err.title.as_deref().or(err.message.as_deref()));
        }
        row.status = derive_status(row.send, &row.marks);
        if learned_wamid {
            let rows = &self.rows;
            self.wamids
                .insert(id, &st.wamid, |id, w| wamid_is(rows, id, w));
        }
        if is_new_entry {
            self.track_session(id, (0, 0));
            self.resolve_pending_replies(id);
        } else {
            let row = self.rows.get_mut(id.0);
            if row.direction == Direction::Outbound && (row.phone_number_id, row.customer()) != was
            {
                self.track_session(id, was);
            }
        }

        let mut text = String::new();
        for err in &st.errors {
            push_error_words(&mut text, err);
        }
        let mut exact: Vec<String> = Vec::new();
        exact.extend(new_conversation);
        exact.extend(new_correlation);
        if is_new_entry {
            exact.push(st.wamid.clone());
            exact.extend(st.recipient.iter().cloned());
            if let Some(r) = &st.recipient {
                push_identifier_words(&mut text, r);
            }
        }
        if new_user_id || (is_new_entry && st.user_id.is_some()) {
            exact.extend(st.user_id.iter().cloned());
            if let Some(u) = &st.user_id {
                push_identifier_words(&mut text, u);
            }
        }
        if text.is_empty() && exact.is_empty() {
            None
        } else {
            Some(TextDoc {
                entry: id,
                text,
                exact,
                later_texts: Vec::new(),
            })
        }
    }

    fn apply_inbound(&mut self, id: EntryId, msg: &InboundEvent) -> Option<TextDoc> {
        let i = &mut self.interner;
        let row = self.rows.get_mut(id.0);
        row.recorded_ms = msg.at_ms;
        row.phone = i.intern_opt(msg.from.as_deref());
        row.wa_id = row.phone;
        row.contact_name = i.intern_opt(msg.contact_name.as_deref());
        row.user_id = i.intern_opt(msg.user_id.as_deref());
        row.parent_user_id = i.intern_opt(msg.parent_user_id.as_deref());
        row.username = i.intern_opt(msg.username.as_deref());
        if let Some(change) = &msg.identity_change {
            // The sender's identifiers are the old ones; the system
            // message's (`wa_id` before webhook v12, `new_wa_id` after) the
            // new ones: one person.
            if let Some(new) = change.new_wa_id.as_deref().or(change.wa_id.as_deref()) {
                row.wa_id = i.intern(new);
            }
            let from_user = msg.user_id.as_deref();
            let new_user = change
                .new_user_id
                .as_deref()
                .or(change.user_id.as_deref())
                .filter(|u| Some(*u) != from_user);
            if row.user_id == 0 {
                row.user_id = i.intern_opt(change.user_id.as_deref());
            }
            if row.user_id != 0 && new_user == Some(i.resolve(row.user_id)) {
                row.new_user_id = 0;
            } else {
                row.new_user_id = i.intern_opt(new_user);
            }
        }
        row.phone_number_id = i.intern_opt(msg.phone_number_id.as_deref());
        row.content_type = i.intern(&msg.content_type);
        row.button = i.intern_opt(msg.button.as_deref());
        row.quoted = msg.context_wamid.is_some() || msg.tracking_token.is_some();
        row.origin = msg.origin;
        // A system message (a number change) answers nothing, and a link
        // click answers only the message it names.
        if row.quoted || msg.content_type == "system" || msg.content_type == "link_click" {
            self.unquoted.remove(id.0);
        } else {
            self.unquoted.insert(id.0);
        }
        let row = self.rows.get_mut(id.0);
        row.own.set_all([
            (Own::Text, preview(&msg.text)),
            (Own::Wamid, msg.wamid.as_str()),
        ]);
        if let Some(err) = msg.errors.first() {
            row.error_code = OptI64::new(err.code);
            row.error_title = i.intern_opt(err.title.as_deref().or(err.message.as_deref()));
        }
        let rows = &self.rows;
        self.wamids
            .insert(id, &msg.wamid, |id, w| wamid_is(rows, id, w));
        if let Some(ctx) = &msg.context_wamid {
            match self.wamids.get(ctx, |id, w| wamid_is(rows, id, w)) {
                Some(target) if target != id => self.link_reply(id, target),
                _ => self
                    .pending_replies
                    .entry(Box::from(ctx.as_str()))
                    .or_default()
                    .push(id),
            }
        } else if let Some(token) = &msg.tracking_token {
            // A link click naming no wamid names its message by the token
            // the business put in the sent URL.
            match self.tracked.get(&hash64(&[token.as_bytes()])) {
                Some(&target) if target != id.0 && self.live.contains(target) => {
                    self.link_reply(id, EntryId(target))
                }
                _ => self
                    .pending_replies
                    .entry(tracking_key(token).into())
                    .or_default()
                    .push(id),
            }
        }
        // A customer message opens the 24 h window for the business's later
        // sends to that customer, including sends logged before it arrived.
        let row = self.rows.get_mut(id.0);
        let pair = (row.phone_number_id, row.customer());
        if pair.1 != 0 {
            let times = self.inbound_times.entry(pair).or_default();
            let pos = times.partition_point(|&t| t <= msg.at_ms);
            times.insert(pos, msg.at_ms);
            let outbound: Vec<EntryId> = self.outbound_by_pair.list(pair).map(EntryId).collect();
            {
                for out in outbound {
                    // Most of a customer's earlier sends fall outside the
                    // window: decided from the time column, without
                    // decoding their rows.
                    let at = self.rows.recorded_ms(out.0);
                    if at < msg.at_ms || at - msg.at_ms > SESSION_WINDOW_MS {
                        continue;
                    }
                    if self.live.contains(out.0) && !self.session_open(out.0) {
                        let before = Some(self.rows.get_mut(out.0).index_keys());
                        self.rows.get_mut(out.0).session = Some(Session::Open);
                        let after = Some(self.rows.get_mut(out.0).index_keys());
                        self.reindex(out, before, after);
                    }
                }
            }
        }

        let mut text = String::new();
        for part in [
            msg.contact_name.as_deref(),
            msg.button.as_deref(),
            msg.referral.as_deref(),
            Some(msg.content_type.as_str()),
            msg.from.as_deref(),
        ]
        .into_iter()
        .flatten()
        {
            push_words(&mut text, part);
        }
        push_words(&mut text, &msg.text);
        for err in &msg.errors {
            push_error_words(&mut text, err);
        }
        let mut exact = vec![msg.wamid.clone()];
        exact.extend(msg.from.iter().cloned());
        exact.extend(msg.user_id.iter().cloned());
        exact.extend(msg.username.iter().cloned());
        if let Some(change) = &msg.identity_change {
            for id in [
                &change.wa_id,
                &change.new_wa_id,
                &change.user_id,
                &change.new_user_id,
            ]
            .into_iter()
            .flatten()
            {
                exact.push(id.clone());
                push_identifier_words(&mut text, id);
            }
        }
        for id in [&msg.user_id, &msg.username].into_iter().flatten() {
            push_identifier_words(&mut text, id);
        }
        Some(TextDoc {
            entry: id,
            text,
            exact,
            later_texts: Vec::new(),
        })
    }

    fn apply_other(
        &mut self,
        id: EntryId,
        other: &OtherEvent,
        received_ms: i64,
    ) -> Option<TextDoc> {
        let i = &mut self.interner;
        let row = self.rows.get_mut(id.0);
        row.category = i.intern(&other.field);
        row.name = i.intern_opt(other.account.as_deref());
        row.template = i.intern_opt(other.template.as_deref());
        row.language = i.intern_opt(other.language.as_deref());
        row.event_from = i.intern_opt(other.from.as_deref());
        row.event_to = i.intern_opt(other.to.as_deref());
        row.event_reason = i.intern_opt(other.reason.as_deref());
        row.phone_number_id = i.intern_opt(other.phone_number_id.as_deref());
        // A preference is about a person: the entry is theirs.
        row.phone = i.intern_opt(other.wa_id.as_deref());
        row.wa_id = row.phone;
        row.user_id = i.intern_opt(other.user_id.as_deref());
        row.preference = other.preference;
        row.contact_name = i.intern_opt(other.name.as_deref());
        row.content_type = i.intern("event");
        row.own.set(Own::Text, Some(preview(&other.summary)));
        if let Some(err) = &other.error {
            row.error_code = OptI64::new(err.code);
            row.error_title = i.intern_opt(err.title.as_deref().or(err.message.as_deref()));
        }
        self.others.insert(other_fingerprint(other, received_ms));
        let mut text = String::new();
        push_words(&mut text, &other.field);
        push_words(&mut text, &other.summary);
        push_words(&mut text, &other.text);
        let mut exact: Vec<String> = other.account.iter().cloned().collect();
        exact.extend(other.wa_id.iter().cloned());
        exact.extend(other.user_id.iter().cloned());
        Some(TextDoc {
            entry: id,
            text,
            exact,
            later_texts: Vec::new(),
        })
    }

    /// Records that `reply` answers `target` (its `context.id`), and copies
    /// the campaign context onto the reply so per-campaign reports see it.
    fn link_reply(&mut self, reply: EntryId, target: EntryId) {
        let t = self.rows.get_mut(target.0);
        if t.purged {
            return;
        }
        let campaign = t.campaign();
        let is_click = self.rows.get_mut(reply.0).button != 0;
        let before_t = Some(self.rows.get_mut(target.0).index_keys());
        {
            let t = self.rows.get_mut(target.0);
            if is_click {
                t.clicks += 1;
            } else {
                t.replies += 1;
            }
        }
        let after_t = Some(self.rows.get_mut(target.0).index_keys());
        self.reindex(target, before_t, after_t);
        self.replies.entry(target).or_default().push(reply);
        let r = self.rows.get_mut(reply.0);
        r.in_reply_to = Some(target);
        // The caller reindexes the reply itself after this returns; when the
        // link is resolved late, `resolve_pending_replies` does it.
        r.set_campaign(campaign);
    }

    /// Copies entry `target`'s campaign context again onto the replies
    /// linked to it (as `link_reply` did when it linked them).
    fn recopy_to_replies(&mut self, target: EntryId) {
        let Some(replies) = self.replies.get(&target).cloned() else {
            return;
        };
        let context = self.rows.get_mut(target.0).campaign();
        for reply in replies {
            let r = self.rows.get_mut(reply.0);
            if r.purged || r.campaign() == context {
                continue;
            }
            let before = Some(r.index_keys());
            r.set_campaign(context);
            let after = Some(self.rows.get_mut(reply.0).index_keys());
            self.reindex(reply, before, after);
        }
    }

    /// Infers again what the unquoted replies of entry `id`'s person
    /// answer: all of them when two people were found to be one; after a
    /// send, those its time could change (from the send to a window after
    /// it); after a reply, that reply.
    fn reattribute(&mut self, id: EntryId, joined: bool, inbound: bool) {
        let Some(root) = self.contacts.contact_of_entry(id) else {
            return;
        };
        if !joined && inbound {
            if self.unquoted.contains(id.0) {
                self.infer_reply(id, root);
            }
            return;
        }
        let at = self.rows.recorded_ms(id.0);
        let window = self.attribution_window_ms;
        // The person's entries are walked with a membership test each, not
        // intersected as bitmaps: `unquoted` has thousands of ids in each
        // of its containers, and merging those for every send was 2% of an
        // import's CPU (perf, 1M messages).
        let replies: Vec<u32> = self
            .contacts
            .entry_list(root)
            .filter(|e| self.unquoted.contains(*e))
            .filter(|e| {
                let t = self.rows.recorded_ms(*e);
                joined || (t >= at && t - at <= window)
            })
            .collect();
        for reply in replies {
            self.infer_reply(EntryId(reply), root);
        }
    }

    /// Ties an unquoted reply to the latest message the business sent the
    /// same person (contact `root`) from the same number before it, within
    /// the attribution window; unties it when there is none. Ties between
    /// two messages of the same millisecond go to the later entry id.
    fn infer_reply(&mut self, reply: EntryId, root: u32) {
        if !self.live.contains(reply.0) {
            return;
        }
        let best = match self.bitmap(Field::Direction, Direction::Outbound as i64) {
            Some(outbound) if self.attribution_window_ms > 0 => {
                let at = self.rows.recorded_ms(reply.0);
                let pnids = self.columns.column(Field::PhoneNumberId.slot());
                let pnid = pnids.code(reply.0);
                self.contacts
                    .entry_list(root)
                    .filter(|o| {
                        outbound.contains(*o) && self.live.contains(*o) && pnids.code(*o) == pnid
                    })
                    .map(|o| (self.rows.recorded_ms(o), o))
                    .filter(|(t, _)| *t <= at && at - *t <= self.attribution_window_ms)
                    .max()
                    .map(|(_, o)| EntryId(o))
            }
            _ => None,
        };
        // What it answers now, without reading its row (most calls change
        // nothing).
        let current = self.inferred.get(&reply.0).map(|t| EntryId(*t));
        if current == best {
            return;
        }
        let before = Some(self.rows.get_mut(reply.0).index_keys());
        if current.is_some() {
            self.unlink_reply(reply);
            self.inferred.remove(&reply.0);
        }
        if let Some(target) = best {
            self.link_reply(reply, target);
            self.inferred.insert(reply.0, target.0);
        }
        let after = Some(self.rows.get_mut(reply.0).index_keys());
        self.reindex(reply, before, after);
    }

    /// Unties a reply from the message it answered: the message stops
    /// counting it, and the reply loses that message's campaign. The
    /// caller reindexes the reply.
    fn unlink_reply(&mut self, reply: EntryId) {
        let r = self.rows.get_mut(reply.0);
        let Some(target) = r.forget_answered() else {
            return;
        };
        let is_click = r.button != 0;
        self.uncount_reply(reply, target, is_click);
    }

    /// The message `target` stops counting `reply` (a reply or a click).
    fn uncount_reply(&mut self, reply: EntryId, target: EntryId, is_click: bool) {
        if (target.0 as usize) < self.rows.len() && !self.rows.get_mut(target.0).purged {
            let before = Some(self.rows.get_mut(target.0).index_keys());
            let t = self.rows.get_mut(target.0);
            if is_click {
                t.clicks = t.clicks.saturating_sub(1);
            } else {
                t.replies = t.replies.saturating_sub(1);
            }
            let after = Some(self.rows.get_mut(target.0).index_keys());
            self.reindex(target, before, after);
        }
        if let Some(list) = self.replies.get_mut(&target) {
            list.retain(|r| *r != reply);
            if list.is_empty() {
                self.replies.remove(&target);
            }
        }
    }

    fn resolve_pending_replies(&mut self, target: EntryId) {
        let Some(wamid) = self.rows.get_mut(target.0).own.get(Own::Wamid) else {
            return;
        };
        if let Some(replies) = self.pending_replies.remove(wamid) {
            self.link_waiting(replies, target);
        }
    }

    /// Links the replies and clicks waiting for `key` (a wamid, or a
    /// [`tracking_key`]) to `target`.
    fn resolve_pending(&mut self, key: &str, target: EntryId) {
        if let Some(replies) = self.pending_replies.remove(key) {
            self.link_waiting(replies, target);
        }
    }

    /// Links replies and clicks that waited for `target` to it.
    fn link_waiting(&mut self, replies: Vec<EntryId>, target: EntryId) {
        for reply in replies {
            if self.rows.get_mut(reply.0).purged {
                continue;
            }
            let before = Some(self.rows.get_mut(reply.0).index_keys());
            self.link_reply(reply, target);
            let after = Some(self.rows.get_mut(reply.0).index_keys());
            self.reindex(reply, before, after);
        }
    }

    /// Whether entry `id`'s 24 h window is open, read from its key column:
    /// deciding it decodes no sealed row (only a change does).
    fn session_open(&self, id: u32) -> bool {
        let column = self.columns.column(Field::Session.slot());
        column.keys().get(column.code(id) as usize) == Some(&(Session::Open as i64))
    }

    /// Sets the session flag of an outbound entry from the inbound messages
    /// known now, and remembers the entry for inbound messages learned later.
    /// `was` is the entry's (phone number id, customer) before this event.
    fn track_session(&mut self, id: EntryId, was: (Sym, Sym)) {
        let row = self.rows.get_mut(id.0);
        let pair = (row.phone_number_id, row.customer());
        if was != pair && was.1 != 0 {
            self.outbound_by_pair.remove(was, id.0);
        }
        if pair.1 == 0 {
            return;
        }
        let t = row.recorded_ms;
        let open = self.inbound_times.get(&pair).is_some_and(|times| {
            let pos = times.partition_point(|&x| x <= t);
            pos > 0 && t - times[pos - 1] <= SESSION_WINDOW_MS
        });
        self.rows.get_mut(id.0).session = Some(if open { Session::Open } else { Session::Closed });
        self.outbound_by_pair.push(pair, id.0);
    }

    /// Undoes what entry `id` did to other entries, as a replay of the log
    /// after its records are erased would never have done it: a reply stops
    /// counting on the message it answers; the replies to a message stop
    /// pointing at it (and lose its campaign); an inbound message stops
    /// keeping the customer's 24 h window open.
    fn forget_links(&mut self, id: EntryId) {
        let row = self.rows.get_mut(id.0);
        let (direction, pair, at_ms, is_click) = (
            row.direction,
            (row.phone_number_id, row.customer()),
            row.recorded_ms,
            row.button != 0,
        );
        if let Some(target) = row.in_reply_to {
            self.uncount_reply(id, target, is_click);
        }
        if let Some(replies) = self.replies.remove(&id) {
            let wamid = self
                .rows
                .get_mut(id.0)
                .own
                .get(Own::Wamid)
                .map(Box::<str>::from);
            for reply in replies {
                if self.rows.get_mut(reply.0).purged {
                    continue;
                }
                let before = Some(self.rows.get_mut(reply.0).index_keys());
                let r = self.rows.get_mut(reply.0);
                // Every reply listed under `id` answers `id`.
                let _ = r.forget_answered();
                let quoted = r.quoted;
                let after = Some(self.rows.get_mut(reply.0).index_keys());
                self.reindex(reply, before, after);
                // An inferred reply is inferred again once the purge is
                // applied (`purge_contacts`); a quoted one waits for the
                // message it quotes, as on a replay.
                if !quoted {
                    self.inferred.remove(&reply.0);
                    continue;
                }
                if let Some(w) = &wamid {
                    self.pending_replies
                        .entry(w.clone())
                        .or_default()
                        .push(reply);
                }
            }
        }
        if direction == Direction::Inbound && pair.1 != 0 {
            let Some(times) = self.inbound_times.get_mut(&pair) else {
                return;
            };
            if let Some(pos) = times.iter().position(|t| *t == at_ms) {
                times.remove(pos);
            }
            let times = times.clone();
            let outbound: Vec<EntryId> = self.outbound_by_pair.list(pair).map(EntryId).collect();
            for out in outbound {
                if !self.live.contains(out.0) || !self.session_open(out.0) {
                    continue;
                }
                let t = self.rows.recorded_ms(out.0);
                let pos = times.partition_point(|&x| x <= t);
                let still_open = pos > 0 && t - times[pos - 1] <= SESSION_WINDOW_MS;
                if !still_open {
                    let before = Some(self.rows.get_mut(out.0).index_keys());
                    self.rows.get_mut(out.0).session = Some(Session::Closed);
                    let after = Some(self.rows.get_mut(out.0).index_keys());
                    self.reindex(out, before, after);
                }
            }
        }
    }

    /// Removes entries from every index and forgets their content. Their ids
    /// stay taken.
    pub(crate) fn purge(&mut self, ids: &RoaringBitmap) {
        let mut candidates = FxHashSet::default();
        for id in ids.iter() {
            if !self.live.contains(id) {
                continue;
            }
            let before = Some(self.rows.get_mut(id).index_keys());
            self.reindex(EntryId(id), before, None);
            if let Some(w) = self.rows.get_mut(id).own.get(Own::Wamid) {
                let w = w.to_string();
                let rows = &self.rows;
                self.wamids.remove(&w, |id, w| wamid_is(rows, id, w));
                self.pending_replies.remove(w.as_str());
            }
            // After the wamid's pending list is dropped: the replies this
            // entry had wait for its wamid again, as on a replay.
            self.forget_links(EntryId(id));
            let row = self.rows.get_mut(id);
            candidates.extend(row.syms().into_iter().filter(|s| *s != 0));
            let direction = row.direction;
            let pair = (row.phone_number_id, row.customer());
            *row = Row::new(direction, 0);
            row.purged = true;
            // The session maps forget it too, as a replay would never
            // have known it (and they must not keep its phone).
            self.outbound_by_pair.remove(pair, id);
            if self.inbound_times.get(&pair).is_some_and(Vec::is_empty) {
                self.inbound_times.remove(&pair);
            }
        }
        self.purged_strings.extend(candidates);
        self.member_statuses.retain(|id, _| !ids.contains(*id));
        self.tracked.retain(|_, id| !ids.contains(*id));
        self.purge_contacts(ids);
        // Sealed blocks still hold the purged rows' old content: written
        // anew now, not at the next resealing.
        self.rows.reseal_changed();
    }

    /// Rebuilds the contacts the purged entries were in from their other
    /// entries alone, so that an identifier or a join only a purged entry
    /// taught is forgotten with it (as a replay of what is left would).
    fn purge_contacts(&mut self, ids: &RoaringBitmap) {
        let mut affected = RoaringBitmap::new();
        let mut roots = FxHashSet::default();
        for id in ids.iter() {
            if let Some(root) = self.contacts.contact_of_entry(EntryId(id)) {
                if roots.insert(root) {
                    affected |= self.contacts.entries(root);
                }
            }
        }
        for root in roots {
            self.contacts.forget(root);
        }
        affected -= ids;
        self.unquoted -= ids;
        for id in ids.iter() {
            self.inferred.remove(&id);
        }
        for id in affected.iter() {
            if self.live.contains(id) {
                let (idents, n) = self.rows.get_mut(id).idents();
                self.contacts.observe(EntryId(id), &idents[..n]);
            }
        }
        // What the purged messages answered for is inferred again from the
        // messages left.
        for id in (&affected & &self.unquoted).iter() {
            if let Some(root) = self.contacts.contact_of_entry(EntryId(id)) {
                self.infer_reply(EntryId(id), root);
            }
        }
    }

    /// Those of the strings purged entries used that no live entry refers
    /// to any more: what [`State::forget_strings`] blanks, so that a purged
    /// entry's phone, name or error title outlives it neither in memory nor
    /// in a checkpoint. Reads every live row (one read and decompression
    /// per sealed block: seconds at 10M entries), so the purge's erasure
    /// calls it under the read lock, where queries go on.
    pub(crate) fn unused_purged_strings(&self) -> Vec<Sym> {
        let mut candidates = self.purged_strings.clone();
        if candidates.is_empty() {
            return Vec::new();
        }
        self.rows.for_each(self.live.iter(), |_, row| {
            for sym in row.syms() {
                candidates.remove(&sym);
            }
        });
        // Strings other maps hold as keys are still in use.
        for sym in self.contacts.syms() {
            candidates.remove(&sym);
        }
        for (pnid, phone) in self
            .inbound_times
            .keys()
            .chain(self.outbound_by_pair.newest.keys())
        {
            candidates.remove(pnid);
            candidates.remove(phone);
        }
        candidates.into_iter().collect()
    }

    /// Blanks `unused` (from [`State::unused_purged_strings`], with no
    /// record applied since) and forgets the purged entries' strings.
    pub(crate) fn forget_strings(&mut self, unused: &[Sym]) {
        for sym in unused {
            self.interner.forget(*sym);
        }
        self.purged_strings.clear();
    }

    /// Whether a purge left strings to check (see `unused_purged_strings`).
    pub(crate) fn has_purged_strings(&self) -> bool {
        !self.purged_strings.is_empty()
    }

    /// Estimated heap bytes of each part, for the log at open and for
    /// finding where memory goes.
    pub(crate) fn heap_report(&self) -> Vec<(&'static str, usize)> {
        fn vecs<K, T>(map: &FxHashMap<K, Vec<T>>) -> usize {
            map.capacity() * (std::mem::size_of::<(K, Vec<T>)>() + 1)
                + map
                    .values()
                    .map(|v| v.capacity() * std::mem::size_of::<T>() + 16)
                    .sum::<usize>()
        }
        let bitmaps: usize = self
            .indexes
            .iter()
            .flat_map(|index| index.values())
            .map(|bm| bm.serialized_size() + 48)
            .sum();
        vec![
            ("rows", self.rows.heap_bytes()),
            ("strings", self.interner.heap_bytes()),
            ("bitmaps", bitmaps + self.live.serialized_size()),
            ("key columns", self.columns.heap_bytes()),
            ("wamid index", self.wamids.capacity() * 9),
            (
                "dedup maps",
                self.fingerprints.capacity() * 13
                    + self.others.capacity() * 9
                    + self.member_statuses.capacity() * 28,
            ),
            ("inbound times", vecs(&self.inbound_times)),
            (
                "outbound by pair",
                self.outbound_by_pair.newest.capacity() * 13
                    + self.outbound_by_pair.previous.capacity() * 4,
            ),
            ("replies", vecs(&self.replies)),
            ("contacts", self.contacts.heap_bytes()),
        ]
    }

    /// The checkpoint of this state. Cheap to take under the read lock:
    /// sealed blocks are shared, not copied; the rest is maps and columns.
    pub(crate) fn to_checkpoint(&self) -> StateCheckpoint {
        let (wamid_seed, wamid_slots) = self.wamids.save();
        StateCheckpoint {
            head: CheckpointHead {
                applied: self.applied,
                rows: self.rows.len() as u64,
                strings: self.interner.save(),
                fingerprints: self.fingerprints.iter().map(|(k, v)| (*k, *v)).collect(),
                others: self.others.iter().copied().collect(),
                member_statuses: self
                    .member_statuses
                    .iter()
                    .flat_map(|(id, keys)| keys.iter().map(move |k| (*id, *k)))
                    .collect(),
                tracked: self.tracked.iter().map(|(k, v)| (*k, *v)).collect(),
                pending_replies: self
                    .pending_replies
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                attribution_window_ms: self.attribution_window_ms,
                unquoted: {
                    let mut bytes = Vec::with_capacity(self.unquoted.serialized_size());
                    // Writing into a Vec cannot fail.
                    let _ = self.unquoted.serialize_into(&mut bytes);
                    RawBytes(bytes)
                },
            },
            rows: self.rows.parts(),
            indexes: SavedIndexes::save(self),
            lookups: SavedLookups {
                wamid_seed,
                wamid_slots: RawBytes(wamid_slots),
                inbound_times: self
                    .inbound_times
                    .iter()
                    .map(|(k, v)| (*k, v.clone()))
                    .collect(),
                outbound_newest: self
                    .outbound_by_pair
                    .newest
                    .iter()
                    .map(|(k, v)| (*k, *v))
                    .collect(),
                outbound_previous: RawBytes::from_u32s(&self.outbound_by_pair.previous),
                replies: self.replies.iter().map(|(k, v)| (*k, v.clone())).collect(),
                contacts: self.contacts.save(),
                inferred: self.inferred.iter().map(|(k, v)| (*k, *v)).collect(),
            },
        }
    }

    /// The state a checkpoint holds, and whether its saved bitmaps and key
    /// columns were used (else they were rebuilt from the rows). `None`
    /// when its parts do not fit together.
    pub(crate) fn from_checkpoint(cp: StateCheckpoint) -> Option<(State, bool)> {
        let mut state = State::new();
        let head = cp.head;
        state.applied = head.applied;
        state.rows = Rows::from_parts(cp.rows)?;
        if state.rows.len() as u64 != head.rows {
            return None;
        }
        state.interner = Interner::load(head.strings)?;
        let entries = state.rows.len();
        let SavedLookups {
            wamid_seed,
            wamid_slots,
            inbound_times,
            outbound_newest,
            outbound_previous,
            replies,
            contacts,
            inferred,
        } = cp.lookups;
        let saved = cp.indexes;
        let rows = &state.rows;
        // The contacts on a thread of their own, the other lookup maps (the
        // wamid index, the session and reply maps) on another, and the
        // bitmaps and key columns here (loaded as saved, or rebuilt from the
        // rows). The contacts alone were a third of a 1M store's reopen,
        // and with the other maps on one thread, its longest part (42 of a
        // 1M store's 56 ms of CPU here).
        let (contacts, lookups, indexes) = std::thread::scope(|scope| {
            let contacts = scope.spawn(move || Contacts::load(contacts));
            let lookups = scope.spawn(move || {
                let wamids =
                    WamidIndex::load(wamid_seed, &wamid_slots.0, |id| (id as usize) < entries);
                let outbound_by_pair = OutboundByPair {
                    newest: outbound_newest.into_iter().collect(),
                    previous: outbound_previous.u32s().collect(),
                };
                (
                    wamids,
                    inbound_times.into_iter().collect::<FxHashMap<_, _>>(),
                    outbound_by_pair,
                    replies.into_iter().collect::<FxHashMap<_, _>>(),
                    inferred.into_iter().collect::<FxHashMap<_, _>>(),
                )
            });
            let indexes = match saved.and_then(|saved| saved.load(entries)) {
                Some(loaded) => (loaded, true),
                None => (Indexes::rebuild(rows), false),
            };
            (contacts.join(), lookups.join(), indexes)
        });
        let contacts = match contacts {
            Ok(contacts) => contacts,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        let (wamids, inbound_times, outbound_by_pair, replies, inferred) = match lookups {
            Ok(lookups) => lookups,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        state.wamids = wamids;
        let (indexes, loaded) = indexes;
        state.indexes = indexes.indexes;
        state.columns = indexes.columns;
        state.live = indexes.live;
        state.inbound_times = inbound_times;
        state.outbound_by_pair = outbound_by_pair;
        state.replies = replies;
        state.contacts = contacts?;
        state.inferred = inferred;
        state.fingerprints = head.fingerprints.into_iter().collect();
        state.others = head.others.into_iter().collect();
        for (id, key) in head.member_statuses {
            state.member_statuses.entry(id).or_default().push(key);
        }
        state.tracked = head.tracked.into_iter().collect();
        state.pending_replies = head.pending_replies.into_iter().collect();
        state.attribution_window_ms = head.attribution_window_ms;
        state.unquoted = RoaringBitmap::deserialize_from(&head.unquoted.0[..]).ok()?;
        Some((state, loaded))
    }
}

/// The bitmaps and key columns of a [`State`], rebuilt from its rows.
struct Indexes {
    indexes: Vec<BTreeMap<i64, RoaringBitmap>>,
    columns: KeyColumns,
    live: RoaringBitmap,
}

impl Indexes {
    fn rebuild(rows: &Rows) -> Indexes {
        // Bitmaps are built in a hash map per field and ordered once at the
        // end. `insert`, not `push`: roaring's push on a bitmap container
        // first looks for the container's maximum by scanning its words
        // from the top, which is most of them while ids ascend.
        let mut building: Vec<FxHashMap<i64, RoaringBitmap>> = vec![FxHashMap::default(); NFIELDS];
        let mut columns = KeyColumns::new(NFIELDS);
        let mut live = RoaringBitmap::new();
        rows.for_each_all(|id, row| {
            if row.purged {
                return;
            }
            for (slot, key) in row.index_keys().iter().enumerate() {
                building[slot].entry(*key).or_default().insert(id);
                columns.set(slot, id, *key);
            }
            live.insert(id);
        });
        Indexes {
            indexes: building
                .into_iter()
                .map(|bitmaps| bitmaps.into_iter().collect())
                .collect(),
            columns,
            live,
        }
    }
}

fn new_id(overlay: &mut Overlay, wamid: Option<&String>) -> EntryId {
    let id = EntryId(overlay.next_id);
    overlay.next_id += 1;
    if let Some(w) = wamid {
        overlay.wamids.insert(w.clone(), id);
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, Source, Store};

    #[test]
    fn a_groups_documents_fold_into_one_per_entry_at_its_first_record() {
        let doc = |entry: u32, text: &str, exact: &[&str]| TextDoc {
            entry: EntryId(entry),
            text: text.into(),
            exact: exact.iter().map(|e| e.to_string()).collect(),
            later_texts: Vec::new(),
        };
        let mut group = vec![
            (
                Seq(10),
                vec![doc(1, "pedido confirmado", &["wamid.1", "5511"])],
            ),
            (
                Seq(11),
                vec![doc(2, "boleto", &["wamid.2"]), doc(2, "", &["conv2"])],
            ),
            (
                Seq(12),
                vec![doc(1, "", &["conv1", "5511"]), doc(3, "oi", &[])],
            ),
        ];
        coalesce_docs(&mut group);
        assert_eq!(
            group,
            vec![
                (
                    Seq(10),
                    vec![doc(1, "pedido confirmado", &["wamid.1", "5511", "conv1"])]
                ),
                (Seq(11), vec![doc(2, "boleto", &["wamid.2", "conv2"])]),
                (Seq(12), vec![doc(3, "oi", &[])]),
            ],
            "a later record's document joins its entry's first; ids are not repeated"
        );
        let mut texts = vec![
            (Seq(1), vec![doc(4, "primeira", &[])]),
            (Seq(2), vec![doc(4, "segunda", &[])]),
        ];
        coalesce_docs(&mut texts);
        let mut both = doc(4, "primeira", &[]);
        both.later_texts = vec!["segunda".into()];
        assert_eq!(
            texts[0].1,
            vec![both],
            "each record's text stays a value of its own"
        );
        assert!(texts[1].1.is_empty());
    }

    /// Sends, statuses (some failed), replies and clicks to some of them,
    /// over a few campaigns, phones and days.
    fn traffic(n: u32) -> Vec<Input> {
        let input = |events: Vec<Event>| Input {
            source: Source::Webhook,
            received_ms: 0,
            raw: b"{}".to_vec(),
            events,
        };
        let mut inputs = Vec::new();
        for i in 0..n {
            let at = 1_700_000_000_000 + i64::from(i) * 3_600_000;
            let phone = format!("5511{:08}", i % 7);
            inputs.push(input(vec![Event::Send(Box::new(SendEvent {
                recorded_ms: at,
                wamid: Some(format!("wamid.{i}")),
                response_code: Some(200),
                outcome: Some(SendOutcome::Accepted),
                name: Some(format!("Campaign {}", i % 4)),
                category: Some("marketing_campaign".into()),
                phone: Some(phone.clone()),
                phone_number_id: Some("1".into()),
                text: format!("offer {i}"),
                ..Default::default()
            }))]));
            let status = if i % 5 == 0 {
                WebhookStatus::Failed
            } else {
                WebhookStatus::Read
            };
            inputs.push(input(vec![Event::Status(Box::new(StatusEvent {
                wamid: format!("wamid.{i}"),
                status,
                at_ms: at + 60_000,
                recipient: Some(phone.clone()),
                user_id: None,
                parent_user_id: None,
                participant: None,
                phone_number_id: Some("1".into()),
                correlation_id: None,
                conversation_id: Some(format!("conv{i}")),
                conversation_type: Some("marketing".into()),
                conversation_expiry_ms: Some(at + 86_400_000),
                pricing_category: Some("marketing".into()),
                pricing_model: None,
                pricing_type: None,
                billable: Some(true),
                errors: if status == WebhookStatus::Failed {
                    vec![MetaError {
                        code: Some(131_049),
                        ..Default::default()
                    }]
                } else {
                    Vec::new()
                },
            }))]));
            if i % 3 == 0 {
                inputs.push(input(vec![Event::Inbound(Box::new(InboundEvent {
                    wamid: format!("wamid.in.{i}"),
                    from: Some(phone),
                    phone_number_id: Some("1".into()),
                    at_ms: at + 120_000,
                    content_type: if i % 2 == 0 { "button" } else { "text" }.into(),
                    text: "quero".into(),
                    context_wamid: Some(format!("wamid.{i}")),
                    button: (i % 2 == 0).then(|| "QUERO".into()),
                    ..Default::default()
                }))]));
            }
        }
        inputs
    }

    #[test]
    fn outbound_lists_keep_each_entry_once_newest_first_and_unlink_anywhere() {
        let mut lists = OutboundByPair::default();
        let (a, b) = ((1, 10), (1, 11));
        for id in [3, 5, 9, 12] {
            lists.push(a, id);
        }
        lists.push(b, 7);
        lists.push(a, 5);
        let of = |l: &OutboundByPair, p| l.list(p).collect::<Vec<u32>>();
        assert_eq!(of(&lists, a), vec![12, 9, 5, 3], "newest first, 5 once");
        lists.remove(a, 9);
        assert_eq!(of(&lists, a), vec![12, 5, 3], "from the middle");
        lists.remove(a, 12);
        lists.remove(a, 3);
        assert_eq!(of(&lists, a), vec![5], "the head and the tail");
        lists.remove(b, 5);
        assert_eq!(of(&lists, a), vec![5], "not in that pair's list: untouched");
        lists.remove(a, 5);
        assert!(of(&lists, a).is_empty() && !lists.newest.contains_key(&a));
        lists.push(a, 9);
        assert_eq!(
            (of(&lists, a), of(&lists, b)),
            (vec![9], vec![7]),
            "listed again"
        );
    }

    /// The two ways an open gets its bitmaps and key columns, loading the
    /// saved ones or rebuilding them from the rows, give the same indexes,
    /// also with purged entries (whose codes are zeroed in the saved ones).
    #[test]
    fn saved_indexes_load_to_what_a_rebuild_from_the_rows_gives() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(Config::new(dir.path())).expect("open");
        store.append(traffic(120)).expect("append");
        let doomed: RoaringBitmap = store.snapshot().live().iter().step_by(11).collect();
        store
            .purge(&doomed, "test", "some", None, true)
            .expect("purge");
        let (loaded, used_saved) =
            State::from_checkpoint(store.state_for_test().to_checkpoint()).expect("fits");
        assert!(used_saved);
        let mut cp = store.state_for_test().to_checkpoint();
        cp.indexes = None;
        let (rebuilt, used_saved) = State::from_checkpoint(cp).expect("fits");
        assert!(!used_saved);
        assert!(loaded.live.len() > 100 && !loaded.live.contains(doomed.min().expect("some")));
        assert_eq!(loaded.live, rebuilt.live);
        assert_eq!(loaded.indexes, rebuilt.indexes);
        let key = |state: &State, slot: usize, id: u32| {
            let column = state.columns.column(slot);
            column.keys()[column.code(id) as usize]
        };
        for id in loaded.live.iter() {
            for slot in 0..NFIELDS {
                assert_eq!(
                    key(&loaded, slot, id),
                    key(&rebuilt, slot, id),
                    "{slot} of {id}"
                );
            }
        }
        store.close().expect("close");
    }
}
