//! What a partition reports about itself (`GetStatus`, for metadata, `/metrics` and
//! lag): its offsets and sizes from the log, and the counters the actor keeps.

use super::{PartitionReplica, PartitionStatus};
use crate::storage::compaction::CleanableLog;
use crate::storage::Log;

/// Counters kept across restarts, for `/metrics` and the v3 partition resource.
#[derive(Debug, Default)]
pub(super) struct Counters {
    /// Chunks pushed to live-tail subscribers.
    pub tail_chunks: u64,
    pub retention_deleted_segments: u64,
    pub cleaner_runs: u64,
}

impl PartitionReplica {
    pub(super) fn status(&self) -> PartitionStatus {
        let log = self.log.as_ref();
        // One look at the sealed segments serves both byte counts.
        let cleanable = log.map(Log::cleanable);
        PartitionStatus {
            topic: self.topic.clone(),
            partition: self.partition,
            online: log.is_some(),
            offline_reason: self.offline_reason.clone(),
            leader_epoch: self.role.leader_epoch(),
            log_start_offset: log.map_or(0, Log::log_start_offset),
            log_end_offset: log.map_or(0, Log::log_end_offset),
            high_watermark: self.high_watermark(),
            size_bytes: log.map_or(0, Log::size_bytes),
            segments: log.map_or(0, |l| l.segments().len()),
            restarts: self.supervision.restarts(),
            retention_deleted_segments: self.counters.retention_deleted_segments,
            clean_bytes: cleanable.as_ref().map_or(0, CleanableLog::clean_bytes),
            dirty_bytes: cleanable.as_ref().map_or(0, CleanableLog::dirty_bytes),
            cleaner_runs: self.counters.cleaner_runs,
            flushes: log.map_or(0, |l| l.stats().flushes),
            tail_chunks: self.counters.tail_chunks,
            corrupt_batches: log.map_or(0, Log::corrupt_batches),
        }
    }
}
