//! Templates: the text the customer read. Definitions in the Graph API's
//! own format (`shared/CLOUD_API.md`, section 5) are imported over HTTP,
//! from files and from a fake Graph API; templated sends are then shown,
//! exported and found by their rendered text, with the version in force
//! when each was sent.

use crate::support::*;
use serde_json::{json, Value};
use std::time::Duration;

/// A `message_templates` page with the shipping template (text header,
/// positional body, footer, URL and quick-reply buttons), a named one and
/// one with a document header.
fn catalog_page(body: &str, first_seen: Option<&str>) -> Value {
    let mut shipped = json!({
        "id": "594425479261596", "name": "pedido_enviado", "language": "pt_BR",
        "status": "APPROVED", "category": "UTILITY",
        "components": [
            {"type": "HEADER", "format": "TEXT", "text": "Pedido {{1}}"},
            {"type": "BODY", "text": body},
            {"type": "FOOTER", "text": "Loja Exemplo"},
            {"type": "BUTTONS", "buttons": [
                {"type": "URL", "text": "Rastrear", "url": "https://loja.example/r/{{1}}"},
                {"type": "QUICK_REPLY", "text": "Falar com atendente"}]}]
    });
    if let Some(at) = first_seen {
        shipped["ticks_first_seen"] = json!(at);
    }
    json!({"data": [
        shipped,
        {"id": "2", "name": "boleto", "language": "pt_BR", "status": "APPROVED", "category": "UTILITY",
         "parameter_format": "NAMED",
         "components": [
            {"type": "HEADER", "format": "DOCUMENT"},
            {"type": "BODY", "text": "Oi {{first_name}}, seu boleto de {{valor}} vence {{vencimento}}."}]}
    ], "paging": {"cursors": {"before": "a", "after": "b"}}})
}

const SHIPPED: &str = "Olá {{1}}, seu pedido #{{2}} foi enviado! Código de rastreio: {{3}}.";

fn shipping_send(wamid: &str, at: &str, body_params: &[&str]) -> Value {
    let body: Vec<Value> = body_params
        .iter()
        .map(|p| json!({"type": "text", "text": p}))
        .collect();
    json!({
        "recorded_at": at, "category": "template_bot", "name": "Entregas",
        "phone_number_id": "106540352242922",
        "request": {"messaging_product": "whatsapp", "to": "5511987654321", "type": "template",
                    "template": {"name": "pedido_enviado", "language": {"code": "pt_BR"},
                                 "components": [
                                    {"type": "header", "parameters": [{"type": "text", "text": "48213"}]},
                                    {"type": "body", "parameters": body},
                                    {"type": "button", "sub_type": "url", "index": "0",
                                     "parameters": [{"type": "text", "text": "BR123456789BR"}]}]}},
        "response_code": 200,
        "response": {"messaging_product": "whatsapp",
                     "contacts": [{"input": "5511987654321", "wa_id": "5511987654321"}],
                     "messages": [{"id": wamid}]}
    })
}

fn boleto_send(wamid: &str) -> Value {
    json!({
        "recorded_at": "2025-03-02T10:00:00-03:00", "category": "template_bot", "name": "Cobrança",
        "request": {"messaging_product": "whatsapp", "to": "5511987654321", "type": "template",
                    "template": {"name": "boleto", "language": {"code": "pt_BR"},
                                 "components": [
                                    {"type": "header", "parameters": [{"type": "document",
                                        "document": {"link": "https://cdn.example/b/778.pdf", "filename": "boleto-778.pdf"}}]},
                                    {"type": "body", "parameters": [
                                        {"type": "text", "parameter_name": "first_name", "text": "Ana"},
                                        {"type": "currency", "parameter_name": "valor",
                                         "currency": {"fallback_value": "R$ 120,00", "code": "BRL", "amount_1000": 120000}},
                                        {"type": "date_time", "parameter_name": "vencimento",
                                         "date_time": {"fallback_value": "10/03/2025"}}]}]}},
        "response_code": 200,
        "response": {"messaging_product": "whatsapp", "messages": [{"id": wamid}]}
    })
}

fn entry(s: &Server, wamid: &str) -> Value {
    let (code, v) = s.get_json(&format!("/v1/logs?wamid={wamid}"));
    assert_eq!(code, 200, "{v}");
    v["entries"][0].clone()
}

fn total(s: &Server, query: &str) -> u64 {
    let (code, v) = s.get_json(&format!("/v1/logs?{query}"));
    assert_eq!(code, 200, "{query}: {v}");
    v["total"].as_u64().expect("total")
}

/// The total of `query` once it reaches `expected` (the backfill runs in
/// the background), or as it stands after ten seconds.
fn total_once_backfilled(s: &Server, query: &str, expected: u64) -> u64 {
    let mut found = 0;
    for _ in 0..200 {
        s.settle_text();
        found = total(s, query);
        if found == expected {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    found
}

#[test]
fn a_send_logged_before_its_definition_is_rendered_and_found_once_the_definition_arrives() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    rendered_once_the_definition_arrives(&s, &s);
}

/// On ClickHouse the catalog is the deployment's: a definition added
/// through one Ticks process renders the sends the other logged, before
/// and after, and both list it.
#[test]
fn on_a_clickhouse_cluster_a_definition_added_through_one_process_renders_on_the_other() {
    let Some(urls) = crate::conformance::clickhouse("TICKS_TEST_CLICKHOUSE_CLUSTER") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let config =
        crate::conformance::clickhouse_config(dir.path(), &urls, "templates_cluster", true);
    let a = Server::start(&dir.path().join("a"), &["--config", &config]);
    let b = Server::start(&dir.path().join("b"), &["--config", &config]);
    rendered_once_the_definition_arrives(&a, &b);
}

/// Sends logged through `logs` before and after their definitions are
/// added through `adds` show the rendered text, are found by its words,
/// and count in the template list.
fn rendered_once_the_definition_arrives(logs: &Server, adds: &Server) {
    let s = logs;
    let send = shipping_send(
        "wamid.P1",
        "2025-03-01T10:00:00-03:00",
        &["José", "48213", "BR123456789BR"],
    );
    assert_eq!(s.post_json("/v1/sends", &send).0, 200);
    assert_eq!(s.post_json("/v1/sends", &boleto_send("wamid.B1")).0, 200);
    s.settle_text();
    let before = entry(s, "wamid.P1");
    assert_eq!(before["template_known"], false);
    assert_eq!(
        before["text"],
        "48213\nJosé\n48213\nBR123456789BR\nBR123456789BR"
    );
    assert_eq!(
        total(s, "text=rastreio"),
        0,
        "the fixed text is unknown yet"
    );

    let (code, v) = adds.post_json("/v1/templates", &catalog_page(SHIPPED, None));
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["versions"], 2);
    assert_eq!(v["backfill"], 2);
    let after = entry(s, "wamid.P1");
    assert_eq!(after["template_known"], true);
    assert_eq!(
        after["text"],
        "Pedido 48213\nOlá José, seu pedido #48213 foi enviado! Código de rastreio: BR123456789BR.\n\
         Loja Exemplo\n[Rastrear: https://loja.example/r/BR123456789BR]\n[Falar com atendente]"
    );
    assert_eq!(after["render_error"], Value::Null);
    assert_eq!(
        entry(s, "wamid.B1")["text"],
        "[document boleto-778.pdf]\nOi Ana, seu boleto de R$ 120,00 vence 10/03/2025."
    );
    // The backfill indexes the rendered text in the background.
    assert_eq!(
        total_once_backfilled(
            s,
            "text=rastreio&category=template_bot&response_code=200",
            1
        ),
        1,
        "a word only the fixed text has"
    );
    assert_eq!(total(s, "text=vence"), 1);
    // A send logged now is indexed rendered at once.
    let later = shipping_send(
        "wamid.P2",
        "2025-03-03T10:00:00-03:00",
        &["Ana", "48300", "BR9"],
    );
    assert_eq!(s.post_json("/v1/sends", &later).0, 200);
    s.settle_text();
    assert_eq!(total(s, "text=rastreio"), 2);
    // The detail, the export and the list show it too.
    let (_, csv) = (0, s.get_text("/v1/export?format=csv&wamid=wamid.P1"));
    assert!(csv.contains("Código de rastreio: BR123456789BR."), "{csv}");
    for server in [logs, adds] {
        let (_, list) = server.get_json("/v1/templates");
        let shipped = list["templates"]
            .as_array()
            .expect("templates")
            .iter()
            .find(|t| t["name"] == "pedido_enviado")
            .cloned()
            .expect("listed");
        assert_eq!(shipped["sends"], 2);
        assert_eq!(shipped["versions"], 1);
        assert_eq!(shipped["status"], "APPROVED");
    }
}

#[test]
fn a_send_shows_the_version_in_force_when_it_was_sent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    let old = catalog_page(SHIPPED, Some("2025-01-01T00:00:00Z"));
    let edited = catalog_page(
        "Oi {{1}}! O pedido #{{2}} saiu para entrega. Rastreio: {{3}}.",
        Some("2025-03-02T00:00:00Z"),
    );
    assert_eq!(s.post_json("/v1/templates", &json!([old, edited])).0, 200);
    for (wamid, at) in [
        ("wamid.V1", "2025-03-01T10:00:00-03:00"),
        ("wamid.V2", "2025-03-03T10:00:00-03:00"),
    ] {
        let send = shipping_send(wamid, at, &["José", "48213", "BR1"]);
        assert_eq!(s.post_json("/v1/sends", &send).0, 200);
    }
    let v1 = entry(&s, "wamid.V1")["text"].as_str().map(String::from);
    let v2 = entry(&s, "wamid.V2")["text"].as_str().map(String::from);
    assert!(
        v1.as_deref().is_some_and(|t| t.contains("foi enviado!")),
        "{v1:?}"
    );
    assert!(
        v2.as_deref()
            .is_some_and(|t| t.contains("saiu para entrega")),
        "{v2:?}"
    );
    let (code, t) = s.get_json("/v1/templates/pedido_enviado/pt_BR");
    assert_eq!(code, 200, "{t}");
    assert_eq!(t["versions"], 2);
    assert_eq!(t["history"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        t["history"][0]["first_seen"],
        "2025-01-01T00:00:00.000+00:00"
    );
    assert_eq!(s.get_json("/v1/templates/pedido_enviado/es").0, 404);
}

#[test]
fn a_parameter_count_that_does_not_fit_renders_what_it_can_and_says_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    assert_eq!(
        s.post_json("/v1/templates", &catalog_page(SHIPPED, None)).0,
        200
    );
    let short = shipping_send("wamid.M1", "2025-03-01T10:00:00-03:00", &["José", "48213"]);
    let long = shipping_send(
        "wamid.M2",
        "2025-03-01T10:00:00-03:00",
        &["José", "48213", "BR1", "extra"],
    );
    for send in [short, long] {
        assert_eq!(s.post_json("/v1/sends", &send).0, 200);
    }
    let missing = entry(&s, "wamid.M1");
    assert!(
        missing["text"]
            .as_str()
            .is_some_and(|t| t.contains("Código de rastreio: {{3}}.")),
        "{missing}"
    );
    assert_eq!(
        missing["render_error"],
        "body: 3 parameters expected, 2 given (missing {{3}})"
    );
    assert_eq!(
        entry(&s, "wamid.M2")["render_error"],
        "body: 3 parameters expected, 4 given"
    );
}

#[test]
fn template_events_are_the_templates_history() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    assert_eq!(
        s.post_json("/v1/templates", &catalog_page(SHIPPED, None)).0,
        200
    );
    let change = |field: &str, value: Value| {
        serde_json::to_vec(&json!({"object": "whatsapp_business_account",
            "entry": [{"id": "102290129340398", "time": 1_900_000_000,
                       "changes": [{"field": field, "value": value}]}]}))
        .expect("json")
    };
    for body in [
        change(
            "message_template_quality_update",
            json!({"previous_quality_score": "GREEN", "new_quality_score": "YELLOW",
                   "message_template_id": 594425479261596i64, "message_template_name": "pedido_enviado",
                   "message_template_language": "pt_BR"}),
        ),
        change(
            "message_template_status_update",
            json!({"event": "PAUSED", "message_template_id": 594425479261596i64,
                   "message_template_name": "pedido_enviado", "message_template_language": "pt_BR",
                   "reason": "LOW_QUALITY"}),
        ),
    ] {
        assert_eq!(s.post_webhook(&body).0, 200);
    }
    let (_, t) = s.get_json("/v1/templates/pedido_enviado/pt_BR");
    assert_eq!(t["quality"], "YELLOW");
    assert_eq!(
        t["status"], "PAUSED",
        "a webhook newer than the import wins: {t}"
    );
    let events: Vec<(Value, Value)> = t["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| (e["event"].clone(), e["to"].clone()))
        .collect();
    assert_eq!(events.len(), 2, "{t}");
    assert!(events.contains(&(json!("message_template_status_update"), json!("PAUSED"))));
}

#[test]
fn bad_definitions_are_named_and_the_good_ones_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    let page = json!({"data": [
        {"name": "ok", "language": "en", "components": [{"type": "BODY", "text": "Hi {{1}}"}]},
        {"name": "no_language", "components": [{"type": "BODY", "text": "x"}]}]});
    let (code, v) = s.post_json("/v1/templates", &page);
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["versions"], 1);
    assert_eq!(v["rejected"][0]["field"], "data[1].language");
    let (code, v) = s.post_json("/v1/templates", &json!({"data": [{"name": "x"}]}));
    assert_eq!(code, 400, "{v}");
    assert_eq!(v["error"]["field"], "data[0].language");
    let (code, _) = s.post_json("/v1/templates", &json!({"data": 3}));
    assert_eq!(code, 400);
}

/// Sync from a fake Graph API: two pages (the first answered 500 once),
/// then a sync that times out, which changes nothing.
#[test]
fn templates_sync_from_the_graph_api_page_by_page_and_a_failed_sync_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let page_two = json!({"data": [{"name": "boas_vindas", "language": "es", "status": "APPROVED",
        "components": [{"type": "BODY", "text": "Hola {{1}}"}]}], "paging": {}});
    // The first page names the peer's own address for the next one.
    let page_one = |base: &str| {
        json!({"data": [{"name": "pedido_enviado", "language": "pt_BR", "status": "APPROVED",
            "components": [{"type": "BODY", "text": SHIPPED}]}],
            "paging": {"next": format!("{base}/v23.0/77/message_templates?after=b")}})
        .to_string()
    };
    let graph = {
        let page_two = page_two.to_string();
        let holder: std::sync::Arc<std::sync::Mutex<String>> = std::sync::Arc::default();
        let base_for_answers = holder.clone();
        let peer = FakePeer::start_with(
            move |n| {
                let base = base_for_answers.lock().expect("lock").clone();
                match n {
                    0 => (500, r#"{"error": {"message": "try again"}}"#.to_string()),
                    1 => (200, page_one(&base)),
                    _ => (200, page_two.clone()),
                }
            },
            Duration::ZERO,
        );
        *holder.lock().expect("lock") = peer.base.clone();
        peer
    };
    let out = ticks(
        &data,
        &[
            "templates",
            "sync",
            "--waba",
            "77",
            "--graph-base-url",
            &graph.base,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let requests: Vec<String> = graph
        .received
        .lock()
        .expect("lock")
        .iter()
        .map(|r| r.request_line.clone())
        .collect();
    assert_eq!(requests.len(), 3, "{requests:?}");
    assert!(
        requests[0].starts_with("GET /v23.0/77/message_templates"),
        "{requests:?}"
    );
    assert!(requests[2].contains("after=b"), "{requests:?}");
    let listed = String::from_utf8_lossy(&ticks(&data, &["templates", "list"]).stdout).to_string();
    assert!(listed.contains("pedido_enviado\tpt_BR"), "{listed}");
    assert!(listed.contains("boas_vindas\tes"), "{listed}");

    // A Graph API that does not answer in time: the sync fails, and the
    // catalog stays as it was.
    let slow = FakePeer::start(
        200,
        &page_two.to_string().replace("Hola", "Adiós"),
        Duration::from_secs(3),
    );
    let out = ticks(
        &data,
        &[
            "templates",
            "sync",
            "--waba",
            "77",
            "--graph-base-url",
            &slow.base,
            "--timeout",
            "1",
            "--attempts",
            "2",
        ],
    );
    assert!(!out.status.success());
    let listed_after =
        String::from_utf8_lossy(&ticks(&data, &["templates", "list"]).stdout).to_string();
    assert_eq!(listed_after, listed);
}

/// A backfill stopped by `kill -9` is finished by the next start.
#[test]
fn a_backfill_interrupted_by_kill_9_is_finished_at_the_next_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = Server::start(dir.path(), &[]);
    let sends: Vec<Value> = (0..3000)
        .map(|i| {
            shipping_send(
                &format!("wamid.K{i}"),
                "2025-03-01T10:00:00-03:00",
                &["José", &i.to_string(), "BR1"],
            )
        })
        .collect();
    for chunk in sends.chunks(500) {
        assert_eq!(s.post_json("/v1/sends", &json!(chunk)).0, 200);
    }
    s.settle_text();
    let (code, v) = s.post_json("/v1/templates", &catalog_page(SHIPPED, None));
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["backfill"], 3000);
    s.kill9();
    let s = Server::start(dir.path(), &[]);
    assert_eq!(total_once_backfilled(&s, "text=rastreio", 3000), 3000);
    assert_eq!(entry(&s, "wamid.K7")["template_known"], true);
}
