//! Markets as a specification: every entry with a person knows the
//! person's country (from the number WhatsApp answers with, the number as
//! dialled, or the business-scoped user id's prefix), and every outbound
//! message whose pricing arrived knows whether Meta charges for it.

use ticks_engine::{EntryId, Field};
use ticks_engine::{
    Event, InboundEvent, Input, SendEvent, SendOutcome, Source, StatusEvent, Store, Value,
    WebhookStatus,
};

fn send(wamid: &str, phone: Option<&str>, wa_id: Option<&str>, user_id: Option<&str>) -> Event {
    Event::Send(Box::new(SendEvent {
        recorded_ms: 1_000_000,
        wamid: Some(wamid.into()),
        response_code: Some(200),
        outcome: Some(SendOutcome::Accepted),
        phone: phone.map(String::from),
        wa_id: wa_id.map(String::from),
        user_id: user_id.map(String::from),
        ..Default::default()
    }))
}

fn priced(wamid: &str, pricing_type: Option<&str>, billable: Option<bool>) -> Event {
    Event::Status(Box::new(StatusEvent {
        wamid: wamid.into(),
        status: WebhookStatus::Sent,
        at_ms: 1_000_500,
        recipient: None,
        user_id: None,
        parent_user_id: None,
        participant: None,
        phone_number_id: None,
        correlation_id: None,
        conversation_id: None,
        conversation_type: None,
        conversation_expiry_ms: None,
        pricing_category: Some("marketing".into()),
        pricing_model: Some("PMP".into()),
        pricing_type: pricing_type.map(String::from),
        billable,
        errors: Vec::new(),
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

fn wamids(store: &Store, field: Field, value: Value) -> Vec<String> {
    let snap = store.snapshot();
    let ids: Vec<u32> = snap.any_of(field, &[value]).iter().collect();
    let mut out: Vec<String> = snap
        .entries(&ids)
        .into_iter()
        .filter_map(|e| e.wamid)
        .collect();
    out.sort();
    out
}

#[test]
fn a_persons_country_comes_from_their_number_or_their_user_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(ticks_engine::Config::new(dir.path())).expect("open");
    store
        .append(vec![input(vec![
            // WhatsApp's answer names the country even when the dialled
            // number is in a national format.
            send("w.br", Some("011981390501"), Some("551181390501"), None),
            send("w.mx", Some("5215512345678"), None, None),
            send("w.ca", Some("14165550123"), None, None),
            // A person who hides their number: the user id's prefix.
            send("w.bsuid", None, None, Some("US.13491208655302741918")),
            // A national number and nothing else: no country, not a guess.
            send("w.local", Some("011981390502"), None, None),
            Event::Inbound(Box::new(InboundEvent {
                wamid: "w.jp.in".into(),
                from: Some("819012345678".into()),
                at_ms: 1_000_100,
                content_type: "text".into(),
                text: "こんにちは".into(),
                ..Default::default()
            })),
        ])])
        .expect("append");
    let country = |c: &str| wamids(&store, Field::Country, Value::Text(c.into()));
    assert_eq!(country("BR"), ["w.br"]);
    assert_eq!(country("MX"), ["w.mx"]);
    assert_eq!(country("CA"), ["w.ca"]);
    assert_eq!(country("US"), ["w.bsuid"]);
    assert_eq!(country("JP"), ["w.jp.in"]);
    assert_eq!(wamids(&store, Field::Country, Value::None), ["w.local"]);
    let snap = store.snapshot();
    let entry = snap.entry(EntryId(0)).expect("first entry");
    assert_eq!(entry.country.as_deref(), Some("BR"));
    drop(snap);
    store.close().expect("close");
}

#[test]
fn a_status_that_names_the_wa_id_places_a_message_sent_to_a_national_number() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(ticks_engine::Config::new(dir.path())).expect("open");
    store
        .append(vec![input(vec![send(
            "w.1",
            Some("011981390501"),
            None,
            None,
        )])])
        .expect("append");
    assert_eq!(
        wamids(&store, Field::Country, Value::None),
        ["w.1"],
        "no country before WhatsApp named the account"
    );
    let mut st = priced("w.1", None, None);
    if let Event::Status(s) = &mut st {
        s.recipient = Some("551181390501".into());
    }
    store.append(vec![input(vec![st])]).expect("append");
    assert_eq!(
        wamids(&store, Field::Country, Value::Text("BR".into())),
        ["w.1"]
    );
    store.close().expect("close");
}

#[test]
fn billable_follows_the_pricing_type_and_the_old_flag_only_without_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(ticks_engine::Config::new(dir.path())).expect("open");
    let phone = Some("5511981390501");
    store
        .append(vec![input(vec![
            send("w.regular", phone, None, None),
            send("w.free", phone, None, None),
            send("w.old.billable", phone, None, None),
            send("w.old.free", phone, None, None),
            send("w.unpriced", phone, None, None),
            send("w.disagree", phone, None, None),
            priced("w.regular", Some("regular"), None),
            priced("w.free", Some("free_customer_service"), None),
            priced("w.old.billable", None, Some(true)),
            priced("w.old.free", None, Some(false)),
            // The type decides when both come (billable is deprecated).
            priced("w.disagree", Some("free_entry_point"), Some(true)),
        ])])
        .expect("append");
    assert_eq!(
        wamids(&store, Field::Billable, Value::Billable(true)),
        ["w.old.billable", "w.regular"]
    );
    assert_eq!(
        wamids(&store, Field::Billable, Value::Billable(false)),
        ["w.disagree", "w.free", "w.old.free"]
    );
    assert_eq!(wamids(&store, Field::Billable, Value::None), ["w.unpriced"]);
    store.close().expect("close");
}
