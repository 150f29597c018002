//! The offset index (`.index`): a sparse map from offset to byte position in the
//! segment's `.log`, one entry per `index.interval.bytes` of log. A lookup finds the
//! entry at or before the target and the reader scans forward from its position.
//!
//! ```text
//! entry (8 bytes, big-endian), as Kafka's:
//!   0  4  relative_offset  offset of a batch's first record - segment base offset
//!   4  4  position         byte position of that batch in the .log file
//! ```
//! Relative offsets and positions both rise strictly from entry to entry.

use std::path::Path;

use super::error::{LogError, LogResult};
use super::index::{be_u32, floor, MmapIndex};

pub(crate) const OFFSET_ENTRY_BYTES: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetPosition {
    pub offset: i64,
    pub position: u32,
}

#[derive(Debug)]
pub(crate) struct OffsetIndex {
    index: MmapIndex,
    base_offset: i64,
}

impl OffsetIndex {
    pub(crate) fn create(path: &Path, base_offset: i64, max_index_bytes: usize) -> LogResult<Self> {
        Ok(OffsetIndex {
            index: MmapIndex::create(path, OFFSET_ENTRY_BYTES, max_index_bytes)?,
            base_offset,
        })
    }

    pub(crate) fn open(path: &Path, base_offset: i64) -> LogResult<Self> {
        Ok(OffsetIndex {
            index: MmapIndex::open(path, OFFSET_ENTRY_BYTES)?,
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

    fn decode(&self, b: &[u8]) -> OffsetPosition {
        OffsetPosition {
            offset: self.base_offset + be_u32(b) as i64,
            position: be_u32(&b[4..]),
        }
    }

    pub(crate) fn entry(&self, i: usize) -> OffsetPosition {
        self.decode(self.index.entry(i))
    }

    pub(crate) fn last_entry(&self) -> Option<OffsetPosition> {
        self.index.entries().checked_sub(1).map(|i| self.entry(i))
    }

    pub(crate) fn append(&mut self, offset: i64, position: u32) {
        let relative = offset - self.base_offset;
        assert!(
            (0..=u32::MAX as i64).contains(&relative),
            "offset {offset} does not fit the index of segment {}",
            self.base_offset
        );
        if let Some(last) = self.last_entry() {
            assert!(
                offset > last.offset && position > last.position,
                "offset index must rise"
            );
        }
        let mut entry = [0u8; OFFSET_ENTRY_BYTES];
        entry[..4].copy_from_slice(&(relative as u32).to_be_bytes());
        entry[4..].copy_from_slice(&position.to_be_bytes());
        self.index.push(&entry);
    }

    /// The last entry at or before `offset`, or the segment start.
    pub(crate) fn lookup(&self, offset: i64) -> LogResult<OffsetPosition> {
        let relative = offset - self.base_offset;
        let view = self.index.view()?;
        let found = floor(&view, OFFSET_ENTRY_BYTES, &relative, |b| be_u32(b) as i64);
        Ok(match found {
            Some(i) => self.decode(&view[i * OFFSET_ENTRY_BYTES..]),
            None => OffsetPosition {
                offset: self.base_offset,
                position: 0,
            },
        })
    }

    /// The first entry whose position is past `position`: a batch start the index
    /// vouches for, where the search for the end of a damaged batch can stop.
    pub(crate) fn first_entry_after(&self, position: u64) -> LogResult<Option<OffsetPosition>> {
        let view = self.index.view()?;
        let i = floor(&view, OFFSET_ENTRY_BYTES, &position, |b| {
            be_u32(&b[4..]) as u64
        })
        .map_or(0, |i| i + 1);
        Ok((i * OFFSET_ENTRY_BYTES < view.len())
            .then(|| self.decode(&view[i * OFFSET_ENTRY_BYTES..])))
    }

    /// Kafka's sanity check, made complete: entries rise strictly and point inside the log.
    pub(crate) fn sanity_check(&self, log_bytes: u64) -> LogResult<()> {
        let mut previous: Option<OffsetPosition> = None;
        for i in 0..self.index.entries() {
            let e = self.entry(i);
            let rising = previous.is_none_or(|p| e.offset > p.offset && e.position > p.position);
            if !rising || e.position as u64 >= log_bytes {
                return Err(LogError::Corrupt {
                    path: self.index.path().to_path_buf(),
                    position: (i * OFFSET_ENTRY_BYTES) as u64,
                    reason: format!(
                        "entry {i} ({} at byte {}) is out of order or past the log",
                        e.offset, e.position
                    ),
                });
            }
            previous = Some(e);
        }
        Ok(())
    }
}
