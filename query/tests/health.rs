//! Template health on hand-written traffic: the opt-outs that followed a
//! template are the marketing stops whose person's last marketing message
//! before the stop was one of its messages; a stop after a stop (a send
//! refused with 131050 once the person had opted out) is no new opt-out.

use serde_json::{json, Value};
use std::io::BufReader;
use ticks_engine::Store;
use ticks_query::{report, LogQuery, ReportOptions};

const TO: &str = "5511981390501";
/// 2025-03-01T00:00:00Z.
const DAY0: i64 = 1_740_787_200;

fn send(wamid: &str, template: &str, category: &str, at: i64) -> Value {
    json!({
        "recorded_at": jiff::Timestamp::from_second(at).expect("time").to_string(),
        "category": category, "name": template,
        "request": {"messaging_product": "whatsapp", "to": TO, "type": "template",
                    "template": {"name": template, "language": {"code": "pt_BR"}}},
        "response_code": 200,
        "response": {"messaging_product": "whatsapp", "contacts": [{"input": TO, "wa_id": TO}],
                     "messages": [{"id": wamid}]}
    })
}

fn envelope(field: &str, value: Value) -> Value {
    json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": field, "value": value}]}]})
}

fn status(wamid: &str, status: &str, at: i64, pricing: &str, error: Option<i64>) -> Value {
    let mut st = json!({"id": wamid, "status": status, "timestamp": at.to_string(), "recipient_id": TO,
                        "pricing": {"billable": true, "pricing_model": "PMP", "category": pricing, "type": "regular"}});
    if let Some(code) = error {
        st["errors"] = json!([{"code": code, "title": "User stopped marketing messages"}]);
    }
    envelope(
        "messages",
        json!({"messaging_product": "whatsapp", "metadata": {"phone_number_id": "1"}, "statuses": [st]}),
    )
}

fn preference(value: &str, at: i64) -> Value {
    envelope(
        "user_preferences",
        json!({"messaging_product": "whatsapp", "metadata": {"phone_number_id": "1"},
               "contacts": [{"wa_id": TO, "profile": {"name": "Ana"}}],
               "user_preferences": [{"wa_id": TO, "detail": "User requested to stop marketing messages",
                                     "category": "marketing_messages", "value": value, "timestamp": at}]}),
    )
}

#[test]
fn opt_outs_follow_the_last_marketing_message_before_each_new_stop() {
    let h = |n: i64| DAY0 + n * 3600;
    let lines = [
        send("w.A", "promo_a", "marketing_campaign", h(1)),
        status("w.A", "delivered", h(1) + 60, "marketing", None),
        send("w.B", "aviso_b", "template_bot", h(2)),
        status("w.B", "delivered", h(2) + 60, "utility", None),
        // Stops after A (B is a utility message): A's opt-out.
        preference("stop", h(3)),
        // Sent anyway, refused with 131050: the same opt-out, not a new one.
        send("w.C", "promo_c", "marketing_campaign", h(4)),
        status("w.C", "failed", h(4) + 60, "marketing", Some(131_050)),
        // Resumes, gets D, then E is refused: D's opt-out.
        preference("resume", h(5)),
        send("w.D", "promo_d", "marketing_campaign", h(6)),
        status("w.D", "read", h(6) + 60, "marketing", None),
        send("w.E", "promo_a", "marketing_campaign", h(7)),
        status("w.E", "failed", h(7) + 60, "marketing", Some(131_050)),
    ];
    let mut data = Vec::new();
    for line in &lines {
        data.extend(serde_json::to_vec(line).expect("json"));
        data.push(b'\n');
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(ticks_engine::Config::new(dir.path())).expect("open");
    let imported = ticks_ingest::import(
        &store,
        BufReader::new(&data[..]),
        &ticks_ingest::ImportOptions::default(),
    )
    .expect("import");
    assert_eq!(imported.rejected, 0);
    let params = vec![("sections".to_string(), "templates".to_string())];
    let q = LogQuery::from_params(&params, &ticks_query::REPORT_PARAMS).expect("query");
    let options = ReportOptions::from_params(&params).expect("options");
    let r = report(&store, &q, &options).expect("report");
    let figures: Vec<(String, u64, u64, u64)> = r
        .templates
        .iter()
        .map(|t| (t.template.clone(), t.sent, t.failed, t.opt_outs))
        .collect();
    assert_eq!(
        figures,
        [
            ("promo_a".to_string(), 2, 1, 1),
            ("aviso_b".to_string(), 1, 0, 0),
            ("promo_c".to_string(), 1, 1, 0),
            ("promo_d".to_string(), 1, 0, 1),
        ]
    );
    let a = &r.templates[0];
    assert_eq!(a.language.as_deref(), Some("pt_BR"));
    assert_eq!(a.failure_reasons.len(), 1);
    // Filtered to one template, its opt-outs are still counted.
    let params = vec![
        ("sections".to_string(), "templates".to_string()),
        ("template".to_string(), "promo_d".to_string()),
    ];
    let q = LogQuery::from_params(&params, &ticks_query::REPORT_PARAMS).expect("query");
    let r = report(&store, &q, &options).expect("report");
    assert_eq!(r.templates.len(), 1);
    assert_eq!((r.templates[0].sent, r.templates[0].opt_outs), (1, 1));
    store.close().expect("close");
}
