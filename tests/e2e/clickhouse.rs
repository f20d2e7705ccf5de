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
    /// Its name under `dir`, and as a replica, its `{replica}` macro.
    name: String,
    replica: bool,
    database: String,
    ports: [u16; 3],
}

/// Whether Debian's server is here, or its absence is allowed (then the
/// test says so and passes).
fn clickhouse_installed() -> bool {
    let have_server = ["/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server"]
        .iter()
        .any(|p| Path::new(p).exists());
    if !have_server && std::env::var("TICKS_REQUIRE_CLICKHOUSE").as_deref() != Ok("1") {
        eprintln!(
            "skipped: clickhouse-server is not installed (scripts/clickhouse.sh installs it)"
        );
        return false;
    }
    true
}

impl OwnClickHouse {
    fn start(dir: &Path) -> Option<OwnClickHouse> {
        if !clickhouse_installed() {
            return None;
        }
        let ch = OwnClickHouse {
            dir: dir.join("clickhouse"),
            name: "own".into(),
            replica: false,
            database: "ticks".into(),
            ports: [free_port(), free_port(), free_port()],
        };
        ch.up();
        Some(ch)
    }

    /// Three replicas of one shard on the ZooKeeper `scripts/clickhouse.sh`
    /// started (`TICKS_TEST_ZOOKEEPER`), for tables in `database`.
    fn replicas(dir: &Path, database: &str) -> Option<[OwnClickHouse; 3]> {
        if !clickhouse_installed() {
            return None;
        }
        if std::env::var("TICKS_TEST_ZOOKEEPER").is_err() {
            assert!(
                std::env::var("TICKS_REQUIRE_CLICKHOUSE").as_deref() != Ok("1"),
                "TICKS_TEST_ZOOKEEPER is not set: scripts/clickhouse.sh start DIR starts ZooKeeper"
            );
            eprintln!("skipped: TICKS_TEST_ZOOKEEPER is not set");
            return None;
        }
        let replicas = ["r1", "r2", "r3"].map(|name| OwnClickHouse {
            dir: dir.join("clickhouse"),
            name: name.into(),
            replica: true,
            database: database.into(),
            ports: [free_port(), free_port(), free_port()],
        });
        for r in &replicas {
            r.up();
        }
        Some(replicas)
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports[0])
    }

    fn up(&self) {
        let p = self.ports.map(|p| p.to_string());
        let mut args = vec![self.name.as_str(), &p[0], &p[1], &p[2]];
        if self.replica {
            args.push(&self.name);
        }
        let out = Command::new(script())
            .arg("start-one")
            .arg(&self.dir)
            .args(args)
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
            .arg(&self.name)
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
        self.query(&format!(
            "SELECT raw FROM {}.inputs WHERE source = 'webhook' FORMAT JSONEachRow",
            self.database
        ))
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

/// `/readyz` answers 503 and names `why`.
fn not_ready_because(server: &Server, why: &str) {
    let ready = server.client.get(server.url("/readyz")).send().unwrap();
    assert_eq!(ready.status().as_u16(), 503);
    let text = ready.text().unwrap();
    assert!(text.contains(why), "{text}");
}

/// Waits until `/readyz` answers 200 (the writer looks once a second
/// whether ClickHouse is back).
fn wait_ready(server: &Server) {
    let deadline = Instant::now() + Duration::from_secs(60);
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
    // An import is refused the same way, for its sender to retry.
    let import = server
        .client
        .post(server.url("/v1/import"))
        .body(crate::support::generated(2, 5))
        .send()
        .unwrap();
    assert_eq!(import.status().as_u16(), 503, "an import while down");
    not_ready_because(&server, "ClickHouse is unreachable");
    ch.up();
    wait_ready(&server);
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
    // Killed while the senders go on, once enough were acknowledged (a
    // loaded machine takes longer to get there).
    let deadline = Instant::now() + Duration::from_secs(120);
    while acked.lock().unwrap().len() < 40 {
        assert!(
            Instant::now() < deadline,
            "too few webhooks acknowledged in 120 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    server.kill9();
    stop.store(true, Ordering::SeqCst);
    for s in senders {
        s.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 40,
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

/// The embedded store and ClickHouse, both fed the same generated traffic.
#[test]
fn a_purge_on_clickhouse_removes_exactly_what_it_names_and_leaves_nothing_of_it() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(ch) = OwnClickHouse::start(tmp.path()) else {
        return;
    };
    purge_removes_exactly_what_it_names(tmp.path(), &[ch], "");
}

/// On replicated tables a purge is done once every replica erased its
/// copy: nothing of it is left on any of them. ClickHouse before 20.4
/// never mutates a partition's most recent part written with quorum, so
/// there a purge is refused before anything is removed.
#[test]
fn a_purge_on_replicas_leaves_nothing_of_it_on_any_replica() {
    let tmp = tempfile::tempdir().unwrap();
    let database = format!("ticks_purge_{}", unique());
    let Some(replicas) = OwnClickHouse::replicas(tmp.path(), &database) else {
        return;
    };
    let settings = format!("clickhouse_database = \"{database}\"\nclickhouse_replicated = true\n");
    let version = replicas[0].query("SELECT version()");
    let mut numbers = version
        .trim()
        .split('.')
        .map(|n| n.parse::<u32>().unwrap_or(0));
    if (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0)) >= (20, 4) {
        purge_removes_exactly_what_it_names(tmp.path(), &replicas, &settings);
        return;
    }
    let urls: Vec<String> = replicas.iter().map(|s| format!("{:?}", s.url())).collect();
    let config = tmp.path().join("replicas.toml");
    std::fs::write(
        &config,
        format!(
            "backend = \"clickhouse\"\nclickhouse_url = [{}]\n{settings}",
            urls.join(", ")
        ),
    )
    .unwrap();
    let server = Server::start(
        &tmp.path().join("data"),
        &["--config", &config.to_string_lossy()],
    );
    let r = server
        .client
        .post(server.url("/v1/import"))
        .body(crate::support::generated(40, 7))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let total = server.get_json("/v1/logs?limit=0").1["total"].clone();
    let _ = server
        .client
        .get(server.url("/v1/export?format=csv&status=failed"))
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    let (status, refused) = server.post_json(
        "/v1/delete",
        &serde_json::json!({"filter": "status=failed"}),
    );
    assert_eq!(status, 501, "{refused}");
    assert!(
        refused.to_string().contains("20.4"),
        "the refusal says what it needs: {refused}"
    );
    assert_eq!(server.get_json("/v1/logs?limit=0").1["total"], total);
    assert_eq!(
        replicas[0]
            .query(&format!("SELECT count() FROM {database}.purges"))
            .trim(),
        "0",
        "nothing of the refused purge was recorded"
    );
}

/// A number no other run of these tests uses (databases on the shared
/// ZooKeeper are named with it).
fn unique() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

/// Purges every failed message from a store on `servers` (the replicas of
/// one store, or one server) and from an embedded store of the same
/// inputs: the same is left, and nothing of the purged on any server.
fn purge_removes_exactly_what_it_names(tmp: &Path, servers: &[OwnClickHouse], settings: &str) {
    let ch = &servers[0];
    let db = ch.database.as_str();
    let data = crate::support::generated(150, 31);
    let embedded = Server::start(&tmp.join("embedded"), &[]);
    // Entries settled a second after they change, so that the purge finds
    // them settled too.
    let urls: Vec<String> = servers.iter().map(|s| format!("{:?}", s.url())).collect();
    let config = tmp.join("settling.toml");
    std::fs::write(
        &config,
        format!(
            "backend = \"clickhouse\"\nclickhouse_url = [{}]\nclickhouse_settle_lag_seconds = 1\n{settings}",
            urls.join(", ")
        ),
    )
    .unwrap();
    let on_clickhouse = Server::start(&tmp.join("data"), &["--config", &config.to_string_lossy()]);
    for s in [&embedded, &on_clickhouse] {
        let r = s
            .client
            .post(s.url("/v1/import"))
            .body(data.clone())
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while ch
        .query(&format!("SELECT sum(sign) FROM {db}.latest"))
        .trim()
        != ch
            .query(&format!("SELECT uniqExact(key) FROM {db}.entries"))
            .trim()
    {
        assert!(Instant::now() < deadline, "the entries were not settled");
        std::thread::sleep(Duration::from_millis(300));
    }
    // The purged: every failed message. Their wamids must be gone from
    // every table afterwards; the others must all be there.
    let failed = on_clickhouse
        .get_json("/v1/logs?status=failed&limit=1000")
        .1;
    let gone: Vec<String> = failed["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["wamid"].as_str().map(String::from))
        .collect();
    assert!(
        gone.len() > 3,
        "too few failed messages to test: {}",
        gone.len()
    );
    let total_before = on_clickhouse.get_json("/v1/logs?limit=0").1["total"]
        .as_u64()
        .unwrap();
    // Refused without an export, as on the embedded store.
    let (status, refused) = on_clickhouse.post_json(
        "/v1/delete",
        &serde_json::json!({"filter": "status=failed"}),
    );
    assert_eq!(status, 409, "{refused}");
    assert_eq!(
        on_clickhouse.get_json("/v1/logs?limit=0").1["total"]
            .as_u64()
            .unwrap(),
        total_before
    );
    for s in [&embedded, &on_clickhouse] {
        let export = s
            .client
            .get(s.url("/v1/export?format=csv&status=failed"))
            .send()
            .unwrap();
        assert_eq!(export.status(), 200);
        let _ = export.bytes().unwrap();
        let (status, v) = s.post_json(
            "/v1/delete",
            &serde_json::json!({"filter": "status=failed"}),
        );
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["deleted"].as_u64(), Some(gone.len() as u64), "{v}");
        assert!(v["receipt"].is_string());
    }
    assert_eq!(
        on_clickhouse.get_json("/v1/logs?limit=0").1["total"]
            .as_u64()
            .unwrap(),
        total_before - gone.len() as u64
    );
    // Nothing of a purged message is left in any table, and, once the
    // purge says its erasure finished, in no part on disk.
    let deadline = Instant::now() + Duration::from_secs(300);
    while ch
        .query(&format!("SELECT count() FROM {db}.purges_erased"))
        .trim()
        != "1"
    {
        assert!(
            Instant::now() < deadline,
            "the erasure did not finish: {} {}",
            ch.query(&format!("SELECT table, name, modification_time FROM system.parts WHERE database = '{db}' AND active = 0")),
            ch.query(&format!("SELECT table, mutation_id, is_done FROM system.mutations WHERE database = '{db}'"))
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    for (i, ch) in servers.iter().enumerate() {
        let parts = ch.query(&format!("SELECT count() FROM system.parts WHERE database = '{db}' AND active = 0 AND table IN ('inputs', 'input_index', 'entries', 'latest', 'entry_changes', 'entry_lookup', 'entry_ids', 'redactions')"));
        assert_eq!(
            parts.trim(),
            "0",
            "replaced parts still on disk of server {i}"
        );
        for wamid in &gone {
            for (table, columns) in [
                (
                    "inputs",
                    "raw, arrayStringConcat(keys, ' '), arrayStringConcat(links, ' '), events",
                ),
                ("input_index", "ident"),
                ("entries", "key, entry"),
                (
                    "latest",
                    "key, ifNull(wamid, ''), words, arrayStringConcat(exact, ' ')",
                ),
                ("entry_changes", "key"),
                ("entry_lookup", "key"),
                ("entry_ids", "key"),
                ("redactions", "raw, events"),
            ] {
                let n = ch.query(&format!(
                    "SELECT count() FROM {db}.{table} WHERE position(concat({columns}, ''), '{wamid}') > 0"
                ));
                assert_eq!(n.trim(), "0", "{wamid} is still in {table} of server {i}");
            }
        }
    }
    // What survives is what the embedded store keeps, raw inputs included
    // (shared inputs redacted the same way).
    for q in ["limit=1000", "direction=inbound&limit=1000"] {
        let strip = |v: serde_json::Value| -> Vec<serde_json::Value> {
            let mut es = v["entries"].as_array().cloned().unwrap_or_default();
            for e in &mut es {
                e["id"] = serde_json::Value::Null;
                e["in_reply_to"] = serde_json::Value::Null;
            }
            es
        };
        assert_eq!(
            strip(embedded.get_json(&format!("/v1/logs?{q}")).1),
            strip(on_clickhouse.get_json(&format!("/v1/logs?{q}")).1),
            "{q}"
        );
    }
    let ndjson = |s: &Server| -> Vec<serde_json::Value> {
        let body = s
            .client
            .get(s.url("/v1/export?format=ndjson"))
            .send()
            .unwrap()
            .bytes()
            .unwrap();
        body.split(|&c| c == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_slice(l).unwrap();
                v["received_ms"] = serde_json::Value::Null;
                v
            })
            .collect()
    };
    assert_eq!(ndjson(&embedded), ndjson(&on_clickhouse));
    // A redelivered status of a purged message does not bring it back.
    let again = serde_json::json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": "111"},
        "statuses": [{"id": gone[0], "status": "failed", "timestamp": "1760000000", "recipient_id": "5511981390501"}]
    }}]}]});
    let (status, _) = on_clickhouse.post_webhook(again.to_string().as_bytes());
    assert_eq!(status, 200);
    let (_, found) = on_clickhouse.get_json(&format!("/v1/logs?wamid={}", gone[0]));
    assert_eq!(found["total"], 0, "a purged message came back");
}

/// Replicated tables with a quorum of two on three replicas: one replica
/// stopped mid-ingest leaves the writes to the other two (no single point
/// of failure for ingest); with two stopped no quorum can confirm, so
/// Meta gets 503s and `/readyz` says why; once a replica is back ingest
/// resumes, and the replica stopped first catches up with every
/// acknowledged webhook.
#[test]
fn a_replica_stopped_mid_ingest_leaves_ingest_to_the_quorum_and_catches_up_once_back() {
    let tmp = tempfile::tempdir().unwrap();
    // ZooKeeper is shared with other tests: a database (and so a path in
    // ZooKeeper) of this run's own.
    let database = format!("ticks_quorum_{}", unique());
    let Some(replicas) = OwnClickHouse::replicas(tmp.path(), &database) else {
        return;
    };
    let urls: Vec<String> = replicas.iter().map(|r| format!("{:?}", r.url())).collect();
    let config = tmp.path().join("ticks.toml");
    std::fs::write(
        &config,
        format!(
            "backend = \"clickhouse\"\nclickhouse_url = [{}]\nclickhouse_database = \"{database}\"\n\
clickhouse_replicated = true\nclickhouse_insert_quorum = 2\n",
            urls.join(", ")
        ),
    )
    .unwrap();
    let server = Server::start(
        &tmp.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let mut acknowledged = Vec::new();
    let mut post = |n: usize, want: u16| {
        let (status, body) = server.post_webhook(&status_body(n));
        assert_eq!(status, want, "webhook {n}: {body}");
        if status == 200 {
            acknowledged.push(n);
        }
        body
    };
    for n in 0..10 {
        post(n, 200);
    }
    replicas[0].down();
    for n in 10..20 {
        post(n, 200);
    }
    replicas[1].down();
    let refused = post(100, 503);
    assert_eq!(refused["error"]["code"], "unavailable");
    not_ready_because(&server, "quorum");
    replicas[1].up();
    wait_ready(&server);
    // Meta's retry of the refused one, and new ones.
    for n in [100, 20, 21] {
        post(n, 200);
    }
    replicas[0].up();
    let mut want: Vec<String> = acknowledged
        .iter()
        .map(|n| String::from_utf8(status_body(*n)).unwrap())
        .collect();
    want.sort();
    // The refused webhook's insert may be stored as well as its retry:
    // refused with two replicas down, it was written to the one left and
    // waited for a quorum that ClickHouse 18.16 reports as unknown when it
    // times out (the part is kept; current releases remove it). Meta's
    // retry is its redelivery, which derives no second entry.
    let refused_body = String::from_utf8(status_body(100)).unwrap();
    for (i, replica) in replicas.iter().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut copies = std::collections::BTreeMap::new();
            for body in replica.stored_bodies() {
                *copies.entry(body).or_insert(0) += 1;
            }
            let once = copies
                .iter()
                .all(|(body, n)| *n == 1 || (*body == refused_body && *n == 2));
            if once && copies.keys().eq(want.iter()) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "replica {i} holds {} distinct webhooks ({} rows) of the {} acknowledged",
                copies.len(),
                copies.values().sum::<usize>(),
                want.len()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    // The log answers the same through each replica: the entry of every
    // acknowledged status, once.
    let page: serde_json::Value = server
        .client
        .get(server.url("/v1/logs?limit=0"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(page["total"], acknowledged.len(), "{page}");
}
