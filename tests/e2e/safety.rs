//! Ticks tried as an attacker and as a bad day in production would: who
//! may call what, deletions that would reach further than they say, a full
//! disk, a connection storm, a flood of unsigned bodies, loose input. In
//! every test, nothing acknowledged is lost (checked entry by entry).

use crate::support::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const INGEST: &str = "ingest-token-0123456789";
const SEND: &str = "send-token-0123456789ab";
const READ: &str = "read-token-0123456789ab";
const ADMIN: &str = "admin-token-0123456789a";
const GRAPH_TOKEN: &str = "EAAG-upstream-graph-token";

fn token_flags() -> Vec<String> {
    vec![
        "--token".into(),
        format!("crm:ingest:{INGEST}"),
        "--token".into(),
        format!("bot:send:{SEND}"),
        "--token".into(),
        format!("ui:read:{READ}"),
        "--token".into(),
        format!("ops:admin:{ADMIN}"),
    ]
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// The wamids of every live entry, by paging through `/v1/logs`.
fn stored_wamids(s: &Server, token: Option<&str>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = s.url("/v1/logs?limit=1000");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let mut r = s.client.get(url);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let v: Value = r.send().expect("get").json().expect("json");
        for e in v["entries"].as_array().expect("entries") {
            if let Some(w) = e["wamid"].as_str() {
                out.insert(w.to_string());
            }
        }
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
}

/// Posts one send result; its wamid when Ticks acknowledged it.
fn post_send(s: &Server, wamid: &str, token: Option<&str>) -> (u16, Value) {
    let mut r = s
        .client
        .post(s.url("/v1/sends"))
        .json(&send_result(wamid, "Safety"));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    match r.send() {
        Ok(r) => {
            let status = r.status().as_u16();
            (status, r.json().unwrap_or(Value::Null))
        }
        Err(_) => (0, Value::Null),
    }
}

/// One cell of the README's route x scope table.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Allowed,
    Status(u16),
}

/// The route x scope table of the README: (method, path, cells for no
/// token, ingest, send, read, admin).
fn readme_scope_table() -> Vec<(String, String, Vec<Cell>)> {
    let readme: PathBuf = [env!("CARGO_MANIFEST_DIR"), "..", "README.md"]
        .iter()
        .collect();
    let text = std::fs::read_to_string(&readme).expect("README.md");
    let mut rows = Vec::new();
    let mut in_table = false;
    for line in text.lines() {
        if line.starts_with("| route | no token | ingest | send | read | admin |") {
            in_table = true;
            continue;
        }
        if !in_table || line.starts_with("| ---") {
            continue;
        }
        if !line.starts_with('|') {
            break;
        }
        let cols: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        assert_eq!(cols.len(), 6, "a row of the scope table: {line}");
        let cells: Vec<Cell> = cols[1..]
            .iter()
            .map(|c| match *c {
                "✓" => Cell::Allowed,
                n => Cell::Status(n.parse().unwrap_or_else(|_| panic!("cell {n:?} in {line}"))),
            })
            .collect();
        // The route cell: `METHOD /path` (maybe more paths, `/a`, `/b`).
        for (i, part) in cols[0].split("`, `").enumerate() {
            let part = part.trim_matches(|c| c == '`' || c == ' ');
            let part = part.split('`').next().unwrap_or(part);
            let (method, path) = match part.split_once(' ') {
                Some((m, p)) => (m.to_string(), p.to_string()),
                None if i > 0 => (
                    rows.last()
                        .map_or("GET".into(), |r: &(String, String, Vec<Cell>)| r.0.clone()),
                    part.to_string(),
                ),
                None => panic!("no method in {line}"),
            };
            rows.push((method, path, cells.clone()));
        }
    }
    assert!(
        rows.len() >= 20,
        "the README's scope table has {} routes",
        rows.len()
    );
    rows
}

#[test]
fn every_cell_of_the_readme_scope_table_holds() {
    let graph = FakePeer::start(
        200,
        r#"{"messaging_product":"whatsapp","contacts":[{"input":"1","wa_id":"1"}],"messages":[{"id":"wamid.SCOPE"}]}"#,
        Duration::ZERO,
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let mut flags = token_flags();
    flags.extend(["--graph-base-url".into(), graph.base.clone()]);
    flags.extend(["--graph-token".into(), GRAPH_TOKEN.into()]);
    let s = Server::start(dir.path(), &args(&flags));
    assert_eq!(post_send(&s, "wamid.SCOPE0", Some(INGEST)).0, 200);
    let tokens = [None, Some(INGEST), Some(SEND), Some(READ), Some(ADMIN)];
    let mut checked = 0;
    for (method, path, cells) in readme_scope_table() {
        // Entry 0 is read; a deletion names one that does not exist (the
        // read token's export made receipts that would let it run).
        let id = if method == "DELETE" { "999999" } else { "0" };
        let concrete = path
            .replace("{id}", id)
            .replace("{wamid}", "wamid.SCOPE0")
            .replace("{name}", "nightly")
            .replace("{language}", "pt_BR")
            .replace("{path}", "v21.0/106540352242922/messages");
        let concrete = match concrete.as_str() {
            "/v1/stats" => "/v1/stats?group_by=status".to_string(),
            "/v1/export" => "/v1/export?format=ndjson".to_string(),
            "/webhook" if method == "GET" => format!(
                "/webhook?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=7"
            ),
            _ => concrete,
        };
        for (token, expected) in tokens.iter().zip(&cells) {
            let mut r = match method.as_str() {
                "GET" => s.client.get(s.url(&concrete)),
                "POST" => s.client.post(s.url(&concrete)),
                "DELETE" => s.client.delete(s.url(&concrete)),
                m => panic!("method {m}"),
            };
            r = match (method.as_str(), path.as_str()) {
                ("POST", "/v1/sends") => r.json(&send_result("wamid.SCOPE1", "Scope")),
                ("POST", "/v1/import") => r.body(
                    serde_json::to_vec(&send_result("wamid.SCOPE2", "Scope")).expect("json"),
                ),
                ("POST", "/v1/templates") => r.json(&json!({"name": "scope", "language": "en",
                    "components": [{"type": "BODY", "text": "Hi {{1}}"}]})),
                ("POST", "/v1/searches") => r.json(&json!({"name": "nightly", "query": "status=failed"})),
                ("POST", "/v1/delete") => r.json(&json!({"ids": [999_999], "force": true})),
                ("POST", "/graph/{path}") => r.body(r#"{"messaging_product":"whatsapp","to":"1","type":"text","text":{"body":"x"}}"#),
                ("POST", "/webhook") => {
                    let body = fixture("webhook_status_read.json");
                    r.header("X-Hub-Signature-256", sign(&body)).body(body)
                }
                _ => r,
            };
            if let Some(t) = token {
                r = r.bearer_auth(t);
            }
            let status = r.send().expect("request").status().as_u16();
            let ok = match expected {
                Cell::Allowed => status != 401 && status != 403 && status < 500,
                Cell::Status(n) => status == *n,
            };
            assert!(
                ok,
                "{method} {path} with {token:?}: expected {expected:?}, got {status}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 100, "{checked} cells checked");
    // The upstream saw only Ticks' own Graph token, never a caller's.
    for got in graph.received.lock().expect("lock").iter() {
        assert_eq!(
            got.header("authorization"),
            Some(format!("Bearer {GRAPH_TOKEN}").as_str())
        );
    }
    // And the sends acknowledged along the way are all there.
    let stored = stored_wamids(&s, Some(READ));
    for w in ["wamid.SCOPE0", "wamid.SCOPE1", "wamid.SCOPE2"] {
        assert!(stored.contains(w), "{w} was acknowledged and is missing");
    }
}

#[test]
fn the_proxy_forwards_nothing_without_the_send_scope() {
    let graph = FakePeer::start(
        200,
        r#"{"messaging_product":"whatsapp","contacts":[{"input":"1","wa_id":"1"}],"messages":[{"id":"wamid.PX"}]}"#,
        Duration::ZERO,
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let mut flags = token_flags();
    flags.extend(["--graph-base-url".into(), graph.base.clone()]);
    flags.extend(["--graph-token".into(), GRAPH_TOKEN.into()]);
    let s = Server::start(dir.path(), &args(&flags));
    let send = |auth: Option<&str>, method: &str| {
        let url = s.url("/graph/v21.0/106540352242922/messages");
        let mut r = if method == "GET" {
            s.client.get(url)
        } else {
            s.client.post(url).body(
                r#"{"messaging_product":"whatsapp","to":"1","type":"text","text":{"body":"x"}}"#,
            )
        };
        if let Some(a) = auth {
            r = r.header("Authorization", a);
        }
        r.send().expect("proxy").status().as_u16()
    };
    for method in ["POST", "GET"] {
        assert_eq!(send(None, method), 401, "{method} with no token");
        assert_eq!(send(Some("Bearer wrong-token-000000000"), method), 401);
        assert_eq!(send(Some(&format!("Bearer {READ}")), method), 403);
        assert_eq!(send(Some(&format!("Bearer {INGEST}")), method), 403);
    }
    assert_eq!(
        graph.received.lock().expect("lock").len(),
        0,
        "nothing was relayed"
    );
    assert_eq!(
        s.client
            .get(s.url("/v1/logs"))
            .bearer_auth(READ)
            .send()
            .expect("get")
            .json::<Value>()
            .expect("json")["total"],
        0,
        "and nothing was logged"
    );
    // The scheme is case-insensitive (RFC 7235).
    assert_eq!(send(Some(&format!("bearer {SEND}")), "POST"), 200);
    assert_eq!(send(Some(&format!("BEARER {SEND}")), "POST"), 200);
    let got = graph.received.lock().expect("lock").clone();
    assert_eq!(got.len(), 2);
    for g in &got {
        assert_eq!(
            g.header("authorization"),
            Some(format!("Bearer {GRAPH_TOKEN}").as_str()),
            "Meta gets the configured token, not the caller's"
        );
    }
}

#[test]
fn the_proxy_forwards_a_senders_meta_token_only_when_trusted() {
    let graph = FakePeer::start(
        200,
        r#"{"messaging_product":"whatsapp","contacts":[{"input":"1","wa_id":"1"}],"messages":[{"id":"wamid.TRUST"}]}"#,
        Duration::ZERO,
    );
    let body = r#"{"messaging_product":"whatsapp","to":"1","type":"text","text":{"body":"x"}}"#;
    // Tokens but no Graph credential: refused, nothing sent.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut flags = token_flags();
    flags.extend(["--graph-base-url".into(), graph.base.clone()]);
    let s = Server::start(dir.path(), &args(&flags));
    let r = s
        .client
        .post(s.url("/graph/v21.0/1/messages"))
        .bearer_auth(SEND)
        .body(body)
        .send()
        .expect("post");
    assert_eq!(r.status(), 503);
    assert!(r.text().expect("text").contains("graph_token"));
    assert_eq!(graph.received.lock().expect("lock").len(), 0);
    drop(s);
    // Trusted: the sender's Authorization goes to Meta, Ticks' token in X-Ticks-Token.
    let dir = tempfile::tempdir().expect("tempdir");
    flags.push("--proxy-trust-client-token".into());
    let s = Server::start(dir.path(), &args(&flags));
    let post = |ticks_token: Option<&str>| {
        let mut r = s
            .client
            .post(s.url("/graph/v21.0/1/messages"))
            .header("Authorization", "Bearer META-SENDER-TOKEN")
            .body(body);
        if let Some(t) = ticks_token {
            r = r.header("X-Ticks-Token", t);
        }
        r.send().expect("post").status().as_u16()
    };
    assert_eq!(post(None), 401, "the Meta token is not a Ticks token");
    assert_eq!(post(Some(READ)), 403);
    assert_eq!(post(Some(SEND)), 200);
    let got = graph.received.lock().expect("lock").clone();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].header("authorization"),
        Some("Bearer META-SENDER-TOKEN")
    );
    assert!(
        got[0].header("x-ticks-token").is_none(),
        "Ticks' token stays here"
    );
}

#[test]
fn a_deletion_never_reaches_further_than_its_filter_says() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    let wamids: Vec<String> = (0..7).map(|i| format!("wamid.DEL{i}")).collect();
    for w in &wamids {
        assert_eq!(post_send(&s, w, None).0, 200);
    }
    let all: BTreeSet<String> = wamids.iter().cloned().collect();
    let refused = |body: Value, field: &str| {
        let (status, v) = s.post_json("/v1/delete", &body);
        assert_eq!(status, 400, "{body}: {v}");
        assert_eq!(v["error"]["field"], field, "{body}: {v}");
        assert_eq!(stored_wamids(&s, None), all, "{body} deleted something");
    };
    for (filter, field) in [
        ("limit=1", "limit"),
        ("status=accepted&offset=3", "offset"),
        ("cursor=abc", "cursor"),
        ("sort=-recorded_at", "sort"),
        ("name=Safety&limit=1", "limit"),
        ("", "filter"),
        ("tz=America/Sao_Paulo", "filter"),
        ("status=", "filter"),
        ("colour=red", "colour"),
    ] {
        refused(json!({"filter": filter, "force": true}), field);
    }
    refused(
        json!({"filter": "limit=1", "force": true, "all": true}),
        "limit",
    );
    refused(json!({"filter": 5, "force": true}), "filter");
    refused(json!({"all": "yes", "force": true}), "all");
    refused(json!({"filter": "name=Safety", "forse": true}), "forse");
    let (status, _) = s.post_json("/v1/delete", &json!({"force": true}));
    assert_eq!(status, 400, "neither ids nor filter");
    assert_eq!(stored_wamids(&s, None), all);
    // A filter that narrows deletes only what it names.
    let (status, v) = s.post_json(
        "/v1/delete",
        &json!({"filter": "wamid=wamid.DEL0", "force": true}),
    );
    assert_eq!((status, v["deleted"].as_u64()), (200, Some(1)), "{v}");
    let mut left = all.clone();
    left.remove("wamid.DEL0");
    assert_eq!(stored_wamids(&s, None), left);
    // Everything, when said explicitly.
    let (status, v) = s.post_json("/v1/delete", &json!({"all": true, "force": true}));
    assert_eq!((status, v["deleted"].as_u64()), (200, Some(6)), "{v}");
    assert!(stored_wamids(&s, None).is_empty());
}

#[test]
fn the_cli_purge_refuses_paging_and_needs_all_for_everything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    let data = generated(300, 19);
    import(&store, &data);
    let count = || {
        let out = ticks(&store, &["query", "limit=1", "--format", "json"]);
        let v: Value = serde_json::from_slice(&out.stdout).expect("json");
        v["total"].as_u64().expect("total")
    };
    let before = count();
    assert!(before > 300);
    for (args, says) in [
        (&["purge", "limit=1", "--force"][..], "limit"),
        (&["purge", "offset=2", "--force"], "offset"),
        (&["purge", "--force"], "--all"),
        (&["purge", "tz=UTC", "--force"], "--all"),
        (&["purge", "sort=id", "--all", "--force"], "sort"),
    ] {
        let out = ticks(&store, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} ran");
        assert!(err.contains(says), "{args:?}: {err}");
        assert_eq!(count(), before, "{args:?} deleted something");
    }
    let out = ticks(&store, &["purge", "--all", "--force"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(count(), 0);
}

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `mib` MiB; `None` where this user may not mount.
    fn mount(mib: u64) -> Option<Tmpfs> {
        let path = std::env::temp_dir().join(format!(
            "ticks-tmpfs-{}-{}",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::create_dir_all(&path).ok()?;
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(&path)
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Tmpfs { path })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .status();
        let _ = std::fs::remove_dir(&self.path);
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Fills the file system of `dir` with one file until a write fails.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).expect("filler");
    let chunk = vec![0x5au8; 64 * 1024];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.sync_all();
    path
}

fn readyz(s: &Server) -> (u16, String) {
    let r = s.client.get(s.url("/readyz")).send().expect("readyz");
    (r.status().as_u16(), r.text().unwrap_or_default())
}

fn metric(s: &Server, name: &str) -> Option<f64> {
    s.get_text("/metrics")
        .lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[test]
fn a_full_disk_fails_only_its_writes_and_the_store_recovers_without_a_restart() {
    let Some(disk) = Tmpfs::mount(48) else {
        eprintln!("SKIPPED: mounting a tmpfs needs root (CI runs as root)");
        return;
    };
    let data = disk.path.join("data");
    let mut s = Server::start(&data, &[]);
    let mut acknowledged = Vec::new();
    for i in 0..50 {
        let w = format!("wamid.DISK.before.{i}");
        assert_eq!(post_send(&s, &w, None).0, 200);
        acknowledged.push(w);
    }
    let filler = fill(&disk.path);
    // Writes fail once the disk is full: each is refused, none acknowledged.
    let mut refused = 0;
    let mut i = 0;
    while refused < 5 && i < 5000 {
        let w = format!("wamid.DISK.full.{i}");
        match post_send(&s, &w, None) {
            (200, _) => acknowledged.push(w),
            (503, v) => {
                assert!(v["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty()));
                refused += 1;
            }
            (status, v) => panic!("a write on a full disk answered {status}: {v}"),
        }
        i += 1;
    }
    assert!(
        refused >= 5,
        "the full disk never refused a write ({i} posts)"
    );
    let (status, why) = readyz(&s);
    assert_eq!(status, 503, "{why}");
    assert!(why.contains("writes are failing"), "{why}");
    assert!(metric(&s, "ticks_store_write_failures_total").is_some_and(|n| n >= 1.0));
    assert_eq!(metric(&s, "ticks_store_writable"), Some(0.0));
    // Reads go on meanwhile.
    assert_eq!(s.get_json("/v1/logs?limit=1").0, 200);
    // The space comes back: writes resume without a restart.
    std::fs::remove_file(&filler).expect("free the disk");
    let deadline = Instant::now() + Duration::from_secs(30);
    while readyz(&s).0 != 200 {
        assert!(
            Instant::now() < deadline,
            "not ready again: {:?}",
            readyz(&s)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(metric(&s, "ticks_store_writable"), Some(1.0));
    for i in 0..50 {
        let w = format!("wamid.DISK.after.{i}");
        assert_eq!(post_send(&s, &w, None).0, 200, "after recovery");
        acknowledged.push(w);
    }
    let check = |s: &Server| {
        let stored = stored_wamids(s, None);
        for w in &acknowledged {
            assert!(stored.contains(w), "{w} was acknowledged and is missing");
        }
    };
    check(&s);
    // Free text finds what was written after the recovery.
    s.settle_text();
    let (_, v) = s.get_json("/v1/logs?text=wamid.DISK.after.7");
    assert_eq!(v["total"], 1, "{v}");
    // And it all survives a kill -9.
    s.kill9();
    let s = Server::start(&data, &[]);
    check(&s);
}

/// Up to 1,000 idle connections to the server, opened until 20 attempts
/// time out (past its limit, the kernel's backlog takes some and drops the
/// rest).
fn connection_storm(s: &Server) -> Vec<TcpStream> {
    let addr: std::net::SocketAddr = s.base.trim_start_matches("http://").parse().expect("addr");
    let mut idle = Vec::new();
    let mut misses = 0;
    while idle.len() < 1000 && misses <= 20 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(50)) {
            Ok(c) => idle.push(c),
            Err(_) => misses += 1,
        }
    }
    idle
}

/// Waits until a new connection is served and `/readyz` answers 200.
fn wait_until_served_and_ready(s: &Server, within: Duration) {
    let fresh = reqwest::blocking::Client::new();
    let deadline = Instant::now() + within;
    loop {
        match fresh
            .get(s.url("/readyz"))
            .timeout(Duration::from_secs(2))
            .send()
        {
            Ok(r) if r.status() == 200 => return,
            other => assert!(Instant::now() < deadline, "not served and ready: {other:?}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_connection_storm_cannot_take_the_stores_descriptors() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 256 descriptors: Ticks serves at most 64 connections at once.
    let s = Server::start_limited(dir.path(), &[], Some(256));
    let mut acknowledged = Vec::new();
    // A keep-alive connection opened before the storm goes on working.
    assert_eq!(post_send(&s, "wamid.STORM.0", None).0, 200);
    acknowledged.push("wamid.STORM.0".to_string());
    // Ticks serves 64; the kernel queues what its backlog holds.
    let idle = connection_storm(&s);
    assert!(idle.len() > 100, "{} connections opened", idle.len());
    for i in 1..=30 {
        let w = format!("wamid.STORM.{i}");
        assert_eq!(post_send(&s, &w, None).0, 200, "during the storm");
        acknowledged.push(w);
    }
    let body = fixture("webhook_status_delivered.json");
    assert_eq!(s.post_webhook(&body).0, 200, "webhooks during the storm");
    // The full-text index committed what came during the storm: it had
    // the descriptors it needed (with no limit its writer dies here, and
    // /readyz says so until it is made again).
    s.settle_text();
    let (status, why) = readyz(&s);
    assert_eq!(status, 200, "during the storm: {why}");
    drop(idle);
    // After it, new connections are served again.
    wait_until_served_and_ready(&s, Duration::from_secs(30));
    let stored = stored_wamids(&s, None);
    for w in &acknowledged {
        assert!(stored.contains(w), "{w} was acknowledged and is missing");
    }
    assert_eq!(metric(&s, "ticks_store_write_failures_total"), Some(0.0));
    // The full-text index kept its descriptors too: what came during the
    // storm is searchable.
    s.settle_text();
    for w in ["wamid.STORM.15", "wamid.STORM.30"] {
        let (_, v) = s.get_json(&format!("/v1/logs?text={w}"));
        assert_eq!(v["total"], 1, "{w}: {v}");
    }
}

#[test]
fn the_full_text_index_recovers_once_descriptors_come_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    // No connection limit to speak of: the storm takes every descriptor,
    // and the index writer's next segment file fails.
    let s = Server::start_limited(dir.path(), &["--max-connections", "100000"], Some(128));
    assert_eq!(post_send(&s, "wamid.FD.0", None).0, 200);
    let idle = connection_storm(&s);
    let mut acknowledged = vec!["wamid.FD.0".to_string()];
    for i in 1..=20 {
        let w = format!("wamid.FD.{i}");
        if post_send(&s, &w, None).0 == 200 {
            acknowledged.push(w);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(idle);
    wait_until_served_and_ready(&s, Duration::from_secs(60));
    assert!(acknowledged.len() > 5, "{acknowledged:?}");
    let w = "wamid.FD.after";
    assert_eq!(post_send(&s, w, None).0, 200);
    acknowledged.push(w.to_string());
    let stored = stored_wamids(&s, None);
    let deadline = Instant::now() + Duration::from_secs(30);
    for w in &acknowledged {
        assert!(stored.contains(w), "{w} was acknowledged and is missing");
        // Searchable by text again, including what came while it was down.
        loop {
            let (_, v) = s.get_json(&format!("/v1/logs?text={w}"));
            if v["total"] == 1 {
                break;
            }
            assert!(Instant::now() < deadline, "{w} is not searchable: {v}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// The most resident memory the process has had, in bytes.
fn peak_resident(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .expect("VmHWM")
        * 1024
}

#[test]
fn unsigned_bodies_cannot_grow_the_process() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    assert_eq!(post_send(&s, "wamid.MEM.0", None).0, 200);
    let before = peak_resident(s.pid());
    let addr: std::net::SocketAddr = s.base.trim_start_matches("http://").parse().expect("addr");
    let body_len = 8 * 1024 * 1024;
    let threads: Vec<_> = (0..100)
        .map(|_| {
            std::thread::spawn(move || -> u16 {
                let Ok(mut c) = TcpStream::connect(addr) else { return 0 };
                let _ = c.set_write_timeout(Some(Duration::from_secs(60)));
                let _ = c.set_read_timeout(Some(Duration::from_secs(60)));
                let head = format!(
                    "POST /webhook HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nx-hub-signature-256: sha256=00\r\ncontent-length: {body_len}\r\n\r\n"
                );
                if c.write_all(head.as_bytes()).is_err() {
                    return 0;
                }
                let status = |c: &mut TcpStream| -> u16 {
                    let mut answer = [0u8; 64];
                    let n = c.read(&mut answer).unwrap_or(0);
                    String::from_utf8_lossy(&answer[..n])
                        .split(' ')
                        .nth(1)
                        .and_then(|c| c.parse().ok())
                        .unwrap_or(0)
                };
                // A body that does not fit the budget is refused on its
                // headers, before a byte of it is read.
                let _ = c.set_read_timeout(Some(Duration::from_millis(300)));
                let early = status(&mut c);
                if early != 0 {
                    return early;
                }
                let _ = c.set_read_timeout(Some(Duration::from_secs(60)));
                let chunk = vec![b' '; 256 * 1024];
                for _ in 0..body_len / chunk.len() {
                    if c.write_all(&chunk).is_err() {
                        break;
                    }
                }
                status(&mut c)
            })
        })
        .collect();
    let statuses: Vec<u16> = threads.into_iter().map(|t| t.join().unwrap_or(0)).collect();
    assert!(
        statuses.iter().all(|s| matches!(s, 0 | 401 | 503)),
        "unsigned bodies are refused: {statuses:?}"
    );
    assert!(
        statuses.contains(&503),
        "some were refused for want of memory: {statuses:?}"
    );
    let peak = peak_resident(s.pid());
    eprintln!(
        "100 unsigned 8 MiB bodies: peak resident {} MiB (before them {} MiB); answers {:?}",
        peak >> 20,
        before >> 20,
        statuses
            .iter()
            .fold(std::collections::BTreeMap::new(), |mut m, s| {
                *m.entry(*s).or_insert(0) += 1;
                m
            })
    );
    // 100 x 8 MiB is 800 MiB; the budget for unsigned bodies is 64 MiB.
    assert!(
        peak < before + 200 * 1024 * 1024,
        "peak resident {} MiB (before {} MiB)",
        peak >> 20,
        before >> 20
    );
    // A signed webhook is served as ever, and nothing acknowledged is lost.
    assert_eq!(s.post_webhook(&fixture("webhook_status_read.json")).0, 200);
    assert!(stored_wamids(&s, None).contains("wamid.MEM.0"));
}

#[test]
fn a_wrong_signature_is_named_as_such() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    let r = s
        .client
        .post(s.url("/webhook"))
        .header("X-Hub-Signature-256", "sha256=00ff")
        .body(fixture("webhook_status_read.json"))
        .send()
        .expect("post");
    assert_eq!(r.status(), 401);
    let v: Value = r.json().expect("json");
    assert_eq!(v["error"]["code"], "invalid_signature");
    assert!(v["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("X-Hub-Signature-256") && !m.contains("bearer")));
}

#[test]
fn ticks_refuses_to_start_exposed_without_tokens_or_an_app_secret() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_ticks"))
            .arg("serve")
            .arg("--data")
            .arg(dir.path())
            .args(extra)
            .env("TICKS_LOG", "warn")
            .output()
            .expect("run")
    };
    let out = run(&["--listen", "0.0.0.0:0"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no API token"));
    let token = format!("crm:ingest:{INGEST}");
    let out = run(&["--listen", "0.0.0.0:0", "--token", &token]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("app_secret"), "{err}");
}

#[test]
fn a_send_result_with_a_field_of_the_wrong_type_is_refused_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    let cases = [
        ("/request/to", json!({}), "request.to"),
        ("/request/type", json!(5), "request.type"),
        ("/recorded_at", json!(12345), "recorded_at"),
        ("/name", json!(5), "name"),
    ];
    for (i, (pointer, value, field)) in cases.iter().enumerate() {
        let mut body = send_result(&format!("wamid.LOOSE{i}"), "Loose");
        *body.pointer_mut(pointer).expect("pointer") = value.clone();
        let (status, v) = s.post_json("/v1/sends", &body);
        assert_eq!(status, 400, "{pointer}={value}: {v}");
        assert_eq!(v["items"][0]["field"], *field, "{v}");
    }
    let mut template = send_result("wamid.LOOSE9", "Loose");
    template["request"] = json!({"to": "5511987654321", "type": "template", "template": {"name": 5, "language": {"code": "pt_BR"}}});
    let (status, v) = s.post_json("/v1/sends", &template);
    assert_eq!(
        (status, v["items"][0]["field"].as_str()),
        (400, Some("request.template.name")),
        "{v}"
    );
    assert_eq!(
        s.get_json("/v1/logs").1["total"],
        0,
        "nothing loose was stored"
    );
}
