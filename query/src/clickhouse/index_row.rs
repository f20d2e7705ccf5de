//! An index row's `row`: what a derivation follows from one input (its
//! `seq`, receive time, keys, people and quoted messages) and, on an
//! entry's rows (`k:`), its events, in one string that ClickHouse makes
//! (the materialized view's expression, [`row_sql`]) and Ticks reads
//! ([`IndexRow::parse`]).
//!
//! Why one string and not a column each: a derivation asks thousands of
//! identifiers at a time, and ClickHouse reads at least one compressed
//! block (64 KiB and more) of every column for each identifier. With the
//! seven columns of version 6 a closure statement of 3,000 entry
//! identifiers at 10M took 0.64-1.0 s; the same rows as one string in
//! granules of 128 took 0.35-0.53 s (see RESULTS, "Ideas tried").
//!
//! The form, in text so that ClickHouse 18.16's string functions can make
//! it: `seq received_ms` and a space, then three lists (keys, people,
//! links), each `count` and a space followed by `count` netstrings
//! (`length:bytes`), then the events as one netstring (`0:` on the rows
//! that are not an entry's).

/// The SQL expression of a row, over the columns of `inputs` and the
/// row's `ident`.
pub(super) fn row_sql() -> String {
    let list = |column: &str| {
        format!(
            "toString(length({column})), ' ', \
arrayStringConcat(arrayMap(s -> concat(toString(length(s)), ':', s), {column}))"
        )
    };
    format!(
        "concat(toString(seq), ' ', toString(received_ms), ' ', {}, {}, {}, \
if(substring(ident, 1, 2) = 'k:', concat(toString(length(events)), ':', events), '0:'))",
        list("keys"),
        list("people"),
        list("links")
    )
}

/// One index row, borrowed from the answer it was read from.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct IndexRow<'a> {
    pub(super) seq: u64,
    pub(super) received_ms: i64,
    pub(super) keys: Vec<&'a [u8]>,
    pub(super) people: Vec<&'a [u8]>,
    pub(super) links: Vec<&'a [u8]>,
    /// The input's events (MessagePack) on an entry's row, else empty.
    pub(super) events: &'a [u8],
}

/// Reads a row of the form [`row_sql`] makes, from its start.
struct Cursor<'a> {
    bytes: &'a [u8],
}

impl<'a> Cursor<'a> {
    /// A decimal number ended by `end`.
    fn number(&mut self, end: u8) -> Option<&'a str> {
        let at = self.bytes.iter().position(|b| *b == end)?;
        let (digits, rest) = self.bytes.split_at(at);
        self.bytes = &rest[1..];
        std::str::from_utf8(digits).ok()
    }

    fn count(&mut self, end: u8) -> Option<usize> {
        self.number(end)?.parse().ok()
    }

    fn netstring(&mut self) -> Option<&'a [u8]> {
        let n = self.count(b':')?;
        if self.bytes.len() < n {
            return None;
        }
        let (value, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Some(value)
    }

    fn list(&mut self) -> Option<Vec<&'a [u8]>> {
        let n = self.count(b' ')?;
        // A count larger than the bytes left is a damaged row, not an
        // allocation.
        let mut out = Vec::with_capacity(n.min(self.bytes.len()));
        for _ in 0..n {
            out.push(self.netstring()?);
        }
        Some(out)
    }
}

impl<'a> IndexRow<'a> {
    /// The row `bytes` holds; `None` if it is not of the form [`row_sql`]
    /// makes.
    pub(super) fn parse(bytes: &'a [u8]) -> Option<IndexRow<'a>> {
        let mut c = Cursor { bytes };
        let seq = c.number(b' ')?.parse().ok()?;
        let received_ms = c.number(b' ')?.parse().ok()?;
        let keys = c.list()?;
        let people = c.list()?;
        let links = c.list()?;
        let events = c.netstring()?;
        if !c.bytes.is_empty() {
            return None;
        }
        Some(IndexRow {
            seq,
            received_ms,
            keys,
            people,
            links,
            events,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_reads_back_its_lists_and_events_whatever_bytes_they_hold() {
        // Separators inside values are read as bytes, by their lengths.
        let row = b"42 -7 2 3:a b5:k:1:x1 0:1 10:wamid. 1:24:\x00:\xff ";
        let parsed = IndexRow::parse(row).expect("a row");
        assert_eq!(parsed.seq, 42);
        assert_eq!(parsed.received_ms, -7);
        assert_eq!(parsed.keys, vec![&b"a b"[..], b"k:1:x"]);
        assert_eq!(parsed.people, vec![&b""[..]]);
        assert_eq!(parsed.links, vec![&b"wamid. 1:2"[..]]);
        assert_eq!(parsed.events, b"\x00:\xff ");
    }

    #[test]
    fn a_row_that_is_not_of_the_form_is_refused_not_misread() {
        for bad in [
            &b""[..],
            b"42 7 0 0 0 ",
            b"42 7 0 0 0 5:abc",
            b"42 7 0 0 0 0:trailing",
            b"x 7 0 0 0 0:",
            b"42 7 99999999999 0 0 0:",
        ] {
            assert_eq!(
                IndexRow::parse(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(IndexRow::parse(b"42 7 0 0 0 0:").is_some());
    }
}
