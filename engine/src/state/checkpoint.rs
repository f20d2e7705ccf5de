//! The checkpoint file: the derived state saved so that an open replays
//! only the log records after it, and decodes no row.
//!
//! ```text
//! b"TICKSCKP" | version u32 LE
//! zstd frame: bincode2(CheckpointHead)      applied seq, id count, strings, dedup maps
//! skippable frame: sealed blocks of rows    (plain length u32 LE | block) x n | CRC-32
//! ...                                       BLOCKS_PER_FRAME blocks a frame
//! zstd frame: recorded_ms of sealed rows    i64 LE each
//! zstd frame: bincode2(unsealed rows)       (changed sealed rows, the newest rows)
//! zstd frame: bincode2(Option<SavedIndexes>) bitmaps and key columns
//! zstd frame: bincode2(SavedLookups)        wamid index slots, session and reply maps
//! zstd skippable frame: the table of frames (kind u8, offset u64, length u64,
//!                                            plain length u64, items u64) x n
//!                                           | CRC-32 of those entries u32 LE | n u32 LE
//! ```
//!
//! Sealed blocks (see `rows.rs`) are compressed already: they are written
//! as they are, in zstd skippable frames that end with a CRC-32, and
//! loaded as they are. The other frames are zstd frames with checksums.
//! The whole file after the 12-byte header is still one valid zstd stream.
//! An open reads the head first (is the rest worth reading?), then the
//! blocks on one thread and the other frames on another.
//!
//! The file is written to a temporary name, fsynced and renamed: a crash
//! leaves the old checkpoint or the new one, never half of one. It is
//! derived data: any error reading it means "no checkpoint", and the log is
//! replayed instead.

use crate::error::{io_err, Error, Result};
use crate::model::Seq;
use crate::state::rows::RowParts;
use crate::state::rows::{stored_bytes, Block};
use crate::state::{CheckpointHead, Row, SavedIndexes, SavedLookups, StateCheckpoint};
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;

const MAGIC: &[u8; 8] = b"TICKSCKP";
/// Version 3: separate frames and a table (version 2 was one stream);
/// version 4: rows with 8-byte optional numbers and 24-byte status marks;
/// version 6: a CRC-32 over the table of frames (5 was a format tried and
/// reverted in session 5); version 7: sealed blocks of rows as they are
/// held in memory, and the lookup maps; version 8: interned strings as an
/// arena; version 9: rows with the person's user ids and username, and the
/// contacts; version 10: reply attribution (the unquoted replies, the
/// window, the attribution index); version 11: rows with the pricing type;
/// version 12: rows with a marketing preference; version 13: rows with
/// their origin (api, app, history); version 14: contacts as linked lists,
/// inferred replies; version 15: rows with an event's before, after and
/// reason, group statuses per member, tracking tokens, the 24 h window keyed
/// by person; version 16: a templated send's parameters among its own
/// strings (its text is rendered when read); version 19: key columns of
/// 2 and 4 bits a code; version 20: the contacts as byte strings.
const VERSION: u32 = 20;
const HEADER_LEN: u64 = 12;
/// Sealed blocks per frame (~16 MB at 10M entries); a few in unit tests,
/// so that a test store spans several frames.
const BLOCKS_PER_FRAME: usize = if cfg!(test) { 3 } else { 1 << 12 };
/// zstd's first skippable-frame magic number: the table's frame.
const SKIPPABLE_MAGIC: u32 = 0x184D_2A50;
/// Another skippable-frame magic number: a frame of sealed blocks.
const BLOCKS_MAGIC: u32 = 0x184D_2A51;
const TABLE_ENTRY_LEN: usize = 1 + 8 + 8 + 8 + 8;
const LEVEL: i32 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Head = 0,
    Blocks = 1,
    Indexes = 2,
    Recorded = 3,
    Unsealed = 4,
    Lookups = 5,
}

impl Kind {
    const ALL: [Kind; 6] = [
        Kind::Head,
        Kind::Blocks,
        Kind::Indexes,
        Kind::Recorded,
        Kind::Unsealed,
        Kind::Lookups,
    ];
}

/// A frame of the file: `offset` counts from the start of the file;
/// `items` is the number of blocks of a blocks frame.
#[derive(Clone, Copy, Debug)]
struct Frame {
    kind: Kind,
    offset: u64,
    len: u64,
    plain: u64,
    items: u64,
}

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

fn encode_err(e: impl std::fmt::Display) -> Error {
    Error::Encode(e.to_string())
}

/// One zstd frame holding what `encode` writes, appended to `out` at
/// `offset`.
fn write_frame(
    out: &mut impl Write,
    offset: u64,
    kind: Kind,
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
        items: 0,
    })
}

/// One skippable frame of sealed blocks, appended to `out` at `offset`;
/// also where each block's bytes landed in the file.
fn write_blocks(
    out: &mut impl Write,
    offset: u64,
    blocks: &[Block],
    file: Option<&Arc<File>>,
) -> Result<(Frame, Vec<(u64, u32)>)> {
    let mut data = Vec::new();
    let mut placed = Vec::with_capacity(blocks.len());
    for block in blocks {
        let bytes = stored_bytes(block, file).map_err(encode_err)?;
        let len = u32::try_from(bytes.len()).map_err(encode_err)?;
        data.extend_from_slice(&len.to_le_bytes());
        placed.push((offset + 8 + data.len() as u64, len));
        data.extend_from_slice(&bytes);
    }
    let crc = crc32fast::hash(&data);
    let body_len = u32::try_from(data.len() + 4).map_err(encode_err)?;
    out.write_all(&BLOCKS_MAGIC.to_le_bytes())
        .map_err(encode_err)?;
    out.write_all(&body_len.to_le_bytes()).map_err(encode_err)?;
    out.write_all(&data).map_err(encode_err)?;
    out.write_all(&crc.to_le_bytes()).map_err(encode_err)?;
    let frame = Frame {
        kind: Kind::Blocks,
        offset,
        len: 8 + u64::from(body_len),
        plain: data.len() as u64,
        items: blocks.len() as u64,
    };
    Ok((frame, placed))
}

fn bincode_frame<T: serde::Serialize>(value: &T) -> impl FnOnce(&mut Vec<u8>) -> Result<()> + '_ {
    move |plain| {
        bincode::serde::encode_into_std_write(value, plain, config()).map_err(encode_err)?;
        Ok(())
    }
}

/// Writes `cp` to `path` (atomically, see the module documentation), and
/// returns where each sealed block landed in it (offset, length).
pub(crate) fn write(path: &Path, cp: &StateCheckpoint) -> Result<Vec<(u64, u32)>> {
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
        bincode_frame(&cp.head),
    )?);
    let mut placed = Vec::with_capacity(cp.rows.blocks.len());
    for chunk in cp.rows.blocks.chunks(BLOCKS_PER_FRAME) {
        let (frame, at) = write_blocks(&mut out, next(&frames), chunk, cp.rows.file.as_ref())?;
        frames.push(frame);
        placed.extend(at);
    }
    frames.push(write_frame(
        &mut out,
        next(&frames),
        Kind::Recorded,
        |plain| {
            plain.reserve(cp.rows.recorded.len() * 8);
            for ms in &cp.rows.recorded {
                plain.extend_from_slice(&ms.to_le_bytes());
            }
            Ok(())
        },
    )?);
    let unsealed = (&cp.rows.changed, &cp.rows.tail);
    frames.push(write_frame(
        &mut out,
        next(&frames),
        Kind::Unsealed,
        bincode_frame(&unsealed),
    )?);
    frames.push(write_frame(
        &mut out,
        next(&frames),
        Kind::Indexes,
        bincode_frame(&cp.indexes),
    )?);
    frames.push(write_frame(
        &mut out,
        next(&frames),
        Kind::Lookups,
        bincode_frame(&cp.lookups),
    )?);
    let mut table = Vec::with_capacity(frames.len() * TABLE_ENTRY_LEN + 4);
    for f in &frames {
        table.push(f.kind as u8);
        table.extend_from_slice(&f.offset.to_le_bytes());
        table.extend_from_slice(&f.len.to_le_bytes());
        table.extend_from_slice(&f.plain.to_le_bytes());
        table.extend_from_slice(&f.items.to_le_bytes());
    }
    // The frames carry checksums; the table, which decides offsets and
    // allocation sizes, carries its own.
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
    Ok(placed)
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
        let kind = *Kind::ALL.get(usize::from(bytes[at]))?;
        let frame = Frame {
            kind,
            offset: u64_at(at + 1)?,
            len: u64_at(at + 9)?,
            plain: u64_at(at + 17)?,
            items: u64_at(at + 25)?,
        };
        if frame.offset < HEADER_LEN || frame.offset.checked_add(frame.len)? > start {
            return None;
        }
        frames.push(frame);
    }
    Some(frames)
}

/// The bytes of one frame as stored.
fn read_stored(file: &mut std::fs::File, path: &Path, frame: &Frame) -> Result<Vec<u8>> {
    file.seek(SeekFrom::Start(frame.offset))
        .map_err(io_err(path))?;
    let mut stored = vec![0u8; usize::try_from(frame.len).map_err(encode_err)?];
    file.read_exact(&mut stored).map_err(io_err(path))?;
    Ok(stored)
}

/// One zstd frame of the file, decompressed.
fn read_frame(file: &mut std::fs::File, path: &Path, frame: &Frame) -> Result<Vec<u8>> {
    // The decompressor checks the plain length; `read` has checked that
    // the table's sizes are plausible before any frame is read.
    let compressed = read_stored(file, path, frame)?;
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

fn damaged(what: &str) -> Error {
    Error::Encode(format!("checkpoint: {what}"))
}

/// The sealed blocks of the blocks frames, in order, as places in the
/// file (read when needed), and the file. Every frame is read once here to
/// check its CRC-32, through one reused buffer.
fn read_blocks(path: &Path, frames: &[Frame]) -> Result<(Vec<Block>, Arc<File>)> {
    let mut file = File::open(path).map_err(io_err(path))?;
    let mut blocks = Vec::with_capacity(frames.iter().map(|f| f.items as usize).sum());
    let mut stored = Vec::new();
    for frame in frames {
        stored.resize(usize::try_from(frame.len).map_err(encode_err)?, 0);
        file.seek(SeekFrom::Start(frame.offset))
            .map_err(io_err(path))?;
        file.read_exact(&mut stored).map_err(io_err(path))?;
        if stored.len() < 12 || stored[..4] != BLOCKS_MAGIC.to_le_bytes() {
            return Err(damaged("not a blocks frame"));
        }
        let data_end = stored.len() - 4;
        if crc32fast::hash(&stored[8..data_end]).to_le_bytes() != stored[data_end..] {
            return Err(damaged("a blocks frame fails its checksum"));
        }
        let mut at = 8;
        for _ in 0..frame.items {
            let len = stored
                .get(at..at + 4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_le_bytes)
                .ok_or_else(|| damaged("a block's length"))?;
            if at + 4 + len as usize > data_end {
                return Err(damaged("a block past its frame"));
            }
            blocks.push(Block::InFile {
                offset: frame.offset + at as u64 + 4,
                len,
            });
            at += 4 + len as usize;
        }
    }
    Ok((blocks, Arc::new(file)))
}

fn decode<T: serde::de::DeserializeOwned>(plain: &[u8]) -> Result<T> {
    bincode::serde::decode_from_slice(plain, config())
        .map(|(value, _)| value)
        .map_err(encode_err)
}

/// The frames other than the head and the blocks, decoded.
struct Rest {
    recorded: Vec<i64>,
    changed: Vec<(u32, Row)>,
    tail: Vec<Row>,
    indexes: Option<SavedIndexes>,
}

/// The plain bytes of the frame of `kind`.
fn read_kind(
    file: &mut std::fs::File,
    path: &Path,
    frames: &[Frame],
    kind: Kind,
) -> Result<Vec<u8>> {
    let frame = frames
        .iter()
        .find(|f| f.kind == kind)
        .ok_or_else(|| damaged("a frame is missing"))?;
    read_frame(file, path, frame)
}

/// Decodes the frame of `kind`, read through a handle of its own (for a
/// thread that reads beside another).
fn read_decoded<T: serde::de::DeserializeOwned>(
    path: &Path,
    frames: &[Frame],
    kind: Kind,
) -> Result<T> {
    let mut file = std::fs::File::open(path).map_err(io_err(path))?;
    decode(&read_kind(&mut file, path, frames, kind)?)
}

fn read_rest(path: &Path, frames: &[Frame]) -> Result<Rest> {
    let started = std::time::Instant::now();
    let ms = || started.elapsed().as_millis() as u64;
    let mut file = std::fs::File::open(path).map_err(io_err(path))?;
    let mut plain = |kind: Kind| read_kind(&mut file, path, frames, kind);
    let recorded = plain(Kind::Recorded)?
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().unwrap_or_default()))
        .collect();
    let recorded_ms = ms();
    let (changed, tail) = decode(&plain(Kind::Unsealed)?)?;
    let unsealed_ms = ms();
    let indexes = decode(&plain(Kind::Indexes)?)?;
    tracing::info!(
        recorded_ms,
        unsealed_ms,
        indexes_ms = ms(),
        "checkpoint: time column, unsealed rows and indexes read"
    );
    Ok(Rest {
        recorded,
        changed,
        tail,
        indexes,
    })
}

/// Reads the checkpoint at `path` if there is one, it is of this version,
/// and `usable(applied)` accepts the log position it was taken at (asked
/// before the rest is read).
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
    let Some(head_frame) = frames.iter().find(|f| f.kind == Kind::Head) else {
        return Ok(None);
    };
    // Sizes from the table decide allocations: they must be plausible for
    // a file of this length (nothing here compresses 64 times).
    let plain_total: u64 = frames.iter().map(|f| f.plain).sum();
    if plain_total > file_len.saturating_mul(64) {
        return Ok(None);
    }
    let head: CheckpointHead = decode(&read_frame(&mut file, path, head_frame)?)?;
    if !usable(head.applied) {
        return Ok(None);
    }
    let block_frames: Vec<Frame> = frames
        .iter()
        .filter(|f| f.kind == Kind::Blocks)
        .copied()
        .collect();
    // Two threads: the blocks' checksums and the lookup maps on this one,
    // the other frames (the indexes are the largest) on the other.
    let (blocks, lookups, rest) = std::thread::scope(|scope| {
        let rest = scope.spawn(|| read_rest(path, &frames));
        let started = std::time::Instant::now();
        let blocks = read_blocks(path, &block_frames);
        let blocks_ms = started.elapsed().as_millis() as u64;
        let lookups: Result<SavedLookups> = read_decoded(path, &frames, Kind::Lookups);
        tracing::info!(
            blocks_ms,
            lookups_ms = started.elapsed().as_millis() as u64,
            "checkpoint: blocks and lookup maps read"
        );
        (blocks, lookups, rest.join())
    });
    let (blocks, file) = blocks?;
    let lookups = lookups?;
    let rest = match rest {
        Ok(rest) => rest?,
        Err(panic) => std::panic::resume_unwind(panic),
    };
    Ok(Some(StateCheckpoint {
        head,
        rows: RowParts {
            blocks,
            file: Some(file),
            recorded: rest.recorded,
            changed: rest.changed,
            tail: rest.tail,
        },
        indexes: rest.indexes,
        lookups,
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
        // Its sealed blocks are read from the file; a checkpoint taken now
        // moves them to the new file (the old one is replaced under them),
        // with more rows sealed and some changed meanwhile.
        store
            .append((45..90).map(send).collect())
            .expect("append more");
        store.checkpoint().expect("checkpoint");
        store
            .append((90..120).map(send).collect())
            .expect("append after");
        let with_more = entries(&store);
        assert_eq!(with_more.len(), 42 + 75);
        assert_eq!(
            &with_more[..42],
            &before[..],
            "the loaded entries read the same"
        );
        assert_eq!(store.check().expect("check"), Vec::<String>::new());
        store.close().expect("close");
        drop(store);
        let store = Store::open(Config::new(dir.path())).expect("reopen again");
        assert_eq!(entries(&store), with_more);
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
