//! `ticks timeline`: show a message's timeline.

use super::common::{Place, Target};
use crate::present;
use anyhow::{Context, Result};

/// The arguments of `ticks timeline`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The message's wamid.
    pub(crate) wamid: String,
}

/// `ticks timeline`.
pub(crate) fn run(place: &Place, args: Args) -> Result<()> {
    let Args { wamid } = args;
    let t = match place.target()? {
        Target::Local(store) => {
            let t = store
                .timeline(&wamid)?
                .with_context(|| format!("no message {wamid}"))?;
            store.close()?;
            serde_json::json!({"entry": present::entry_json(&t.entry), "items": t.items})
        }
        Target::Remote(server) => {
            let path = format!(
                "/v1/messages/{}",
                percent_encoding::utf8_percent_encode(&wamid, percent_encoding::NON_ALPHANUMERIC)
            );
            server.get_json(&path, &[])?
        }
    };
    let entry = &t["entry"];
    let offset_s = offset_of(entry["recorded_at"].as_str().unwrap_or_default());
    println!(
        "#{} {} {}",
        entry["id"],
        entry["status"].as_str().unwrap_or_default(),
        entry["name"].as_str().unwrap_or("")
    );
    for item in t["items"].as_array().into_iter().flatten() {
        println!(
            "{}  {:<7} {:<12} {}{}",
            present::rfc3339(item["at_ms"].as_i64().unwrap_or_default(), offset_s),
            item["kind"].as_str().unwrap_or_default(),
            item["status"].as_str().unwrap_or_default(),
            item["error_code"]
                .as_i64()
                .map(|c| format!("error {c} "))
                .unwrap_or_default(),
            item["text"].as_str().unwrap_or_default()
        );
    }
    Ok(())
}

/// The UTC offset an RFC 3339 time is written in, in seconds ("Z": 0).
fn offset_of(time: &str) -> i32 {
    let tail = time.len().saturating_sub(6);
    let Some(suffix) = time.get(tail..) else {
        return 0;
    };
    let sign = match suffix.as_bytes().first() {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return 0,
    };
    let hours: i32 = suffix.get(1..3).and_then(|h| h.parse().ok()).unwrap_or(0);
    let minutes: i32 = suffix.get(4..6).and_then(|m| m.parse().ok()).unwrap_or(0);
    sign * (hours * 3600 + minutes * 60)
}
