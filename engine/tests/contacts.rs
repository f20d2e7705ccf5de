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

fn send(wamid: &str, phone: Option<&str>, wa_id: Option<&str>, user_id: Option<&str>) -> Event {
    Event::Send(Box::new(SendEvent {
        recorded_ms: 1_000_000,
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
        phone_number_id: Some("1".into()),
        correlation_id: None,
        conversation_id: None,
        conversation_type: None,
        conversation_expiry_ms: None,
        pricing_category: None,
        pricing_model: None,
        billable: None,
        errors: Vec::new(),
    }))
}

fn inbound(
    wamid: &str,
    from: Option<&str>,
    user_id: Option<&str>,
    username: Option<&str>,
    change: Option<IdentityChange>,
) -> Event {
    Event::Inbound(Box::new(InboundEvent {
        wamid: wamid.into(),
        from: from.map(String::from),
        user_id: user_id.map(String::from),
        username: username.map(String::from),
        identity_change: change,
        phone_number_id: Some("1".into()),
        at_ms: 1_001_000,
        content_type: "text".into(),
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
        send("w.br", Some("5511981390501"), Some("551181390501"), None),
        inbound("w.br.reply", Some("551181390501"), None, None, None),
        send("w.kim", Some("16505551234"), Some("16505551234"), None),
        status("w.kim", Some("16505551234"), Some("US.111")),
        inbound(
            "w.kim.change",
            Some("16505551234"),
            None,
            None,
            Some(IdentityChange {
                new_wa_id: Some("16505559999".into()),
                ..Default::default()
            }),
        ),
        inbound("w.kim.new", Some("16505559999"), None, None, None),
        send("w.sam", None, None, Some("US.222")),
        inbound("w.sam.reply", None, Some("US.222"), Some("samcooks"), None),
        inbound("w.stranger", Some("551181390777"), None, None, None),
    ]
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
    let br = set(&["w.br", "w.br.reply"]);
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn any_order_and_duplication_gives_the_same_people_and_a_rebuild_too(
        order in Just((0..9).collect::<Vec<usize>>()).prop_shuffle(),
        dups in proptest::collection::vec(0usize..9, 0..5),
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
        for chunk in sequence.chunks(batch) {
            store.append(chunk.iter().cloned().map(|e| input(vec![e])).collect()).expect("append");
        }
        prop_assert_eq!(people(&store), reference.clone());
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
