//! One set of inputs, two backends, the same answers: `ticks serve` on the
//! embedded store and on ClickHouse (the single server and the two-shard
//! cluster of `scripts/clickhouse.sh`), asked the same questions over HTTP.
//!
//! Entry ids are each backend's own: entries are compared without their
//! id, and the message a reply answers by its wamid.

use crate::support::{generated, Server};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// The ClickHouse URLs of a deployment, or `None` (the test then says it
/// was skipped) unless `TICKS_REQUIRE_CLICKHOUSE=1`.
pub(crate) fn clickhouse(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(urls) => Some(urls),
        Err(_) => {
            assert!(
                std::env::var("TICKS_REQUIRE_CLICKHOUSE").as_deref() != Ok("1"),
                "{var} is not set"
            );
            eprintln!("skipped: {var} is not set (scripts/clickhouse.sh starts servers)");
            None
        }
    }
}

/// A rate card without tiers: every market's marketing and utility
/// messages, Brazil's at its own price from a date inside the traffic.
const FLAT_CARD: &str = "market,category,price,currency,valid_from,tier
*,marketing,0.05,USD,2020-01-01,
BR,marketing,0.0625,USD,2020-01-01,
BR,marketing,0.07,USD,2025-03-02,
*,utility,0.008,USD,2020-01-01,
*,authentication,0.03,USD,2020-01-01,
";

/// A rate card with volume tiers per market and category.
const TIERED_CARD: &str = "market,category,price,currency,valid_from,tier
*,marketing,0.05,USD,2020-01-01,
*,marketing,0.04,USD,2020-01-01,5
*,marketing,0.03,USD,2020-01-01,20
BR,utility,0.01,USD,2020-01-01,
BR,utility,0.005,USD,2020-01-01,3
*,utility,0.008,USD,2020-01-01,
";

/// A configuration naming a database of the test's own on `urls`.
pub(crate) fn clickhouse_config(dir: &Path, urls: &str, database: &str, cluster: bool) -> String {
    let list: Vec<String> = urls.split(',').map(|u| format!("{u:?}")).collect();
    let path = dir.join(format!("{database}.toml"));
    let mut text = format!(
        "backend = \"clickhouse\"\nclickhouse_url = [{}]\nclickhouse_database = \"{database}\"\n",
        list.join(", ")
    );
    if cluster {
        // On the cluster entries are settled a second after they change,
        // so that its queries read the settled rows while the tests run;
        // one server keeps the default (ten seconds), where these tests
        // read the grouped versions of fresh entries.
        text.push_str("clickhouse_cluster = \"ticks\"\nclickhouse_settle_lag_seconds = 1\n");
    }
    std::fs::write(&path, text).expect("write the configuration");
    // A database left by an earlier run of the same test would add to it.
    for url in urls.split(',') {
        let _ = reqwest::blocking::Client::new()
            .post(url)
            .body(format!("DROP DATABASE IF EXISTS {database}"))
            .send();
    }
    path.to_string_lossy().into_owned()
}

/// Generated traffic and what the generator does not make: marketing
/// preferences of two of its people (one stops, one stops and resumes)
/// and template events, as webhook lines.
fn traffic(messages: u64, seed: u64) -> Vec<u8> {
    let mut data = generated(messages, seed);
    let text = String::from_utf8_lossy(&data).into_owned();
    let mut wa_ids: Vec<&str> = text
        .match_indices("\"wa_id\":\"")
        .filter_map(|(i, m)| text[i + m.len()..].split('"').next())
        .collect();
    // The first person stops; another stops and resumes.
    let stops = wa_ids[0];
    wa_ids.sort_unstable();
    wa_ids.dedup();
    let resumes = wa_ids[wa_ids.len() / 2];
    let resumes = if resumes == stops { wa_ids[0] } else { resumes };
    let first = text
        .match_indices("\"timestamp\":\"")
        .filter_map(|(i, m)| text[i + m.len()..].split('"').next()?.parse::<i64>().ok())
        .min()
        .expect("a status time");
    let preference = |wa_id: &str, value: &str, ts: i64| {
        serde_json::json!({
            "object": "whatsapp_business_account",
            "entry": [{"id": "102290129340398", "changes": [{"field": "user_preferences", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550783881", "phone_number_id": "109876543210987"},
                "contacts": [{"profile": {"name": "Ana"}, "wa_id": wa_id}],
                "user_preferences": [{"wa_id": wa_id, "detail": "User requested it",
                    "category": "marketing_messages", "value": value, "timestamp": ts}]
            }}]}]
        })
    };
    let event = |field: &str, status: &str, ts: i64| {
        serde_json::json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "time": ts,
            "changes": [{"field": field, "value": {"message_template_id": 594425479261596u64,
                "message_template_name": "pedido_enviado", "message_template_language": "pt_BR",
                "event": status, "reason": "Low quality"}}]}]})
    };
    for line in [
        preference(stops, "stop", first + 3_600),
        preference(resumes, "stop", first + 3_600),
        preference(resumes, "resume", first + 7_200),
        event("message_template_status_update", "APPROVED", first + 60),
        event("message_template_status_update", "PAUSED", first + 86_400),
        event("message_template_quality_update", "FLAGGED", first + 90_000),
    ] {
        data.extend_from_slice(line.to_string().as_bytes());
        data.push(b'\n');
    }
    data
}

fn import(server: &Server, ndjson: &[u8]) {
    let r = server
        .client
        .post(server.url("/v1/import"))
        .body(ndjson.to_vec())
        .send()
        .expect("import");
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().unwrap_or_default());
}

fn logs(server: &Server, query: &str) -> Value {
    let (status, body) = server.get_json(&format!("/v1/logs?{query}"));
    assert_eq!(status, 200, "{query}: {body}");
    body
}

/// Every entry's wamid by its id, for naming the message a reply answers.
fn wamids(server: &Server) -> BTreeMap<u64, String> {
    let mut out = BTreeMap::new();
    let mut offset = 0;
    loop {
        let page = logs(server, &format!("limit=1000&offset={offset}"));
        let entries = page["entries"].as_array().cloned().unwrap_or_default();
        for e in &entries {
            if let (Some(id), Some(w)) = (e["id"].as_u64(), e["wamid"].as_str()) {
                out.insert(id, w.to_string());
            }
        }
        if entries.len() < 1000 {
            return out;
        }
        offset += 1000;
    }
}

/// An entry as both backends must show it: no id; the message it answers
/// by wamid.
fn comparable(entry: &Value, wamids: &BTreeMap<u64, String>) -> Value {
    let mut e = entry.clone();
    e["id"] = Value::Null;
    if let Some(target) = e["in_reply_to"].as_u64() {
        e["in_reply_to"] = wamids
            .get(&target)
            .cloned()
            .map_or(Value::Null, Value::String);
    }
    e
}

/// The questions: filters of every translated kind, negation, OR, none,
/// dates, sorting both ways, paging, the total alone.
fn questions(reference: &Server) -> Vec<String> {
    let all = logs(reference, "limit=1000&sort=recorded_at");
    let times: Vec<i64> = all["entries"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["recorded_ms"].as_i64()).collect())
        .unwrap_or_default();
    let (first, last) = (times[0], times[times.len() - 1]);
    let third = (last - first) / 3;
    let name = all["entries"]
        .as_array()
        .and_then(|a| a.iter().find_map(|e| e["name"].as_str().map(String::from)))
        .expect("a named campaign");
    let mut q: Vec<String> = [
        "limit=1000",
        "status=failed",
        "status=delivered&category=marketing_campaign",
        "direction=inbound",
        "direction=outbound&-status=read",
        "category=none",
        "response_code=429",
        "-response_code=200&direction=outbound",
        "status=read&status=delivered",
        "sort=recorded_at&limit=30",
        "sort=-recorded_at&limit=30&offset=30",
        "offset=40&limit=20",
        "limit=0&status=failed",
        "content_type=button",
        "country=BR",
        "error_code=131049",
        "session=open",
        "session=none&direction=outbound",
        "source=app",
        "attribution=inferred",
        "attribution=quoted&content_type=button",
        "billable=false&direction=outbound",
        "-billable=true&status=read",
        "engagement=replied",
        "engagement=clicked&category=marketing_campaign",
        "engagement=none&direction=outbound",
        "reached=delivered",
        "reached=read&status=failed",
        "-reached=sent&direction=outbound",
        "opted_out=true",
        "opted_out=false&direction=outbound",
        "-opted_out=true&status=read",
        "marketing=stop",
        "marketing=resume",
        "event=message_template_status_update",
        "-event=message_template_status_update&direction=event",
        "text=lucas",
        "text=LUCAS%20entreg*",
        "text=%22de%20dezembro%22",
        "text=engagement",
        "text=%22re-engagement%20message%22&direction=outbound",
        "text=pedido_enviado",
        "text=rastr*&status=read",
        "text=crm*",
        "text=%22%22",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    q.push(format!("from={}&to={}", first + third, first + 2 * third));
    // A Brazilian number typed as a person would, and in its form without
    // the ninth digit: both find the person's entries under either form.
    let brazilian = all["entries"]
        .as_array()
        .and_then(|a| {
            a.iter().find_map(|e| {
                e["phone"]
                    .as_str()
                    .filter(|p| p.len() == 13 && p.starts_with("55") && p.as_bytes()[4] == b'9')
                    .map(String::from)
            })
        })
        .expect("a Brazilian mobile number");
    let typed = format!(
        "+{} ({}) {}-{}",
        &brazilian[..2],
        &brazilian[2..4],
        &brazilian[4..9],
        &brazilian[9..]
    );
    let without_ninth = format!("{}{}", &brazilian[..4], &brazilian[5..]);
    q.push(format!("phone={}", urlencode(&typed)));
    q.push(format!("phone={without_ninth}&direction=inbound"));
    q.push(format!("-phone={brazilian}&limit=100"));
    q.push(format!("contact={}", urlencode(&typed)));
    q.push(format!("text={}", urlencode(&typed)));
    if let Some(wamid) = all["entries"]
        .as_array()
        .and_then(|a| a.iter().find_map(|e| e["wamid"].as_str().map(String::from)))
    {
        q.push(format!("text={}", urlencode(&wamid)));
        q.push(format!("text={}*", urlencode(&wamid[..wamid.len() - 4])));
    }
    q.push(format!("contact={without_ninth}&direction=inbound"));
    if let Some(correlation) = all["entries"].as_array().and_then(|a| {
        a.iter()
            .find_map(|e| e["correlation_id"].as_str().map(String::from))
    }) {
        q.push(format!("correlation_id={}", urlencode(&correlation)));
    }
    // A person known by a business-scoped user id only.
    if let Some(user_id) = all["entries"].as_array().and_then(|a| {
        a.iter().find_map(|e| {
            e["user_id"]
                .as_str()
                .filter(|_| e["phone"].is_null())
                .map(String::from)
        })
    }) {
        q.push(format!("contact={}", urlencode(&user_id)));
        q.push(format!("__card={}", urlencode(&user_id)));
    }
    q.push(format!("__card={}", urlencode(&typed)));
    q.push(format!("__card={without_ninth}"));
    q.push(format!("name={}&status=read", urlencode(&name)));
    q
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn export(server: &Server, query: &str) -> Vec<u8> {
    let r = server
        .client
        .get(server.url(&format!("/v1/export?{query}")))
        .send()
        .expect("export");
    assert_eq!(r.status().as_u16(), 200, "{query}");
    r.bytes().expect("the export's body").to_vec()
}

/// An entry's detail without ids: the entry, and its inputs' source, time,
/// bytes and events.
fn detail(server: &Server, id: u64, wamids: &BTreeMap<u64, String>, ordered: bool) -> Value {
    let (status, mut body) = server.get_json(&format!("/v1/logs/{id}"));
    assert_eq!(status, 200, "{body}");
    let entry = comparable(&body["entry"], wamids);
    body["entry"] = entry;
    // Each backend received the inputs at its own time.
    if let Some(inputs) = body["inputs"].as_array_mut() {
        for input in inputs.iter_mut() {
            input["seq"] = Value::Null;
            input["received_at"] = Value::Null;
        }
        if !ordered {
            inputs.sort_by_key(|i| i.to_string());
        }
    }
    if let Some(items) = body["timeline"].as_array_mut() {
        for item in items {
            if let Some(id) = item["entry"].as_u64() {
                item["entry"] = wamids.get(&id).cloned().map_or(Value::Null, Value::String);
            }
        }
    }
    body
}

/// Where two JSON values differ, by path.
fn differences(a: &Value, b: &Value, path: &str) -> Vec<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter()
                .flat_map(|k| {
                    differences(
                        x.get(k).unwrap_or(&Value::Null),
                        y.get(k).unwrap_or(&Value::Null),
                        &format!("{path}.{k}"),
                    )
                })
                .collect()
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .flat_map(|(i, (x, y))| differences(x, y, &format!("{path}[{i}]")))
            .collect(),
        _ if a == b => Vec::new(),
        _ => vec![format!("{path}: {a} != {b}")],
    }
}

/// Every entry `query` selects, page by page through `next_cursor`.
fn walk(server: &Server, query: &str, wamids: &BTreeMap<u64, String>) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("{query}&cursor={c}"),
            None => query.to_string(),
        };
        let page = logs(server, &q);
        out.extend(
            page["entries"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| comparable(e, wamids)),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
        assert!(out.len() < 100_000, "{query}: the cursor never ends");
    }
}

/// Both backends answer every question the same.
/// Questions the traffic of every test has answers to (so that an empty
/// answer on both sides cannot pass for agreement).
const FIND_SOMETHING: [&str; 7] = [
    "opted_out=true",
    "marketing=resume",
    "event=message_template_status_update",
    "-event=message_template_status_update&direction=event",
    "text=engagement",
    "text=%22re-engagement%20message%22&direction=outbound",
    "-opted_out=true&status=read",
];

fn assert_same_answers(embedded: &Server, other: &Server, ordered: bool) {
    let (wa, wb) = (wamids(embedded), wamids(other));
    assert_eq!(wa.len(), wb.len(), "entries with a wamid");
    // Every page of a selection, through the cursors each gives.
    for q in [
        "limit=70&direction=outbound",
        "limit=33&sort=recorded_at&status=read",
        // By a column's value, then newest first.
        "limit=60&sort=status",
        "limit=45&sort=-template",
        "limit=50&sort=phone",
        "limit=40&sort=-response_code",
        "limit=40&sort=-country&direction=outbound",
        "limit=40&sort=engagement&direction=outbound",
        "limit=40&sort=-correlation_id",
    ] {
        let (mut a, mut b) = (walk(embedded, q, &wa), walk(other, q, &wb));
        assert!(a.len() > 70, "{q}: one page tests no cursor");
        if !ordered {
            let key = |e: &Value| e.to_string();
            a.sort_by_key(key);
            b.sort_by_key(key);
        }
        assert_eq!(a.len(), b.len(), "{q}");
        assert!(a == b, "{q}: the pages differ");
    }
    // Details, by wamid, of a spread of entries.
    let by_wamid: BTreeMap<&String, u64> = wb.iter().map(|(id, w)| (w, *id)).collect();
    for (id, wamid) in wa.iter().step_by(17) {
        let other_id = by_wamid[wamid];
        let (a, b) = (
            detail(embedded, *id, &wa, ordered),
            detail(other, other_id, &wb, ordered),
        );
        assert!(a == b, "{wamid}: {}", differences(&a, &b, "").join("; "));
    }
    // The raw inputs of a selection, byte for byte, each line without the
    // time each backend received it (in receipt order when one process
    // received them).
    for q in [
        "format=ndjson&status=failed",
        "format=ndjson&direction=inbound",
    ] {
        let lines = |x: &[u8]| {
            let mut l: Vec<Value> = x
                .split(|&c| c == b'\n')
                .filter(|l| !l.is_empty())
                .map(|l| {
                    let mut v: Value = serde_json::from_slice(l).expect("an NDJSON line");
                    v["received_ms"] = Value::Null;
                    v
                })
                .collect();
            if !ordered {
                l.sort_by_key(|v| v.to_string());
            }
            l
        };
        let (a, b) = (lines(&export(embedded, q)), lines(&export(other, q)));
        assert!(!a.is_empty(), "{q}: an empty export tests nothing");
        assert_eq!(a, b, "{q}");
    }
    // Counts by field and by local day and hour; groups of equal counts
    // may come in another order.
    for q in [
        "group_by=status",
        "group_by=category&direction=outbound",
        "group_by=error_code&status=failed",
        "group_by=response_code",
        "group_by=direction",
        "group_by=country",
        "group_by=billable&direction=outbound",
        "group_by=attribution&direction=inbound",
        "group_by=engagement",
        "group_by=reached",
        "group_by=marketing",
        "group_by=day&tz=America/Sao_Paulo",
        "group_by=hour&tz=Asia/Kolkata&status=read",
    ] {
        let stats = |s: &Server| {
            let (status, mut body) = s.get_json(&format!("/v1/stats?{q}"));
            assert_eq!(status, 200, "{q}: {body}");
            if let Some(groups) = body["groups"].as_array_mut() {
                groups.sort_by_key(|g| {
                    (std::cmp::Reverse(g["count"].as_u64()), g["key"].to_string())
                });
            }
            body
        };
        let (a, b) = (stats(embedded), stats(other));
        assert!(
            a["groups"].as_array().is_some_and(|g| !g.is_empty()),
            "{q}: {a}"
        );
        assert_eq!(a, b, "{q}");
    }
    // The report, every section the page draws, exactly.
    for q in [
        "",
        "tz=America/Sao_Paulo&interval=day",
        "sections=series&interval=hour&tz=Asia/Kolkata",
        "sections=counts&top=5&direction=outbound",
        "sections=inbound&funnel_by=template",
        "sections=funnels&funnel_by=category&status=failed,read",
        "text=pedido&sections=counts,funnels",
        "direction=inbound",
        "sections=countries",
        "sections=countries,funnels&top=3&category=marketing_campaign",
        "sections=templates",
        "sections=templates&interval=hour&tz=Asia/Kolkata&top=3",
        "sections=templates&category=marketing_campaign&interval=day&tz=America/Sao_Paulo",
    ] {
        let report = |s: &Server| {
            let (status, body) = s.get_json(&format!("/v1/report?{q}"));
            assert_eq!(status, 200, "report {q}: {body}");
            body
        };
        let (a, b) = (report(embedded), report(other));
        assert!(a["total"].as_u64() > Some(0), "report {q} tests nothing");
        if q == "sections=templates" {
            let health = a["templates"].as_array().expect("templates");
            let with = |k: &str| health.iter().filter(|t| t[k].as_u64() > Some(0)).count();
            assert!(
                with("opt_outs") > 0 && with("replies_quoted") > 0 && with("failed") > 0,
                "{q} tests too little: {a}"
            );
        }
        assert!(a == b, "report {q}: {}", differences(&a, &b, "").join("; "));
    }
    // The cost section, under a flat card and, when both received the
    // inputs in one order, a tiered one (a message's tier is its place
    // among its month's billable messages in the order they arrived).
    let mut cards = vec![("flat", FLAT_CARD)];
    if ordered {
        cards.push(("tiered", TIERED_CARD));
    }
    for (name, card) in &cards {
        for s in [embedded, other] {
            let r = s
                .client
                .post(s.url(&format!("/v1/rate-card?name={name}")))
                .header("content-type", "text/csv")
                .body(card.to_string())
                .send()
                .expect("post a rate card");
            assert_eq!(r.status().as_u16(), 200, "rate card {name}");
        }
        for q in [
            "group=country",
            "group=template&interval=hour&tz=Asia/Kolkata",
            "group=category&interval=day&tz=America/Sao_Paulo",
            "category=marketing_campaign&group=pricing_type",
            "status=read&group=country&top=2",
        ] {
            let q = format!("sections=cost&rate_card={name}&{q}");
            let cost = |s: &Server| {
                let (status, body) = s.get_json(&format!("/v1/report?{q}"));
                assert_eq!(status, 200, "report {q}: {body}");
                body["cost"].clone()
            };
            let (a, b) = (cost(embedded), cost(other));
            assert!(a["billable"].as_u64() > Some(0), "{q} tests nothing: {a}");
            assert!(a == b, "report {q}: {}", differences(&a, &b, "").join("; "));
        }
    }
    for q in questions(embedded) {
        if let Some(typed) = q.strip_prefix("__card=") {
            // A person's card: identifiers, name, counts, marketing state.
            // The entries its marketing history names, by what they are
            // (ids are each backend's own).
            let card = |s: &Server| {
                let (status, mut card) = s.get_json(&format!("/v1/contacts/{typed}"));
                let w = wamids(s);
                if let Some(history) = card["marketing"]["history"].as_array_mut() {
                    for change in history {
                        let id = change["entry"].as_u64().expect("an entry id");
                        let found = logs(s, &format!("id={id}"));
                        change["entry"] = comparable(&found["entries"][0], &w);
                    }
                }
                (status, card)
            };
            let ((sa, a), (sb, b)) = (card(embedded), card(other));
            assert_eq!(sa, sb, "card {typed}: {a} / {b}");
            assert!(
                a == b,
                "card {typed}: {}",
                differences(&a, &b, "").join("; ")
            );
            continue;
        }
        let (a, b) = (logs(embedded, &q), logs(other, &q));
        assert_eq!(a["total"], b["total"], "{q}: total; {a} / {b}");
        if FIND_SOMETHING.contains(&q.as_str()) {
            assert!(a["total"].as_u64() > Some(0), "{q} tests nothing");
        }
        let side = |page: &Value, w: &BTreeMap<u64, String>| -> Vec<Value> {
            page["entries"]
                .as_array()
                .map(|es| es.iter().map(|e| comparable(e, w)).collect())
                .unwrap_or_default()
        };
        let (mut ea, mut eb) = (side(&a, &wa), side(&b, &wb));
        if !ordered {
            // Writers in parallel number entries in another order: ties of
            // time may come in another order; compare as sets.
            let key = |e: &Value| {
                (
                    e["recorded_ms"].as_i64(),
                    e["wamid"].to_string(),
                    e["text"].to_string(),
                    e.to_string(),
                )
            };
            ea.sort_by_key(key);
            eb.sort_by_key(key);
        }
        assert_eq!(ea.len(), eb.len(), "{q}: page length");
        for (x, y) in ea.iter().zip(&eb) {
            assert_eq!(x, y, "{q}");
        }
    }
}

#[test]
fn the_embedded_store_and_one_clickhouse_server_give_the_same_answers() {
    let Some(urls) = clickhouse("TICKS_TEST_CLICKHOUSE") else {
        return;
    };
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let data = traffic(250, 21);
    let embedded = Server::start(&tmp.path().join("embedded"), &[]);
    let config = clickhouse_config(tmp.path(), &urls, "conformance_single", false);
    let on_clickhouse = Server::start(&tmp.path().join("ch"), &["--config", &config]);
    import(&embedded, &data);
    import(&on_clickhouse, &data);
    assert_same_answers(&embedded, &on_clickhouse, true);
}

#[test]
fn two_ticks_processes_writing_to_the_cluster_at_once_give_the_embedded_answers() {
    let Some(urls) = clickhouse("TICKS_TEST_CLICKHOUSE_CLUSTER") else {
        return;
    };
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let data = traffic(250, 22);
    let embedded = Server::start(&tmp.path().join("embedded"), &[]);
    import(&embedded, &data);
    let config = clickhouse_config(tmp.path(), &urls, "conformance_cluster", true);
    let a = Server::start(&tmp.path().join("a"), &["--config", &config]);
    let b = Server::start(&tmp.path().join("b"), &["--config", &config]);
    // Every other line to each, in chunks, both at once: a status often
    // reaches one process before its send reaches the other.
    let lines: Vec<&[u8]> = data
        .split(|&c| c == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let mut halves: [Vec<Vec<u8>>; 2] = [Vec::new(), Vec::new()];
    for (i, chunk) in lines.chunks(20).enumerate() {
        halves[i % 2].push(chunk.join(&b'\n'));
    }
    std::thread::scope(|s| {
        for (server, chunks) in [(&a, &halves[0]), (&b, &halves[1])] {
            s.spawn(move || {
                for chunk in chunks {
                    import(server, chunk);
                }
            });
        }
    });
    assert_same_answers(&embedded, &a, false);
    assert_same_answers(&embedded, &b, false);
}

#[test]
fn a_store_migrated_to_clickhouse_answers_as_the_store_did_and_a_second_run_copies_nothing() {
    let Some(urls) = clickhouse("TICKS_TEST_CLICKHOUSE") else {
        return;
    };
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let store = tmp.path().join("store");
    crate::support::import(&store, &traffic(200, 23));
    // The definitions of the traffic's templates: its templated sends are
    // compared by the text they render.
    let definitions = tmp.path().join("templates.json");
    let generated = crate::support::ticks(
        &store,
        &[
            "generate",
            "--messages",
            "200",
            "--seed",
            "23",
            "--templates",
            &definitions.to_string_lossy(),
        ],
    );
    assert!(generated.status.success());
    let imported = crate::support::ticks(
        &store,
        &["templates", "import", &definitions.to_string_lossy()],
    );
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    let config = clickhouse_config(tmp.path(), &urls, "conformance_migrate", false);
    for run in 0..2 {
        let out = crate::support::ticks(
            &store,
            // Folded in parts of about 50 inputs (the traffic has ~700):
            // the answers must not tell.
            &[
                "--config",
                &config,
                "migrate",
                "--to",
                "clickhouse",
                "--inputs-per-fold",
                "50",
            ],
        );
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        if run == 1 {
            assert!(said.starts_with("0 inputs copied"), "{said}");
            assert!(!said.contains("entries derived"), "derived once: {said}");
        } else {
            assert!(!said.starts_with("0 inputs copied"), "{said}");
            assert!(said.contains(" entries derived"), "{said}");
        }
    }
    let embedded = Server::start(&store, &[]);
    let on_clickhouse = Server::start(&tmp.path().join("ch"), &["--config", &config]);
    let outbound = logs(&embedded, "direction=outbound&limit=1000");
    let rendered = outbound["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["template_known"] == true)
        .count();
    assert!(
        rendered > 10,
        "the traffic's templated sends render: {rendered}"
    );
    assert_same_answers(&embedded, &on_clickhouse, true);
    let listed = |s: &Server| s.get_json("/v1/templates").1["templates"].clone();
    assert_eq!(listed(&embedded), listed(&on_clickhouse));
}

/// A permutation of `0..n` from a seed (a small LCG: reproducible, not
/// random).
fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut x = seed;
    for i in (1..n).rev() {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        order.swap(i, (x >> 33) as usize % (i + 1));
    }
    order
}

#[test]
fn inputs_in_any_order_and_redelivered_give_clickhouse_the_embedded_answers() {
    let Some(urls) = clickhouse("TICKS_TEST_CLICKHOUSE") else {
        return;
    };
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let data = traffic(200, 24);
    let lines: Vec<&[u8]> = data
        .split(|&c| c == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let embedded = Server::start(&tmp.path().join("embedded"), &[]);
    import(&embedded, &data);
    for seed in [1u64, 2] {
        let database = format!("conformance_order_{seed}");
        let config = clickhouse_config(tmp.path(), &urls, &database, false);
        let server = Server::start(&tmp.path().join(&database), &["--config", &config]);
        // Shuffled, a tenth of the lines sent twice, in posts of 25 lines:
        // statuses before their sends, replies before what they answer.
        let order = shuffled(lines.len(), seed);
        let again = order.iter().take(lines.len() / 10).copied();
        let sent: Vec<&[u8]> = order
            .iter()
            .copied()
            .chain(again)
            .map(|i| lines[i])
            .collect();
        for chunk in sent.chunks(25) {
            import(&server, &chunk.join(&b'\n'));
        }
        assert_same_answers(&embedded, &server, false);
    }
}

/// `ticks serve --demo` on an empty ClickHouse database fills it as it
/// fills an empty embedded store: the log, received messages, templates
/// and the demo's alert rules; ready only once the traffic is in.
#[test]
fn the_demo_fills_an_empty_clickhouse_database() {
    let Some(urls) = clickhouse("TICKS_TEST_CLICKHOUSE") else {
        return;
    };
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let config = clickhouse_config(tmp.path(), &urls, "conformance_demo", false);
    let server = Server::start(&tmp.path().join("data"), &["--config", &config, "--demo"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    while server.get_json("/readyz").0 != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "the demo's traffic did not go in"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let total = |q: &str| {
        server.get_json(&format!("/v1/logs?limit=0&{q}")).1["total"]
            .as_u64()
            .unwrap_or(0)
    };
    assert!(total("") > 20_000, "the log");
    assert!(total("direction=inbound") > 100, "received messages");
    assert!(total("engagement=replied") > 10, "replies attributed");
    let (_, templates) = server.get_json("/v1/templates");
    assert!(
        templates["templates"]
            .as_array()
            .is_some_and(|t| t.len() > 5),
        "templates"
    );
    let (_, rules) = server.get_json("/v1/alerts");
    assert!(
        rules.to_string().contains("rate-limited-429"),
        "the demo's alert rules: {rules}"
    );
}
