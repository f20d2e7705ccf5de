//! Per-period encryption keys: how a purge makes deleted content
//! unrecoverable although sled keeps freed bytes in its files.
//!
//! sled is log-structured: a removed or overwritten value stays in a segment
//! until that segment happens to be rewritten, and nothing lets a caller
//! force it. So every log record's payload is encrypted (ChaCha20-Poly1305)
//! with the key of its *period* (65,536 consecutive sequence numbers). A
//! purge re-encrypts the surviving records of each period it touches under
//! a fresh key (a new *generation*), removes or redacts the purged ones,
//! and then destroys the old key. What sled still holds of the old
//! records is ciphertext whose key no longer exists anywhere.
//!
//! The keys live in one small file, `keyring`, outside sled, replaced
//! atomically (write, fsync, rename, fsync the directory): the previous
//! file, with the destroyed key, is unlinked. During a purge both
//! generations are in the file, so a purge killed midway resumes on the
//! next open with every record still readable.
//!
//! File format: `TICKSKEY`, u32 LE version (1), u32 LE count, then per key:
//! period u32 LE, generation u32 LE, 32 key bytes.

use crate::error::{io_err, Error, Result};
use chacha20poly1305::aead::{Aead, AeadInPlace, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"TICKSKEY";
const VERSION: u32 = 1;
/// Sequence numbers per period: a purge rewrites whole periods.
pub(crate) const PERIOD_BITS: u32 = 16;
/// Bytes of a nonce, stored before each ciphertext.
pub(crate) const NONCE_LEN: usize = 12;
/// Bytes of the Poly1305 tag after each ciphertext.
pub(crate) const TAG_LEN: usize = 16;

/// The period a sequence number belongs to.
pub(crate) fn period_of(seq: u64) -> u32 {
    u32::try_from(seq >> PERIOD_BITS).unwrap_or(u32::MAX)
}

/// A 256-bit key.
pub(crate) type KeyBytes = [u8; 32];

/// Every live key, by period and generation.
pub(crate) struct Keyring {
    path: PathBuf,
    /// period -> generations in ascending order.
    keys: BTreeMap<u32, Vec<(u32, KeyBytes)>>,
}

impl Keyring {
    /// Loads the keyring at `path` (empty when there is none yet).
    pub(crate) fn load(path: &Path) -> Result<Keyring> {
        let mut ring = Keyring {
            path: path.to_path_buf(),
            keys: BTreeMap::new(),
        };
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ring),
            Err(e) => return Err(io_err(path)(e)),
        };
        let bad = |why: &str| Error::Config(format!("keyring {}: {why}", path.display()));
        if bytes.len() < 16 || &bytes[..8] != MAGIC {
            return Err(bad("not a Ticks keyring"));
        }
        let word = |at: usize| {
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        if word(8) != VERSION {
            return Err(bad("unknown version"));
        }
        let count = word(12) as usize;
        if bytes.len() != 16 + count * 40 {
            return Err(bad("truncated"));
        }
        for i in 0..count {
            let at = 16 + i * 40;
            let mut key = [0u8; 32];
            key.copy_from_slice(&bytes[at + 8..at + 40]);
            ring.keys
                .entry(word(at))
                .or_default()
                .push((word(at + 4), key));
        }
        for gens in ring.keys.values_mut() {
            gens.sort_by_key(|(g, _)| *g);
        }
        Ok(ring)
    }

    /// Replaces the file atomically and durably.
    pub(crate) fn save(&self) -> Result<()> {
        let io = |e| io_err(&self.path)(e);
        let count: usize = self.keys.values().map(Vec::len).sum();
        let mut bytes = Vec::with_capacity(16 + count * 40);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&VERSION.to_le_bytes());
        bytes.extend_from_slice(&(count as u32).to_le_bytes());
        for (period, gens) in &self.keys {
            for (generation, key) in gens {
                bytes.extend_from_slice(&period.to_le_bytes());
                bytes.extend_from_slice(&generation.to_le_bytes());
                bytes.extend_from_slice(key);
            }
        }
        let tmp = self.path.with_extension("tmp");
        {
            let mut f = std::fs::File::create(&tmp).map_err(io)?;
            f.write_all(&bytes).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        if let Some(dir) = self.path.parent() {
            // The rename itself must survive a crash.
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io)?;
        }
        Ok(())
    }

    /// The key a new record of `period` is written with, creating the
    /// period's first key when needed (then the caller must `save` before
    /// writing with it). Returns (generation, key, created).
    pub(crate) fn current(&mut self, period: u32) -> (u32, KeyBytes, bool) {
        if let Some((g, k)) = self.newest(period) {
            return (g, k, false);
        }
        let key: KeyBytes = rand::random();
        self.keys.entry(period).or_default().push((1, key));
        (1, key, true)
    }

    /// The newest generation and key of a period, if it has one.
    pub(crate) fn newest(&self, period: u32) -> Option<(u32, KeyBytes)> {
        self.keys.get(&period)?.last().copied()
    }

    /// The key of one generation of a period, if it still exists.
    pub(crate) fn get(&self, period: u32, generation: u32) -> Option<&KeyBytes> {
        self.keys
            .get(&period)?
            .iter()
            .find(|(g, _)| *g == generation)
            .map(|(_, k)| k)
    }

    /// Starts re-keying a period: adds a newer generation, unless an
    /// interrupted re-key already added one (then it is reused). Returns
    /// the target generation and whether the ring changed.
    pub(crate) fn begin_rekey(&mut self, period: u32) -> (u32, bool) {
        let gens = self.keys.entry(period).or_default();
        if gens.len() >= 2 {
            return (gens.last().map_or(1, |(g, _)| *g), false);
        }
        let next = gens.last().map_or(1, |(g, _)| g + 1);
        gens.push((next, rand::random()));
        (next, true)
    }

    /// Destroys every generation of `period` older than its newest.
    pub(crate) fn retire_old(&mut self, period: u32) {
        if let Some(gens) = self.keys.get_mut(&period) {
            let keep = gens.len().saturating_sub(1);
            gens.drain(..keep);
        }
    }

    /// Periods that have an unfinished re-key (more than one generation).
    pub(crate) fn rekeying(&self) -> Vec<u32> {
        self.keys
            .iter()
            .filter(|(_, g)| g.len() > 1)
            .map(|(p, _)| *p)
            .collect()
    }
}

/// Appends nonce || ciphertext || tag of `plain` to `record`, whose bytes so
/// far (the record header) are authenticated but not encrypted. Encrypts in
/// place: the payload is copied once, into the record.
pub(crate) fn seal_onto(key: &KeyBytes, record: &mut Vec<u8>, plain: &[u8]) -> Result<()> {
    let aad_len = record.len();
    let nonce: [u8; NONCE_LEN] = rand::random();
    record.reserve(NONCE_LEN + plain.len() + TAG_LEN);
    record.extend_from_slice(&nonce);
    record.extend_from_slice(plain);
    let (aad, sealed) = record.split_at_mut(aad_len);
    let tag = ChaCha20Poly1305::new(Key::from_slice(key))
        .encrypt_in_place_detached(Nonce::from_slice(&nonce), aad, &mut sealed[NONCE_LEN..])
        .map_err(|_| Error::Encode("encryption failed".into()))?;
    record.extend_from_slice(&tag);
    Ok(())
}

/// Decrypts what [`seal_onto`] appended (`sealed` starts at the nonce);
/// `None` when it does not authenticate.
pub(crate) fn open(key: &KeyBytes, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < NONCE_LEN {
        return None;
    }
    let cipher = ChaCha20Poly1305::new(Key::from_slice(key));
    cipher
        .decrypt(
            Nonce::from_slice(&sealed[..NONCE_LEN]),
            Payload {
                msg: &sealed[NONCE_LEN..],
                aad,
            },
        )
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keyring_survives_a_save_and_a_load_and_retires_old_generations() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("keyring");
        let mut ring = Keyring::load(&path).expect("empty");
        let (g1, k1, created) = ring.current(3);
        assert!(created && g1 == 1);
        ring.save().expect("save");
        let (g2, changed) = ring.begin_rekey(3);
        assert!(changed && g2 == 2);
        assert_eq!(
            ring.begin_rekey(3),
            (2, false),
            "an interrupted re-key is resumed"
        );
        ring.save().expect("save");
        let mut again = Keyring::load(&path).expect("load");
        assert_eq!(again.get(3, 1), Some(&k1));
        assert_eq!(again.rekeying(), vec![3]);
        again.retire_old(3);
        again.save().expect("save");
        let last = Keyring::load(&path).expect("load");
        assert!(last.get(3, 1).is_none());
        assert!(last.get(3, 2).is_some());
        let bytes = std::fs::read(&path).expect("read");
        assert!(
            !bytes.windows(32).any(|w| w == k1),
            "the old key is gone from the file"
        );
    }

    #[test]
    fn sealed_payloads_open_only_with_their_key_and_header() {
        let key: KeyBytes = [7; 32];
        let mut record = b"header".to_vec();
        seal_onto(&key, &mut record, b"secret text").expect("seal");
        let sealed = &record[6..];
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(
            open(&key, b"header", sealed).as_deref(),
            Some(&b"secret text"[..])
        );
        assert!(open(&[8; 32], b"header", sealed).is_none());
        assert!(open(&key, b"other", sealed).is_none());
    }
}
