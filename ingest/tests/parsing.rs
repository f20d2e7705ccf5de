//! The parsers against real-shaped fixtures (`tests/data/`), bad input, and
//! arbitrary bytes.

use proptest::prelude::*;
use std::path::PathBuf;
use ticks_engine::{Event, SendOutcome, Source, WebhookStatus};
use ticks_ingest::{line_input, send_batch, send_input, webhook_input, ParseError};

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn all_fixtures() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data");
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .expect("tests/data")
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).expect("read"),
            )
        })
        .collect();
    out.sort();
    out
}

fn the_send(name: &str) -> ticks_engine::SendEvent {
    let input = send_input(fixture(name), Source::SendApi, 0).expect("parses");
    match input.events.into_iter().next() {
        Some(Event::Send(s)) => *s,
        other => panic!("expected a send, got {other:?}"),
    }
}

#[test]
fn every_fixture_parses_as_an_ndjson_line_with_at_least_one_event() {
    let fixtures = all_fixtures();
    assert!(fixtures.len() >= 30);
    for (name, bytes) in fixtures {
        let line: Vec<u8> =
            serde_json::to_vec(&serde_json::from_slice::<serde_json::Value>(&bytes).expect("json"))
                .expect("json");
        let input = line_input(line, Source::Import, 0).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!input.events.is_empty(), "{name} gave no event");
        let malformed = input
            .events
            .iter()
            .any(|e| matches!(e, Event::Other(o) if o.field == "malformed"));
        assert!(!malformed, "{name} has a malformed part");
    }
}

#[test]
fn template_send_derives_wamid_phone_params_and_correlation() {
    let s = the_send("send_template_accepted.json");
    assert_eq!(
        s.wamid.as_deref(),
        Some("wamid.HBgNNTUxMTk4NzY1NDMyMRUCABEYEjA3QUY1RjQ3QkM2RjlBMDBBNAA=")
    );
    assert_eq!(
        s.phone.as_deref(),
        Some("5511987654321"),
        "request.to is normalised to digits"
    );
    assert_eq!(s.wa_id.as_deref(), Some("5511987654321"));
    assert_eq!(s.template.as_deref(), Some("promo_black_friday"));
    assert_eq!(s.template_language.as_deref(), Some("pt_BR"));
    assert_eq!(
        s.correlation_id.as_deref(),
        Some("crm-order-778"),
        "biz_opaque_callback_data is the correlation id"
    );
    assert_eq!(s.outcome, Some(SendOutcome::Accepted));
    assert_eq!(s.response_code, Some(200));
    assert_eq!(s.offset_s, -3 * 3600, "the original offset is kept");
    let params: Vec<(&str, &str, &str)> = s
        .params
        .iter()
        .map(|p| (p.component.as_str(), p.name.as_str(), p.value.as_str()))
        .collect();
    assert_eq!(
        params,
        vec![
            ("header", "1", "https://cdn.example.com/bf.png"),
            ("body", "customer_name", "Maria"),
            ("body", "2", "R$ 99,90"),
            ("body", "3", "28 de novembro"),
            ("button", "quick_reply[0]", "STOP_PROMOS"),
            ("button", "url[1]", "bf2025?utm=wa"),
        ]
    );
    assert!(s.text.contains("Maria") && s.text.contains("R$ 99,90"));
}

#[test]
fn held_and_paused_sends_keep_their_message_status() {
    assert_eq!(
        the_send("send_template_held.json").outcome,
        Some(SendOutcome::Held)
    );
}

#[test]
fn failed_send_keeps_meta_code_title_and_details() {
    let s = the_send("send_rejected_131047.json");
    assert_eq!(s.outcome, Some(SendOutcome::Rejected));
    assert_eq!(s.wamid, None);
    let e = s.error.expect("error");
    assert_eq!(e.code, Some(131047));
    assert_eq!(e.title.as_deref(), Some("Re-engagement message"));
    assert!(e.details.as_deref().is_some_and(|d| d.contains("24 hours")));
    let auth = the_send("send_rejected_auth_190.json")
        .error
        .expect("error");
    assert_eq!((auth.code, auth.subcode), (Some(190), Some(463)));
}

#[test]
fn a_send_without_response_is_logged_with_its_transport_error() {
    let s = the_send("send_no_response_timeout.json");
    assert_eq!(s.outcome, Some(SendOutcome::NoResponse));
    assert_eq!(s.response_code, None);
    assert_eq!(
        s.transport_error.as_deref(),
        Some("operation timed out after 30s")
    );
}

#[test]
fn status_webhook_carries_conversation_pricing_and_callback_data() {
    let input =
        webhook_input(fixture("webhook_status_sent.json"), Source::Webhook, 0).expect("parses");
    let Some(Event::Status(st)) = input.events.first() else {
        panic!("status expected")
    };
    assert_eq!(st.status, WebhookStatus::Sent);
    assert_eq!(st.at_ms, 1_740_834_005_000);
    assert_eq!(st.conversation_type.as_deref(), Some("marketing"));
    assert_eq!(st.conversation_expiry_ms, Some(1_740_920_400_000));
    assert_eq!(st.pricing_model.as_deref(), Some("PMP"));
    assert_eq!(st.billable, Some(true));
    assert_eq!(st.correlation_id.as_deref(), Some("crm-order-778"));
    assert_eq!(st.phone_number_id.as_deref(), Some("106540352242922"));
}

#[test]
fn failed_status_keeps_its_error() {
    let input =
        webhook_input(fixture("webhook_status_failed.json"), Source::Webhook, 0).expect("parses");
    let Some(Event::Status(st)) = input.events.first() else {
        panic!("status expected")
    };
    assert_eq!(st.status, WebhookStatus::Failed);
    assert_eq!(st.errors[0].code, Some(131049));
}

#[test]
fn quick_reply_click_links_to_the_template_message() {
    let input =
        webhook_input(fixture("webhook_inbound_button.json"), Source::Webhook, 0).expect("parses");
    let Some(Event::Inbound(m)) = input.events.first() else {
        panic!("inbound expected")
    };
    assert_eq!(m.button.as_deref(), Some("STOP_PROMOS"));
    assert_eq!(
        m.context_wamid.as_deref(),
        Some("wamid.HBgNNTUxMTk4NzY1NDMyMRUCABEYEjA3QUY1RjQ3QkM2RjlBMDBBNAA=")
    );
    assert_eq!(m.contact_name.as_deref(), Some("Maria Souza"));
    assert_eq!(m.content_type, "button");
}

#[test]
fn other_fields_are_kept_as_searchable_events() {
    for name in [
        "webhook_template_status.json",
        "webhook_quality_update.json",
        "webhook_account_alert.json",
        "webhook_user_preferences.json",
    ] {
        let input = webhook_input(fixture(name), Source::Webhook, 0).expect("parses");
        let Some(Event::Other(o)) = input.events.first() else {
            panic!("{name}: other expected")
        };
        assert!(!o.text.is_empty(), "{name} keeps its text");
    }
    let input =
        webhook_input(fixture("webhook_template_status.json"), Source::Webhook, 0).expect("parses");
    let Some(Event::Other(o)) = input.events.first() else {
        panic!()
    };
    assert_eq!(o.template.as_deref(), Some("promo_black_friday"));
    assert!(o.summary.contains("APPROVED"));
}

#[test]
fn a_batched_webhook_gives_one_event_per_status() {
    let input = webhook_input(
        fixture("webhook_batch_two_statuses.json"),
        Source::Webhook,
        0,
    )
    .expect("parses");
    assert_eq!(input.events.len(), 2);
}

#[test]
fn a_malformed_status_is_kept_not_rejected() {
    let body = br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"statuses":[{"status":"read","timestamp":"1"}]}}]}]}"#;
    let input = webhook_input(body.to_vec(), Source::Webhook, 0).expect("still accepted");
    let Some(Event::Other(o)) = input.events.first() else {
        panic!("kept as other")
    };
    assert_eq!(o.field, "malformed");
    assert!(
        o.summary.contains("statuses[0].id: missing"),
        "{}",
        o.summary
    );
}

#[test]
fn bad_send_results_name_the_field() {
    let cases: &[(&str, &str)] = &[
        (r#"{"request":{}}"#, "recorded_at: missing"),
        (
            r#"{"recorded_at":"yesterday","request":{}}"#,
            "recorded_at: \"yesterday\" is not an RFC 3339 time",
        ),
        (
            r#"{"recorded_at":"2025-01-01T00:00:00Z"}"#,
            "request: missing",
        ),
        (
            r#"{"recorded_at":"2025-01-01T00:00:00Z","request":{},"response_code":"abc"}"#,
            "response_code",
        ),
        (
            r#"{"recorded_at":"2025-01-01T00:00:00Z","request":{},"response_code":200,"response":{"messages":[{}]}}"#,
            "response.messages[0].id: missing wamid",
        ),
        (
            r#"{"recorded_at":"2025-01-01T00:00:00Z","request":{"type":"template"},"response_code":200}"#,
            "request.template: missing",
        ),
        (
            r#"{"recorded_at":"2025-01-01T00:00:00Z","name":["x"],"request":{}}"#,
            "name: expected a string, found an array",
        ),
    ];
    for (body, expected) in cases {
        let err = send_input(body.as_bytes().to_vec(), Source::SendApi, 0).expect_err(body);
        assert!(err.to_string().contains(expected), "{body}: got {err}");
    }
}

#[test]
fn every_send_result_field_has_one_type() {
    let cases: &[(&str, &str)] = &[
        (
            r#"{"recorded_at":"2025-01-01T00:00:00Z","request":{"to":{}}}"#,
            "request.to: expected a string of digits, found an object",
        ),
        (
            r#"{"recorded_at":"2025-01-01T00:00:00Z","request":{"to":5511.5}}"#,
            "request.to: expected a string of digits, found a number",
        ),
        (
            r#"{"recorded_at":"2025-01-01T00:00:00Z","request":{"type":5}}"#,
            "request.type: expected a string, found a number",
        ),
        (
            r#"{"recorded_at":"2025-01-01T00:00:00Z","request":{"type":"template","template":{"name":5}}}"#,
            "request.template.name: expected a string, found a number",
        ),
        (
            r#"{"recorded_at":"2025-01-01T00:00:00Z","request":{"type":"template","template":{"name":"x","language":{"code":1}}}}"#,
            "request.template.language.code: expected a string, found a number",
        ),
        (
            r#"{"recorded_at":12345,"request":{}}"#,
            "recorded_at: 12345000 ms after 1970 is outside 2009-2100",
        ),
        (
            r#"{"recorded_at":"1970-01-01T00:00:00Z","request":{}}"#,
            "recorded_at: 0 ms after 1970 is outside 2009-2100",
        ),
        (
            r#"{"recorded_at":"2025-01-01T00:00:00Z","category":7,"request":{}}"#,
            "category: expected a string, found a number",
        ),
        (
            r#"{"recorded_at":"2025-01-01T00:00:00Z","user":true,"request":{}}"#,
            "user: expected a string, found a boolean",
        ),
        (
            r#"{"recorded_at":"2025-01-01T00:00:00Z","phone_number_id":-1,"request":{}}"#,
            "phone_number_id: expected a string of digits, found a number",
        ),
    ];
    for (body, expected) in cases {
        let err = send_input(body.as_bytes().to_vec(), Source::SendApi, 0).expect_err(body);
        assert!(err.to_string().contains(expected), "{body}: got {err}");
    }
    // Digits may come as a number, as documented: a phone and a phone number id.
    let ok = br#"{"recorded_at":1740834003000,"phone_number_id":106540352242922,"request":{"to":5511987654321,"type":"text","text":{"body":"x"}}}"#;
    let Some(Event::Send(s)) = send_input(ok.to_vec(), Source::SendApi, 0)
        .expect("digits as numbers are accepted")
        .events
        .into_iter()
        .next()
    else {
        panic!("a send");
    };
    assert_eq!(s.phone.as_deref(), Some("5511987654321"));
    assert_eq!(s.phone_number_id.as_deref(), Some("106540352242922"));
    assert_eq!(s.recorded_ms, 1_740_834_003_000);
}

#[test]
fn a_body_that_is_not_json_is_a_json_error() {
    assert!(matches!(
        send_input(b"{not json".to_vec(), Source::SendApi, 0),
        Err(ParseError::Json(_))
    ));
}

#[test]
fn a_send_batch_reports_bad_items_by_index_and_keeps_exact_bytes() {
    let good = String::from_utf8(fixture("send_text_accepted.json"))
        .expect("utf8")
        .trim_end()
        .to_string();
    let body = format!("[{good}, {{\"recorded_at\": 5}}]");
    let items = send_batch(body.as_bytes(), Source::SendApi, 0).expect("array");
    assert_eq!(items.len(), 2);
    let first = items[0].as_ref().expect("first is good");
    assert_eq!(
        first.raw,
        good.as_bytes(),
        "raw bytes of an element are exact"
    );
    let err = items[1].as_ref().expect_err("second is bad");
    assert_eq!(err.field_path(), Some("[1].request"));
}

fn mutate(bytes: &[u8], seed: &[(usize, u8)]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for (pos, b) in seed {
        if out.is_empty() {
            break;
        }
        let p = pos % out.len();
        out[p] = *b;
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = line_input(bytes.clone(), Source::Import, 0);
        let _ = webhook_input(bytes.clone(), Source::Webhook, 0);
        let _ = send_batch(&bytes, Source::SendApi, 0);
    }

    #[test]
    fn mutated_real_payloads_never_panic(which in 0usize..32, edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let fixtures = all_fixtures();
        let (_, bytes) = &fixtures[which % fixtures.len()];
        let m = mutate(bytes, &edits);
        let _ = line_input(m.clone(), Source::Import, 0);
        let _ = webhook_input(m.clone(), Source::Webhook, 0);
        let _ = send_batch(&m, Source::SendApi, 0);
    }

    #[test]
    fn structurally_odd_json_never_panics(v in arb_json()) {
        let bytes = serde_json::to_vec(&v).expect("json");
        let _ = line_input(bytes.clone(), Source::Import, 0);
        let wrapped = serde_json::json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {"statuses": [v.clone()], "messages": [v.clone()], "errors": [v.clone()]}}]}]});
        let _ = webhook_input(serde_json::to_vec(&wrapped).expect("json"), Source::Webhook, 0);
        let send = serde_json::json!({"recorded_at": "2025-01-01T00:00:00Z", "request": {"type": "template", "template": v.clone(), "to": v.clone()}, "response_code": 200, "response": v});
        let _ = send_input(serde_json::to_vec(&send).expect("json"), Source::SendApi, 0);
    }
}

fn arb_json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(|n| serde_json::json!(n)),
        "[a-z0-9_ ]{0,12}".prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("id".to_string()),
                    Just("status".to_string()),
                    Just("timestamp".to_string()),
                    Just("components".to_string()),
                    Just("parameters".to_string()),
                    Just("type".to_string()),
                    Just("messages".to_string()),
                    "[a-z]{1,6}"
                ],
                inner,
                0..5
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn webhook_events(value: serde_json::Value) -> Vec<Event> {
    let body = serde_json::json!({"object": "whatsapp_business_account", "entry": [{"id": "1",
        "changes": [{"field": "messages", "value": value}]}]});
    webhook_input(serde_json::to_vec(&body).expect("json"), Source::Webhook, 0)
        .expect("parses")
        .events
}

#[test]
fn a_status_names_the_person_by_number_user_id_and_parent_in_both_spellings() {
    for parent_key in ["parent_recipient_user_id", "parent_user_id"] {
        let events = webhook_events(serde_json::json!({
            "statuses": [{"id": "wamid.S", "status": "delivered", "timestamp": "1777644100",
                          "recipient_user_id": "US.13491208655302741918",
                          parent_key: "US.ENT.11815799212886844830"}]
        }));
        match events.as_slice() {
            [Event::Status(st)] => {
                assert_eq!(st.recipient, None, "no number is made up");
                assert_eq!(st.user_id.as_deref(), Some("US.13491208655302741918"));
                assert_eq!(
                    st.parent_user_id.as_deref(),
                    Some("US.ENT.11815799212886844830"),
                    "{parent_key}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn an_inbound_message_takes_its_person_from_the_contact_that_names_it() {
    let events = webhook_events(serde_json::json!({
        "contacts": [
            {"profile": {"name": "Other"}, "wa_id": "15550001111"},
            {"profile": {"name": "Sam", "username": "@SamCooks"}, "user_id": "US.1349",
             "parent_user_id": "US.ENT.1181"}
        ],
        "messages": [{"from_user_id": "US.1349", "id": "wamid.M", "timestamp": "1777644200",
                      "type": "text", "text": {"body": "hi"}}]
    }));
    match events.as_slice() {
        [Event::Inbound(m)] => {
            assert_eq!(m.from, None);
            assert_eq!(m.user_id.as_deref(), Some("US.1349"));
            assert_eq!(m.parent_user_id.as_deref(), Some("US.ENT.1181"));
            assert_eq!(m.username.as_deref(), Some("samcooks"));
            assert_eq!(m.contact_name.as_deref(), Some("Sam"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn system_messages_say_which_identifiers_changed() {
    for (key, new_key) in [("wa_id", "wa_id"), ("new_wa_id", "new_wa_id")] {
        let events = webhook_events(serde_json::json!({
            "messages": [{"from": "16505551234", "id": "wamid.C", "timestamp": "1777650000",
                          "type": "system",
                          "system": {"body": "changed", key: "16505559999", "type": "user_changed_number"}}]
        }));
        match events.as_slice() {
            [Event::Inbound(m)] => {
                let change = m.identity_change.clone().expect("a change");
                let new = if new_key == "wa_id" {
                    change.wa_id
                } else {
                    change.new_wa_id
                };
                assert_eq!(new.as_deref(), Some("16505559999"));
                assert_eq!(m.from.as_deref(), Some("16505551234"));
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn a_send_to_a_user_id_keeps_it_as_the_user_id_not_a_phone() {
    let raw = serde_json::to_vec(&serde_json::json!({
        "recorded_at": "2026-05-01T10:00:00-04:00",
        "request": {"messaging_product": "whatsapp", "to": "US.13491208655302741918", "type": "text", "text": {"body": "hi"}},
        "response_code": 200,
        "response": {"contacts": [{"input": "US.13491208655302741918", "user_id": "US.13491208655302741918"}],
                     "messages": [{"id": "wamid.U"}]}
    }))
    .expect("json");
    let input = send_input(raw, Source::SendApi, 0).expect("parses");
    match input.events.as_slice() {
        [Event::Send(s)] => {
            assert_eq!(s.phone, None);
            assert_eq!(s.user_id.as_deref(), Some("US.13491208655302741918"));
        }
        other => panic!("{other:?}"),
    }
    let raw = serde_json::to_vec(&serde_json::json!({
        "recorded_at": "2026-05-01T10:00:00-03:00",
        "request": {"messaging_product": "whatsapp", "to": "+55 11 98139-0501", "type": "text", "text": {"body": "oi"}},
        "response_code": 200,
        "response": {"contacts": [{"input": "+55 11 98139-0501", "wa_id": "551181390501"}],
                     "messages": [{"id": "wamid.B"}]}
    }))
    .expect("json");
    let input = send_input(raw, Source::SendApi, 0).expect("parses");
    match input.events.as_slice() {
        [Event::Send(s)] => {
            assert_eq!(s.phone.as_deref(), Some("5511981390501"));
            assert_eq!(s.wa_id.as_deref(), Some("551181390501"));
        }
        other => panic!("{other:?}"),
    }
}
