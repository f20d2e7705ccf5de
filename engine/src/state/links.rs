//! The outbound entries of each (business number, customer) pair, newest
//! first, as lists linked through entry ids: what the 24-hour window and
//! reply links look up.

use super::interner::Sym;
use rustc_hash::FxHashMap;

/// Outbound entries by (phone number id, customer), to open their 24 h
/// window when an earlier inbound message is learned late. The entries of
/// a pair form a list through entry ids, newest first: `newest[pair]`,
/// then `previous[id]`. 4 bytes an entry and a map slot a pair, where a
/// vector per pair cost ~100 bytes a pair (~325 MB at 10M entries).
#[derive(Default)]
pub(super) struct OutboundByPair {
    pub(super) newest: FxHashMap<(Sym, Sym), u32>,
    /// By entry id: the next older entry of its pair, [`LIST_END`] after
    /// the oldest, [`UNLISTED`] for entries in no list.
    pub(super) previous: Vec<u32>,
}

pub(super) const LIST_END: u32 = u32::MAX - 1;
pub(super) const UNLISTED: u32 = u32::MAX;

impl OutboundByPair {
    /// Puts `id` at the head of `pair`'s list, unless it is in it already.
    pub(super) fn push(&mut self, pair: (Sym, Sym), id: u32) {
        let idx = id as usize;
        if self.previous.len() <= idx {
            self.previous.resize(idx + 1, UNLISTED);
        }
        if self.previous[idx] != UNLISTED {
            return;
        }
        let head = self.newest.insert(pair, id).unwrap_or(LIST_END);
        self.previous[idx] = head;
    }

    /// Takes `id` out of `pair`'s list.
    pub(super) fn remove(&mut self, pair: (Sym, Sym), id: u32) {
        let Some(&head) = self.newest.get(&pair) else {
            return;
        };
        let Some(&after) = self.previous.get(id as usize) else {
            return;
        };
        if after == UNLISTED {
            return;
        }
        if head == id {
            if after == LIST_END {
                self.newest.remove(&pair);
            } else {
                self.newest.insert(pair, after);
            }
        } else {
            let mut at = head;
            while let Some(&next) = self.previous.get(at as usize) {
                if next == id {
                    self.previous[at as usize] = after;
                    break;
                }
                if next == LIST_END || next == UNLISTED {
                    return; // not in this pair's list
                }
                at = next;
            }
        }
        self.previous[id as usize] = UNLISTED;
    }

    /// `pair`'s entries, newest first.
    pub(super) fn list(&self, pair: (Sym, Sym)) -> impl Iterator<Item = u32> + '_ {
        let mut at = self.newest.get(&pair).copied().unwrap_or(LIST_END);
        std::iter::from_fn(move || {
            if at == LIST_END || at == UNLISTED {
                return None;
            }
            let id = at;
            at = self.previous.get(id as usize).copied().unwrap_or(LIST_END);
            Some(id)
        })
    }
}
