//! What a purge does on disk after its record is durable: make the purged
//! content unrecoverable from every file of the data directory.
//!
//! 1. The full-text documents are deleted, the segments merged, and the
//!    old segment files removed (`text`).
//! 2. Each log period holding a purged entry's events is re-keyed: records
//!    holding only purged events are removed, records shared with
//!    surviving entries are redacted (the purged events dropped, and the
//!    parts of the raw JSON that name only purged messages cut out), every
//!    other record is re-encrypted under the period's new key; then the old
//!    key is destroyed (`keys`). sled may keep old values in its segments,
//!    but only as ciphertext under a key that no longer exists.
//! 3. The checkpoint (which holds rows) is rewritten without them.
//!
//! Each step is idempotent. A marker in the `meta` tree names every purge
//! whose erasure has not finished; the next open finishes it.

use crate::error::{Error, Result};
use crate::log::keys;
use crate::log::{InputRecord, Log, Record};
use crate::model::{EntryId, Event, Seq};
use roaring::RoaringBitmap;
use std::collections::{BTreeSet, HashSet};

/// The `meta` key marking a purge whose erasure is not finished.
pub(crate) fn pending_key(seq: Seq) -> Vec<u8> {
    let mut k = b"erase/".to_vec();
    k.extend_from_slice(&seq.0.to_be_bytes());
    k
}

/// The sequence number in a pending-erasure key.
pub(crate) fn pending_seq(key: &[u8]) -> Option<Seq> {
    let rest = key.strip_prefix(b"erase/")?;
    Some(Seq(u64::from_be_bytes(rest.try_into().ok()?)))
}

/// Periods holding any event of `ids`, from the record headers (used when
/// the rows no longer say, e.g. when a purge resumes after a crash).
pub(crate) fn periods_holding(
    log: &Log,
    ids: &RoaringBitmap,
    before: Seq,
) -> Result<BTreeSet<u32>> {
    let mut periods = BTreeSet::new();
    for item in log.iter_after(None) {
        let (seq, bytes) = item?;
        if seq >= before {
            break;
        }
        if !crate::log::is_input(&bytes) {
            continue;
        }
        let header = crate::log::decode_header(seq, &bytes)?;
        if header
            .assignments
            .iter()
            .flatten()
            .any(|id| ids.contains(id.0))
        {
            periods.insert(keys::period_of(seq.0));
        }
    }
    Ok(periods)
}

/// Re-keys `period`, dropping or redacting what belongs to `ids`.
pub(crate) fn rewrite_period(log: &Log, period: u32, ids: &RoaringBitmap) -> Result<()> {
    log.begin_rekey(period)?;
    let mut writes: Vec<(Seq, Option<Vec<u8>>)> = Vec::new();
    for item in log.iter_period(period) {
        let (seq, bytes) = item?;
        // Purge records hold no content: like every record that stays,
        // their block is sealed again under the new key.
        let (purged, assigned) = if crate::log::is_input(&bytes) {
            let header = crate::log::decode_header(seq, &bytes)?;
            let assigned: Vec<EntryId> = header.assignments.iter().flatten().copied().collect();
            let purged = assigned.iter().filter(|id| ids.contains(id.0)).count();
            (purged, assigned.len())
        } else {
            (0, 0)
        };
        if purged > 0 && purged == assigned {
            writes.push((seq, None));
        } else if purged > 0 {
            let Record::Input(mut rec) = log.decode(seq, &bytes)? else {
                continue;
            };
            redact(&mut rec, ids);
            writes.push((seq, Some(Log::reencode(&rec)?)));
        } else if let Some(resealed) = log.reseal(&bytes)? {
            writes.push((seq, Some(resealed)));
        }
        if writes.len() >= 1024 {
            log.rewrite(std::mem::take(&mut writes))?;
        }
    }
    log.rewrite(writes)?;
    log.flush()?;
    log.finish_rekey(period)
}

/// Strings that identify whom and what an event is about.
fn tokens(e: &Event) -> Vec<String> {
    let mut t: Vec<Option<&String>> = Vec::new();
    match e {
        Event::Send(s) => t.extend([s.wamid.as_ref(), s.phone.as_ref(), s.wa_id.as_ref()]),
        Event::Status(s) => t.extend([Some(&s.wamid), s.recipient.as_ref()]),
        Event::Inbound(i) => t.extend([Some(&i.wamid), i.from.as_ref()]),
        Event::Other(_) => {}
    }
    t.into_iter()
        .flatten()
        .filter(|s| s.len() >= 6)
        .cloned()
        .collect()
}

/// Removes the purged entries' events from a record shared with surviving
/// entries, and cuts the raw JSON's array items that name only them. When
/// a purged identifier still appears anywhere after that, the raw payload
/// is replaced by a placeholder: survivors keep their parsed events.
pub(crate) fn redact(rec: &mut InputRecord, ids: &RoaringBitmap) {
    let mut purged: HashSet<String> = HashSet::new();
    let mut kept: HashSet<String> = HashSet::new();
    for (a, e) in &rec.events {
        match a {
            Some(id) if ids.contains(id.0) => purged.extend(tokens(e)),
            Some(_) => kept.extend(tokens(e)),
            None => {}
        }
    }
    let purged: Vec<String> = purged.difference(&kept).cloned().collect();
    let kept: Vec<String> = kept.into_iter().collect();
    rec.events.retain(|(a, e)| match a {
        Some(id) => !ids.contains(id.0),
        // A duplicate about a purged message goes with it.
        None => !tokens(e).iter().any(|t| purged.contains(t)),
    });
    rec.raw = redact_json(&rec.raw, &purged, &kept);
}

const PLACEHOLDER: &[u8] = br#"{"ticks_redacted":"this input was shared with purged entries"}"#;

fn contains(hay: &[u8], needle: &str) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn redact_json(raw: &[u8], purged: &[String], kept: &[String]) -> Vec<u8> {
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(raw) else {
        return PLACEHOLDER.to_vec();
    };
    prune(&mut value, purged, kept);
    let out = serde_json::to_vec(&value).unwrap_or_else(|_| PLACEHOLDER.to_vec());
    if purged.iter().any(|t| contains(&out, t)) {
        PLACEHOLDER.to_vec()
    } else {
        out
    }
}

fn prune(v: &mut serde_json::Value, purged: &[String], kept: &[String]) {
    match v {
        serde_json::Value::Array(items) => {
            items.retain(|item| {
                let text = item.to_string();
                let names_purged = purged.iter().any(|t| text.contains(t.as_str()));
                let names_kept = kept.iter().any(|t| text.contains(t.as_str()));
                !names_purged || names_kept
            });
            for item in items {
                prune(item, purged, kept);
            }
        }
        serde_json::Value::Object(map) => {
            for item in map.values_mut() {
                prune(item, purged, kept);
            }
        }
        _ => {}
    }
}

/// Decodes a purge record's ids.
pub(crate) fn purge_ids(seq: Seq, bytes: &[u8]) -> Result<RoaringBitmap> {
    RoaringBitmap::deserialize_from(bytes).map_err(|e| Error::Corrupt {
        seq: seq.0,
        reason: format!("purge ids: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_webhook_loses_the_purged_message_and_keeps_the_other() {
        let raw = br#"{"entry":[{"changes":[{"value":{"contacts":[{"wa_id":"5511900000001","profile":{"name":"Ana"}},{"wa_id":"5511900000002","profile":{"name":"Bia"}}],"messages":[{"id":"wamid.PURGED1","from":"5511900000001","text":{"body":"secret marker"}},{"id":"wamid.KEPT2","from":"5511900000002","text":{"body":"hello"}}]}}]}]}"#;
        let purged = vec!["wamid.PURGED1".to_string(), "5511900000001".to_string()];
        let kept = vec!["wamid.KEPT2".to_string(), "5511900000002".to_string()];
        let out = redact_json(raw, &purged, &kept);
        let text = String::from_utf8(out).expect("utf8");
        assert!(
            !text.contains("secret marker") && !text.contains("Ana"),
            "{text}"
        );
        assert!(
            text.contains("wamid.KEPT2") && text.contains("Bia"),
            "{text}"
        );
    }

    #[test]
    fn unparseable_or_inseparable_raw_becomes_a_placeholder() {
        let purged = vec!["wamid.PURGED1".to_string()];
        assert_eq!(
            redact_json(b"not json wamid.PURGED1", &purged, &[]),
            PLACEHOLDER
        );
        let both = br#"{"note":"wamid.PURGED1 and wamid.KEPT2"}"#;
        assert_eq!(
            redact_json(both, &purged, &["wamid.KEPT2".to_string()]),
            PLACEHOLDER
        );
    }
}
