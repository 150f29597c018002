//! When an append is acknowledged, and the group-commit pipeline behind it.
//!
//! `Log::append` never fsyncs. When the flush policy (`flush.messages`, default 1, or
//! `flush.ms`) calls for an fsync, the append is parked as a delayed produce
//! ([`super::waiters`]) and [`PartitionReplica::maybe_flush`] takes a
//! [`FlushTicket`](crate::storage::FlushTicket) whose `fdatasync` runs on
//! `spawn_blocking` while appends go on, one ticket in flight per partition. When it
//! finishes, `Log::complete_flush` moves the recovery point, and the high watermark
//! advances over everything the ticket covered: one fsync acknowledges every append
//! that queued behind it. With no fsync due, an append is committed as written.
//!
//! An fsync moves this log's durable end (`durable_to`), which answers `acks=1`
//! appends and a follower's copies; on a leader the high watermark then moves to
//! what every in-sync replica has durably ([`super::replication`]; with no other
//! replica in the ISR, what is durable here is committed). Advancing it answers the
//! delayed `acks=all` produces first, then feeds the live tail, then answers the
//! delayed fetches and tells waiting followers.

use std::time::Duration;

use actix::prelude::*;

use super::{Acks, AppendResult, PartitionReplica};
use crate::error::BrokerResult;
use crate::storage::{FlushDone, Log};

/// The pipeline's state: an fsync on a blocking thread, and the `flush.ms` timer.
/// Both live in the actor's context, so a restart starts them afresh.
#[derive(Debug, Default)]
pub(super) struct FlushState {
    in_flight: bool,
    timer_armed: bool,
}

impl PartitionReplica {
    /// Answers an append (written, ending at `result.last_offset`) when the flush
    /// policy allows: at once if no fsync is due, else once one covers it (at once
    /// anyway for `acks=0`, which waits for nothing).
    pub(super) fn acknowledge_when_durable(
        &mut self,
        result: AppendResult,
        acks: Acks,
        ctx: &mut Context<Self>,
    ) -> ResponseFuture<BrokerResult<AppendResult>> {
        if result.duplicate {
            return self.acknowledge_duplicate(result, acks, ctx);
        }
        if !self.log.as_ref().is_some_and(Log::flush_due) {
            // The policy does not ask for an fsync: durable as written. (With
            // flush.messages > 1 an acknowledgement does not promise durability.)
            self.durable_to(result.last_offset + 1, ctx);
            self.arm_flush_timer(ctx);
            if acks != Acks::All || result.last_offset < self.high_watermark() {
                return Box::pin(async move { Ok(result) });
            }
            let rx = self.waiters.park_produce(result.last_offset, result);
            return self.parked_reply(rx, "the partition stopped before the write was replicated");
        }
        let rx = match acks {
            Acks::All => self.waiters.park_produce(result.last_offset, result),
            Acks::Leader | Acks::None => self.waiters.park_local(result.last_offset, result),
        };
        self.maybe_flush(ctx);
        if acks == Acks::None {
            return Box::pin(async move { Ok(result) });
        }
        self.parked_reply(rx, "the partition stopped before the write was durable")
    }

    /// Answers a producer's retry of a batch the log holds, as the first append
    /// would have been answered: once its records are committed (Kafka's delayed
    /// produce waits for the same offset, duplicate or not). A retry can overtake its
    /// original, still waiting for its fsync, but never its acknowledgement.
    fn acknowledge_duplicate(
        &mut self,
        result: AppendResult,
        acks: Acks,
        ctx: &mut Context<Self>,
    ) -> ResponseFuture<BrokerResult<AppendResult>> {
        if acks == Acks::None || result.last_offset < self.high_watermark() {
            return Box::pin(async move { Ok(result) });
        }
        let rx = self.waiters.park_produce(result.last_offset, result);
        self.maybe_flush(ctx);
        self.parked_reply(rx, "the partition stopped before the write was durable")
    }

    /// Starts an fsync if the policy calls for one and none is running.
    pub(super) fn maybe_flush(&mut self, ctx: &mut Context<Self>) {
        if self.flush.in_flight {
            return;
        }
        let Some(log) = self.log.as_mut() else {
            return;
        };
        // Appends already waiting for an fsync get one even if the policy was relaxed
        // meanwhile (flush.messages raised): nobody waits forever.
        if !log.flush_due() && !self.waiters.has_produces() {
            self.arm_flush_timer(ctx);
            return;
        }
        let ticket = match self.guarded(ctx, |_| true, |log| log.begin_flush()) {
            Ok(Some(ticket)) => ticket,
            Ok(None) | Err(_) => return,
        };
        self.flush.in_flight = true;
        let sync = tokio::task::spawn_blocking(move || ticket.sync());
        ctx.spawn(
            actix::fut::wrap_future(sync).map(|joined, act: &mut Self, ctx| {
                act.flush.in_flight = false;
                match joined {
                    Ok(Ok(done)) => act.on_flushed(done, ctx),
                    Ok(Err(e)) => act.fail(ctx, format!("fsync failed: {e}")),
                    Err(e) => act.fail(ctx, format!("fsync task failed: {e}")),
                }
            }),
        );
    }

    fn on_flushed(&mut self, done: FlushDone, ctx: &mut Context<Self>) {
        let up_to = done.up_to_offset();
        if self
            .guarded(ctx, |_| true, |log| log.complete_flush(done))
            .is_err()
        {
            return;
        }
        self.durable_to(up_to, ctx);
        self.maybe_flush(ctx);
    }

    /// With `flush.ms`, a timer makes sure unflushed appends do not wait forever.
    pub(super) fn arm_flush_timer(&mut self, ctx: &mut Context<Self>) {
        let Some(flush_ms) = self.config.log.flush.flush_ms else {
            return;
        };
        if self.flush.timer_armed {
            return;
        }
        self.flush.timer_armed = true;
        let after = Duration::from_millis(flush_ms as u64);
        self.clock.run_later(ctx, after, |act: &mut Self, ctx| {
            act.flush.timer_armed = false;
            act.maybe_flush(ctx);
        });
    }

    /// Forgets the fsync in flight and the timer: the context that ran them is gone
    /// (a restart), or their answers will find nobody waiting (a failure, a stop).
    pub(super) fn reset_flush(&mut self) {
        self.flush = FlushState::default();
    }

    /// Moves the high watermark up to `to` and answers everything it unblocks.
    pub(super) fn advance_high_watermark(&mut self, to: i64, ctx: &mut Context<Self>) {
        let Some(log) = self.log.as_mut() else {
            return;
        };
        let from = log.high_watermark();
        if to <= from {
            return;
        }
        let to = log.set_high_watermark(to);
        self.high_watermark_moved(from, to, ctx);
    }

    /// Answers what a high watermark move from `from` to `to` unblocks.
    pub(super) fn high_watermark_moved(&mut self, from: i64, to: i64, ctx: &mut Context<Self>) {
        // Producers first: the tail's read must not delay their acknowledgements.
        let refusal = self.isr_too_small();
        self.waiters.complete_produces(to, refusal.as_ref());
        self.publish_tail(ctx, from);
        self.complete_fetches(ctx, to);
        // Followers learn the new high watermark.
        self.wake_replica_fetches(ctx);
    }
}
