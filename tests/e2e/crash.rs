//! kill -9 in the middle of ingest, many times: every acknowledged write is
//! there after restart, and nothing is half-applied.

use crate::support::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[test]
fn acknowledged_writes_survive_kill_9_at_any_moment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let rounds = 6;
    for round in 0..rounds {
        let mut server = Server::start(dir.path(), &[]);
        let stop = Arc::new(AtomicBool::new(false));
        let mut writers = Vec::new();
        for w in 0..4 {
            let (base, stop, acked) = (server.base.clone(), stop.clone(), acknowledged.clone());
            writers.push(std::thread::spawn(move || {
                let client = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .expect("client");
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    let wamid = format!("wamid.CRASH.{round}.{w}.{i}");
                    i += 1;
                    let batch: Vec<serde_json::Value> = (0..5)
                        .map(|k| send_result(&format!("{wamid}.{k}"), "Crash test"))
                        .collect();
                    match client.post(format!("{base}/v1/sends")).json(&batch).send() {
                        Ok(r) if r.status() == 200 => {
                            let mut a = acked.lock().expect("lock");
                            a.extend((0..5).map(|k| format!("{wamid}.{k}")));
                        }
                        _ => break, // the server died under us: not acknowledged
                    }
                }
            }));
        }
        // Let it ingest for a varying while, then kill without warning.
        std::thread::sleep(Duration::from_millis(150 + 97 * round as u64));
        server.kill9();
        stop.store(true, Ordering::SeqCst);
        for w in writers {
            let _ = w.join();
        }
    }
    let acked = acknowledged.lock().expect("lock").clone();
    assert!(
        acked.len() > 100,
        "the test must actually write ({} acknowledged)",
        acked.len()
    );
    let store = ticks_engine::Store::open(ticks_engine::Config::new(dir.path()))
        .expect("reopen after crashes");
    let snap = store.snapshot();
    let missing: Vec<&String> = acked
        .iter()
        .filter(|w| snap.entry_for_wamid(w).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged sends lost, e.g. {:?}",
        missing.len(),
        missing.first()
    );
    drop(snap);
    let problems = store.check().expect("check");
    assert!(
        problems.is_empty(),
        "derived state differs from the log: {problems:?}"
    );
    // The full-text index caught up from the log too.
    store.flush_text().expect("flush");
    let last = acked.last().expect("one");
    assert_eq!(store.text_search(last).expect("search").len(), 1);
    store.close().expect("close");
}

#[test]
fn a_clean_stop_and_restart_keeps_every_answer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = Server::start(dir.path(), &[]);
    let r = server
        .client
        .post(server.url("/v1/import"))
        .body(generated(300, 4))
        .send()
        .expect("post");
    assert_eq!(r.status(), 200);
    server.settle_text();
    let queries = [
        "/v1/logs?limit=1000",
        "/v1/logs?status=read&sort=name",
        "/v1/stats?group_by=error_code",
        "/v1/logs?text=quero",
    ];
    let before: Vec<serde_json::Value> = queries.iter().map(|q| server.get_json(q).1).collect();
    server.stop();
    assert!(
        dir.path().join("derived").join("state.ckpt").exists(),
        "a clean stop writes a checkpoint"
    );
    let server = Server::start(dir.path(), &[]);
    let after: Vec<serde_json::Value> = queries.iter().map(|q| server.get_json(q).1).collect();
    assert_eq!(before, after);
}

/// A checkpoint is written once `--checkpoint-records` records came, not
/// only on the 10-minute timer, so an open after `kill -9` replays little.
#[test]
fn a_volume_of_records_brings_a_checkpoint_before_the_timer_does() {
    let dir = tempfile::tempdir().expect("tempdir");
    let checkpoint = dir.path().join("derived").join("state.ckpt");
    let mut server = Server::start(dir.path(), &["--checkpoint-records", "100"]);
    let mut acknowledged = Vec::new();
    for i in 0..30 {
        let batch: Vec<serde_json::Value> = (0..5)
            .map(|k| send_result(&format!("wamid.CKPT.{i}.{k}"), "Checkpoint"))
            .collect();
        let (status, _) = server.post_json("/v1/sends", &serde_json::json!(batch));
        assert_eq!(status, 200);
        acknowledged.extend((0..5).map(|k| format!("wamid.CKPT.{i}.{k}")));
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !checkpoint.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint after 150 records with --checkpoint-records 100"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    server.kill9();
    let server = Server::start(dir.path(), &[]);
    let (_, v) = server.get_json("/v1/logs?name=Checkpoint&limit=1000");
    let stored: std::collections::BTreeSet<String> = v["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["wamid"].as_str().map(String::from))
        .collect();
    for w in &acknowledged {
        assert!(stored.contains(w), "{w} was acknowledged and is missing");
    }
}
