//! `ticks query`: query the log with the API's filters, e.g. `ticks query status=failed name="Black Friday" sort=-recorded_at`.

use super::common::{key_values, Format, Place, Target};
use crate::present;
use anyhow::Result;
use serde_json::Value;
use std::io::Write;
use ticks_query::FieldKind;

/// The arguments of `ticks query`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Filters as key=value (the parameters of GET /v1/logs).
    pub(crate) params: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub(crate) format: Format,
    /// The table's columns, by their names in the field catalog (`GET
    /// /v1/fields`), e.g. `--columns id,recorded_at,status,phone,text`.
    #[arg(long, value_delimiter = ',', default_values_t = DEFAULT_COLUMNS.map(String::from))]
    pub(crate) columns: Vec<String>,
}

/// The table's columns when `--columns` is not given.
const DEFAULT_COLUMNS: [&str; 11] = [
    "id",
    "recorded_at",
    "category",
    "name",
    "template",
    "response_code",
    "recipient_type",
    "status",
    "phone",
    "error_code",
    "error_title",
];

/// The widest a table cell gets; longer values are cut.
const MAX_WIDTH: usize = 28;

/// `ticks query`.
pub(crate) fn run(place: &Place, args: Args) -> Result<()> {
    let Args {
        params,
        format,
        columns,
    } = args;
    let columns = columns
        .iter()
        .map(|name| {
            ticks_query::field(name)
                .ok_or_else(|| anyhow::anyhow!("--columns: no field {name:?} (see GET /v1/fields)"))
        })
        .collect::<Result<Vec<_>>>()?;
    let pairs = key_values(&params)?;
    let query = ticks_query::LogQuery::from_params(&pairs, &[])?;
    let (total, entries, next_cursor) = match place.target()? {
        Target::Local(store) => {
            let page = ticks_query::search(&store, &query)?;
            store.close()?;
            let entries: Vec<Value> = page.entries.iter().map(present::entry_json).collect();
            (page.total, entries, page.next_cursor)
        }
        Target::Remote(server) => {
            let mut v = server.get_json("/v1/logs", &pairs)?;
            let total = v["total"].as_u64().unwrap_or_default();
            let entries = match v["entries"].take() {
                Value::Array(a) => a,
                _ => Vec::new(),
            };
            (total, entries, v["next_cursor"].as_str().map(String::from))
        }
    };
    print_page(total, &entries, next_cursor, format, &columns, &query.tz)
}

/// An entry's time field (`recorded_at`, RFC 3339) or milliseconds field
/// (`conversation_expiry_ms`) in the zone asked for.
fn time_in(v: &Value, tz: &jiff::tz::TimeZone) -> String {
    let ms = match v {
        Value::String(s) => s
            .parse::<jiff::Timestamp>()
            .ok()
            .map(|t| t.as_millisecond()),
        Value::Number(n) => n.as_i64(),
        _ => None,
    };
    ms.map_or_else(|| "-".into(), |ms| present::rfc3339_in(ms, tz))
}

fn print_page(
    total: u64,
    entries: &[Value],
    next_cursor: Option<String>,
    format: Format,
    columns: &[&ticks_query::FieldSpec],
    tz: &jiff::tz::TimeZone,
) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match format {
        Format::Json => {
            let v =
                serde_json::json!({"total": total, "entries": entries, "next_cursor": next_cursor});
            writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        }
        Format::Ndjson => {
            for e in entries {
                writeln!(out, "{}", serde_json::to_string(e)?)?;
            }
        }
        Format::Table => {
            let header: Vec<String> = columns.iter().map(|c| c.label.to_lowercase()).collect();
            let rows: Vec<Vec<String>> = entries
                .iter()
                .map(|v| {
                    columns
                        .iter()
                        .map(|c| match c.name {
                            // The table's times in the zone asked for (`tz=`),
                            // all of them.
                            "recorded_at" => time_in(&v["recorded_at"], tz),
                            "conversation_expiry" => time_in(&v["conversation_expiry_ms"], tz),
                            _ => cell(&v[c.name], c.kind),
                        })
                        .collect()
                })
                .collect();
            let widths: Vec<usize> = (0..columns.len())
                .map(|i| {
                    rows.iter()
                        .map(|r| r[i].chars().count())
                        .chain([header[i].chars().count()])
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            let line = |cells: &[String]| {
                let mut text = String::new();
                for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
                    if i > 0 {
                        text.push_str("  ");
                    }
                    // Numbers align right, text left.
                    if matches!(columns[i].kind, FieldKind::Integer | FieldKind::Id)
                        && c.chars().all(|ch| ch.is_ascii_digit())
                    {
                        text.push_str(&format!("{c:>w$}"));
                    } else {
                        text.push_str(&format!("{c:<w$}"));
                    }
                }
                text.trim_end().to_string()
            };
            writeln!(out, "{}", line(&header))?;
            for r in &rows {
                writeln!(out, "{}", line(r))?;
            }
            writeln!(out, "{} of {} matching entries", entries.len(), total)?;
        }
    }
    Ok(())
}

/// A value of an entry's JSON as a table cell: absent is `-`, long text is
/// cut (never a time or an identifier, which people copy), line breaks are
/// spaces.
fn cell(v: &Value, kind: FieldKind) -> String {
    let text = match v {
        Value::Null => return "-".into(),
        Value::String(s) => s.replace(['\n', '\r', '\t'], " "),
        other => other.to_string(),
    };
    if text.chars().count() > MAX_WIDTH && !matches!(kind, FieldKind::Time | FieldKind::Id) {
        let mut cut: String = text.chars().take(MAX_WIDTH - 1).collect();
        cut.push('…');
        cut
    } else {
        text
    }
}
