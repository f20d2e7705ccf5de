//! The built-in payload dictionary: how it is made, and that it pays.

use ticks_engine::{Input, Source};
use ticks_ingest::generate::{Generator, GeneratorOptions};

/// A store configuration that seals all but the newest 8 rows in
/// compressed blocks, so that a small test store reads its rows the way a
/// large one does.
fn sealing(dir: impl Into<std::path::PathBuf>) -> ticks_engine::Config {
    let mut config = ticks_engine::Config::new(dir);
    config.unsealed_rows = 8;
    config
}

fn samples(messages: u64, seed: u64) -> Vec<Input> {
    let mut opts = GeneratorOptions::new(messages);
    opts.seed = seed;
    Generator::new(opts)
        .filter_map(|line| ticks_ingest::line_input(line, Source::Import, 0).ok())
        .collect()
}

/// Regenerates `engine/src/log/payload.dict` from generated traffic (no real
/// customer's data): `cargo test -p ticks-engine --test dictionary -- --ignored`.
#[test]
#[ignore]
fn train_the_payload_dictionary() {
    let dict = ticks_engine::train_dictionary(&samples(6000, 99), 64 * 1024).expect("train");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/log/payload.dict");
    std::fs::write(&path, &dict).expect("write");
    eprintln!("wrote {} bytes to {}", dict.len(), path.display());
}

#[test]
fn records_compressed_with_the_dictionary_read_back_byte_for_byte() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ticks_engine::Store::open(sealing(dir.path())).expect("open");
    let inputs = samples(300, 5);
    let raws: Vec<Vec<u8>> = inputs.iter().map(|i| i.raw.clone()).collect();
    store.append(inputs).expect("append");
    let mut read = Vec::new();
    for item in store.records() {
        if let (_, ticks_engine::Record::Input(rec)) = item.expect("decodes") {
            read.push(rec.raw);
        }
    }
    // Duplicates are not stored: every stored raw is one of the inputs, byte for byte.
    assert!(read.iter().all(|r| raws.contains(r)));
    assert!(read.len() > raws.len() * 9 / 10);
    store.close().expect("close");
}
