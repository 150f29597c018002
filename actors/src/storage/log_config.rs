//! `LogConfig`: the per-partition storage settings, named after Kafka's topic-level
//! configs (`segment.bytes`, `flush.messages`, …) so operators need no new vocabulary,
//! and the wall clock the log reads time from (the engine's `clock::Clock` implements
//! it, so tests can age segments).

use std::time::{SystemTime, UNIX_EPOCH};

use super::batch::TimestampType;
use super::error::{LogError, LogResult};

pub const DEFAULT_SEGMENT_BYTES: u64 = 1 << 30;
pub const DEFAULT_SEGMENT_MS: i64 = 7 * 24 * 60 * 60 * 1000;
pub const DEFAULT_SEGMENT_INDEX_BYTES: usize = 10 * 1024 * 1024;
pub const DEFAULT_INDEX_INTERVAL_BYTES: usize = 4096;
/// Kafka's default: 1 MiB of record data plus the 12-byte log overhead.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1024 * 1024 + 12;
pub const DEFAULT_RECOVERY_POINT_CHECKPOINT_INTERVAL_MS: i64 = 60_000;

/// When appended data is fsynced. Troupe's default is durable: every append is on disk
/// before it is acknowledged (`flush.messages = 1`). Group commit keeps that cheap:
/// the owner of the log appends everything that arrived while the previous fsync ran,
/// then issues one fsync for all of it (see [`crate::storage::FlushTicket`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlushPolicy {
    /// `flush.messages`: fsync once this many records are unflushed. `None` = never by count.
    pub flush_messages: Option<u64>,
    /// `flush.ms`: fsync once the oldest unflushed record is this old. `None` = never by time.
    pub flush_ms: Option<i64>,
}

impl FlushPolicy {
    /// fsync before acknowledging every append (the default).
    pub const EVERY_APPEND: FlushPolicy = FlushPolicy {
        flush_messages: Some(1),
        flush_ms: None,
    };
    /// Leave flushing to the operating system (Kafka's own default, which relies on
    /// replication for durability). Rolled segments and clean shutdown still fsync.
    pub const NEVER: FlushPolicy = FlushPolicy {
        flush_messages: None,
        flush_ms: None,
    };
}

impl Default for FlushPolicy {
    fn default() -> Self {
        FlushPolicy::EVERY_APPEND
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// `segment.bytes`: roll when the active segment would grow past this.
    pub segment_bytes: u64,
    /// `segment.ms`: roll when the active segment's first record is older than this.
    pub segment_ms: i64,
    /// `segment.index.bytes`: preallocated size of each index file.
    pub segment_index_bytes: usize,
    /// `index.interval.bytes`: log bytes between two offset/time index entries.
    pub index_interval_bytes: usize,
    /// `max.message.bytes`: the largest batch accepted.
    pub max_message_bytes: usize,
    /// `message.timestamp.type`.
    pub timestamp_type: TimestampType,
    pub flush: FlushPolicy,
    /// Compacted topics: sealed segments may have offset gaps (removed records). Off,
    /// recovery treats any gap as damage.
    pub allow_offset_gaps: bool,
    /// `log.flush.offset.checkpoint.interval.ms`: how often the recovery point is
    /// persisted (a stale one only means more scanning after a crash).
    pub recovery_point_checkpoint_interval_ms: i64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            segment_ms: DEFAULT_SEGMENT_MS,
            segment_index_bytes: DEFAULT_SEGMENT_INDEX_BYTES,
            index_interval_bytes: DEFAULT_INDEX_INTERVAL_BYTES,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            timestamp_type: TimestampType::CreateTime,
            flush: FlushPolicy::default(),
            allow_offset_gaps: false,
            recovery_point_checkpoint_interval_ms: DEFAULT_RECOVERY_POINT_CHECKPOINT_INTERVAL_MS,
        }
    }
}

impl LogConfig {
    /// Limits that keep the on-disk formats valid: index entries store 32-bit positions,
    /// so a segment may not exceed 2 GiB (as in Kafka).
    pub fn validate(&self) -> LogResult<()> {
        let fail = |m: String| Err(LogError::InvalidConfig(m));
        if self.segment_bytes < 14 || self.segment_bytes > i32::MAX as u64 {
            return fail(format!(
                "segment.bytes must be between 14 and {}, got {}",
                i32::MAX,
                self.segment_bytes
            ));
        }
        if self.segment_ms < 1 {
            return fail(format!(
                "segment.ms must be at least 1, got {}",
                self.segment_ms
            ));
        }
        if self.segment_index_bytes < 12 || self.segment_index_bytes > i32::MAX as usize {
            return fail(format!(
                "segment.index.bytes must be between 12 and {}, got {}",
                i32::MAX,
                self.segment_index_bytes
            ));
        }
        if self.max_message_bytes < super::batch::BATCH_HEADER_BYTES {
            return fail(format!(
                "max.message.bytes must be at least {}, got {}",
                super::batch::BATCH_HEADER_BYTES,
                self.max_message_bytes
            ));
        }
        if self.flush.flush_messages == Some(0) {
            return fail("flush.messages must be at least 1".into());
        }
        if matches!(self.flush.flush_ms, Some(ms) if ms < 0) {
            return fail("flush.ms must not be negative".into());
        }
        Ok(())
    }
}

/// Where the log reads "now" from: milliseconds since the epoch, for `segment.ms`,
/// `flush.ms`, LogAppendTime and checkpoint intervals. Storage knows no actors, so
/// the engine's `clock::Clock` comes in through this trait.
pub trait WallClock: Send + Sync + std::fmt::Debug {
    fn now_ms(&self) -> i64;
}

/// The system's wall clock, for a log opened without one ([`super::Log::open`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemWallClock;

impl WallClock for SystemWallClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}
