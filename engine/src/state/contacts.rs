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
//! A contact is a root with its identifiers and its entries, each kept as
//! a list linked through per-node and per-entry arrays, so that joining two
//! contacts splices two lists in constant time and a contact costs a few
//! words, not a bitmap: at 10M messages there are millions of people, most
//! with a handful of entries. Every entry is in exactly one contact's list
//! whatever order the events arrived in. A purge forgets the contacts its
//! entries were in (`forget`), and the state rebuilds them from the
//! entries left.

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

/// No node, no entry: the end of a list.
const NONE: u32 = u32::MAX;

/// A root's two lists: its members (nodes) and its entries.
#[derive(Clone, Copy, Debug)]
struct Lists {
    first_member: u32,
    last_member: u32,
    members: u32,
    first_entry: u32,
    last_entry: u32,
    entries: u32,
}

impl Lists {
    /// The lists of a contact that is one node and no entry yet.
    fn alone(node: u32) -> Lists {
        Lists {
            first_member: node,
            last_member: node,
            members: 1,
            first_entry: NONE,
            last_entry: NONE,
            entries: 0,
        }
    }
}

/// The contacts of the whole store.
#[derive(Default)]
pub(crate) struct Contacts {
    /// Identifier -> its node.
    nodes: FxHashMap<Ident, u32>,
    /// Node -> its identifier (`None` once forgotten).
    idents: Vec<Option<Ident>>,
    /// Node -> its parent in the union-find (itself for a root).
    parent: Vec<u32>,
    /// Node -> the next member of its contact.
    next_member: Vec<u32>,
    /// Root -> its lists.
    roots: FxHashMap<u32, Lists>,
    /// Entry id -> a node of its contact (`NONE`: none known).
    of_entry: Vec<u32>,
    /// Entry id -> the next entry of its contact.
    next_entry: Vec<u32>,
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
        self.next_member.push(NONE);
        self.roots.insert(n, Lists::alone(n));
        self.nodes.insert(ident, n);
        n
    }

    /// Joins the contacts of two nodes; returns the root.
    fn union(&mut self, a: u32, b: u32) -> u32 {
        let (ra, rb) = (self.find_mut(a), self.find_mut(b));
        if ra == rb {
            return ra;
        }
        let size = |r: u32| self.roots.get(&r).map_or(0, |l| l.members + l.entries);
        let (big, small) = if size(ra) >= size(rb) {
            (ra, rb)
        } else {
            (rb, ra)
        };
        self.parent[small as usize] = big;
        let Some(s) = self.roots.remove(&small) else {
            return big;
        };
        let Some(b) = self.roots.get_mut(&big) else {
            return big;
        };
        // Splice the small contact's lists after the big one's.
        self.next_member[b.last_member as usize] = s.first_member;
        b.last_member = s.last_member;
        b.members += s.members;
        if s.entries > 0 {
            if b.entries == 0 {
                b.first_entry = s.first_entry;
            } else {
                self.next_entry[b.last_entry as usize] = s.first_entry;
            }
            b.last_entry = s.last_entry;
            b.entries += s.entries;
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
        let Some(root) = root else {
            return false;
        };
        let slot = id.0 as usize;
        if self.of_entry.len() <= slot {
            self.of_entry.resize(slot + 1, NONE);
            self.next_entry.resize(slot + 1, NONE);
        }
        match self.of_entry[slot] {
            NONE => {
                self.of_entry[slot] = root;
                self.push_entry(root, id.0);
            }
            known => {
                // A later event of the same message names the same person.
                joined |= self.find_mut(known) != root;
                self.union(known, root);
            }
        }
        joined
    }

    fn push_entry(&mut self, root: u32, id: u32) {
        self.next_entry[id as usize] = NONE;
        if let Some(l) = self.roots.get_mut(&root) {
            if l.entries == 0 {
                l.first_entry = id;
            } else {
                self.next_entry[l.last_entry as usize] = id;
            }
            l.last_entry = id;
            l.entries += 1;
        }
    }

    /// Forgets a contact: its identifiers, and which entries were its (the
    /// caller observes those it keeps again).
    pub(crate) fn forget(&mut self, root: u32) {
        let Some(l) = self.roots.remove(&root) else {
            return;
        };
        let mut n = l.first_member;
        while n != NONE {
            if let Some(ident) = self.idents[n as usize].take() {
                self.nodes.remove(&ident);
            }
            // A forgotten node points to itself, alone.
            self.parent[n as usize] = n;
            n = std::mem::replace(&mut self.next_member[n as usize], NONE);
        }
        let mut e = l.first_entry;
        while e != NONE {
            self.of_entry[e as usize] = NONE;
            e = std::mem::replace(&mut self.next_entry[e as usize], NONE);
        }
    }

    /// The root of an identifier's contact.
    pub(crate) fn contact_of(&self, ident: Ident) -> Option<u32> {
        self.nodes.get(&ident).map(|n| self.find(*n))
    }

    /// The root of an entry's contact.
    pub(crate) fn contact_of_entry(&self, id: EntryId) -> Option<u32> {
        match self.of_entry.get(id.0 as usize) {
            Some(&n) if n != NONE => Some(self.find(n)),
            _ => None,
        }
    }

    /// The entries of a contact.
    pub(crate) fn entries(&self, root: u32) -> RoaringBitmap {
        self.entry_list(root).collect()
    }

    /// The entries of a contact, in the order they were first seen, without
    /// building a bitmap.
    pub(crate) fn entry_list(&self, root: u32) -> impl Iterator<Item = u32> + '_ {
        let mut e = self.roots.get(&root).map_or(NONE, |l| l.first_entry);
        std::iter::from_fn(move || {
            (e != NONE).then(|| {
                let here = e;
                e = self.next_entry[here as usize];
                here
            })
        })
    }

    /// The identifiers of a contact.
    pub(crate) fn identifiers(&self, root: u32) -> impl Iterator<Item = Ident> + '_ {
        let mut n = self.roots.get(&root).map_or(NONE, |l| l.first_member);
        std::iter::from_fn(move || {
            while n != NONE {
                let here = n;
                n = self.next_member[here as usize];
                if let Some(ident) = self.idents[here as usize] {
                    return Some(ident);
                }
            }
            None
        })
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

    /// Rebuilds the lists from a checkpoint's contacts; `None` when they
    /// do not hold together (then the contacts are rebuilt from the log).
    pub(crate) fn load(saved: SavedContacts) -> Option<Contacts> {
        let SavedContacts {
            idents,
            parent,
            of_entry,
        } = saved;
        let nodes = idents.len();
        if nodes != parent.len()
            || parent.iter().any(|p| *p as usize >= nodes)
            || of_entry.iter().any(|n| *n != NONE && *n as usize >= nodes)
        {
            return None;
        }
        let mut c = Contacts {
            nodes: FxHashMap::default(),
            idents,
            parent,
            next_member: vec![NONE; nodes],
            roots: FxHashMap::default(),
            next_entry: vec![NONE; of_entry.len()],
            of_entry,
        };
        for n in 0..nodes as u32 {
            let Some(ident) = c.idents[n as usize] else {
                continue;
            };
            c.nodes.insert(ident, n);
            let root = c.find(n);
            match c.roots.get_mut(&root) {
                Some(l) => {
                    c.next_member[l.last_member as usize] = n;
                    l.last_member = n;
                    l.members += 1;
                }
                None => {
                    c.roots.insert(root, Lists::alone(n));
                }
            }
        }
        for id in 0..c.of_entry.len() as u32 {
            let node = c.of_entry[id as usize];
            if node == NONE {
                continue;
            }
            let root = c.find(node);
            if !c.roots.contains_key(&root) {
                return None;
            }
            c.push_entry(root, id);
        }
        Some(c)
    }

    /// Rough heap bytes, for the memory report.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.nodes.capacity() * 13
            + self.idents.capacity() * 8
            + (self.parent.capacity() + self.next_member.capacity()) * 4
            + (self.of_entry.capacity() + self.next_entry.capacity()) * 4
            + self.roots.capacity() * 29
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
    fn ids(c: &Contacts, ident: Ident) -> Vec<u32> {
        c.contact_of(ident)
            .map(|r| c.entries(r).iter().collect())
            .unwrap_or_default()
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
        assert_eq!(ids(&c, phone(1)), [0, 1]);
        let mut members: Vec<Ident> = c.identifiers(root).collect();
        members.sort();
        assert_eq!(members, [phone(1), phone(2)]);
    }

    #[test]
    fn a_later_event_of_a_message_joins_its_new_identifier() {
        let mut c = Contacts::default();
        c.observe(EntryId(0), &[phone(1)]);
        c.observe(EntryId(1), &[user(9)]);
        // A status of entry 0 carries the BSUID the inbound entry 1 had.
        assert!(c.observe(EntryId(0), &[user(9)]));
        assert_eq!(c.contact_of(phone(1)), c.contact_of(user(9)));
        assert_eq!(ids(&c, user(9)), [0, 1]);
        assert!(!c.observe(EntryId(0), &[user(9)]), "nothing new");
        assert_eq!(ids(&c, user(9)), [0, 1], "an entry is listed once");
    }

    #[test]
    fn forgetting_a_contact_forgets_its_identifiers_and_entries() {
        let mut c = Contacts::default();
        c.observe(EntryId(0), &[phone(1), user(2)]);
        c.observe(EntryId(1), &[phone(1)]);
        c.observe(EntryId(2), &[phone(7)]);
        let root = c.contact_of(phone(1)).expect("known");
        c.forget(root);
        assert_eq!(c.contact_of(phone(1)), None);
        assert_eq!(c.contact_of(user(2)), None);
        assert_eq!(c.contact_of_entry(EntryId(0)), None);
        assert_eq!(ids(&c, phone(7)), [2], "others stay");
        // The entries kept are observed again.
        c.observe(EntryId(1), &[phone(1)]);
        assert_eq!(ids(&c, phone(1)), [1]);
        assert_eq!(c.syms().count(), 2);
    }

    #[test]
    fn a_saved_contact_book_loads_back_the_same() {
        let mut c = Contacts::default();
        c.observe(EntryId(0), &[phone(1), user(2)]);
        c.observe(EntryId(3), &[phone(5)]);
        c.observe(EntryId(4), &[phone(5), phone(1)]);
        let loaded = Contacts::load(c.save()).expect("loads");
        for ident in [phone(1), user(2), phone(5)] {
            assert_eq!(ids(&c, ident), ids(&loaded, ident));
        }
        assert_eq!(ids(&loaded, phone(1)), [0, 3, 4]);
    }
}
