//! The time index (`.timeindex`): a sparse map from timestamp to offset. Each entry
//! records the largest timestamp seen so far in the segment and the offset of the batch
//! that carried it, so timestamps rise strictly from entry to entry even when producers'
//! clocks do not. A lookup for `t` starts scanning at the last entry whose timestamp is
//! below `t`: every record before that entry's offset is older than `t`.
//!
//! ```text
//! entry (12 bytes, big-endian), as Kafka's:
//!   0  8  timestamp        largest timestamp in the segment up to this batch
//!   8  4  relative_offset  offset of that batch's first record - segment base offset
//! ```

use std::path::Path;

use super::error::{LogError, LogResult};
use super::index::{be_i64, be_u32, floor, MmapIndex};

pub(crate) const TIME_ENTRY_BYTES: usize = 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampOffset {
    pub timestamp_ms: i64,
    pub offset: i64,
}

#[derive(Debug)]
pub(crate) struct TimeIndex {
    index: MmapIndex,
    base_offset: i64,
}

impl TimeIndex {
    pub(crate) fn create(path: &Path, base_offset: i64, max_index_bytes: usize) -> LogResult<Self> {
        Ok(TimeIndex {
            index: MmapIndex::create(path, TIME_ENTRY_BYTES, max_index_bytes)?,
            base_offset,
        })
    }

    pub(crate) fn open(path: &Path, base_offset: i64) -> LogResult<Self> {
        Ok(TimeIndex {
            index: MmapIndex::open(path, TIME_ENTRY_BYTES)?,
            base_offset,
        })
    }

    pub(crate) fn inner(&mut self) -> &mut MmapIndex {
        &mut self.index
    }

    pub(crate) fn index(&self) -> &MmapIndex {
        &self.index
    }

    /// Reserves room for the next entry (see [`MmapIndex::reserve_next`]).
    pub(crate) fn reserve_next(&mut self) -> LogResult<()> {
        self.index.reserve_next()
    }

    pub(crate) fn entry(&self, i: usize) -> TimestampOffset {
        self.decode(self.index.entry(i))
    }

    fn decode(&self, b: &[u8]) -> TimestampOffset {
        TimestampOffset {
            timestamp_ms: be_i64(b),
            offset: self.base_offset + be_u32(&b[8..]) as i64,
        }
    }

    pub(crate) fn last_entry(&self) -> Option<TimestampOffset> {
        self.index.entries().checked_sub(1).map(|i| self.entry(i))
    }

    /// Appends only when `timestamp_ms` is a new maximum, keeping entries strictly rising.
    /// Returns whether an entry was written.
    pub(crate) fn maybe_append(&mut self, timestamp_ms: i64, offset: i64) -> bool {
        if self.index.is_full() {
            return false;
        }
        if let Some(last) = self.last_entry() {
            if timestamp_ms <= last.timestamp_ms {
                return false;
            }
            debug_assert!(offset >= last.offset);
        }
        let relative = offset - self.base_offset;
        assert!((0..=u32::MAX as i64).contains(&relative));
        let mut entry = [0u8; TIME_ENTRY_BYTES];
        entry[..8].copy_from_slice(&timestamp_ms.to_be_bytes());
        entry[8..].copy_from_slice(&(relative as u32).to_be_bytes());
        self.index.push(&entry)
    }

    /// The last entry whose timestamp is strictly below `timestamp_ms`.
    pub(crate) fn lookup_before(&self, timestamp_ms: i64) -> LogResult<Option<TimestampOffset>> {
        // floor(t - 1) over rising timestamps = last entry with timestamp < t.
        let Some(target) = timestamp_ms.checked_sub(1) else {
            return Ok(None);
        };
        let view = self.index.view()?;
        Ok(floor(&view, TIME_ENTRY_BYTES, &target, be_i64)
            .map(|i| self.decode(&view[i * TIME_ENTRY_BYTES..])))
    }

    pub(crate) fn sanity_check(&self, next_offset: i64) -> LogResult<()> {
        let mut previous: Option<TimestampOffset> = None;
        for i in 0..self.index.entries() {
            let e = self.entry(i);
            let rising =
                previous.is_none_or(|p| e.timestamp_ms > p.timestamp_ms && e.offset >= p.offset);
            if !rising || e.offset >= next_offset.max(self.base_offset + 1) {
                return Err(LogError::Corrupt {
                    path: self.index.path().to_path_buf(),
                    position: (i * TIME_ENTRY_BYTES) as u64,
                    reason: format!(
                        "entry {i} ({} ms at {}) is out of order or past the log",
                        e.timestamp_ms, e.offset
                    ),
                });
            }
            previous = Some(e);
        }
        Ok(())
    }
}
