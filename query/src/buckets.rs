//! Local calendar buckets (days or hours in an IANA zone) built from the
//! UTC hour bitmaps: shared by group-by and the report's series.

use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, Zoned};
use serde::Serialize;
use ticks_engine::Key;

/// Width of a time-series bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Interval {
    /// Local hours of the query's time zone.
    Hour,
    /// Local calendar days of the query's time zone.
    Day,
}

/// Maps UTC hours to local buckets, remembering each hour's answer.
pub(crate) struct Bucketer<'a> {
    tz: &'a TimeZone,
    interval: Interval,
    /// UTC hour -> the bucket start when the whole hour lies in one bucket.
    hours: rustc_hash::FxHashMap<Key, Option<Zoned>>,
}

impl<'a> Bucketer<'a> {
    pub(crate) fn new(tz: &'a TimeZone, interval: Interval) -> Bucketer<'a> {
        Bucketer {
            tz,
            interval,
            hours: Default::default(),
        }
    }
    /// The bucket of a whole UTC hour; `None` when the zone's offset is not
    /// whole hours (then each entry is placed by its own time).
    pub(crate) fn of_hour(&mut self, hour: Key) -> Option<Zoned> {
        let (tz, interval) = (self.tz, self.interval);
        self.hours
            .entry(hour)
            .or_insert_with(|| whole_hour(hour.hour_start_ms(), tz, interval))
            .clone()
    }
    /// The bucket of the UTC hour starting at `start_ms` when the whole
    /// hour lies in one bucket (not remembered: see [`Bucketer::of_hour`]).
    pub(crate) fn of_whole_hour(&self, start_ms: i64) -> Option<Zoned> {
        whole_hour(start_ms, self.tz, self.interval)
    }

    pub(crate) fn of_ms(&self, ms: i64) -> Option<Zoned> {
        bucket_of(ms, self.tz, self.interval)
    }
}

/// The bucket of the UTC hour starting at `start_ms`, when the zone's
/// offset is whole hours then (the hour lies in one bucket).
fn whole_hour(start_ms: i64, tz: &TimeZone, interval: Interval) -> Option<Zoned> {
    let whole = Timestamp::from_millisecond(start_ms)
        .map(|ts| tz.to_offset(ts).seconds() % 3600 == 0)
        .unwrap_or(false);
    if whole {
        bucket_of(start_ms, tz, interval)
    } else {
        None
    }
}

/// The local bucket containing `ms`.
fn bucket_of(ms: i64, tz: &TimeZone, interval: Interval) -> Option<Zoned> {
    let z = Timestamp::from_millisecond(ms).ok()?.to_zoned(tz.clone());
    match interval {
        Interval::Day => z.start_of_day().ok(),
        Interval::Hour => {
            let dt = z.datetime();
            let into_hour_ms = (i64::from(dt.minute()) * 60 + i64::from(dt.second())) * 1000
                + i64::from(dt.subsec_nanosecond()) / 1_000_000;
            Some(
                Timestamp::from_millisecond(ms - into_hour_ms)
                    .ok()?
                    .to_zoned(tz.clone()),
            )
        }
    }
}

pub(crate) fn bucket_label(z: &Zoned, interval: Interval) -> String {
    let dt = z.datetime();
    match interval {
        Interval::Day => format!("{:04}-{:02}-{:02}", dt.year(), dt.month(), dt.day()),
        Interval::Hour => format!(
            "{:04}-{:02}-{:02}T{:02}:00",
            dt.year(),
            dt.month(),
            dt.day(),
            dt.hour()
        ),
    }
}

pub(crate) fn next_bucket(z: &Zoned, interval: Interval) -> Option<Zoned> {
    match interval {
        Interval::Day => z.checked_add(1.day()).ok()?.start_of_day().ok(),
        Interval::Hour => z.checked_add(1.hour()).ok(),
    }
}
