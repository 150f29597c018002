//! `Log`: one partition's log — its segments together, in the directory
//! `<log.dirs>/<topic>-<partition>`. It assigns offsets, rolls segments, serves reads
//! and timestamp lookups, tracks the log start offset, log end offset and recovery
//! point, flushes by policy (with group commit, see [`crate::storage::flush`]),
//! recovers at open (see [`crate::storage::recovery`]) and deletes old segments on
//! request (the retention and compaction work builds on that).
//!
//! A `Log` has a single owner (later, its partition actor) and no interior locking:
//! every mutating call takes `&mut self`. Dropping it without [`Log::close`] is the
//! same as a crash: the next open recovers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::batch::{BatchRef, Record, RecordBatch, StoredRecord, TimestampType};
use super::checkpoint::sync_dir;
use super::compaction::{
    apply_swap, discard_cleaning, CleanableLog, CleanableSegment, SwapManifest,
};
use super::error::{LogError, LogResult};
use super::flush::{FlushDone, FlushTicket};
use super::log_config::{Clock, LogConfig, SystemClock};
use super::recovery::{self, write_log_checkpoint, Checkpoint, CLEAN_SHUTDOWN_FILE};
use super::segment::{remove_files, Continuity, IndexTrust, LogSegment, ReadEnd, SegmentInfo};
use super::time_index::TimestampOffset;

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    pub record_count: i32,
    /// The batch's max timestamp as stored (the append time under LogAppendTime).
    pub max_timestamp_ms: i64,
    /// Set when the topic uses LogAppendTime.
    pub log_append_time_ms: Option<i64>,
    pub size_bytes: usize,
    pub log_start_offset: i64,
}

/// The answer to a read: whole batches, and the log's bounds at the time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchData {
    /// Concatenated batches. The first may start before the offset asked for (batches
    /// are never split); [`FetchData::records_from`] skips those records.
    pub bytes: Vec<u8>,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
}

impl FetchData {
    pub fn batches(&self) -> impl Iterator<Item = BatchRef<'_>> {
        let mut rest: &[u8] = &self.bytes;
        std::iter::from_fn(move || {
            // The log only returns whole batches it has framed and checked.
            let batch = BatchRef::parse(rest).ok()?;
            rest = &rest[batch.size_bytes()..];
            Some(batch)
        })
    }

    /// Decodes the records at or after `offset`.
    pub fn records_from(&self, offset: i64) -> LogResult<Vec<StoredRecord>> {
        let mut out = Vec::new();
        for batch in self.batches() {
            for record in batch.records() {
                let record = record?;
                if record.offset >= offset {
                    out.push(record);
                }
            }
        }
        Ok(out)
    }
}

/// Counters for tests, benchmarks and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogStats {
    /// Completed flushes (each one fsync round over the files that needed it).
    pub flushes: u64,
    pub appended_batches: u64,
    pub appended_records: u64,
    pub rolls: u64,
}

#[derive(Debug)]
pub struct Log {
    dir: PathBuf,
    config: LogConfig,
    clock: Arc<dyn Clock>,
    /// Base offset → segment; the last one is the active segment. Never empty.
    segments: BTreeMap<i64, LogSegment>,
    log_start_offset: i64,
    /// Every offset below it is known to be on disk.
    recovery_point: i64,
    /// The offset the newest flush ticket covers (>= recovery_point).
    flush_requested_offset: i64,
    /// The log cleaner's first dirty offset: below it the log is compacted.
    cleaner_offset: i64,
    /// When the oldest append not covered by a flush ticket happened.
    oldest_unflushed_ms: Option<i64>,
    checkpointed: Checkpoint,
    last_checkpoint_ms: i64,
    stats: LogStats,
    /// Damaged batches that were in segments since deleted (for a counter that only rises).
    retired_corrupt_batches: u64,
}

impl Log {
    /// Opens (creating if needed) the log in `dir`, recovering it if the last stop was
    /// not clean.
    pub fn open(dir: impl AsRef<Path>, config: LogConfig) -> LogResult<Log> {
        Log::open_with_clock(dir, config, Arc::new(SystemClock))
    }

    pub fn open_with_clock(
        dir: impl AsRef<Path>,
        config: LogConfig,
        clock: Arc<dyn Clock>,
    ) -> LogResult<Log> {
        config.validate()?;
        let dir = dir.as_ref().to_path_buf();
        let loaded = recovery::load(&dir, &config)?;
        let now = clock.now_ms();
        let checkpointed = Checkpoint {
            log_start_offset: loaded.log_start_offset,
            recovery_point: loaded.recovery_point,
            cleaner_offset: loaded.cleaner_offset,
        };
        Ok(Log {
            dir,
            config,
            clock,
            segments: loaded.segments,
            log_start_offset: loaded.log_start_offset,
            recovery_point: loaded.recovery_point,
            flush_requested_offset: loaded.recovery_point,
            cleaner_offset: loaded.cleaner_offset,
            oldest_unflushed_ms: None,
            checkpointed,
            last_checkpoint_ms: now,
            stats: LogStats::default(),
            retired_corrupt_batches: 0,
        })
    }

    fn active(&self) -> &LogSegment {
        self.segments
            .values()
            .next_back()
            .expect("a log always has an active segment")
    }

    fn active_mut(&mut self) -> &mut LogSegment {
        self.segments
            .values_mut()
            .next_back()
            .expect("a log always has an active segment")
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn config(&self) -> &LogConfig {
        &self.config
    }
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }
    /// The offset the next appended record will get.
    pub fn log_end_offset(&self) -> i64 {
        self.active().next_offset()
    }
    pub fn recovery_point(&self) -> i64 {
        self.recovery_point
    }
    pub fn size_bytes(&self) -> u64 {
        self.segments.values().map(LogSegment::size_bytes).sum()
    }
    pub fn stats(&self) -> LogStats {
        self.stats
    }
    /// Damaged batches found so far in the log's durable data, by recovery or by reads
    /// (see [`crate::storage::corruption`]); each counts once.
    pub fn corrupt_batches(&self) -> u64 {
        let live: usize = self
            .segments
            .values()
            .map(LogSegment::corrupt_batches)
            .sum();
        self.retired_corrupt_batches + live as u64
    }
    pub fn segments(&self) -> Vec<SegmentInfo> {
        let active = self.active().base_offset();
        self.segments
            .values()
            .map(|s| s.info(s.base_offset() == active))
            .collect()
    }

    /// Replaces the config (a topic config change). Takes effect from the next append.
    pub fn set_config(&mut self, config: LogConfig) -> LogResult<()> {
        config.validate()?;
        self.config = config;
        Ok(())
    }

    /// Encodes `records` as one batch and appends it.
    pub fn append_records(
        &mut self,
        records: &[Record],
        leader_epoch: i32,
    ) -> LogResult<AppendInfo> {
        let mut batch = RecordBatch::encode(records, TimestampType::CreateTime)?;
        self.append(&mut batch, leader_epoch)
    }

    /// Checks `batch` against `max.message.bytes` (its CRC and records were checked
    /// when the `RecordBatch` was built), assigns its offsets from the log end offset,
    /// stamps the leader epoch (and the append time under LogAppendTime), rolls first
    /// if the active segment is full or old, and writes it. Does not fsync:
    /// see [`Log::flush_due`] and [`Log::begin_flush`]. The batch is updated in place,
    /// so the caller holds exactly what was stored.
    pub fn append(&mut self, batch: &mut RecordBatch, leader_epoch: i32) -> LogResult<AppendInfo> {
        let size_bytes = batch.as_bytes().len();
        if size_bytes > self.config.max_message_bytes {
            return Err(LogError::RecordBatchTooLarge {
                size_bytes,
                max_message_bytes: self.config.max_message_bytes,
            });
        }
        // A RecordBatch is valid by construction (`encode` builds it, `from_bytes`
        // checks CRC and records), and the setters below keep it so: no second pass
        // over the bytes on the append path.
        debug_assert!(batch.view().validate().is_ok());
        let now = self.clock.now_ms();
        let base_offset = self.log_end_offset();
        let last_offset = base_offset + batch.view().last_offset_delta() as i64;
        // A roll that could not create the next segment (a full disk) leaves the
        // last one sealed: open it again, then roll as usual.
        if self.active().is_sealed() {
            let config = self.config.clone();
            self.active_mut().activate(&config)?;
        }
        if self
            .active()
            .should_roll(size_bytes, last_offset, now, &self.config)
        {
            self.roll()?;
        }
        batch.set_base_offset(base_offset);
        batch.set_partition_leader_epoch(leader_epoch);
        let log_append_time_ms = match self.config.timestamp_type {
            TimestampType::LogAppendTime => {
                batch.set_log_append_time(now);
                Some(now)
            }
            TimestampType::CreateTime => None,
        };
        self.active_mut().append(&batch.view(), now)?;
        self.oldest_unflushed_ms.get_or_insert(now);
        self.stats.appended_batches += 1;
        self.stats.appended_records += batch.view().records_count() as u64;
        Ok(AppendInfo {
            base_offset,
            last_offset,
            record_count: batch.view().records_count(),
            max_timestamp_ms: batch.view().max_timestamp(),
            log_append_time_ms,
            size_bytes,
            log_start_offset: self.log_start_offset,
        })
    }

    fn out_of_range(&self, requested: i64) -> LogError {
        LogError::OffsetOutOfRange {
            requested,
            log_start_offset: self.log_start_offset,
            log_end_offset: self.log_end_offset(),
        }
    }

    /// Whole batches from the one holding `offset`, up to `max_bytes` (at least one
    /// batch, however large). `offset == log end offset` returns no bytes; outside
    /// `[log start, log end]` is [`LogError::OffsetOutOfRange`].
    pub fn read(&self, offset: i64, max_bytes: usize) -> LogResult<FetchData> {
        let log_end_offset = self.log_end_offset();
        if offset < self.log_start_offset || offset > log_end_offset {
            return Err(self.out_of_range(offset));
        }
        let mut bytes = Vec::new();
        if offset < log_end_offset {
            let first = self
                .segments
                .range(..=offset)
                .next_back()
                .map_or(self.log_start_offset, |(base, _)| *base);
            for segment in self.segments.range(first..).map(|(_, s)| s) {
                if segment.read(offset, max_bytes, &mut bytes)? == ReadEnd::Full {
                    break;
                }
            }
        }
        Ok(FetchData {
            bytes,
            log_start_offset: self.log_start_offset,
            log_end_offset,
        })
    }

    /// The first record (in offset order) whose timestamp is at or after
    /// `timestamp_ms`, with its timestamp; `None` when every record is older.
    pub fn offset_for_timestamp(&self, timestamp_ms: i64) -> LogResult<Option<TimestampOffset>> {
        for segment in self.segments.values() {
            if segment.next_offset() <= self.log_start_offset {
                continue;
            }
            if let Some(found) =
                segment.find_offset_by_timestamp(timestamp_ms, self.log_start_offset)?
            {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// Starts a new active segment at the log end offset. The old one is sealed and
    /// fsynced (as Kafka flushes a segment when it rolls), which moves the recovery
    /// point to the new segment and checkpoints it. Rolling an empty active segment does nothing.
    pub fn roll(&mut self) -> LogResult<()> {
        if self.active().size_bytes() == 0 {
            return Ok(());
        }
        let new_base = self.log_end_offset();
        // Everything below the new segment, not just the old active one, may be unflushed.
        let ticket = self.flush_ticket_up_to(new_base)?;
        self.active_mut().seal()?;
        // The old segment is durable before the new one exists on disk, so a power
        // loss can never leave a later segment after a shortened earlier one.
        let done = ticket.sync()?;
        let segment = LogSegment::create(&self.dir, new_base, &self.config)?;
        self.segments.insert(new_base, segment);
        sync_dir(&self.dir)?;
        self.stats.rolls += 1;
        self.complete_flush(done)?;
        // Rolls are rare (one per segment.bytes), so persisting the recovery point
        // here is cheap, and after a crash only the active segment needs a scan.
        self.write_checkpoint_unless_full()
    }

    /// Whether the flush policy calls for a flush now: `flush.messages` records or
    /// `flush.ms` milliseconds not yet covered by a flush.
    pub fn flush_due(&self) -> bool {
        let unflushed = self.log_end_offset() - self.flush_requested_offset;
        if unflushed <= 0 {
            return false;
        }
        let by_count = self
            .config
            .flush
            .flush_messages
            .is_some_and(|n| unflushed as u64 >= n);
        let by_time = match (self.config.flush.flush_ms, self.oldest_unflushed_ms) {
            (Some(ms), Some(oldest)) => self.clock.now_ms() - oldest >= ms,
            _ => false,
        };
        by_count || by_time
    }

    /// A ticket covering everything appended so far that no earlier ticket covered,
    /// or `None` when nothing is waiting. See [`crate::storage::flush`].
    pub fn begin_flush(&mut self) -> LogResult<Option<FlushTicket>> {
        let log_end_offset = self.log_end_offset();
        if log_end_offset <= self.flush_requested_offset {
            return Ok(None);
        }
        let ticket = self.flush_ticket_up_to(log_end_offset)?;
        self.flush_requested_offset = log_end_offset;
        self.oldest_unflushed_ms = None;
        Ok(Some(ticket))
    }

    fn flush_ticket_up_to(&self, up_to_offset: i64) -> LogResult<FlushTicket> {
        let from = self
            .segments
            .range(..=self.recovery_point)
            .next_back()
            .map_or(i64::MIN, |(base, _)| *base);
        let mut files = Vec::new();
        for segment in self
            .segments
            .range(from..up_to_offset.max(from))
            .map(|(_, s)| s)
        {
            files.extend(segment.sync_handles()?);
        }
        if files.is_empty() {
            files.extend(self.active().sync_handles()?);
        }
        Ok(FlushTicket {
            files,
            up_to_offset,
        })
    }

    /// Records a finished flush: moves the recovery point, and persists it when the
    /// checkpoint interval has passed.
    pub fn complete_flush(&mut self, done: FlushDone) -> LogResult<()> {
        self.stats.flushes += 1;
        self.recovery_point = self.recovery_point.max(done.up_to_offset);
        self.flush_requested_offset = self.flush_requested_offset.max(self.recovery_point);
        if self.recovery_point >= self.log_end_offset() {
            self.oldest_unflushed_ms = None;
        }
        let now = self.clock.now_ms();
        if now - self.last_checkpoint_ms >= self.config.recovery_point_checkpoint_interval_ms {
            self.write_checkpoint_unless_full()?;
        }
        Ok(())
    }

    /// Flushes synchronously, on this thread.
    pub fn flush(&mut self) -> LogResult<()> {
        if let Some(ticket) = self.begin_flush()? {
            let done = ticket.sync()?;
            self.complete_flush(done)?;
        }
        Ok(())
    }

    /// Flushes synchronously if the policy says so; returns whether it did.
    pub fn flush_if_due(&mut self) -> LogResult<bool> {
        if !self.flush_due() {
            return Ok(false);
        }
        self.flush()?;
        Ok(true)
    }

    /// Writes the checkpoint, or on a full disk keeps the previous one and carries on:
    /// a stale recovery point or cleaner offset only means more work after a restart
    /// (more scanning, cleaning again), and whole segments removed by retention are
    /// past the old log start offset by themselves (the next open starts at the first
    /// segment left). Other failures are errors.
    fn write_checkpoint_unless_full(&mut self) -> LogResult<()> {
        match self.write_checkpoint() {
            Err(e) if e.is_disk_full() => {
                log::warn!(
                    "{}: keeping the previous checkpoint: {e}",
                    self.dir.display()
                );
                Ok(())
            }
            other => other,
        }
    }

    fn write_checkpoint(&mut self) -> LogResult<()> {
        let cp = Checkpoint {
            log_start_offset: self.log_start_offset,
            recovery_point: self.recovery_point,
            cleaner_offset: self.cleaner_offset,
        };
        write_log_checkpoint(&self.dir, cp)?;
        self.checkpointed = cp;
        self.last_checkpoint_ms = self.clock.now_ms();
        Ok(())
    }

    /// Deletes non-active segments from the oldest, while `should_delete` says yes,
    /// and advances the log start offset past them (persisted before any file goes).
    /// Never touches the active segment. Returns what was deleted.
    pub fn delete_oldest_segments(
        &mut self,
        should_delete: impl FnMut(&SegmentInfo) -> bool,
    ) -> LogResult<Vec<SegmentInfo>> {
        let (deleted, files) = self.retire_oldest_segments(should_delete)?;
        remove_files(&files)?;
        Ok(deleted)
    }

    /// Like [`Log::delete_oldest_segments`], but only renames the files to
    /// `*.deleted` and returns them, for the caller to remove after
    /// `file.delete.delay.ms` (the next open removes any that are left).
    pub fn retire_oldest_segments(
        &mut self,
        mut should_delete: impl FnMut(&SegmentInfo) -> bool,
    ) -> LogResult<(Vec<SegmentInfo>, Vec<PathBuf>)> {
        let active_base = self.active().base_offset();
        let mut doomed = Vec::new();
        for segment in self.segments.values() {
            if segment.base_offset() == active_base {
                break;
            }
            let info = segment.info(false);
            if !should_delete(&info) {
                break;
            }
            doomed.push(info);
        }
        let Some(last) = doomed.last() else {
            return Ok((doomed, Vec::new()));
        };
        let new_start = self
            .segments
            .range(last.base_offset + 1..)
            .next()
            .map_or(self.log_end_offset(), |(base, _)| *base);
        self.log_start_offset = self.log_start_offset.max(new_start);
        self.recovery_point = self.recovery_point.max(self.log_start_offset);
        self.flush_requested_offset = self.flush_requested_offset.max(self.recovery_point);
        // Retention is what frees a full disk: it must work without writing first.
        self.write_checkpoint_unless_full()?;
        let mut files = Vec::new();
        for info in &doomed {
            if let Some(segment) = self.segments.remove(&info.base_offset) {
                self.retired_corrupt_batches += segment.corrupt_batches() as u64;
                log::info!(
                    "{}: deleting segment {} ({} bytes, offsets {}..{})",
                    self.dir.display(),
                    info.base_offset,
                    info.size_bytes,
                    info.base_offset,
                    info.next_offset
                );
                files.extend(segment.retire()?);
            }
        }
        sync_dir(&self.dir)?;
        Ok((doomed, files))
    }

    /// The log cleaner's first dirty offset.
    pub fn cleaner_offset(&self) -> i64 {
        self.cleaner_offset.max(self.log_start_offset)
    }

    /// What the log cleaner needs to plan a pass: the sealed segments and the first
    /// dirty offset (see [`crate::storage::compaction`]).
    pub fn cleanable(&self) -> CleanableLog {
        let active = self.active().base_offset();
        CleanableLog {
            dir: self.dir.clone(),
            segments: self
                .segments
                .values()
                .filter(|s| s.base_offset() != active)
                .map(|s| CleanableSegment {
                    info: s.info(false),
                    modified_ms: s.modified_ms(),
                })
                .collect(),
            first_dirty_offset: self.cleaner_offset(),
        }
    }

    /// Installs a committed cleaning pass: the replaced segments are closed, the swap
    /// finished on disk (renames only) and the cleaned segments opened. If the log
    /// changed meanwhile (retention removed a replaced segment), the pass is discarded
    /// and `false` returned.
    pub fn install_cleaned(&mut self, manifest: &SwapManifest) -> LogResult<bool> {
        let active = self.active().base_offset();
        let still_there = manifest
            .replaced
            .iter()
            .all(|b| self.segments.contains_key(b) && *b != active);
        if !still_there {
            discard_cleaning(&self.dir)?;
            return Ok(false);
        }
        for base in &manifest.replaced {
            self.segments.remove(base);
        }
        apply_swap(&self.dir, manifest)?;
        for base in &manifest.installed {
            let (segment, dropped) = LogSegment::open(
                &self.dir,
                *base,
                &self.config,
                IndexTrust::SanityCheck,
                Continuity::Gaps,
            )?;
            if dropped > 0 {
                return Err(LogError::Corrupt {
                    path: self.dir.clone(),
                    position: 0,
                    reason: format!("cleaned segment {base} failed its check after the swap"),
                });
            }
            let mut segment = segment;
            segment.seal()?;
            self.segments.insert(*base, segment);
        }
        self.cleaner_offset = self.cleaner_offset.max(manifest.first_dirty_offset);
        self.write_checkpoint_unless_full()?;
        Ok(true)
    }

    /// Flushes everything, trims the active segment's indexes, persists the
    /// checkpoint and leaves the clean-shutdown marker, so the next open skips recovery.
    pub fn close(mut self) -> LogResult<()> {
        self.flush()?;
        self.active_mut().seal()?;
        for (path, file) in self.active().sync_handles()? {
            file.sync_all().map_err(LogError::io(path))?;
        }
        self.recovery_point = self.log_end_offset();
        // On a full disk the previous checkpoint stays; the marker (an empty file)
        // still says every segment is flushed and trimmed, which is what it vouches for.
        self.write_checkpoint_unless_full()?;
        let marker = self.dir.join(CLEAN_SHUTDOWN_FILE);
        std::fs::File::create(&marker)
            .and_then(|f| f.sync_all())
            .map_err(LogError::io(&marker))?;
        sync_dir(&self.dir)
    }
}
