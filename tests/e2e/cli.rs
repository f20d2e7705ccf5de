//! The command line: import (plain, .gz, stdin), query, show, check, stats.

use crate::support::*;
use std::io::Write;
use std::process::{Command, Stdio};

#[test]
fn import_reads_gzip_reports_rejects_with_line_numbers_and_fails_on_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut data = generated(30, 2);
    data.extend_from_slice(b"{\"recorded_at\": \"2025-01-01T00:00:00Z\"}\n");
    let lines = data.iter().filter(|b| **b == b'\n').count();
    let gz = dir.path().join("traffic.ndjson.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).expect("create"),
        flate2::Compression::fast(),
    );
    enc.write_all(&data).expect("write");
    enc.finish().expect("finish");
    let store = dir.path().join("store");
    let out = ticks(&store, &["import", gz.to_str().expect("path")]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "rejects make the exit code non-zero");
    assert!(
        stdout.contains(&format!("line {lines}: request: missing")),
        "{stdout}"
    );
    assert!(stdout.contains("1 rejected"), "{stdout}");
    let rejects =
        std::fs::read_to_string(format!("{}.rejects", gz.display())).expect("rejects file");
    assert_eq!(
        rejects.lines().collect::<Vec<_>>(),
        ["{\"recorded_at\": \"2025-01-01T00:00:00Z\"}"],
        "the rejected line, byte for byte"
    );
    // Importing again from stdin stores nothing new.
    let mut child = Command::new(env!("CARGO_BIN_EXE_ticks"))
        .arg("--data")
        .arg(&store)
        .args(["import", "-", "--rejects"])
        .arg(dir.path().join("r2"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&data[..data.len() - 41])
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(" 0 stored"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn query_show_check_and_stats_work_on_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    import(&store, &generated(40, 6));
    let out = ticks(
        &store,
        &[
            "query",
            "status=read",
            "sort=-recorded_at",
            "limit=5",
            "--format",
            "json",
        ],
    );
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["entries"].as_array().map(Vec::len), Some(5));
    assert!(v["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .all(|e| e["status"] == "read"));
    let table =
        String::from_utf8_lossy(&ticks(&store, &["query", "status=read"]).stdout).to_string();
    assert!(
        table.contains("matching entries") && table.contains("recorded on"),
        "{table}"
    );
    let bad = ticks(&store, &["query", "colour=red"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("colour"));
    let id = v["entries"][0]["id"].as_u64().expect("id").to_string();
    let show: serde_json::Value =
        serde_json::from_slice(&ticks(&store, &["show", &id]).stdout).expect("json");
    assert_eq!(show["status"], "read");
    assert!(show["inputs"].as_array().is_some_and(|i| !i.is_empty()));
    let check = ticks(&store, &["check"]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    let stats: serde_json::Value =
        serde_json::from_slice(&ticks(&store, &["stats"]).stdout).expect("json");
    assert!(stats["live_entries"].as_u64().unwrap_or(0) >= 40);
}

#[test]
fn report_prints_the_funnel_failure_reasons_and_series_as_tables() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    import(&store, &generated(300, 8));
    let out = ticks(
        &store,
        &[
            "report",
            "tz=America/Sao_Paulo",
            "category=marketing_campaign",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout).to_string();
    for section in [
        "Delivery funnel",
        "Funnels by name",
        "Top failure reasons",
        "Series by day (America/Sao_Paulo)",
        "Inbound (MO)",
    ] {
        assert!(table.contains(section), "{section} missing from\n{table}");
    }
    let json: serde_json::Value = serde_json::from_slice(
        &ticks(
            &store,
            &["report", "category=marketing_campaign", "--format", "json"],
        )
        .stdout,
    )
    .expect("json");
    let total = json["total"].as_u64().expect("total");
    assert!(
        table.starts_with(&format!("{total} matching entries")),
        "{table}"
    );
    let bad = ticks(&store, &["report", "interval=fortnight"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("interval"));
    // The sections asked for by name: countries, cost without a card, templates.
    let out = ticks(&store, &["report", "sections=countries,cost,templates"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout).to_string();
    for section in [
        "Funnels by country",
        "Cost ((no rate card)",
        "Template health",
    ] {
        assert!(table.contains(section), "{section} missing from\n{table}");
    }
    assert!(
        !table.contains("Delivery funnel (outbound)\n  step"),
        "only the sections asked for"
    );
}

#[test]
fn the_query_table_shows_the_catalog_columns_asked_for() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    import(&store, &generated(20, 3));
    let out = ticks(
        &store,
        &[
            "query",
            "direction=outbound",
            "limit=3",
            "--columns",
            "id,status,template",
        ],
    );
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout).to_string();
    let lines: Vec<&str> = table.lines().collect();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        ["#", "status", "template"],
        "labels from the catalog"
    );
    assert_eq!(
        lines.len(),
        5,
        "a header, three rows and the total: {table}"
    );
    for row in &lines[1..4] {
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cells.len(), 3, "{row}");
        assert!(cells[0].parse::<u32>().is_ok(), "{row}");
    }
    let bad = ticks(&store, &["query", "--columns", "id,colour"]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("--columns") && err.contains("colour"), "{err}");
    // Every time in the zone asked for.
    let out = ticks(
        &store,
        &[
            "query",
            "tz=Asia/Tokyo",
            "limit=5",
            "--columns",
            "id,recorded_at,conversation_expiry",
        ],
    );
    let table = String::from_utf8_lossy(&out.stdout).to_string();
    let times: Vec<&str> = table
        .lines()
        .skip(1)
        .take(5)
        .flat_map(|l| l.split_whitespace().skip(1))
        .filter(|c| *c != "-")
        .collect();
    assert!(times.len() >= 5, "{table}");
    assert!(times.iter().all(|t| t.ends_with("+09:00")), "{table}");
}

/// `ticks serve` holds the store; the command line beside it asks the
/// server (found from `server.json` in the data directory) and prints what
/// it prints on the store itself.
#[test]
fn beside_a_running_server_the_command_line_asks_it_and_prints_the_same() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    import(&store, &generated(60, 8));
    let first: serde_json::Value = serde_json::from_slice(
        &ticks(
            &store,
            &["query", "status=read", "limit=1", "--format", "json"],
        )
        .stdout,
    )
    .expect("json");
    let id = first["entries"][0]["id"].to_string();
    let wamid = first["entries"][0]["wamid"]
        .as_str()
        .expect("a read message has a wamid")
        .to_string();
    let commands: Vec<Vec<&str>> = vec![
        vec!["query", "status=read", "tz=Asia/Tokyo", "limit=7"],
        vec!["query", "direction=outbound", "limit=3", "--format", "json"],
        vec![
            "query",
            "direction=inbound",
            "--columns",
            "id,recorded_at,phone,text,conversation_expiry",
        ],
        vec!["report", "tz=America/Sao_Paulo"],
        vec!["report", "sections=counts", "--format", "json"],
        vec!["show", &id],
        vec!["timeline", &wamid],
    ];
    let run_all = || -> Vec<String> {
        commands
            .iter()
            .map(|args| {
                let out = ticks(&store, args);
                assert!(
                    out.status.success(),
                    "{args:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                String::from_utf8_lossy(&out.stdout).into_owned()
            })
            .collect()
    };
    let on_the_store = run_all();
    let local_csv = dir.path().join("local.csv");
    let out = ticks(
        &store,
        &[
            "export",
            "--format",
            "csv",
            "--out",
            local_csv.to_str().expect("path"),
            "status=failed",
        ],
    );
    assert!(out.status.success());
    let local_receipt: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let local_stats: serde_json::Value =
        serde_json::from_slice(&ticks(&store, &["stats"]).stdout).expect("json");

    let mut server = Server::start(&store, &[]);
    assert!(
        store.join("server.json").is_file(),
        "the server says where it is"
    );
    let through_the_server = run_all();
    for ((args, local), remote) in commands.iter().zip(&on_the_store).zip(&through_the_server) {
        assert_eq!(local, remote, "{args:?} prints the same through the server");
    }
    let remote_csv = dir.path().join("remote.csv");
    let out = ticks(
        &store,
        &[
            "export",
            "--format",
            "csv",
            "--out",
            remote_csv.to_str().expect("path"),
            "status=failed",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let remote_receipt: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        std::fs::read(&local_csv).expect("csv"),
        std::fs::read(&remote_csv).expect("csv"),
        "the same export"
    );
    assert_eq!(remote_receipt["count"], local_receipt["count"]);
    assert_eq!(remote_receipt["sha256"], local_receipt["sha256"]);
    let remote_stats: serde_json::Value =
        serde_json::from_slice(&ticks(&store, &["stats"]).stdout).expect("json");
    assert_eq!(remote_stats["live_entries"], local_stats["live_entries"]);
    // `--url` names a server without a data directory.
    let url = server.url("");
    let out = Command::new(env!("CARGO_BIN_EXE_ticks"))
        .args([
            "--url",
            url.trim_end_matches('/'),
            "query",
            "status=read",
            "tz=Asia/Tokyo",
            "limit=7",
        ])
        .env("TICKS_LOG", "warn")
        .output()
        .expect("run ticks");
    assert_eq!(String::from_utf8_lossy(&out.stdout), on_the_store[0]);
    server.stop();
    assert!(
        !store.join("server.json").exists(),
        "gone when the server stops"
    );
    assert_eq!(run_all(), on_the_store, "on the store again");
}

/// `ticks serve --demo` on an empty directory: every view of the page has
/// something to show, and nothing is dated after now.
#[test]
fn the_demo_fills_every_view_and_nothing_is_in_the_future() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &["--demo"]);
    let total = |q: &str| {
        s.get_json(&format!("/v1/logs?limit=1&{q}")).1["total"]
            .as_u64()
            .unwrap_or(0)
    };
    assert!(total("") > 20_000, "the log");
    assert!(total("direction=inbound") > 100, "received messages");
    assert!(total("direction=event") > 10, "account health");
    assert!(total("engagement=replied") > 10, "replies attributed");
    let (_, templates) = s.get_json("/v1/templates");
    assert!(
        templates["templates"]
            .as_array()
            .is_some_and(|t| t.len() > 5),
        "templates"
    );
    let (_, newest) = s.get_json("/v1/logs?limit=1&sort=-recorded_at");
    let newest = newest["entries"][0]["recorded_at"]
        .as_str()
        .expect("a time");
    let newest: jiff::Timestamp = newest.parse().expect("RFC 3339");
    assert!(newest < jiff::Timestamp::now(), "{newest} is in the future");
    let mut fired = 0;
    for _ in 0..100 {
        fired = s.get_json("/v1/alerts/history").1["history"]
            .as_array()
            .map_or(0, Vec::len);
        if fired > 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(fired > 0, "the alerts view shows what fired");
}
