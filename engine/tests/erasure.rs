//! Deleted means unrecoverable: after a purge, no file of the data
//! directory holds any purged content, neither as bytes nor once decoded
//! (log records decrypted, the checkpoint decompressed, the full-text
//! index's terms listed), and the keys that encrypted it are gone.
//! Before the purge the same searches find every marker, so the test
//! cannot pass by looking in the wrong place.

use std::path::Path;
use ticks_engine::{EntryId, Record, Source, Store};

/// A store configuration that seals all but the newest 8 rows in
/// compressed blocks, so that a small test store reads its rows the way a
/// large one does.
fn sealing(dir: impl Into<std::path::PathBuf>) -> ticks_engine::Config {
    let mut config = ticks_engine::Config::new(dir);
    config.unsealed_rows = 8;
    config
}

fn send(wamid: &str, name: &str, phone: &str, text: &str) -> ticks_engine::Input {
    let raw = serde_json::json!({
        "recorded_at": "2025-03-01T10:00:03-03:00",
        "category": "message_bot",
        "name": name,
        "recipient_type": "customer",
        "request": {"messaging_product": "whatsapp", "to": phone, "type": "text", "text": {"body": text}},
        "response_code": 200,
        "response": {"messaging_product": "whatsapp", "contacts": [{"input": phone, "wa_id": phone}], "messages": [{"id": wamid}]}
    });
    ticks_ingest::send_input(
        raw.to_string().into_bytes(),
        Source::SendApi,
        1_740_834_000_000,
    )
    .expect("a valid send")
}

fn inbound_batch(messages: &[(&str, &str, &str)]) -> ticks_engine::Input {
    let contacts: Vec<_> = messages
        .iter()
        .map(|(_, from, _)| serde_json::json!({"profile": {"name": "Cliente"}, "wa_id": from}))
        .collect();
    let msgs: Vec<_> = messages
        .iter()
        .map(|(id, from, text)| serde_json::json!({"from": from, "id": id, "timestamp": "1740834500", "type": "text", "text": {"body": text}}))
        .collect();
    let raw = serde_json::json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
        "contacts": contacts, "messages": msgs}}]}]});
    ticks_ingest::webhook_input(
        raw.to_string().into_bytes(),
        Source::Webhook,
        1_740_834_600_000,
    )
    .expect("a valid webhook")
}

fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Files holding `needle` as bytes, in either case.
fn files_with(dir: &Path, needle: &str) -> Vec<String> {
    let (upper, lower) = (needle.to_uppercase(), needle.to_lowercase());
    files(dir)
        .into_iter()
        .filter(|p| {
            let b = std::fs::read(p).unwrap_or_default();
            contains(&b, upper.as_bytes()) || contains(&b, lower.as_bytes())
        })
        .map(|p| p.display().to_string())
        .collect()
}

/// Where `needle` appears once everything is decoded.
fn decoded_with(store: &Store, dir: &Path, needle: &str) -> Vec<String> {
    let lower = needle.to_lowercase();
    let mut found = Vec::new();
    for item in store.records() {
        let (seq, record) = item.expect("every record decodes");
        if let Record::Input(rec) = record {
            if contains(&rec.raw.to_ascii_lowercase(), lower.as_bytes())
                || format!("{:?}", rec.events).to_lowercase().contains(&lower)
            {
                found.push(format!("log record {}", seq.0));
            }
        }
    }
    // Every zstd frame in the checkpoint, wherever it starts: its own
    // frames and the sealed blocks of rows nested in skippable frames.
    let ckpt = std::fs::read(dir.join("derived").join("state.ckpt")).expect("checkpoint");
    const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
    let (mut frames, mut in_checkpoint) = (0, false);
    for at in 0..ckpt.len().saturating_sub(4) {
        if ckpt[at..at + 4] != ZSTD_MAGIC {
            continue;
        }
        let Ok(decoder) = zstd::stream::read::Decoder::new(&ckpt[at..]) else {
            continue;
        };
        let mut plain = Vec::new();
        if std::io::Read::read_to_end(&mut decoder.single_frame(), &mut plain).is_err() {
            continue;
        }
        frames += 1;
        in_checkpoint |= contains(&plain.to_ascii_lowercase(), lower.as_bytes());
    }
    assert!(frames > 1, "the checkpoint's frames decode");
    if in_checkpoint {
        found.push("checkpoint".into());
    }
    let index = tantivy::Index::open_in_dir(dir.join("text")).expect("text index");
    let reader = index.reader().expect("reader");
    let searcher = reader.searcher();
    for field_name in ["text", "exact"] {
        let field = index.schema().get_field(field_name).expect("field");
        for segment in searcher.segment_readers() {
            let inverted = segment.inverted_index(field).expect("inverted index");
            let mut terms = inverted.terms().stream().expect("terms");
            while terms.advance() {
                if String::from_utf8_lossy(terms.key())
                    .to_lowercase()
                    .contains(&lower)
                {
                    found.push(format!("index term in {field_name}"));
                }
            }
        }
    }
    found
}

fn keys_in_keyring(dir: &Path) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(dir.join("keyring")).expect("keyring");
    bytes[16..].chunks(40).map(|c| c[8..].to_vec()).collect()
}

#[test]
fn after_a_purge_no_file_holds_purged_content_and_the_old_keys_are_gone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path();
    let store = Store::open(sealing(path)).expect("open");
    let mut inputs = Vec::new();
    for i in 0..30 {
        inputs.push(send(
            &format!("wamid.GONE{i}"),
            "Gone Campaign",
            &format!("55119000{i:05}"),
            &format!("purgemarker{i}q confidential"),
        ));
        inputs.push(send(
            &format!("wamid.STAY{i}"),
            "Stay Campaign",
            &format!("55219000{i:05}"),
            &format!("keepmarker{i}q hello"),
        ));
    }
    // One webhook carries a message to purge and one to keep.
    inputs.push(inbound_batch(&[
        ("wamid.INGONE", "5511777700001", "purgemarkerbatchq secret"),
        ("wamid.INSTAY", "5511777700002", "keepmarkerbatchq fine"),
    ]));
    store.append(inputs).expect("append");
    store.flush_text().expect("flush text");
    store.checkpoint().expect("checkpoint");

    // Before: every marker is found once decoded.
    let before = decoded_with(&store, path, "purgemarker");
    for place in ["log record", "checkpoint", "index term in text"] {
        assert!(
            before.iter().any(|f| f.starts_with(place)),
            "{place} should hold the markers: {before:?}"
        );
    }
    assert!(decoded_with(&store, path, "wamid.GONE7")
        .iter()
        .any(|f| f.starts_with("index term in exact")));
    let old_keys = keys_in_keyring(path);
    assert!(!old_keys.is_empty());

    let snap = store.snapshot();
    let mut ids = roaring::RoaringBitmap::new();
    for i in 0..30 {
        ids.insert(
            snap.entry_for_wamid(&format!("wamid.GONE{i}"))
                .expect("gone")
                .0,
        );
    }
    ids.insert(snap.entry_for_wamid("wamid.INGONE").expect("in gone").0);
    let survivor = snap.entry_for_wamid("wamid.INSTAY").expect("in stay");
    drop(snap);
    store
        .purge(&ids, "test", "name=Gone Campaign", None, true)
        .expect("purge");

    let check_gone = |store: &Store| {
        for needle in ["purgemarker", "wamid.GONE", "wamid.INGONE", "5511777700001"] {
            assert_eq!(
                files_with(path, needle),
                Vec::<String>::new(),
                "{needle} as bytes"
            );
            assert_eq!(
                decoded_with(store, path, needle),
                Vec::<String>::new(),
                "{needle} decoded"
            );
        }
        for key in &old_keys {
            let holders: Vec<_> = files(path)
                .into_iter()
                .filter(|p| contains(&std::fs::read(p).unwrap_or_default(), key))
                .collect();
            assert!(holders.is_empty(), "old key material in {holders:?}");
        }
        // The survivors are intact, the batched one included.
        assert!(!decoded_with(store, path, "keepmarker7q").is_empty());
        let detail = store
            .entry_detail(survivor)
            .expect("detail")
            .expect("survivor");
        let raw = String::from_utf8_lossy(&detail.inputs[0].raw).to_string();
        assert!(
            raw.contains("keepmarkerbatchq") && !raw.contains("purgemarker"),
            "{raw}"
        );
        assert_eq!(
            store.text_search("keepmarkerbatchq").expect("search").len(),
            1
        );
        assert!(store
            .text_search("purgemarker3q")
            .expect("search")
            .is_empty());
        let snap = store.snapshot();
        assert_eq!(snap.live().len(), 31);
        assert!(snap.entry(EntryId(ids.min().expect("id"))).is_none());
    };
    check_gone(&store);
    store.close().expect("close");
    drop(store);
    let store = Store::open(sealing(path)).expect("reopen");
    check_gone(&store);
    assert_eq!(store.check().expect("check"), Vec::<String>::new());
    store.close().expect("close");
}
