//! The alerts' machinery: the rules with their states (from the backend's
//! settings and the configuration's `[[alert]]` tables), an evaluator
//! thread that hands what each write changed to [`ticks_query::Alerts`]
//! twice a second, the history of firings and resolutions, and a notifier
//! that POSTs each to the rule's URLs, retried with backoff across
//! restarts. The HTTP handlers are in `alerts.rs`.
//!
//! Everything is kept in the backend's settings, so it outlives the
//! process: rules (`alerts`), whether each was firing (`alert_state`), the
//! history (`alert_history`, keyed by time) and the notifications not yet
//! delivered (`alert_outbox`). A history item names the entries behind it
//! by the rule's filter and a time range, never by their content: a purge
//! of those entries leaves the history selecting nothing of theirs.

use crate::error::ApiError;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::Sha256;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use ticks_query::{AlertRule, AlertStatus, Alerts, Backend, QueryError, Transition};
use tokio::sync::Notify;

const RULES: &str = "alerts";
const STATE: &str = "alert_state";
const HISTORY: &str = "alert_history";
const OUTBOX: &str = "alert_outbox";

/// How often the evaluator looks at what changed.
const EVALUATE_EVERY: Duration = Duration::from_millis(500);

/// How often the evaluator reads the stored rules again: on a store shared
/// by several processes (ClickHouse), a rule posted to another process is
/// evaluated here from then on.
const SYNC_RULES_EVERY: Duration = Duration::from_secs(2);
/// Most delivery attempts of one notification (about a day of backoff).
const MAX_ATTEMPTS: u32 = 40;
/// The longest wait between attempts.
const MAX_BACKOFF_MS: i64 = 15 * 60_000;

/// A notification waiting to be delivered.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Pending {
    url: String,
    body: String,
    attempts: u32,
    next_ms: i64,
    #[serde(default)]
    last_error: Option<String>,
}

/// The rules, their states and the notifier's wake-up, shared by the
/// handlers, the evaluator and the notifier.
pub(crate) struct AlertService {
    alerts: Mutex<Alerts>,
    secret: Option<String>,
    wake: Notify,
    sequence: AtomicU64,
    /// Notifications delivered and failed (each attempt), for /metrics.
    pub(crate) delivered: AtomicU64,
    pub(crate) failed: AtomicU64,
}

impl AlertService {
    /// Loads the stored rules and states, and stores `configured` rules
    /// (the configuration's `[[alert]]` tables) over stored ones.
    pub(crate) fn load(
        backend: &dyn Backend,
        configured: &[AlertRule],
        builtin_notify: Vec<String>,
        secret: Option<String>,
    ) -> anyhow::Result<AlertService> {
        for rule in configured {
            rule.validate()
                .map_err(|e| anyhow::anyhow!("alert {:?}: {e}", rule.name))?;
            backend.put_setting(RULES, &rule.name, &serde_json::to_vec(rule)?)?;
        }
        let mut alerts = Alerts::default();
        alerts.set_builtin_notify(builtin_notify);
        for (name, bytes) in backend.settings(RULES)? {
            match serde_json::from_slice::<AlertRule>(&bytes) {
                Ok(rule) => {
                    if let Err(e) = alerts.put(rule) {
                        tracing::error!("alert {name:?} is kept but not evaluated: {e}");
                    }
                }
                Err(e) => tracing::error!("alert {name:?} is kept but not read: {e}"),
            }
        }
        for (name, bytes) in backend.settings(STATE)? {
            if let Some(since) = std::str::from_utf8(&bytes)
                .ok()
                .and_then(|s| s.parse().ok())
            {
                alerts.restore_firing(&name, since);
            }
        }
        Ok(AlertService {
            alerts: Mutex::new(alerts),
            secret,
            wake: Notify::new(),
            sequence: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Alerts> {
        self.alerts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every rule with its state, value and volume.
    pub(crate) fn list(&self) -> Vec<AlertStatus> {
        self.lock().list()
    }

    /// Stores a rule (checked) and evaluates it from now on, replacing the
    /// one of its name.
    pub(crate) fn put_rule(&self, backend: &dyn Backend, rule: AlertRule) -> Result<(), ApiError> {
        rule.validate()?;
        backend.put_setting(
            RULES,
            &rule.name,
            &serde_json::to_vec(&rule).unwrap_or_default(),
        )?;
        backend.delete_setting(STATE, &rule.name)?;
        self.lock().put(rule)?;
        Ok(())
    }

    /// Takes up the rules another process of the same store added,
    /// changed or removed since this one read them (a no-op on the
    /// embedded store, where this process is the only writer of its rules).
    pub(crate) fn sync_rules(&self, backend: &dyn Backend) -> Result<(), QueryError> {
        let stored: Vec<AlertRule> = backend
            .settings(RULES)?
            .into_iter()
            .filter_map(|(_, bytes)| serde_json::from_slice(&bytes).ok())
            .collect();
        let mut alerts = self.lock();
        for rule in &stored {
            if alerts.rule(&rule.name) != Some(rule) {
                let name = rule.name.clone();
                match alerts.put(rule.clone()) {
                    Ok(()) => tracing::info!("alert {name:?} taken up from the store"),
                    Err(e) => tracing::debug!("alert {name:?} is kept but not evaluated: {e}"),
                }
            }
        }
        let gone: Vec<String> = alerts
            .list()
            .into_iter()
            .map(|s| s.rule.name)
            .filter(|name| !stored.iter().any(|r| &r.name == name))
            .collect();
        for name in gone {
            alerts.remove(&name);
        }
        Ok(())
    }

    /// Removes a rule (its history stays); true when it existed.
    pub(crate) fn remove_rule(&self, backend: &dyn Backend, name: &str) -> Result<bool, ApiError> {
        let stored = backend.delete_setting(RULES, name)?;
        backend.delete_setting(STATE, name)?;
        Ok(self.lock().remove(name) || stored)
    }

    /// Firings and resolutions, newest first, and the notifications still
    /// waiting, as the API answers them.
    pub(crate) fn history(
        backend: &dyn Backend,
    ) -> Result<(Vec<serde_json::Value>, Vec<serde_json::Value>), ApiError> {
        let mut history: Vec<serde_json::Value> = backend
            .settings(HISTORY)?
            .into_iter()
            .filter_map(|(_, v)| serde_json::from_slice::<Transition>(&v).ok())
            .map(|t| {
                json!({
                    "alert": t.alert, "state": t.state, "value": t.value, "threshold": t.threshold,
                    "window": t.window, "volume": t.volume, "at": crate::present::rfc3339(t.at_ms, 0),
                    "at_ms": t.at_ms, "drill": drill_query(&t), "detail": t.detail,
                })
            })
            .collect();
        history.reverse();
        let pending = backend
            .settings(OUTBOX)?
            .into_iter()
            .filter_map(|(_, v)| serde_json::from_slice::<Pending>(&v).ok())
            .map(|p| json!({"url": p.url, "attempts": p.attempts, "last_error": p.last_error}))
            .collect();
        Ok((history, pending))
    }

    /// Prometheus lines: each rule's state and value, and the deliveries.
    pub(crate) fn metrics(&self) -> String {
        let mut out = String::from(
            "# HELP ticks_alert_firing Whether an alert rule is firing (1) or not (0).\n# TYPE ticks_alert_firing gauge\n",
        );
        let list = self.lock().list();
        for a in &list {
            let firing = matches!(a.state, ticks_query::AlertState::Firing { .. });
            out.push_str(&format!(
                "ticks_alert_firing{{alert=\"{}\"}} {}\n",
                a.rule.name,
                u8::from(firing)
            ));
        }
        out.push_str("# HELP ticks_alert_value An alert rule's value at its last evaluation.\n# TYPE ticks_alert_value gauge\n");
        for a in &list {
            out.push_str(&format!(
                "ticks_alert_value{{alert=\"{}\"}} {}\n",
                a.rule.name, a.value
            ));
        }
        out.push_str(&format!(
            "# HELP ticks_alert_notifications_total Alert notifications delivered, and attempts that failed.\n# TYPE ticks_alert_notifications_total counter\nticks_alert_notifications_total{{result=\"delivered\"}} {}\nticks_alert_notifications_total{{result=\"failed\"}} {}\n",
            self.delivered.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed)
        ));
        out
    }

    /// Keeps a transition: the history, the firing state, and one
    /// notification per URL of the rule.
    fn record(&self, backend: &dyn Backend, t: &Transition, notify: &[String]) {
        let key = format!(
            "{:016}-{:06}",
            t.at_ms,
            self.sequence.fetch_add(1, Ordering::Relaxed) % 1_000_000
        );
        let result = (|| -> ticks_query::BackendResult<()> {
            backend.put_setting(HISTORY, &key, &serde_json::to_vec(t).unwrap_or_default())?;
            match t.state.as_str() {
                "firing" => backend.put_setting(STATE, &t.alert, t.at_ms.to_string().as_bytes())?,
                "resolved" => {
                    backend.delete_setting(STATE, &t.alert)?;
                }
                _ => {}
            }
            for (i, url) in notify.iter().enumerate() {
                let (url, body) = notification(url, t);
                let pending = Pending {
                    url,
                    body,
                    attempts: 0,
                    next_ms: t.at_ms,
                    last_error: None,
                };
                backend.put_setting(
                    OUTBOX,
                    &format!("{key}-{i:03}"),
                    &serde_json::to_vec(&pending).unwrap_or_default(),
                )?;
            }
            Ok(())
        })();
        if let Err(e) = result {
            tracing::error!("alert {:?}: keeping its {}: {e}", t.alert, t.state);
        }
        self.wake.notify_one();
    }
}

/// The drill filter as a query string of `GET /v1/logs` (and of the page).
fn drill_query(t: &Transition) -> String {
    const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'_')
        .remove(b'-')
        .remove(b'.')
        .remove(b'~');
    let enc = |s: &str| percent_encoding::utf8_percent_encode(s, QUERY_VALUE).to_string();
    t.drill
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The URL to POST to and the body: Slack's `{"text"}` for a
/// `slack+https://` URL, else Ticks' own JSON.
fn notification(url: &str, t: &Transition) -> (String, String) {
    let at = crate::present::rfc3339(t.at_ms, 0);
    match url.strip_prefix("slack+") {
        Some(slack) => {
            let text = match &t.detail {
                Some(detail) => format!(
                    "*{}*: {detail} at {at}. Entry: /?{}",
                    t.alert,
                    drill_query(t)
                ),
                None => format!(
                    "{} *{}*: {} = {} (threshold {}, window {}, {} entries) at {at}. Entries: /?{}",
                    if t.state == "firing" {
                        ":rotating_light:"
                    } else {
                        ":white_check_mark:"
                    },
                    t.alert,
                    t.state,
                    t.value,
                    t.threshold,
                    t.window,
                    t.volume,
                    drill_query(t)
                ),
            };
            (slack.to_string(), json!({"text": text}).to_string())
        }
        None => (
            url.to_string(),
            json!({
                "alert": t.alert, "state": t.state, "value": t.value, "threshold": t.threshold,
                "window": t.window, "volume": t.volume, "drill": drill_query(t), "at": at,
                "detail": t.detail,
            })
            .to_string(),
        ),
    }
}

fn signature(secret: &str, body: &[u8]) -> Option<String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(body);
    Some(format!(
        "sha256={}",
        hex::encode(mac.finalize().into_bytes())
    ))
}

/// Starts the evaluator (a thread: it reads the store under its lock) and
/// the notifier (a task).
pub(crate) fn start(service: Arc<AlertService>, backend: Arc<dyn Backend>) {
    {
        let (service, backend) = (service.clone(), backend.clone());
        // The store keeps what changes from its first hand-over on: make it
        // now, before the server answers anything.
        if let Err(e) = backend.evaluate_alerts(&mut Alerts::default(), ticks_ingest::now_ms()) {
            tracing::error!("alerts: watching the store: {e}");
        }
        let spawned = std::thread::Builder::new()
            .name("ticks-alerts".into())
            .spawn(move || {
                let mut synced = std::time::Instant::now();
                loop {
                    std::thread::sleep(EVALUATE_EVERY);
                    if synced.elapsed() >= SYNC_RULES_EVERY {
                        synced = std::time::Instant::now();
                        if let Err(e) = service.sync_rules(backend.as_ref()) {
                            tracing::warn!("alerts: reading the stored rules: {e}");
                        }
                    }
                    let now = ticks_ingest::now_ms();
                    let mut alerts = service.lock();
                    // Called without rules too: the store starts keeping what
                    // changes at the first call, and hands it over at each.
                    let transitions = match backend.evaluate_alerts(&mut alerts, now) {
                        Ok(t) => t,
                        Err(e) => {
                            tracing::error!("alerts: evaluating: {e}");
                            continue;
                        }
                    };
                    let notify: Vec<Vec<String>> = transitions
                        .iter()
                        .map(|t| alerts.notify_of(&t.alert))
                        .collect();
                    drop(alerts);
                    for (t, urls) in transitions.iter().zip(&notify) {
                        tracing::warn!("alert {:?} {} (value {})", t.alert, t.state, t.value);
                        service.record(backend.as_ref(), t, urls);
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!("alerts: no evaluator thread: {e}");
        }
    }
    tokio::spawn(notify_loop(service, backend));
}

async fn notify_loop(service: Arc<AlertService>, backend: Arc<dyn Backend>) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new());
    loop {
        if !backend.delivers_alerts() {
            // Another process of the deployment evaluates the rules and
            // delivers what they fire (its outbox is this one's too).
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        let b = backend.clone();
        let due: Vec<(String, Pending)> = tokio::task::spawn_blocking(move || {
            let now = ticks_ingest::now_ms();
            b.settings(OUTBOX)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|(k, v)| Some((k, serde_json::from_slice::<Pending>(&v).ok()?)))
                .filter(|(_, p)| p.next_ms <= now)
                .collect()
        })
        .await
        .unwrap_or_default();
        for (key, mut pending) in due {
            let mut req = client
                .post(&pending.url)
                .header("content-type", "application/json")
                .body(pending.body.clone());
            if let Some(sig) = service
                .secret
                .as_deref()
                .and_then(|s| signature(s, pending.body.as_bytes()))
            {
                req = req.header("X-Ticks-Signature-256", sig);
            }
            let outcome = match req.send().await {
                Ok(r) if r.status().is_success() => Ok(()),
                Ok(r) => Err(format!("answered {}", r.status())),
                Err(e) => Err(e.to_string()),
            };
            let b = backend.clone();
            let service = service.clone();
            let _ = tokio::task::spawn_blocking(move || {
                let result = match outcome {
                    Ok(()) => {
                        service.delivered.fetch_add(1, Ordering::Relaxed);
                        b.delete_setting(OUTBOX, &key).map(|_| ())
                    }
                    Err(e) => {
                        service.failed.fetch_add(1, Ordering::Relaxed);
                        pending.attempts += 1;
                        if pending.attempts >= MAX_ATTEMPTS {
                            tracing::error!(
                                "alert notification to {} dropped after {} attempts: {e}",
                                pending.url,
                                pending.attempts
                            );
                            b.delete_setting(OUTBOX, &key).map(|_| ())
                        } else {
                            let backoff =
                                (1_000i64 << pending.attempts.min(20)).min(MAX_BACKOFF_MS);
                            pending.next_ms = ticks_ingest::now_ms() + backoff;
                            pending.last_error = Some(e);
                            b.put_setting(
                                OUTBOX,
                                &key,
                                &serde_json::to_vec(&pending).unwrap_or_default(),
                            )
                        }
                    }
                };
                if let Err(e) = result {
                    tracing::error!("alerts: the outbox: {e}");
                }
            })
            .await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), service.wake.notified()).await;
    }
}
