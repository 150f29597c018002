//! `LogSegment`: one slice of a partition log — a `.log` file of record batches plus
//! its `.index` and `.timeindex`, all named by the segment's base offset zero-padded to
//! 20 digits (`00000000000000000000.log`). Only the newest segment of a log, the active
//! one, is appended to; the others are sealed (indexes trimmed) and read-only.
//!
//! The segment knows how to append a batch and index it, read batches from an offset,
//! find an offset by timestamp, and rebuild its indexes by scanning its batches — the
//! same indexing code runs at append time and at recovery time, so a rebuilt index is
//! identical to the one it replaces.
//!
//! A sealed segment holds no file open: [`LogSegment::seal`] closes its `.log` and
//! both indexes, and a read opens what it needs for the length of the read. A
//! partition's file descriptors are those of its active segment, however many
//! segments it has (see the README's "File descriptors").

use std::fs::{self, File, OpenOptions};
use std::ops::Deref;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::batch::{BatchHeader, BatchRef, BATCH_HEADER_BYTES};
use super::corruption::{self, CorruptRegions, SegmentBounds};
use super::error::{LogError, LogResult};
use super::log_config::LogConfig;
use super::offset_index::OffsetIndex;
use super::time_index::{TimeIndex, TimestampOffset};

pub const LOG_SUFFIX: &str = "log";
pub const INDEX_SUFFIX: &str = "index";
pub const TIME_INDEX_SUFFIX: &str = "timeindex";
/// Appended to the name of a file being deleted, so a crash mid-delete leaves it
/// recognisable (and removed at the next open).
pub const DELETED_SUFFIX: &str = ".deleted";

/// Bytes read from disk at a time when scanning a segment.
const SCAN_CHUNK_BYTES: usize = 1 << 20;

/// `<dir>/<base offset, 20 digits>.<suffix>`
pub fn segment_file(dir: &Path, base_offset: i64, suffix: &str) -> PathBuf {
    dir.join(format!("{base_offset:020}.{suffix}"))
}

/// The base offset and suffix a segment file's name (`<20 digits>.<suffix>`) says,
/// if it is one.
pub(crate) fn parse_segment_file_name(name: &str) -> Option<(i64, &str)> {
    let (stem, suffix) = name.split_once('.')?;
    if stem.len() != 20 {
        return None;
    }
    Some((stem.parse().ok()?, suffix))
}

/// What a caller may know about a segment (for retention, metrics, the admin API).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentInfo {
    pub base_offset: i64,
    /// One past the last offset in the segment (the base offset if it is empty).
    pub next_offset: i64,
    pub size_bytes: u64,
    /// Largest record timestamp in the segment, `None` if it is empty.
    pub max_timestamp_ms: Option<i64>,
    pub is_active: bool,
}

/// How a scan of a segment's batches ended.
#[derive(Debug)]
pub(crate) struct ScanEnd {
    /// Bytes from the start of the file that hold valid batches.
    pub valid_bytes: u64,
    /// Why the scan stopped early; `None` when it reached the end cleanly.
    pub invalid: Option<String>,
}

/// Where truncating to an offset cuts a segment: before the batch holding the offset
/// (batches are never split), or before the first batch after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cut {
    /// Bytes of the `.log` kept.
    pub position: u64,
    /// The first offset dropped: the base offset of the first batch cut off, or the
    /// segment's next offset when nothing is.
    pub first_dropped_offset: i64,
}

/// How a segment read ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ReadEnd {
    /// `max_bytes` reached: the next batch did not fit.
    Full,
    /// The segment has nothing more: the caller may continue in the next one.
    Exhausted,
}

#[derive(Debug)]
pub(crate) struct LogSegment {
    base_offset: i64,
    dir: PathBuf,
    log_path: PathBuf,
    /// The `.log` file while the segment is active (or being loaded); `None` once it
    /// is sealed, when reads open it for themselves.
    file: Option<File>,
    size_bytes: u64,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    next_offset: i64,
    max_timestamp: Option<TimestampOffset>,
    /// When the first batch arrived (its max timestamp after a reopen, as Kafka
    /// estimates it): the age `segment.ms` measures.
    first_append_ms: Option<i64>,
    bytes_since_last_index_entry: usize,
    index_interval_bytes: usize,
    continuity: Continuity,
    /// Damaged batches found in this segment's durable data (see
    /// [`crate::storage::corruption`]).
    corrupt: CorruptRegions,
}

impl LogSegment {
    /// A new, empty, active segment (any old files of the same name are replaced).
    pub(crate) fn create(dir: &Path, base_offset: i64, config: &LogConfig) -> LogResult<Self> {
        let log_path = segment_file(dir, base_offset, LOG_SUFFIX);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&log_path)
            .map_err(LogError::io(&log_path))?;
        let indexes = OffsetIndex::create(
            &segment_file(dir, base_offset, INDEX_SUFFIX),
            base_offset,
            config.segment_index_bytes,
        )
        .and_then(|offsets| {
            let times = TimeIndex::create(
                &segment_file(dir, base_offset, TIME_INDEX_SUFFIX),
                base_offset,
                config.segment_index_bytes,
            )?;
            Ok((offsets, times))
        });
        let (offset_index, time_index) = match indexes {
            Ok(pair) => pair,
            Err(e) => {
                // Leave no half-made segment behind (a full disk, say): the next
                // attempt starts from nothing.
                drop(file);
                let _ = remove_files(&[
                    log_path,
                    segment_file(dir, base_offset, INDEX_SUFFIX),
                    segment_file(dir, base_offset, TIME_INDEX_SUFFIX),
                ]);
                return Err(e);
            }
        };
        Ok(LogSegment {
            base_offset,
            dir: dir.to_path_buf(),
            log_path,
            file: Some(file),
            size_bytes: 0,
            offset_index,
            time_index,
            next_offset: base_offset,
            max_timestamp: None,
            first_append_ms: None,
            bytes_since_last_index_entry: 0,
            index_interval_bytes: config.index_interval_bytes,
            continuity: Continuity::Contiguous,
            corrupt: CorruptRegions::default(),
        })
    }

    /// Opens an existing segment. When `trust_indexes` holds (a clean shutdown, or a
    /// segment wholly below the recovery point) the indexes are kept if they pass their
    /// sanity check and only the tail after the last index entry is scanned; otherwise,
    /// or when an index is missing or damaged, every batch is scanned and the indexes
    /// rebuilt. Returns the segment and the bytes a scan cut off its end.
    pub(crate) fn open(
        dir: &Path,
        base_offset: i64,
        config: &LogConfig,
        trust_indexes: IndexTrust,
        continuity: Continuity,
    ) -> LogResult<(Self, u64)> {
        let log_path = segment_file(dir, base_offset, LOG_SUFFIX);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&log_path)
            .map_err(LogError::io(&log_path))?;
        let size_bytes = file.metadata().map_err(LogError::io(&log_path))?.len();
        let index_path = segment_file(dir, base_offset, INDEX_SUFFIX);
        let time_index_path = segment_file(dir, base_offset, TIME_INDEX_SUFFIX);
        let loaded = match trust_indexes {
            IndexTrust::Rebuild { .. } => None,
            IndexTrust::SanityCheck => {
                Self::open_indexes(&index_path, &time_index_path, base_offset, size_bytes)
            }
        };
        let recovering = loaded.is_none();
        let (offset_index, time_index) = match loaded {
            Some(pair) => pair,
            None => (
                OffsetIndex::create(&index_path, base_offset, config.segment_index_bytes)?,
                TimeIndex::create(&time_index_path, base_offset, config.segment_index_bytes)?,
            ),
        };
        let mut segment = LogSegment {
            base_offset,
            dir: dir.to_path_buf(),
            log_path,
            file: Some(file),
            size_bytes,
            offset_index,
            time_index,
            next_offset: base_offset,
            max_timestamp: None,
            first_append_ms: None,
            bytes_since_last_index_entry: 0,
            index_interval_bytes: config.index_interval_bytes,
            continuity,
            corrupt: CorruptRegions::default(),
        };
        // Data the indexes may be trusted for is durable: damage there is corruption,
        // skipped and reported, never a torn write to cut off.
        let on_damage = match trust_indexes {
            IndexTrust::SanityCheck => OnDamage::Skip,
            IndexTrust::Rebuild { recovery_point } => OnDamage::Truncate { recovery_point },
        };
        let truncated = if recovering {
            segment.rebuild(config, on_damage)?
        } else {
            segment.load_tail(config)?
        };
        Ok((segment, truncated))
    }

    fn open_indexes(
        index_path: &Path,
        time_index_path: &Path,
        base_offset: i64,
        log_bytes: u64,
    ) -> Option<(OffsetIndex, TimeIndex)> {
        let checked = || -> LogResult<(OffsetIndex, TimeIndex)> {
            let offsets = OffsetIndex::open(index_path, base_offset)?;
            offsets.sanity_check(log_bytes)?;
            let times = TimeIndex::open(time_index_path, base_offset)?;
            Ok((offsets, times))
        };
        match checked() {
            Ok(pair) => Some(pair),
            Err(e) => {
                log::warn!("rebuilding the indexes of segment {base_offset}: {e}");
                None
            }
        }
    }

    /// Picks up the state the indexes do not hold by scanning from the last offset
    /// index entry to the end (the segment's data is durable, so damage found there is
    /// skipped and reported). If the time index is out of order, falls back to a full
    /// rebuild.
    fn load_tail(&mut self, config: &LogConfig) -> LogResult<u64> {
        let start = self.offset_index.last_entry();
        if let Some(last) = self.time_index.last_entry() {
            self.max_timestamp = Some(last);
        }
        let start_position = start.map_or(0, |e| e.position as u64);
        self.next_offset = start.map_or(self.base_offset, |e| e.offset);
        let end = self.scan(start_position, OnDamage::Skip, |seg, _pos, batch| {
            seg.note_batch(batch);
        })?;
        let time_index_ok = self.time_index.sanity_check(self.next_offset).is_ok();
        if end.invalid.is_some() || end.valid_bytes != self.size_bytes || !time_index_ok {
            log::warn!(
                "segment {} of {} is damaged after its last index entry ({}); rebuilding it",
                self.base_offset,
                self.dir.display(),
                end.invalid.as_deref().unwrap_or("time index out of order")
            );
            self.offset_index = OffsetIndex::create(
                &segment_file(&self.dir, self.base_offset, INDEX_SUFFIX),
                self.base_offset,
                config.segment_index_bytes,
            )?;
            self.time_index = TimeIndex::create(
                &segment_file(&self.dir, self.base_offset, TIME_INDEX_SUFFIX),
                self.base_offset,
                config.segment_index_bytes,
            )?;
            return self.rebuild(config, OnDamage::Skip);
        }
        // As if every batch had been indexed by append: bytes since the last entry.
        self.bytes_since_last_index_entry = (self.size_bytes - start_position) as usize;
        self.first_append_ms = self.first_batch_max_timestamp()?;
        Ok(0)
    }

    /// Scans every batch from the start, re-indexing each. A batch that is torn, fails
    /// its CRC or breaks offset order truncates the file there (`Truncate`: unflushed
    /// data) or is skipped and reported (`Skip`: durable data). Returns the number of
    /// bytes dropped.
    pub(crate) fn rebuild(&mut self, config: &LogConfig, on_damage: OnDamage) -> LogResult<u64> {
        self.offset_index.inner().truncate_entries(0);
        self.offset_index
            .inner()
            .resize(config.segment_index_bytes)?;
        self.time_index.inner().truncate_entries(0);
        self.time_index.inner().resize(config.segment_index_bytes)?;
        self.next_offset = self.base_offset;
        self.max_timestamp = None;
        self.bytes_since_last_index_entry = 0;
        self.corrupt.clear();
        let end = self.scan(0, on_damage, |seg, pos, batch| seg.index_batch(pos, batch))?;
        let dropped = self.size_bytes - end.valid_bytes;
        if let Some(reason) = end.invalid {
            log::warn!(
                "truncating {} at byte {}: dropped {} bytes ({})",
                self.log_path.display(),
                end.valid_bytes,
                dropped,
                reason
            );
            let file = self.writable_file()?;
            file.set_len(end.valid_bytes)
                .map_err(LogError::io(&self.log_path))?;
            file.sync_all().map_err(LogError::io(&self.log_path))?;
            self.size_bytes = end.valid_bytes;
        }
        self.first_append_ms = self.first_batch_max_timestamp()?;
        Ok(dropped)
    }

    /// Walks whole, valid batches from `start`, calling `visit` with each. At a batch
    /// that does not validate, stops (`Truncate`) or records it as a corrupt region and
    /// goes on after it (`Skip`).
    fn scan(
        &mut self,
        start: u64,
        on_damage: OnDamage,
        mut visit: impl FnMut(&mut Self, u64, &BatchRef<'_>),
    ) -> LogResult<ScanEnd> {
        // A second handle, so `visit` may borrow the segment mutably meanwhile.
        let file = match &self.file {
            Some(f) => f.try_clone(),
            None => File::open(&self.log_path),
        }
        .map_err(LogError::io(&self.log_path))?;
        let path = self.log_path.clone();
        let mut reader = ChunkReader::new(&file, &path, SCAN_CHUNK_BYTES);
        let mut position = start;
        while position < self.size_bytes {
            let remaining = (self.size_bytes - position) as usize;
            let problem = match self.check_scanned(&mut reader, position, remaining)? {
                Ok(size) => {
                    let bytes = reader.read(position, size, remaining)?;
                    let batch = BatchRef::parse(bytes)
                        .map_err(|e| self.corrupt(position, e.to_string()))?;
                    visit(self, position, &batch);
                    position += size as u64;
                    continue;
                }
                Err(problem) => problem,
            };
            match on_damage {
                OnDamage::Truncate { recovery_point } if self.next_offset >= recovery_point => {
                    return Ok(ScanEnd {
                        valid_bytes: position,
                        invalid: Some(problem),
                    })
                }
                OnDamage::Skip | OnDamage::Truncate { .. } => {
                    let region = corruption::locate(
                        &self.bounds(&file, None),
                        position,
                        self.next_offset,
                        self.size_bytes,
                        problem,
                    )?;
                    // As if indexed: the interval counts the region's bytes too.
                    self.bytes_since_last_index_entry += region.size_bytes() as usize;
                    self.next_offset = region.last_offset + 1;
                    position = region.end_position;
                    self.corrupt.record(region, &self.log_path);
                }
            }
        }
        Ok(ScanEnd {
            valid_bytes: position,
            invalid: None,
        })
    }

    /// Checks the batch at `position` for the scan: its size, or why it is not valid.
    fn check_scanned(
        &self,
        reader: &mut ChunkReader<'_>,
        position: u64,
        remaining: usize,
    ) -> LogResult<Result<usize, String>> {
        if remaining < BATCH_HEADER_BYTES {
            return Ok(Err(format!("torn batch header ({remaining} bytes)")));
        }
        let header_bytes = reader.read(position, BATCH_HEADER_BYTES, remaining)?;
        let header = match BatchHeader::parse(header_bytes) {
            Ok(h) => h,
            Err(e) => return Ok(Err(e.to_string())),
        };
        if header.size_bytes > remaining {
            return Ok(Err(format!(
                "torn batch: {} bytes of {} present",
                remaining, header.size_bytes
            )));
        }
        let bytes = reader.read(position, header.size_bytes, remaining)?;
        let checked = BatchRef::parse(bytes).and_then(|b| b.validate().map(|()| b));
        let batch = match checked {
            Ok(b) => b,
            Err(e) => return Ok(Err(e.to_string())),
        };
        // The base offset is outside the CRC (as in Kafka), so continuity is what
        // vouches for it: each batch starts where the previous one ended.
        let in_order = match self.continuity {
            Continuity::Contiguous => batch.base_offset() == self.next_offset,
            Continuity::Gaps => batch.base_offset() >= self.next_offset,
        };
        if !in_order || batch.last_offset() - self.base_offset > i32::MAX as i64 {
            return Ok(Err(format!(
                "batch at offset {} breaks offset continuity (expected {})",
                batch.base_offset(),
                self.next_offset
            )));
        }
        Ok(Ok(header.size_bytes))
    }

    fn bounds<'a>(&'a self, file: &'a File, next_offset: Option<i64>) -> SegmentBounds<'a> {
        SegmentBounds {
            file,
            path: &self.log_path,
            base_offset: self.base_offset,
            size_bytes: self.size_bytes,
            next_offset,
        }
    }

    /// Records the damaged batch at `position` (which should start at
    /// `expected_offset`) as a corrupt region, found by a read.
    fn discover(&self, position: u64, expected_offset: i64, reason: String) -> LogResult<()> {
        let search_end = self
            .offset_index
            .first_entry_after(position)?
            .map_or(self.size_bytes, |e| e.position as u64);
        let file = self.log_file()?;
        let region = corruption::locate(
            &self.bounds(&file, Some(self.next_offset)),
            position,
            expected_offset,
            search_end,
            reason,
        )?;
        self.corrupt.record(region, &self.log_path);
        Ok(())
    }

    /// How many damaged batches this segment is known to hold.
    pub(crate) fn corrupt_batches(&self) -> usize {
        self.corrupt.len()
    }

    /// After an open that ended in a damaged region running to the end of the file:
    /// `next_offset` is where the segment really ends (the next segment's base offset,
    /// or the log end offset a clean close recorded). The region is given the offsets
    /// up to it; a region that holds none was bytes past the last record and is cut
    /// off. Returns whether anything changed.
    pub(crate) fn settle_corrupt_tail(&mut self, next_offset: i64) -> LogResult<bool> {
        if self.corrupt.stretch_tail(self.size_bytes, next_offset) {
            self.next_offset = next_offset;
            return Ok(true);
        }
        let tail = self
            .corrupt
            .last()
            .filter(|r| r.end_position == self.size_bytes && r.first_offset == next_offset);
        let Some(region) = tail else {
            return Ok(false);
        };
        log::warn!(
            "{}: the {} bytes at {} hold no record below the recorded end offset {next_offset}; cutting them off",
            self.log_path.display(),
            region.size_bytes(),
            region.position
        );
        // A sealed segment holds no handle: this one is opened for the cut alone.
        let file = match &self.file {
            Some(f) => f.try_clone(),
            None => std::fs::OpenOptions::new().write(true).open(&self.log_path),
        }
        .map_err(LogError::io(&self.log_path))?;
        file.set_len(region.position)
            .map_err(LogError::io(&self.log_path))?;
        file.sync_all().map_err(LogError::io(&self.log_path))?;
        self.size_bytes = region.position;
        self.next_offset = next_offset;
        self.corrupt.pop();
        Ok(true)
    }

    fn first_batch_max_timestamp(&self) -> LogResult<Option<i64>> {
        if self.size_bytes < BATCH_HEADER_BYTES as u64 {
            return Ok(None);
        }
        let mut header = [0u8; BATCH_HEADER_BYTES];
        self.log_file()?
            .read_exact_at(&mut header, 0)
            .map_err(LogError::io(&self.log_path))?;
        // A damaged first batch has no age to go by: it is reported where it is read.
        Ok(BatchHeader::parse(&header).ok().map(|h| h.max_timestamp))
    }

    /// Index bookkeeping for a batch written at `position`: the one code path shared by
    /// append and rebuild.
    fn index_batch(&mut self, position: u64, batch: &BatchRef<'_>) {
        // A full index (possible after segment.index.bytes was lowered) only makes
        // lookups scan further; it never stops a rebuild.
        if self.bytes_since_last_index_entry > self.index_interval_bytes
            && !self.offset_index.index().is_full()
        {
            self.offset_index
                .append(batch.base_offset(), position as u32);
            let max = self.max_timestamp_with(batch);
            self.time_index.maybe_append(max.timestamp_ms, max.offset);
            self.bytes_since_last_index_entry = 0;
        }
        self.bytes_since_last_index_entry += batch.size_bytes();
        self.note_batch(batch);
    }

    fn note_batch(&mut self, batch: &BatchRef<'_>) {
        self.max_timestamp = Some(self.max_timestamp_with(batch));
        self.next_offset = batch.next_offset();
    }

    fn max_timestamp_with(&self, batch: &BatchRef<'_>) -> TimestampOffset {
        match self.max_timestamp {
            Some(m) if m.timestamp_ms >= batch.max_timestamp() => m,
            _ => TimestampOffset {
                timestamp_ms: batch.max_timestamp(),
                offset: batch.base_offset(),
            },
        }
    }

    /// Whether appending a batch of `batch_bytes` ending at `last_offset` at time `now_ms`
    /// must go to a new segment instead. An empty segment never rolls.
    pub(crate) fn should_roll(
        &self,
        batch_bytes: usize,
        last_offset: i64,
        now_ms: i64,
        config: &LogConfig,
    ) -> bool {
        if self.size_bytes == 0 {
            return false;
        }
        let too_big = self.size_bytes + batch_bytes as u64 > config.segment_bytes;
        let too_old = self
            .first_append_ms
            .is_some_and(|first| now_ms.saturating_sub(first) > config.segment_ms);
        let index_full = self.offset_index.index().is_full() || self.time_index.index().is_full();
        let offset_overflow = last_offset - self.base_offset > i32::MAX as i64;
        too_big || too_old || index_full || offset_overflow
    }

    /// Writes a validated batch (its base offset already assigned) at the end of the
    /// file. A failure (a full disk) leaves the segment as it was: index room is
    /// reserved before anything is written, and a partly written batch is cut off.
    pub(crate) fn append(&mut self, batch: &BatchRef<'_>, now_ms: i64) -> LogResult<()> {
        debug_assert!(batch.base_offset() >= self.next_offset);
        if self.bytes_since_last_index_entry > self.index_interval_bytes {
            self.offset_index.reserve_next()?;
            self.time_index.reserve_next()?;
        }
        let position = self.size_bytes;
        let file = self.writable_file()?;
        if let Err(e) = file.write_all_at(batch.as_bytes(), position) {
            // Leave no partial batch behind for a later append to build on.
            let _ = file.set_len(position);
            return Err(LogError::io(&self.log_path)(e));
        }
        self.size_bytes += batch.size_bytes() as u64;
        if self.first_append_ms.is_none() {
            self.first_append_ms = Some(now_ms);
        }
        self.index_batch(position, batch);
        Ok(())
    }

    /// Appends whole batches, starting with the one holding `start_offset`, to `out`
    /// while they fit in `max_bytes`; the first one is appended even when it alone is
    /// larger, if `out` is empty. Every batch returned passes its CRC check and follows
    /// the previous one's offsets.
    ///
    /// A damaged batch ends the read before it ([`ReadEnd::Full`]) when good batches
    /// precede it in `out`; a read that starts inside one fails with
    /// [`LogError::CorruptBatch`]; a read that starts after one goes around it.
    pub(crate) fn read(
        &self,
        start_offset: i64,
        max_bytes: usize,
        out: &mut Vec<u8>,
    ) -> LogResult<ReadEnd> {
        let had_bytes = !out.is_empty();
        let entry = self.offset_index.lookup(start_offset)?;
        let mut position = entry.position as u64;
        // The offset the batch at `position` must start at (or after, with gaps).
        let mut expected = entry.offset;
        loop {
            // Skip the batches between the index entry and the one holding
            // start_offset, reading only their headers (about index.interval.bytes).
            let first = loop {
                if position >= self.size_bytes {
                    return Ok(ReadEnd::Exhausted);
                }
                if let Some(region) = self.corrupt.at(position) {
                    if region.last_offset >= start_offset {
                        return match had_bytes {
                            true => Ok(ReadEnd::Full),
                            false => Err(region.error(&self.log_path)),
                        };
                    }
                    position = region.end_position;
                    expected = region.last_offset + 1;
                    continue;
                }
                match self.header_at(position, expected)? {
                    Ok(header) if header.last_offset() >= start_offset => break header,
                    Ok(header) => {
                        position += header.size_bytes as u64;
                        expected = header.last_offset() + 1;
                    }
                    Err(reason) => self.discover(position, expected, reason)?,
                }
            };
            let budget = if out.is_empty() {
                max_bytes.max(first.size_bytes)
            } else if out.len() + first.size_bytes > max_bytes {
                return Ok(ReadEnd::Full);
            } else {
                max_bytes - out.len()
            };
            // Then read the run of batches in one call, straight into `out`, and keep
            // the whole, valid ones.
            let remaining = self.size_bytes - position;
            let want = (budget as u64).min(remaining) as usize;
            let start = out.len();
            out.resize(start + want, 0);
            if let Err(e) = self.log_file()?.read_exact_at(&mut out[start..], position) {
                out.truncate(start);
                return Err(LogError::io(&self.log_path)(e));
            }
            let mut kept = start;
            let mut next_expected = expected;
            let mut damage = None;
            while out.len() - kept >= BATCH_HEADER_BYTES {
                let at = position + (kept - start) as u64;
                if self.corrupt.at(at).is_some() {
                    damage = Some((at, None));
                    break;
                }
                match self.check_read(&out[kept..], at, next_expected) {
                    Ok(Some(header)) => {
                        kept += header.size_bytes;
                        next_expected = header.last_offset() + 1;
                    }
                    Ok(None) => break,
                    Err(reason) => {
                        damage = Some((at, Some(reason)));
                        break;
                    }
                }
            }
            out.truncate(kept);
            let Some((at, reason)) = damage else {
                return Ok(if (kept - start) as u64 == remaining {
                    ReadEnd::Exhausted
                } else {
                    ReadEnd::Full
                });
            };
            if let Some(reason) = reason {
                self.discover(at, next_expected, reason)?;
            }
            if kept > start || had_bytes {
                // Serve the good batches before the damage; the next read starts there.
                return Ok(ReadEnd::Full);
            }
            // The batch holding start_offset is itself damaged: the walk above, which
            // now knows its region, answers the error or goes around it.
            position = at;
            expected = next_expected;
        }
    }

    /// Where truncating to `offset` cuts this segment: before the batch holding it,
    /// or the first batch after it (a damaged region counts as a batch).
    pub(crate) fn cut_for(&self, offset: i64) -> LogResult<Cut> {
        let entry = self.offset_index.lookup(offset)?;
        let mut position = entry.position as u64;
        let mut expected = entry.offset;
        while position < self.size_bytes {
            if let Some(region) = self.corrupt.at(position) {
                if region.last_offset >= offset {
                    return Ok(Cut {
                        position,
                        first_dropped_offset: region.first_offset,
                    });
                }
                position = region.end_position;
                expected = region.last_offset + 1;
                continue;
            }
            match self.header_at(position, expected)? {
                Ok(header) if header.last_offset() >= offset => {
                    return Ok(Cut {
                        position,
                        first_dropped_offset: header.base_offset,
                    })
                }
                Ok(header) => {
                    position += header.size_bytes as u64;
                    expected = header.last_offset() + 1;
                }
                // Recorded: the next turn meets it as a region.
                Err(reason) => self.discover(position, expected, reason)?,
            }
        }
        Ok(Cut {
            position: self.size_bytes,
            first_dropped_offset: self.next_offset,
        })
    }

    /// Drops everything from `cut` on (the segment must be active): the `.log` is
    /// cut and synced, index entries and damaged regions past the cut are forgotten,
    /// and the segment's last offset and largest timestamp are found again by
    /// scanning from its last index entry, as an open does. Returns the bytes dropped.
    pub(crate) fn truncate(&mut self, cut: Cut, config: &LogConfig) -> LogResult<u64> {
        if cut.position >= self.size_bytes {
            return Ok(0);
        }
        let file = self.writable_file()?;
        file.set_len(cut.position)
            .map_err(LogError::io(&self.log_path))?;
        file.sync_all().map_err(LogError::io(&self.log_path))?;
        let dropped = self.size_bytes - cut.position;
        self.size_bytes = cut.position;
        let mut offsets_kept = self.offset_index.index().entries();
        while offsets_kept > 0
            && self.offset_index.entry(offsets_kept - 1).position as u64 >= cut.position
        {
            offsets_kept -= 1;
        }
        self.offset_index.inner().truncate_entries(offsets_kept);
        let mut times_kept = self.time_index.index().entries();
        while times_kept > 0
            && self.time_index.entry(times_kept - 1).offset >= cut.first_dropped_offset
        {
            times_kept -= 1;
        }
        self.time_index.inner().truncate_entries(times_kept);
        self.corrupt.truncate(cut.position);
        if self.size_bytes == 0 {
            // Nothing left that compaction could have spaced out.
            self.continuity = Continuity::Contiguous;
        }
        self.max_timestamp = None;
        self.load_tail(config)?;
        Ok(dropped)
    }

    /// The header of the batch at `position` if it is framed within the segment and
    /// starts at `expected` (or after it, where gaps are allowed); else why not.
    fn header_at(&self, position: u64, expected: i64) -> LogResult<Result<BatchHeader, String>> {
        let remaining = self.size_bytes - position;
        if remaining < BATCH_HEADER_BYTES as u64 {
            return Ok(Err(format!("torn batch header ({remaining} bytes)")));
        }
        let mut bytes = [0u8; BATCH_HEADER_BYTES];
        self.log_file()?
            .read_exact_at(&mut bytes, position)
            .map_err(LogError::io(&self.log_path))?;
        let header = match BatchHeader::parse(&bytes) {
            Ok(h) => h,
            Err(e) => return Ok(Err(e.to_string())),
        };
        if header.size_bytes as u64 > remaining {
            return Ok(Err("batch runs past the end of the segment".into()));
        }
        Ok(self.check_continuity(&header, expected).map(|()| header))
    }

    fn check_continuity(&self, header: &BatchHeader, expected: i64) -> Result<(), String> {
        let in_order = match self.continuity {
            Continuity::Contiguous => header.base_offset == expected,
            Continuity::Gaps => header.base_offset >= expected,
        };
        if !in_order
            || header.last_offset() < header.base_offset
            || header.last_offset() >= self.next_offset
        {
            return Err(format!(
                "batch at offset {} breaks offset continuity (expected {expected})",
                header.base_offset
            ));
        }
        Ok(())
    }

    /// Checks the batch at the start of `bytes` (at `position` in the file) for a read:
    /// `None` when it is not wholly in `bytes`, else its header, or why it is damaged.
    fn check_read(
        &self,
        bytes: &[u8],
        position: u64,
        expected: i64,
    ) -> Result<Option<BatchHeader>, String> {
        let header = BatchHeader::parse(bytes).map_err(|e| e.to_string())?;
        if position + header.size_bytes as u64 > self.size_bytes {
            return Err("batch runs past the end of the segment".into());
        }
        if header.size_bytes > bytes.len() {
            return Ok(None);
        }
        self.check_continuity(&header, expected)?;
        BatchRef::parse(&bytes[..header.size_bytes])
            .and_then(|b| b.verify_crc())
            .map_err(|e| e.to_string())?;
        Ok(Some(header))
    }

    /// The first record at or after `min_offset` whose timestamp is at or after
    /// `timestamp_ms`, if this segment has one.
    pub(crate) fn find_offset_by_timestamp(
        &self,
        timestamp_ms: i64,
        min_offset: i64,
    ) -> LogResult<Option<TimestampOffset>> {
        if self
            .max_timestamp
            .is_none_or(|m| m.timestamp_ms < timestamp_ms)
        {
            return Ok(None);
        }
        let from = self
            .time_index
            .lookup_before(timestamp_ms)?
            .map_or(self.base_offset, |e| e.offset)
            .max(min_offset);
        let entry = self.offset_index.lookup(from)?;
        let mut position = entry.position as u64;
        let mut expected = entry.offset;
        while position < self.size_bytes {
            // Damaged batches have no timestamps to trust: the search goes around them.
            if let Some(region) = self.corrupt.at(position) {
                position = region.end_position;
                expected = region.last_offset + 1;
                continue;
            }
            let header = match self.header_at(position, expected)? {
                Ok(header) => header,
                Err(reason) => {
                    self.discover(position, expected, reason)?;
                    continue;
                }
            };
            if header.last_offset() >= from && header.max_timestamp >= timestamp_ms {
                if let Some(found) = self.find_in_batch(position, &header, timestamp_ms, from)? {
                    return Ok(Some(found));
                }
            }
            position += header.size_bytes as u64;
            expected = header.last_offset() + 1;
        }
        Ok(None)
    }

    /// The first record of the batch at `position` at or after both `from` and
    /// `timestamp_ms`. A damaged batch is recorded and yields nothing.
    fn find_in_batch(
        &self,
        position: u64,
        header: &BatchHeader,
        timestamp_ms: i64,
        from: i64,
    ) -> LogResult<Option<TimestampOffset>> {
        let mut bytes = vec![0u8; header.size_bytes];
        self.log_file()?
            .read_exact_at(&mut bytes, position)
            .map_err(LogError::io(&self.log_path))?;
        let batch = match BatchRef::parse(&bytes).and_then(|b| b.validate().map(|()| b)) {
            Ok(batch) => batch,
            Err(e) => {
                self.discover(position, header.base_offset, e.to_string())?;
                return Ok(None);
            }
        };
        for record in batch.records() {
            let record = record.map_err(|e| self.corrupt(position, e.to_string()))?;
            if record.offset >= from && record.record.timestamp_ms >= timestamp_ms {
                return Ok(Some(TimestampOffset {
                    timestamp_ms: record.record.timestamp_ms,
                    offset: record.offset,
                }));
            }
        }
        Ok(None)
    }

    /// Seals the segment when it stops being active: records its final max timestamp
    /// in the time index, trims both indexes to their used size, and closes all three
    /// files (reads reopen them as they need).
    pub(crate) fn seal(&mut self) -> LogResult<()> {
        if self.is_sealed() {
            return Ok(());
        }
        if let Some(max) = self.max_timestamp {
            self.time_index.maybe_append(max.timestamp_ms, max.offset);
        }
        self.offset_index.inner().trim()?;
        self.time_index.inner().trim()?;
        self.offset_index.inner().close();
        self.time_index.inner().close();
        self.file = None;
        Ok(())
    }

    /// Whether the segment is sealed (closed to appends; its files closed).
    pub(crate) fn is_sealed(&self) -> bool {
        self.file.is_none()
    }

    /// Makes a sealed segment appendable again: its files reopened, room for new
    /// index entries (sized, not yet allocated, so this needs no free space).
    pub(crate) fn activate(&mut self, config: &LogConfig) -> LogResult<()> {
        if self.file.is_none() {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&self.log_path)
                .map_err(LogError::io(&self.log_path))?;
            self.file = Some(file);
        }
        self.offset_index
            .inner()
            .resize(config.segment_index_bytes)?;
        self.time_index.inner().resize(config.segment_index_bytes)
    }

    /// The `.log` file for reading: the held one, or opened for the caller.
    fn log_file(&self) -> LogResult<LogFile<'_>> {
        match &self.file {
            Some(f) => Ok(LogFile::Held(f)),
            None => File::open(&self.log_path)
                .map(LogFile::Opened)
                .map_err(LogError::io(&self.log_path)),
        }
    }

    /// The `.log` file for writing: only an active segment has one.
    fn writable_file(&self) -> LogResult<&File> {
        self.file.as_ref().ok_or_else(|| LogError::Io {
            path: self.log_path.clone(),
            source: std::io::Error::other("the segment is sealed"),
        })
    }

    /// Handles on the three files, for an fsync that runs off the owner's thread.
    pub(crate) fn sync_handles(&self) -> LogResult<Vec<(PathBuf, File)>> {
        Ok(vec![
            (
                self.log_path.clone(),
                match &self.file {
                    Some(f) => f.try_clone(),
                    None => File::open(&self.log_path),
                }
                .map_err(LogError::io(&self.log_path))?,
            ),
            (
                self.offset_index.index().path().to_path_buf(),
                self.offset_index.index().sync_handle()?,
            ),
            (
                self.time_index.index().path().to_path_buf(),
                self.time_index.index().sync_handle()?,
            ),
        ])
    }

    /// Renames the files to `*.deleted` (a crash then leaves them recognisable; the
    /// next open removes them) and returns the new paths, to be removed later.
    pub(crate) fn retire(self) -> LogResult<Vec<PathBuf>> {
        let paths = [
            self.log_path.clone(),
            self.offset_index.index().path().to_path_buf(),
            self.time_index.index().path().to_path_buf(),
        ];
        drop(self);
        let mut retired = Vec::with_capacity(paths.len());
        for path in paths {
            let mut doomed = path.clone().into_os_string();
            doomed.push(DELETED_SUFFIX);
            let doomed = PathBuf::from(doomed);
            fs::rename(&path, &doomed).map_err(LogError::io(&path))?;
            retired.push(doomed);
        }
        Ok(retired)
    }

    /// Retires the files and removes them at once.
    pub(crate) fn delete(self) -> LogResult<()> {
        remove_files(&self.retire()?)
    }

    fn corrupt(&self, position: u64, reason: String) -> LogError {
        LogError::Corrupt {
            path: self.log_path.clone(),
            position,
            reason,
        }
    }

    pub(crate) fn index_full(&self) -> bool {
        self.offset_index.index().is_full() || self.time_index.index().is_full()
    }

    /// Sets the log file's modification time (the cleaner carries cleaning times over).
    pub(crate) fn set_modified_ms(&self, ms: i64) -> LogResult<()> {
        let time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
        self.log_file()?
            .set_modified(time)
            .map_err(LogError::io(&self.log_path))
    }

    /// When the segment's log file was last written, in ms since the epoch.
    pub(crate) fn modified_ms(&self) -> i64 {
        fs::metadata(&self.log_path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as i64)
    }

    pub(crate) fn base_offset(&self) -> i64 {
        self.base_offset
    }
    pub(crate) fn next_offset(&self) -> i64 {
        self.next_offset
    }
    pub(crate) fn size_bytes(&self) -> u64 {
        self.size_bytes
    }
    pub(crate) fn info(&self, is_active: bool) -> SegmentInfo {
        SegmentInfo {
            base_offset: self.base_offset,
            next_offset: self.next_offset,
            size_bytes: self.size_bytes,
            max_timestamp_ms: self.max_timestamp.map(|m| m.timestamp_ms),
            is_active,
        }
    }
}

/// Removes retired files (missing ones are fine: a crash may have removed them).
pub fn remove_files(paths: &[PathBuf]) -> LogResult<()> {
    for path in paths {
        match fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(LogError::io(path)(e)),
        }
    }
    Ok(())
}

/// A segment's `.log` file for one read: the active segment's own handle, or one
/// opened for a sealed segment and closed when the read is done.
enum LogFile<'a> {
    Held(&'a File),
    Opened(File),
}

impl Deref for LogFile<'_> {
    type Target = File;
    fn deref(&self) -> &File {
        match self {
            LogFile::Held(f) => f,
            LogFile::Opened(f) => f,
        }
    }
}

/// Whether batches in a segment must follow one another without offset gaps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Continuity {
    /// Appended segments: each batch starts where the previous one ended. Since the
    /// base offset is outside the CRC, this is what vouches for it.
    Contiguous,
    /// Sealed segments, which compaction may have rewritten with gaps.
    Gaps,
}

/// What a scan does at a batch that does not validate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnDamage {
    /// Cut the file there if the batch is at or past the recovery point (after a
    /// crash, a torn write); below it the data was durable, so skip as below.
    Truncate { recovery_point: i64 },
    /// Keep the bytes, record a corrupt region and go on after it: durable data,
    /// whose later batches are good (see [`crate::storage::corruption`]).
    Skip,
}

/// How far the indexes found on disk can be believed at open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IndexTrust {
    /// Keep them if they pass their sanity check (clean shutdown, or below the
    /// recovery point).
    SanityCheck,
    /// Scan the log and rebuild them (after an unclean stop). Offsets below the
    /// recovery point were durable: damage there is skipped, not truncated.
    Rebuild { recovery_point: i64 },
}

/// A window over a file, refilled with one large read at a time so walking many small
/// batches costs few system calls.
struct ChunkReader<'a> {
    file: &'a File,
    path: &'a Path,
    chunk_bytes: usize,
    start: u64,
    buf: Vec<u8>,
}

impl<'a> ChunkReader<'a> {
    fn new(file: &'a File, path: &'a Path, chunk_bytes: usize) -> Self {
        ChunkReader {
            file,
            path,
            chunk_bytes,
            start: 0,
            buf: Vec::new(),
        }
    }

    /// `len` bytes at `position`; `available` bounds how far past `position` the file
    /// holds valid data.
    fn read(&mut self, position: u64, len: usize, available: usize) -> LogResult<&[u8]> {
        let end = position + len as u64;
        let cached = position >= self.start && end <= self.start + self.buf.len() as u64;
        if !cached {
            let want = len.max(self.chunk_bytes).min(available).max(len);
            self.buf.resize(want, 0);
            self.file
                .read_exact_at(&mut self.buf, position)
                .map_err(LogError::io(self.path))?;
            self.start = position;
        }
        let from = (position - self.start) as usize;
        Ok(&self.buf[from..from + len])
    }
}
