//! The logging proxy in front of a fake Graph API on loopback.

use crate::support::*;
use std::time::Duration;

#[test]
fn the_proxy_forwards_unchanged_and_logs_the_send_with_its_context() {
    let graph = FakePeer::start(
        200,
        r#"{"messaging_product":"whatsapp","contacts":[{"input":"5511987654321","wa_id":"5511987654321"}],"messages":[{"id":"wamid.PROXY1"}]}"#,
        Duration::ZERO,
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &["--graph-base-url", &graph.base]);
    let body = r#"{"messaging_product":"whatsapp","to":"5511987654321","type":"text","text":{"body":"via proxy"}}"#;
    let r = s
        .client
        .post(s.url("/graph/v21.0/106540352242922/messages?debug=1"))
        .header("Authorization", "Bearer META-TOKEN")
        .header("X-Ticks-Category", "message_bot")
        .header("X-Ticks-Name", "Proxy bot")
        .header("X-Ticks-User", "ana")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .expect("post");
    assert_eq!(r.status(), 200);
    let answer: serde_json::Value = r.json().expect("json");
    assert_eq!(
        answer["messages"][0]["id"], "wamid.PROXY1",
        "Meta's answer comes back unchanged"
    );
    let got = graph.received.lock().expect("lock")[0].clone();
    assert_eq!(
        got.request_line,
        "POST /v21.0/106540352242922/messages?debug=1 HTTP/1.1"
    );
    assert_eq!(got.header("authorization"), Some("Bearer META-TOKEN"));
    assert!(
        got.header("x-ticks-name").is_none(),
        "log context is not forwarded"
    );
    assert_eq!(got.body, body.as_bytes());
    let (_, v) = s.get_json("/v1/logs?wamid=wamid.PROXY1");
    assert_eq!(v["total"], 1);
    let e = &v["entries"][0];
    assert_eq!(
        (
            e["name"].as_str(),
            e["category"].as_str(),
            e["user"].as_str()
        ),
        (Some("Proxy bot"), Some("message_bot"), Some("ana"))
    );
    assert_eq!(e["phone_number_id"], "106540352242922");
}

#[test]
fn a_meta_error_is_returned_unchanged_and_logged_as_rejected() {
    let graph = FakePeer::start(
        400,
        r#"{"error":{"message":"(#131047) Re-engagement message","type":"OAuthException","code":131047,"error_data":{"messaging_product":"whatsapp","details":"24 hours"},"fbtrace_id":"x"}}"#,
        Duration::ZERO,
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &["--graph-base-url", &graph.base]);
    let r = s
        .client
        .post(s.url("/graph/v21.0/1/messages"))
        .body(r#"{"to":"1","type":"text","text":{"body":"x"}}"#)
        .send()
        .expect("post");
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<serde_json::Value>().expect("json")["error"]["code"],
        131047
    );
    let (_, v) = s.get_json("/v1/logs?status=rejected&error_code=131047");
    assert_eq!(v["total"], 1);
}

#[test]
fn a_send_that_gets_no_answer_is_logged_too() {
    // Nothing listens on this port: the connection is refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &["--graph-base-url", &base]);
    let r = s
        .client
        .post(s.url("/graph/v21.0/1/messages"))
        .header("X-Ticks-Name", "Down")
        .body(r#"{"to":"1","type":"text","text":{"body":"x"}}"#)
        .send()
        .expect("post");
    assert_eq!(r.status(), 502);
    let (_, v) = s.get_json("/v1/logs?status=no_response");
    assert_eq!(v["total"], 1);
    assert!(
        v["entries"][0]["error_title"]
            .as_str()
            .is_some_and(|t| t.contains("connection")),
        "{}",
        v["entries"][0]
    );
}
