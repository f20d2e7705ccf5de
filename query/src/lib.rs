//! The Ticks query layer: the log table's filters, free text, sort and
//! paging, and group-by counts, all evaluated on the engine's bitmaps.
//!
//! # Data flow
//! ```text
//! params --LogQuery::from_params--> LogQuery (validated; errors name the parameter)
//!   text + phone/correlation filters --> tantivy look-ups (outside the lock)
//!   Snapshot: live ∩ field bitmaps (OR within a field, minus negated values)
//!             ∩ date range (whole days/hours from bitmaps, edges per entry)
//!             ∩ text hits                              = matches (exact total)
//!   sort: walk buckets (days, or field values) in order, skipping whole
//!         buckets by their intersection count, sort only the page's bucket
//! ```
//! The grammar of parameters is in [`LogQuery::from_params`]'s module docs.
//!
//! # Backends
//! The server asks through [`Backend`]: the embedded store implements it
//! (`backend.rs`, on this crate's functions), and [`clickhouse`] keeps the
//! log in a ClickHouse server or cluster.
//!
//! # Example
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let store = ticks_engine::Store::open(ticks_engine::Config::new(dir.path()))?;
//! let params = vec![("status".to_string(), "failed".to_string()), ("limit".to_string(), "10".to_string())];
//! let query = ticks_query::LogQuery::from_params(&params, &[])?;
//! let page = ticks_query::search(&store, &query)?;
//! assert_eq!(page.total, 0);
//! # store.close()?; Ok(()) }
//! ```

mod alerts;
mod backend;
mod buckets;
pub mod clickhouse;
mod cost;
mod error;
mod exec;
mod fields;
mod health;
mod params;
mod rates;
mod report;
mod scan;
mod templates;

pub use alerts::{
    parse_window, AlertRule, AlertState, AlertStatus, Alerts, Measure, Transition, BUILTIN_ALERTS,
};
pub use backend::{Backend, BackendResult, RawInputSink};
pub use buckets::Interval;
pub use cost::{CostBucket, CostGroup, CostReport, TypeCount};
pub use error::QueryError;
pub use exec::{group_in, matching, search, sorted_ids, stats, Group, GroupBy, Page, Stats};
pub use fields::{field, FieldKind, FieldSpec, FilterField, FIELDS};
pub use health::{HealthBucket, Reason, TemplateChange, TemplateHealth};
pub use params::{
    parse_time, parse_tz, Column, Filter, FilterValue, LogQuery, Sort, DEFAULT_LIMIT, MAX_LIMIT,
};
pub use rates::{category_key, Price, Rate, RateCard, RateCardError};
pub use report::{
    report, Breakdown, Bucket, CampaignReplies, Conversations, Count, Drill, Funnel, Inbound, Plan,
    Report, ReportOptions, Sections, Step, REPORT_PARAMS,
};
pub use templates::{
    template_history, template_list, TemplateEvent, TemplateHistory, TemplateSummary, VersionView,
};
