//! The query language as it arrives: key/value parameters (HTTP query
//! strings, CLI flags), validated into a [`LogQuery`].
//!
//! ```text
//! query     := param ("&" param)*
//! param     := ["-"] filter "=" ["-"] value      (repeat a filter for OR; "-" negates)
//!            | "from=" time | "to=" time | "tz=" iana-zone
//!            | "text=" free-text | "sort=" ["-"] column
//!            | "limit=" 0..=1000 (0: the total alone) | "offset=" n | "cursor=" token
//! filter    := category | response_code | recipient_type | status | name | template
//!            | error_code | direction | content_type | phone_number_id | subaccount
//!            | user | correlation_id | conversation_type | pricing_category
//!            | session | language | engagement | reached | button
//!            | pricing_type | attribution | event | marketing | opted_out
//!            | phone | contact | wamid | id
//! time      := RFC 3339 | epoch milliseconds | YYYY-MM-DD[THH:MM[:SS]] (in tz)
//! ```

use crate::error::QueryError;
use crate::fields::FilterField;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use ticks_engine::{Field, Value};

/// Largest page.
pub const MAX_LIMIT: usize = 1000;
/// Default page size.
pub const DEFAULT_LIMIT: usize = 50;
/// Most values one query may list across all filters, to bound its cost.
const MAX_FILTER_VALUES: usize = 256;
/// Most entry ids one query may list.
const MAX_ID_VALUES: usize = 10_000;

/// One filter: the entry's value must be one of `include` (or none of
/// `exclude`).
#[derive(Clone, Debug, PartialEq)]
pub struct Filter {
    /// The parameter name as given.
    pub param: String,
    /// What it tests.
    pub field: FilterField,
    /// Accepted values (OR).
    pub include: Vec<FilterValue>,
    /// Excluded values.
    pub exclude: Vec<FilterValue>,
}

/// One value a filter names, parsed once by its field's type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FilterValue {
    /// A value of a field with a bitmap index.
    Indexed(Value),
    /// An entry id.
    Id(u32),
    /// A value matched exactly: a message id, a correlation id, or a
    /// phone's digits (or a business-scoped user id).
    Exact(String),
    /// Yes or no.
    Flag(bool),
}

/// A sortable column of the log table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Column {
    /// Recorded on (the default).
    RecordedAt,
    /// The entry id (`#`).
    Id,
    /// A column with a bitmap index.
    Indexed(#[serde(with = "field_name")] Field),
    /// The customer's phone.
    Phone,
    /// Correlation id.
    CorrelationId,
}

mod field_name {
    use ticks_engine::Field;
    pub(crate) fn serialize<S: serde::Serializer>(f: &Field, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{f:?}"))
    }
    pub(crate) fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Field, D::Error> {
        let name: String = serde::Deserialize::deserialize(d)?;
        Field::ALL
            .iter()
            .copied()
            .find(|f| format!("{f:?}") == name)
            .ok_or_else(|| serde::de::Error::custom("unknown field"))
    }
}

impl Column {
    /// Parses a column name (see the field catalog, `crate::FIELDS`).
    pub fn parse(name: &str) -> Option<Column> {
        let spec = crate::fields::field(name).filter(|f| f.sortable)?;
        Some(match (spec.name, spec.filter) {
            ("recorded_at", _) => Column::RecordedAt,
            (_, Some(FilterField::Id)) => Column::Id,
            (_, Some(FilterField::Indexed(f))) => Column::Indexed(f),
            (_, Some(FilterField::Phone)) => Column::Phone,
            (_, Some(FilterField::CorrelationId)) => Column::CorrelationId,
            _ => return None,
        })
    }
}

/// Sort order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sort {
    /// The column.
    pub column: Column,
    /// Descending when true.
    pub descending: bool,
}

impl Default for Sort {
    fn default() -> Self {
        Sort {
            column: Column::RecordedAt,
            descending: true,
        }
    }
}

/// A validated log query.
#[derive(Clone, Debug)]
pub struct LogQuery {
    /// Field filters (AND between filters).
    pub filters: Vec<Filter>,
    /// Inclusive start, UTC milliseconds.
    pub from_ms: Option<i64>,
    /// Exclusive end, UTC milliseconds.
    pub to_ms: Option<i64>,
    /// The time zone for dates without offsets and for day/hour groups.
    pub tz: TimeZone,
    /// Free text.
    pub text: Option<String>,
    /// Sort order.
    pub sort: Sort,
    /// Page size.
    pub limit: usize,
    /// Rows to skip (ignored with a cursor).
    pub offset: usize,
    /// Continue after this cursor.
    pub cursor: Option<String>,
}

impl Default for LogQuery {
    fn default() -> Self {
        LogQuery {
            filters: Vec::new(),
            from_ms: None,
            to_ms: None,
            tz: TimeZone::UTC,
            text: None,
            sort: Sort::default(),
            limit: DEFAULT_LIMIT,
            offset: 0,
            cursor: None,
        }
    }
}

fn invalid(param: &str, message: impl Into<String>) -> QueryError {
    QueryError::InvalidParam {
        param: param.to_string(),
        message: message.into(),
    }
}

impl LogQuery {
    /// True when the query narrows nothing: no filter value, no time bound
    /// and no free text, so it matches every entry. A deletion refuses such
    /// a query unless it says `all` (see the server's `purge` module).
    pub fn selects_everything(&self) -> bool {
        self.from_ms.is_none()
            && self.to_ms.is_none()
            && self.text.is_none()
            && self
                .filters
                .iter()
                .all(|f| f.include.is_empty() && f.exclude.is_empty())
    }

    /// Validates query parameters. Parameters in `ignore` (e.g. an export's
    /// `format`) are skipped; any other unknown name is an error.
    pub fn from_params(
        params: &[(String, String)],
        ignore: &[&str],
    ) -> Result<LogQuery, QueryError> {
        let mut q = LogQuery::default();
        // tz first: dates in from/to are read in it.
        if let Some((_, tz)) = params.iter().rev().find(|(k, _)| k == "tz") {
            q.tz = parse_tz(tz)?;
        }
        let mut from_raw = None;
        let mut to_raw = None;
        let mut n_values = 0;
        let mut n_ids = 0;
        for (key, value) in params {
            let key = key.as_str();
            match key {
                "tz" => {}
                "from" => from_raw = Some(value.clone()),
                "to" => to_raw = Some(value.clone()),
                "text" | "q" => {
                    let t = value.trim();
                    if t.chars().count() > 500 {
                        return Err(invalid(key, "free text is limited to 500 characters"));
                    }
                    q.text = (!t.is_empty()).then(|| t.to_string());
                }
                "sort" => {
                    let (descending, name) = match value.strip_prefix('-') {
                        Some(n) => (true, n),
                        None => (false, value.as_str()),
                    };
                    let column = Column::parse(name)
                        .ok_or_else(|| invalid(key, format!("unknown column {name:?}")))?;
                    q.sort = Sort { column, descending };
                }
                "limit" => {
                    let n: usize = value
                        .parse()
                        .map_err(|_| invalid(key, format!("{value:?} is not a number")))?;
                    // 0 asks for the total alone (as Elasticsearch's `size=0`).
                    if n > MAX_LIMIT {
                        return Err(invalid(
                            key,
                            format!("must be between 0 and {MAX_LIMIT}, got {n}"),
                        ));
                    }
                    q.limit = n;
                }
                "offset" => {
                    q.offset = value
                        .parse()
                        .map_err(|_| invalid(key, format!("{value:?} is not a number")))?;
                }
                "cursor" => q.cursor = (!value.is_empty()).then(|| value.clone()),
                _ if ignore.contains(&key) => {}
                _ => {
                    let (negated_key, name) = match key.strip_prefix('-') {
                        Some(n) => (true, n),
                        None => (false, key),
                    };
                    let field = FilterField::parse(name)
                        .ok_or_else(|| invalid(key, "unknown parameter"))?;
                    for v in value.split(',').filter(|v| !v.is_empty()) {
                        let (negated_value, v) = match v.strip_prefix('-') {
                            Some(rest)
                                if !matches!(field, FilterField::Indexed(Field::ErrorCode))
                                    || !rest.is_empty() =>
                            {
                                (true, rest)
                            }
                            _ => (false, v),
                        };
                        let v = validate_value(name, field, v)?;
                        // Selected rows may be many ids; other values cost a bitmap each.
                        if field == FilterField::Id {
                            n_ids += 1;
                        } else {
                            n_values += 1;
                        }
                        if n_ids > MAX_ID_VALUES {
                            return Err(invalid(
                                key,
                                format!("a query may list at most {MAX_ID_VALUES} ids"),
                            ));
                        }
                        if n_values > MAX_FILTER_VALUES {
                            return Err(invalid(
                                key,
                                format!(
                                    "a query may list at most {MAX_FILTER_VALUES} filter values"
                                ),
                            ));
                        }
                        let filter = match q.filters.iter_mut().find(|f| f.param == name) {
                            Some(f) => f,
                            None => {
                                q.filters.push(Filter {
                                    param: name.to_string(),
                                    field,
                                    include: vec![],
                                    exclude: vec![],
                                });
                                q.filters
                                    .last_mut()
                                    .ok_or_else(|| invalid(key, "internal"))?
                            }
                        };
                        if negated_key ^ negated_value {
                            filter.exclude.push(v);
                        } else {
                            filter.include.push(v);
                        }
                    }
                }
            }
        }
        if let Some(f) = from_raw {
            q.from_ms = Some(parse_time(&f, &q.tz, false).map_err(|m| invalid("from", m))?);
        }
        if let Some(t) = to_raw {
            q.to_ms = Some(parse_time(&t, &q.tz, true).map_err(|m| invalid("to", m))?);
        }
        if let (Some(f), Some(t)) = (q.from_ms, q.to_ms) {
            if f >= t {
                return Err(invalid(
                    "to",
                    "the range is empty or inverted: `to` must be after `from`",
                ));
            }
        }
        Ok(q)
    }
}

fn validate_value(param: &str, field: FilterField, v: &str) -> Result<FilterValue, QueryError> {
    Ok(match field {
        FilterField::Indexed(f) => {
            FilterValue::Indexed(f.parse_value(v).map_err(|m| invalid(param, m))?)
        }
        FilterField::Id => FilterValue::Id(
            v.parse()
                .map_err(|_| invalid(param, format!("{v:?} is not an entry id")))?,
        ),
        FilterField::Phone => FilterValue::Exact(ticks_engine::normalize_phone(v)),
        FilterField::Wamid | FilterField::CorrelationId | FilterField::Contact => {
            FilterValue::Exact(v.trim().to_string())
        }
        FilterField::OptedOut => FilterValue::Flag(match v {
            "true" | "yes" | "1" => true,
            "false" | "no" | "0" => false,
            _ => return Err(invalid(param, format!("{v:?}: use true or false"))),
        }),
        FilterField::Event => FilterValue::Indexed(
            Field::Category
                .parse_value(v)
                .map_err(|m| invalid(param, m))?,
        ),
    })
}

/// Parses an IANA time zone name (or `UTC`, or a fixed offset like `-03:00`).
pub fn parse_tz(name: &str) -> Result<TimeZone, QueryError> {
    if name.eq_ignore_ascii_case("utc") || name == "Z" {
        return Ok(TimeZone::UTC);
    }
    if let Ok(tz) = TimeZone::get(name) {
        return Ok(tz);
    }
    if let Some(off) = parse_offset(name) {
        return Ok(TimeZone::fixed(off));
    }
    Err(invalid(
        "tz",
        format!("unknown time zone {name:?} (use an IANA name like America/Sao_Paulo)"),
    ))
}

fn parse_offset(s: &str) -> Option<jiff::tz::Offset> {
    let sign = match s.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (h, m) = s[1..].split_once(':').unwrap_or((&s[1..], "0"));
    let secs = sign * (h.parse::<i32>().ok()? * 3600 + m.parse::<i32>().ok()? * 60);
    jiff::tz::Offset::from_seconds(secs).ok()
}

/// Parses a time bound. A date alone is a whole day in `tz`: as `to` it
/// includes that day (the bound becomes the next midnight).
pub fn parse_time(s: &str, tz: &TimeZone, is_end: bool) -> Result<i64, String> {
    let s = s.trim();
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()) {
        return s.parse::<i64>().map_err(|e| e.to_string());
    }
    if let Ok(ts) = s.parse::<jiff::Timestamp>() {
        return Ok(ts.as_millisecond());
    }
    if let Ok(date) = s.parse::<jiff::civil::Date>() {
        let date = if is_end {
            date.tomorrow().map_err(|e| e.to_string())?
        } else {
            date
        };
        return date
            .to_zoned(tz.clone())
            .map(|z| z.timestamp().as_millisecond())
            .map_err(|e| e.to_string());
    }
    if let Ok(dt) = s.parse::<DateTime>() {
        return dt
            .to_zoned(tz.clone())
            .map(|z| z.timestamp().as_millisecond())
            .map_err(|e| e.to_string());
    }
    Err(format!(
        "{s:?} is not a time: use RFC 3339 (2025-03-01T10:00:00-03:00), epoch milliseconds, or a date (2025-03-01)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn repeated_filters_are_or_and_dashes_negate() {
        let q = LogQuery::from_params(
            &p(&[
                ("status", "read"),
                ("status", "delivered"),
                ("-category", "template_bot"),
                ("response_code", "-429"),
            ]),
            &[],
        )
        .expect("valid");
        let status = q
            .filters
            .iter()
            .find(|f| f.param == "status")
            .expect("status");
        assert_eq!(
            status.include,
            vec![
                FilterValue::Indexed(Value::Status(ticks_engine::Status::Read)),
                FilterValue::Indexed(Value::Status(ticks_engine::Status::Delivered))
            ]
        );
        let cat = q
            .filters
            .iter()
            .find(|f| f.param == "category")
            .expect("category");
        assert_eq!(
            cat.exclude,
            vec![FilterValue::Indexed(Value::Text("template_bot".into()))]
        );
        let code = q
            .filters
            .iter()
            .find(|f| f.param == "response_code")
            .expect("code");
        assert_eq!(code.exclude, vec![FilterValue::Indexed(Value::Code(429))]);
    }

    #[test]
    fn errors_name_the_parameter() {
        let cases = [
            (vec![("colour", "red")], "colour"),
            (vec![("from", "yesterday")], "from"),
            (vec![("from", "2025-03-02"), ("to", "2025-03-01")], "to"),
            (vec![("limit", "1001")], "limit"),
            (vec![("limit", "-1")], "limit"),
            (vec![("status", "teleported")], "status"),
            (vec![("tz", "Mars/Olympus")], "tz"),
            (vec![("sort", "colour")], "sort"),
            (vec![("response_code", "abc")], "response_code"),
        ];
        for (params, name) in cases {
            match LogQuery::from_params(&p(&params), &[]) {
                Err(QueryError::InvalidParam { param, .. }) => {
                    assert_eq!(param, name, "{params:?}")
                }
                other => panic!("{params:?}: expected an error naming {name}, got {other:?}"),
            }
        }
    }

    #[test]
    fn dates_are_read_in_the_time_zone_and_to_includes_its_day() {
        let q = LogQuery::from_params(
            &p(&[
                ("tz", "America/Sao_Paulo"),
                ("from", "2025-03-01"),
                ("to", "2025-03-01"),
            ]),
            &[],
        )
        .expect("valid");
        let from = "2025-03-01T03:00:00Z"
            .parse::<jiff::Timestamp>()
            .expect("ts")
            .as_millisecond();
        assert_eq!(q.from_ms, Some(from));
        assert_eq!(q.to_ms, Some(from + 86_400_000));
    }
}
