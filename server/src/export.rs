//! Exports of any log query: CSV, XLSX, PDF and NDJSON, streamed, each with a
//! receipt (filter, time, count, id range, SHA-256 of the file) stored in
//! the store's settings.
//!
//! - CSV and XLSX hold the log table's columns. Cells that begin with `=`,
//!   `+`, `-`, `@`, tab or carriage return are prefixed with `'`: message
//!   text comes from strangers and must not run as a spreadsheet formula.
//! - NDJSON holds the raw inputs themselves (each once, in log order), each
//!   in an envelope with its source and receive time
//!   (`{"ticks_record":1,"source":..,"received_ms":..,"raw":<raw>}`), so
//!   importing an export into an empty store gives back the same entries and
//!   the same raw payloads. Multi-line inputs lose their whitespace between
//!   tokens (and nothing else) to fit on one line.
//! - XLSX starts a new sheet past Excel's 1,048,576 rows.
//! - PDF is a printable report (title, filters, generation time, totals,
//!   then the table, "page N of M"), written page by page (see `pdf`).

use crate::present::{rfc3339, rfc3339_in as in_zone};
use anyhow::{bail, Context, Result};
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Write;
use ticks_engine::Entry;
use ticks_query::Backend;
use ticks_query::LogQuery;

/// Rows read from the snapshot at a time: the read lock is held per chunk.
const CHUNK: usize = 1000;
const XLSX_MAX_ROWS: u32 = 1_048_576;
pub(crate) const RECEIPTS: &str = "receipt";

/// Export formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Format {
    Csv,
    Ndjson,
    Xlsx,
    Pdf,
}

impl Format {
    pub(crate) fn parse(s: &str) -> Option<Format> {
        match s {
            "csv" => Some(Format::Csv),
            "ndjson" | "jsonl" => Some(Format::Ndjson),
            "xlsx" => Some(Format::Xlsx),
            "pdf" => Some(Format::Pdf),
            _ => None,
        }
    }
    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Ndjson => "application/x-ndjson",
            Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Format::Pdf => "application/pdf",
        }
    }
    pub(crate) fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Ndjson => "ndjson",
            Format::Xlsx => "xlsx",
            Format::Pdf => "pdf",
        }
    }
}

/// What an export produced; stored and listed.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct Receipt {
    pub(crate) id: String,
    pub(crate) created_at: String,
    pub(crate) format: Format,
    /// The filter as query parameters.
    pub(crate) filter: String,
    /// Entries exported.
    pub(crate) count: u64,
    pub(crate) first_id: Option<u32>,
    pub(crate) last_id: Option<u32>,
    /// Hex SHA-256 of the exported bytes.
    pub(crate) sha256: String,
    pub(crate) bytes: u64,
    /// The exported entries (stored beside the receipt, for purges).
    #[serde(skip)]
    pub(crate) ids: roaring::RoaringBitmap,
}

const COLUMNS: [&str; 34] = [
    "id",
    "recorded_at",
    "direction",
    "category",
    "name",
    "template",
    "template_language",
    "response_code",
    "recipient_type",
    "recipient_ref",
    "status",
    "phone",
    "wa_id",
    "user_id",
    "parent_user_id",
    "username",
    "contact_name",
    "country",
    "error_code",
    "error_title",
    "user",
    "subaccount",
    "content_type",
    "text",
    "wamid",
    "correlation_id",
    "conversation_type",
    "session",
    "conversation_id",
    "conversation_expiry",
    "source",
    "event_from",
    "event_to",
    "event_reason",
];

/// The PDF's columns (a printable subset of `COLUMNS`) and widths in points.
const PDF_COLUMNS: [(&str, f32); 10] = [
    ("#", 42.0),
    ("Recorded on", 104.0),
    ("Category", 72.0),
    ("Name", 92.0),
    ("Template", 84.0),
    ("Code", 28.0),
    ("Type", 46.0),
    ("Status", 58.0),
    ("Phone", 72.0),
    ("Error", 172.0),
];

/// The columns that hold numbers (written as numbers in XLSX).
const NUMBER_COLUMNS: [&str; 3] = ["id", "response_code", "error_code"];
/// The columns that hold times (written as dates in XLSX).
const TIME_COLUMNS: [&str; 2] = ["recorded_at", "conversation_expiry"];

fn row(e: &Entry, tz: &TimeZone) -> [String; 34] {
    let s = |o: &Option<String>| o.clone().unwrap_or_default();
    [
        e.id.0.to_string(),
        in_zone(e.recorded_ms, tz),
        e.direction.as_str().into(),
        s(&e.category),
        s(&e.name),
        s(&e.template),
        s(&e.template_language),
        e.response_code.map(|c| c.to_string()).unwrap_or_default(),
        s(&e.recipient_type),
        s(&e.recipient_ref),
        e.status.as_str().into(),
        s(&e.phone),
        s(&e.wa_id),
        s(&e.user_id),
        s(&e.parent_user_id),
        s(&e.username),
        s(&e.contact_name),
        s(&e.country),
        e.error_code.map(|c| c.to_string()).unwrap_or_default(),
        s(&e.error_title),
        s(&e.user),
        s(&e.subaccount),
        s(&e.content_type),
        e.text.clone(),
        s(&e.wamid),
        s(&e.correlation_id),
        s(&e.conversation_type),
        e.session
            .map(|x| x.as_str().to_string())
            .unwrap_or_default(),
        s(&e.conversation_id),
        e.conversation_expiry_ms
            .map(|ms| in_zone(ms, tz))
            .unwrap_or_default(),
        e.source.map(|o| o.as_str().to_string()).unwrap_or_default(),
        s(&e.event_from),
        s(&e.event_to),
        s(&e.event_reason),
    ]
}

/// A time as the PDF's column shows it: local to `tz`, to the second.
fn pdf_time(ms: i64, tz: &TimeZone) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(ts) => ts
            .to_zoned(tz.clone())
            .strftime("%Y-%m-%d %H:%M:%S")
            .to_string(),
        Err(_) => String::new(),
    }
}

/// A time as an XLSX date: the wall-clock time in `tz` (a spreadsheet's
/// dates have no zone; the sheet's times are all in the one asked for).
fn excel_time(ms: i64, tz: &TimeZone) -> Option<rust_xlsxwriter::ExcelDateTime> {
    let dt = jiff::Timestamp::from_millisecond(ms)
        .ok()?
        .to_zoned(tz.clone())
        .datetime();
    let date = rust_xlsxwriter::ExcelDateTime::from_ymd(
        u16::try_from(dt.year()).ok()?,
        dt.month() as u8,
        dt.day() as u8,
    )
    .ok()?;
    date.and_hms(
        dt.hour() as u16,
        dt.minute() as u8,
        f64::from(dt.second()) + f64::from(dt.subsec_nanosecond()) / 1e9,
    )
    .ok()
}

/// Neutralises a cell that a spreadsheet would read as a formula.
pub(crate) fn neutralise(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => std::borrow::Cow::Owned(format!("'{cell}")),
        _ => std::borrow::Cow::Borrowed(cell),
    }
}

/// A writer that hashes and counts what passes through.
struct Hashing<W: Write> {
    inner: W,
    hash: Sha256,
    bytes: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Removes whitespace between JSON tokens, keeping everything else as is.
fn one_line(raw: &[u8]) -> Vec<u8> {
    if !raw.contains(&b'\n') && !raw.contains(&b'\r') {
        return raw.to_vec();
    }
    let mut out = Vec::with_capacity(raw.len());
    let (mut in_string, mut escaped) = (false, false);
    for &b in raw {
        if in_string {
            out.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
            out.push(b);
        } else if !b.is_ascii_whitespace() {
            out.push(b);
        }
    }
    out
}

fn entries_in_chunks(
    store: &dyn Backend,
    ids: &[u32],
    mut each: impl FnMut(&Entry) -> Result<()>,
) -> Result<()> {
    for chunk in ids.chunks(CHUNK) {
        let entries: Vec<Entry> = store.entries(chunk)?;
        for e in &entries {
            each(e)?;
        }
    }
    Ok(())
}

/// Writes the export of `query` to `out` and returns its receipt (not yet stored).
pub(crate) fn write_export(
    store: &dyn Backend,
    query: &LogQuery,
    filter: &str,
    format: Format,
    out: &mut dyn Write,
) -> Result<Receipt> {
    let ids = store.sorted_ids(query)?;
    let mut w = Hashing {
        inner: out,
        hash: Sha256::new(),
        bytes: 0,
    };
    let mut count = 0u64;
    match format {
        Format::Csv => {
            let mut csv = csv::Writer::from_writer(&mut w);
            csv.write_record(COLUMNS)?;
            entries_in_chunks(store, &ids, |e| {
                let r = row(e, &query.tz);
                csv.write_record(r.iter().map(|c| neutralise(c).into_owned()))?;
                count += 1;
                Ok(())
            })?;
            csv.flush()?;
        }
        Format::Ndjson => {
            // The raw inputs of the matching entries, each once, in log order.
            count = ids.len() as u64;
            store.raw_inputs(&ids, &mut |_, source, received_ms, raw| {
                w.write_all(&ticks_ingest::export_line(
                    source,
                    received_ms,
                    &one_line(raw),
                ))?;
                w.write_all(b"\n")
            })?;
        }
        Format::Pdf => {
            // The filter as people wrote it, not as a URL carries it.
            let shown = percent_encoding::percent_decode_str(&filter.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned();
            let zone = query.tz.iana_name().unwrap_or("UTC").to_string();
            let intro = [
                format!(
                    "Filters: {}",
                    if shown.is_empty() {
                        "none (every entry)"
                    } else {
                        &shown
                    }
                ),
                format!(
                    "Generated: {} (times in {zone})",
                    in_zone(ticks_ingest::now_ms(), &query.tz)
                ),
                format!(
                    "Entries: {}{}",
                    ids.len(),
                    match (ids.iter().min(), ids.iter().max()) {
                        (Some(a), Some(b)) => format!(" (ids {a} to {b})"),
                        _ => String::new(),
                    }
                ),
            ];
            let mut pdf = crate::pdf::TableWriter::new(
                &mut w,
                "Ticks - WhatsApp log export",
                &intro,
                PDF_COLUMNS
                    .iter()
                    .map(|(title, width)| crate::pdf::Column {
                        title,
                        width: *width,
                    })
                    .collect(),
                ids.len() as u64,
            )?;
            entries_in_chunks(store, &ids, |e| {
                let mut r = row(e, &query.tz);
                // The PDF's narrow column: the local time to the second; the
                // zone is in the heading.
                r[1] = pdf_time(e.recorded_ms, &query.tz);
                let error = match (&e.error_code, &e.error_title) {
                    (Some(c), Some(t)) => format!("{c} {t}"),
                    (Some(c), None) => c.to_string(),
                    _ => String::new(),
                };
                pdf.row(&[
                    &r[0], &r[1], &r[3], &r[4], &r[5], &r[7], &r[8], &r[10], &r[11], &error,
                ])?;
                count += 1;
                Ok(())
            })?;
            pdf.finish()?;
        }
        Format::Xlsx => bail!("xlsx is written with write_xlsx"),
    }
    w.flush()?;
    finish(query, filter, format, &ids, count, w.hash, w.bytes)
}

/// Writes an XLSX export to a file (the format needs to seek).
pub(crate) fn write_xlsx(
    store: &dyn Backend,
    query: &LogQuery,
    filter: &str,
    path: &std::path::Path,
) -> Result<Receipt> {
    use rust_xlsxwriter::{Format as CellFormat, Workbook};
    let ids = store.sorted_ids(query)?;
    let mut book = Workbook::new();
    let bold = CellFormat::new().set_bold();
    let datetime = CellFormat::new().set_num_format("yyyy-mm-dd hh:mm:ss");
    let mut sheet_no = 0;
    let mut row_no: u32 = XLSX_MAX_ROWS; // forces a first sheet
    let mut count = 0u64;
    let mut sheet = None;
    // Each full sheet and its rows, for its filter buttons.
    let mut sheets: Vec<(usize, u32)> = Vec::new();
    // The header row stays in view, every column is wide enough for its
    // values, and every column has a filter button.
    let header = |s: &mut rust_xlsxwriter::Worksheet| -> Result<(), rust_xlsxwriter::XlsxError> {
        for (c, name) in COLUMNS.iter().enumerate() {
            let width = if TIME_COLUMNS.contains(name) {
                20.0
            } else if [
                "text",
                "request",
                "response",
                "error_title",
                "name",
                "wamid",
            ]
            .contains(name)
            {
                36.0
            } else if NUMBER_COLUMNS.contains(name) {
                12.0
            } else {
                16.0
            };
            s.set_column_width(c as u16, width)?;
        }
        for (c, name) in COLUMNS.iter().enumerate() {
            s.write_string_with_format(0, c as u16, *name, &bold)?;
        }
        s.set_freeze_panes(1, 0)?;
        Ok(())
    };
    entries_in_chunks(store, &ids, |e| {
        if row_no >= XLSX_MAX_ROWS {
            sheet_no += 1;
            if let Some(idx) = sheet {
                sheets.push((idx, row_no));
            }
            let s = book.add_worksheet_with_constant_memory();
            s.set_name(format!("Log {sheet_no}"))?;
            header(s)?;
            sheet = Some(book.worksheets_mut().len() - 1);
            row_no = 1;
        }
        let idx = sheet.context("no sheet")?;
        let s = book.worksheet_from_index(idx)?;
        for (c, cell) in row(e, &query.tz).iter().enumerate() {
            let name = COLUMNS[c];
            let col = c as u16;
            if cell.is_empty() {
                continue;
            }
            // Numbers and times typed, so a spreadsheet sorts and sums
            // them; text as text (a string cell is never a formula, so it
            // needs no apostrophe).
            if NUMBER_COLUMNS.contains(&name) {
                match cell.parse::<f64>() {
                    Ok(n) => s.write_number(row_no, col, n)?,
                    Err(_) => s.write_string(row_no, col, cell)?,
                };
            } else if TIME_COLUMNS.contains(&name) {
                let ms = match name {
                    "recorded_at" => Some(e.recorded_ms),
                    _ => e.conversation_expiry_ms,
                };
                match ms.and_then(|ms| excel_time(ms, &query.tz)) {
                    Some(t) => s.write_datetime_with_format(row_no, col, &t, &datetime)?,
                    None => s.write_string(row_no, col, cell)?,
                };
            } else {
                s.write_string(row_no, col, cell)?;
            }
        }
        row_no += 1;
        count += 1;
        Ok(())
    })?;
    match sheet {
        Some(idx) => sheets.push((idx, row_no)),
        None => {
            let s = book.add_worksheet();
            s.set_name("Log 1")?;
            header(s)?;
            sheets.push((book.worksheets_mut().len() - 1, 1));
        }
    }
    for (idx, rows) in sheets {
        let last_col = (COLUMNS.len() - 1) as u16;
        book.worksheet_from_index(idx)?
            .autofilter(0, 0, rows.saturating_sub(1), last_col)?;
    }
    book.save(path)?;
    let bytes = std::fs::read(path)?;
    let mut hash = Sha256::new();
    hash.update(&bytes);
    finish(
        query,
        filter,
        Format::Xlsx,
        &ids,
        count,
        hash,
        bytes.len() as u64,
    )
}

fn finish(
    _query: &LogQuery,
    filter: &str,
    format: Format,
    ids: &[u32],
    count: u64,
    hash: Sha256,
    bytes: u64,
) -> Result<Receipt> {
    let now = ticks_ingest::now_ms();
    Ok(Receipt {
        id: format!("{now}-{:04x}", rand::random::<u16>()),
        created_at: rfc3339(now, 0),
        format,
        filter: filter.to_string(),
        count,
        first_id: ids.iter().min().copied(),
        last_id: ids.iter().max().copied(),
        sha256: hex::encode(hash.finalize()),
        bytes,
        ids: ids.iter().copied().collect(),
    })
}

/// Exports `query` to a file in any format and stores the receipt.
pub(crate) fn export_to_file(
    store: &dyn Backend,
    query: &LogQuery,
    filter: &str,
    format: Format,
    path: &std::path::Path,
) -> Result<Receipt> {
    let receipt = match format {
        Format::Xlsx => write_xlsx(store, query, filter, path)?,
        _ => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("creating {}", path.display()))?;
            let mut w = std::io::BufWriter::new(file);
            let r = write_export(store, query, filter, format, &mut w)?;
            w.flush()?;
            // The export is the only copy once the purge runs: on disk first.
            w.get_ref().sync_all()?;
            r
        }
    };
    store_receipt(store, &receipt)?;
    Ok(receipt)
}

/// Exports `query` into `dir` (created if missing) as `{prefix}-{stamp}.{ext}`,
/// for a purge that must be covered by an export; stores the receipt.
pub(crate) fn export_to_folder(
    store: &dyn Backend,
    query: &LogQuery,
    filter: &str,
    format: Format,
    dir: &std::path::Path,
    prefix: &str,
    stamp: i64,
) -> Result<(Receipt, std::path::PathBuf)> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(format!("{prefix}-{stamp}.{}", format.extension()));
    let receipt = export_to_file(store, query, filter, format, &path)?;
    Ok((receipt, path))
}

/// Where the exported entry ids of each receipt are kept.
const RECEIPT_IDS: &str = "receipt_ids";

/// Stores a receipt so it can be listed, and its entry ids so a purge can
/// tell whether an export covers what it deletes.
pub(crate) fn store_receipt(store: &dyn Backend, receipt: &Receipt) -> Result<()> {
    let mut ids = Vec::new();
    receipt.ids.serialize_into(&mut ids)?;
    store.put_setting(RECEIPT_IDS, &receipt.id, &ids)?;
    store.put_setting(RECEIPTS, &receipt.id, &serde_json::to_vec(receipt)?)?;
    Ok(())
}

/// The entry ids every stored receipt exported, by receipt id.
pub(crate) fn receipt_ids(
    store: &dyn Backend,
) -> Result<std::collections::HashMap<String, roaring::RoaringBitmap>> {
    store
        .settings(RECEIPT_IDS)?
        .into_iter()
        .map(|(id, bytes)| Ok((id, roaring::RoaringBitmap::deserialize_from(&bytes[..])?)))
        .collect()
}

/// Stored receipts, oldest first.
pub(crate) fn list_receipts(store: &dyn Backend) -> Result<Vec<Receipt>> {
    Ok(store
        .settings(RECEIPTS)?
        .into_iter()
        .filter_map(|(_, v)| serde_json::from_slice(&v).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exported_columns_are_the_catalogs() {
        let catalog: Vec<&str> = ticks_query::FIELDS
            .iter()
            .filter(|f| f.exported)
            .map(|f| f.name)
            .collect();
        assert_eq!(COLUMNS.to_vec(), catalog, "the exports' columns, in order");
    }

    #[test]
    fn formula_cells_are_neutralised() {
        for bad in ["=HYPERLINK(\"x\")", "+1", "-2+3", "@SUM(A1)", "\tx"] {
            assert!(neutralise(bad).starts_with('\''), "{bad}");
        }
        assert_eq!(neutralise("hello = world"), "hello = world");
        assert_eq!(neutralise(""), "");
    }

    #[test]
    fn multi_line_json_becomes_one_line_with_strings_intact() {
        let raw = b"{\n  \"a\": \"x  y\\\" z\",\n  \"b\": [1, 2]\n}\n";
        assert_eq!(one_line(raw), br#"{"a":"x  y\" z","b":[1,2]}"#.to_vec());
        assert_eq!(
            one_line(b"{\"a\": 1}"),
            b"{\"a\": 1}".to_vec(),
            "single-line inputs are untouched"
        );
    }
}
