//! The typed messages a `PartitionReplica` answers.

use actix::Message;

use crate::error::BrokerResult;
use crate::ids::LeaderEpoch;
use crate::storage::compaction::{CleanableLog, SwapManifest};
use crate::storage::{EpochEndOffset, FetchData, RecordBatch};
use crate::topic_config::PartitionConfig;

/// Kafka's producer `acks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// `acks=0`: answer as soon as the batch is written, before it is durable.
    None,
    /// `acks=1`: answer once the leader has it durably (per the flush policy).
    Leader,
    /// `acks=all`: answer once every in-sync replica has it durably (the high
    /// watermark passed it); refused before the append when the ISR is smaller than
    /// `min.insync.replicas`, and not acknowledged if it shrank below it meanwhile.
    All,
}

impl Acks {
    /// Kafka's spellings: `all` or `-1`, `1`, `0`.
    pub fn parse(text: &str) -> Option<Acks> {
        match text {
            "all" | "-1" => Some(Acks::All),
            "1" => Some(Acks::Leader),
            "0" => Some(Acks::None),
            _ => None,
        }
    }
}

/// Append one batch; the reply carries the offsets it was given. A batch of an
/// idempotent producer (`producer_id` ≥ 0, as Kafka clients send them) is checked
/// against the producer's state first: a retry of one of its last five batches is
/// answered with the earlier append's offsets (`duplicate`) without writing it again,
/// once those are committed; a gap or reordering is `BrokerError::OutOfOrderSequence`,
/// an old epoch `BrokerError::InvalidProducerEpoch` (see `storage::producer_state`).
#[derive(Message)]
#[rtype(result = "BrokerResult<AppendResult>")]
pub struct Append {
    pub batch: RecordBatch,
    pub acks: Acks,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendResult {
    pub base_offset: i64,
    pub last_offset: i64,
    /// The batch's timestamp as stored: the append time under LogAppendTime, else the
    /// batch's max timestamp.
    pub timestamp_ms: i64,
    pub log_append_time_ms: Option<i64>,
    pub log_start_offset: i64,
    /// The batch was an idempotent producer's retry of one the log holds: nothing
    /// was written, and the offsets and timestamps are the earlier append's
    /// (Kafka answers such a retry with success and those offsets).
    pub duplicate: bool,
}

/// Read from `offset`; when nothing is there yet, wait up to `max_wait_ms` for data.
#[derive(Message)]
#[rtype(result = "BrokerResult<FetchResult>")]
pub struct Fetch {
    pub offset: i64,
    pub max_bytes: usize,
    pub max_wait_ms: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchResult {
    /// Whole batches below the high watermark. `data.log_end_offset` is the log end.
    pub data: FetchData,
    pub high_watermark: i64,
}

/// The leader's own read of what its log holds from `offset`, committed or not: a
/// group coordinator loading its offsets partition reads to the log end, as Kafka's
/// does (a leader never truncates its own log, and what it holds above the high
/// watermark is committed as its followers fetch it). Refused by a follower.
#[derive(Message)]
#[rtype(result = "BrokerResult<FetchResult>")]
pub struct ReadToLogEnd {
    pub offset: i64,
    pub max_bytes: usize,
}

/// Which offset `ListOffsets` resolves (Kafka's -2 earliest, -1 latest, or a time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    Earliest,
    Latest,
    Timestamp(i64),
}

/// Resolve an [`OffsetSpec`]: `Some((offset, timestamp))`, `None` when no record is at
/// or after the timestamp.
#[derive(Message)]
#[rtype(result = "BrokerResult<Option<(i64, Option<i64>)>>")]
pub struct ListOffsets(pub OffsetSpec);

/// Delete the records below `offset` (Kafka's DeleteRecords): the log start offset
/// moves forward to it, up to the high watermark; `None` means the high watermark
/// (Kafka's -1). Answers the new log start offset, the partition's low watermark.
#[derive(Message)]
#[rtype(result = "BrokerResult<i64>")]
pub struct DeleteRecords {
    pub offset: Option<i64>,
}

/// Where a leader epoch's records end in this partition's log (Kafka's
/// OffsetForLeaderEpoch, as the leader answers it): the largest epoch the log knows
/// at or before the one asked for, and the offset where the next epoch begins (the
/// log end offset for the latest). `None` when the log knows no such epoch.
#[derive(Message)]
#[rtype(result = "BrokerResult<Option<EpochEndOffset>>")]
pub struct EndOffsetForEpoch(pub LeaderEpoch);

/// A snapshot of the partition's state.
#[derive(Message)]
#[rtype(result = "PartitionStatus")]
pub struct GetStatus;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionStatus {
    pub topic: String,
    pub partition: i32,
    pub online: bool,
    /// Why it is offline, when it is.
    pub offline_reason: Option<String>,
    pub leader_epoch: LeaderEpoch,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
    pub high_watermark: i64,
    pub size_bytes: u64,
    pub segments: usize,
    pub restarts: usize,
    /// Segments removed by retention since the partition started.
    pub retention_deleted_segments: u64,
    /// Compacted (clean) and not yet compacted (dirty) bytes of the sealed segments,
    /// and completed cleaner passes.
    pub clean_bytes: u64,
    pub dirty_bytes: u64,
    pub cleaner_runs: u64,
    /// fsync rounds since the log was (re)opened: with group commit, fewer than appends.
    pub flushes: u64,
    /// Chunks read for and pushed to live-tail subscribers: each read once, however
    /// many subscribers there were (one per high-watermark advance, more when an
    /// advance exceeds `partition.tail.chunk.max.bytes`).
    pub tail_chunks: u64,
    /// Damaged batches found in the log's durable data since it was (re)opened, each
    /// counted once (see `storage::corruption`).
    pub corrupt_batches: u64,
}

/// The replica's role as the metadata now gives it: leader in an epoch, or follower
/// of a leader (of none: the partition is offline).
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct SetRole {
    pub role: crate::partition::Role,
    pub assignment: crate::partition::Assignment,
}

/// Apply a changed topic config.
#[derive(Message)]
#[rtype(result = "BrokerResult<()>")]
pub struct UpdateConfig(pub PartitionConfig);

/// What to do with the log when a partition stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// Flush and close cleanly (broker shutdown).
    Close,
    /// Drop without writing anything (the topic is being deleted).
    Discard,
}

/// Stop serving for good: waiters and pending appends get an error.
#[derive(Message)]
#[rtype(result = "BrokerResult<()>")]
pub struct Stop(pub StopMode);

/// Apply retention now (the partition also does it every
/// `log.retention.check.interval.ms`); answers the number of segments retired.
#[derive(Message)]
#[rtype(result = "BrokerResult<usize>")]
pub struct ApplyRetention;

/// The partition's state for the log cleaner: `None` unless its topic is compacted
/// and the partition is online.
#[derive(Message)]
#[rtype(result = "Option<CleanerView>")]
pub struct GetCleanable;

#[derive(Debug, Clone, PartialEq)]
pub struct CleanerView {
    pub log: CleanableLog,
    pub config: PartitionConfig,
}

/// Install a committed cleaning pass; `false` if the log changed and it was discarded.
#[derive(Message)]
#[rtype(result = "BrokerResult<bool>")]
pub struct InstallCleaned(pub SwapManifest);

/// Fault injection for supervision tests: panics inside the partition's guarded code
/// path, exactly as a bug in the storage engine would.
#[cfg(any(test, feature = "test-support"))]
#[doc(hidden)]
#[derive(Message)]
#[rtype(result = "BrokerResult<()>")]
pub struct InjectPanic;
