//! People as the read view finds them: an identifier typed as a person
//! would (a number in any format, a business-scoped user id, `@username`)
//! resolved to the contacts it names, and a contact's card.

use super::snapshot::Snapshot;
use crate::model::{Direction, EntryId, Preference, MARKETING_STOPPED};
use crate::phone::{is_user_id, normalize_phone, normalize_username, number_variants};
use crate::state::contacts::{IdKind, Ident};
use crate::state::Key;
use roaring::RoaringBitmap;
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::collections::BTreeSet;

/// A person: every identifier the store learned for them, and their
/// messages at a glance (`GET /v1/contacts/{X}`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Contact {
    /// Their identifiers, each kind sorted.
    pub identifiers: Identifiers,
    /// The profile name of their newest entry that has one.
    pub name: Option<String>,
    /// `recorded_at` of their first and last entries, UTC milliseconds.
    pub first_seen_ms: i64,
    /// See `first_seen_ms`.
    pub last_seen_ms: i64,
    /// Entries by direction.
    pub counts: ContactCounts,
    /// Whether they take marketing messages, and every change.
    pub marketing: Marketing,
    /// Their entries.
    #[serde(skip)]
    pub entries: RoaringBitmap,
}

/// A contact's identifiers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Identifiers {
    /// Numbers dialled or seen as `recipient_id` / `from`, digits only.
    pub phones: Vec<String>,
    /// WhatsApp ids (`wa_id`) Meta answered with.
    pub wa_ids: Vec<String>,
    /// Business-scoped user ids, parent ids included.
    pub user_ids: Vec<String>,
    /// Usernames.
    pub usernames: Vec<String>,
}

/// A person's marketing preference: the latest change decides.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Marketing {
    /// They stopped marketing messages and did not resume.
    pub opted_out: bool,
    /// Every change, oldest first.
    pub history: Vec<PreferenceChange>,
}

/// One change of a person's marketing preference.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PreferenceChange {
    /// `stop` or `resume`.
    pub value: &'static str,
    /// When, UTC milliseconds.
    pub at_ms: i64,
    /// What said so: `user_preferences`, or `error 131050`.
    pub source: &'static str,
    /// The entry that says so.
    pub entry: EntryId,
}

/// A contact's entries by direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ContactCounts {
    /// Messages sent to them.
    pub outbound: u64,
    /// Messages they sent.
    pub inbound: u64,
}

impl Snapshot<'_> {
    /// The identifiers a typed value may stand for: exactly what it names
    /// first, then (for a mobile number) its other forms.
    fn typed_idents(&self, typed: &str) -> (Vec<Ident>, Vec<Ident>) {
        let typed = typed.trim();
        let interner = &self.state.interner;
        let ident = |kind: IdKind, text: &str| interner.get(text).map(|s| (kind, s));
        let mut exact = Vec::new();
        let mut candidates = Vec::new();
        if let Some(name) = typed.strip_prefix('@') {
            exact.extend(ident(IdKind::Username, &normalize_username(name)));
        } else if is_user_id(typed) {
            exact.extend(ident(IdKind::UserId, typed));
        } else {
            let digits = normalize_phone(typed);
            exact.extend(ident(IdKind::Phone, &digits));
            if digits == typed || digits.bytes().all(|b| b.is_ascii_digit()) {
                for variant in number_variants(&digits) {
                    candidates.extend(ident(IdKind::Phone, &variant));
                }
            }
            // A format Ticks does not know: it may be any kind, as written.
            if !digits.bytes().all(|b| b.is_ascii_digit()) {
                exact.extend(ident(IdKind::UserId, typed));
                exact.extend(ident(IdKind::Username, &normalize_username(typed)));
            }
        }
        (exact, candidates)
    }

    /// The entries of every person the typed identifier names, in both
    /// directions, and of the people its number's other forms name (a
    /// Brazilian number with or without its ninth digit): a search tries
    /// them, the contacts stay apart.
    pub fn contact_entries(&self, typed: &str) -> RoaringBitmap {
        let (exact, candidates) = self.typed_idents(typed);
        let contacts = &self.state.contacts;
        let mut out = RoaringBitmap::new();
        let mut roots = BTreeSet::new();
        for ident in exact.into_iter().chain(candidates) {
            if let Some(root) = contacts.contact_of(ident) {
                if roots.insert(root) {
                    out |= contacts.entries(root);
                }
            }
        }
        out &= &self.state.live;
        out
    }

    /// The person the typed identifier names (or, when it names none, the
    /// person one of its number's other forms names), with their card.
    pub fn contact(&self, typed: &str) -> Option<Contact> {
        let (exact, candidates) = self.typed_idents(typed);
        let contacts = &self.state.contacts;
        let root = exact
            .into_iter()
            .chain(candidates)
            .find_map(|ident| contacts.contact_of(ident))?;
        let entries = contacts.entries(root) & &self.state.live;
        if entries.is_empty() {
            return None;
        }
        let interner = &self.state.interner;
        let mut ids: [BTreeSet<String>; 4] = Default::default();
        let mut card = Contact {
            first_seen_ms: i64::MAX,
            last_seen_ms: i64::MIN,
            ..Contact::default()
        };
        let mut newest_named = i64::MIN;
        self.state.rows.for_each(entries.iter(), |id, row| {
            if row.purged {
                return;
            }
            let text = |s| (s != 0).then(|| interner.resolve(s).to_string());
            ids[0].extend(text(row.phone));
            ids[1].extend(text(row.wa_id));
            for u in [row.user_id, row.parent_user_id, row.new_user_id] {
                ids[2].extend(text(u));
            }
            ids[3].extend(text(row.username));
            card.first_seen_ms = card.first_seen_ms.min(row.recorded_ms);
            card.last_seen_ms = card.last_seen_ms.max(row.recorded_ms);
            match row.direction {
                Direction::Outbound => card.counts.outbound += 1,
                Direction::Inbound => card.counts.inbound += 1,
                Direction::Event => {}
            }
            let change = match (row.preference, row.error_code.get()) {
                (Some(p), _) => Some((p, "user_preferences")),
                (None, Some(MARKETING_STOPPED)) => Some((Preference::Stop, "error 131050")),
                _ => None,
            };
            if let Some((p, source)) = change {
                card.marketing.history.push(PreferenceChange {
                    value: p.as_str(),
                    at_ms: row.recorded_ms,
                    source,
                    entry: EntryId(id),
                });
            }
            if row.contact_name != 0 && row.recorded_ms >= newest_named {
                newest_named = row.recorded_ms;
                card.name = text(row.contact_name);
            }
        });
        card.marketing.history.sort_by_key(|c| (c.at_ms, c.entry));
        card.marketing.opted_out = card
            .marketing
            .history
            .last()
            .is_some_and(|c| c.value == Preference::Stop.as_str());
        let [phones, wa_ids, user_ids, usernames] = ids.map(|s| s.into_iter().collect());
        card.identifiers = Identifiers {
            phones,
            wa_ids,
            user_ids,
            usernames,
        };
        card.entries = entries;
        Some(card)
    }

    /// Every live entry of the people whose latest marketing preference is
    /// a stop (a `user_preferences` stop, or error 131050) with no resume
    /// after it: what `opted_out=true` selects.
    pub fn opted_out_entries(&self) -> RoaringBitmap {
        let field = crate::state::Field::Marketing;
        let column = self.column(field);
        let mut latest: FxHashMap<u32, (i64, u32, i64)> = FxHashMap::default();
        // Entries without a preference are indexed too (under the none
        // key): only those that record one say what a person last chose.
        for (_, bm) in self.values(field).filter(|(k, _)| !k.is_none()) {
            for id in bm {
                let Some(root) = self.state.contacts.contact_of_entry(EntryId(id)) else {
                    continue;
                };
                let key = column.key(column.code(id));
                let mark = (self.state.rows.recorded_ms(id), id, key.raw());
                let slot = latest.entry(root).or_insert(mark);
                if mark > *slot {
                    *slot = mark;
                }
            }
        }
        let mut out = RoaringBitmap::new();
        for (root, (_, _, key)) in latest {
            if key == Preference::Stop as i64 {
                out |= self.state.contacts.entries(root);
            }
        }
        out &= &self.state.live;
        out
    }

    /// Each marketing opt-out recorded in `[from_ms, to_ms)` (a
    /// `user_preferences` stop, or error 131050, not preceded by another
    /// stop of the same person without a resume between) with the last
    /// marketing message its person got before it (an outbound message
    /// priced as marketing, or of the category `marketing_campaign`), when
    /// they got one: what a template's opt-outs are counted from.
    pub fn opt_out_causes(&self, from_ms: i64, to_ms: i64) -> Vec<(EntryId, EntryId)> {
        use crate::state::{Field, Value};
        let stops = self.any_of(Field::Marketing, &[Value::Marketing(Preference::Stop)]);
        let mut marketing = self
            .any_of(
                Field::PricingCategory,
                &[
                    Value::Text("marketing".into()),
                    Value::Text("marketing_lite".into()),
                ],
            )
            .into_owned();
        marketing |= &*self.any_of(Field::Category, &[Value::Text("marketing_campaign".into())]);
        if let Some(outbound) = self.bitmap(Field::Direction, Key::direction(Direction::Outbound)) {
            marketing &= outbound;
        }
        let marks = self.column(Field::Marketing);
        let mut out = Vec::new();
        for stop in stops.iter() {
            let at = self.state.rows.recorded_ms(stop);
            if at < from_ms || at >= to_ms {
                continue;
            }
            let Some(root) = self.state.contacts.contact_of_entry(EntryId(stop)) else {
                continue;
            };
            let theirs = self.state.contacts.entries(root);
            // A stop after a stop (a send refused with 131050 once the
            // person had opted out) is no new opt-out.
            let previous = (&theirs & &*stops)
                .iter()
                .chain(
                    (&theirs
                        & &*self.any_of(Field::Marketing, &[Value::Marketing(Preference::Resume)]))
                        .iter(),
                )
                .filter(|id| *id != stop)
                .map(|id| (self.state.rows.recorded_ms(id), id))
                .filter(|mark| *mark < (at, stop))
                .max();
            if previous.is_some_and(|(_, id)| {
                marks.key(marks.code(id)) == Key::from_raw(Preference::Stop as i64)
            }) {
                continue;
            }
            let cause = (&theirs & &marketing)
                .iter()
                .filter(|id| *id != stop)
                .map(|id| (self.state.rows.recorded_ms(id), id))
                .filter(|(t, _)| *t < at)
                .max();
            if let Some((_, cause)) = cause {
                out.push((EntryId(stop), EntryId(cause)));
            }
        }
        out
    }
}
