//! Alerts: rules over what arrives (a filter of the log table, a count or a
//! rate, a window, a threshold, a minimum volume), evaluated on the entries
//! each write changed ([`ticks_engine::Store::take_changes`]), never by
//! re-scanning the store, with hysteresis.
//!
//! An entry counts towards a rule when a change makes it match the rule's
//! filter (a send answered 429, a status that turns a message `failed`), at
//! the time the change arrives, once per window; entries recorded more than
//! a day (or the window, if longer) before the change are history being
//! imported, not news, and do not count. A rate divides the matching
//! entries by those matching `of` (all outbound entries unless given) in
//! the same window.
//!
//! States: an alert fires once when its value reaches the threshold on at
//! least `min_volume` entries, stays firing while the condition holds or
//! until it has been false for a whole window (so a rate that flaps around
//! the threshold notifies once, not on every flap), then resolves. Each
//! firing and resolution is a [`Transition`]; what to do with it (notify,
//! keep, count) is the caller's.

use crate::error::QueryError;
use crate::exec::{matches_among, Prefetched};
use crate::fields::FilterField;
use crate::params::LogQuery;
use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use ticks_engine::{Direction, Field, Key, Store, Value};

/// What a rule measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Measure {
    /// Matching entries in the window.
    Count,
    /// Matching entries / entries matching `of`, in the window.
    Rate,
}

/// An alert rule as the API and the configuration give it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRule {
    /// Its name (the key: posting a rule of the same name replaces it).
    pub name: String,
    /// The query string of `GET /v1/logs` that selects what is counted
    /// (`response_code=429`, `status=failed&category=marketing_campaign`).
    pub filter: String,
    /// `count` or `rate`.
    pub measure: Measure,
    /// For a rate, the query string of the denominator (default: every
    /// outbound entry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub of: Option<String>,
    /// The window: `30s`, `5m`, `1h`, `1d`.
    pub window: String,
    /// The value from which it fires (a count, or a rate from 0 to 1).
    pub threshold: f64,
    /// The least number of entries (counted, or in the denominator) the
    /// window must hold before it can fire.
    #[serde(default)]
    pub min_volume: u64,
    /// URLs notified of each firing and resolution (`slack+https://...`:
    /// a Slack-compatible body).
    #[serde(default)]
    pub notify: Vec<String>,
}

/// Parses a window (`30s`, `5m`, `2h`, `1d`) into milliseconds.
pub fn parse_window(text: &str) -> Option<i64> {
    let text = text.trim();
    let unit = text.chars().last()?;
    let n: i64 = text[..text.len() - unit.len_utf8()].parse().ok()?;
    let ms = match unit {
        's' => 1_000,
        'm' => 60_000,
        'h' => 3_600_000,
        'd' => 86_400_000,
        _ => return None,
    };
    (n > 0 && n <= 30 * 86_400_000 / ms).then_some(n * ms)
}

/// Parameters an alert's filter cannot take: the window replaces the time
/// range, and a count has no page.
const NOT_IN_ALERTS: [&str; 11] = [
    "text", "from", "to", "tz", "sort", "limit", "offset", "cursor", "fields", "all", "q",
];

fn invalid(param: &str, message: String) -> QueryError {
    QueryError::InvalidParam {
        param: param.into(),
        message,
    }
}

/// A filter of a rule, parsed: errors name the rule's key (`filter`, `of`).
fn compile(key: &str, text: &str) -> Result<LogQuery, QueryError> {
    let pairs: Vec<(String, String)> = form_pairs(text);
    for (k, _) in &pairs {
        let bare = k.trim_start_matches('-');
        if NOT_IN_ALERTS.contains(&bare) {
            return Err(invalid(
                key,
                format!("{bare}: an alert's filter takes field filters only (its window is the time range)"),
            ));
        }
    }
    let q = LogQuery::from_params(&pairs, &[]).map_err(|e| invalid(key, e.to_string()))?;
    if q.filters
        .iter()
        .any(|f| f.field == FilterField::CorrelationId)
    {
        return Err(invalid(
            key,
            "correlation_id: not in alerts (it is looked up in the text index)".into(),
        ));
    }
    Ok(q)
}

/// What changed since the last round of alerts, as a backend tells it.
pub trait ChangeSource {
    /// Why it could not say.
    type Error;
    /// Whether anything changed.
    fn any(&mut self) -> Result<bool, Self::Error>;
    /// The changed entries recorded at or after `cutoff` that `q` selects
    /// (older ones are history being imported, not news).
    fn matching(&mut self, cutoff: i64, q: &LogQuery) -> Result<RoaringBitmap, Self::Error>;
    /// The changed event entries recorded at or after `cutoff` whose
    /// event is one of `fields`.
    fn events(
        &mut self,
        cutoff: i64,
        fields: &[&str],
    ) -> Result<Vec<ticks_engine::Entry>, Self::Error>;
}

/// The embedded store's changes: the entries its writes changed
/// ([`Store::take_changes`]). The store is read a filter at a time, so the
/// writer never waits for a whole round.
struct StoreChanges<'a> {
    store: &'a Store,
    changed: &'a RoaringBitmap,
    /// Changed entries recorded at or after each cutoff.
    news: Map<i64, RoaringBitmap>,
}

impl StoreChanges<'_> {
    fn news(&mut self, cutoff: i64) -> &RoaringBitmap {
        let (store, changed) = (self.store, self.changed);
        self.news.entry(cutoff).or_insert_with(|| {
            let snap = store.snapshot();
            changed
                .iter()
                .filter(|id| snap.recorded_ms(*id) >= cutoff)
                .collect()
        })
    }
}

impl ChangeSource for StoreChanges<'_> {
    type Error = std::convert::Infallible;

    fn any(&mut self) -> Result<bool, Self::Error> {
        Ok(!self.changed.is_empty())
    }

    fn matching(&mut self, cutoff: i64, q: &LogQuery) -> Result<RoaringBitmap, Self::Error> {
        let store = self.store;
        let news = self.news(cutoff).clone();
        let snap = store.snapshot();
        Ok(matches_among(&snap, q, &Prefetched::NONE, Some(&news)))
    }

    fn events(
        &mut self,
        cutoff: i64,
        fields: &[&str],
    ) -> Result<Vec<ticks_engine::Entry>, Self::Error> {
        let store = self.store;
        let news = self.news(cutoff).clone();
        let snap = store.snapshot();
        let values: Vec<Value> = fields.iter().map(|f| Value::Text((*f).into())).collect();
        let mut ids = news & &*snap.any_of(Field::Category, &values);
        match snap.bitmap(Field::Direction, Key::direction(Direction::Event)) {
            Some(events) => ids &= events,
            None => return Ok(Vec::new()),
        }
        let ids: Vec<u32> = ids.iter().collect();
        Ok(snap.entries(&ids))
    }
}

/// `a=1&b=x%20y` -> pairs, percent-decoded (`+` is a space).
fn form_pairs(text: &str) -> Vec<(String, String)> {
    let decode = |s: &str| {
        let s = s.replace('+', " ");
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
                (b'%', Some(h), Some(l)) if hex(*h).is_some() && hex(*l).is_some() => {
                    out.push((hex(*h).unwrap_or(0) * 16 + hex(*l).unwrap_or(0)) as u8);
                    i += 3;
                }
                (b, _, _) => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    text.trim_start_matches('?')
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

impl AlertRule {
    /// Checks every field; the error names it.
    pub fn validate(&self) -> Result<(), QueryError> {
        self.compiled().map(|_| ())
    }

    fn compiled(&self) -> Result<Compiled, QueryError> {
        if self.name.is_empty()
            || self.name.len() > 64
            || !self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(invalid(
                "name",
                format!("{:?}: use 1-64 letters, digits, '-', '_' or '.'", self.name),
            ));
        }
        let window_ms = parse_window(&self.window).ok_or_else(|| {
            invalid(
                "window",
                format!(
                    "{:?}: use a number and s, m, h or d (5m), up to 30 days",
                    self.window
                ),
            )
        })?;
        if !self.threshold.is_finite() || self.threshold < 0.0 {
            return Err(invalid("threshold", "use a number of at least 0".into()));
        }
        if self.measure == Measure::Rate && self.threshold > 1.0 {
            return Err(invalid(
                "threshold",
                format!("{}: a rate's threshold is from 0 to 1", self.threshold),
            ));
        }
        if self.measure == Measure::Count && self.of.is_some() {
            return Err(invalid("of", "only a rate has a denominator".into()));
        }
        for url in &self.notify {
            let plain = url.strip_prefix("slack+").unwrap_or(url);
            if !(plain.starts_with("http://") || plain.starts_with("https://")) {
                return Err(invalid(
                    "notify",
                    format!("{url:?}: use an http(s) URL (slack+https:// for Slack's body)"),
                ));
            }
        }
        let counted = compile("filter", &self.filter)?;
        let of = match (self.measure, &self.of) {
            (Measure::Count, _) => None,
            (Measure::Rate, Some(of)) => Some(compile("of", of)?),
            (Measure::Rate, None) => Some(compile("of", DEFAULT_OF)?),
        };
        Ok(Compiled {
            counted,
            of,
            window_ms,
        })
    }
}

struct Compiled {
    counted: LogQuery,
    of: Option<LogQuery>,
    window_ms: i64,
}

/// Where a rule stands.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum AlertState {
    /// The condition does not hold (or has not held a whole window since it
    /// last fired).
    Ok,
    /// Fired at `since_ms` and not resolved.
    Firing {
        /// When it fired.
        since_ms: i64,
    },
}

/// A rule's firing or resolution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    /// The rule's name.
    pub alert: String,
    /// `firing` or `resolved`.
    pub state: String,
    /// The value then (a count, or a rate).
    pub value: f64,
    /// The rule's threshold.
    pub threshold: f64,
    /// The rule's window.
    pub window: String,
    /// Entries counted (a count) or in the denominator (a rate).
    pub volume: u64,
    /// When, UTC milliseconds.
    pub at_ms: i64,
    /// The parameters of `GET /v1/logs` that select the entries behind it:
    /// the rule's filter over its window (or, resolved, over its firing).
    pub drill: Vec<(String, String)>,
    /// A built-in event's what and where (`pedido_enviado pt_BR: APPROVED
    /// -> PAUSED`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The built-in alerts: Meta telling the business something it must act
/// on, each a `state: "event"` transition of the event entry that says it
/// (name, webhook field, the values it fires on: any when empty).
pub const BUILTIN_ALERTS: [(&str, &str, &[&str]); 4] = [
    (
        "template_paused",
        "message_template_status_update",
        &["PAUSED", "DISABLED"],
    ),
    (
        "template_quality_red",
        "message_template_quality_update",
        &["RED"],
    ),
    ("phone_quality_changed", "phone_number_quality_update", &[]),
    ("messaging_limit_changed", "business_capability_update", &[]),
];

/// One evaluation round's new entries.
struct Round {
    at_ms: i64,
    counted: RoaringBitmap,
    of: RoaringBitmap,
}

/// A rule with its window and state.
struct Watched {
    rule: AlertRule,
    compiled: Compiled,
    rounds: VecDeque<Round>,
    /// The union of `rounds`: an entry counts once per window.
    seen_counted: RoaringBitmap,
    seen_of: RoaringBitmap,
    state: AlertState,
    /// Since when the condition has been false while firing.
    false_since: Option<i64>,
    value: f64,
    volume: u64,
}

impl Watched {
    fn counts(&self) -> (u64, u64) {
        self.rounds
            .iter()
            .fold((0, 0), |(c, o), r| (c + r.counted.len(), o + r.of.len()))
    }
}

/// A rule and where it stands, as `GET /v1/alerts` lists it.
#[derive(Clone, Debug, Serialize)]
pub struct AlertStatus {
    /// The rule.
    #[serde(flatten)]
    pub rule: AlertRule,
    /// Its state.
    #[serde(flatten)]
    pub state: AlertState,
    /// Its value at the last evaluation.
    pub value: f64,
    /// Its volume then.
    pub volume: u64,
}

/// The rules being evaluated.
#[derive(Default)]
pub struct Alerts {
    watched: Vec<Watched>,
    /// Where the built-in alerts are notified.
    builtin_notify: Vec<String>,
}

/// How far back a change may be dated and still be news (see the module).
const NEWS_MS: i64 = 86_400_000;

/// A rate's denominator when the rule names none.
const DEFAULT_OF: &str = "direction=outbound";

type Map<K, V> = rustc_hash::FxHashMap<K, V>;

impl Alerts {
    /// Adds a rule, or replaces the one of the same name (which starts
    /// over: a new filter, a new count).
    pub fn put(&mut self, rule: AlertRule) -> Result<(), QueryError> {
        let compiled = rule.compiled()?;
        let watched = Watched {
            rule,
            compiled,
            rounds: VecDeque::new(),
            seen_counted: RoaringBitmap::new(),
            seen_of: RoaringBitmap::new(),
            state: AlertState::Ok,
            false_since: None,
            value: 0.0,
            volume: 0,
        };
        match self
            .watched
            .iter_mut()
            .find(|w| w.rule.name == watched.rule.name)
        {
            Some(old) => *old = watched,
            None => self.watched.push(watched),
        }
        Ok(())
    }

    /// Sets the URLs the built-in alerts ([`BUILTIN_ALERTS`]) notify.
    pub fn set_builtin_notify(&mut self, urls: Vec<String>) {
        self.builtin_notify = urls;
    }

    /// The URLs a rule (or a built-in alert) notifies.
    pub fn notify_of(&self, name: &str) -> Vec<String> {
        match self.rule(name) {
            Some(rule) => rule.notify.clone(),
            None if BUILTIN_ALERTS.iter().any(|(n, _, _)| *n == name) => {
                self.builtin_notify.clone()
            }
            None => Vec::new(),
        }
    }

    /// Removes a rule; true when it existed.
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.watched.len();
        self.watched.retain(|w| w.rule.name != name);
        self.watched.len() != before
    }

    /// Marks a rule firing since `since_ms` (a state kept across restarts).
    pub fn restore_firing(&mut self, name: &str, since_ms: i64) {
        if let Some(w) = self.watched.iter_mut().find(|w| w.rule.name == name) {
            w.state = AlertState::Firing { since_ms };
        }
    }

    /// Every rule with its state, in the order added.
    pub fn list(&self) -> Vec<AlertStatus> {
        self.watched
            .iter()
            .map(|w| AlertStatus {
                rule: w.rule.clone(),
                state: w.state,
                value: w.value,
                volume: w.volume,
            })
            .collect()
    }

    /// The rule named `name`.
    pub fn rule(&self, name: &str) -> Option<&AlertRule> {
        self.watched
            .iter()
            .find(|w| w.rule.name == name)
            .map(|w| &w.rule)
    }

    /// Whether any rule is kept.
    pub fn is_empty(&self) -> bool {
        self.watched.is_empty()
    }

    /// Counts the entries of `changed` (those the writes since the last
    /// call changed) towards every rule, slides the windows to `now_ms`,
    /// and returns the rules that fired or resolved.
    pub fn evaluate(
        &mut self,
        store: &Store,
        changed: &RoaringBitmap,
        now_ms: i64,
    ) -> Vec<Transition> {
        let mut source = StoreChanges {
            store,
            changed,
            news: Map::default(),
        };
        match self.evaluate_changes(&mut source, now_ms) {
            Ok(out) => out,
            Err(never) => match never {},
        }
    }

    /// [`Alerts::evaluate`] over what `source` says changed since the
    /// last call (a backend without the store's change set gives its own).
    pub fn evaluate_changes<S: ChangeSource>(
        &mut self,
        source: &mut S,
        now_ms: i64,
    ) -> Result<Vec<Transition>, S::Error> {
        let mut out = Vec::new();
        let changed = source.any()?;
        // Rules share filters (most rates divide by every outbound entry):
        // each distinct filter is matched once a round.
        let mut matched: Map<(i64, String), RoaringBitmap> = Map::default();
        for w in &mut self.watched {
            let window = w.compiled.window_ms;
            let cutoff = now_ms - window.max(NEWS_MS);
            let (counted, of) = if !changed {
                (RoaringBitmap::new(), RoaringBitmap::new())
            } else {
                let mut match_once =
                    |text: &str, q: &LogQuery| -> Result<RoaringBitmap, S::Error> {
                        let key = (cutoff, text.to_string());
                        if let Some(found) = matched.get(&key) {
                            return Ok(found.clone());
                        }
                        let found = source.matching(cutoff, q)?;
                        matched.insert(key, found.clone());
                        Ok(found)
                    };
                let counted = match_once(&w.rule.filter, &w.compiled.counted)?;
                let of = match &w.compiled.of {
                    Some(q) => match_once(w.rule.of.as_deref().unwrap_or(DEFAULT_OF), q)?,
                    None => RoaringBitmap::new(),
                };
                (counted - &w.seen_counted, of - &w.seen_of)
            };
            if !counted.is_empty() || !of.is_empty() {
                w.seen_counted |= &counted;
                w.seen_of |= &of;
                w.rounds.push_back(Round {
                    at_ms: now_ms,
                    counted,
                    of,
                });
            }
            let mut dropped = false;
            while w.rounds.front().is_some_and(|r| r.at_ms <= now_ms - window) {
                w.rounds.pop_front();
                dropped = true;
            }
            if dropped {
                w.seen_counted = w
                    .rounds
                    .iter()
                    .map(|r| &r.counted)
                    .fold(RoaringBitmap::new(), |acc, bm| acc | bm);
                w.seen_of = w
                    .rounds
                    .iter()
                    .map(|r| &r.of)
                    .fold(RoaringBitmap::new(), |acc, bm| acc | bm);
            }
            let (c, o) = w.counts();
            let (value, volume) = match w.rule.measure {
                Measure::Count => (c as f64, c),
                Measure::Rate if o == 0 => (0.0, 0),
                Measure::Rate => (c as f64 / o as f64, o),
            };
            w.value = value;
            w.volume = volume;
            let holds = volume >= w.rule.min_volume && value >= w.rule.threshold && volume > 0;
            let transition = |state: &str, from_ms: i64| Transition {
                alert: w.rule.name.clone(),
                state: state.into(),
                value,
                threshold: w.rule.threshold,
                window: w.rule.window.clone(),
                volume,
                at_ms: now_ms,
                drill: drill(&w.rule.filter, from_ms, now_ms),
                detail: None,
            };
            match (w.state, holds) {
                (AlertState::Ok, true) => {
                    out.push(transition("firing", now_ms - window));
                    w.state = AlertState::Firing { since_ms: now_ms };
                    w.false_since = None;
                }
                (AlertState::Firing { .. }, true) => w.false_since = None,
                (AlertState::Firing { since_ms }, false) => {
                    let since = *w.false_since.get_or_insert(now_ms);
                    if now_ms - since >= window {
                        out.push(transition("resolved", since_ms - window));
                        w.state = AlertState::Ok;
                        w.false_since = None;
                    }
                }
                (AlertState::Ok, false) => {}
            }
        }
        if changed {
            let fields: Vec<&str> = BUILTIN_ALERTS.iter().map(|(_, field, _)| *field).collect();
            let events = source.events(now_ms - NEWS_MS, &fields)?;
            out.extend(builtin_events(events, now_ms));
        }
        Ok(out)
    }
}

/// The built-in alerts among `events` (event entries of their fields).
fn builtin_events(events: Vec<ticks_engine::Entry>, now_ms: i64) -> Vec<Transition> {
    let mut out = Vec::new();
    for e in events {
        let field = e.category.as_deref().unwrap_or("");
        let to = e.event_to.as_deref().unwrap_or("");
        let Some((name, _, _)) = BUILTIN_ALERTS
            .iter()
            .find(|(_, f, values)| *f == field && (values.is_empty() || values.contains(&to)))
        else {
            continue;
        };
        // What changed: the template, else the business number.
        let what = match &e.template {
            Some(t) => [Some(t.as_str()), e.template_language.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" "),
            None => e
                .phone_number_id
                .clone()
                .or(e.name.clone())
                .unwrap_or_default(),
        };
        let change = match e.event_from.as_deref() {
            Some(from) => format!("{from} -> {to}"),
            None => to.to_string(),
        };
        out.push(Transition {
            alert: (*name).into(),
            state: "event".into(),
            value: 1.0,
            threshold: 1.0,
            window: String::new(),
            volume: 1,
            at_ms: now_ms,
            drill: vec![("id".into(), e.id.0.to_string())],
            detail: Some(if what.is_empty() {
                change
            } else {
                format!("{what}: {change}")
            }),
        });
    }
    out
}

/// The rule's filter between two times, as `GET /v1/logs` parameters.
/// (It names entries by filter and time, never by their content, so a purge
/// of them leaves it selecting nothing.)
fn drill(filter: &str, from_ms: i64, to_ms: i64) -> Vec<(String, String)> {
    let mut out = form_pairs(filter);
    out.push(("from".into(), from_ms.to_string()));
    out.push(("to".into(), to_ms.to_string()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(filter: &str, measure: Measure, threshold: f64) -> AlertRule {
        AlertRule {
            name: "r".into(),
            filter: filter.into(),
            measure,
            of: None,
            window: "5m".into(),
            threshold,
            min_volume: 0,
            notify: vec![],
        }
    }

    #[test]
    fn windows_are_read_with_their_unit() {
        assert_eq!(parse_window("30s"), Some(30_000));
        assert_eq!(parse_window("5m"), Some(300_000));
        assert_eq!(parse_window("2h"), Some(7_200_000));
        assert_eq!(parse_window("1d"), Some(86_400_000));
        for bad in ["5", "m", "0m", "-1m", "5w", "31d", ""] {
            assert_eq!(parse_window(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_bad_rule_is_refused_naming_its_field() {
        let field = |r: AlertRule| match r.validate() {
            Err(QueryError::InvalidParam { param, .. }) => param,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(rule("statuz=failed", Measure::Count, 1.0)), "filter");
        assert_eq!(field(rule("text=hello", Measure::Count, 1.0)), "filter");
        assert_eq!(
            field(rule("status=failed", Measure::Rate, 5.0)),
            "threshold"
        );
        let mut r = rule("status=failed", Measure::Count, 1.0);
        r.window = "forever".into();
        assert_eq!(field(r), "window");
        let mut r = rule("status=failed", Measure::Rate, 0.1);
        r.of = Some("direction=sideways".into());
        assert_eq!(field(r), "of");
        let mut r = rule("status=failed", Measure::Count, 1.0);
        r.notify = vec!["ftp://x".into()];
        assert_eq!(field(r), "notify");
        let mut r = rule("status=failed", Measure::Count, 1.0);
        r.name = "a b".into();
        assert_eq!(field(r), "name");
        assert!(
            rule("response_code=429&-category=test", Measure::Count, 3.0)
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn filters_are_read_as_query_strings() {
        assert_eq!(
            form_pairs("?name=Black%20Friday&status=failed+x"),
            vec![
                ("name".to_string(), "Black Friday".to_string()),
                ("status".to_string(), "failed x".to_string())
            ]
        );
    }
}
