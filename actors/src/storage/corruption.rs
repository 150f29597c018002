//! Damaged record batches in data the log had already made durable: a flipped bit, a
//! bad disk block, a file edited by hand.
//!
//! Recovery after a crash truncates the *unflushed* tail at its first bad batch (a torn
//! write is expected there; see [`crate::storage::recovery`]). Flushed data is
//! different: every batch in it was acknowledged, and the batches after a damaged one
//! are as good as ever. So, as Kafka leaves such a batch for its consumers' CRC check
//! to find, the log keeps the bytes and never serves them:
//!
//! - a read stops before the damaged batch and returns the good batches before it;
//! - a read that starts inside it fails with [`LogError::CorruptBatch`], which names
//!   the segment file, the byte position and the offsets it held (Kafka's
//!   CORRUPT_MESSAGE), so a consumer can seek past it;
//! - a read that starts after it goes around it.
//!
//! Each damaged batch becomes a [`CorruptRegion`]: its bytes and its offsets. It ends
//! where its own length field says when a valid batch (or the end of the segment)
//! starts there. Otherwise — the length itself is damaged — the next valid batch is
//! searched for byte by byte, up to the next offset index entry (a position the index
//! vouches for) or the end of the segment. A valid batch is one whose header, CRC and
//! records check out and whose base offset comes after the damaged batch's first.
//! The offsets a region held run from where the previous batch ended to where the next
//! valid one starts.
//!
//! Regions are found by the recovery scan of flushed segments and by reads; each is
//! logged once, as an error naming the file and the position, and counted.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Mutex;

use super::batch::{BatchHeader, BatchRef, BATCH_HEADER_BYTES};
use super::error::{LogError, LogResult};

/// Bytes read at a time while searching for the next valid batch.
const SEARCH_CHUNK_BYTES: usize = 1 << 20;

/// One damaged batch (or run of bytes that holds no valid batch) in a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CorruptRegion {
    /// Byte position of the damaged batch in the `.log` file.
    pub position: u64,
    /// Where the next valid batch (or the end of the file) starts.
    pub end_position: u64,
    pub first_offset: i64,
    pub last_offset: i64,
    pub reason: String,
}

impl CorruptRegion {
    pub(crate) fn error(&self, path: &Path) -> LogError {
        LogError::CorruptBatch {
            path: path.to_path_buf(),
            position: self.position,
            first_offset: self.first_offset,
            last_offset: self.last_offset,
            reason: self.reason.clone(),
        }
    }

    pub(crate) fn size_bytes(&self) -> u64 {
        self.end_position - self.position
    }
}

/// The damaged regions a segment knows of, sorted by position. Reads take `&self`, so
/// the list sits behind a lock; it is touched only when damage is met.
#[derive(Debug, Default)]
pub(crate) struct CorruptRegions(Mutex<Vec<CorruptRegion>>);

impl CorruptRegions {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<CorruptRegion>> {
        // The list stays consistent whatever panicked while holding it.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The region starting at `position`, if one is known.
    pub(crate) fn at(&self, position: u64) -> Option<CorruptRegion> {
        let regions = self.lock();
        regions.iter().find(|r| r.position == position).cloned()
    }

    /// Adds a region found now, logging it the first time it is seen.
    pub(crate) fn record(&self, region: CorruptRegion, path: &Path) {
        let mut regions = self.lock();
        if regions.iter().any(|r| r.position == region.position) {
            return;
        }
        log::error!(
            "corrupt record batch in {} at byte {} (bytes {}..{}): offsets {}..={} cannot be served: {}",
            path.display(),
            region.position,
            region.position,
            region.end_position,
            region.first_offset,
            region.last_offset,
            region.reason
        );
        let at = regions.partition_point(|r| r.position < region.position);
        regions.insert(at, region);
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    pub(crate) fn last(&self) -> Option<CorruptRegion> {
        self.lock().last().cloned()
    }

    pub(crate) fn pop(&self) {
        self.lock().pop();
    }

    pub(crate) fn clear(&self) {
        self.lock().clear();
    }

    /// Forgets the regions at or after `position` (the segment was cut there, at a
    /// batch or region start, so no region straddles it).
    pub(crate) fn truncate(&self, position: u64) {
        self.lock().retain(|r| r.position < position);
    }

    /// If the last region runs to `end_position` (nothing valid after it), gives it
    /// the offsets up to `next_offset` - 1 and returns `true`.
    pub(crate) fn stretch_tail(&self, end_position: u64, next_offset: i64) -> bool {
        let mut regions = self.lock();
        match regions.last_mut() {
            Some(r) if r.end_position == end_position && next_offset > r.first_offset => {
                r.last_offset = next_offset - 1;
                true
            }
            _ => false,
        }
    }
}

/// What locating a damaged batch needs to know about its segment.
pub(crate) struct SegmentBounds<'a> {
    pub file: &'a File,
    pub path: &'a Path,
    pub base_offset: i64,
    pub size_bytes: u64,
    /// One past the segment's last offset, when known (not yet during the open scan).
    pub next_offset: Option<i64>,
}

/// The region of the damaged batch at `position`, which should start at
/// `expected_offset`. The search for the next valid batch stops at `search_end`.
pub(crate) fn locate(
    seg: &SegmentBounds<'_>,
    position: u64,
    expected_offset: i64,
    search_end: u64,
    reason: String,
) -> LogResult<CorruptRegion> {
    let search_end = search_end.min(seg.size_bytes);
    let mut region = CorruptRegion {
        position,
        end_position: seg.size_bytes,
        first_offset: expected_offset,
        last_offset: expected_offset,
        reason,
    };
    // 1. The batch's own framing, if what follows it is valid.
    let own = read_header(seg, position)?;
    if let Some(header) = own {
        let end = position + header.size_bytes as u64;
        if end == seg.size_bytes {
            region.last_offset = tail_last_offset(seg, expected_offset, &header);
            return Ok(region);
        }
        if end < seg.size_bytes {
            if let Some(next) = valid_batch_at(seg, end, expected_offset)? {
                region.end_position = end;
                region.last_offset = next.base_offset - 1;
                return Ok(region);
            }
        }
    }
    // 2. The length is not to be trusted: the next position that starts a valid batch.
    let mut chunk = Vec::new();
    let mut from = position + 1;
    while from + BATCH_HEADER_BYTES as u64 <= seg.size_bytes && from <= search_end {
        let want = (SEARCH_CHUNK_BYTES as u64)
            .min(seg.size_bytes - from)
            .max(BATCH_HEADER_BYTES as u64) as usize;
        chunk.resize(want, 0);
        seg.file
            .read_exact_at(&mut chunk, from)
            .map_err(LogError::io(seg.path))?;
        let candidates = chunk.len() - BATCH_HEADER_BYTES + 1;
        for i in 0..candidates {
            let q = from + i as u64;
            if q > search_end {
                break;
            }
            // Cheap filters first: the magic byte and a header that parses.
            let Ok(h) = BatchHeader::parse(&chunk[i..i + BATCH_HEADER_BYTES]) else {
                continue;
            };
            if h.base_offset <= expected_offset || q + h.size_bytes as u64 > seg.size_bytes {
                continue;
            }
            if let Some(next) = valid_batch_at(seg, q, expected_offset)? {
                region.end_position = q;
                region.last_offset = next.base_offset - 1;
                return Ok(region);
            }
        }
        from += candidates as u64;
    }
    // 3. Nothing valid follows: the region runs to the end of the segment.
    region.last_offset = match own {
        Some(header) => tail_last_offset(seg, expected_offset, &header),
        None => seg
            .next_offset
            .map_or(expected_offset, |n| (n - 1).max(expected_offset)),
    };
    Ok(region)
}

/// The last offset of a damaged batch that ends the segment: the segment's end when
/// known, else what its header says (the best there is).
fn tail_last_offset(seg: &SegmentBounds<'_>, expected_offset: i64, header: &BatchHeader) -> i64 {
    match seg.next_offset {
        Some(n) => (n - 1).max(expected_offset),
        None => expected_offset + header.last_offset_delta.max(0) as i64,
    }
}

fn read_header(seg: &SegmentBounds<'_>, position: u64) -> LogResult<Option<BatchHeader>> {
    if position + BATCH_HEADER_BYTES as u64 > seg.size_bytes {
        return Ok(None);
    }
    let mut bytes = [0u8; BATCH_HEADER_BYTES];
    seg.file
        .read_exact_at(&mut bytes, position)
        .map_err(LogError::io(seg.path))?;
    Ok(BatchHeader::parse(&bytes).ok())
}

/// The header of the batch at `position` if it is whole and valid and starts after
/// `after_offset`.
fn valid_batch_at(
    seg: &SegmentBounds<'_>,
    position: u64,
    after_offset: i64,
) -> LogResult<Option<BatchHeader>> {
    let Some(header) = read_header(seg, position)? else {
        return Ok(None);
    };
    let fits = position + header.size_bytes as u64 <= seg.size_bytes;
    let offsets_ok = header.base_offset > after_offset
        && header.last_offset() >= header.base_offset
        && header.last_offset() - seg.base_offset <= i32::MAX as i64
        && seg.next_offset.is_none_or(|n| header.last_offset() < n);
    if !fits || !offsets_ok {
        return Ok(None);
    }
    let mut bytes = vec![0u8; header.size_bytes];
    seg.file
        .read_exact_at(&mut bytes, position)
        .map_err(LogError::io(seg.path))?;
    let valid = BatchRef::parse(&bytes).and_then(|b| b.validate()).is_ok();
    Ok(valid.then_some(header))
}
