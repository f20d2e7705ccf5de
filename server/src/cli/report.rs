//! `ticks report`: the consolidated report (funnels, failure reasons, series, inbound) for filters,

use super::common::{key_values, Format, Place, Target};
use crate::report_text;
use anyhow::Result;

/// The arguments of `ticks report`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Filters as key=value (the parameters of GET /v1/report).
    pub(crate) params: Vec<String>,
    /// Output format: table or json.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub(crate) format: Format,
}

/// `ticks report`.
pub(crate) fn run(place: &Place, args: Args) -> Result<()> {
    let Args { params, format } = args;
    let pairs = key_values(&params)?;
    let store = match place.target()? {
        Target::Local(store) => store,
        Target::Remote(server) => {
            // The server renders the table itself, so both print alike.
            let mut asked = pairs;
            if matches!(format, Format::Table) {
                asked.push(("format".into(), "text".into()));
                let text = server.get("/v1/report", &asked)?;
                print!("{}", String::from_utf8_lossy(&text));
            } else {
                let v = server.get_json("/v1/report", &asked)?;
                println!("{}", serde_json::to_string_pretty(&v)?);
            }
            return Ok(());
        }
    };
    let mut options = ticks_query::ReportOptions::from_params(&pairs)?;
    let query = ticks_query::LogQuery::from_params(&pairs, &ticks_query::REPORT_PARAMS)?;
    if options.sections.cost {
        // `rate_card=` names a file, or a card stored in the store.
        let named = pairs.iter().find(|(k, _)| k == "rate_card").map(|(_, v)| v);
        options.rate_card = match named {
            Some(path) if std::path::Path::new(path).is_file() => {
                let text = std::fs::read_to_string(path)?;
                Some(std::sync::Arc::new(
                    ticks_query::RateCard::parse(path, &text)
                        .map_err(|e| anyhow::anyhow!("rate_card: {path}: {e}"))?,
                ))
            }
            named => crate::rates::load_card(&store, named.map(String::as_str))
                .map_err(|e| anyhow::anyhow!("{e:?}"))?,
        };
    }
    let report = ticks_query::report(&store, &query, &options)?;
    store.close()?;
    match format {
        Format::Table => {
            let zone = query.tz.iana_name().unwrap_or("UTC").to_string();
            print!("{}", report_text::render(&report, &zone, options.sections));
        }
        Format::Json | Format::Ndjson => {
            // Through a `Value`, as the answer of a running server is
            // printed: the same keys in the same order either way.
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::to_value(&report)?)?
            )
        }
    }
    Ok(())
}
