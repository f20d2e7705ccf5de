//! People, not phone strings: the identifiers WhatsApp uses for one person
//! (a dialled number in any format, a `wa_id` that differs from it, a
//! business-scoped user id without any number, a username) joined when the
//! data says so, and found by `contact=`, `phone=`, `text=` and
//! `GET /v1/contacts/{X}`. Payloads are hand-written in Meta's documented
//! shapes (`shared/CLOUD_API.md`, section 5).

use crate::support::*;
use serde_json::{json, Value};

const PNID: &str = "106540352242922";

fn send(wamid: &str, to: &str, answered: Value, at: &str) -> Value {
    json!({
        "recorded_at": at, "category": "marketing_campaign", "name": "Black Friday",
        "phone_number_id": PNID,
        "request": {"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": format!("oferta {wamid}")}},
        "response_code": 200,
        "response": {"messaging_product": "whatsapp", "contacts": [answered], "messages": [{"id": wamid}]}
    })
}

fn webhook(value: Value) -> Vec<u8> {
    let mut value = value;
    value["messaging_product"] = json!("whatsapp");
    value["metadata"] = json!({"display_phone_number": "15550001111", "phone_number_id": PNID});
    serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": value}]}]
    }))
    .expect("json")
}

fn ids(s: &Server, query: &str) -> Vec<u64> {
    let (code, v) = s.get_json(&format!("/v1/logs?{query}&sort=id&limit=100"));
    assert_eq!(code, 200, "{query}: {v}");
    let mut ids: Vec<u64> = v["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["id"].as_u64().expect("id"))
        .collect();
    ids.sort_unstable();
    assert_eq!(v["total"].as_u64(), Some(ids.len() as u64), "{query}");
    ids
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A Brazilian customer: dialled with the ninth digit, answered with the
/// account's older number, replying from it.
#[test]
fn a_brazilian_number_and_its_wa_id_are_one_person() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    let answered = json!({"input": "+55 11 98139-0501", "wa_id": "551181390501"});
    let (code, v) = s.post_json(
        "/v1/sends",
        &send(
            "wamid.BR1",
            "+55 11 98139-0501",
            answered,
            "2026-05-01T10:00:00-03:00",
        ),
    );
    assert_eq!(code, 200, "{v}");
    // The reply quotes nothing and comes from the wa_id.
    let reply = webhook(json!({
        "contacts": [{"profile": {"name": "Ana"}, "wa_id": "551181390501"}],
        "messages": [{"from": "551181390501", "id": "wamid.BRR", "timestamp": "1777640500",
                      "type": "text", "text": {"body": "quero!"}}]
    }));
    assert_eq!(s.post_webhook(&reply).0, 200);
    // Another person whose number differs only by that digit is not joined.
    let other = webhook(json!({
        "contacts": [{"profile": {"name": "Outro"}, "wa_id": "551181390777"}],
        "messages": [{"from": "551181390777", "id": "wamid.OTHER", "timestamp": "1777640600",
                      "type": "text", "text": {"body": "oi"}}]
    }));
    assert_eq!(s.post_webhook(&other).0, 200);
    s.settle_text();

    let both = ids(&s, "direction=outbound,inbound&wamid=wamid.BR1,wamid.BRR");
    assert_eq!(both.len(), 2);
    for typed in ["+55 (11) 98139-0501", "5511981390501", "551181390501"] {
        assert_eq!(
            ids(&s, &format!("contact={}", enc(typed))),
            both,
            "contact={typed}"
        );
        assert_eq!(
            ids(&s, &format!("phone={}", enc(typed))),
            both,
            "phone={typed}"
        );
    }
    let (code, c) = s.get_json(&format!("/v1/contacts/{}", enc("+55 (11) 98139-0501")));
    assert_eq!(code, 200, "{c}");
    assert_eq!(
        c["identifiers"]["phones"],
        json!(["551181390501", "5511981390501"])
    );
    assert_eq!(c["identifiers"]["wa_ids"], json!(["551181390501"]));
    assert_eq!(c["name"], "Ana");
    assert_eq!(c["counts"], json!({"outbound": 1, "inbound": 1}));
    let (code, _) = s.get_json("/v1/contacts/5511999999999");
    assert_eq!(code, 404);
}

/// Mexico: dialled as 52 + ten digits, answered as 521 + ten digits.
#[test]
fn a_mexican_number_and_its_521_wa_id_are_one_person() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    let answered = json!({"input": "525512345678", "wa_id": "5215512345678"});
    assert_eq!(
        s.post_json(
            "/v1/sends",
            &send(
                "wamid.MX1",
                "525512345678",
                answered,
                "2026-05-01T10:00:00-06:00"
            )
        )
        .0,
        200
    );
    let status = webhook(json!({
        "statuses": [{"id": "wamid.MX1", "status": "delivered", "timestamp": "1777651300",
                      "recipient_id": "5215512345678"}]
    }));
    assert_eq!(s.post_webhook(&status).0, 200);
    let reply = webhook(json!({
        "contacts": [{"profile": {"name": "Luis"}, "wa_id": "5215512345678"}],
        "messages": [{"from": "5215512345678", "id": "wamid.MXR", "timestamp": "1777651400",
                      "type": "text", "text": {"body": "gracias"}}]
    }));
    assert_eq!(s.post_webhook(&reply).0, 200);
    assert_eq!(ids(&s, "contact=%2B52%2055%201234%205678").len(), 2);
    assert_eq!(ids(&s, "contact=5215512345678").len(), 2);
}

/// A person who hides their number: every event carries only their
/// business-scoped user id; the profile carries a username.
#[test]
fn a_person_known_only_by_user_id_and_username_is_found_by_either() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    let bsuid = "US.13491208655302741918";
    let answered = json!({"input": bsuid, "user_id": bsuid});
    let (code, v) = s.post_json(
        "/v1/sends",
        &send("wamid.U1", bsuid, answered, "2026-05-01T10:00:00-04:00"),
    );
    assert_eq!(code, 200, "{v}");
    let status = webhook(json!({
        "statuses": [{"id": "wamid.U1", "status": "delivered", "timestamp": "1777644100",
                      "recipient_user_id": bsuid, "parent_recipient_user_id": "US.ENT.11815799212886844830"}]
    }));
    assert_eq!(s.post_webhook(&status).0, 200);
    let reply = webhook(json!({
        "contacts": [{"profile": {"name": "Sam", "username": "@SamCooks"}, "user_id": bsuid}],
        "messages": [{"from_user_id": bsuid, "id": "wamid.UR", "timestamp": "1777644200",
                      "type": "text", "text": {"body": "yes please"}}]
    }));
    assert_eq!(s.post_webhook(&reply).0, 200);
    s.settle_text();

    let (_, v) = s.get_json("/v1/logs?wamid=wamid.UR");
    let e = &v["entries"][0];
    assert_eq!(e["phone"], Value::Null, "no number is made up");
    assert_eq!(e["user_id"], bsuid);
    assert_eq!(e["username"], "samcooks");
    assert_eq!(e["contact_name"], "Sam", "the profile name is kept");
    let (_, v) = s.get_json("/v1/logs?wamid=wamid.U1");
    assert_eq!(v["entries"][0]["user_id"], bsuid);
    assert_eq!(
        v["entries"][0]["parent_user_id"],
        "US.ENT.11815799212886844830"
    );
    assert_eq!(v["entries"][0]["status"], "delivered");

    for typed in [
        bsuid,
        "@samcooks",
        "@SamCooks",
        "US.ENT.11815799212886844830",
    ] {
        assert_eq!(
            ids(&s, &format!("contact={}", enc(typed))).len(),
            2,
            "{typed}"
        );
    }
    assert_eq!(
        ids(&s, &format!("text={}", enc(bsuid))).len(),
        2,
        "text= finds user ids"
    );
    assert_eq!(ids(&s, "text=samcooks").len(), 1, "text= finds usernames");
    let (code, c) = s.get_json("/v1/contacts/%40samcooks");
    assert_eq!(code, 200, "{c}");
    assert_eq!(
        c["identifiers"]["user_ids"],
        json!([bsuid, "US.ENT.11815799212886844830"])
    );
    assert_eq!(c["identifiers"]["usernames"], json!(["samcooks"]));
    assert_eq!(c["identifiers"]["phones"], json!([]));
}

/// `user_changed_number`: the old and the new number are one person from
/// then on, in both directions, and so are their earlier entries.
#[test]
fn a_number_change_joins_the_old_and_new_numbers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    let answered = json!({"input": "16505551234", "wa_id": "16505551234"});
    assert_eq!(
        s.post_json(
            "/v1/sends",
            &send(
                "wamid.N1",
                "16505551234",
                answered,
                "2026-05-01T10:00:00-07:00"
            )
        )
        .0,
        200
    );
    let later = webhook(json!({
        "contacts": [{"profile": {"name": "Kim"}, "wa_id": "16505559999"}],
        "messages": [{"from": "16505559999", "id": "wamid.N3", "timestamp": "1777660000",
                      "type": "text", "text": {"body": "new phone who dis"}}]
    }));
    assert_eq!(s.post_webhook(&later).0, 200);
    assert_eq!(ids(&s, "contact=16505551234").len(), 1, "not joined yet");
    let change = webhook(json!({
        "messages": [{"from": "16505551234", "id": "wamid.N2", "timestamp": "1777650000",
                      "type": "system",
                      "system": {"body": "Kim changed from 16505551234 to 16505559999",
                                 "new_wa_id": "16505559999", "type": "user_changed_number"}}]
    }));
    assert_eq!(s.post_webhook(&change).0, 200);
    let all = ids(&s, "contact=16505551234");
    assert_eq!(
        all.len(),
        3,
        "the send, the change and the message from the new number"
    );
    assert_eq!(ids(&s, "contact=16505559999"), all);
}

/// Redelivery and order: the same inputs in any order, some twice, give
/// the same contacts; and a purge of a person's entries forgets them.
#[test]
fn contacts_do_not_depend_on_order_and_a_purge_forgets_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    let reply = webhook(json!({
        "contacts": [{"profile": {"name": "Ana"}, "wa_id": "551181390501"}],
        "messages": [{"from": "551181390501", "id": "wamid.PR", "timestamp": "1777640500",
                      "type": "text", "text": {"body": "oi"}}]
    }));
    // The reply first, twice; then the send that joins the two numbers.
    assert_eq!(s.post_webhook(&reply).0, 200);
    assert_eq!(s.post_webhook(&reply).0, 200);
    let answered = json!({"input": "5511981390501", "wa_id": "551181390501"});
    assert_eq!(
        s.post_json(
            "/v1/sends",
            &send(
                "wamid.PS",
                "5511981390501",
                answered,
                "2026-05-01T09:00:00-03:00"
            )
        )
        .0,
        200
    );
    let (_, c) = s.get_json("/v1/contacts/5511981390501");
    assert_eq!(c["counts"], json!({"outbound": 1, "inbound": 1}));
    let (code, r) = s.post_json(
        "/v1/delete",
        &json!({"filter": "contact=551181390501", "force": true}),
    );
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["deleted"], 2);
    assert_eq!(s.get_json("/v1/contacts/5511981390501").0, 404);
    assert_eq!(s.get_json("/v1/contacts/551181390501").0, 404);
}

fn entry(s: &Server, wamid: &str) -> Value {
    let (_, v) = s.get_json(&format!("/v1/logs?wamid={wamid}"));
    v["entries"][0].clone()
}

/// A reply that quotes nothing answers the latest message the business
/// sent that person from that number before it, within the window; a send
/// logged after its reply re-attributes it; a quote always wins.
#[test]
fn unquoted_replies_are_attributed_to_the_latest_message_and_quoted_ones_to_their_quote() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    let answered = json!({"input": "5511981390501", "wa_id": "551181390501"});
    let first = send(
        "wamid.A1",
        "5511981390501",
        answered.clone(),
        "2026-05-01T10:00:00Z",
    );
    assert_eq!(s.post_json("/v1/sends", &first).0, 200);
    // 10:30 UTC, quoting nothing, from the older form of the number.
    let reply = webhook(json!({
        "contacts": [{"profile": {"name": "Ana"}, "wa_id": "551181390501"}],
        "messages": [{"from": "551181390501", "id": "wamid.AR", "timestamp": "1777631400",
                      "type": "text", "text": {"body": "quero"}}]
    }));
    assert_eq!(s.post_webhook(&reply).0, 200);
    let r = entry(&s, "wamid.AR");
    assert_eq!(r["attribution"], "inferred");
    assert_eq!(
        r["name"], "Black Friday",
        "the reply carries the campaign it answers"
    );
    let a1 = entry(&s, "wamid.A1")["id"].clone();
    assert_eq!(r["in_reply_to"], a1);

    // A second send at 10:20, logged late: the reply answers it now.
    let second = send(
        "wamid.A2",
        "5511981390501",
        answered.clone(),
        "2026-05-01T10:20:00Z",
    );
    assert_eq!(s.post_json("/v1/sends", &second).0, 200);
    let a2 = entry(&s, "wamid.A2")["id"].clone();
    assert_eq!(entry(&s, "wamid.AR")["in_reply_to"], a2);
    assert_eq!(entry(&s, "wamid.A1")["replies"], 0);
    assert_eq!(entry(&s, "wamid.A2")["replies"], 1);
    assert_eq!(ids(&s, "engagement=replied").len(), 1);

    // A quote wins over anything later.
    let quoted = webhook(json!({
        "contacts": [{"profile": {"name": "Ana"}, "wa_id": "551181390501"}],
        "messages": [{"from": "551181390501", "id": "wamid.AQ", "timestamp": "1777632000",
                      "context": {"id": "wamid.A1"}, "type": "text", "text": {"body": "e essa?"}}]
    }));
    assert_eq!(s.post_webhook(&quoted).0, 200);
    let q = entry(&s, "wamid.AQ");
    assert_eq!(q["attribution"], "quoted");
    assert_eq!(q["in_reply_to"], a1);
    assert_eq!(ids(&s, "attribution=inferred").len(), 1);
    assert_eq!(ids(&s, "attribution=quoted").len(), 1);

    // Two days later, nothing is inferred.
    let late = webhook(json!({
        "contacts": [{"profile": {"name": "Ana"}, "wa_id": "551181390501"}],
        "messages": [{"from": "551181390501", "id": "wamid.AL", "timestamp": "1777804800",
                      "type": "text", "text": {"body": "oi?"}}]
    }));
    assert_eq!(s.post_webhook(&late).0, 200);
    assert_eq!(entry(&s, "wamid.AL")["attribution"], Value::Null);
    assert_eq!(ids(&s, "attribution=none&direction=inbound").len(), 1);
}

#[test]
fn an_attribution_window_of_zero_infers_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("ticks.toml");
    std::fs::write(&config, "attribution_window_hours = 0\n").expect("config");
    let s = Server::start(dir.path(), &["--config", config.to_str().expect("path")]);
    let answered = json!({"input": "5511981390501", "wa_id": "5511981390501"});
    let first = send(
        "wamid.Z1",
        "5511981390501",
        answered,
        "2026-05-01T10:00:00Z",
    );
    assert_eq!(s.post_json("/v1/sends", &first).0, 200);
    let reply = webhook(json!({
        "messages": [{"from": "5511981390501", "id": "wamid.ZR", "timestamp": "1777631400",
                      "type": "text", "text": {"body": "ok"}}]
    }));
    assert_eq!(s.post_webhook(&reply).0, 200);
    assert_eq!(entry(&s, "wamid.ZR")["attribution"], Value::Null);
}

fn preference(wa_id: &str, value: &str, ts: i64) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "user_preferences", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550001111", "phone_number_id": PNID},
            "contacts": [{"profile": {"name": "Ana"}, "wa_id": wa_id}],
            "user_preferences": [{"wa_id": wa_id, "detail": "User requested it",
                                  "category": "marketing_messages", "value": value, "timestamp": ts}]
        }}]}]
    }))
    .expect("json")
}

/// Stop, a send refused with 131050, then resume: the person's state is
/// the latest of them, with every change in their history.
#[test]
fn an_opt_out_then_a_resume_set_the_persons_marketing_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    let answered = json!({"input": "5511981390501", "wa_id": "551181390501"});
    let first = send(
        "wamid.O1",
        "5511981390501",
        answered.clone(),
        "2026-05-01T10:00:00Z",
    );
    assert_eq!(s.post_json("/v1/sends", &first).0, 200);
    let other = send(
        "wamid.X1",
        "5521999990000",
        json!({"input": "5521999990000", "wa_id": "5521999990000"}),
        "2026-05-01T10:00:00Z",
    );
    assert_eq!(s.post_json("/v1/sends", &other).0, 200);

    // 11:00: stop, said of the account's own number (the wa_id).
    assert_eq!(
        s.post_webhook(&preference("551181390501", "stop", 1777633200))
            .0,
        200
    );
    assert_eq!(
        s.post_webhook(&preference("551181390501", "stop", 1777633200))
            .0,
        200
    );
    let person = ids(&s, "contact=5511981390501");
    assert_eq!(person.len(), 2, "the send and the preference, once");
    assert_eq!(ids(&s, "opted_out=true"), person);
    assert_eq!(ids(&s, "opted_out=false").len(), 1, "the other person");
    assert_eq!(ids(&s, "marketing=stop").len(), 1);
    let (_, c) = s.get_json("/v1/contacts/5511981390501");
    assert_eq!(c["marketing"]["opted_out"], true);

    // 12:00: a marketing send fails with 131050 (the same stop).
    let second = send(
        "wamid.O2",
        "5511981390501",
        answered,
        "2026-05-01T12:00:00Z",
    );
    assert_eq!(s.post_json("/v1/sends", &second).0, 200);
    // A message after the stop (no preference of its own) leaves them
    // opted out: their latest preference is still the stop.
    assert_eq!(ids(&s, "opted_out=true").len(), 3);
    let failed = webhook(json!({
        "statuses": [{"id": "wamid.O2", "status": "failed", "timestamp": "1777636900",
                      "recipient_id": "551181390501",
                      "errors": [{"code": 131050, "title": "User has stopped marketing messages"}]}]
    }));
    assert_eq!(s.post_webhook(&failed).0, 200);
    assert_eq!(ids(&s, "opted_out=true").len(), 3);

    // 13:00: resume.
    assert_eq!(
        s.post_webhook(&preference("551181390501", "resume", 1777640400))
            .0,
        200
    );
    assert_eq!(ids(&s, "opted_out=true").len(), 0);
    let (_, c) = s.get_json("/v1/contacts/%2B55%2011%2098139-0501");
    assert_eq!(c["marketing"]["opted_out"], false);
    let history: Vec<(&str, &str)> = c["marketing"]["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|h| {
            (
                h["value"].as_str().unwrap_or(""),
                h["source"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        history,
        [
            ("stop", "user_preferences"),
            ("stop", "error 131050"),
            ("resume", "user_preferences")
        ]
    );
    let (code, v) = s.get_json("/v1/logs?opted_out=maybe");
    assert_eq!(code, 400);
    assert_eq!(v["error"]["field"], "opted_out", "{v}");
}

/// The page's search box (`text=`) takes a person's identifier as typed and
/// finds their entries in both directions, as `contact=` does.
#[test]
fn free_text_that_is_an_identifier_finds_the_person() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    let answered = json!({"input": "+55 11 98139-0501", "wa_id": "551181390501"});
    assert_eq!(
        s.post_json(
            "/v1/sends",
            &send(
                "wamid.T1",
                "+55 11 98139-0501",
                answered,
                "2026-05-01T10:00:00-03:00"
            )
        )
        .0,
        200
    );
    let reply = webhook(json!({
        "contacts": [{"profile": {"name": "Ana", "username": "ana.s"}, "wa_id": "551181390501"}],
        "messages": [{"from": "551181390501", "id": "wamid.TR", "timestamp": "1777640500",
                      "type": "text", "text": {"body": "oi"}}]
    }));
    assert_eq!(s.post_webhook(&reply).0, 200);
    s.settle_text();
    for typed in ["+55 (11) 98139-0501", "5511981390501", "@ana.s"] {
        assert_eq!(ids(&s, &format!("text={}", enc(typed))).len(), 2, "{typed}");
    }
}

/// An identifier of a shape Ticks does not know is kept as it came, and a
/// search for it as written finds it.
#[test]
fn an_identifier_of_an_unknown_shape_is_kept_verbatim_and_found() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    let odd = "ZZ-legacy:4711";
    let msg = webhook(json!({
        "contacts": [{"profile": {"name": "Legacy"}, "wa_id": odd}],
        "messages": [{"from": odd, "id": "wamid.ODD", "timestamp": "1777640500",
                      "type": "text", "text": {"body": "hello"}}]
    }));
    let (code, v) = s.post_webhook(&msg);
    assert_eq!(code, 200, "never rejected: {v}");
    s.settle_text();
    let (_, v) = s.get_json("/v1/logs?wamid=wamid.ODD");
    assert_eq!(v["entries"][0]["phone"], odd, "kept as it came");
    assert_eq!(ids(&s, &format!("contact={}", enc(odd))).len(), 1);
    assert_eq!(ids(&s, &format!("phone={}", enc(odd))).len(), 1);
    assert_eq!(s.get_json(&format!("/v1/contacts/{}", enc(odd))).0, 200);
}

/// The 24-hour customer-service window is the person's: a message from the
/// `wa_id` opens it for a send dialled with the ninth digit, and one from a
/// user id opens it for a send addressed to that user id.
#[test]
fn the_24_hour_window_belongs_to_the_person_whatever_identifier_was_dialled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    let bsuid = "US.13491208655302741918";
    let inbound = webhook(json!({
        "contacts": [{"profile": {"name": "Ana"}, "wa_id": "551181390501"},
                     {"profile": {"name": "Sam"}, "user_id": bsuid}],
        "messages": [{"from": "551181390501", "id": "wamid.W1", "timestamp": "1777640500",
                      "type": "text", "text": {"body": "oi"}},
                     {"from_user_id": bsuid, "id": "wamid.W2", "timestamp": "1777640500",
                      "type": "text", "text": {"body": "hi"}}]
    }));
    assert_eq!(s.post_webhook(&inbound).0, 200);
    for (wamid, to, answered) in [
        (
            "wamid.WS1",
            "+55 11 98139-0501",
            json!({"input": "+55 11 98139-0501", "wa_id": "551181390501"}),
        ),
        (
            "wamid.WS2",
            bsuid,
            json!({"input": bsuid, "user_id": bsuid}),
        ),
        // Another customer, who wrote nothing: closed.
        (
            "wamid.WS3",
            "5511981390777",
            json!({"input": "5511981390777", "wa_id": "5511981390777"}),
        ),
    ] {
        let body = send(wamid, to, answered, "2026-05-01T11:00:00-03:00");
        assert_eq!(s.post_json("/v1/sends", &body).0, 200);
    }
    for (wamid, session) in [
        ("wamid.WS1", "open"),
        ("wamid.WS2", "open"),
        ("wamid.WS3", "closed"),
    ] {
        assert_eq!(entry(&s, wamid)["session"], session, "{wamid}");
    }
}
