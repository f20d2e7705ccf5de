//! Meta's side: the verification handshake and signed deliveries.

use crate::support::*;

#[test]
fn the_handshake_echoes_the_challenge_only_for_the_right_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    let ok = s
        .client
        .get(s.url(&format!(
            "/webhook?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1158201444"
        )))
        .send()
        .expect("get");
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().expect("body"), "1158201444");
    let bad = s
        .client
        .get(s.url("/webhook?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1"))
        .send()
        .expect("get");
    assert_eq!(bad.status(), 403);
}

#[test]
fn only_correctly_signed_bodies_are_stored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    let body = fixture("webhook_status_delivered.json");
    let wrong = s
        .client
        .post(s.url("/webhook"))
        .header("X-Hub-Signature-256", "sha256=00ff")
        .body(body.clone())
        .send()
        .expect("post");
    assert_eq!(wrong.status(), 401);
    let missing = s
        .client
        .post(s.url("/webhook"))
        .body(body.clone())
        .send()
        .expect("post");
    assert_eq!(missing.status(), 401);
    let mut tampered = body.clone();
    tampered[10] ^= 1;
    let r = s
        .client
        .post(s.url("/webhook"))
        .header("X-Hub-Signature-256", sign(&body))
        .body(tampered)
        .send()
        .expect("post");
    assert_eq!(r.status(), 401, "the signature covers the exact bytes");
    assert_eq!(
        s.get_json("/v1/logs").1["total"],
        0,
        "nothing from unsigned bodies"
    );
    let (status, v) = s.post_webhook(&body);
    assert_eq!(status, 200);
    assert_eq!(v["stored"], 1);
    assert_eq!(s.get_json("/v1/logs?status=delivered").1["total"], 1);
}

#[test]
fn a_redelivered_webhook_gets_200_again_and_is_stored_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    let body = fixture("webhook_inbound_text.json");
    let (a, first) = s.post_webhook(&body);
    let (b, second) = s.post_webhook(&body);
    assert_eq!((a, b), (200, 200));
    assert_eq!(first["duplicate"], false);
    assert_eq!(second["duplicate"], true);
    assert_eq!(s.get_json("/v1/logs?direction=mo").1["total"], 1);
}

#[test]
fn a_3_mib_batch_is_accepted_and_every_status_stored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    let mut statuses = Vec::new();
    let mut size = 0;
    let mut i = 0;
    while size < 3 * 1024 * 1024 {
        let st = serde_json::json!({"id": format!("wamid.BIG{i:06}"), "status": "failed", "timestamp": "1740834009", "recipient_id": "5511987654321",
            "errors": [{"code": 131026, "title": "Message undeliverable", "message": "x".repeat(2000), "error_data": {"details": "undeliverable"}}]});
        size += st.to_string().len();
        statuses.push(st);
        i += 1;
    }
    let body = serde_json::to_vec(&serde_json::json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages",
        "value": {"messaging_product": "whatsapp", "metadata": {"display_phone_number": "1", "phone_number_id": "106540352242922"}, "statuses": statuses}}]}]}))
        .expect("json");
    assert!(body.len() >= 3 * 1024 * 1024);
    let (status, v) = s.post_webhook(&body);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["stored"], i);
    assert_eq!(
        s.get_json("/v1/logs?status=failed&error_code=131026").1["total"],
        i
    );
}

#[test]
fn a_body_that_is_not_a_webhook_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    let (status, v) = s.post_webhook(br#"{"hello": "world"}"#);
    assert_eq!(status, 400);
    assert_eq!(v["error"]["field"], "object");
}

#[test]
fn redelivered_account_and_template_events_are_stored_once_at_their_own_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    // Meta's template events carry their time on the entry.
    let mut template: serde_json::Value =
        serde_json::from_slice(&fixture("webhook_template_status.json")).expect("json");
    template["entry"][0]["time"] = serde_json::json!(1_740_900_000);
    let template = serde_json::to_vec(&template).expect("json");
    let bodies = [
        template,
        fixture("webhook_user_preferences.json"),
        fixture("webhook_value_errors.json"),
        fixture("webhook_account_alert.json"),
        fixture("webhook_quality_update.json"),
    ];
    for body in &bodies {
        let (a, first) = s.post_webhook(body);
        std::thread::sleep(std::time::Duration::from_millis(5));
        let (b, second) = s.post_webhook(body);
        assert_eq!((a, b), (200, 200));
        assert_eq!(first["duplicate"], false, "{first}");
        assert_eq!(second["duplicate"], true, "the redelivery: {second}");
    }
    let (_, v) = s.get_json("/v1/logs?direction=event&limit=100");
    assert_eq!(v["total"], bodies.len(), "{v}");
    let at = |category: &str| {
        v["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .find(|e| e["category"] == category)
            .and_then(|e| e["recorded_at"].as_str().map(String::from))
            .unwrap_or_default()
    };
    assert!(
        at("message_template_status_update").starts_with("2025-03-02T07:20:00"),
        "the entry's time: {}",
        at("message_template_status_update")
    );
    assert!(
        at("user_preferences").starts_with("2025-03-01T13:25:00"),
        "the preference's own time: {}",
        at("user_preferences")
    );
}
