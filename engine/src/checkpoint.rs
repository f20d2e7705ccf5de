//! The checkpoint file: the derived state saved so that an open replays
//! only the log records after it, instead of the whole log.
//!
//! ```text
//! b"TICKSCKP" | version u32 LE
//! zstd frame: bincode2(CheckpointHead)        applied seq, row count, strings, maps
//! zstd frame: bincode2(Row) x ROWS_PER_FRAME  the rows, in id order, in several frames
//! ...
//! zstd frame: bincode2(Option<SavedIndexes>)  bitmaps and key columns
//! zstd skippable frame: the table of frames   (kind u8, offset u64, length u64,
//!                                              plain length u64, rows u64) x n
//!                                             | CRC-32 of those entries u32 LE | n u32 LE
//! ```
//!
//! The frames are independent, so an open decodes the rows on two threads,
//! each from its own file handle, and reads the head first to decide
//! whether the rest is worth reading. A frame is decompressed whole and its
//! rows decoded from the slice: bincode reading through `std::io::Read`
//! costs a call per field, which was most of the time of an open. A plain
//! zstd decoder reads the whole file after the 12-byte header as one stream
//! (it skips the table).
//!
//! The file is written to a temporary name, fsynced and renamed: a crash
//! leaves the old checkpoint or the new one, never half of one. It is
//! derived data: any error reading it means "no checkpoint", and the log is
//! replayed instead.

use crate::error::{io_err, Error, Result};
use crate::model::Seq;
use crate::state::{CheckpointHead, Row, SavedIndexes, StateCheckpoint};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

const MAGIC: &[u8; 8] = b"TICKSCKP";
/// Version 3: separate frames and a table (version 2 was one stream);
/// version 4: rows with 8-byte optional numbers and 24-byte status marks;
/// version 6: a CRC-32 over the table of frames (5 was a format tried and
/// reverted in session 5).
const VERSION: u32 = 6;
const HEADER_LEN: u64 = 12;
/// Rows per frame (~70 MB of plain bytes at 10M entries); a handful in
/// unit tests, so that a test store spans many frames and both threads.
const ROWS_PER_FRAME: usize = if cfg!(test) { 7 } else { 1 << 18 };
/// zstd's first skippable-frame magic number.
const SKIPPABLE_MAGIC: u32 = 0x184D_2A50;
const TABLE_ENTRY_LEN: usize = 1 + 8 + 8 + 8 + 8;
const LEVEL: i32 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Head = 0,
    Rows = 1,
    Indexes = 2,
}

/// A frame of the file: `offset` counts from the start of the file.
#[derive(Clone, Copy, Debug)]
struct Frame {
    kind: Kind,
    offset: u64,
    len: u64,
    plain: u64,
    rows: u64,
}

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

fn encode_err(e: impl std::fmt::Display) -> Error {
    Error::Encode(e.to_string())
}

/// One zstd frame holding what `encode` writes, appended to `out` at
/// `offset`; returns the frame, and the offset after it.
fn write_frame(
    out: &mut impl Write,
    offset: u64,
    kind: Kind,
    rows: u64,
    encode: impl FnOnce(&mut Vec<u8>) -> Result<()>,
) -> Result<Frame> {
    let mut plain = Vec::new();
    encode(&mut plain)?;
    let mut compressor = zstd::bulk::Compressor::new(LEVEL).map_err(encode_err)?;
    // A checksum per frame: a damaged file fails to decode instead of
    // decoding into wrong rows.
    compressor
        .set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(true))
        .map_err(encode_err)?;
    let compressed = compressor.compress(&plain).map_err(encode_err)?;
    out.write_all(&compressed).map_err(encode_err)?;
    Ok(Frame {
        kind,
        offset,
        len: compressed.len() as u64,
        plain: plain.len() as u64,
        rows,
    })
}

/// Writes `cp` to `path` (atomically, see the module documentation).
pub(crate) fn write(path: &Path, cp: StateCheckpoint) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let tmp = path.with_extension("tmp");
    let file = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let io = |e| io_err(&tmp)(e);
    out.write_all(MAGIC).map_err(io)?;
    out.write_all(&VERSION.to_le_bytes()).map_err(io)?;
    let mut frames: Vec<Frame> = Vec::new();
    let next = |frames: &[Frame]| frames.last().map_or(HEADER_LEN, |f| f.offset + f.len);
    frames.push(write_frame(
        &mut out,
        next(&frames),
        Kind::Head,
        0,
        |plain| {
            bincode::serde::encode_into_std_write(&cp.head, plain, config()).map_err(encode_err)?;
            Ok(())
        },
    )?);
    for chunk in cp.rows.chunks(ROWS_PER_FRAME) {
        frames.push(write_frame(
            &mut out,
            next(&frames),
            Kind::Rows,
            chunk.len() as u64,
            |plain| {
                for row in chunk {
                    bincode::serde::encode_into_std_write(row, &mut *plain, config())
                        .map_err(encode_err)?;
                }
                Ok(())
            },
        )?);
    }
    frames.push(write_frame(
        &mut out,
        next(&frames),
        Kind::Indexes,
        0,
        |plain| {
            bincode::serde::encode_into_std_write(&cp.indexes, plain, config())
                .map_err(encode_err)?;
            Ok(())
        },
    )?);
    let mut table = Vec::with_capacity(frames.len() * TABLE_ENTRY_LEN + 4);
    for f in &frames {
        table.push(f.kind as u8);
        table.extend_from_slice(&f.offset.to_le_bytes());
        table.extend_from_slice(&f.len.to_le_bytes());
        table.extend_from_slice(&f.plain.to_le_bytes());
        table.extend_from_slice(&f.rows.to_le_bytes());
    }
    // The frames carry zstd checksums; the table, which decides offsets
    // and allocation sizes, carries its own.
    let crc = crc32fast::hash(&table);
    table.extend_from_slice(&crc.to_le_bytes());
    table.extend_from_slice(&(frames.len() as u32).to_le_bytes());
    out.write_all(&SKIPPABLE_MAGIC.to_le_bytes()).map_err(io)?;
    out.write_all(&(table.len() as u32).to_le_bytes())
        .map_err(io)?;
    out.write_all(&table).map_err(io)?;
    let file = out.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io_err(path))?;
    Ok(())
}

/// Reads the table of frames from the end of the file.
fn read_table(file: &mut std::fs::File, file_len: u64) -> Option<Vec<Frame>> {
    let mut count = [0u8; 4];
    file.seek(SeekFrom::Start(file_len.checked_sub(4)?)).ok()?;
    file.read_exact(&mut count).ok()?;
    let n = u32::from_le_bytes(count) as usize;
    let table_len = n.checked_mul(TABLE_ENTRY_LEN)?.checked_add(8)?;
    let start = file_len.checked_sub(table_len as u64 + 8)?;
    file.seek(SeekFrom::Start(start)).ok()?;
    let mut bytes = vec![0u8; table_len + 8];
    file.read_exact(&mut bytes).ok()?;
    let magic = u32::from_le_bytes(bytes[0..4].try_into().ok()?);
    let len = u32::from_le_bytes(bytes[4..8].try_into().ok()?) as usize;
    let entries = bytes.get(8..8 + n * TABLE_ENTRY_LEN)?;
    let crc = u32::from_le_bytes(
        bytes
            .get(8 + n * TABLE_ENTRY_LEN..12 + n * TABLE_ENTRY_LEN)?
            .try_into()
            .ok()?,
    );
    if magic != SKIPPABLE_MAGIC || len != table_len || crc32fast::hash(entries) != crc {
        return None;
    }
    let u64_at = |at: usize| {
        bytes
            .get(at..at + 8)?
            .try_into()
            .ok()
            .map(u64::from_le_bytes)
    };
    let mut frames = Vec::with_capacity(n);
    for i in 0..n {
        let at = 8 + i * TABLE_ENTRY_LEN;
        let kind = match bytes[at] {
            0 => Kind::Head,
            1 => Kind::Rows,
            2 => Kind::Indexes,
            _ => return None,
        };
        let frame = Frame {
            kind,
            offset: u64_at(at + 1)?,
            len: u64_at(at + 9)?,
            plain: u64_at(at + 17)?,
            rows: u64_at(at + 25)?,
        };
        if frame.offset < HEADER_LEN || frame.offset.checked_add(frame.len)? > start {
            return None;
        }
        frames.push(frame);
    }
    Some(frames)
}

/// One frame of the file, decompressed, read through `file`.
fn read_frame(file: &mut std::fs::File, path: &Path, frame: &Frame) -> Result<Vec<u8>> {
    // The decompressor checks the plain length; `read` has checked that
    // the table's sizes are plausible before any frame is read.
    file.seek(SeekFrom::Start(frame.offset))
        .map_err(io_err(path))?;
    let mut compressed = vec![0u8; usize::try_from(frame.len).map_err(encode_err)?];
    file.read_exact(&mut compressed).map_err(io_err(path))?;
    let plain = zstd::bulk::Decompressor::new()
        .map_err(encode_err)?
        .decompress(&compressed, frame.plain as usize)
        .map_err(encode_err)?;
    if plain.len() as u64 != frame.plain {
        return Err(Error::Encode(
            "checkpoint frame shorter than its table says".into(),
        ));
    }
    Ok(plain)
}

fn decode<T: serde::de::DeserializeOwned>(plain: &[u8]) -> Result<(T, usize)> {
    bincode::serde::decode_from_slice(plain, config()).map_err(encode_err)
}

fn decode_rows_into(path: &Path, frames: &[Frame], rows: &mut Vec<Row>) -> Result<()> {
    let mut file = std::fs::File::open(path).map_err(io_err(path))?;
    for frame in frames {
        let plain = read_frame(&mut file, path, frame)?;
        let mut at = 0;
        for _ in 0..frame.rows {
            let (row, used) = decode(plain.get(at..).unwrap_or_default())?;
            rows.push(row);
            at += used;
        }
    }
    Ok(())
}

/// Reads the checkpoint at `path` if there is one, it is of this version,
/// and `usable(applied)` accepts the log position it was taken at (asked
/// before the rows are read).
pub(crate) fn read(
    path: &Path,
    usable: impl FnOnce(Option<Seq>) -> bool,
) -> Result<Option<StateCheckpoint>> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(path)(e)),
    };
    let mut header = [0u8; HEADER_LEN as usize];
    if file.read_exact(&mut header).is_err()
        || &header[..8] != MAGIC
        || header[8..12] != VERSION.to_le_bytes()
    {
        return Ok(None);
    }
    let file_len = file.metadata().map_err(io_err(path))?.len();
    let Some(frames) = read_table(&mut file, file_len) else {
        return Ok(None);
    };
    let (Some(head_frame), Some(index_frame)) = (
        frames.iter().find(|f| f.kind == Kind::Head),
        frames.iter().find(|f| f.kind == Kind::Indexes),
    ) else {
        return Ok(None);
    };
    let row_frames: Vec<Frame> = frames
        .iter()
        .filter(|f| f.kind == Kind::Rows)
        .copied()
        .collect();
    let total: u64 = row_frames.iter().map(|f| f.rows).sum();
    // Sizes from the table decide allocations: they must be plausible for
    // a file of this length (these rows compress 3-5 times, never 64).
    let plain_total: u64 = frames.iter().map(|f| f.plain).sum();
    if plain_total > file_len.saturating_mul(64) || total > plain_total {
        return Ok(None);
    }
    let (head, _): (CheckpointHead, usize) = decode(&read_frame(&mut file, path, head_frame)?)?;
    if !usable(head.applied) || total != head.rows {
        return Ok(None);
    }
    // Two halves of the rows, one per core; the second thread also decodes
    // the indexes. The first half decodes straight into the final vector.
    let mut split = 0;
    let mut first_rows = 0;
    while split < row_frames.len() && first_rows * 2 < total {
        first_rows += row_frames[split].rows;
        split += 1;
    }
    let (first, second) = row_frames.split_at(split);
    let mut rows = Vec::with_capacity(usize::try_from(total).map_err(encode_err)?);
    let (mine, theirs) = std::thread::scope(|scope| {
        let theirs = scope.spawn(|| -> Result<(Vec<Row>, Option<SavedIndexes>)> {
            let count: u64 = second.iter().map(|f| f.rows).sum();
            let mut rows = Vec::with_capacity(usize::try_from(count).map_err(encode_err)?);
            decode_rows_into(path, second, &mut rows)?;
            let mut file = std::fs::File::open(path).map_err(io_err(path))?;
            let (indexes, _) = decode(&read_frame(&mut file, path, index_frame)?)?;
            Ok((rows, indexes))
        });
        (decode_rows_into(path, first, &mut rows), theirs.join())
    });
    mine?;
    let (rest, indexes) = match theirs {
        Ok(result) => result?,
        Err(panic) => std::panic::resume_unwind(panic),
    };
    rows.extend(rest);
    Ok(Some(StateCheckpoint {
        head,
        rows,
        indexes,
    }))
}

#[cfg(test)]
mod tests {
    use crate::model::*;
    use crate::{Config, DerivedFrom, Store};

    fn send(i: u32) -> Input {
        Input {
            source: Source::SendApi,
            received_ms: 0,
            raw: format!("{{\"n\":{i}}}").into_bytes(),
            events: vec![Event::Send(Box::new(SendEvent {
                recorded_ms: 1_000_000 + i64::from(i) * 60_000,
                wamid: Some(format!("wamid.{i}")),
                response_code: Some(if i.is_multiple_of(5) { 400 } else { 200 }),
                outcome: Some(if i.is_multiple_of(5) {
                    SendOutcome::Rejected
                } else {
                    SendOutcome::Accepted
                }),
                name: Some(format!("Campaign {}", i % 3)),
                phone: Some(format!("55119{i:08}")),
                correlation_id: Some(format!("crm-{i}")),
                text: format!("message number {i}"),
                ..Default::default()
            }))],
        }
    }

    #[test]
    fn a_store_reopens_from_a_checkpoint_of_many_frames_with_the_same_entries() {
        let dir = tempfile::tempdir().expect("tempdir");
        let entries = |store: &Store| -> Vec<_> {
            let snap = store.snapshot();
            snap.live()
                .iter()
                .map(|id| snap.entry(EntryId(id)))
                .collect()
        };
        let before = {
            let store = Store::open(Config::new(dir.path())).expect("open");
            store.append((0..45).map(send).collect()).expect("append");
            let doomed: roaring::RoaringBitmap = [3u32, 17, 44].into_iter().collect();
            store
                .purge(&doomed, "test", "three", None, true)
                .expect("purge");
            let before = entries(&store);
            store.close().expect("close");
            before
        };
        assert_eq!(before.len(), 42);
        let store = Store::open(Config::new(dir.path())).expect("reopen");
        assert_eq!(
            store.stats().expect("stats").derived_from,
            DerivedFrom::Checkpoint
        );
        assert_eq!(entries(&store), before);
        assert_eq!(
            store.snapshot().entry_for_wamid("wamid.20"),
            Some(EntryId(20))
        );
        assert_eq!(store.snapshot().entry_for_wamid("wamid.17"), None, "purged");
        assert_eq!(store.check().expect("check"), Vec::<String>::new());
        store.close().expect("close");
    }

    #[test]
    fn a_damaged_checkpoint_is_ignored_and_the_log_replayed() {
        // What catches the damage: the table's bounds and checksum, the
        // frames' checksums.
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(Config::new(dir.path())).expect("open");
        store.append((0..20).map(send).collect()).expect("append");
        store.close().expect("close");
        drop(store);
        let path = dir.path().join("derived").join("state.ckpt");
        // Each damage is done to the checkpoint the previous open wrote.
        type Damage = (&'static str, fn(&mut Vec<u8>));
        let damages: [Damage; 5] = [
            ("a flipped byte in the table of frames", |b| {
                let at = b.len() - 12;
                b[at] ^= 0x01;
            }),
            ("a flipped byte in the middle", |b| {
                let mid = b.len() / 2;
                b[mid] ^= 0x5a;
            }),
            ("the last 3 bytes cut", |b| b.truncate(b.len() - 3)),
            ("cut in half", |b| b.truncate(b.len() / 2)),
            ("only the header", |b| b.truncate(13)),
        ];
        for (damage, apply) in damages {
            let mut bytes = std::fs::read(&path).expect("checkpoint");
            apply(&mut bytes);
            std::fs::write(&path, &bytes).expect("write");
            let store = Store::open(Config::new(dir.path())).expect("reopen");
            assert_eq!(
                store.stats().expect("stats").derived_from,
                DerivedFrom::Log,
                "{damage}"
            );
            assert_eq!(store.snapshot().live().len(), 20);
            // Closing writes a sound checkpoint again.
            store.close().expect("close");
        }
    }
}
