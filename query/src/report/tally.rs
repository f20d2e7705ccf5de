//! What a report counts before it is laid out: the tallies both plans
//! (and a backend that counts in its database) produce, and the rules a
//! message is counted by (`tally_outbound`, `ReplyTally::count`).

use crate::scan::Map;
use jiff::Zoned;
use std::collections::BTreeMap;
use ticks_engine::{Attribution, Direction, Field, Key, Status};

/// Fields with a breakdown in `counts`.
pub(super) const BREAKDOWNS: [Field; 13] = [
    Field::Status,
    Field::ResponseCode,
    Field::ErrorCode,
    Field::Category,
    Field::Name,
    Field::Template,
    Field::RecipientType,
    Field::ContentType,
    Field::Direction,
    Field::Subaccount,
    Field::User,
    Field::ConversationType,
    Field::PricingCategory,
];

/// Everything a report counts, as raw bitmap keys, before it is decoded
/// and laid out; both plans produce it.
#[derive(Default)]
pub(super) struct Tallies {
    pub(super) total: u64,
    pub(super) breakdowns: Vec<(Field, Map<Key, u64>)>,
    pub(super) overall: FunnelTally,
    pub(super) funnels: Map<Key, FunnelTally>,
    pub(super) buckets: BTreeMap<i64, BucketTally>,
    pub(super) inbound: u64,
    pub(super) clicks: u64,
    /// Inbound non-clicks whose `funnel_by` is unknown (not linked to a message).
    pub(super) unlinked: u64,
    pub(super) inbound_content: Map<Key, u64>,
    /// `funnel_by` key -> replies and clicks, quoted and inferred.
    pub(super) inbound_by: Map<Key, ReplyTally>,
    /// Inbound messages tied to what they answer by a quote, or inferred.
    pub(super) quoted: u64,
    pub(super) inferred: u64,
    pub(super) buttons: Map<Key, u64>,
}

/// Replies and clicks answering one `funnel_by` value.
#[derive(Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct ReplyTally {
    pub(super) replies: u64,
    pub(super) clicks: u64,
    pub(super) quoted: u64,
    pub(super) inferred: u64,
}

impl ReplyTally {
    pub(super) fn add(&mut self, other: ReplyTally) {
        self.replies += other.replies;
        self.clicks += other.clicks;
        self.quoted += other.quoted;
        self.inferred += other.inferred;
    }

    /// Counts one inbound message by whether it is a click and how it was
    /// attributed.
    #[inline]
    pub(super) fn count(&mut self, click: bool, attribution: Key) {
        self.count_n(click, attribution, 1);
    }

    /// Counts `n` inbound messages alike.
    #[inline]
    pub(super) fn count_n(&mut self, click: bool, attribution: Key, n: u64) {
        if click {
            self.clicks += n;
        } else {
            self.replies += n;
        }
        if attribution == QUOTED {
            self.quoted += n;
        } else if attribution == INFERRED {
            self.inferred += n;
        }
    }
}

#[derive(Default, Clone)]
pub(super) struct FunnelTally {
    pub(super) attempted: u64,
    /// Rejected or no response.
    pub(super) refused: u64,
    pub(super) failed: u64,
    /// Reached at least sent, delivered, read.
    pub(super) reached: [u64; 3],
    pub(super) engaged: u64,
    /// Error code -> failed, rejected or unanswered entries.
    pub(super) reasons: Map<Key, u64>,
}

impl Tallies {
    /// Adds what the other half of the same scan counted.
    pub(super) fn merge(&mut self, o: Tallies) {
        self.overall.add(&o.overall);
        for (key, f) in o.funnels {
            self.funnels.entry(key).or_default().add(&f);
        }
        for ((_, mine), (_, theirs)) in self.breakdowns.iter_mut().zip(o.breakdowns) {
            for (key, n) in theirs {
                *mine.entry(key).or_default() += n;
            }
        }
        for (ms, b) in o.buckets {
            match self.buckets.entry(ms) {
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(b);
                }
                std::collections::btree_map::Entry::Occupied(mut e) => e.get_mut().add(b),
            }
        }
        self.inbound += o.inbound;
        self.clicks += o.clicks;
        self.unlinked += o.unlinked;
        self.quoted += o.quoted;
        self.inferred += o.inferred;
        for (key, n) in o.inbound_content {
            *self.inbound_content.entry(key).or_default() += n;
        }
        for (key, r) in o.inbound_by {
            self.inbound_by.entry(key).or_default().add(r);
        }
        for (key, n) in o.buttons {
            *self.buttons.entry(key).or_default() += n;
        }
    }
}

impl FunnelTally {
    pub(super) fn add(&mut self, o: &FunnelTally) {
        self.attempted += o.attempted;
        self.refused += o.refused;
        self.failed += o.failed;
        for (a, b) in self.reached.iter_mut().zip(o.reached) {
            *a += b;
        }
        self.engaged += o.engaged;
        for (k, n) in &o.reasons {
            *self.reasons.entry(*k).or_default() += n;
        }
    }
}

pub(super) struct BucketTally {
    pub(super) start: Zoned,
    pub(super) total: u64,
    pub(super) outbound: u64,
    pub(super) status: Map<Key, u64>,
    pub(super) code: Map<Key, u64>,
}

impl BucketTally {
    pub(super) fn add(&mut self, o: BucketTally) {
        self.total += o.total;
        self.outbound += o.outbound;
        for (key, n) in o.status {
            *self.status.entry(key).or_default() += n;
        }
        for (key, n) in o.code {
            *self.code.entry(key).or_default() += n;
        }
    }

    pub(super) fn new(start: Zoned) -> BucketTally {
        BucketTally {
            start,
            total: 0,
            outbound: 0,
            status: Map::default(),
            code: Map::default(),
        }
    }
}

pub(super) const OUTBOUND: Key = Key::direction(Direction::Outbound);
pub(super) const INBOUND: Key = Key::direction(Direction::Inbound);
pub(super) const FAILED: Key = Key::status(Status::Failed);
pub(super) const REJECTED: Key = Key::status(Status::Rejected);
pub(super) const NO_RESPONSE: Key = Key::status(Status::NoResponse);
pub(super) const QUOTED: Key = Key::attribution(Attribution::Quoted);
pub(super) const INFERRED: Key = Key::attribution(Attribution::Inferred);

#[inline]
pub(super) fn tally_outbound(
    f: &mut FunnelTally,
    status: Key,
    reached: Key,
    engagement: Key,
    error: Key,
) {
    tally_outbound_n(f, status, reached, engagement, error, 1);
}

/// Counts `n` outbound entries that share these keys into a funnel.
#[inline]
pub(super) fn tally_outbound_n(
    f: &mut FunnelTally,
    status: Key,
    reached: Key,
    engagement: Key,
    error: Key,
    n: u64,
) {
    f.attempted += n;
    if status == REJECTED || status == NO_RESPONSE {
        f.refused += n;
    }
    if status == FAILED {
        f.failed += n;
    }
    if matches!(status, FAILED | REJECTED | NO_RESPONSE) {
        *f.reasons.entry(error).or_default() += n;
    }
    if let Some(reached) = reached.as_reached() {
        for step in f.reached.iter_mut().take(reached as usize) {
            *step += n;
        }
    }
    if !engagement.is_none() {
        f.engaged += n;
    }
}
