//! The JSON API: ingest, the log table, detail, timeline, stats, deletes.

use crate::support::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn all_entries(s: &Server, query: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/logs?limit=1000&{query}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, v) = s.get_json(&path);
        assert_eq!(status, 200, "{path}: {v}");
        out.extend(v["entries"].as_array().cloned().unwrap_or_default());
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[test]
fn send_results_are_stored_and_a_bad_item_is_reported_by_index() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    let body = json!([send_result("wamid.A1", "Promo"), {"recorded_at": "nope", "request": {}}, send_result("wamid.A1", "Promo")]);
    let (status, v) = s.post_json("/v1/sends", &body);
    assert_eq!(status, 200);
    assert_eq!(
        (
            v["stored"].as_u64(),
            v["duplicates"].as_u64(),
            v["rejected"].as_u64()
        ),
        (Some(1), Some(1), Some(1))
    );
    assert_eq!(v["items"][1]["field"], "[1].recorded_at");
    assert_eq!(v["items"][2]["result"], "duplicate");
    let (status, v) = s.post_json("/v1/sends", &json!({"request": {}}));
    assert_eq!(status, 400, "all rejected: {v}");
}

#[test]
fn import_counts_stored_duplicate_and_rejected_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    let mut data = generated(50, 3);
    data.extend_from_slice(b"{broken\n");
    let r = s
        .client
        .post(s.url("/v1/import"))
        .body(data.clone())
        .send()
        .expect("post");
    assert_eq!(r.status(), 200);
    let v: Value = r.json().expect("json");
    assert_eq!(v["rejected"], 1);
    assert!(v["stored"].as_u64().unwrap_or(0) > 100);
    assert_eq!(
        v["rejections"][0]["line"],
        data.iter().filter(|b| **b == b'\n').count()
    );
    let again: Value = s
        .client
        .post(s.url("/v1/import"))
        .body(data)
        .send()
        .expect("post")
        .json()
        .expect("json");
    assert_eq!(again["stored"], 0, "the same file twice changes nothing");
}

/// Every filter of GET /v1/logs, with a value from the data, alone, negated,
/// and OR-ed, agrees with a filter over the full listing.
#[test]
fn every_filter_of_the_log_table_selects_exactly_the_matching_entries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    let r = s
        .client
        .post(s.url("/v1/import"))
        .body(generated(400, 5))
        .send()
        .expect("post");
    assert_eq!(r.status(), 200);
    s.settle_text();
    let all = all_entries(&s, "");
    assert!(all.len() > 400);
    let field_of = |param: &str| {
        match param {
            "template" => "template",
            "session" => "session",
            other => other,
        }
        .to_string()
    };
    let params = [
        "category",
        "response_code",
        "recipient_type",
        "status",
        "name",
        "template",
        "error_code",
        "direction",
        "content_type",
        "phone_number_id",
        "subaccount",
        "user",
        "correlation_id",
        "conversation_type",
        "session",
        "phone",
        "wamid",
    ];
    for param in params {
        let field = field_of(param);
        let mut values: BTreeMap<String, usize> = BTreeMap::new();
        for e in &all {
            if let Some(v) = scalar(&e[&field]) {
                *values.entry(v).or_default() += 1;
            }
        }
        assert!(!values.is_empty(), "the data has values for {param}");
        let picked: Vec<&String> = values.keys().take(2).collect();
        let one = picked[0];
        let expected = all
            .iter()
            .filter(|e| scalar(&e[&field]).as_ref() == Some(one))
            .count();
        let (status, v) = s.get_json(&format!("/v1/logs?{param}={}&limit=1000", enc(one)));
        assert_eq!(status, 200, "{param}: {v}");
        assert_eq!(v["total"].as_u64(), Some(expected as u64), "{param}={one}");
        for e in v["entries"].as_array().expect("entries") {
            assert_eq!(scalar(&e[&field]).as_ref(), Some(one), "{param}={one}");
        }
        if picked.len() == 2 {
            let two = picked[1];
            let both = all
                .iter()
                .filter(|e| {
                    let x = scalar(&e[&field]);
                    x.as_ref() == Some(one) || x.as_ref() == Some(two)
                })
                .count();
            let (_, v) = s.get_json(&format!(
                "/v1/logs?{param}={}&{param}={}",
                enc(one),
                enc(two)
            ));
            assert_eq!(
                v["total"].as_u64(),
                Some(both as u64),
                "{param}={one} OR {two}"
            );
        }
        if ["status", "response_code", "category"].contains(&param) {
            let (_, v) = s.get_json(&format!("/v1/logs?-{param}={}", enc(one)));
            let not = all
                .iter()
                .filter(|e| scalar(&e[&field]).as_ref() != Some(one))
                .count();
            assert_eq!(v["total"].as_u64(), Some(not as u64), "NOT {param}={one}");
        }
    }
    // A date range in a time zone.
    let (_, v) = s.get_json("/v1/logs?from=2025-01-10&to=2025-01-12&tz=America/Sao_Paulo");
    let from = 1_736_478_000_000i64; // 2025-01-10T03:00Z
    let to = from + 3 * 86_400_000;
    let expected = all
        .iter()
        .filter(|e| {
            let t = e["recorded_ms"].as_i64().unwrap_or(0);
            t >= from && t < to
        })
        .count();
    assert_eq!(v["total"].as_u64(), Some(expected as u64));
    // Free text.
    let (_, v) = s.get_json("/v1/logs?text=quero");
    assert!(v["total"].as_u64().unwrap_or(0) > 0);
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[test]
fn the_detail_view_has_the_raw_payloads_params_and_timeline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    let send: Value =
        serde_json::from_slice(&fixture("send_template_accepted.json")).expect("json");
    let (_, v) = s.post_json("/v1/sends", &send);
    let id = v["items"][0]["id"].as_u64().expect("id");
    for f in [
        "webhook_status_sent.json",
        "webhook_status_delivered.json",
        "webhook_status_read.json",
        "webhook_inbound_button.json",
    ] {
        assert_eq!(s.post_webhook(&fixture(f)).0, 200);
    }
    let (status, d) = s.get_json(&format!("/v1/logs/{id}"));
    assert_eq!(status, 200);
    assert_eq!(d["entry"]["status"], "read");
    assert_eq!(
        d["entry"]["recorded_at"], "2025-03-01T10:00:03.000-03:00",
        "with its original offset"
    );
    assert_eq!(d["entry"]["clicks"], 1);
    assert_eq!(d["request"]["template"]["name"], "promo_black_friday");
    assert_eq!(d["response"]["messages"][0]["message_status"], "accepted");
    assert_eq!(d["template_params"][1]["name"], "customer_name");
    assert_eq!(d["template_params"][1]["value"], "Maria");
    let kinds: Vec<String> = d["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .map(|i| i["kind"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(kinds, vec!["send", "status", "status", "status", "click"]);
    assert_eq!(
        d["inputs"].as_array().map(Vec::len),
        Some(4),
        "the send and three status webhooks"
    );
    let wamid = d["entry"]["wamid"].as_str().expect("wamid");
    let (status, t) = s.get_json(&format!("/v1/messages/{}", enc(wamid)));
    assert_eq!(status, 200);
    assert_eq!(t["items"].as_array().map(Vec::len), Some(5));
    assert_eq!(s.get_json("/v1/logs/999999").0, 404);
    assert_eq!(s.get_json("/v1/logs/abc").1["error"]["field"], "id");
}

#[test]
fn stats_group_by_sums_to_the_total() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    s.client
        .post(s.url("/v1/import"))
        .body(generated(200, 9))
        .send()
        .expect("post");
    for g in [
        "status",
        "response_code",
        "error_code",
        "category",
        "name",
        "template",
        "day",
        "hour",
    ] {
        let (status, v) = s.get_json(&format!("/v1/stats?group_by={g}&tz=America/Sao_Paulo"));
        assert_eq!(status, 200, "{g}: {v}");
        let sum: u64 = v["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .map(|x| x["count"].as_u64().unwrap_or(0))
            .sum();
        assert_eq!(Some(sum), v["total"].as_u64(), "group_by={g}");
    }
    assert_eq!(
        s.get_json("/v1/stats?group_by=colour").1["error"]["field"],
        "group_by"
    );
    assert_eq!(s.get_json("/v1/stats").1["error"]["field"], "group_by");
}

#[test]
fn invalid_queries_name_the_parameter() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    for (q, field) in [
        ("colour=red", "colour"),
        ("from=yesterday", "from"),
        ("from=2025-02-01&to=2025-01-01", "to"),
        ("limit=5000", "limit"),
        ("sort=colour", "sort"),
    ] {
        let (status, v) = s.get_json(&format!("/v1/logs?{q}"));
        assert_eq!(status, 400, "{q}");
        assert_eq!(v["error"]["field"], field, "{q}");
        assert!(v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    let (status, v) = s.get_json("/v1/nothing");
    assert_eq!(status, 405);
    assert_eq!(v["error"]["code"], "method_not_allowed");
}

#[test]
fn deleting_removes_entries_from_queries_stats_and_timelines_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    let sends: Vec<Value> = (0..10)
        .map(|i| send_result(&format!("wamid.D{i}"), if i < 4 { "Gone" } else { "Kept" }))
        .collect();
    s.post_json("/v1/sends", &json!(sends));
    let first = s.get_json("/v1/logs?wamid=wamid.D0").1["entries"][0]["id"]
        .as_u64()
        .expect("id");
    let r = s
        .client
        .delete(s.url(&format!("/v1/logs/{first}?force=true")))
        .send()
        .expect("delete");
    assert_eq!(r.status(), 200);
    assert_eq!(s.get_json(&format!("/v1/logs/{first}")).0, 404);
    assert_eq!(s.get_json("/v1/messages/wamid.D0").0, 404);
    let (status, v) = s.post_json("/v1/delete", &json!({"filter": "name=Gone", "force": true}));
    assert_eq!(status, 200);
    assert_eq!(v["deleted"], 3);
    assert_eq!(s.get_json("/v1/logs").1["total"], 6);
    assert_eq!(
        s.get_json("/v1/stats?group_by=name").1["groups"][0]["key"],
        "Kept"
    );
    s.settle_text();
    assert_eq!(s.get_json("/v1/logs?text=wamid.D1").1["total"], 0);
    let (status, v) = s.post_json("/v1/delete", &json!({"filter": ""}));
    assert_eq!(status, 400, "an empty filter is not 'everything': {v}");
}

#[test]
fn saved_searches_can_be_saved_listed_and_deleted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    assert_eq!(s.post_json("/v1/searches", &json!({"name": "Failed BF", "query": "status=failed&name=Black%20Friday&sort=-recorded_at"})).0, 200);
    assert_eq!(
        s.post_json(
            "/v1/searches",
            &json!({"name": "bad", "query": "colour=red"})
        )
        .0,
        400
    );
    let (_, v) = s.get_json("/v1/searches");
    assert_eq!(v["searches"][0]["name"], "Failed BF");
    let r = s
        .client
        .delete(s.url("/v1/searches/Failed%20BF"))
        .send()
        .expect("delete");
    assert_eq!(r.status(), 200);
    assert_eq!(
        s.get_json("/v1/searches").1["searches"]
            .as_array()
            .map(Vec::len),
        Some(0)
    );
}

#[test]
fn metrics_count_ingest_and_queries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    s.post_webhook(&fixture("webhook_status_read.json"));
    s.post_webhook(&fixture("webhook_status_read.json"));
    s.get_json("/v1/logs");
    let text = s.get_text("/metrics");
    assert!(
        text.contains("ticks_ingest_total{kind=\"webhook\",outcome=\"stored\"} 1"),
        "{text}"
    );
    assert!(text.contains("ticks_ingest_total{kind=\"webhook\",outcome=\"duplicate\"} 1"));
    assert!(text.contains("ticks_query_seconds_count 1"));
    assert!(text.contains("ticks_entries 1"));
    let (status, spec) = s.get_json("/v1/openapi.json");
    assert_eq!(status, 200);
    assert!(spec["paths"]["/v1/logs"].is_object());
}

#[test]
fn the_report_drills_down_to_exactly_the_entries_it_counts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    s.client
        .post(s.url("/v1/import"))
        .body(generated(300, 12))
        .send()
        .expect("post");
    let (status, r) = s.get_json("/v1/report?tz=America/Sao_Paulo&interval=day&top=5");
    assert_eq!(status, 200, "{r}");
    let total = |query: &str| -> u64 {
        let (status, v) = s.get_json(&format!("/v1/logs?limit=1&{query}"));
        assert_eq!(status, 200, "{query}: {v}");
        v["total"].as_u64().expect("total")
    };
    assert_eq!(r["total"].as_u64(), Some(total("")));
    let drill_query = |d: &Value| -> String {
        d.as_array()
            .expect("drill pairs")
            .iter()
            .map(|p| {
                format!(
                    "{}={}",
                    enc(p[0].as_str().expect("k")),
                    enc(p[1].as_str().expect("v"))
                )
            })
            .collect::<Vec<_>>()
            .join("&")
    };
    let steps = r["funnel"]["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 6);
    for step in steps {
        assert_eq!(
            step["count"].as_u64(),
            Some(total(&drill_query(&step["drill"]))),
            "step {}",
            step["step"]
        );
    }
    let funnels = r["funnels"].as_array().expect("funnels");
    assert!(!funnels.is_empty() && funnels.len() <= 5);
    let first = &funnels[0]["steps"][3];
    assert_eq!(
        first["count"].as_u64(),
        Some(total(&drill_query(&first["drill"])))
    );
    for reason in r["failure_reasons"].as_array().expect("reasons") {
        if reason["key"].is_i64() {
            assert!(reason["meaning"].is_string(), "{reason}");
            assert_eq!(
                reason["count"].as_u64(),
                Some(total(&drill_query(&reason["drill"])))
            );
        }
    }
    let series = r["series"].as_array().expect("series");
    let in_series: u64 = series
        .iter()
        .map(|b| b["total"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(Some(in_series), r["total"].as_u64());
    let day = &series[3];
    assert_eq!(
        day["total"].as_u64(),
        Some(total(&format!(
            "from={}&to={}",
            day["from_ms"], day["to_ms"]
        )))
    );
    // The same filters as the log table, with errors that name the parameter.
    let (status, filtered) = s.get_json("/v1/report?status=failed");
    assert_eq!(status, 200);
    assert_eq!(filtered["total"].as_u64(), Some(total("status=failed")));
    assert_eq!(
        s.get_json("/v1/report?interval=week").1["error"]["field"],
        "interval"
    );
    assert_eq!(
        s.get_json("/v1/report?colour=red").1["error"]["field"],
        "colour"
    );
}

#[test]
fn a_purge_needs_an_export_that_covers_it_or_an_explicit_force_and_is_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    let sends: Vec<Value> = (0..10)
        .map(|i| send_result(&format!("wamid.E{i}"), if i < 4 { "Old" } else { "New" }))
        .collect();
    s.post_json("/v1/sends", &json!(sends));
    // Without an export: refused, nothing deleted.
    let (status, v) = s.post_json("/v1/delete", &json!({"filter": "name=Old"}));
    assert_eq!(status, 409, "{v}");
    assert_eq!(v["error"]["code"], "export_required");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("4 of these 4")),
        "{v}"
    );
    assert_eq!(s.get_json("/v1/logs?name=Old").1["total"], 4);
    // An export of a smaller set does not cover it.
    let one = s
        .client
        .get(s.url("/v1/export?format=csv&wamid=wamid.E0"))
        .send()
        .expect("export");
    assert_eq!(one.status(), 200);
    one.bytes().expect("body");
    let (status, v) = s.post_json("/v1/delete", &json!({"filter": "name=Old"}));
    assert_eq!(status, 409, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("3 of these 4")),
        "{v}"
    );
    // The export of the same filter covers it.
    let r = s
        .client
        .get(s.url("/v1/export?format=ndjson&name=Old"))
        .send()
        .expect("export");
    assert_eq!(r.status(), 200);
    r.bytes().expect("body");
    let receipts = s.get_json("/v1/receipts").1["receipts"]
        .as_array()
        .expect("receipts")
        .clone();
    let receipt = receipts.last().expect("receipt")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let (status, v) = s.post_json("/v1/delete", &json!({"filter": "name=Old"}));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["deleted"], 4);
    assert_eq!(v["receipt"], receipt.as_str());
    assert_eq!(v["forced"], false);
    // Named receipts are checked; selected rows can be exported by id.
    let ids: Vec<u64> = s.get_json("/v1/logs?name=New&limit=2").1["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["id"].as_u64().expect("id"))
        .collect();
    let (status, v) = s.post_json("/v1/delete", &json!({"ids": ids, "receipt": receipt}));
    assert_eq!(status, 409, "{v}");
    let by_id = format!("/v1/export?format=csv&id={},{}", ids[0], ids[1]);
    s.client
        .get(s.url(&by_id))
        .send()
        .expect("export")
        .bytes()
        .expect("body");
    let (status, v) = s.post_json("/v1/delete", &json!({"ids": ids}));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["deleted"], 2);
    // Forced: allowed, and recorded as such.
    let (status, v) = s.post_json("/v1/delete", &json!({"filter": "name=New", "force": true}));
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["deleted"].as_u64(), &v["forced"]),
        (Some(4), &json!(true))
    );
    let purges = s.get_json("/v1/purges").1["purges"]
        .as_array()
        .expect("purges")
        .clone();
    assert_eq!(purges.len(), 3);
    assert_eq!(purges[0]["filter"], "name=Old");
    assert_eq!(purges[0]["count"], 4);
    assert_eq!(purges[0]["receipt"], receipt.as_str());
    assert_eq!(purges[0]["forced"], false);
    assert_eq!(purges[2]["forced"], true);
    assert!(purges
        .iter()
        .all(|p| p["actor"].is_string() && p["at"].is_string()));
}

#[test]
fn limit_zero_answers_the_total_alone_and_fields_names_the_columns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    for i in 0..5 {
        assert_eq!(
            s.post_json("/v1/sends", &send_result(&format!("wamid.F{i}"), "Fields"))
                .0,
            200
        );
    }
    let (status, v) = s.get_json("/v1/logs?limit=0&name=Fields");
    assert_eq!(status, 200);
    assert_eq!(v["total"], 5);
    assert_eq!(v["entries"].as_array().map(Vec::len), Some(0));
    assert!(v["next_cursor"].is_null());
    let (status, v) = s.get_json("/v1/logs?fields=id,wamid,recorded_at&limit=2");
    assert_eq!(status, 200);
    for e in v["entries"].as_array().expect("entries") {
        let mut keys: Vec<&str> = e
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(keys, ["id", "recorded_at", "wamid"], "{e}");
    }
    // The names `fields=` takes are the catalog's.
    let (status, catalog) = s.get_json("/v1/fields");
    assert_eq!(status, 200);
    let phone = catalog["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .find(|f| f["name"] == "phone")
        .cloned()
        .expect("phone is in the catalog");
    assert_eq!(
        (&phone["filterable"], &phone["sortable"], &phone["kind"]),
        (&json!(true), &json!(true), &json!("id"))
    );
    let (status, v) = s.get_json("/v1/logs?fields=id,colour");
    assert_eq!(status, 400);
    assert_eq!(v["error"]["field"], "fields");
    assert!(v["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("colour")));
}
