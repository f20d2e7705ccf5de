//! Alerts: rules over what arrives, fired once, kept firing while the
//! condition holds or flaps, resolved, notified to URLs (signed, retried
//! across restarts), kept in a history that a purge of the entries behind
//! it leaves without their content.

use crate::support::*;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::time::{Duration, Instant};

const ALERT_SECRET: &str = "alert-secret";

fn now_rfc3339() -> String {
    jiff::Timestamp::now().to_string()
}

/// A send answered with `code` now (429: Meta's rate limit, no wamid).
fn send(n: usize, code: u16, to: &str) -> Value {
    let response = if code == 200 {
        json!({"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}],
               "messages": [{"id": format!("wamid.AL{n}")}]})
    } else {
        json!({"error": {"message": "(#130429) Rate limit hit", "type": "OAuthException", "code": 130429}})
    };
    json!({
        "recorded_at": now_rfc3339(), "category": "marketing_campaign", "name": "Flash sale",
        "request": {"messaging_product": "whatsapp", "to": to, "type": "text",
                    "text": {"body": format!("Segredo da oferta {n}")}},
        "response_code": code, "response": response
    })
}

fn failed(n: usize, to: &str) -> Vec<u8> {
    let ts = jiff::Timestamp::now().as_second();
    serde_json::to_vec(&json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{
        "field": "messages",
        "value": {"messaging_product": "whatsapp",
                  "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
                  "statuses": [{"id": format!("wamid.AL{n}"), "status": "failed", "timestamp": ts.to_string(),
                                "recipient_id": to,
                                "errors": [{"code": 131049, "title": "Not delivered to maintain healthy ecosystem engagement."}]}]}}]}]}))
    .expect("json")
}

fn config(dir: &std::path::Path) -> String {
    let path = dir.join("ticks.toml");
    std::fs::write(&path, format!("alert_secret = {ALERT_SECRET:?}\n")).expect("config");
    path.to_str().expect("path").to_string()
}

fn start(dir: &std::path::Path) -> Server {
    let config = config(dir);
    Server::start(dir, &["--config", &config])
}

fn post_rule(s: &Server, rule: Value) {
    let (code, v) = s.post_json("/v1/alerts", &rule);
    assert_eq!(code, 200, "{v}");
}

fn notifications(peer: &FakePeer) -> Vec<Value> {
    peer.received
        .lock()
        .expect("lock")
        .iter()
        .map(|r| serde_json::from_slice(&r.body).expect("json body"))
        .collect()
}

/// Waits until `peer` has at least `n` requests (or ten seconds passed).
fn wait_for(peer: &FakePeer, n: usize) -> Vec<Value> {
    let start = Instant::now();
    while peer.received.lock().expect("lock").len() < n && start.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    notifications(peer)
}

fn history(s: &Server) -> Value {
    let (code, v) = s.get_json("/v1/alerts/history");
    assert_eq!(code, 200, "{v}");
    v
}

#[test]
fn a_burst_of_429s_fires_one_signed_notification_within_a_window() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = start(dir.path());
    let peer = FakePeer::start(200, "{}", Duration::ZERO);
    post_rule(
        &s,
        json!({"name": "rate-limited", "filter": "response_code=429", "measure": "count",
               "window": "1m", "threshold": 5, "notify": [format!("{}/hook", peer.base)]}),
    );
    for n in 0..4 {
        assert_eq!(
            s.post_json("/v1/sends", &send(n, 429, "5511981390501")).0,
            200
        );
    }
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        notifications(&peer).is_empty(),
        "four is under the threshold"
    );
    let burst = Instant::now();
    for n in 4..30 {
        assert_eq!(
            s.post_json("/v1/sends", &send(n, 429, "5511981390501")).0,
            200
        );
    }
    let got = wait_for(&peer, 1);
    assert!(
        burst.elapsed() < Duration::from_secs(60),
        "within the window"
    );
    std::thread::sleep(Duration::from_millis(1500));
    let got = if got.len() == 1 {
        notifications(&peer)
    } else {
        got
    };
    assert_eq!(got.len(), 1, "one notification for the burst: {got:?}");
    let n = &got[0];
    assert_eq!(n["alert"], "rate-limited");
    assert_eq!(n["state"], "firing");
    assert_eq!(n["threshold"], 5.0);
    assert_eq!(n["window"], "1m");
    assert!(n["value"].as_f64().is_some_and(|v| v >= 5.0), "{n}");
    assert!(
        n["drill"]
            .as_str()
            .is_some_and(|d| d.starts_with("response_code=429&from=")),
        "{n}"
    );
    // Signed with the alert secret over the exact body.
    let received = peer.received.lock().expect("lock")[0].clone();
    let mut mac = Hmac::<Sha256>::new_from_slice(ALERT_SECRET.as_bytes()).expect("key");
    mac.update(&received.body);
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(
        received.header("X-Ticks-Signature-256"),
        Some(expected.as_str())
    );
    // The drill selects the burst.
    let (_, logs) = s.get_json(&format!(
        "/v1/logs?{}&limit=1",
        n["drill"].as_str().unwrap_or("")
    ));
    assert!(logs["total"].as_u64().is_some_and(|t| t >= 5), "{logs}");
    // The rule is listed firing, and the history holds the firing.
    let (_, rules) = s.get_json("/v1/alerts");
    assert_eq!(rules["alerts"][0]["state"], "firing", "{rules}");
    assert_eq!(history(&s)["history"][0]["state"], "firing");
    let metrics = s.get_text("/metrics");
    assert!(
        metrics.contains("ticks_alert_firing{alert=\"rate-limited\"} 1"),
        "{metrics}"
    );
}

#[test]
fn a_flapping_rate_notifies_once_and_resolves_once_it_stays_down() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = start(dir.path());
    let peer = FakePeer::start(200, "{}", Duration::ZERO);
    post_rule(
        &s,
        json!({"name": "engagement-131049", "filter": "error_code=131049", "measure": "rate",
               "window": "3s", "threshold": 0.5, "min_volume": 2,
               "notify": [format!("{}/hook", peer.base)]}),
    );
    let mut n = 0;
    let mut round = |failures: usize, fine: usize| {
        for _ in 0..failures + fine {
            let to = format!("55119813{n:05}");
            assert_eq!(s.post_json("/v1/sends", &send(n, 200, &to)).0, 200);
            if n % (failures + fine) < failures {
                assert_eq!(s.post_webhook(&failed(n, &to)).0, 200);
            }
            n += 1;
        }
        std::thread::sleep(Duration::from_millis(800));
    };
    // Up (4/4), down (4/12), up again (12/20), down (12/28), up...
    round(4, 0);
    round(0, 8);
    round(8, 0);
    round(0, 8);
    round(8, 0);
    let flapping = notifications(&peer);
    assert_eq!(
        flapping.len(),
        1,
        "one firing across the flaps: {flapping:?}"
    );
    assert_eq!(flapping[0]["state"], "firing");
    // Nothing more arrives: the window empties, and a window later it resolves.
    let got = wait_for(&peer, 2);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[1]["state"], "resolved");
    let h = history(&s);
    let states: Vec<&str> = h["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|t| t["state"].as_str())
        .collect();
    assert_eq!(states, ["resolved", "firing"], "newest first");
}

#[test]
fn a_notification_to_a_dead_url_is_delivered_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A port nothing listens on (yet).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let mut s = start(dir.path());
    post_rule(
        &s,
        json!({"name": "any-429", "filter": "response_code=429", "measure": "count",
               "window": "1m", "threshold": 1, "notify": [format!("http://127.0.0.1:{port}/hook")]}),
    );
    assert_eq!(
        s.post_json("/v1/sends", &send(0, 429, "5511981390501")).0,
        200
    );
    let start_wait = Instant::now();
    loop {
        let h = history(&s);
        let attempts = h["pending_notifications"][0]["attempts"]
            .as_u64()
            .unwrap_or(0);
        if attempts >= 1 {
            break;
        }
        assert!(
            start_wait.elapsed() < Duration::from_secs(10),
            "never tried: {h}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    s.stop();
    let peer = FakePeer::start_on(port, 200, "{}");
    let _s = start(dir.path());
    // The backoff after one failure is two seconds.
    let got = wait_for(&peer, 1);
    assert_eq!(got.len(), 1, "delivered after the restart");
    assert_eq!(got[0]["alert"], "any-429");
    assert_eq!(got[0]["state"], "firing");
}

#[test]
fn a_purge_of_the_entries_behind_an_alert_leaves_its_history_without_their_content() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = start(dir.path());
    post_rule(
        &s,
        json!({"name": "rate-limited", "filter": "response_code=429", "measure": "count",
               "window": "1m", "threshold": 3}),
    );
    for n in 0..5 {
        assert_eq!(
            s.post_json("/v1/sends", &send(n, 429, "5511981390777")).0,
            200
        );
    }
    let start_wait = Instant::now();
    while history(&s)["history"]
        .as_array()
        .is_none_or(|h| h.is_empty())
    {
        assert!(
            start_wait.elapsed() < Duration::from_secs(10),
            "never fired"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, v) = s.post_json(
        "/v1/delete",
        &json!({"filter": "response_code=429", "force": true}),
    );
    assert_eq!(code, 200, "{v}");
    let h = history(&s);
    assert_eq!(h["history"][0]["state"], "firing", "the history stays");
    let text = h.to_string();
    for content in ["5511981390777", "Segredo", "Flash sale"] {
        assert!(!text.contains(content), "{content} in {text}");
    }
    let drill = h["history"][0]["drill"]
        .as_str()
        .expect("drill")
        .to_string();
    let (_, logs) = s.get_json(&format!("/v1/logs?{drill}"));
    assert_eq!(logs["total"], 0, "its drill selects nothing of theirs");
}

#[test]
fn a_bad_rule_is_refused_naming_its_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = start(dir.path());
    for (rule, field) in [
        (
            json!({"name": "x", "filter": "statuz=failed", "measure": "count", "window": "5m", "threshold": 1}),
            "filter",
        ),
        (
            json!({"name": "x", "filter": "status=failed", "measure": "rate", "window": "5m", "threshold": 3}),
            "threshold",
        ),
        (
            json!({"name": "x", "filter": "status=failed", "measure": "count", "window": "soon", "threshold": 1}),
            "window",
        ),
    ] {
        let (code, v) = s.post_json("/v1/alerts", &rule);
        assert_eq!(code, 400, "{v}");
        assert_eq!(v["error"]["field"], field, "{v}");
    }
    let (code, _) = s.post_json("/v1/alerts", &json!({"name": "x"}));
    assert_eq!(code, 400);
    let r = s
        .client
        .delete(s.url("/v1/alerts/nothing"))
        .send()
        .expect("request");
    assert_eq!(r.status().as_u16(), 404);
}

#[test]
fn a_template_paused_and_a_quality_turned_red_are_built_in_alerts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let peer = FakePeer::start(200, "{}", Duration::ZERO);
    let path = dir.path().join("ticks.toml");
    std::fs::write(
        &path,
        format!(
            "alert_secret = {ALERT_SECRET:?}\nalert_notify = [\"{}/meta\"]\n",
            peer.base
        ),
    )
    .expect("config");
    let s = Server::start(dir.path(), &["--config", path.to_str().expect("path")]);
    let ts = jiff::Timestamp::now().as_second();
    let event = |field: &str, value: Value| {
        serde_json::to_vec(
            &json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "time": ts,
            "changes": [{"field": field, "value": value}]}]}),
        )
        .expect("json")
    };
    let template = json!({"message_template_id": 594425479261596u64, "message_template_name": "pedido_enviado",
                          "message_template_language": "pt_BR"});
    let mut approved = template.clone();
    approved["event"] = json!("APPROVED");
    let mut paused = template.clone();
    paused["event"] = json!("PAUSED");
    paused["reason"] = json!("Low quality");
    let mut yellow = template.clone();
    yellow["previous_quality_score"] = json!("GREEN");
    yellow["new_quality_score"] = json!("YELLOW");
    let mut red = template;
    red["previous_quality_score"] = json!("YELLOW");
    red["new_quality_score"] = json!("RED");
    for body in [
        event("message_template_status_update", approved),
        event("message_template_quality_update", yellow),
        event("message_template_status_update", paused.clone()),
        event("message_template_quality_update", red),
    ] {
        assert_eq!(s.post_webhook(&body).0, 200);
    }
    // Redelivered: the same event is one entry, and one alert.
    assert_eq!(
        s.post_webhook(&event("message_template_status_update", paused))
            .0,
        200
    );
    let got = wait_for(&peer, 2);
    std::thread::sleep(Duration::from_millis(1500));
    let got = if got.len() == 2 {
        notifications(&peer)
    } else {
        got
    };
    let mut seen: Vec<(String, String)> = got
        .iter()
        .map(|n| {
            (
                n["alert"].as_str().unwrap_or("").to_string(),
                n["detail"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            (
                "template_paused".to_string(),
                "pedido_enviado pt_BR: PAUSED".to_string()
            ),
            (
                "template_quality_red".to_string(),
                "pedido_enviado pt_BR: YELLOW -> RED".to_string()
            ),
        ],
        "{got:?}"
    );
    assert!(got.iter().all(|n| n["state"] == "event"));
    let h = history(&s);
    assert_eq!(h["history"].as_array().map(Vec::len), Some(2), "{h}");
}

/// On ClickHouse one process of the deployment evaluates the rules and
/// delivers what fires: a burst sent half through each of two processes
/// is counted whole and notified once.
#[test]
fn on_a_clickhouse_cluster_a_burst_through_two_processes_is_notified_once() {
    let Some(urls) = crate::conformance::clickhouse("TICKS_TEST_CLICKHOUSE_CLUSTER") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let config = crate::conformance::clickhouse_config(dir.path(), &urls, "alerts_cluster", true);
    let mut text = std::fs::read_to_string(&config).expect("config");
    text.push_str(&format!("alert_secret = {ALERT_SECRET:?}\n"));
    std::fs::write(&config, text).expect("config");
    let peer = FakePeer::start(200, "{}", Duration::ZERO);
    let a = Server::start(&dir.path().join("a"), &["--config", &config]);
    let b = Server::start(&dir.path().join("b"), &["--config", &config]);
    // The rules are the deployment's: one posted to one process is taken
    // up by the other while both run (whichever of them evaluates).
    post_rule(
        &a,
        json!({"name": "rate-limited", "filter": "response_code=429", "measure": "count",
               "window": "1m", "threshold": 5, "notify": [format!("{}/hook", peer.base)]}),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while b.get_json("/v1/alerts").1["alerts"][0]["name"] != "rate-limited" {
        assert!(
            std::time::Instant::now() < deadline,
            "the other process never took the rule up"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let both = [&a, &b];
    for n in 0..4 {
        let s = both[n % 2];
        assert_eq!(
            s.post_json("/v1/sends", &send(n, 429, "5511981390501")).0,
            200
        );
    }
    std::thread::sleep(Duration::from_millis(2000));
    assert!(
        notifications(&peer).is_empty(),
        "four is under the threshold"
    );
    for n in 4..30 {
        let s = both[n % 2];
        assert_eq!(
            s.post_json("/v1/sends", &send(n, 429, "5511981390501")).0,
            200
        );
    }
    let _ = wait_for(&peer, 1);
    std::thread::sleep(Duration::from_millis(3000));
    let got = notifications(&peer);
    assert_eq!(got.len(), 1, "one notification for the burst: {got:?}");
    assert_eq!(got[0]["alert"], "rate-limited");
    assert_eq!(got[0]["state"], "firing");
    assert!(
        got[0]["value"].as_f64().is_some_and(|v| v >= 5.0),
        "{}",
        got[0]
    );
    // Both processes show the history (it is the deployment's), and the
    // drill selects the burst through either.
    for s in both {
        assert_eq!(history(s)["history"][0]["state"], "firing");
        let (_, logs) = s.get_json(&format!(
            "/v1/logs?{}&limit=1",
            got[0]["drill"].as_str().unwrap_or("")
        ));
        assert!(logs["total"].as_u64().is_some_and(|t| t >= 5), "{logs}");
    }
}
