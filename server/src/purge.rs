//! Deletion under the export-first rule.
//!
//! Every deletion (one entry, a list, a filter; API, CLI, page, retention)
//! is a purge, and a purge runs only when
//! - an export receipt covers every entry it deletes (the export named by
//!   `receipt`, or any stored export whose entries include them all), or
//! - the caller forces it, accepting the loss; the purge record says so.
//!
//! The engine then makes the content unrecoverable (see `ticks_engine`'s
//! `erase` module) and keeps a purge record: who, when, which filter, how
//! many entries, which receipt, whether forced.

use crate::export::{self, Receipt};
use anyhow::Result;
use roaring::RoaringBitmap;
use ticks_engine::Store;

/// What a purge did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub(crate) struct Purged {
    pub(crate) deleted: u64,
    pub(crate) receipt: Option<String>,
    pub(crate) forced: bool,
}

/// Why a purge did not run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum Refusal {
    #[error(
        "{uncovered} of these {count} entries are in no export: export them first \
         (GET /v1/export or `ticks export` with the same filter, or `ticks purge --export-to DIR`), \
         or force the deletion to accept losing them"
    )]
    NotExported { count: u64, uncovered: u64 },
    #[error("no export receipt {0:?}")]
    UnknownReceipt(String),
    #[error("export receipt {receipt} does not cover {uncovered} of these {count} entries")]
    NotCovered {
        receipt: String,
        count: u64,
        uncovered: u64,
    },
}

/// Deletes the live entries among `ids` if the export-first rule allows it.
pub(crate) fn purge(
    store: &Store,
    ids: &RoaringBitmap,
    actor: &str,
    filter: &str,
    receipt: Option<&str>,
    force: bool,
) -> Result<std::result::Result<Purged, Refusal>> {
    let live = store.snapshot().live() & ids;
    if live.is_empty() {
        return Ok(Ok(Purged {
            deleted: 0,
            receipt: None,
            forced: force,
        }));
    }
    let count = live.len();
    let cover = if force {
        None
    } else {
        let receipts = export::list_receipts(store)?;
        let exported = export::receipt_ids(store)?;
        let none = RoaringBitmap::new();
        let ids_of = |r: &Receipt| exported.get(&r.id).unwrap_or(&none);
        match receipt {
            Some(wanted) => {
                let Some(r) = receipts.iter().find(|r| r.id == wanted) else {
                    return Ok(Err(Refusal::UnknownReceipt(wanted.to_string())));
                };
                let uncovered = (&live - ids_of(r)).len();
                if uncovered > 0 {
                    return Ok(Err(Refusal::NotCovered {
                        receipt: wanted.to_string(),
                        count,
                        uncovered,
                    }));
                }
                Some(r.id.clone())
            }
            None => {
                let mut best = count;
                let mut found: Option<&Receipt> = None;
                // Newest first: the most recent export is the likeliest match.
                for r in receipts.iter().rev() {
                    let uncovered = (&live - ids_of(r)).len();
                    if uncovered == 0 {
                        found = Some(r);
                        break;
                    }
                    best = best.min(uncovered);
                }
                match found {
                    Some(r) => Some(r.id.clone()),
                    None => {
                        return Ok(Err(Refusal::NotExported {
                            count,
                            uncovered: best,
                        }))
                    }
                }
            }
        }
    };
    store.purge(&live, actor, filter, cover.clone(), cover.is_none())?;
    Ok(Ok(Purged {
        deleted: count,
        receipt: cover,
        forced: force,
    }))
}
