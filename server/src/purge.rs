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
use ticks_query::Backend;

/// Parameters of `GET /v1/logs` that shape a page, not a selection: a
/// deletion given one of them would ignore it and delete more than the
/// page it names, so it is an error.
const PAGE_PARAMS: [&str; 6] = ["limit", "offset", "cursor", "sort", "columns", "fields"];

/// Why a deletion's filter was refused before anything was looked up.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum FilterRefusal {
    /// A parameter that means nothing to a deletion.
    #[error("{0}: a deletion selects entries, it has no pages; remove {0}")]
    PageParam(String),
    /// The filter is not a valid query.
    #[error("{param}: {message}")]
    Invalid { param: String, message: String },
    /// Nothing narrower than every entry, without saying so.
    #[error(
        "the filter selects every entry; to delete everything say so explicitly \
         (\"all\": true over the API, --all on the command line)"
    )]
    Everything,
}

impl FilterRefusal {
    /// The parameter the refusal is about, for the API's `field`.
    pub(crate) fn field(&self) -> &str {
        match self {
            FilterRefusal::PageParam(p) => p,
            FilterRefusal::Invalid { param, .. } => param,
            FilterRefusal::Everything => "filter",
        }
    }
}

/// Validates a deletion's filter (the parameters of `GET /v1/logs` without
/// paging). A filter that selects every entry runs only with `all`.
pub(crate) fn deletion_query(
    params: &[(String, String)],
    all: bool,
) -> std::result::Result<ticks_query::LogQuery, FilterRefusal> {
    if let Some((key, _)) = params
        .iter()
        .find(|(k, _)| PAGE_PARAMS.contains(&k.trim_start_matches('-')))
    {
        return Err(FilterRefusal::PageParam(key.clone()));
    }
    let query = ticks_query::LogQuery::from_params(params, &[]).map_err(|e| match e {
        ticks_query::QueryError::InvalidParam { param, message } => {
            FilterRefusal::Invalid { param, message }
        }
        other => FilterRefusal::Invalid {
            param: "filter".into(),
            message: other.to_string(),
        },
    })?;
    if query.selects_everything() && !all {
        return Err(FilterRefusal::Everything);
    }
    Ok(query)
}

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
    store: &dyn Backend,
    ids: &RoaringBitmap,
    actor: &str,
    filter: &str,
    receipt: Option<&str>,
    force: bool,
) -> Result<std::result::Result<Purged, Refusal>> {
    let live = store.live(ids)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(q.as_bytes()).into_owned().collect()
    }

    #[test]
    fn paging_parameters_are_refused_by_name() {
        for q in [
            "limit=1",
            "status=failed&offset=5",
            "cursor=abc",
            "sort=-recorded_at",
            "columns=name",
        ] {
            let err = deletion_query(&pairs(q), true).expect_err(q);
            assert!(matches!(err, FilterRefusal::PageParam(_)), "{q}: {err}");
            assert!(q.contains(err.field()), "{q}: names {}", err.field());
        }
    }

    #[test]
    fn a_filter_that_narrows_nothing_needs_all() {
        for q in ["", "tz=UTC", "status=", "text="] {
            assert_eq!(
                deletion_query(&pairs(q), false).expect_err(q),
                FilterRefusal::Everything
            );
            assert!(deletion_query(&pairs(q), true).is_ok(), "{q} with all");
        }
        for q in [
            "status=failed",
            "to=2025-01-01",
            "-status=read",
            "text=hello",
        ] {
            assert!(deletion_query(&pairs(q), false).is_ok(), "{q}");
        }
    }

    #[test]
    fn an_unknown_parameter_is_refused_not_ignored() {
        let err = deletion_query(&pairs("colour=red"), false).expect_err("unknown");
        assert_eq!(err.field(), "colour");
    }
}
