//! The documents the full-text index gets when a record is applied, and
//! how the documents of one write group fold into one per entry.

use crate::model::*;
use rustc_hash::FxHashMap;

/// A document for the full-text index, produced when a record is applied.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TextDoc {
    pub(crate) entry: EntryId,
    /// Tokenized words: names, message text, parameters, error texts.
    pub(crate) text: String,
    /// The texts of later records of the entry folded into this document
    /// (see [`coalesce_docs`]), each indexed as a value of its own, so that
    /// a phrase does not run from one record's words into the next.
    pub(crate) later_texts: Vec<String>,
    /// Whole tokens matched exactly: wamid, phone digits, correlation and conversation ids.
    pub(crate) exact: Vec<String>,
}

impl TextDoc {
    /// Adds another document of the same entry to this one: its texts as
    /// values of their own, its identifiers unless this one has them.
    fn absorb(&mut self, other: TextDoc) {
        self.later_texts.extend(
            std::iter::once(other.text)
                .chain(other.later_texts)
                .filter(|t| !t.is_empty()),
        );
        for e in other.exact {
            if !self.exact.contains(&e) {
                self.exact.push(e);
            }
        }
    }
}

/// Folds the documents of one write group so that each entry has at most
/// one: a later record's document joins the entry's first one. A send and
/// its first status usually land in the same group of a bulk import (the
/// status brings the conversation id): at 1M messages the index held 1.07M
/// documents instead of 2.02M, and the import spent about 10% less CPU,
/// in indexing and in every merge. Search is per entry, so it finds the
/// same entries.
pub(crate) fn coalesce_docs(group: &mut [(Seq, Vec<TextDoc>)]) {
    let mut first: FxHashMap<EntryId, (usize, usize)> = FxHashMap::default();
    first.reserve(group.len());
    for record in 0..group.len() {
        // Folded in place: most records keep their one document, and a
        // list per record would be thousands of allocations per group.
        let mut docs = std::mem::take(&mut group[record].1);
        let mut i = 0;
        while i < docs.len() {
            match first.get(&docs[i].entry) {
                // An earlier document of this record: `d < i`, untouched by
                // removing `i`.
                Some(&(r, d)) if r == record => {
                    let doc = docs.remove(i);
                    docs[d].absorb(doc);
                }
                Some(&(r, d)) => group[r].1[d].absorb(docs.remove(i)),
                None => {
                    first.insert(docs[i].entry, (record, i));
                    i += 1;
                }
            }
        }
        group[record].1 = docs;
    }
}

pub(crate) fn push_words(buf: &mut String, s: &str) {
    if s.is_empty() {
        return;
    }
    if !buf.is_empty() {
        buf.push('\n');
    }
    buf.push_str(s);
}

/// Adds an identifier that is also an exact term (a number, a user id, a
/// username) to the words, unless it is a number: a number is one token of digits, the
/// same as its exact term, and a second copy was a term of its own in
/// every segment and merge (2% of a 1M import's CPU). Anything else (a
/// user id, a recipient that is not a number) stays in the words too, to be
/// found by its parts and in any case.
pub(super) fn push_identifier_words(buf: &mut String, id: &str) {
    if !id.bytes().all(|b| b.is_ascii_digit()) {
        push_words(buf, id);
    }
}

pub(super) fn push_error_words(buf: &mut String, err: &MetaError) {
    if let Some(c) = err.code {
        push_words(buf, &c.to_string());
    }
    for part in [&err.title, &err.message, &err.details]
        .into_iter()
        .flatten()
    {
        push_words(buf, part);
    }
}
