//! Today's webhooks, typed (`shared/CLOUD_API.md`, section 5): per-message
//! pricing merged from whichever statuses carry it, and account and
//! template events as entries of their own, each once however often Meta
//! delivers it, found by `event=`.

use crate::support::*;
use serde_json::{json, Value};

fn change(field: &str, value: Value, time: i64) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "time": time, "changes": [{"field": field, "value": value}]}]
    }))
    .expect("json")
}

fn status(wamid: &str, status: &str, ts: &str, pricing: Option<Value>) -> Vec<u8> {
    let mut st =
        json!({"id": wamid, "status": status, "timestamp": ts, "recipient_id": "5511987654321"});
    if let Some(p) = pricing {
        st["pricing"] = p;
    }
    change(
        "messages",
        json!({"messaging_product": "whatsapp",
               "metadata": {"display_phone_number": "15550001111", "phone_number_id": "106540352242922"},
               "statuses": [st]}),
        0,
    )
}

#[test]
fn pricing_is_merged_per_message_from_the_statuses_that_carry_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    assert_eq!(
        s.post_json("/v1/sends", &send_result("wamid.P1", "Promo"))
            .0,
        200
    );
    // v24: no `conversation`; pricing on `sent` and on `read`, not on `delivered`.
    let sent = json!({"billable": true, "pricing_model": "PMP", "type": "free_entry_point", "category": "marketing_lite"});
    assert_eq!(
        s.post_webhook(&status("wamid.P1", "sent", "1740834005", Some(sent)))
            .0,
        200
    );
    assert_eq!(
        s.post_webhook(&status("wamid.P1", "delivered", "1740834006", None))
            .0,
        200
    );
    let read = json!({"pricing_model": "PMP", "category": "marketing_lite"});
    assert_eq!(
        s.post_webhook(&status("wamid.P1", "read", "1740834100", Some(read)))
            .0,
        200
    );
    let (_, v) = s.get_json("/v1/logs?wamid=wamid.P1");
    let e = &v["entries"][0];
    assert_eq!(e["status"], "read");
    assert_eq!(e["pricing_type"], "free_entry_point");
    assert_eq!(e["pricing_category"], "marketing_lite");
    assert_eq!(e["conversation_type"], Value::Null);
    let (_, v) =
        s.get_json("/v1/logs?pricing_type=free_entry_point&pricing_category=marketing_lite");
    assert_eq!(v["total"], 1);
    let (_, v) = s.get_json("/v1/logs?pricing_type=regular");
    assert_eq!(v["total"], 0);
}

#[test]
fn account_and_template_events_are_entries_once_each_with_their_own_time_and_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    let t = 1_777_000_000;
    let events = [
        (
            "message_template_status_update",
            json!({"event": "APPROVED", "message_template_id": 594425479261596i64,
            "message_template_name": "boleto_vencendo", "message_template_language": "pt_BR", "reason": "NONE"}),
        ),
        (
            "template_category_update",
            json!({"message_template_id": 594425479261596i64,
            "message_template_name": "boleto_vencendo", "message_template_language": "pt_BR",
            "previous_category": "UTILITY", "new_category": "MARKETING"}),
        ),
        (
            "message_template_quality_update",
            json!({"previous_quality_score": "GREEN", "new_quality_score": "YELLOW",
            "message_template_id": 594425479261596i64, "message_template_name": "boleto_vencendo",
            "message_template_language": "pt_BR"}),
        ),
        (
            "account_update",
            json!({"event": "VOLUME_BASED_PRICING_TIER_UPDATE", "phone_number": "15550001111"}),
        ),
        (
            "business_capability_update",
            json!({"max_daily_conversation_per_phone": 1000,
            "whatsapp_business_manager_messaging_limit": "TIER_10K"}),
        ),
        (
            "phone_number_quality_update",
            json!({"display_phone_number": "15550001111",
            "event": "DOWNGRADE", "current_limit": "TIER_1K"}),
        ),
        (
            "user_preferences",
            json!({"messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550001111", "phone_number_id": "106540352242922"},
            "contacts": [{"profile": {"name": "Ana"}, "wa_id": "5511987654321"}],
            "user_preferences": [{"wa_id": "5511987654321", "detail": "User requested to stop marketing messages",
                                  "category": "marketing_messages", "value": "stop", "timestamp": t + 50}]}),
        ),
    ];
    for (k, (field, value)) in events.iter().enumerate() {
        let body = change(field, value.clone(), t + k as i64);
        // Meta redelivers: every event twice.
        assert_eq!(s.post_webhook(&body).0, 200);
        assert_eq!(s.post_webhook(&body).0, 200);
    }
    s.settle_text();
    let (_, v) = s.get_json("/v1/logs?direction=event&limit=100");
    assert_eq!(v["total"], events.len(), "{v}");
    for (k, (field, _)) in events.iter().enumerate() {
        let (_, v) = s.get_json(&format!("/v1/logs?event={field}"));
        assert_eq!(v["total"], 1, "{field}");
        let e = &v["entries"][0];
        assert_eq!(e["direction"], "event");
        let own_ms = 1000
            * if *field == "user_preferences" {
                t + 50
            } else {
                t + k as i64
            };
        let (_, at) = s.get_json(&format!(
            "/v1/logs?event={field}&from={own_ms}&to={}",
            own_ms + 1000
        ));
        assert_eq!(at["total"], 1, "{field} keeps the event's own time: {e}");
    }
    let (_, v) = s.get_json("/v1/logs?event=template_category_update");
    let e = &v["entries"][0];
    assert_eq!(e["template"], "boleto_vencendo");
    assert_eq!(e["template_language"], "pt_BR");
    assert!(
        e["text"]
            .as_str()
            .is_some_and(|t| t.contains("UTILITY -> MARKETING")),
        "{e}"
    );
    assert_eq!(e["event_from"], "UTILITY");
    assert_eq!(e["event_to"], "MARKETING");
    // Each event's key values as columns: before, after, the reason.
    for (field, from, to, reason) in [
        (
            "message_template_status_update",
            Value::Null,
            "APPROVED",
            json!("NONE"),
        ),
        (
            "message_template_quality_update",
            json!("GREEN"),
            "YELLOW",
            Value::Null,
        ),
        (
            "account_update",
            Value::Null,
            "VOLUME_BASED_PRICING_TIER_UPDATE",
            Value::Null,
        ),
        (
            "business_capability_update",
            Value::Null,
            "TIER_10K",
            Value::Null,
        ),
        (
            "phone_number_quality_update",
            Value::Null,
            "TIER_1K",
            Value::Null,
        ),
    ] {
        let (_, v) = s.get_json(&format!("/v1/logs?event={field}"));
        let e = &v["entries"][0];
        assert_eq!(e["event_from"], from, "{field}: {e}");
        assert_eq!(e["event_to"], to, "{field}: {e}");
        assert_eq!(e["event_reason"], reason, "{field}: {e}");
    }
    let (_, v) = s.get_json("/v1/logs?text=YELLOW");
    assert_eq!(v["total"], 1, "new values are searchable");
    let (_, v) =
        s.get_json("/v1/logs?template=boleto_vencendo&template_language=pt_BR&direction=event");
    assert_eq!(v["total"], 3);
    // `event=` takes event entries only: no send has a webhook field as
    // its category.
    let (_, v) = s.get_json("/v1/logs?event=marketing_campaign");
    assert_eq!(v["total"], 0);
}

fn link_click(named: Option<&str>, click_id: &str, ts: i64) -> Vec<u8> {
    let mut action = json!({"action_type": "marketing_messages_link_click", "timestamp": ts,
        "marketing_messages_link_click_data": {"click_component": "cta", "click_id": click_id,
                                               "tracking_token": format!("tok-{click_id}")}});
    if let Some(w) = named {
        action["message_id"] = json!(w);
    }
    change(
        "messages",
        json!({"messaging_product": "whatsapp",
               "metadata": {"display_phone_number": "15550001111", "phone_number_id": "106540352242922"},
               "contacts": [{"profile": {"name": "Ana"}, "wa_id": "5511987654321"}],
               "user_actions": [action]}),
        0,
    )
}

#[test]
fn a_link_click_counts_on_the_message_it_names_and_one_naming_none_stays_unlinked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    assert_eq!(
        s.post_json("/v1/sends", &send_result("wamid.L1", "Promo"))
            .0,
        200
    );
    let click = link_click(Some("wamid.L1"), "c-1", 1740834200);
    assert_eq!(s.post_webhook(&click).0, 200);
    assert_eq!(s.post_webhook(&click).0, 200, "redelivered");
    let unnamed = link_click(None, "c-2", 1740834300);
    assert_eq!(s.post_webhook(&unnamed).0, 200);
    s.settle_text();

    let (_, v) = s.get_json("/v1/logs?wamid=wamid.L1");
    let message = &v["entries"][0];
    assert_eq!(message["clicks"], 1);
    assert_eq!(message["replies"], 0);
    let (_, v) = s.get_json("/v1/logs?engagement=clicked");
    assert_eq!(v["total"], 1);
    let (_, v) = s.get_json("/v1/logs?content_type=link_click&sort=id");
    assert_eq!(v["total"], 2, "each click once");
    assert_eq!(v["entries"][0]["attribution"], "quoted");
    assert_eq!(
        v["entries"][0]["name"], "Promo",
        "the click carries the campaign"
    );
    assert_eq!(
        v["entries"][1]["attribution"],
        Value::Null,
        "never inferred"
    );
    let (_, v) = s.get_json("/v1/logs?text=tok-c-2");
    assert_eq!(v["total"], 1, "found by its tracking token");
    let (_, t) = s.get_json("/v1/messages/wamid.L1");
    assert!(
        t["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|i| i["kind"] == "click"),
        "{t}"
    );
}

#[test]
fn coexistence_echoes_and_history_are_entries_with_their_source() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    assert_eq!(
        s.post_json("/v1/sends", &send_result("wamid.API1", "Promo"))
            .0,
        200
    );
    let meta = json!({"display_phone_number": "15550001111", "phone_number_id": "106540352242922"});
    let echo = change(
        "smb_message_echoes",
        json!({"messaging_product": "whatsapp", "metadata": meta,
               "message_echoes": [{"from": "15550001111", "to": "5511987654321", "id": "wamid.ECHO1",
                                   "timestamp": "1740834500", "type": "text",
                                   "text": {"body": "Oi Ana, respondi pelo app"}}]}),
        0,
    );
    assert_eq!(s.post_webhook(&echo).0, 200);
    assert_eq!(s.post_webhook(&echo).0, 200);
    let history = change(
        "history",
        json!({"messaging_product": "whatsapp", "metadata": meta,
        "history": [{"metadata": {"phase": 0, "chunk_order": 1, "progress": 100},
          "threads": [{"id": "5511987654321", "messages": [
             {"from": "5511987654321", "id": "wamid.H1", "timestamp": "1730000000",
              "type": "text", "text": {"body": "tem em azul?"}, "history_context": {"status": "READ"}},
             {"from": "15550001111", "id": "wamid.H2", "timestamp": "1730000100",
              "type": "text", "text": {"body": "tem sim"}, "history_context": {"status": "READ"}},
             // Already logged through the API: still one entry.
             {"from": "15550001111", "id": "wamid.API1", "timestamp": "1740834003",
              "type": "text", "text": {"body": "hello"}, "history_context": {"status": "DELIVERED"}}
          ]}]}]}),
        0,
    );
    assert_eq!(s.post_webhook(&history).0, 200);
    s.settle_text();

    let (_, v) = s.get_json("/v1/logs?source=app");
    assert_eq!(v["total"], 1, "{v}");
    let e = &v["entries"][0];
    assert_eq!(e["direction"], "outbound");
    assert_eq!(e["phone"], "5511987654321");
    assert_eq!(e["wamid"], "wamid.ECHO1");
    assert_eq!(e["pricing_category"], Value::Null, "not billed");
    let (_, v) = s.get_json("/v1/logs?source=history&sort=id");
    assert_eq!(v["total"], 2, "{v}");
    assert_eq!(v["entries"][0]["direction"], "inbound");
    assert_eq!(v["entries"][1]["direction"], "outbound");
    assert_eq!(v["entries"][1]["status"], "read");
    let (_, v) = s.get_json("/v1/logs?source=api");
    assert_eq!(v["total"], 1, "the API send, once");
    let (_, v) = s.get_json("/v1/logs?text=azul");
    assert_eq!(v["total"], 1, "history is searchable");
    let (_, v) = s.get_json("/v1/logs?contact=5511987654321");
    assert_eq!(v["total"], 4, "one person across API, app and history");
}

/// A template send whose URL button carries a tracking token in its
/// dynamic suffix.
fn send_with_tracked_url(wamid: &str, token: &str) -> Value {
    json!({
        "recorded_at": "2025-03-01T10:00:03-03:00", "category": "marketing_campaign", "name": "Ofertas",
        "phone_number_id": "106540352242922",
        "request": {"messaging_product": "whatsapp", "to": "5511987654321", "type": "template",
                    "template": {"name": "oferta_link", "language": {"code": "pt_BR"},
                                 "components": [{"type": "button", "sub_type": "url", "index": "0",
                                                 "parameters": [{"type": "text", "text": format!("p/48213?tt={token}")}]}]}},
        "response_code": 200,
        "response": {"messaging_product": "whatsapp",
                     "contacts": [{"input": "5511987654321", "wa_id": "5511987654321"}],
                     "messages": [{"id": wamid}]}
    })
}

#[test]
fn a_link_click_naming_no_wamid_counts_on_the_send_whose_url_carried_its_token_in_any_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    // Send first, then its click; and a click first, then its send.
    assert_eq!(
        s.post_json("/v1/sends", &send_with_tracked_url("wamid.T1", "tok-c-7"))
            .0,
        200
    );
    assert_eq!(s.post_webhook(&link_click(None, "c-7", 1740834200)).0, 200);
    assert_eq!(s.post_webhook(&link_click(None, "c-8", 1740834300)).0, 200);
    assert_eq!(
        s.post_json("/v1/sends", &send_with_tracked_url("wamid.T2", "tok-c-8"))
            .0,
        200
    );
    // A click whose token no send carried stays unlinked.
    assert_eq!(s.post_webhook(&link_click(None, "c-9", 1740834400)).0, 200);
    for wamid in ["wamid.T1", "wamid.T2"] {
        let (_, v) = s.get_json(&format!("/v1/logs?wamid={wamid}"));
        assert_eq!(v["entries"][0]["clicks"], 1, "{wamid}: {v}");
    }
    let (_, v) = s.get_json("/v1/logs?content_type=link_click&sort=id");
    assert_eq!(v["total"], 3);
    assert_eq!(
        v["entries"][0]["name"], "Ofertas",
        "the click carries the campaign"
    );
    assert_eq!(v["entries"][1]["name"], "Ofertas");
    assert_eq!(v["entries"][2]["in_reply_to"], Value::Null);
    assert_eq!(v["entries"][2]["attribution"], Value::Null);
}

#[test]
fn a_group_send_is_found_by_recipient_type_group_and_its_participant_status_is_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    let send = json!({
        "recorded_at": "2026-05-01T10:00:00-03:00", "phone_number_id": "106540352242922",
        "request": {"messaging_product": "whatsapp", "recipient_type": "group", "to": "120363042345678901",
                    "type": "text", "text": {"body": "Reunião às 15h"}},
        "response_code": 200,
        "response": {"messaging_product": "whatsapp", "messages": [{"id": "wamid.G1"}]}
    });
    assert_eq!(s.post_json("/v1/sends", &send).0, 200);
    let status = change(
        "messages",
        json!({"messaging_product": "whatsapp",
               "metadata": {"display_phone_number": "15550001111", "phone_number_id": "106540352242922"},
               "statuses": [{"id": "wamid.G1", "status": "read", "timestamp": "1777640500",
                             "recipient_id": "120363042345678901", "recipient_type": "group",
                             "recipient_participant_id": "5511987654321",
                             "pricing": {"type": "free_group_customer_service", "category": "group_service"}}]}),
        0,
    );
    assert_eq!(s.post_webhook(&status).0, 200);
    // A second member reads it in the same second: a status of its own.
    let second = String::from_utf8(status.clone())
        .expect("utf-8")
        .replace("5511987654321", "5521976543210");
    assert_eq!(s.post_webhook(second.as_bytes()).0, 200);
    assert_eq!(s.post_webhook(second.as_bytes()).0, 200, "redelivered");
    let (_, v) = s.get_json("/v1/logs?recipient_type=group");
    assert_eq!(v["total"], 1);
    let e = &v["entries"][0];
    assert_eq!(e["status"], "read");
    assert_eq!(e["pricing_type"], "free_group_customer_service");
    assert_eq!(e["pricing_category"], "group_service");
    let id = e["id"].as_u64().expect("id");
    let (_, d) = s.get_json(&format!("/v1/logs/{id}"));
    assert!(
        d.to_string().contains("recipient_participant_id"),
        "the participant stays in the stored webhook"
    );
    let (_, t) = s.get_json("/v1/messages/wamid.G1");
    let mut members: Vec<String> = t["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|i| i["kind"] == "status")
        .map(|i| format!("{} {}", i["status"], i["participant"]))
        .collect();
    members.sort();
    assert_eq!(
        members,
        ["\"read\" \"5511987654321\"", "\"read\" \"5521976543210\""],
        "one step per member, each named: {t}"
    );
}

#[test]
fn a_coexistence_contact_sync_names_the_person_in_the_businesss_address_book() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    let sync = change(
        "smb_app_state_sync",
        json!({"messaging_product": "whatsapp",
               "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
               "state_sync": [{"type": "contact", "action": "add",
                               "contact": {"full_name": "Pablo Morales", "first_name": "Pablo", "phone_number": "16505551234"},
                               "metadata": {"timestamp": "1739321024"}}]}),
        0,
    );
    assert_eq!(s.post_webhook(&sync).0, 200);
    assert_eq!(s.post_webhook(&sync).0, 200, "redelivered");
    let message = change(
        "messages",
        json!({"messaging_product": "whatsapp",
               "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
               "messages": [{"from": "16505551234", "id": "wamid.S1", "timestamp": "1739321100",
                             "type": "text", "text": {"body": "hola"}}]}),
        0,
    );
    assert_eq!(s.post_webhook(&message).0, 200);
    let (_, v) = s.get_json("/v1/logs?event=smb_app_state_sync");
    assert_eq!(v["total"], 1, "once");
    assert_eq!(v["entries"][0]["contact_name"], "Pablo Morales");
    let (_, v) = s.get_json("/v1/logs?contact=16505551234");
    assert_eq!(v["total"], 2, "the sync and the message are one person's");
    let (code, c) = s.get_json("/v1/contacts/16505551234");
    assert_eq!(code, 200);
    assert_eq!(c["counts"], json!({"outbound": 0, "inbound": 1}));
    assert_eq!(c["name"], "Pablo Morales");
}
