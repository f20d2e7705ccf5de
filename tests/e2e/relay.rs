//! The webhook relay to a fake downstream app on loopback.

use crate::support::*;
use std::time::{Duration, Instant};

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn stored_webhooks_reach_the_downstream_with_a_valid_signature_after_retries() {
    // The downstream fails twice, then accepts; and it is slow.
    let downstream = FakePeer::start_with(
        |n| {
            if n < 2 {
                (500, "{}".into())
            } else {
                (200, "{}".into())
            }
        },
        Duration::from_millis(300),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(
        dir.path(),
        &["--relay-url", &format!("{}/hook", downstream.base)],
    );
    let body = fixture("webhook_status_read.json");
    let started = Instant::now();
    assert_eq!(s.post_webhook(&body).0, 200);
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "a slow downstream never delays Meta's 200"
    );
    wait_for("delivery after two failures", || {
        downstream.received.lock().expect("lock").len() >= 3
    });
    let got = downstream.received.lock().expect("lock")[2].clone();
    assert_eq!(got.body, body, "the same raw body");
    assert_eq!(
        got.header("x-hub-signature-256"),
        Some(sign(&body).as_str()),
        "a valid signature"
    );
    wait_for("the status to show the delivery", || {
        let (_, v) = s.get_json("/v1/relay");
        v["relays"][0]["delivered"] == 1 && v["relays"][0]["behind"] == 0
    });
    // A duplicate from Meta is not relayed twice.
    assert_eq!(s.post_webhook(&body).0, 200);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(downstream.received.lock().expect("lock").len(), 3);
}

#[test]
fn the_relay_backlog_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    // First the downstream is down (nothing listens).
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let url = format!("http://127.0.0.1:{port}/hook");
    {
        let mut s = Server::start(dir.path(), &["--relay-url", &url]);
        assert_eq!(s.post_webhook(&fixture("webhook_status_sent.json")).0, 200);
        assert_eq!(s.post_webhook(&fixture("webhook_inbound_text.json")).0, 200);
        let text = s.get_text("/metrics");
        assert!(text.contains("ticks_relay_backlog 2"), "{text}");
        s.kill9();
    }
    // Then it comes back, on the same port, and Ticks restarts.
    let listener = std::net::TcpListener::bind(("127.0.0.1", port));
    let Ok(listener) = listener else { return }; // the port was taken meanwhile: nothing to test
    drop(listener);
    let downstream = FakePeer::start_on(port, 200, "{}");
    let _s = Server::start(dir.path(), &["--relay-url", &url]);
    wait_for("both backlogged webhooks", || {
        downstream.received.lock().expect("lock").len() >= 2
    });
    let bodies: Vec<Vec<u8>> = downstream
        .received
        .lock()
        .expect("lock")
        .iter()
        .map(|r| r.body.clone())
        .collect();
    assert!(bodies.contains(&fixture("webhook_status_sent.json")));
    assert!(bodies.contains(&fixture("webhook_inbound_text.json")));
}
