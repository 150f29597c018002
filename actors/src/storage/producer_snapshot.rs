//! Producer-state snapshots (Kafka's `<offset>.snapshot` files, our own layout): the
//! partition's [`ProducerStateManager`] as it stood when the log ended at an offset,
//! written beside the segments so that opening the log replays only the batches
//! after the newest snapshot rather than the whole log.
//!
//! The [`Log`](crate::storage::Log) takes one when a segment rolls (at the new
//! segment's base offset) and at a clean close (at the log end); at open it loads the
//! newest snapshot at or below the log end and replays the batches after it, so a
//! restart after `kill -9` still knows each producer's last five batches. Snapshots go
//! with the segments they belong to (retention deletes those below the new log start),
//! and a truncation deletes those above its new end before rebuilding.
//!
//! Unlike Kafka's, which keeps only each producer's newest batch, a snapshot holds
//! all the batches the state remembers ([`BATCHES_RETAINED`]), so a retry of any of
//! them is still recognised after a restart.
//!
//! ```text
//! <offset, 20 digits>.snapshot (integers big-endian):
//!  pos size field
//!    0   2  version         1
//!    2   4  crc             CRC-32 (IEEE) over bytes 6..end
//!    6   8  offset          the log end offset the state is current up to (the name's)
//!   14   4  producer_count
//!   18   …  producer_count entries, by producer id:
//!             8  producer_id
//!             2  producer_epoch
//!             1  batch_count     1..=5, oldest first, each 32 bytes:
//!                  4  first_sequence
//!                  4  last_sequence
//!                  8  base_offset
//!                  8  last_offset
//!                  8  timestamp_ms    the batch's max timestamp as stored
//! ```
//!
//! A snapshot is written whole or not at all (`checkpoint::write_file_atomically`:
//! temp file, fsync, rename, fsync the directory). One that fails its check is
//! logged, deleted and passed over for an older one (or the log), never trusted.

use std::fs;
use std::path::{Path, PathBuf};

use super::checkpoint::write_file_atomically;
use super::error::{LogError, LogResult};
use super::producer_state::{
    BatchMetadata, ProducerStateEntry, ProducerStateManager, BATCHES_RETAINED,
};
use super::segment::segment_file;

pub const SNAPSHOT_SUFFIX: &str = "snapshot";

const VERSION: u16 = 1;
const CRC_POS: usize = 2;
const HEADER_BYTES: usize = 18;
const ENTRY_HEADER_BYTES: usize = 8 + 2 + 1;
const BATCH_BYTES: usize = 4 + 4 + 8 + 8 + 8;

/// `<dir>/<offset, 20 digits>.snapshot`
pub fn snapshot_file(dir: &Path, offset: i64) -> PathBuf {
    segment_file(dir, offset, SNAPSHOT_SUFFIX)
}

/// Encodes `state` as the snapshot at `offset`.
pub fn encode(offset: i64, state: &ProducerStateManager) -> Vec<u8> {
    let body: usize = state
        .iter()
        .map(|(_, e)| ENTRY_HEADER_BYTES + e.batches().len() * BATCH_BYTES)
        .sum();
    let mut buf = Vec::with_capacity(HEADER_BYTES + body);
    buf.extend_from_slice(&VERSION.to_be_bytes());
    buf.extend_from_slice(&[0; 4]);
    buf.extend_from_slice(&offset.to_be_bytes());
    buf.extend_from_slice(&(state.len() as u32).to_be_bytes());
    for (producer_id, entry) in state.iter() {
        buf.extend_from_slice(&producer_id.to_be_bytes());
        buf.extend_from_slice(&entry.producer_epoch().to_be_bytes());
        buf.push(entry.batches().len() as u8);
        for b in entry.batches() {
            buf.extend_from_slice(&b.first_sequence.to_be_bytes());
            buf.extend_from_slice(&b.last_sequence.to_be_bytes());
            buf.extend_from_slice(&b.base_offset.to_be_bytes());
            buf.extend_from_slice(&b.last_offset.to_be_bytes());
            buf.extend_from_slice(&b.timestamp_ms.to_be_bytes());
        }
    }
    let crc = crc32fast::hash(&buf[CRC_POS + 4..]);
    buf[CRC_POS..CRC_POS + 4].copy_from_slice(&crc.to_be_bytes());
    buf
}

/// Reads big-endian integers off the front of a slice, failing on a short one.
struct Reader<'a> {
    buf: &'a [u8],
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let Some((head, rest)) = self.buf.split_first_chunk::<N>() else {
            return Err("truncated".into());
        };
        self.buf = rest;
        Ok(*head)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take::<1>()?[0])
    }
    fn i16(&mut self) -> Result<i16, String> {
        Ok(i16::from_be_bytes(self.take()?))
    }
    fn i32(&mut self) -> Result<i32, String> {
        Ok(i32::from_be_bytes(self.take()?))
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_be_bytes(self.take()?))
    }
    fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_be_bytes(self.take()?))
    }
}

/// Decodes the snapshot that claims to be at `offset`; `Err` says why it cannot be
/// trusted.
pub fn decode(offset: i64, bytes: &[u8]) -> Result<ProducerStateManager, String> {
    let mut r = Reader { buf: bytes };
    let version = r.i16()? as u16;
    if version != VERSION {
        return Err(format!("unknown version {version}"));
    }
    let stored_crc = r.u32()?;
    let computed = crc32fast::hash(r.buf);
    if stored_crc != computed {
        return Err(format!(
            "checksum {stored_crc:#010x} does not match the contents ({computed:#010x})"
        ));
    }
    let stored_offset = r.i64()?;
    if stored_offset != offset {
        return Err(format!("holds offset {stored_offset}, not {offset}"));
    }
    let count = r.u32()? as usize;
    // Bounded by the bytes there are, before anything is allocated for it.
    if count > r.buf.len() / (ENTRY_HEADER_BYTES + BATCH_BYTES) {
        return Err(format!(
            "{count} producers cannot fit in {} bytes",
            bytes.len()
        ));
    }
    let mut state = ProducerStateManager::default();
    let mut previous_id = -1;
    for _ in 0..count {
        let producer_id = r.i64()?;
        let producer_epoch = r.i16()?;
        let batch_count = r.u8()? as usize;
        if producer_id <= previous_id || producer_epoch < 0 {
            return Err(format!(
                "producer {producer_id} (epoch {producer_epoch}) is out of place"
            ));
        }
        previous_id = producer_id;
        if batch_count == 0 || batch_count > BATCHES_RETAINED {
            return Err(format!("producer {producer_id} has {batch_count} batches"));
        }
        let mut batches = Vec::with_capacity(batch_count);
        for _ in 0..batch_count {
            let b = BatchMetadata {
                first_sequence: r.i32()?,
                last_sequence: r.i32()?,
                base_offset: r.i64()?,
                last_offset: r.i64()?,
                timestamp_ms: r.i64()?,
            };
            if b.last_offset < b.base_offset || b.last_offset >= offset {
                return Err(format!(
                    "producer {producer_id} has a batch at offsets {}..={} in a snapshot at {offset}",
                    b.base_offset, b.last_offset
                ));
            }
            batches.push(b);
        }
        let entry = ProducerStateEntry::new(producer_epoch, batches)
            .ok_or_else(|| format!("producer {producer_id} has no batches"))?;
        state.insert(producer_id, entry);
    }
    if !r.buf.is_empty() {
        return Err(format!("{} bytes after the last producer", r.buf.len()));
    }
    Ok(state)
}

/// Writes the snapshot of `state` at `offset`, replacing any there.
pub fn write_snapshot(dir: &Path, offset: i64, state: &ProducerStateManager) -> LogResult<()> {
    write_file_atomically(&snapshot_file(dir, offset), &encode(offset, state))
}

/// The offsets of the snapshots in `dir`, ascending.
pub fn list_snapshots(dir: &Path) -> LogResult<Vec<i64>> {
    let mut offsets = Vec::new();
    for entry in fs::read_dir(dir).map_err(LogError::io(dir))? {
        let path = entry.map_err(LogError::io(dir))?.path();
        let Some((stem, suffix)) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.split_once('.'))
        else {
            continue;
        };
        if suffix != SNAPSHOT_SUFFIX || stem.len() != 20 {
            continue;
        }
        if let Ok(offset) = stem.parse::<i64>() {
            offsets.push(offset);
        }
    }
    offsets.sort_unstable();
    Ok(offsets)
}

/// Removes the snapshot at `offset`; one already gone is as good as removed.
pub fn delete_snapshot(dir: &Path, offset: i64) -> LogResult<()> {
    let path = snapshot_file(dir, offset);
    match fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LogError::io(&path)(e)),
    }
}

/// Removes every snapshot whose offset `doomed` picks; answers how many went.
pub fn delete_snapshots(dir: &Path, doomed: impl Fn(i64) -> bool) -> LogResult<usize> {
    let mut removed = 0;
    for offset in list_snapshots(dir)?.into_iter().filter(|o| doomed(*o)) {
        delete_snapshot(dir, offset)?;
        removed += 1;
    }
    Ok(removed)
}

/// The newest snapshot at or below `at_most` that checks out, with its offset; those
/// that do not are logged and deleted on the way (a file that cannot be read at all
/// is logged and left). `None` when there is none.
pub fn load_latest(dir: &Path, at_most: i64) -> LogResult<Option<(i64, ProducerStateManager)>> {
    for offset in list_snapshots(dir)?.into_iter().rev() {
        if offset > at_most {
            continue;
        }
        let path = snapshot_file(dir, offset);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) => {
                log::warn!(
                    "cannot read producer snapshot {}: {e}; trying an older one",
                    path.display()
                );
                continue;
            }
        };
        match decode(offset, &bytes) {
            Ok(state) => return Ok(Some((offset, state))),
            Err(reason) => {
                log::warn!(
                    "ignoring corrupt producer snapshot {}: {reason}; rebuilding the producer state from an older snapshot or the log",
                    path.display()
                );
                delete_snapshot(dir, offset)?;
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::producer_state::{increment_sequence, ProducerBatch};

    fn state(producers: i64, batches: i32) -> ProducerStateManager {
        let mut state = ProducerStateManager::default();
        let mut offset = 0;
        for b in 0..batches {
            for p in 0..producers {
                state.update(&ProducerBatch {
                    producer_id: 1000 + p,
                    producer_epoch: p as i16,
                    first_sequence: b * 2,
                    last_sequence: increment_sequence(b * 2, 1),
                    base_offset: offset,
                    last_offset: offset + 1,
                    timestamp_ms: 5_000 + offset,
                    transactional: false,
                });
                offset += 2;
            }
        }
        state
    }

    #[test]
    fn round_trips_every_remembered_batch() {
        let dir = tempfile::tempdir().unwrap();
        let original = state(3, 7);
        write_snapshot(dir.path(), 42, &original).unwrap();
        assert_eq!(list_snapshots(dir.path()).unwrap(), vec![42]);
        let (offset, loaded) = load_latest(dir.path(), 100).unwrap().unwrap();
        assert_eq!((offset, &loaded), (42, &original));
        assert_eq!(loaded.get(1001).unwrap().batches().len(), BATCHES_RETAINED);
        assert!(!dir.path().join(format!("{:020}.tmp", 42)).exists());
        let empty = ProducerStateManager::default();
        assert_eq!(decode(7, &encode(7, &empty)), Ok(empty));
    }

    #[test]
    fn the_newest_snapshot_at_or_below_the_limit_is_loaded() {
        let dir = tempfile::tempdir().unwrap();
        for offset in [10, 20, 30] {
            write_snapshot(dir.path(), offset, &state(1, offset as i32 / 10)).unwrap();
        }
        let (offset, _) = load_latest(dir.path(), 29).unwrap().unwrap();
        assert_eq!(offset, 20);
        assert!(load_latest(dir.path(), 9).unwrap().is_none());
        assert_eq!(delete_snapshots(dir.path(), |o| o < 20).unwrap(), 1);
        assert_eq!(list_snapshots(dir.path()).unwrap(), vec![20, 30]);
    }

    #[test]
    fn every_damaged_byte_is_caught_and_the_snapshot_passed_over() {
        let good = encode(64, &state(2, 3));
        for at in 0..good.len() {
            let mut bad = good.clone();
            bad[at] ^= 0x10;
            assert!(decode(64, &bad).is_err(), "flip at byte {at}");
        }
        for len in 0..good.len() {
            assert!(decode(64, &good[..len]).is_err(), "cut at {len}");
        }
        assert!(decode(65, &good).is_err(), "named for another offset");

        let dir = tempfile::tempdir().unwrap();
        write_snapshot(dir.path(), 32, &state(1, 1)).unwrap();
        write_snapshot(dir.path(), 64, &state(2, 3)).unwrap();
        fs::write(snapshot_file(dir.path(), 64), &good[..good.len() - 1]).unwrap();
        let (offset, _) = load_latest(dir.path(), 100).unwrap().unwrap();
        assert_eq!(offset, 32);
        assert_eq!(list_snapshots(dir.path()).unwrap(), vec![32], "deleted");
    }

    #[test]
    fn a_huge_producer_count_is_refused_before_allocating() {
        let mut bytes = encode(5, &ProducerStateManager::default());
        bytes[14..18].copy_from_slice(&u32::MAX.to_be_bytes());
        let crc = crc32fast::hash(&bytes[6..]);
        bytes[2..6].copy_from_slice(&crc.to_be_bytes());
        assert!(decode(5, &bytes).unwrap_err().contains("cannot fit"));
    }
}
