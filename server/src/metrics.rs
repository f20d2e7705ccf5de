//! Counters and histograms, rendered as Prometheus text for `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use ticks_query::Backend;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 10] = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0, 5.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    total: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.counts[i] += 1;
            }
        }
        self.total += 1;
        self.sum += secs;
    }
}

/// What the server counts.
#[derive(Default)]
pub(crate) struct Metrics {
    /// (kind, outcome) -> count; outcome is stored, duplicate or rejected.
    ingest: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    /// (route, status) -> count.
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    query_latency: Mutex<Histogram>,
    /// Connections being served now.
    connections: AtomicU64,
}

impl Metrics {
    pub(crate) fn count_outcome(&self, kind: &'static str, stored: u64, duplicates: u64) {
        if let Ok(mut m) = self.ingest.lock() {
            *m.entry((kind, "stored")).or_default() += stored;
            *m.entry((kind, "duplicate")).or_default() += duplicates;
        }
    }

    pub(crate) fn count_rejected(&self, kind: &'static str) {
        if let Ok(mut m) = self.ingest.lock() {
            *m.entry((kind, "rejected")).or_default() += 1;
        }
    }

    pub(crate) fn observe_request(&self, route: &'static str, status: u16, _elapsed: Duration) {
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((route, status)).or_default() += 1;
        }
    }

    pub(crate) fn connection_opened(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn connection_closed(&self) {
        self.connections.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn observe_query(&self, elapsed: Duration) {
        if let Ok(mut h) = self.query_latency.lock() {
            h.observe(elapsed.as_secs_f64());
        }
    }

    pub(crate) fn render(&self, store: Option<&dyn Backend>, relay_backlog: u64) -> String {
        let mut out = String::new();
        out.push_str("# HELP ticks_ingest_total Inputs by kind and outcome.\n# TYPE ticks_ingest_total counter\n");
        if let Ok(m) = self.ingest.lock() {
            for ((kind, outcome), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "ticks_ingest_total{{kind=\"{kind}\",outcome=\"{outcome}\"}} {n}"
                );
            }
        }
        out.push_str("# HELP ticks_http_requests_total HTTP requests by route and status.\n# TYPE ticks_http_requests_total counter\n");
        if let Ok(m) = self.requests.lock() {
            for ((route, status), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "ticks_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
                );
            }
        }
        out.push_str("# HELP ticks_query_seconds Latency of log and stats queries.\n# TYPE ticks_query_seconds histogram\n");
        if let Ok(h) = self.query_latency.lock() {
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "ticks_query_seconds_bucket{{le=\"{b}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(out, "ticks_query_seconds_bucket{{le=\"+Inf\"}} {}", h.total);
            let _ = writeln!(out, "ticks_query_seconds_sum {}", h.sum);
            let _ = writeln!(out, "ticks_query_seconds_count {}", h.total);
        }
        let _ = writeln!(
            out,
            "# HELP ticks_relay_backlog Log records not yet relayed, over all downstream URLs.
# TYPE ticks_relay_backlog gauge
ticks_relay_backlog {relay_backlog}"
        );
        let _ = writeln!(
            out,
            "# HELP ticks_connections_open Connections being served.
# TYPE ticks_connections_open gauge
ticks_connections_open {}",
            self.connections.load(Ordering::Relaxed)
        );
        if let Some(store) = store {
            let health = store.write_health();
            let _ = writeln!(
                out,
                "# HELP ticks_store_write_failures_total Group commits that failed (their writes were refused, not acknowledged).
# TYPE ticks_store_write_failures_total counter
ticks_store_write_failures_total {}
# HELP ticks_store_writable 1 while the store accepts writes, 0 while it recovers from a failed write.
# TYPE ticks_store_writable gauge
ticks_store_writable {}",
                health.failures,
                u8::from(health.fault.is_none())
            );
        }
        if let Some(stats) = store.and_then(|s| s.store_stats().ok()) {
            let _ = writeln!(
                out,
                "# TYPE ticks_store_bytes gauge\nticks_store_bytes {}",
                stats.disk_bytes
            );
            let _ = writeln!(
                out,
                "# TYPE ticks_entries gauge\nticks_entries {}",
                stats.live_entries
            );
            let _ = writeln!(
                out,
                "# TYPE ticks_log_records gauge\nticks_log_records {}",
                stats.log_records
            );
            let _ = writeln!(
                out,
                "# TYPE ticks_text_lag_records gauge\nticks_text_lag_records {}",
                stats.text_lag_records
            );
            let _ = writeln!(
                out,
                "# TYPE ticks_key_column_bytes gauge\nticks_key_column_bytes {}",
                stats.column_bytes
            );
            let _ = writeln!(
                out,
                "# TYPE ticks_row_bytes gauge\nticks_row_bytes {}",
                stats.row_bytes
            );
        }
        out
    }
}
