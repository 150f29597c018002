//! `Log`: one partition's log — its segments together, in the directory
//! `<log.dirs>/<topic>-<partition>`. It assigns offsets, rolls segments, serves reads
//! and timestamp lookups, tracks the log start offset, log end offset and recovery
//! point, flushes by policy (with group commit, see [`crate::storage::flush`]),
//! recovers at open (see [`crate::storage::recovery`]) and deletes old segments on
//! request (the retention and compaction work builds on that).
//!
//! What a follower needs is here too: [`Log::append_as_follower`] copies a leader's
//! batches at their offsets, [`Log::truncate_to`] drops what a new leader does not
//! have, the leader-epoch cache ([`crate::storage::leader_epoch`]) says where each
//! epoch's records end, and the high watermark its owner reports is checkpointed
//! ([`crate::storage::high_watermark`]) and reopened, clamped to the log, at open.
//!
//! Each idempotent producer's state is here too, as in Kafka's `UnifiedLog`: a
//! client's batch is checked against it before it is written, and a retry of one of
//! the producer's last five batches is answered with the offsets it got the first
//! time, unwritten ([`crate::storage::producer_state`]). The state is snapshotted at
//! each roll and at close, and rebuilt at open and after a truncation from the newest
//! snapshot and the batches after it ([`crate::storage::producer_snapshot`]).
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
use super::high_watermark::{read_high_watermark, write_high_watermark};
use super::leader_epoch::{EpochEndOffset, LeaderEpochCache};
use super::log_config::{LogConfig, SystemWallClock, WallClock};
use super::producer_snapshot::{self, delete_snapshot, delete_snapshots, list_snapshots};
use super::producer_state::{AppendCheck, BatchMetadata, ProducerBatch, ProducerStateManager};
use super::recovery::{self, write_log_checkpoint, Checkpoint, CLEAN_SHUTDOWN_FILE};
use super::segment::{remove_files, Continuity, Cut, IndexTrust, LogSegment, ReadEnd, SegmentInfo};
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
    /// The batch was a producer's retry of one the log holds already: nothing was
    /// written, and the offsets and timestamps are those of the earlier append.
    pub duplicate: bool,
}

impl AppendInfo {
    /// What two appends did together, `self` first.
    fn followed_by(self, next: AppendInfo) -> AppendInfo {
        AppendInfo {
            base_offset: self.base_offset,
            last_offset: next.last_offset,
            record_count: self.record_count + next.record_count,
            max_timestamp_ms: self.max_timestamp_ms.max(next.max_timestamp_ms),
            log_append_time_ms: next.log_append_time_ms.or(self.log_append_time_ms),
            size_bytes: self.size_bytes + next.size_bytes,
            log_start_offset: next.log_start_offset,
            duplicate: false,
        }
    }
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
    clock: Arc<dyn WallClock>,
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
    /// Where each leader epoch's records begin; persisted on every change.
    epochs: LeaderEpochCache,
    /// The high watermark as the owner last set it, within [log start, log end].
    high_watermark: i64,
    /// What the high-watermark checkpoint holds, and when it was written.
    checkpointed_high_watermark: Option<i64>,
    last_high_watermark_checkpoint_ms: i64,
    stats: LogStats,
    /// Damaged batches that were in segments since deleted (for a counter that only rises).
    retired_corrupt_batches: u64,
    /// Each idempotent producer's epoch and last batches, current up to the log end.
    producers: ProducerStateManager,
}

/// Bytes read at a time when replaying batches into the producer state.
const PRODUCER_REPLAY_READ_BYTES: usize = 1 << 20;

impl Log {
    /// Opens (creating if needed) the log in `dir`, recovering it if the last stop was
    /// not clean.
    pub fn open(dir: impl AsRef<Path>, config: LogConfig) -> LogResult<Log> {
        Log::open_with_clock(dir, config, Arc::new(SystemWallClock))
    }

    pub fn open_with_clock(
        dir: impl AsRef<Path>,
        config: LogConfig,
        clock: Arc<dyn WallClock>,
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
        let epochs = LeaderEpochCache::load(&dir)?;
        let checkpointed_high_watermark = read_high_watermark(&dir)?;
        let mut log = Log {
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
            epochs,
            high_watermark: 0,
            checkpointed_high_watermark,
            last_high_watermark_checkpoint_ms: now,
            stats: LogStats::default(),
            retired_corrupt_batches: 0,
            producers: ProducerStateManager::default(),
        };
        // No checkpoint means nothing is known committed beyond the log start.
        log.set_high_watermark(checkpointed_high_watermark.unwrap_or(0));
        // Recovery may have cut a torn tail, and retention may have moved the log start
        // after the cache was written: it must claim no offset the log lacks.
        let (start, end) = (log.log_start_offset, log.log_end_offset());
        let reconciled = log
            .epochs
            .truncate_from_end(end)
            .and_then(|_| log.epochs.truncate_from_start(start));
        log.unless_disk_full(reconciled.map(drop))?;
        log.load_producer_state()?;
        Ok(log)
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
    /// The high watermark its owner last set; after an open, the checkpointed one
    /// (see [`crate::storage::high_watermark`]), clamped to the log.
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }
    /// Sets the high watermark, clamped to [log start, log end] (Kafka's
    /// `updateHighWatermark`); returns the value set. It is persisted with the
    /// periodic checkpoint and at close.
    pub fn set_high_watermark(&mut self, offset: i64) -> i64 {
        self.high_watermark = offset.clamp(self.log_start_offset, self.log_end_offset());
        self.high_watermark
    }
    pub fn leader_epochs(&self) -> &LeaderEpochCache {
        &self.epochs
    }
    /// Where `epoch`'s records end in this log (Kafka's OffsetsForLeaderEpoch, as the
    /// leader answers it): `None` if the log knows no epoch that old or that new.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Option<EpochEndOffset> {
        self.epochs.end_offset_for(epoch, self.log_end_offset())
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

    /// Each idempotent producer's epoch and last batches, current up to the log end.
    pub fn producer_state(&self) -> &ProducerStateManager {
        &self.producers
    }

    /// Forgets the producers whose newest batch is `expiration_ms` older than
    /// `now_ms` (Kafka's `producer.id.expiration.ms`); answers how many went. A
    /// producer that comes back afterwards is accepted at any sequence, as one whose
    /// batches retention removed.
    pub fn remove_expired_producers(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        self.producers.remove_expired(now_ms, expiration_ms)
    }

    /// Records a batch now in the log in its producer's state (nothing for a batch
    /// whose producer is not idempotent).
    fn record_producer(&mut self, batch: &BatchRef<'_>) {
        if let Some(producer) = ProducerBatch::of(batch) {
            self.producers.update(&producer);
        }
    }

    /// Snapshots the producer state, current up to `offset`. A snapshot only saves
    /// replay at the next open: one that cannot be written is logged, not an error.
    fn snapshot_producers(&self, offset: i64) {
        debug_assert_eq!(offset, self.log_end_offset());
        if let Err(e) = producer_snapshot::write_snapshot(&self.dir, offset, &self.producers) {
            log::warn!(
                "{}: no producer snapshot at offset {offset} ({e}); the next open replays the log from an older one",
                self.dir.display()
            );
        }
    }

    /// Rebuilds the producer state from disk (Kafka's `rebuildProducerState`): the
    /// newest snapshot at or below the log end that checks out, then every batch
    /// after it. Snapshots past the log end (batches a crash or a truncation took)
    /// are deleted first; afterwards only those at segment bases are kept, besides
    /// the one loaded (Kafka's `removeStraySnapshots`), so they stay one per segment.
    /// With no snapshot to start from (a log written before snapshots existed, or
    /// every one damaged), the last two segments are replayed, as Kafka does, rather
    /// than the whole log: producers older than that are forgotten, which costs them
    /// nothing (see [`crate::storage::producer_state`]).
    fn load_producer_state(&mut self) -> LogResult<()> {
        let (start, end) = (self.log_start_offset, self.log_end_offset());
        delete_snapshots(&self.dir, |offset| offset > end)?;
        let loaded = producer_snapshot::load_latest(&self.dir, end)?;
        let kept = loaded.as_ref().map(|(offset, _)| *offset);
        let (from, state) = match loaded {
            Some((offset, state)) => (offset, state),
            None => {
                let second_last = self.segments.keys().rev().nth(1).copied();
                (
                    second_last.unwrap_or(start),
                    ProducerStateManager::default(),
                )
            }
        };
        for offset in list_snapshots(&self.dir)? {
            if Some(offset) != kept && (offset < start || !self.segments.contains_key(&offset)) {
                delete_snapshot(&self.dir, offset)?;
            }
        }
        self.producers = state;
        let replayed = self.replay_producers(from.max(start))?;
        log::debug!(
            "{}: producer state of {} producer(s) from {} and {replayed} batch(es) after it",
            self.dir.display(),
            self.producers.len(),
            kept.map_or("no snapshot".to_string(), |o| format!(
                "the snapshot at {o}"
            ))
        );
        Ok(())
    }

    /// Records every batch from `from` to the log end in the producer state (whole
    /// batches: `from` is a batch boundary); damaged batches are passed over. Answers
    /// how many batches were idempotent producers'.
    fn replay_producers(&mut self, from: i64) -> LogResult<u64> {
        let end = self.log_end_offset();
        let mut next = from;
        let mut replayed = 0;
        while next < end {
            let data = match self.read(next, PRODUCER_REPLAY_READ_BYTES) {
                Ok(data) => data,
                // A damaged batch holds nothing to replay; the offsets after it do.
                Err(LogError::CorruptBatch { last_offset, .. }) => {
                    next = next.max(last_offset + 1);
                    continue;
                }
                Err(e) => return Err(e),
            };
            let before = next;
            for batch in data.batches() {
                // The first batch read may hold offsets before `from`: it was replayed.
                if batch.base_offset() >= next {
                    if let Some(producer) = ProducerBatch::of(&batch) {
                        self.producers.update(&producer);
                        replayed += 1;
                    }
                }
                next = next.max(batch.next_offset());
            }
            if next == before {
                // Nothing readable up to the log end (a compacted gap at its end).
                break;
            }
        }
        Ok(replayed)
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
        let producer = ProducerBatch::of(&batch.view());
        if let Some(producer) = &producer {
            if let AppendCheck::Duplicate(original) = self.producers.check(producer)? {
                log::debug!(
                    "{}: producer {} resent sequences {}..={}, appended at offset {}: answering with its offsets",
                    self.dir.display(),
                    producer.producer_id,
                    original.first_sequence,
                    original.last_sequence,
                    original.base_offset
                );
                return Ok(self.duplicate_info(original, &batch.view()));
            }
        }
        let now = self.clock.now_ms();
        let base_offset = self.log_end_offset();
        batch.set_base_offset(base_offset);
        batch.set_partition_leader_epoch(leader_epoch);
        let log_append_time_ms = match self.config.timestamp_type {
            TimestampType::LogAppendTime => {
                batch.set_log_append_time(now);
                Some(now)
            }
            TimestampType::CreateTime => None,
        };
        self.epochs.assign(leader_epoch, base_offset)?;
        self.write_batch(&batch.view(), now)?;
        if producer.is_some() {
            self.record_producer(&batch.view());
        }
        Ok(AppendInfo {
            log_append_time_ms,
            ..self.append_info(&batch.view())
        })
    }

    /// Appends batches copied from the leader as they are: offsets, leader epochs and
    /// timestamps stay the leader's, byte for byte (Kafka's `appendAsFollower`). Each
    /// must begin at or after where the log (or the batch before it) ends; one that
    /// overlaps what the log holds is refused with [`LogError::NonContiguousAppend`]
    /// before anything is written: a follower truncates to its leader first
    /// ([`Log::truncate_to`]). In a compacted log (`allow_offset_gaps`) a gap (the
    /// cleaner removed the leader's batches there) starts a new segment at the batch,
    /// since the active segment must be gap-free for recovery to vouch for it;
    /// elsewhere a gap is refused as an overlap is. The batches' epochs go into the leader-epoch
    /// cache. Rolls as [`Log::append`] does, and like it does not fsync. `None` for no
    /// batches.
    pub fn append_as_follower(&mut self, batches: &[RecordBatch]) -> LogResult<Option<AppendInfo>> {
        let mut expected_offset = self.log_end_offset();
        for batch in batches {
            let base_offset = batch.view().base_offset();
            let gap = base_offset > expected_offset && !self.config.allow_offset_gaps;
            if base_offset < expected_offset || gap {
                return Err(LogError::NonContiguousAppend {
                    base_offset,
                    expected_offset,
                });
            }
            expected_offset = batch.view().next_offset();
        }
        let mut appended: Option<AppendInfo> = None;
        let now = self.clock.now_ms();
        for batch in batches {
            let view = batch.view();
            debug_assert!(view.validate().is_ok());
            if view.base_offset() > self.log_end_offset() {
                self.roll_to(view.base_offset())?;
            }
            self.epochs
                .assign(view.partition_leader_epoch(), view.base_offset())?;
            self.write_batch(&view, now)?;
            self.record_producer(&view);
            let info = self.append_info(&view);
            appended = Some(appended.map_or(info, |before| before.followed_by(info)));
        }
        Ok(appended)
    }

    /// Writes a batch whose offsets are set to the active segment, rolling first if it
    /// belongs in a new one.
    fn write_batch(&mut self, batch: &BatchRef<'_>, now: i64) -> LogResult<()> {
        // A roll that could not create the next segment (a full disk) leaves the
        // last one sealed: open it again, then roll as usual.
        if self.active().is_sealed() {
            let config = self.config.clone();
            self.active_mut().activate(&config)?;
        }
        if self
            .active()
            .should_roll(batch.size_bytes(), batch.last_offset(), now, &self.config)
        {
            self.roll()?;
        }
        self.active_mut().append(batch, now)?;
        self.oldest_unflushed_ms.get_or_insert(now);
        self.stats.appended_batches += 1;
        self.stats.appended_records += batch.records_count() as u64;
        Ok(())
    }

    fn append_info(&self, batch: &BatchRef<'_>) -> AppendInfo {
        AppendInfo {
            base_offset: batch.base_offset(),
            last_offset: batch.last_offset(),
            record_count: batch.records_count(),
            max_timestamp_ms: batch.max_timestamp(),
            log_append_time_ms: None,
            size_bytes: batch.size_bytes(),
            log_start_offset: self.log_start_offset,
            duplicate: false,
        }
    }

    /// What an append answers for a retry of `original`, a batch the log holds.
    fn duplicate_info(&self, original: BatchMetadata, batch: &BatchRef<'_>) -> AppendInfo {
        let log_append_time_ms = match self.config.timestamp_type {
            TimestampType::LogAppendTime => Some(original.timestamp_ms),
            TimestampType::CreateTime => None,
        };
        AppendInfo {
            base_offset: original.base_offset,
            last_offset: original.last_offset,
            record_count: batch.records_count(),
            max_timestamp_ms: original.timestamp_ms,
            log_append_time_ms,
            size_bytes: 0,
            log_start_offset: self.log_start_offset,
            duplicate: true,
        }
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
        // A kept buffer: one that goes back to the pool (a Kafka fetch's does) is
        // used again, not mapped and zero-filled afresh.
        let mut bytes = super::buffers::POOL.take(0);
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
        self.write_checkpoint_unless_full()?;
        // The producer state is current up to the new segment's base: the batch
        // that caused the roll is recorded after it is written.
        self.snapshot_producers(new_base);
        Ok(())
    }

    /// Starts a new active segment at `base`, past the log end: the offsets between
    /// are a gap that no segment holds (a follower copying a compacted leader).
    fn roll_to(&mut self, base: i64) -> LogResult<()> {
        self.roll()?;
        // The active segment is empty now, at the old log end: it moves to `base`.
        let empty = self.active().base_offset();
        if empty >= base {
            return Ok(());
        }
        let segment = LogSegment::create(&self.dir, base, &self.config)?;
        self.segments.insert(base, segment);
        self.remove_segments(&[empty])?;
        sync_dir(&self.dir)?;
        Ok(())
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
        // A truncation while the fsync ran may have taken the log below the ticket.
        let up_to_offset = done.up_to_offset.min(self.log_end_offset());
        self.recovery_point = self.recovery_point.max(up_to_offset);
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
        let written = self.write_checkpoint();
        self.unless_disk_full(written)
    }

    /// `result`, except that a full disk is logged and passed over: what was not
    /// written is a checkpoint, and the previous one stays (see above).
    fn unless_disk_full(&self, result: LogResult<()>) -> LogResult<()> {
        match result {
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

    /// The log checkpoint, and the high-watermark checkpoint when it changed and
    /// `log.flush.offset.checkpoint.interval.ms` has passed since it was written.
    fn write_checkpoint(&mut self) -> LogResult<()> {
        let cp = Checkpoint {
            log_start_offset: self.log_start_offset,
            recovery_point: self.recovery_point,
            cleaner_offset: self.cleaner_offset,
        };
        write_log_checkpoint(&self.dir, cp)?;
        self.checkpointed = cp;
        self.last_checkpoint_ms = self.clock.now_ms();
        let since = self.last_checkpoint_ms - self.last_high_watermark_checkpoint_ms;
        if since >= self.config.recovery_point_checkpoint_interval_ms {
            self.write_high_watermark_checkpoint()?;
        }
        Ok(())
    }

    /// Persists the high watermark, if the checkpoint does not hold it already.
    fn write_high_watermark_checkpoint(&mut self) -> LogResult<()> {
        if self.checkpointed_high_watermark != Some(self.high_watermark) {
            write_high_watermark(&self.dir, self.high_watermark)?;
            self.checkpointed_high_watermark = Some(self.high_watermark);
        }
        self.last_high_watermark_checkpoint_ms = self.clock.now_ms();
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
        self.high_watermark = self.high_watermark.max(self.log_start_offset);
        // Retention is what frees a full disk: it must work without writing first.
        self.write_checkpoint_unless_full()?;
        let epochs = self.epochs.truncate_from_start(self.log_start_offset);
        self.unless_disk_full(epochs.map(drop))?;
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
        // The snapshots of the segments that went; the state itself stays, and the
        // snapshot at the new first segment's base holds it.
        let start = self.log_start_offset;
        if let Err(e) = delete_snapshots(&self.dir, |offset| offset < start) {
            log::warn!("{}: old producer snapshots stay: {e}", self.dir.display());
        }
        Ok((doomed, files))
    }

    /// Moves the log start offset forward to `offset` (Kafka's
    /// `maybeIncrementLogStartOffset`, for a client's DeleteRecords), then retires
    /// the sealed segments wholly below it (its `deleteLogStartOffsetBreachedSegments`).
    /// The offset may fall inside a segment, even inside a batch: reads refuse what is
    /// below it, and the batch holding it is still served whole, as Kafka serves it.
    ///
    /// `offset` must be within `[0, high watermark]` (what is not committed cannot be
    /// deleted), else [`LogError::OffsetOutOfRange`]; at or below the log start
    /// nothing happens. The new start is checkpointed before anything else changes
    /// and a failure to write it (a full disk included) refuses the request with the
    /// log as it was, so the start a client was told survives a restart. Answers the
    /// retired segment files, renamed to `*.deleted`, for the caller to remove after
    /// `file.delete.delay.ms` (the next open removes any that are left).
    pub fn advance_log_start_offset(&mut self, offset: i64) -> LogResult<Vec<PathBuf>> {
        if offset < 0 || offset > self.high_watermark {
            return Err(LogError::OffsetOutOfRange {
                requested: offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: self.high_watermark,
            });
        }
        if offset <= self.log_start_offset {
            return Ok(Vec::new());
        }
        let before = (
            self.log_start_offset,
            self.recovery_point,
            self.flush_requested_offset,
        );
        self.log_start_offset = offset;
        // Nothing below the log start is ever scanned again (see retire_oldest_segments).
        self.recovery_point = self.recovery_point.max(offset);
        self.flush_requested_offset = self.flush_requested_offset.max(self.recovery_point);
        if let Err(e) = self.write_checkpoint() {
            (
                self.log_start_offset,
                self.recovery_point,
                self.flush_requested_offset,
            ) = before;
            return Err(e);
        }
        log::info!(
            "{}: log start offset moved from {} to {offset} (records deleted by request)",
            self.dir.display(),
            before.0
        );
        let epochs = self.epochs.truncate_from_start(offset);
        self.unless_disk_full(epochs.map(drop))?;
        // A sealed segment goes once the next one begins at or below the new start.
        let bases: Vec<i64> = self.segments.keys().copied().collect();
        let breached: Vec<i64> = bases
            .windows(2)
            .take_while(|pair| pair[1] <= offset)
            .map(|pair| pair[0])
            .collect();
        let (_, files) = self.retire_oldest_segments(|s| breached.contains(&s.base_offset))?;
        debug_assert_eq!(self.log_start_offset, offset);
        Ok(files)
    }

    /// Drops every record at and after `offset` (Kafka's `Log.truncateTo`): what a
    /// follower does with records its new leader does not have. Batches are never
    /// split, so the batch holding `offset` goes whole and the log then ends at its
    /// base offset. Later segments are deleted and the segment holding the cut is cut,
    /// its indexes with it; the recovery point, cleaner offset, high watermark and
    /// leader-epoch cache come down to the new log end. At or past the log end nothing
    /// happens; when the cut reaches the log start the log is emptied and starts
    /// again, empty, at its log start offset. Returns whether anything was dropped.
    ///
    /// Each step is durable before the next, segments from the last: a crash part way
    /// reopens a prefix of the old log at least as long as the target, which the
    /// owner truncates again.
    pub fn truncate_to(&mut self, offset: i64) -> LogResult<bool> {
        if offset >= self.log_end_offset() {
            return Ok(false);
        }
        let Some((&base, holding)) = self.segments.range(..=offset).next_back() else {
            self.truncate_fully()?;
            return Ok(true);
        };
        let cut = holding.cut_for(offset)?;
        if cut.first_dropped_offset <= self.log_start_offset {
            self.truncate_fully()?;
            return Ok(true);
        }
        log::info!(
            "{}: truncating to offset {} (log end offset {})",
            self.dir.display(),
            cut.first_dropped_offset,
            self.log_end_offset()
        );
        // First the recovery point: a crash from here on rescans what is left rather
        // than vouching for it.
        self.lower_offsets_to(cut.first_dropped_offset);
        self.write_checkpoint_unless_full()?;
        let later: Vec<i64> = self.segments.range(base + 1..).map(|(b, _)| *b).collect();
        self.remove_segments(&later)?;
        let config = self.config.clone();
        let segment = self.segment_mut(base)?;
        let was_sealed = segment.is_sealed();
        segment.activate(&config)?;
        let corrupt_before = segment.corrupt_batches();
        segment.truncate(cut, &config)?;
        let (corrupt_after, next_offset, empty) = (
            segment.corrupt_batches(),
            segment.next_offset(),
            segment.size_bytes() == 0,
        );
        self.retired_corrupt_batches += corrupt_before.saturating_sub(corrupt_after) as u64;
        if next_offset < self.log_start_offset {
            // The log start sat in a gap compaction left after the last batch kept.
            self.truncate_fully()?;
            return Ok(true);
        }
        if was_sealed && !empty {
            // A sealed segment may be compacted, with gaps between its batches, and
            // recovery holds the active segment to be gap-free: it stays sealed, and
            // a new active segment starts at the new log end.
            self.segment_mut(base)?.seal()?;
            let segment = LogSegment::create(&self.dir, next_offset, &config)?;
            self.segments.insert(next_offset, segment);
            sync_dir(&self.dir)?;
        }
        self.settle_truncation()?;
        Ok(true)
    }

    /// Empties the log: it starts again, empty, at its log start offset. Segments
    /// after the log start go first, then the one there is emptied (or a new one made
    /// there, before the old ones go), then those before it.
    /// Empties the log and starts it again at `offset`, past its end (Kafka's
    /// `truncateFullyAndStartAt`): a follower whose leader's log now starts beyond
    /// everything the follower holds (retention moved it while the follower was
    /// away) copies it from there. Each step is durable before the next.
    pub fn truncate_fully_and_start_at(&mut self, offset: i64) -> LogResult<()> {
        if offset <= self.log_end_offset() {
            return self.truncate_to(offset).map(drop);
        }
        self.log_start_offset = offset;
        self.truncate_fully()?;
        // Nothing below the new start exists: nothing to recover, nothing uncommitted.
        self.recovery_point = offset;
        self.flush_requested_offset = offset;
        self.high_watermark = offset;
        let epochs = self.epochs.truncate_from_end(0);
        self.unless_disk_full(epochs.map(drop))?;
        self.write_checkpoint_unless_full()?;
        let high_watermark = self.write_high_watermark_checkpoint();
        self.unless_disk_full(high_watermark)
    }

    fn truncate_fully(&mut self) -> LogResult<()> {
        let start = self.log_start_offset;
        log::info!(
            "{}: truncating everything (log end offset {}); the log starts again at {start}",
            self.dir.display(),
            self.log_end_offset()
        );
        self.lower_offsets_to(start);
        self.write_checkpoint_unless_full()?;
        let later: Vec<i64> = self.segments.range(start + 1..).map(|(b, _)| *b).collect();
        self.remove_segments(&later)?;
        let config = self.config.clone();
        if let Some(segment) = self.segments.get_mut(&start) {
            segment.activate(&config)?;
            let corrupt_before = segment.corrupt_batches();
            segment.truncate(
                Cut {
                    position: 0,
                    first_dropped_offset: start,
                },
                &config,
            )?;
            self.retired_corrupt_batches += corrupt_before as u64;
        } else {
            let segment = LogSegment::create(&self.dir, start, &config)?;
            self.segments.insert(start, segment);
            sync_dir(&self.dir)?;
        }
        let earlier: Vec<i64> = self.segments.range(..start).map(|(b, _)| *b).collect();
        self.remove_segments(&earlier)?;
        self.settle_truncation()
    }

    fn segment_mut(&mut self, base: i64) -> LogResult<&mut LogSegment> {
        let dir = &self.dir;
        self.segments
            .get_mut(&base)
            .ok_or_else(|| LogError::Corrupt {
                path: dir.clone(),
                position: 0,
                reason: format!("segment {base} is not in the log"),
            })
    }

    /// After a truncation: every offset the log tracks comes down to the new log end,
    /// and the checkpoints say so.
    fn settle_truncation(&mut self) -> LogResult<()> {
        let end = self.log_end_offset();
        self.lower_offsets_to(end);
        if self.recovery_point >= end {
            self.oldest_unflushed_ms = None;
        }
        self.write_checkpoint_unless_full()?;
        let high_watermark = self.write_high_watermark_checkpoint();
        self.unless_disk_full(high_watermark)?;
        let epochs = self.epochs.truncate_from_end(end);
        self.unless_disk_full(epochs.map(drop))?;
        // The producers' last batches may be among those dropped.
        self.load_producer_state()
    }

    /// Brings the offsets that must not pass the log end down to `end`.
    fn lower_offsets_to(&mut self, end: i64) {
        self.recovery_point = self.recovery_point.min(end);
        self.flush_requested_offset = self.flush_requested_offset.min(end);
        self.high_watermark = self.high_watermark.min(end);
        // 0 means "never compacted"; a compacted log stays marked so.
        if self.cleaner_offset > 0 {
            self.cleaner_offset = self.cleaner_offset.min(end.max(1));
        }
    }

    /// Deletes the segments at `bases` (renamed, the directory synced, then removed).
    fn remove_segments(&mut self, bases: &[i64]) -> LogResult<()> {
        let mut files = Vec::new();
        for base in bases {
            if let Some(segment) = self.segments.remove(base) {
                self.retired_corrupt_batches += segment.corrupt_batches() as u64;
                files.extend(segment.retire()?);
            }
        }
        if files.is_empty() {
            return Ok(());
        }
        sync_dir(&self.dir)?;
        remove_files(&files)
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
        let high_watermark = self.write_high_watermark_checkpoint();
        self.unless_disk_full(high_watermark)?;
        let end = self.log_end_offset();
        self.snapshot_producers(end);
        let marker = self.dir.join(CLEAN_SHUTDOWN_FILE);
        std::fs::File::create(&marker)
            .and_then(|f| f.sync_all())
            .map_err(LogError::io(&marker))?;
        sync_dir(&self.dir)
    }
}
