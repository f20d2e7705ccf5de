//! Contacts as a specification: the same inputs in any order, any number of
//! times, give the same people; a rebuild from the log gives them again; a
//! purge of a person's entries forgets every identifier of theirs.

use proptest::prelude::*;
use std::collections::BTreeSet;
use ticks_engine::{
    Event, IdentityChange, InboundEvent, Input, SendEvent, SendOutcome, Source, StatusEvent, Store,
    WebhookStatus,
};

fn config(dir: &std::path::Path) -> ticks_engine::Config {
    let mut config = ticks_engine::Config::new(dir);
    config.unsealed_rows = 4;
    config
}

fn send(
    at_ms: i64,
    wamid: &str,
    phone: Option<&str>,
    wa_id: Option<&str>,
    user_id: Option<&str>,
) -> Event {
    Event::Send(Box::new(SendEvent {
        recorded_ms: at_ms,
        wamid: Some(wamid.into()),
        response_code: Some(200),
        outcome: Some(SendOutcome::Accepted),
        phone_number_id: Some("1".into()),
        phone: phone.map(String::from),
        wa_id: wa_id.map(String::from),
        user_id: user_id.map(String::from),
        ..Default::default()
    }))
}

fn status(wamid: &str, recipient: Option<&str>, user_id: Option<&str>) -> Event {
    Event::Status(Box::new(StatusEvent {
        wamid: wamid.into(),
        status: WebhookStatus::Delivered,
        at_ms: 1_000_500,
        recipient: recipient.map(String::from),
        user_id: user_id.map(String::from),
        parent_user_id: None,
        participant: None,
        phone_number_id: Some("1".into()),
        correlation_id: None,
        conversation_id: None,
        conversation_type: None,
        conversation_expiry_ms: None,
        pricing_category: None,
        pricing_model: None,
        pricing_type: None,
        billable: None,
        errors: Vec::new(),
    }))
}

fn inbound(
    at_ms: i64,
    wamid: &str,
    from: Option<&str>,
    user_id: Option<&str>,
    username: Option<&str>,
    change: Option<IdentityChange>,
) -> Event {
    let content_type = if change.is_some() { "system" } else { "text" };
    Event::Inbound(Box::new(InboundEvent {
        wamid: wamid.into(),
        from: from.map(String::from),
        user_id: user_id.map(String::from),
        username: username.map(String::from),
        identity_change: change,
        phone_number_id: Some("1".into()),
        at_ms,
        content_type: content_type.into(),
        text: format!("message {wamid}"),
        ..Default::default()
    }))
}

/// Three people's traffic: a Brazilian customer dialled with the ninth
/// digit and answering from the older number; a person known by number and
/// BSUID who later changes number; a person with only a BSUID and a
/// username; and a stranger whose number looks like the first's.
fn events() -> Vec<Event> {
    vec![
        send(
            1_000_000,
            "w.br",
            Some("5511981390501"),
            Some("551181390501"),
            None,
        ),
        inbound(
            1_050_000,
            "w.br.reply",
            Some("551181390501"),
            None,
            None,
            None,
        ),
        send(
            1_001_000,
            "w.kim",
            Some("16505551234"),
            Some("16505551234"),
            None,
        ),
        status("w.kim", Some("16505551234"), Some("US.111")),
        inbound(
            1_060_000,
            "w.kim.change",
            Some("16505551234"),
            None,
            None,
            Some(IdentityChange {
                new_wa_id: Some("16505559999".into()),
                ..Default::default()
            }),
        ),
        inbound(
            1_070_000,
            "w.kim.new",
            Some("16505559999"),
            None,
            None,
            None,
        ),
        send(1_002_000, "w.sam", None, None, Some("US.222")),
        inbound(
            1_080_000,
            "w.sam.reply",
            None,
            Some("US.222"),
            Some("samcooks"),
            None,
        ),
        inbound(
            1_090_000,
            "w.stranger",
            Some("551181390777"),
            None,
            None,
            None,
        ),
        // A second message to the Brazilian customer, after the reply:
        // the reply still answers the first.
        send(
            1_100_000,
            "w.br.2",
            Some("5511981390501"),
            Some("551181390501"),
            None,
        ),
    ]
}

/// What each reply answers: (reply wamid, answered wamid, attribution).
fn answers(store: &Store) -> Vec<(String, Option<String>, Option<String>)> {
    let snap = store.snapshot();
    let n = snap.entry_count() as u32;
    let entries = snap.entries(&(0..n).collect::<Vec<_>>());
    let wamid_of = |id: ticks_engine::EntryId| {
        entries
            .iter()
            .find(|e| e.id == id)
            .and_then(|e| e.wamid.clone())
    };
    let mut out: Vec<_> = entries
        .iter()
        .filter(|e| e.direction == ticks_engine::Direction::Inbound)
        .map(|e| {
            (
                e.wamid.clone().unwrap_or_default(),
                e.in_reply_to.and_then(wamid_of),
                e.attribution.map(|a| a.as_str().to_string()),
            )
        })
        .collect();
    out.sort();
    out
}

fn input(events: Vec<Event>) -> Input {
    Input {
        source: Source::Webhook,
        received_ms: 0,
        raw: b"{}".to_vec(),
        events,
    }
}

/// Who each identifier finds: the wamids of its contact's entries.
fn people(store: &Store) -> Vec<(String, BTreeSet<String>)> {
    let snap = store.snapshot();
    [
        "5511981390501",
        "551181390501",
        "16505551234",
        "16505559999",
        "US.111",
        "US.222",
        "@samcooks",
        "551181390777",
    ]
    .iter()
    .map(|typed| {
        let ids: Vec<u32> = snap
            .contact(typed)
            .map_or_else(Vec::new, |c| c.entries.iter().collect());
        let wamids = snap
            .entries(&ids)
            .into_iter()
            .filter_map(|e| e.wamid)
            .collect();
        (typed.to_string(), wamids)
    })
    .collect()
}

fn set(wamids: &[&str]) -> BTreeSet<String> {
    wamids.iter().map(|w| w.to_string()).collect()
}

#[test]
fn the_people_of_the_traffic_are_who_the_data_says() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(config(dir.path())).expect("open");
    store
        .append(events().into_iter().map(|e| input(vec![e])).collect())
        .expect("append");
    let people = people(&store);
    let br = set(&["w.br", "w.br.reply", "w.br.2"]);
    let kim = set(&["w.kim", "w.kim.change", "w.kim.new"]);
    let sam = set(&["w.sam", "w.sam.reply"]);
    let expected = vec![
        ("5511981390501".to_string(), br.clone()),
        ("551181390501".to_string(), br),
        ("16505551234".to_string(), kim.clone()),
        ("16505559999".to_string(), kim.clone()),
        ("US.111".to_string(), kim),
        ("US.222".to_string(), sam.clone()),
        ("@samcooks".to_string(), sam),
        ("551181390777".to_string(), set(&["w.stranger"])),
    ];
    assert_eq!(people, expected);
    store.close().expect("close");
}

#[test]
fn unquoted_replies_answer_the_persons_latest_message_before_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(config(dir.path())).expect("open");
    store
        .append(events().into_iter().map(|e| input(vec![e])).collect())
        .expect("append");
    let inferred = |w: &str| {
        (
            w.to_string(),
            Some(w.split(".r").next().unwrap_or(w).to_string()),
        )
    };
    let got: Vec<(String, Option<String>)> = answers(&store)
        .into_iter()
        .map(|(r, a, kind)| {
            if a.is_some() {
                assert_eq!(kind.as_deref(), Some("inferred"), "{r}");
            }
            (r, a)
        })
        .collect();
    assert_eq!(
        got,
        vec![
            // The reply came before the second message: it answers the first.
            inferred("w.br.reply"),
            ("w.kim.change".to_string(), None),
            ("w.kim.new".to_string(), Some("w.kim".to_string())),
            inferred("w.sam.reply"),
            ("w.stranger".to_string(), None),
        ]
    );
    store.close().expect("close");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn any_order_and_duplication_gives_the_same_people_and_a_rebuild_too(
        order in Just((0..10).collect::<Vec<usize>>()).prop_shuffle(),
        dups in proptest::collection::vec(0usize..10, 0..5),
        batch in 1usize..4,
    ) {
        let all = events();
        let reference = {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = Store::open(config(dir.path())).expect("open");
            store.append(all.iter().cloned().map(|e| input(vec![e])).collect()).expect("append");
            let p = people(&store);
            store.close().expect("close");
            p
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(config(dir.path())).expect("open");
        let sequence: Vec<Event> = order.iter().chain(&dups).map(|i| all[*i].clone()).collect();
        let reference_answers = {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = Store::open(config(dir.path())).expect("open");
            store.append(all.iter().cloned().map(|e| input(vec![e])).collect()).expect("append");
            let a = answers(&store);
            store.close().expect("close");
            a
        };
        for chunk in sequence.chunks(batch) {
            store.append(chunk.iter().cloned().map(|e| input(vec![e])).collect()).expect("append");
        }
        prop_assert_eq!(people(&store), reference.clone());
        prop_assert_eq!(answers(&store), reference_answers.clone());
        store.close().expect("close");
        drop(store);
        // From the checkpoint, then from the log alone.
        let reopened = Store::open(config(dir.path())).expect("reopen");
        prop_assert_eq!(people(&reopened), reference.clone());
        reopened.close().expect("close");
        drop(reopened);
        ticks_engine::drop_derived(dir.path()).expect("drop derived");
        let rebuilt = Store::open(config(dir.path())).expect("rebuild");
        prop_assert_eq!(people(&rebuilt), reference);
        prop_assert_eq!(answers(&rebuilt), reference_answers);
        rebuilt.close().expect("close");
    }
}

fn files_with(dir: &std::path::Path, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if std::fs::read(&path)
                .expect("read")
                .windows(needle.len())
                .any(|w| w == needle.as_bytes())
            {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

#[test]
fn a_purge_of_a_persons_entries_forgets_their_identifiers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(config(dir.path())).expect("open");
    store
        .append(events().into_iter().map(|e| input(vec![e])).collect())
        .expect("append");
    let sam = store.snapshot().contact("US.222").expect("sam").entries;
    store
        .purge(&sam, "test", "contact=US.222", None, true)
        .expect("purge");
    assert!(store.snapshot().contact("US.222").is_none());
    assert!(store.snapshot().contact("@samcooks").is_none());
    assert!(store.snapshot().contact("US.111").is_some(), "others stay");
    // A purge of one of Kim's entries keeps Kim, and what the other entries say.
    let change = store.snapshot().contact_entries("16505551234");
    assert_eq!(change.len(), 3);
    store.close().expect("close");
    drop(store);
    for needle in ["US.222", "samcooks"] {
        assert_eq!(
            files_with(dir.path(), needle),
            Vec::<String>::new(),
            "{needle}"
        );
    }
}
