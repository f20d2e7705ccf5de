//! The template catalog as the API shows it: each template with its status,
//! category, quality, versions and sends; one template with every version
//! and its status, category and quality history.
//!
//! The catalog (definitions and when each was first seen) is the backend's;
//! the history is the log's template webhooks (`message_template_status_update`,
//! `template_category_update`, `message_template_quality_update`), read as
//! event entries with the ordinary query, so any backend answers it the
//! same way.

use crate::backend::{Backend, BackendResult};
use crate::params::LogQuery;
use serde::Serialize;
use ticks_engine::templates::{TemplateContent, TemplateVersion};

/// One template (name and language) in the list.
#[derive(Clone, Debug, Serialize)]
pub struct TemplateSummary {
    /// The template's name.
    pub name: String,
    /// Its language code.
    pub language: String,
    /// Meta's template id, as last imported.
    pub id: Option<String>,
    /// As last imported, or as the latest status webhook said.
    pub status: Option<String>,
    /// As last imported, or as the latest category webhook said.
    pub category: Option<String>,
    /// As the latest quality webhook said.
    pub quality: Option<String>,
    /// Distinct definitions known.
    pub versions: usize,
    /// When the newest version was first seen, UTC milliseconds.
    pub updated_ms: i64,
    /// Outbound messages sent with it.
    pub sends: u64,
}

/// One version of a template.
#[derive(Clone, Debug, Serialize)]
pub struct VersionView {
    /// When it was first seen, UTC milliseconds.
    pub first_seen_ms: i64,
    /// Its text and buttons.
    pub content: TemplateContent,
}

/// One status, category or quality change of a template, from its webhook.
#[derive(Clone, Debug, Serialize)]
pub struct TemplateEvent {
    /// When Meta says it happened, UTC milliseconds.
    pub at_ms: i64,
    /// The webhook field (`message_template_status_update`...).
    pub event: Option<String>,
    /// The value before, when given.
    pub from: Option<String>,
    /// The value after (or the event).
    pub to: Option<String>,
    /// The reason given.
    pub reason: Option<String>,
    /// The event's entry id.
    pub entry: u32,
}

/// A template with every version and its history.
#[derive(Clone, Debug, Serialize)]
pub struct TemplateHistory {
    /// The summary, as in the list.
    #[serde(flatten)]
    pub summary: TemplateSummary,
    /// Every version, oldest first.
    pub history_versions: Vec<VersionView>,
    /// Status, category and quality changes, oldest first.
    pub events: Vec<TemplateEvent>,
}

const STATUS: &str = "message_template_status_update";
const CATEGORY: &str = "template_category_update";
const QUALITY: &str = "message_template_quality_update";
/// Changes shown per template (the newest ones).
const MAX_EVENTS: usize = 1_000;

fn query(pairs: &[(&str, &str)]) -> BackendResult<LogQuery> {
    let params: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    LogQuery::from_params(&params, &[])
}

fn events_of(
    backend: &dyn Backend,
    name: &str,
    language: &str,
    limit: usize,
) -> BackendResult<Vec<TemplateEvent>> {
    let limit = limit.to_string();
    let q = query(&[
        ("direction", "event"),
        ("template", name),
        ("template_language", language),
        ("sort", "-recorded_at"),
        ("limit", &limit),
    ])?;
    let mut events: Vec<TemplateEvent> = backend
        .search(&q)?
        .entries
        .into_iter()
        .map(|e| TemplateEvent {
            at_ms: e.recorded_ms,
            event: e.category,
            from: e.event_from,
            to: e.event_to,
            reason: e.event_reason,
            entry: e.id.0,
        })
        .collect();
    events.reverse();
    Ok(events)
}

fn summary(
    backend: &dyn Backend,
    versions: &[TemplateVersion],
    events: &[TemplateEvent],
) -> BackendResult<Option<TemplateSummary>> {
    let (Some(first), Some(newest)) = (
        versions.first(),
        versions.iter().max_by_key(|v| v.generation),
    ) else {
        return Ok(None);
    };
    let def = &first.def;
    let latest = |field: &str| {
        events
            .iter()
            .rev()
            .find(|e| e.event.as_deref() == Some(field))
    };
    let sends = backend
        .matching(&query(&[
            ("direction", "outbound"),
            ("template", &def.name),
            ("template_language", &def.language),
        ])?)?
        .len();
    // A webhook newer than the import wins; the import's value otherwise.
    let newer = |e: &TemplateEvent| e.at_ms >= newest.first_seen_ms;
    Ok(Some(TemplateSummary {
        name: def.name.clone(),
        language: def.language.clone(),
        id: newest.def.id.clone(),
        status: latest(STATUS)
            .filter(|e| newer(e))
            .and_then(|e| e.to.clone())
            .or_else(|| newest.def.status.clone()),
        category: latest(CATEGORY)
            .filter(|e| newer(e))
            .and_then(|e| e.to.clone())
            .or_else(|| newest.def.category.clone()),
        quality: latest(QUALITY).and_then(|e| e.to.clone()),
        versions: versions.len(),
        updated_ms: newest.first_seen_ms,
        sends,
    }))
}

/// Every template of the catalog, by name then language.
pub fn template_list(backend: &dyn Backend) -> BackendResult<Vec<TemplateSummary>> {
    let catalog = backend.templates();
    let mut out = Vec::new();
    for versions in catalog.iter() {
        let def = &versions[0].def;
        let events = events_of(backend, &def.name, &def.language, 50)?;
        out.extend(summary(backend, versions, &events)?);
    }
    Ok(out)
}

/// One template with every version and its history; `None` when the
/// catalog does not have it.
pub fn template_history(
    backend: &dyn Backend,
    name: &str,
    language: &str,
) -> BackendResult<Option<TemplateHistory>> {
    let catalog = backend.templates();
    let Some(versions) = catalog.versions(name, language) else {
        return Ok(None);
    };
    let events = events_of(backend, name, language, MAX_EVENTS)?;
    let Some(summary) = summary(backend, versions, &events)? else {
        return Ok(None);
    };
    Ok(Some(TemplateHistory {
        summary,
        history_versions: versions
            .iter()
            .map(|v| VersionView {
                first_seen_ms: v.first_seen_ms,
                content: v.def.content.clone(),
            })
            .collect(),
        events,
    }))
}
