//! The actor's side of retention: every `log.retention.check.interval.ms` (and on
//! `ApplyRetention`) it asks `storage::retention` which of the oldest segments are
//! due (`retention.ms`, `retention.bytes`, for topics whose `cleanup.policy` has
//! `delete`), retires them through `Log::retire_oldest_segments` (the log start
//! moves and is checkpointed first), tells the live tail, and removes the files after
//! `file.delete.delay.ms`, off the actor's thread.
//!
//! The same timer retires producer state: idempotent producers silent for
//! `producer.id.expiration.ms` are forgotten (Kafka checks every
//! `producer.id.expiration.check.interval.ms`, ten minutes; here it is the retention
//! interval, five), which bounds the state a partition keeps to the producers of
//! the last day.

use std::time::Duration;

use actix::prelude::*;

use super::supervision::write_error_is_fatal;
use super::PartitionReplica;
use crate::error::BrokerResult;
use crate::storage::{remove_files, segments_to_delete, Log};

impl PartitionReplica {
    /// Applies retention every `log.retention.check.interval.ms` while the actor runs.
    pub(super) fn schedule_retention(&self, ctx: &mut Context<Self>) {
        let every = self.limits.retention_check_interval;
        self.clock.run_interval(ctx, every, |act: &mut Self, ctx| {
            if let Err(e) = act.apply_retention(ctx) {
                log::warn!("retention on partition {} failed: {e}", act.name());
            }
            act.expire_producers();
        });
    }

    /// Forgets the idempotent producers silent for `producer.id.expiration.ms`.
    pub(super) fn expire_producers(&mut self) {
        let (now, expiration_ms) = (self.clock.now_ms(), self.limits.producer_id_expiration_ms);
        let Some(log) = self.log.as_mut() else {
            return;
        };
        let expired = log.remove_expired_producers(now, expiration_ms);
        if expired > 0 {
            log::info!(
                "partition {}: forgot {expired} producer(s) silent for {expiration_ms} ms",
                self.name()
            );
        }
    }

    /// Retires the segments retention says to delete, advancing the log start offset,
    /// and removes their files after `file.delete.delay.ms`. Returns how many
    /// segments went.
    pub(super) fn apply_retention(&mut self, ctx: &mut Context<Self>) -> BrokerResult<usize> {
        if !self.config.cleanup_delete || self.log.is_none() {
            return Ok(0);
        }
        let policy = self.config.retention;
        let now = self.clock.now_ms();
        let high_watermark = self.high_watermark();
        let (deleted, files) = self.guarded(ctx, write_error_is_fatal, |log| {
            let (count, reason) = segments_to_delete(&log.segments(), now, policy);
            if count == 0 {
                return Ok((Vec::new(), Vec::new()));
            }
            log::info!(
                "partition log {}: retention ({reason:?}) removes {count} segment(s)",
                log.dir().display()
            );
            let mut taken = 0;
            log.retire_oldest_segments(|_| {
                taken += 1;
                taken <= count
            })
        })?;
        if let Some(start) = self.log.as_ref().map(Log::log_start_offset) {
            // Live-tail readers behind the new start must skip (and be told), even
            // when the ring still holds the deleted records.
            self.tail.set_log_start(start);
            // The log keeps its high watermark at or above its start: whatever that
            // moved over is answered as any advance is.
            let moved_to = self.high_watermark();
            if moved_to > high_watermark {
                self.high_watermark_moved(high_watermark, moved_to, ctx);
            }
        }
        self.counters.retention_deleted_segments += deleted.len() as u64;
        if !files.is_empty() {
            self.clock.run_later(
                ctx,
                Duration::from_millis(self.config.file_delete_delay_ms),
                move |_: &mut Self, _| {
                    tokio::task::spawn_blocking(move || {
                        if let Err(e) = remove_files(&files) {
                            log::warn!("removing retired segment files: {e}");
                        }
                    });
                },
            );
        }
        Ok(deleted.len())
    }
}
