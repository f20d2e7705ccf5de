//! The store as a specification: status rules over a real store, reopening.

use proptest::prelude::*;
use ticks_engine::{
    DerivedFrom, Event, Field, Input, Key, MetaError, SendEvent, SendOutcome, Source, Status,
    StatusEvent, Store, WebhookStatus,
};

/// A store configuration that seals all but the newest 8 rows in
/// compressed blocks, so that a small test store reads its rows the way a
/// large one does.
fn sealing(dir: impl Into<std::path::PathBuf>) -> ticks_engine::Config {
    let mut config = ticks_engine::Config::new(dir);
    config.unsealed_rows = 8;
    config
}

fn status_event(status: WebhookStatus, at_s: i64, code: Option<i64>) -> Event {
    Event::Status(Box::new(StatusEvent {
        wamid: "wamid.P".into(),
        status,
        at_ms: at_s * 1000,
        recipient: Some("5511900000000".into()),
        user_id: None,
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
        errors: code
            .map(|c| {
                vec![MetaError {
                    code: Some(c),
                    ..Default::default()
                }]
            })
            .unwrap_or_default(),
    }))
}

fn send_event() -> Event {
    Event::Send(Box::new(SendEvent {
        recorded_ms: 999_000,
        wamid: Some("wamid.P".into()),
        response_code: Some(200),
        outcome: Some(SendOutcome::Accepted),
        name: Some("Campaign".into()),
        ..Default::default()
    }))
}

fn input(events: Vec<Event>) -> Input {
    Input {
        source: Source::Webhook,
        received_ms: 0,
        raw: b"{}".to_vec(),
        events,
    }
}

fn final_state(store: &Store) -> (Status, Option<i64>, u64) {
    let snap = store.snapshot();
    let id = snap.entry_for_wamid("wamid.P").expect("entry");
    let e = snap.entry(id).expect("row");
    let failed = snap
        .bitmap(Field::Status, Key::status(Status::Failed))
        .map_or(0, |b| b.len());
    (e.status, e.delivered_ms, failed)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Any order, any duplication, any grouping into inputs of a message's
    /// events gives the same final state as the events in natural order.
    #[test]
    fn any_permutation_and_duplication_of_status_events_gives_the_same_state(
        order in Just((0..6).collect::<Vec<usize>>()).prop_shuffle(),
        dups in proptest::collection::vec(0usize..6, 0..4),
        cuts in proptest::collection::vec(any::<bool>(), 10),
    ) {
        let events = |i: usize| match i {
            0 => send_event(),
            1 => status_event(WebhookStatus::Sent, 1000, None),
            2 => status_event(WebhookStatus::Delivered, 1010, None),
            3 => status_event(WebhookStatus::Read, 1100, None),
            4 => status_event(WebhookStatus::Failed, 1005, Some(131026)),
            _ => status_event(WebhookStatus::Sent, 1000, None), // a redelivery
        };
        let reference = {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = Store::open(sealing(dir.path())).expect("open");
            store.append((0..5).map(|i| input(vec![events(i)])).collect()).expect("append");
            let s = final_state(&store);
            store.close().expect("close");
            s
        };
        prop_assert_eq!(reference.0, Status::Read);
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(sealing(dir.path())).expect("open");
        let mut sequence: Vec<usize> = order.clone();
        sequence.extend(dups);
        // Group consecutive events into inputs as the cuts say.
        let mut inputs = Vec::new();
        let mut current = Vec::new();
        for (k, i) in sequence.into_iter().enumerate() {
            current.push(events(i));
            if cuts[k % cuts.len()] {
                inputs.push(input(std::mem::take(&mut current)));
            }
        }
        if !current.is_empty() {
            inputs.push(input(current));
        }
        for chunk in inputs.chunks(2) {
            store.append(chunk.to_vec()).expect("append");
        }
        prop_assert_eq!(final_state(&store), reference);
        store.close().expect("close");
        drop(store);
        let reopened = Store::open(sealing(dir.path())).expect("reopen");
        prop_assert_eq!(final_state(&reopened), reference);
        reopened.close().expect("close");
    }
}

#[test]
fn a_store_reopens_after_close_and_after_a_drop_without_close() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = Store::open(sealing(dir.path())).expect("open");
        store.append_one(input(vec![send_event()])).expect("append");
        store.close().expect("close");
    }
    {
        let _store = Store::open(sealing(dir.path())).expect("reopen");
    }
    let store = Store::open(sealing(dir.path())).expect("reopen again");
    assert_eq!(store.snapshot().live().len(), 1);
    store.close().expect("close");
}

#[cfg(unix)]
#[test]
fn a_close_that_changed_nothing_keeps_the_checkpoint_and_one_that_did_replaces_it() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let checkpoint = dir.path().join("derived").join("state.ckpt");
    // A checkpoint is written to a new file and renamed over the old one.
    let file_id = || {
        std::fs::metadata(&checkpoint)
            .expect("checkpoint file")
            .ino()
    };
    {
        let store = Store::open(sealing(dir.path())).expect("open");
        store.append_one(input(vec![send_event()])).expect("append");
        store.close().expect("close");
    }
    let written = file_id();
    {
        let store = Store::open(sealing(dir.path())).expect("reopen");
        assert_eq!(
            store.stats().expect("stats").derived_from,
            DerivedFrom::Checkpoint
        );
        assert_eq!(store.snapshot().live().len(), 1);
        store.close().expect("close");
    }
    assert_eq!(
        file_id(),
        written,
        "nothing was appended: the checkpoint stays"
    );
    {
        let store = Store::open(sealing(dir.path())).expect("reopen");
        let status = status_event(WebhookStatus::Delivered, 1_000, None);
        store.append_one(input(vec![status])).expect("append");
        store.close().expect("close");
    }
    assert_ne!(
        file_id(),
        written,
        "a record was appended: a new checkpoint"
    );
    let store = Store::open(sealing(dir.path())).expect("reopen");
    assert_eq!(
        store.stats().expect("stats").derived_from,
        DerivedFrom::Checkpoint
    );
    assert_eq!(final_state(&store).0, Status::Delivered);
    store.close().expect("close");
}

#[test]
fn invalid_configuration_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = sealing(dir.path());
    config.compression_level = 40;
    let err = Store::open(config).err().expect("refused");
    assert!(err.to_string().contains("compression_level"), "{err}");
}

#[test]
fn submitted_batches_are_written_in_submission_order_whatever_order_they_are_awaited() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(sealing(dir.path())).expect("open");
    // The status first, then its send: the status creates the entry and the
    // send joins it only if the two batches are applied in this order.
    let first = store
        .submit(vec![input(vec![status_event(
            WebhookStatus::Delivered,
            1_000,
            None,
        )])])
        .expect("submit");
    let second = store
        .submit(vec![input(vec![send_event()])])
        .expect("submit");
    let second = second.wait().expect("second batch");
    let first = first.wait().expect("first batch");
    let (first_seq, second_seq) = (
        first[0].seq.expect("stored"),
        second[0].seq.expect("stored"),
    );
    assert!(first_seq < second_seq, "{first_seq:?} then {second_seq:?}");
    assert_eq!(
        first[0].entries, second[0].entries,
        "one message, one entry"
    );
    assert_eq!(final_state(&store).0, Status::Delivered);
    store.close().expect("close");
}

#[test]
fn a_send_and_its_statuses_stored_together_are_found_by_the_words_and_ids_of_each() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(sealing(dir.path())).expect("open");
    let send = Event::Send(Box::new(SendEvent {
        recorded_ms: 999_000,
        wamid: Some("wamid.P".into()),
        response_code: Some(200),
        outcome: Some(SendOutcome::Accepted),
        name: Some("Natal Premiado".into()),
        phone: Some("5511900000000".into()),
        wa_id: Some("5511900000000".into()),
        correlation_id: Some("crm-7".into()),
        text: "seu pedido saiu para entrega".into(),
        ..Default::default()
    }));
    let mut sent = status_event(WebhookStatus::Sent, 1_000, None);
    if let Event::Status(st) = &mut sent {
        st.conversation_id = Some("conv77".into());
    }
    let mut failed = status_event(WebhookStatus::Failed, 1_010, Some(131026));
    if let Event::Status(st) = &mut failed {
        st.errors[0].title = Some("Message undeliverable".into());
    }
    // One append: the three records share a write group, and so a
    // document of the full-text index.
    store
        .append(vec![
            input(vec![send]),
            input(vec![sent]),
            input(vec![failed]),
        ])
        .expect("append");
    store.flush_text().expect("flush");
    let id = store
        .snapshot()
        .entry_for_wamid("wamid.P")
        .expect("entry")
        .0;
    for query in [
        "entrega",
        "\"saiu para\"",
        "natal",
        "conv77",
        "crm-7",
        "wamid.P",
        "5511900000000",
        "+55 11 90000-0000",
        "55119000*",
        "undeliverable",
        "undeliver*",
        "entrega undeliverable",
    ] {
        let found = store.text_search(query).expect("search");
        assert_eq!(found.iter().collect::<Vec<_>>(), vec![id], "{query}");
    }
    assert!(
        // The send's words end with its text, the failure's begin with
        // its code.
        store
            .text_search("\"entrega 131026\"")
            .expect("search")
            .is_empty(),
        "a phrase does not run from one record's text into the next"
    );
}
