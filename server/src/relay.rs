//! The webhook relay: every webhook Ticks stored is forwarded, with the same
//! raw body and a valid `X-Hub-Signature-256`, to each configured downstream
//! URL (the business's own app).
//!
//! The log is the queue: a relay keeps, per URL, a cursor (the last log
//! record delivered or given up), saved in the store's settings about once a
//! second. After a restart it resumes from the saved cursor, so delivery is
//! at least once (a downstream must deduplicate, as it must for Meta).
//! Records are delivered in log order; a failing one is retried with
//! exponential backoff (1 s doubling to 10 min) and given up after
//! [`MAX_ATTEMPTS`], when it is listed as failed and the cursor moves on.
//! None of this runs on the path of Meta's 200.

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use ticks_engine::Seq;
use ticks_query::Backend;
use tokio::sync::Notify;

/// Attempts before a record is given up (about 2 hours of backoff).
const MAX_ATTEMPTS: u32 = 20;
const MAX_BACKOFF: Duration = Duration::from_secs(600);
const NAMESPACE: &str = "relay";

/// What the API and metrics show about one downstream.
#[derive(Clone, Debug, Serialize, Default)]
pub(crate) struct RelayStatus {
    pub(crate) url: String,
    /// Last log record delivered (or given up).
    pub(crate) cursor: Option<u64>,
    /// Log records written after the cursor (webhooks and others).
    pub(crate) behind: u64,
    /// Attempts on the record at the head of the queue.
    pub(crate) attempts: u32,
    pub(crate) last_error: Option<String>,
    pub(crate) delivered: u64,
    /// Records given up after every attempt failed.
    pub(crate) failed: Vec<u64>,
}

/// The relays of a server.
pub(crate) struct Relays {
    pub(crate) status: Vec<Arc<Mutex<RelayStatus>>>,
    pub(crate) wake: Arc<Notify>,
}

impl Relays {
    pub(crate) fn none() -> Relays {
        Relays {
            status: Vec::new(),
            wake: Arc::new(Notify::new()),
        }
    }

    /// Records behind, over every downstream.
    pub(crate) fn backlog(&self, store: Option<&dyn Backend>) -> u64 {
        let last = store.and_then(|s| s.last_seq()).map_or(0, |s| s.0 + 1);
        self.status
            .iter()
            .filter_map(|s| {
                s.lock()
                    .ok()
                    .map(|s| last.saturating_sub(s.cursor.map_or(0, |c| c + 1)))
            })
            .sum()
    }

    pub(crate) fn snapshot(&self, store: Option<&dyn Backend>) -> Vec<RelayStatus> {
        let last = store.and_then(|s| s.last_seq()).map_or(0, |s| s.0 + 1);
        self.status
            .iter()
            .filter_map(|s| s.lock().ok().map(|s| s.clone()))
            .map(|mut s| {
                s.behind = last.saturating_sub(s.cursor.map_or(0, |c| c + 1));
                s
            })
            .collect()
    }
}

fn cursor_key(url: &str) -> String {
    format!("cursor:{url}")
}

/// Starts one relay task per URL.
pub(crate) fn start(
    store: Arc<dyn Backend>,
    urls: &[String],
    app_secret: Option<String>,
) -> Relays {
    let wake = Arc::new(Notify::new());
    let mut status = Vec::new();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new());
    for url in urls {
        // The saved cursor is a sequence number, or "start" for "before the
        // first record" (a downstream added to an empty store).
        let saved: Option<Option<u64>> = store
            .settings(NAMESPACE)
            .ok()
            .and_then(|all| all.into_iter().find(|(k, _)| *k == cursor_key(url)))
            .and_then(|(_, v)| {
                let text = String::from_utf8(v).ok()?;
                if text == "start" {
                    Some(None)
                } else {
                    text.parse::<u64>().ok().map(Some)
                }
            });
        // A new downstream starts at the end of the log: it gets what arrives from now on.
        let cursor = match saved {
            Some(c) => c,
            None => {
                let c = store.last_seq().map(|s| s.0);
                let text = c.map_or_else(|| "start".to_string(), |c| c.to_string());
                if let Err(e) = store.put_setting(NAMESPACE, &cursor_key(url), text.as_bytes()) {
                    tracing::error!("relay: saving the cursor of {url}: {e}");
                }
                c
            }
        };
        let st = Arc::new(Mutex::new(RelayStatus {
            url: url.clone(),
            cursor,
            ..Default::default()
        }));
        status.push(st.clone());
        tokio::spawn(run(
            store.clone(),
            url.clone(),
            app_secret.clone(),
            client.clone(),
            st,
            wake.clone(),
        ));
    }
    Relays { status, wake }
}

fn signature(secret: &str, body: &[u8]) -> Option<String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(body);
    Some(format!(
        "sha256={}",
        hex::encode(mac.finalize().into_bytes())
    ))
}

/// The next webhook record after `cursor`, with its raw body.
fn next_webhook(store: &dyn Backend, cursor: Option<u64>) -> Option<(Seq, Vec<u8>)> {
    match store.webhook_after(cursor.map(Seq)) {
        Ok(next) => next,
        Err(e) => {
            tracing::error!("relay: reading the log: {e}");
            None
        }
    }
}

async fn run(
    store: Arc<dyn Backend>,
    url: String,
    secret: Option<String>,
    client: reqwest::Client,
    status: Arc<Mutex<RelayStatus>>,
    wake: Arc<Notify>,
) {
    let mut cursor = status.lock().map(|s| s.cursor).unwrap_or(None);
    let mut saved_cursor = cursor;
    let mut last_save = Instant::now();
    let mut attempts: u32 = 0;
    loop {
        let s = store.clone();
        let next = tokio::task::spawn_blocking(move || next_webhook(&*s, cursor))
            .await
            .ok()
            .flatten();
        let Some((seq, body)) = next else {
            if saved_cursor != cursor {
                save(&store, &url, cursor).await;
                saved_cursor = cursor;
            }
            // Sleep until a webhook arrives (or a second passes, as a safety net).
            let _ = tokio::time::timeout(Duration::from_secs(1), wake.notified()).await;
            continue;
        };
        let mut req = client
            .post(&url)
            .header("content-type", "application/json")
            .body(body.clone());
        if let Some(sig) = secret.as_deref().and_then(|s| signature(s, &body)) {
            req = req.header("X-Hub-Signature-256", sig);
        }
        let result = match req.send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(format!("HTTP {}", r.status().as_u16())),
            Err(e) => Err(e.to_string()),
        };
        match result {
            Ok(()) => {
                cursor = Some(seq.0);
                attempts = 0;
                if let Ok(mut st) = status.lock() {
                    st.cursor = cursor;
                    st.attempts = 0;
                    st.last_error = None;
                    st.delivered += 1;
                }
            }
            Err(e) => {
                attempts += 1;
                tracing::warn!(url = %url, seq = seq.0, attempts, "relay: delivery failed: {e}");
                if attempts >= MAX_ATTEMPTS {
                    let _ = store.put_setting(
                        NAMESPACE,
                        &format!("failed:{url}:{:020}", seq.0),
                        e.as_bytes(),
                    );
                    cursor = Some(seq.0);
                    attempts = 0;
                    if let Ok(mut st) = status.lock() {
                        st.failed.push(seq.0);
                        st.cursor = cursor;
                    }
                } else {
                    if let Ok(mut st) = status.lock() {
                        st.attempts = attempts;
                        st.last_error = Some(e);
                    }
                    let backoff = Duration::from_secs(1u64 << attempts.min(10)).min(MAX_BACKOFF);
                    tokio::time::sleep(backoff).await;
                }
            }
        }
        if last_save.elapsed() >= Duration::from_secs(1) && saved_cursor != cursor {
            save(&store, &url, cursor).await;
            saved_cursor = cursor;
            last_save = Instant::now();
        }
    }
}

async fn save(store: &Arc<dyn Backend>, url: &str, cursor: Option<u64>) {
    let Some(c) = cursor else { return };
    let (s, key) = (store.clone(), cursor_key(url));
    let _ = tokio::task::spawn_blocking(move || {
        s.put_setting(NAMESPACE, &key, c.to_string().as_bytes())
    })
    .await;
}
