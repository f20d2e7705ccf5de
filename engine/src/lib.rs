//! The Ticks storage engine: an append-only log of everything that reaches
//! Ticks, and the indexes derived from it.
//!
//! # What it does
//! Every input (a send result, a webhook body, an import line) is appended to
//! a sled log under a strictly increasing [`Seq`], with its raw bytes and the
//! [`Event`]s parsed from it. From the log the engine derives, and can always
//! rebuild:
//! - one row per message ([`Entry`]): its columns and its current [`Status`],
//!   derived from all its status events by rank ([`derive_status`]);
//! - roaring bitmaps from each value of each [`Field`] to the entries that
//!   have it, which filters, counts and group-bys combine without scanning;
//! - their transpose, a key column per field ([`Snapshot::column`]): each
//!   entry's value as a small code, which scans (the report of a campaign)
//!   read instead of the rows;
//! - a tantivy full-text index over names, texts, parameters, errors, phones
//!   and ids ([`Store::text_search`]).
//!
//! Beside the log, the [`templates`] catalog keeps every version of every
//! message template Ticks was shown; a templated send's text is rendered
//! from it and the send's parameters when the send is read or indexed.
//!
//! # What it does not do
//! Parsing JSON is `ticks-ingest`'s job; the query language (filters, sort,
//! paging) is `ticks-query`'s. The engine takes parsed [`Input`]s and offers
//! bitmaps, rows and text search through a [`Snapshot`].
//!
//! # Example
//! ```
//! # fn main() -> Result<(), ticks_engine::Error> {
//! use ticks_engine::{Config, Event, Field, Input, Key, Source, Status, StatusEvent, Store, WebhookStatus};
//! let dir = tempfile::tempdir().map_err(|e| ticks_engine::Error::Invalid(e.to_string()))?;
//! let store = Store::open(Config::new(dir.path()))?;
//! let status = StatusEvent {
//!     wamid: "wamid.A".into(), status: WebhookStatus::Delivered, at_ms: 1_700_000_000_000,
//!     recipient: Some("5511999990000".into()), phone_number_id: None, correlation_id: None,
//!     user_id: None, parent_user_id: None, participant: None,
//!     conversation_id: None, conversation_type: None, conversation_expiry_ms: None,
//!     pricing_category: None, pricing_model: None, pricing_type: None, billable: None,
//!     errors: vec![],
//! };
//! let input = Input { source: Source::Webhook, received_ms: 0, raw: b"{}".to_vec(),
//!                     events: vec![Event::Status(Box::new(status))] };
//! let outcome = store.append_one(input.clone())?;
//! assert_eq!(outcome.stored, 1);
//! assert!(store.append_one(input)?.is_duplicate());
//! let delivered = store.snapshot().bitmap(Field::Status, Key::status(Status::Delivered)).map(|b| b.len());
//! assert_eq!(delivered, Some(1));
//! store.close()?;
//! # Ok(()) }
//! ```
//!
//! # Durability
//! [`Store::append`] returns only after the record is on disk (sled flush =
//! fsync). One writer thread takes every append; appends that arrive while a
//! flush runs form the next group and share one flush (group commit). After
//! `kill -9`, every acknowledged append is in the log, and the derived state
//! is rebuilt from the log on open, so nothing is half-applied.
//!
//! # Format
//! Log records carry [`FORMAT_VERSION`]; the byte layout is in the `log`
//! module and `FORMAT.md`. They are stored a few at a time, in blocks
//! of consecutive sequence numbers under one sled key (the `blocks`
//! module): one key per record made sled's page table the largest part of
//! the memory of a large store. Each block is compressed whole (zstd, with
//! a built-in dictionary) and encrypted once with its period's key, kept in
//! the data directory's `keyring`. Derived state (checkpoint file, full-text index)
//! is disposable: [`drop_derived`] removes it and the next open rebuilds it
//! from the log. The checkpoint (the `checkpoint` module) holds the rows,
//! the bitmaps and the key columns, so that an open loads them and replays
//! only the log records after it ([`StoreStats::derived_from`] says which
//! happened).
//!
//! # Deletion
//! [`Store::purge`] appends a purge record (never content), removes the
//! entries from every index at once, then erases their content from disk:
//! the log periods that held it are re-keyed and their old keys destroyed,
//! the text index merged, the checkpoint rewritten (the `keys` and `erase`
//! modules explain why keys: sled keeps freed bytes). A purge interrupted by
//! a crash is finished by the next open.

pub mod country;
mod error;
mod log;
mod model;
mod phone;
mod state;
mod store;
pub mod templates;
mod text;

pub use error::{Error, Result};
pub use log::{train_dictionary, InputRecord, PurgeRecord, Record, FORMAT_VERSION};
pub use model::{
    derive_status, AppendOutcome, Attribution, Direction, Engagement, EntryId, Event,
    IdentityChange, InboundEvent, Input, MetaError, Origin, OtherEvent, Preference, Reached,
    SendEvent, SendOutcome, Seq, Session, Source, Status, StatusEvent, StatusMark, TemplateParam,
    WebhookStatus, MARKETING_STOPPED,
};
pub use phone::{is_user_id, normalize_phone, normalize_username, number_variants};
pub use state::{Field, Key, Value};
pub use store::{
    drop_derived, entry_key, redact_input, sort_rank, AppendCallback, Config, Contact,
    ContactCounts, Derivation, DerivedFrom, Entry, EntryDetail, FieldValue, Identifiers, KeyBook,
    KeyColumn, Marketing, PendingAppend, PreferenceChange, Snapshot, Store, StoreStats,
    StoredInput, TemplatesAdded, TextColumn, Timeline, TimelineItem, WriteHealth,
};
pub use text::{in_a_row, text_clauses, tokens, words_of, TextClause};
