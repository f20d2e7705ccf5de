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
//! a ring linked through per-node and per-entry arrays: joining two
//! contacts swaps one link in each of their two rings, which makes one
//! ring, in constant time; a contact costs a few words, not a bitmap (at
//! 10M messages there are millions of people, most with a handful of
//! entries) and not a hash map slot (a root's only state is one entry of
//! its ring and a rank, in arrays by node). Every entry is in exactly one
//! contact's ring whatever order the events arrived in. A purge forgets
//! the contacts its entries were in (`forget`), and the state rebuilds
//! them from the entries left.

use super::interner::Sym;
use super::own::RawBytes;
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

/// No node, no entry.
const NONE: u32 = u32::MAX;

/// The contacts of the whole store.
#[derive(Default)]
pub(crate) struct Contacts {
    /// Identifier -> its node.
    nodes: FxHashMap<Ident, u32>,
    /// Node -> its identifier (`None` once forgotten).
    idents: Vec<Option<Ident>>,
    /// Node -> its parent in the union-find (itself for a root).
    parent: Vec<u32>,
    /// Root -> its rank (union by rank keeps trees shallow).
    rank: Vec<u8>,
    /// Node -> the next member of its contact, in a ring (a node alone is
    /// its own next).
    next_member: Vec<u32>,
    /// Root -> an entry of its contact's ring (`NONE`: no entry yet).
    ring_entry: Vec<u32>,
    /// Entry id -> a node of its contact (`NONE`: none known).
    of_entry: Vec<u32>,
    /// Entry id -> the next entry of its contact, in a ring.
    next_entry: Vec<u32>,
}

/// What a checkpoint keeps of the contacts: the rest is rebuilt from it.
/// Each part is one byte string, copied whole (decoding a million varints
/// one by one was 40% of reading a 1M store's lookup maps): per node its
/// kind (`0xff` once forgotten) and its string's number, u32 LE; per node
/// its parent, u32 LE; per entry its node, u32 LE (`u32::MAX`: none).
#[derive(Serialize, Deserialize, Default)]
pub(crate) struct SavedContacts {
    idents: RawBytes,
    parent: RawBytes,
    of_entry: RawBytes,
}

const FORGOTTEN: u8 = 0xff;

/// The u32s of a saved array, `None` when its length is not whole u32s.
fn whole_u32s(b: &RawBytes) -> Option<Vec<u32>> {
    b.0.len().is_multiple_of(4).then(|| b.u32s().collect())
}

fn idents_to_bytes(idents: &[Option<Ident>]) -> RawBytes {
    let mut out = Vec::with_capacity(idents.len() * 5);
    for ident in idents {
        let (kind, sym) = match ident {
            Some((kind, sym)) => (*kind as u8, *sym),
            None => (FORGOTTEN, 0),
        };
        out.push(kind);
        out.extend_from_slice(&sym.to_le_bytes());
    }
    RawBytes(out)
}

fn bytes_to_idents(b: &[u8]) -> Option<Vec<Option<Ident>>> {
    if !b.len().is_multiple_of(5) {
        return None;
    }
    b.chunks_exact(5)
        .map(|c| {
            let sym = u32::from_le_bytes([c[1], c[2], c[3], c[4]]);
            Some(match c[0] {
                0 => Some((IdKind::Phone, sym)),
                1 => Some((IdKind::UserId, sym)),
                2 => Some((IdKind::Username, sym)),
                FORGOTTEN => None,
                _ => return None,
            })
        })
        .collect()
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
        self.rank.push(0);
        self.next_member.push(n);
        self.ring_entry.push(NONE);
        self.nodes.insert(ident, n);
        n
    }

    /// Joins the contacts of two nodes; returns the root.
    fn union(&mut self, a: u32, b: u32) -> u32 {
        let (ra, rb) = (self.find_mut(a), self.find_mut(b));
        if ra == rb {
            return ra;
        }
        let (big, small) = if self.rank[ra as usize] >= self.rank[rb as usize] {
            (ra, rb)
        } else {
            (rb, ra)
        };
        self.parent[small as usize] = big;
        if self.rank[big as usize] == self.rank[small as usize] {
            self.rank[big as usize] = self.rank[big as usize].saturating_add(1);
        }
        // Two rings become one by swapping one link of each.
        self.next_member.swap(big as usize, small as usize);
        let small_entry = std::mem::replace(&mut self.ring_entry[small as usize], NONE);
        match (self.ring_entry[big as usize], small_entry) {
            (_, NONE) => {}
            (NONE, e) => self.ring_entry[big as usize] = e,
            (e, f) => self.next_entry.swap(e as usize, f as usize),
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

    /// Puts entry `id` in the ring of `root`.
    fn push_entry(&mut self, root: u32, id: u32) {
        match self.ring_entry[root as usize] {
            NONE => {
                self.ring_entry[root as usize] = id;
                self.next_entry[id as usize] = id;
            }
            e => {
                self.next_entry[id as usize] = self.next_entry[e as usize];
                self.next_entry[e as usize] = id;
            }
        }
    }

    /// Forgets a contact: its identifiers, and which entries were its (the
    /// caller observes those it keeps again).
    pub(crate) fn forget(&mut self, root: u32) {
        if root as usize >= self.next_member.len() {
            return;
        }
        let members: Vec<u32> = ring(root, &self.next_member).collect();
        let mut entries = Vec::new();
        for n in &members {
            let e = std::mem::replace(&mut self.ring_entry[*n as usize], NONE);
            entries.extend(ring(e, &self.next_entry));
        }
        for e in entries {
            self.of_entry[e as usize] = NONE;
            self.next_entry[e as usize] = NONE;
        }
        for n in members {
            if let Some(ident) = self.idents[n as usize].take() {
                self.nodes.remove(&ident);
            }
            // A forgotten node is a root of its own, alone and empty.
            self.parent[n as usize] = n;
            self.rank[n as usize] = 0;
            self.next_member[n as usize] = n;
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

    /// The entries of a contact, in no particular order, without building a
    /// bitmap.
    pub(crate) fn entry_list(&self, root: u32) -> impl Iterator<Item = u32> + '_ {
        let first = self.ring_entry.get(root as usize).copied().unwrap_or(NONE);
        ring(first, &self.next_entry)
    }

    /// The identifiers of a contact, its root's first (what the tests
    /// check the member rings with; the store reads a person's
    /// identifiers from their rows).
    #[cfg(test)]
    pub(crate) fn identifiers(&self, root: u32) -> impl Iterator<Item = Ident> + '_ {
        let first = if (root as usize) < self.next_member.len() {
            root
        } else {
            NONE
        };
        ring(first, &self.next_member).filter_map(|n| self.idents[n as usize])
    }

    /// Every identifier's text in use, so that purged strings are blanked
    /// only when no contact holds them.
    pub(crate) fn syms(&self) -> impl Iterator<Item = Sym> + '_ {
        self.nodes.keys().map(|(_, s)| *s)
    }

    pub(crate) fn save(&self) -> SavedContacts {
        SavedContacts {
            idents: idents_to_bytes(&self.idents),
            parent: RawBytes::from_u32s(&self.parent),
            of_entry: RawBytes::from_u32s(&self.of_entry),
        }
    }

    /// Rebuilds the rings from a checkpoint's contacts; `None` when they
    /// do not hold together (then the contacts are rebuilt from the log).
    pub(crate) fn load(saved: SavedContacts) -> Option<Contacts> {
        let idents = bytes_to_idents(&saved.idents.0)?;
        let mut parent = whole_u32s(&saved.parent)?;
        let of_entry = whole_u32s(&saved.of_entry)?;
        let nodes = idents.len();
        if nodes != parent.len()
            || parent.iter().any(|p| *p as usize >= nodes)
            || of_entry.iter().any(|n| *n != NONE && *n as usize >= nodes)
        {
            return None;
        }
        // Every node points straight at its root: a tree of depth one is
        // of rank one. A walk longer than there are nodes is a cycle.
        let mut rank = vec![0u8; nodes];
        for n in 0..nodes {
            let mut root = n;
            let mut steps = 0;
            while parent[root] as usize != root {
                root = parent[root] as usize;
                steps += 1;
                if steps > nodes {
                    return None;
                }
            }
            let mut at = n;
            while at != root {
                at = std::mem::replace(&mut parent[at], root as u32) as usize;
            }
            if n != root {
                rank[root] = 1;
            }
        }
        let mut c = Contacts {
            nodes: FxHashMap::default(),
            next_member: (0..nodes as u32).collect(),
            ring_entry: vec![NONE; nodes],
            rank,
            idents,
            parent,
            next_entry: vec![NONE; of_entry.len()],
            of_entry,
        };
        c.nodes.reserve(nodes);
        for n in 0..nodes as u32 {
            let Some(ident) = c.idents[n as usize] else {
                continue;
            };
            c.nodes.insert(ident, n);
            let root = c.parent[n as usize];
            // A member's root is a known identifier (a forgotten contact
            // leaves every member alone).
            c.idents[root as usize]?;
            if root != n {
                c.next_member[n as usize] = c.next_member[root as usize];
                c.next_member[root as usize] = n;
            }
        }
        for id in 0..c.of_entry.len() as u32 {
            let node = c.of_entry[id as usize];
            if node == NONE {
                continue;
            }
            let root = c.parent[node as usize];
            c.idents[root as usize]?;
            c.push_entry(root, id);
        }
        Some(c)
    }

    /// Rough heap bytes, for the memory report.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.nodes.capacity() * 13
            + self.idents.capacity() * 8
            + self.rank.capacity()
            + (self.parent.capacity() + self.next_member.capacity() + self.ring_entry.capacity())
                * 4
            + (self.of_entry.capacity() + self.next_entry.capacity()) * 4
    }
}

/// The ring through `next` that holds `first` (nothing when `NONE`).
fn ring(first: u32, next: &[u32]) -> impl Iterator<Item = u32> + '_ {
    let mut at = first;
    std::iter::from_fn(move || {
        (at != NONE).then(|| {
            let here = at;
            at = match next.get(here as usize) {
                Some(&n) if n != first => n,
                _ => NONE,
            };
            here
        })
    })
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

    #[test]
    fn a_saved_contact_book_that_does_not_hold_together_is_refused() {
        let mut c = Contacts::default();
        c.observe(EntryId(0), &[phone(1), user(2)]);
        let mut bad_kind = c.save();
        bad_kind.idents.0[0] = 7;
        assert!(Contacts::load(bad_kind).is_none());
        let mut cut = c.save();
        cut.of_entry.0.pop();
        assert!(Contacts::load(cut).is_none());
        let mut cycle = c.save();
        cycle.parent = RawBytes::from_u32s(&[1, 0]);
        assert!(Contacts::load(cycle).is_none());
        let mut forgotten = c.save();
        forgotten.idents = idents_to_bytes(&[None, None]);
        assert!(
            Contacts::load(forgotten).is_none(),
            "an entry of a forgotten contact"
        );
        assert!(Contacts::load(c.save()).is_some());
    }

    /// What the contacts must answer, kept the slow and obvious way: a list
    /// of people, each a set of identifiers and a set of entries.
    #[derive(Default)]
    struct Model {
        people: Vec<(
            std::collections::BTreeSet<Ident>,
            std::collections::BTreeSet<u32>,
        )>,
    }

    impl Model {
        fn observe(&mut self, id: u32, idents: &[Ident]) {
            let (mut joined, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.people)
                .into_iter()
                .partition(|(i, e)| idents.iter().any(|x| i.contains(x)) || e.contains(&id));
            self.people = rest;
            let mut person = (
                idents
                    .iter()
                    .copied()
                    .collect::<std::collections::BTreeSet<_>>(),
                std::collections::BTreeSet::from([id]),
            );
            for (i, e) in joined.drain(..) {
                person.0.extend(i);
                person.1.extend(e);
            }
            self.people.push(person);
        }

        fn forget_entry(&mut self, id: u32) {
            self.people.retain(|(_, e)| !e.contains(&id));
        }
    }

    fn same(c: &Contacts, m: &Model) {
        for (idents, entries) in &m.people {
            for ident in idents {
                let root = c.contact_of(*ident).expect("a known identifier");
                let got: Vec<u32> = c.entries(root).iter().collect();
                assert_eq!(got, entries.iter().copied().collect::<Vec<_>>());
                let mut members: Vec<Ident> = c.identifiers(root).collect();
                members.sort();
                assert_eq!(members, idents.iter().copied().collect::<Vec<_>>());
            }
            for e in entries {
                assert_eq!(
                    c.contact_of_entry(EntryId(*e)),
                    c.contact_of(idents.iter().next().copied().expect("one"))
                );
            }
        }
        let known: usize = m.people.iter().map(|(i, _)| i.len()).sum();
        assert_eq!(c.syms().count(), known, "no identifier beyond the model's");
    }

    proptest::proptest! {
        #[test]
        fn contacts_match_a_plain_model_through_joins_forgets_and_a_reload(
            ops in proptest::collection::vec(
                (0u32..40, proptest::collection::vec((0u8..3, 0u32..25), 1..4), 0u8..10),
                1..120,
            )
        ) {
            let kind = |k: u8| [IdKind::Phone, IdKind::UserId, IdKind::Username][usize::from(k)];
            let mut c = Contacts::default();
            let mut m = Model::default();
            for (entry, idents, what) in ops {
                let idents: Vec<Ident> = idents.into_iter().map(|(k, s)| (kind(k), s)).collect();
                if what == 0 {
                    if let Some(root) = c.contact_of_entry(EntryId(entry)) {
                        c.forget(root);
                    }
                    m.forget_entry(entry);
                } else {
                    c.observe(EntryId(entry), &idents);
                    m.observe(entry, &idents);
                }
                same(&c, &m);
            }
            let loaded = Contacts::load(c.save()).expect("loads");
            same(&loaded, &m);
        }
    }
}
