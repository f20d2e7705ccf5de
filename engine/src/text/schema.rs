//! The index's schema and settings, and the collector that turns matches
//! into entry ids: what the other parts of the text index share.

use roaring::RoaringBitmap;
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::merge_policy::LogMergePolicy;
use tantivy::schema::{Field, Schema, FAST, INDEXED, STRING, TEXT};
use tantivy::{Index, IndexSettings, IndexSortByField, Order};

pub(super) const WRITER_HEAP_BYTES: usize = 64 * 1024 * 1024;
/// Upper bound on terms in one user query, so a pasted novel cannot build a
/// query that takes seconds.
pub(super) const MAX_QUERY_TERMS: usize = 32;

#[derive(Clone, Copy)]
pub(super) struct Fields {
    pub(super) entry: Field,
    pub(super) seq: Field,
    pub(super) text: Field,
    pub(super) exact: Field,
}

pub(super) fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let entry = b.add_u64_field("entry", INDEXED | FAST);
    let seq = b.add_u64_field("seq", FAST);
    let text = b.add_text_field("text", TEXT);
    let exact = b.add_text_field("exact", STRING);
    (
        b.build(),
        Fields {
            entry,
            seq,
            text,
            exact,
        },
    )
}

/// Every segment keeps its documents in log order, merged segments too:
/// documents are added in that order, and a merge of segments whose
/// sequence numbers do not overlap (always the case) just stacks them by
/// their first one. Without it a merge stacks segments in whatever order
/// it picked them, and a week of candidates spreads over the whole index.
pub(super) fn settings() -> IndexSettings {
    IndexSettings {
        sort_by_field: Some(IndexSortByField {
            field: "seq".into(),
            order: Order::Asc,
        }),
        ..IndexSettings::default()
    }
}

/// Segments over this many documents are not merged again (tantivy's
/// default is 10M): eight or more smaller ones merge into one of up to
/// about 2M, which then stays (at 10M messages: 26 segments, the largest
/// 1.2M documents). Each merge level rewrites every posting of its
/// segments; at 10M messages merges were a quarter of an import's CPU, and
/// 44% of it two thirds in. Queries lose little: a query's candidates sit
/// in the few segments of their days, each searched through its own map.
pub(super) const MERGE_SEGMENTS_UP_TO_DOCS: usize = 250_000;

pub(super) fn merge_policy() -> LogMergePolicy {
    let mut policy = LogMergePolicy::default();
    policy.set_max_docs_before_merge(MERGE_SEGMENTS_UP_TO_DOCS);
    policy
}

/// Whether an index on disk has this build's schema and document order
/// (indexes written before documents carried their sequence number are
/// rebuilt from the log).
pub(super) fn is_current(index: &Index) -> bool {
    let (schema, _) = schema();
    index.schema() == schema && index.settings().sort_by_field == settings().sort_by_field
}

/// Collects the `entry` fast field of every matching document.
pub(super) struct EntryCollector;

pub(super) struct EntrySegmentCollector {
    column: tantivy::columnar::Column<u64>,
    /// Entry ids in document order: nearly ascending (documents are added
    /// as records are applied), so collecting them in a vector and sorting
    /// once beats inserting each into a bitmap, which shifts array
    /// containers on every out-of-order id.
    ids: Vec<u32>,
}

impl Collector for EntryCollector {
    type Fruit = RoaringBitmap;
    type Child = EntrySegmentCollector;

    fn for_segment(
        &self,
        _segment_local_id: tantivy::SegmentOrdinal,
        segment: &tantivy::SegmentReader,
    ) -> tantivy::Result<EntrySegmentCollector> {
        Ok(EntrySegmentCollector {
            column: segment.fast_fields().u64("entry")?,
            ids: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<RoaringBitmap>) -> tantivy::Result<RoaringBitmap> {
        let mut all = RoaringBitmap::new();
        for f in fruits {
            all |= f;
        }
        Ok(all)
    }
}

impl SegmentCollector for EntrySegmentCollector {
    type Fruit = RoaringBitmap;

    fn collect(&mut self, doc: tantivy::DocId, _score: tantivy::Score) {
        if let Some(id) = self.column.first(doc) {
            self.ids.push(id as u32);
        }
    }

    fn harvest(mut self) -> RoaringBitmap {
        self.ids.sort_unstable();
        self.ids.dedup();
        // Sorted and deduplicated just above, so this cannot fail; the
        // fallback only keeps the type honest.
        RoaringBitmap::from_sorted_iter(self.ids.iter().copied())
            .unwrap_or_else(|_| self.ids.iter().copied().collect())
    }
}
