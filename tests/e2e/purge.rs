//! Purges: the export-first rule on the command line, a purge killed
//! midway, and retention.

use crate::support::*;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn live(store: &Path) -> u64 {
    let out = ticks(store, &["stats"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    v["live_entries"].as_u64().expect("live entries")
}

fn total(store: &Path, filter: &str) -> u64 {
    let out = ticks(store, &["query", filter, "limit=1", "--format", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    v["total"].as_u64().expect("total")
}

/// Periods of the keyring that hold more than one key generation: a re-key
/// (and so a purge's erasure) that has not finished.
fn unfinished_rekeys(store: &Path) -> usize {
    let bytes = std::fs::read(store.join("keyring")).expect("keyring");
    let mut periods: Vec<&[u8]> = bytes[16..].chunks(40).map(|c| &c[..4]).collect();
    let n = periods.len();
    periods.dedup();
    n - periods.len()
}

#[test]
fn the_purge_command_refuses_without_an_export_and_exports_first_when_asked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    import(&store, &generated(200, 3));
    let name = "name=Black Friday 2025";
    let before = total(&store, name);
    assert!(before > 0);
    let refused = ticks(&store, &["purge", name]);
    assert!(!refused.status.success());
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(
        why.contains("export") && why.contains(&format!("of these {before} entries")),
        "{why}"
    );
    assert_eq!(total(&store, name), before, "nothing was deleted");

    let exports = dir.path().join("exports");
    let out = ticks(
        &store,
        &[
            "purge",
            name,
            "--export-to",
            exports.to_str().expect("path"),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let purged: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(purged["deleted"].as_u64(), Some(before));
    assert_eq!(purged["forced"], false);
    assert!(purged["receipt"].is_string());
    assert_eq!(total(&store, name), 0);
    // The export is complete: importing it into an empty store gives the entries back.
    let file = std::fs::read_dir(&exports)
        .expect("exports")
        .flatten()
        .next()
        .expect("an export file")
        .path();
    let restored = dir.path().join("restored");
    let out = ticks(&restored, &["import", file.to_str().expect("path")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(total(&restored, name), before);

    let forced = ticks(&store, &["purge", "status=failed", "--force"]);
    assert!(forced.status.success());
    let v: serde_json::Value = serde_json::from_slice(&forced.stdout).expect("json");
    assert_eq!(v["forced"], true);
    assert_eq!(total(&store, "status=failed"), 0);
    assert!(ticks(&store, &["check"]).status.success());
}

#[test]
fn a_purge_killed_midway_is_all_or_nothing_and_finishes_on_the_next_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path().join("base");
    import(&base, &generated(2000, 5));
    let name = "name=Natal Premiado";
    let before = total(&base, name);
    let all = live(&base);
    assert!(before > 0);
    let mut outcomes = Vec::new();
    for (round, delay_ms) in [1u64, 15, 40, 80, 150, 300].into_iter().enumerate() {
        let store = dir.path().join(format!("round{round}"));
        copy_dir(&base, &store);
        let mut child = Command::new(env!("CARGO_BIN_EXE_ticks"))
            .arg("--data")
            .arg(&store)
            .args(["purge", name, "--force"])
            .env("TICKS_LOG", "warn")
            .spawn()
            .expect("spawn purge");
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        // The next open sees all of the purge or none of it, and finishes it.
        let after = total(&store, name);
        assert!(
            after == 0 || after == before,
            "round {round}: {after} of {before} left"
        );
        assert_eq!(
            live(&store),
            all - (before - after),
            "other entries untouched"
        );
        assert_eq!(
            unfinished_rekeys(&store),
            0,
            "round {round}: erasure finished on open"
        );
        let check = ticks(&store, &["check"]);
        assert!(
            check.status.success(),
            "round {round}: {}",
            String::from_utf8_lossy(&check.stdout)
        );
        outcomes.push(after);
    }
    eprintln!("entries left after each kill: {outcomes:?} (of {before})");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read").flatten() {
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).expect("copy");
        }
    }
}

#[test]
fn retention_exports_then_purges_entries_older_than_the_maximum_age() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    // January 2025 traffic (old), and traffic that ends now (recent).
    import(&store, &generated(150, 7));
    let recent = Command::new(env!("CARGO_BIN_EXE_ticks"))
        .args([
            "generate",
            "--messages",
            "80",
            "--seed",
            "8",
            "--days",
            "5",
            "--until-now",
        ])
        .output()
        .expect("generate");
    assert!(recent.status.success());
    let recent_file = dir.path().join("recent.ndjson");
    std::fs::write(&recent_file, &recent.stdout).expect("write");
    assert!(
        ticks(&store, &["import", recent_file.to_str().expect("path")])
            .status
            .success()
    );
    let everything = live(&store);
    let cutoff = ticks_cutoff(400);
    let old = total(&store, &format!("to={cutoff}"));
    assert!(old > 0 && old < everything, "{old} of {everything}");

    let exports = dir.path().join("retention");
    let s = Server::start(
        &store,
        &[
            "--retention-days",
            "400",
            "--retention-export-dir",
            exports.to_str().expect("path"),
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let purges = loop {
        let (_, v) = s.get_json("/v1/purges");
        let list = v["purges"].as_array().cloned().unwrap_or_default();
        if !list.is_empty() {
            break list;
        }
        assert!(
            Instant::now() < deadline,
            "no retention purge within a minute"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(purges[0]["actor"], "retention");
    assert_eq!(purges[0]["count"].as_u64(), Some(old));
    assert_eq!(purges[0]["forced"], false);
    assert_eq!(
        s.get_json("/v1/logs?limit=1").1["total"].as_u64(),
        Some(everything - old)
    );
    let (_, receipts) = s.get_json("/v1/receipts");
    let receipt = receipts["receipts"]
        .as_array()
        .expect("receipts")
        .iter()
        .find(|r| r["id"] == purges[0]["receipt"])
        .cloned()
        .expect("the purge's receipt");
    assert_eq!(receipt["count"].as_u64(), Some(old));
    let files: Vec<_> = std::fs::read_dir(&exports)
        .expect("exports")
        .flatten()
        .collect();
    assert_eq!(files.len(), 1);
    let bytes = std::fs::read(files[0].path()).expect("read");
    assert_eq!(hex_sha256(&bytes), receipt["sha256"].as_str().expect("sha"));
}

/// RFC 3339 of now minus `days`, as the `to` filter takes it.
fn ticks_cutoff(days: i64) -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    now - days * 86_400_000
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
