//! The checkpoint file: the derived state saved at a clean stop (and
//! periodically), so an open need not replay the whole log.
//!
//! ```text
//! version 2: b"TICKSCKP" | 2 u32 LE | n u32 LE | n x length u64 LE | n zstd frames
//!   frame 0: bincode2(StateCheckpoint without its rows)
//!   frames 1..n: bincode2(Vec<Row>), consecutive chunks of the rows
//! version 1: b"TICKSCKP" | 1 u32 LE | zstd(bincode2(StateCheckpoint))   (read only)
//! ```
//!
//! Version 2 exists for speed: its frames are compressed and decoded on every
//! core at once (decoding 10M rows is most of a reopen). The frames are
//! plain zstd frames one after the other, so a tool that decompresses
//! everything after the index gets the whole state as bytes.

use crate::error::{io_err, Error, Result};
use crate::state::{Row, StateCheckpoint};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::Path;

const MAGIC: &[u8; 8] = b"TICKSCKP";
const VERSION: u32 = 2;
/// Rows per frame: enough frames to share among cores, each big enough to
/// compress well. Debug builds (every test) use small frames, so the tests'
/// stores of a few hundred entries go through the many-frame path too.
const ROWS_PER_FRAME: usize = if cfg!(debug_assertions) { 64 } else { 250_000 };

fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    let plain = bincode::serde::encode_to_vec(value, bincode::config::standard())
        .map_err(|e| Error::Encode(e.to_string()))?;
    zstd::bulk::compress(&plain, 1).map_err(|e| Error::Encode(e.to_string()))
}

fn decode<T: DeserializeOwned>(frame: &[u8]) -> Result<T> {
    let plain = zstd::stream::decode_all(frame).map_err(|e| Error::Encode(e.to_string()))?;
    let (value, _) = bincode::serde::decode_from_slice(&plain, bincode::config::standard())
        .map_err(|e| Error::Encode(e.to_string()))?;
    Ok(value)
}

/// Runs `job` on every item, on two threads, keeping the order.
fn on_two_threads<I: Sync, O: Send>(items: &[I], job: impl Fn(&I) -> O + Sync) -> Vec<O> {
    let half = items.len().div_ceil(2);
    let (first, second) = items.split_at(half);
    std::thread::scope(|scope| {
        let other = scope.spawn(|| second.iter().map(&job).collect::<Vec<O>>());
        let mut out: Vec<O> = first.iter().map(&job).collect();
        match other.join() {
            Ok(rest) => out.extend(rest),
            Err(panic) => std::panic::resume_unwind(panic),
        }
        out
    })
}

/// Reads a checkpoint; `None` when there is none or it is of an unknown
/// version (the state is then rebuilt from the log).
pub(crate) fn read(path: &Path) -> Result<Option<StateCheckpoint>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(path)(e)),
    };
    if bytes.len() < 12 || &bytes[..8] != MAGIC {
        return Ok(None);
    }
    let u32_at = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
    };
    match u32_at(8) {
        Some(1) => decode(&bytes[12..]).map(Some),
        Some(VERSION) => {
            let truncated = || Error::Encode(format!("{}: checkpoint truncated", path.display()));
            let n = u32_at(12).ok_or_else(truncated)? as usize;
            let mut frames = Vec::with_capacity(n);
            let mut at = 16 + 8 * n;
            for i in 0..n {
                let len_at = 16 + 8 * i;
                let len = bytes
                    .get(len_at..len_at + 8)
                    .and_then(|b| b.try_into().ok())
                    .map(u64::from_le_bytes)
                    .ok_or_else(truncated)? as usize;
                frames.push(bytes.get(at..at + len).ok_or_else(truncated)?);
                at += len;
            }
            let Some((head, chunks)) = frames.split_first() else {
                return Err(truncated());
            };
            let (head, chunks) = std::thread::scope(|scope| {
                let head = scope.spawn(|| decode::<StateCheckpoint>(head));
                let chunks = on_two_threads(chunks, |frame| decode::<Vec<Row>>(frame));
                (head.join(), chunks)
            });
            let mut cp = match head {
                Ok(head) => head?,
                Err(panic) => std::panic::resume_unwind(panic),
            };
            let mut rows = Vec::new();
            for chunk in chunks {
                rows.extend(chunk?);
            }
            cp.set_rows(rows);
            Ok(Some(cp))
        }
        _ => Ok(None),
    }
}

/// Writes a checkpoint: to a temporary file, fsynced, then renamed over the
/// old one, so a crash leaves the old checkpoint or the new one, never half.
pub(crate) fn write(path: &Path, mut cp: StateCheckpoint) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let rows = cp.take_rows();
    let chunks: Vec<&[Row]> = rows.chunks(ROWS_PER_FRAME).collect();
    let (head, chunks) = std::thread::scope(|scope| {
        let head = scope.spawn(|| encode(&cp));
        let chunks = on_two_threads(&chunks, |chunk| encode(*chunk));
        (head.join(), chunks)
    });
    let mut frames = vec![match head {
        Ok(head) => head?,
        Err(panic) => std::panic::resume_unwind(panic),
    }];
    for chunk in chunks {
        frames.push(chunk?);
    }
    let total: usize = frames.iter().map(Vec::len).sum();
    let mut bytes = Vec::with_capacity(16 + 8 * frames.len() + total);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&VERSION.to_le_bytes());
    bytes.extend_from_slice(&(frames.len() as u32).to_le_bytes());
    for frame in &frames {
        bytes.extend_from_slice(&(frame.len() as u64).to_le_bytes());
    }
    for frame in &frames {
        bytes.extend_from_slice(frame);
    }
    let tmp = path.with_extension("tmp");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
        f.write_all(&bytes).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
    }
    std::fs::rename(&tmp, path).map_err(io_err(path))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_of_many_frames_reads_back_every_row_in_order() {
        use crate::{Config, Event, Input, Source, StatusEvent, Store, WebhookStatus};
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(Config::new(dir.path())).expect("open");
        let entries = 3 * ROWS_PER_FRAME.min(100) + 7;
        for i in 0..entries {
            let status = StatusEvent {
                wamid: format!("wamid.{i}"),
                status: WebhookStatus::Delivered,
                at_ms: 1_700_000_000_000 + i as i64,
                recipient: Some("5511999990000".into()),
                phone_number_id: None,
                correlation_id: None,
                conversation_id: None,
                conversation_type: None,
                conversation_expiry_ms: None,
                pricing_category: None,
                pricing_model: None,
                billable: None,
                errors: vec![],
            };
            let input = Input {
                source: Source::Webhook,
                received_ms: 0,
                raw: b"{}".to_vec(),
                events: vec![Event::Status(Box::new(status))],
            };
            store.append_one(input).expect("append");
        }
        store.close().expect("close writes a checkpoint");
        let path = dir.path().join("derived").join("state.ckpt");
        let mut cp = read(&path)
            .expect("read")
            .expect("a checkpoint of this version");
        let rows = cp.take_rows();
        assert_eq!(rows.len(), entries);
        for (i, row) in rows.iter().enumerate() {
            assert_eq!(
                row.recorded_ms,
                1_700_000_000_000 + i as i64,
                "row {i} in place"
            );
        }
        let bytes = std::fs::read(&path).expect("file");
        let frames = u32::from_le_bytes(bytes[12..16].try_into().expect("4 bytes")) as usize;
        assert_eq!(frames, 1 + entries.div_ceil(ROWS_PER_FRAME));
    }

    #[test]
    fn the_order_of_items_survives_two_threads() {
        let items: Vec<u32> = (0..11).collect();
        assert_eq!(
            on_two_threads(&items, |i| i * 2),
            (0..11).map(|i| i * 2).collect::<Vec<_>>()
        );
        assert!(on_two_threads(&[] as &[u32], |i| *i).is_empty());
    }
}
