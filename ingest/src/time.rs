//! Instants as Ticks receives them: RFC 3339 with an offset, or epoch numbers.

use crate::error::ParseError;
use crate::json::{kind, Json};

/// An instant in UTC milliseconds with the UTC offset it was written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Instant {
    pub(crate) ms: i64,
    pub(crate) offset_s: i32,
}

/// Parses an RFC 3339 timestamp (`2025-03-01T10:00:00-03:00`, `...Z`), or a
/// number of epoch seconds or milliseconds (told apart by size).
pub(crate) fn parse_instant(v: &Json<'_>, path: &str) -> Result<Instant, ParseError> {
    match v {
        Json::String(s) => parse_rfc3339(s).ok_or_else(|| {
            ParseError::field(
                path,
                format!("{s:?} is not an RFC 3339 time with an offset"),
            )
        }),
        Json::Number(n) => {
            let n = n
                .as_i64()
                .ok_or_else(|| ParseError::field(path, format!("{n} is not an epoch time")))?;
            Ok(Instant {
                ms: epoch_to_ms(n),
                offset_s: 0,
            })
        }
        other => Err(ParseError::field(
            path,
            format!("expected a time, found {}", kind(other)),
        )),
    }
}

/// Epoch seconds or milliseconds to milliseconds: values below 10^11 are
/// seconds (10^11 s is the year 5138; 10^11 ms is 1973).
pub(crate) fn epoch_to_ms(n: i64) -> i64 {
    if n.abs() < 100_000_000_000 {
        n.saturating_mul(1000)
    } else {
        n
    }
}

/// An RFC 3339 time with the offset it was written in (`Z` is +00:00); a
/// time without an offset is refused, since it names no instant.
pub(crate) fn parse_rfc3339(s: &str) -> Option<Instant> {
    let s = s.trim();
    let ts: jiff::Timestamp = s.parse().ok()?;
    let offset = jiff::fmt::temporal::Pieces::parse(s).ok()?.offset()?;
    Some(Instant {
        ms: ts.as_millisecond(),
        offset_s: offset.to_numeric_offset().seconds(),
    })
}

/// Formats UTC milliseconds as RFC 3339 with milliseconds, in the given
/// UTC offset (the original offset of a send, or 0).
pub fn format_rfc3339(ms: i64, offset_s: i32) -> String {
    let Ok(ts) = jiff::Timestamp::from_millisecond(ms) else {
        return String::new();
    };
    let offset = jiff::tz::Offset::from_seconds(offset_s).unwrap_or(jiff::tz::Offset::UTC);
    let dt = ts.to_zoned(jiff::tz::TimeZone::fixed(offset)).datetime();
    let sign = if offset_s < 0 { '-' } else { '+' };
    let abs = offset_s.unsigned_abs();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}{sign}{:02}:{:02}",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.millisecond(),
        abs / 3600,
        (abs % 3600) / 60
    )
}

/// Meta's timestamps: unix seconds as a string (or a number).
pub(crate) fn parse_meta_timestamp(v: Option<&Json<'_>>, path: &str) -> Result<i64, ParseError> {
    match v {
        Some(Json::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(epoch_to_ms)
            .map_err(|_| ParseError::field(path, format!("{s:?} is not unix seconds"))),
        Some(Json::Number(n)) => n
            .as_i64()
            .map(epoch_to_ms)
            .ok_or_else(|| ParseError::field(path, format!("{n} is not unix seconds"))),
        Some(other) => Err(ParseError::field(
            path,
            format!("expected unix seconds, found {}", kind(other)),
        )),
        None => Err(ParseError::field(path, "missing")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_kept() {
        let i = parse_rfc3339("2025-03-01T10:00:00-03:00").expect("valid");
        assert_eq!(i.offset_s, -3 * 3600);
        assert_eq!(
            i.ms,
            parse_rfc3339("2025-03-01T13:00:00Z").expect("valid").ms
        );
        assert_eq!(
            parse_rfc3339("2025-03-01T10:00:00+05:30").map(|i| i.offset_s),
            Some(19800)
        );
    }

    #[test]
    fn times_without_offset_are_refused() {
        assert!(parse_rfc3339("2025-03-01T10:00:00").is_none());
        assert!(parse_rfc3339("yesterday").is_none());
    }
}
