//! `ticks query`: query the log with the API's filters, e.g. `ticks query status=failed name="Black Friday" sort=-recorded_at`.

use super::common::{key_values, Format, Place};
use crate::present;
use anyhow::Result;
use std::io::Write;

/// The arguments of `ticks query`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Filters as key=value (the parameters of GET /v1/logs).
    pub(crate) params: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub(crate) format: Format,
}

/// `ticks query`.
pub(crate) fn run(place: &Place, args: Args) -> Result<()> {
    let Args { params, format } = args;
    let store = place.open_store()?;
    let pairs = key_values(&params)?;
    let query = ticks_query::LogQuery::from_params(&pairs, &[])?;
    let page = ticks_query::search(&store, &query)?;
    print_page(&page, format)?;
    store.close()?;
    Ok(())
}

fn print_page(page: &ticks_query::Page, format: Format) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match format {
        Format::Json => {
            let v = serde_json::json!({"total": page.total, "entries": page.entries.iter().map(present::entry_json).collect::<Vec<_>>(), "next_cursor": page.next_cursor});
            writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        }
        Format::Ndjson => {
            for e in &page.entries {
                writeln!(out, "{}", serde_json::to_string(&present::entry_json(e))?)?;
            }
        }
        Format::Table => {
            writeln!(
                out,
                "{:>8}  {:<29}  {:<18}  {:<24}  {:<22}  {:>4}  {:<8}  {:<10}  {:<14}  error",
                "#",
                "recorded on",
                "category",
                "name",
                "template",
                "code",
                "type",
                "status",
                "phone"
            )?;
            for e in &page.entries {
                let cut = |s: &Option<String>, n: usize| {
                    s.as_deref()
                        .unwrap_or("")
                        .chars()
                        .take(n)
                        .collect::<String>()
                };
                writeln!(
                    out,
                    "{:>8}  {:<29}  {:<18}  {:<24}  {:<22}  {:>4}  {:<8}  {:<10}  {:<14}  {}",
                    e.id.0,
                    present::rfc3339(e.recorded_ms, e.offset_s),
                    cut(&e.category, 18),
                    cut(&e.name, 24),
                    cut(&e.template, 22),
                    e.response_code
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "-".into()),
                    cut(&e.recipient_type, 8),
                    e.status.as_str(),
                    cut(&e.phone, 14),
                    e.error_code
                        .map(|c| format!("{c} {}", e.error_title.as_deref().unwrap_or("")))
                        .unwrap_or_default()
                )?;
            }
            writeln!(
                out,
                "{} of {} matching entries",
                page.entries.len(),
                page.total
            )?;
        }
    }
    Ok(())
}
