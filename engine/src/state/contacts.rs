//! Contacts: the person behind entries, joined from every identifier the
//! data says is theirs.
//!
//! Each identifier (a phone number's digits, a business-scoped user id, a
//! username) is a node of a union-find. Identifiers that one event names
//! together are one person and are joined: a send's dialled number and the
//! `wa_id` Meta answered with (`contacts[].input -> wa_id`), a status's
//! `recipient_id` and `recipient_user_id`, an inbound message's `from`,
//! `from_user_id` and the username in `contacts[]`, a system message's old
//! and new number or user id. Nothing else joins: numbers that merely look
//! alike (Brazil's ninth digit, Mexico's `521`) stay apart, and a search
//! tries them as candidates (see `crate::phone::number_variants`).
//!
//! A contact is a root with the entries of all its identifiers. Joining
//! two contacts moves the smaller one's entries into the larger one's
//! bitmap, so every entry is in exactly one contact's bitmap at any time,
//! whatever order the events arrived in. A contact whose last entry is
//! purged is forgotten with all its identifiers.

use super::interner::Sym;
use crate::model::EntryId;
use roaring::RoaringBitmap;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

/// What kind of identifier a node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) enum IdKind {
    /// A phone number (a dialled number, a `wa_id`, `from`, `recipient_id`), digits only.
    Phone = 0,
    /// A business-scoped user id (BSUID), or a parent one, as Meta wrote it.
    UserId = 1,
    /// A WhatsApp username, without `@`, lowercase.
    Username = 2,
}

/// One identifier: its kind and its interned text.
pub(crate) type Ident = (IdKind, Sym);

const NO_NODE: u32 = u32::MAX;

/// The contacts of the whole store.
#[derive(Default)]
pub(crate) struct Contacts {
    /// Identifier -> its node.
    nodes: FxHashMap<Ident, u32>,
    /// Node -> its identifier (`None` once forgotten).
    idents: Vec<Option<Ident>>,
    /// Node -> its parent in the union-find (itself for a root).
    parent: Vec<u32>,
    /// Root -> the nodes of its contact.
    members: FxHashMap<u32, Vec<u32>>,
    /// Root -> the entries of its contact.
    entries: FxHashMap<u32, RoaringBitmap>,
    /// Entry id -> a node of its contact (`NO_NODE`: none known).
    of_entry: Vec<u32>,
}

/// What a checkpoint keeps of the contacts: the rest is rebuilt from it.
#[derive(Serialize, Deserialize, Default)]
pub(crate) struct SavedContacts {
    idents: Vec<Option<Ident>>,
    parent: Vec<u32>,
    of_entry: Vec<u32>,
}

impl Contacts {
    /// The root of node `n`.
    fn find(&self, mut n: u32) -> u32 {
        while self.parent[n as usize] != n {
            n = self.parent[n as usize];
        }
        n
    }

    /// The root of node `n`, halving the path on the way (writes only).
    fn find_mut(&mut self, mut n: u32) -> u32 {
        while self.parent[n as usize] != n {
            let grand = self.parent[self.parent[n as usize] as usize];
            self.parent[n as usize] = grand;
            n = grand;
        }
        n
    }

    fn node(&mut self, ident: Ident) -> u32 {
        if let Some(n) = self.nodes.get(&ident) {
            return *n;
        }
        let n = self.idents.len() as u32;
        self.idents.push(Some(ident));
        self.parent.push(n);
        self.members.insert(n, vec![n]);
        self.nodes.insert(ident, n);
        n
    }

    /// Joins the contacts of two nodes; returns the root.
    fn union(&mut self, a: u32, b: u32) -> u32 {
        let (ra, rb) = (self.find_mut(a), self.find_mut(b));
        if ra == rb {
            return ra;
        }
        let size = |r: u32| self.members.get(&r).map_or(0, Vec::len);
        let (big, small) = if size(ra) >= size(rb) {
            (ra, rb)
        } else {
            (rb, ra)
        };
        self.parent[small as usize] = big;
        let moved = self.members.remove(&small).unwrap_or_default();
        self.members.entry(big).or_default().extend(moved);
        if let Some(entries) = self.entries.remove(&small) {
            *self.entries.entry(big).or_default() |= entries;
        }
        big
    }

    /// Records that entry `id` is with the person these identifiers name
    /// (all of them one person), joining contacts as the data says; true
    /// when two contacts became one.
    pub(crate) fn observe(&mut self, id: EntryId, idents: &[Ident]) -> bool {
        let mut root = None;
        let mut joined = false;
        for ident in idents {
            let n = self.node(*ident);
            root = Some(match root {
                None => self.find_mut(n),
                Some(r) => {
                    joined |= self.find_mut(n) != r;
                    self.union(r, n)
                }
            });
        }
        let Some(mut root) = root else {
            return false;
        };
        let slot = id.0 as usize;
        if self.of_entry.len() <= slot {
            self.of_entry.resize(slot + 1, NO_NODE);
        }
        match self.of_entry[slot] {
            NO_NODE => {
                self.of_entry[slot] = root;
                self.entries.entry(root).or_default().insert(id.0);
            }
            known => {
                // A later event of the same message names the same person.
                joined |= self.find_mut(known) != root;
                root = self.union(known, root);
                self.entries.entry(root).or_default().insert(id.0);
            }
        }
        joined
    }

    /// Forgets entry `id` (purged); a contact left without entries is
    /// forgotten with its identifiers.
    pub(crate) fn remove_entry(&mut self, id: EntryId) {
        let Some(node) = self.of_entry.get(id.0 as usize).copied() else {
            return;
        };
        if node == NO_NODE {
            return;
        }
        self.of_entry[id.0 as usize] = NO_NODE;
        let root = self.find_mut(node);
        let empty = match self.entries.get_mut(&root) {
            Some(bm) => {
                bm.remove(id.0);
                bm.is_empty()
            }
            None => true,
        };
        if empty {
            self.entries.remove(&root);
            for n in self.members.remove(&root).unwrap_or_default() {
                if let Some(ident) = self.idents[n as usize].take() {
                    self.nodes.remove(&ident);
                }
                // A forgotten node points to itself, alone.
                self.parent[n as usize] = n;
            }
        }
    }

    /// The root of an identifier's contact.
    pub(crate) fn contact_of(&self, ident: Ident) -> Option<u32> {
        self.nodes.get(&ident).map(|n| self.find(*n))
    }

    /// The root of an entry's contact.
    pub(crate) fn contact_of_entry(&self, id: EntryId) -> Option<u32> {
        match self.of_entry.get(id.0 as usize) {
            Some(&n) if n != NO_NODE => Some(self.find(n)),
            _ => None,
        }
    }

    /// The entries of a contact.
    pub(crate) fn entries(&self, root: u32) -> Option<&RoaringBitmap> {
        self.entries.get(&root)
    }

    /// The identifiers of a contact.
    pub(crate) fn identifiers(&self, root: u32) -> impl Iterator<Item = Ident> + '_ {
        self.members
            .get(&root)
            .into_iter()
            .flatten()
            .filter_map(|n| self.idents[*n as usize])
    }

    /// Every identifier's text in use, so that purged strings are blanked
    /// only when no contact holds them.
    pub(crate) fn syms(&self) -> impl Iterator<Item = Sym> + '_ {
        self.nodes.keys().map(|(_, s)| *s)
    }

    pub(crate) fn save(&self) -> SavedContacts {
        SavedContacts {
            idents: self.idents.clone(),
            parent: self.parent.clone(),
            of_entry: self.of_entry.clone(),
        }
    }

    /// Rebuilds the lookups from a checkpoint's contacts; `None` when they
    /// do not hold together (then the contacts are rebuilt from the log).
    pub(crate) fn load(saved: SavedContacts) -> Option<Contacts> {
        let SavedContacts {
            idents,
            parent,
            of_entry,
        } = saved;
        if idents.len() != parent.len() || parent.iter().any(|p| *p as usize >= parent.len()) {
            return None;
        }
        let mut c = Contacts {
            nodes: FxHashMap::default(),
            idents,
            parent,
            members: FxHashMap::default(),
            entries: FxHashMap::default(),
            of_entry,
        };
        for n in 0..c.idents.len() as u32 {
            let Some(ident) = c.idents[n as usize] else {
                continue;
            };
            c.nodes.insert(ident, n);
            let root = c.find(n);
            c.members.entry(root).or_default().push(n);
        }
        for (id, node) in c.of_entry.iter().enumerate() {
            if *node == NO_NODE {
                continue;
            }
            if *node as usize >= c.parent.len() {
                return None;
            }
            let root = c.find(*node);
            c.entries.entry(root).or_default().insert(id as u32);
        }
        Some(c)
    }

    /// Rough heap bytes, for the memory report.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.nodes.len() * 24
            + self.idents.len() * 12
            + self.parent.len() * 4
            + self.of_entry.len() * 4
            + self
                .members
                .values()
                .map(|m| m.len() * 4 + 32)
                .sum::<usize>()
            + self
                .entries
                .values()
                .map(|bm| bm.serialized_size() + 32)
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phone(n: u32) -> Ident {
        (IdKind::Phone, n)
    }
    fn user(n: u32) -> Ident {
        (IdKind::UserId, n)
    }

    #[test]
    fn identifiers_named_together_are_one_contact_whatever_the_order() {
        let mut c = Contacts::default();
        // A reply from the account's wa_id arrives before the send.
        c.observe(EntryId(1), &[phone(2)]);
        c.observe(EntryId(0), &[phone(1), phone(2)]);
        c.observe(EntryId(2), &[phone(3)]);
        let root = c.contact_of(phone(1)).expect("known");
        assert_eq!(c.contact_of(phone(2)), Some(root));
        assert_ne!(c.contact_of(phone(3)), Some(root), "no join without data");
        let entries: Vec<u32> = c.entries(root).expect("entries").iter().collect();
        assert_eq!(entries, [0, 1]);
    }

    #[test]
    fn a_later_event_of_a_message_joins_its_new_identifier() {
        let mut c = Contacts::default();
        c.observe(EntryId(0), &[phone(1)]);
        c.observe(EntryId(1), &[user(9)]);
        // A status of entry 0 carries the BSUID the inbound entry 1 had.
        c.observe(EntryId(0), &[user(9)]);
        assert_eq!(c.contact_of(phone(1)), c.contact_of(user(9)));
        let root = c.contact_of(user(9)).expect("known");
        assert_eq!(c.entries(root).map(RoaringBitmap::len), Some(2));
    }

    #[test]
    fn purging_every_entry_forgets_the_contact_and_its_identifiers() {
        let mut c = Contacts::default();
        c.observe(EntryId(0), &[phone(1), user(2)]);
        c.observe(EntryId(1), &[phone(1)]);
        c.remove_entry(EntryId(0));
        assert!(c.contact_of(user(2)).is_some(), "entry 1 is still theirs");
        c.remove_entry(EntryId(1));
        assert_eq!(c.contact_of(phone(1)), None);
        assert_eq!(c.contact_of(user(2)), None);
        assert_eq!(c.syms().count(), 0);
    }

    #[test]
    fn a_saved_contact_book_loads_back_the_same() {
        let mut c = Contacts::default();
        c.observe(EntryId(0), &[phone(1), user(2)]);
        c.observe(EntryId(3), &[phone(5)]);
        c.observe(EntryId(4), &[phone(5), phone(1)]);
        let loaded = Contacts::load(c.save()).expect("loads");
        for ident in [phone(1), user(2), phone(5)] {
            let (a, b) = (c.contact_of(ident), loaded.contact_of(ident));
            assert_eq!(
                a.and_then(|r| c.entries(r)),
                b.and_then(|r| loaded.entries(r))
            );
        }
    }
}
