//! What traffic cost: a rate card posted over HTTP or named in the
//! configuration prices the billable messages of `GET /v1/report?sections=cost`
//! by the person's country and the pricing category, at their send time;
//! another card answers "what would it have cost" (`rate_card=`), and the
//! country is a filter and a column.

use crate::support::*;
use serde_json::{json, Value};

const CARD: &str = "# Illustrative prices.
market,category,price,currency,valid_from
BR,marketing,0.0625,USD,2025-01-01
BR,marketing,0.0700,USD,2025-03-02
MX,marketing,0.0436,USD,2025-01-01
*,utility,0.0100,USD,2025-01-01
";

fn send(wamid: &str, to: &str, at: &str, campaign: &str) -> Value {
    json!({
        "recorded_at": at, "category": "marketing_campaign", "name": campaign,
        "phone_number_id": "106540352242922",
        "request": {"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": "Oferta"}},
        "response_code": 200,
        "response": {"messaging_product": "whatsapp",
                     "contacts": [{"input": to, "wa_id": to}], "messages": [{"id": wamid}]}
    })
}

fn priced(wamid: &str, to: &str, ts: i64, category: &str, kind: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{
        "field": "messages",
        "value": {"messaging_product": "whatsapp",
                  "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
                  "statuses": [{"id": wamid, "status": "delivered", "timestamp": ts.to_string(),
                                "recipient_id": to,
                                "pricing": {"billable": kind == "regular", "pricing_model": "PMP",
                                            "category": category, "type": kind}}]}}]}]}))
    .expect("json")
}

fn post_card(s: &Server, name: Option<&str>, text: &str) -> (u16, Value) {
    let path = match name {
        Some(n) => format!("/v1/rate-card?name={n}"),
        None => "/v1/rate-card".to_string(),
    };
    let r = s
        .client
        .post(s.url(&path))
        .header("content-type", "text/csv")
        .body(text.to_string())
        .send()
        .expect("request");
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

/// Two Brazilian marketing messages on either side of the card's price
/// change, a Mexican one, a free service reply and one Meta has not priced.
fn traffic(s: &Server) {
    let day1 = 1_740_913_200; // 2025-03-01T11:00:00Z
    let day2 = day1 + 86_400;
    for (wamid, to, at, ts, category, kind) in [
        (
            "wamid.BR1",
            "5511981390501",
            "2025-03-01T08:00:00-03:00",
            day1,
            "marketing",
            "regular",
        ),
        (
            "wamid.BR2",
            "5511981390502",
            "2025-03-02T08:00:00-03:00",
            day2,
            "marketing",
            "regular",
        ),
        (
            "wamid.MX1",
            "5215512345678",
            "2025-03-02T08:00:00-03:00",
            day2,
            "marketing",
            "regular",
        ),
        (
            "wamid.SV1",
            "5511981390503",
            "2025-03-02T09:00:00-03:00",
            day2,
            "service",
            "free_customer_service",
        ),
    ] {
        assert_eq!(
            s.post_json("/v1/sends", &send(wamid, to, at, "Março")).0,
            200
        );
        assert_eq!(
            s.post_webhook(&priced(wamid, to, ts, category, kind)).0,
            200
        );
    }
    let unpriced = send(
        "wamid.NP1",
        "5511981390504",
        "2025-03-02T10:00:00-03:00",
        "Março",
    );
    assert_eq!(s.post_json("/v1/sends", &unpriced).0, 200);
}

fn cost(s: &Server, query: &str) -> Value {
    let (code, v) = s.get_json(&format!("/v1/report?sections=cost&{query}"));
    assert_eq!(code, 200, "{v}");
    v["cost"].clone()
}

fn close(v: &Value, expected: f64) -> bool {
    v.as_f64().is_some_and(|x| (x - expected).abs() < 1e-9)
}

#[test]
fn a_posted_rate_card_prices_each_billable_message_by_country_and_date() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    traffic(&s);
    // Before any card: counted, not priced.
    let c = cost(&s, "");
    assert_eq!(c["rate_card"], Value::Null);
    assert_eq!(
        (
            &c["messages"],
            &c["billable"],
            &c["free"],
            &c["unknown"],
            &c["unpriced"]
        ),
        (&json!(5), &json!(3), &json!(1), &json!(1), &json!(3))
    );
    let (code, stored) = post_card(&s, None, CARD);
    assert_eq!(code, 200, "{stored}");
    assert_eq!(
        stored,
        json!({"name": "default", "currency": "USD", "rates": 4})
    );
    let c = cost(&s, "group=country");
    assert_eq!(c["currency"], "USD");
    assert!(close(&c["total"], 0.0625 + 0.0700 + 0.0436), "{c}");
    assert_eq!(c["unpriced"], 0);
    let br = c["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["key"] == "BR")
        .expect("Brazil");
    assert!(close(&br["cost"], 0.0625 + 0.0700), "{br}");
    assert_eq!(br["messages"], 4);
    assert_eq!(
        br["drill"],
        json!([["direction", "outbound"], ["country", "BR"]])
    );
    // One day at a time, in São Paulo's days.
    let c = cost(&s, "tz=America/Sao_Paulo&interval=day");
    let series: Vec<(String, f64)> = c["series"]
        .as_array()
        .expect("series")
        .iter()
        .map(|b| {
            (
                b["label"].as_str().unwrap_or("").to_string(),
                b["cost"].as_f64().unwrap_or(-1.0),
            )
        })
        .collect();
    assert_eq!(series.len(), 2);
    assert!(
        (series[0].1 - 0.0625).abs() < 1e-9 && (series[1].1 - 0.1136).abs() < 1e-9,
        "{series:?}"
    );
    // The country is a filter and a column.
    let (code, v) = s.get_json("/v1/logs?country=mx");
    assert_eq!(code, 200);
    assert_eq!(v["total"], 1);
    assert_eq!(v["entries"][0]["country"], "MX");
    assert_eq!(v["entries"][0]["billable"], true);
}

#[test]
fn another_card_answers_what_the_same_traffic_would_have_cost() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    traffic(&s);
    assert_eq!(post_card(&s, None, CARD).0, 200);
    let october = "market,category,price,currency,valid_from\n*,marketing,0.1,USD,2024-01-01\n";
    assert_eq!(post_card(&s, Some("october"), october).0, 200);
    assert!(close(&cost(&s, "rate_card=october")["total"], 0.3));
    assert!(close(&cost(&s, "")["total"], 0.1761));
    let (code, v) = s.get_json("/v1/rate-card");
    assert_eq!(code, 200);
    let names: Vec<&str> = v["rate_cards"]
        .as_array()
        .expect("cards")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["default", "october"]);
    let (code, v) = s.get_json("/v1/report?sections=cost&rate_card=november");
    assert_eq!(code, 400);
    assert_eq!(v["error"]["field"], "rate_card", "{v}");
}

#[test]
fn a_bad_card_is_refused_naming_its_line_and_field_and_the_stored_one_is_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    traffic(&s);
    assert_eq!(post_card(&s, None, CARD).0, 200);
    let (code, v) = post_card(
        &s,
        None,
        "market,category,price,currency,valid_from\nBR,marketing,cheap,USD,2025-01-01\n",
    );
    assert_eq!(code, 400);
    assert_eq!(v["error"]["field"], "price", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("line 2")),
        "{v}"
    );
    assert!(close(&cost(&s, "")["total"], 0.1761));
}

#[test]
fn a_card_named_in_the_configuration_prices_from_the_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let card = dir.path().join("rates.csv");
    std::fs::write(&card, CARD).expect("card");
    let config = dir.path().join("ticks.toml");
    std::fs::write(
        &config,
        format!("rate_card = {:?}\n", card.to_str().expect("path")),
    )
    .expect("config");
    let s = Server::start(dir.path(), &["--config", config.to_str().expect("path")]);
    traffic(&s);
    assert!(close(&cost(&s, "")["total"], 0.1761));
    // `ticks report` prices with a card file too.
    drop(s);
    let out = ticks(
        dir.path(),
        &[
            "report",
            "sections=cost",
            "--format",
            "json",
            &format!("rate_card={}", card.display()),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(close(&v["cost"]["total"], 0.1761), "{}", v["cost"]);
}
