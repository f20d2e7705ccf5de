//! `ticks serve` on ClickHouse: an acknowledged webhook is in ClickHouse,
//! whatever happens to Ticks or to ClickHouse after; while ClickHouse is
//! down Meta gets 503s (and retries), `/readyz` says why, and ingest
//! resumes on its own when ClickHouse is back.
//!
//! These tests start a ClickHouse server of their own with
//! `scripts/clickhouse.sh start-one` (Debian's `clickhouse-server`, which
//! the script installs when missing), so that they can stop it. Where it
//! cannot be installed they say so and pass, unless
//! `TICKS_REQUIRE_CLICKHOUSE=1` (`scripts/test.sh` sets it).

use crate::support::{sign, Server};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn script() -> PathBuf {
    [env!("CARGO_MANIFEST_DIR"), "..", "scripts", "clickhouse.sh"]
        .iter()
        .collect()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A ClickHouse server of one test's own.
struct OwnClickHouse {
    dir: PathBuf,
    ports: [u16; 3],
}

impl OwnClickHouse {
    fn start(dir: &Path) -> Option<OwnClickHouse> {
        let have_server = ["/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server"]
            .iter()
            .any(|p| Path::new(p).exists());
        if !have_server && std::env::var("TICKS_REQUIRE_CLICKHOUSE").as_deref() != Ok("1") {
            eprintln!(
                "skipped: clickhouse-server is not installed (scripts/clickhouse.sh installs it)"
            );
            return None;
        }
        let ch = OwnClickHouse {
            dir: dir.join("clickhouse"),
            ports: [free_port(), free_port(), free_port()],
        };
        ch.up();
        Some(ch)
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports[0])
    }

    fn up(&self) {
        let p = self.ports.map(|p| p.to_string());
        let out = Command::new(script())
            .arg("start-one")
            .arg(&self.dir)
            .args(["own", &p[0], &p[1], &p[2]])
            .output()
            .expect("run scripts/clickhouse.sh");
        assert!(
            out.status.success(),
            "starting ClickHouse: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn down(&self) {
        let out = Command::new(script())
            .arg("stop-one")
            .arg(&self.dir)
            .arg("own")
            .output()
            .expect("run scripts/clickhouse.sh");
        assert!(out.status.success());
    }

    fn query(&self, sql: &str) -> String {
        reqwest::blocking::Client::new()
            .post(self.url())
            .body(sql.to_string())
            .send()
            .and_then(|r| r.text())
            .expect("ClickHouse answers")
    }

    /// Every stored webhook body, as text.
    fn stored_bodies(&self) -> Vec<String> {
        self.query("SELECT raw FROM ticks.inputs WHERE source = 'webhook' FORMAT JSONEachRow")
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("a JSON row");
                v["raw"].as_str().unwrap_or_default().to_string()
            })
            .collect()
    }
}

impl Drop for OwnClickHouse {
    fn drop(&mut self) {
        self.down();
    }
}

/// A status webhook that names `n`, so that a test can find it again.
fn status_body(n: usize) -> Vec<u8> {
    serde_json::json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": "111"},
        "statuses": [{"id": format!("wamid.fault{n}"), "status": "delivered", "timestamp": "1760000000", "recipient_id": "5511981390501"}]
    }}]}]})
    .to_string()
    .into_bytes()
}

fn serve_on(dir: &Path, ch: &OwnClickHouse) -> Server {
    Server::start(
        dir,
        &["--backend", "clickhouse", "--clickhouse-url", &ch.url()],
    )
}

#[test]
fn clickhouse_stopped_mid_ingest_gives_503s_loses_nothing_and_ingest_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(ch) = OwnClickHouse::start(tmp.path()) else {
        return;
    };
    let server = serve_on(&tmp.path().join("data"), &ch);
    let mut acknowledged = Vec::new();
    for n in 0..10 {
        let (status, _) = server.post_webhook(&status_body(n));
        assert_eq!(status, 200);
        acknowledged.push(n);
    }
    ch.down();
    let (status, body) = server.post_webhook(&status_body(100));
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "unavailable");
    let ready = server.client.get(server.url("/readyz")).send().unwrap();
    assert_eq!(ready.status().as_u16(), 503);
    let why = ready.text().unwrap();
    assert!(why.contains("ClickHouse is unreachable"), "{why}");
    ch.up();
    // The writer looks once a second whether ClickHouse is back.
    let deadline = Instant::now() + Duration::from_secs(20);
    while server
        .client
        .get(server.url("/readyz"))
        .send()
        .unwrap()
        .status()
        != 200
    {
        assert!(Instant::now() < deadline, "/readyz did not recover");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Meta's retry of the refused one, and new ones, are stored.
    for n in [100, 11, 12] {
        let (status, _) = server.post_webhook(&status_body(n));
        assert_eq!(status, 200);
        acknowledged.push(n);
    }
    let stored = ch.stored_bodies();
    for n in &acknowledged {
        let want = String::from_utf8(status_body(*n)).unwrap();
        assert!(
            stored.contains(&want),
            "acknowledged webhook {n} is missing"
        );
    }
    assert_eq!(
        stored.len(),
        acknowledged.len(),
        "a refused webhook was stored"
    );
}

#[test]
fn ticks_killed_during_ingest_loses_no_acknowledged_webhook() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(ch) = OwnClickHouse::start(tmp.path()) else {
        return;
    };
    let mut server = serve_on(&tmp.path().join("data"), &ch);
    let url = server.url("/webhook");
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let senders: Vec<_> = (0..4)
        .map(|t| {
            let (url, stop, acked) = (url.clone(), stop.clone(), acked.clone());
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(5))
                    .build()
                    .unwrap();
                let mut n = t * 1_000_000;
                while !stop.load(Ordering::SeqCst) {
                    let body = status_body(n);
                    let sent = client
                        .post(&url)
                        .header("X-Hub-Signature-256", sign(&body))
                        .header("content-type", "application/json")
                        .body(body)
                        .send();
                    match sent {
                        Ok(r) if r.status() == 200 => acked.lock().unwrap().push(n),
                        Ok(_) => {}
                        // The server is gone.
                        Err(_) => break,
                    }
                    n += 1;
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    server.kill9();
    stop.store(true, Ordering::SeqCst);
    for s in senders {
        s.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 20,
        "only {} webhooks before the kill",
        acked.len()
    );
    let stored: std::collections::HashSet<String> = ch.stored_bodies().into_iter().collect();
    let lost: Vec<usize> = acked
        .iter()
        .copied()
        .filter(|n| !stored.contains(&String::from_utf8(status_body(*n)).unwrap()))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged webhooks lost: {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
}
