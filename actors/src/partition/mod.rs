//! `PartitionReplica`: the actor that owns one partition's [`Log`]. It is the log's
//! only user: it serialises appends, serves reads and offset lookups, and answers for
//! the partition's log start offset, log end offset, high watermark and leader epoch.
//!
//! This file is the actor itself — its state, its lifecycle and the handler of every
//! message it answers ([`messages`]). Each handler hands the work to the concern it
//! belongs to:
//!
//! - [`role`]: leader or follower, and what each needs (the leader epoch that stamps
//!   appends; where the high watermark stands after a restart).
//! - [`durability`]: when an append is acknowledged, the group-commit fsync pipeline,
//!   and advancing the high watermark.
//! - [`waiters`]: the purgatory of delayed produces and delayed fetches that a high
//!   watermark advance completes.
//! - [`tail`]: the live tail, pushed to subscribers on each advance.
//! - [`retention`]: retiring the oldest segments on a timer.
//! - [`status`]: what the partition reports about itself.
//! - [`supervision`]: failing safely and restarting from disk, under the one policy
//!   of [`crate::supervision`].

mod durability;
pub mod messages;
mod replication;
mod retention;
mod role;
mod status;
mod supervision;
pub mod tail;
mod waiters;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use crate::clock::Clock;
use crate::error::{BrokerError, BrokerResult};
use crate::ids::LeaderEpoch;
use crate::storage::{EpochEndOffset, FetchData, Log};
use crate::supervision::{contain, ActorKind, RestartPolicy, Supervision};
use crate::topic_config::PartitionConfig;
use durability::FlushState;
pub use messages::*;
use replication::Replication;
pub use replication::{
    AppendAsFollower, Assignment, FollowerPosition, GetFollowerPosition, ReplicaFetch,
    ReplicationSettings, StartAtLeader, TruncateToLeader,
};
pub use role::Role;
use status::Counters;
use supervision::write_error_is_fatal;
use tail::Tail;
pub use tail::{ChunkRecords, PartitionFeed, SubscribeTail, TailChunk, TailSubscription};
use waiters::Waiters;

/// Limits a partition enforces (from the broker config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionLimits {
    pub mailbox_capacity: usize,
    pub max_waiting_fetches: usize,
    /// `partition.max.restarts` within `partition.restart.window.ms`.
    pub restart_policy: RestartPolicy,
    /// `log.retention.check.interval.ms`: also when expired producers are forgotten.
    pub retention_check_interval: Duration,
    /// `producer.id.expiration.ms`: how long the partition remembers an idempotent
    /// producer after its newest batch.
    pub producer_id_expiration_ms: i64,
    /// `partition.tail.buffer.chunks` and `partition.tail.chunk.max.bytes`: the live
    /// tail's ring of recently committed chunks (see [`tail`]).
    pub tail_buffer_chunks: usize,
    pub tail_chunk_max_bytes: usize,
}

pub struct PartitionReplica {
    topic: String,
    partition: i32,
    dir: PathBuf,
    config: PartitionConfig,
    limits: PartitionLimits,
    /// `None` while offline, stopped, or between a failure and the restart. The high
    /// watermark lives in it (see [`Log::high_watermark`]).
    log: Option<Log>,
    offline_reason: Option<String>,
    /// Set by `Stop`: a restart does not reopen the log.
    stopped: bool,
    role: Role,
    /// The replicas, the ISR, the followers' positions and this log's durable end.
    replication: Replication,
    flush: FlushState,
    waiters: Waiters,
    tail: Tail,
    supervision: Supervision,
    counters: Counters,
    /// Timestamps and ages (retention, the log's `segment.ms` and `flush.ms`), and
    /// every timer the partition arms.
    clock: Clock,
}

impl PartitionReplica {
    pub fn new(
        topic: &str,
        partition: i32,
        dir: PathBuf,
        config: PartitionConfig,
        limits: PartitionLimits,
        clock: Clock,
    ) -> Self {
        PartitionReplica {
            topic: topic.to_string(),
            partition,
            dir,
            config,
            limits,
            log: None,
            offline_reason: None,
            stopped: false,
            role: Role::first_leader(),
            replication: Replication::default(),
            flush: FlushState::default(),
            waiters: Waiters::new(limits.max_waiting_fetches),
            tail: Tail::new(limits.tail_buffer_chunks, limits.tail_chunk_max_bytes),
            supervision: Supervision::new(ActorKind::Partition, limits.restart_policy),
            counters: Counters::default(),
            clock,
        }
    }

    /// A replica that starts in `role` (the metadata's), not as the first leader.
    pub fn with_role(mut self, role: Role) -> Self {
        self.role = role;
        self
    }

    /// A partition that starts offline, without opening its log (the broker's
    /// open-file budget has no room for it); every request is answered with `reason`.
    pub fn offline(mut self, reason: String) -> Self {
        log::error!("partition {} is offline: {reason}", self.name());
        self.offline_reason = Some(reason);
        self
    }

    pub fn role(&self) -> Role {
        self.role
    }

    fn name(&self) -> String {
        format!("{}-{}", self.topic, self.partition)
    }

    /// The high watermark; 0 while there is no log.
    fn high_watermark(&self) -> i64 {
        self.log.as_ref().map_or(0, Log::high_watermark)
    }

    /// Opens the log from disk (recovering it) and sets the high watermark as the
    /// role says. A failure is answered like any other: the supervisor restarts the
    /// actor, within the restart budget.
    fn open_log(&mut self) -> Result<(), String> {
        let name = self.name();
        let opened = contain(
            ActorKind::Partition,
            || name.clone(),
            || {
                Log::open_with_clock(
                    &self.dir,
                    self.config.log.clone(),
                    Arc::new(self.clock.clone()),
                )
            },
        );
        match opened {
            Ok(Ok(log)) => {
                // Recovery keeps only what is on disk here (it syncs what it
                // scanned): the whole log is durable. The high watermark starts at
                // the checkpoint and a leader moves it as its ISR allows.
                self.replication.durable_end = log.log_end_offset();
                log::info!(
                    "partition {} online ({:?}): offsets [{}, {}), checkpointed high watermark {}, {} segment(s)",
                    self.name(),
                    self.role,
                    log.log_start_offset(),
                    log.log_end_offset(),
                    log.high_watermark(),
                    log.segments().len()
                );
                self.log = Some(log);
                self.offline_reason = None;
                Ok(())
            }
            Ok(Err(e)) => Err(format!("cannot open log: {e}")),
            Err(panic) => Err(format!("panic while opening log: {panic}")),
        }
    }

    /// The epoch a leader writes in; a follower refuses what only the leader does
    /// (writes, deleting records, answering for its epochs).
    fn leader_epoch_or_refuse(&self) -> BrokerResult<LeaderEpoch> {
        match self.role {
            Role::Leader { leader_epoch } => Ok(leader_epoch),
            Role::Follower { leader_id, .. } if leader_id == crate::controller::records::NO_LEADER => {
                Err(BrokerError::Unavailable(format!(
                    "{} has no leader: the brokers of its in-sync replicas are fenced or shutting down",
                    self.name()
                )))
            }
            Role::Follower { .. } => Err(self.not_leader()),
        }
    }

    /// Reads committed data (below the high watermark) from `offset`.
    fn read(
        &mut self,
        ctx: &mut Context<Self>,
        offset: i64,
        max_bytes: usize,
    ) -> BrokerResult<FetchResult> {
        let (data, high_watermark) = self.guarded(
            ctx,
            |_| false,
            |log| {
                let high_watermark = log.high_watermark();
                let mut data = log.read(offset, max_bytes)?;
                cut_at(&mut data, high_watermark);
                Ok((data, high_watermark))
            },
        )?;
        Ok(FetchResult {
            data,
            high_watermark,
        })
    }
}

/// Drops the batches at or above the high watermark from a read.
fn cut_at(data: &mut FetchData, high_watermark: i64) {
    let keep: usize = data
        .batches()
        .take_while(|b| b.base_offset() < high_watermark)
        .map(|b| b.size_bytes())
        .sum();
    data.bytes.truncate(keep);
}

impl Actor for PartitionReplica {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(self.limits.mailbox_capacity);
        self.schedule_retention(ctx);
        if self.log.is_none() && !self.stopped && self.offline_reason.is_none() {
            if let Err(reason) = self.open_log() {
                log::error!("partition {}: {reason}", self.name());
                self.supervision.failed(reason);
                ctx.stop();
                return;
            }
        }
        if matches!(self.role, Role::Leader { .. }) {
            self.begin_leadership(ctx);
        }
    }
}

impl Handler<Append> for PartitionReplica {
    type Result = ResponseFuture<BrokerResult<AppendResult>>;

    fn handle(&mut self, msg: Append, ctx: &mut Context<Self>) -> Self::Result {
        let Append { mut batch, acks } = msg;
        let leader_epoch = match self.leader_epoch_or_refuse() {
            Ok(epoch) => epoch,
            Err(e) => return Box::pin(async move { Err(e) }),
        };
        let appended = self.guarded(ctx, write_error_is_fatal, |log| {
            log.append(&mut batch, leader_epoch.get())
        });
        // The batch's buffer serves the next produced batch or read.
        crate::storage::buffers::POOL.recycle(batch.into_bytes());
        let info = match appended {
            Ok(info) => info,
            Err(e) => return Box::pin(async move { Err(e) }),
        };
        // Followers waiting at the log end get it now, while this fsync runs.
        self.wake_replica_fetches(ctx);
        let result = AppendResult {
            base_offset: info.base_offset,
            last_offset: info.last_offset,
            timestamp_ms: info.max_timestamp_ms,
            log_append_time_ms: info.log_append_time_ms,
            log_start_offset: info.log_start_offset,
            duplicate: info.duplicate,
        };
        self.acknowledge_when_durable(result, acks, ctx)
    }
}

impl Handler<Fetch> for PartitionReplica {
    type Result = ResponseFuture<BrokerResult<FetchResult>>;

    fn handle(&mut self, msg: Fetch, ctx: &mut Context<Self>) -> Self::Result {
        let Some(log) = self.log.as_ref() else {
            let e = self.unavailable();
            return Box::pin(async move { Err(e) });
        };
        let (log_start, high_watermark) = (log.log_start_offset(), log.high_watermark());
        // Between the high watermark and the log end a read waits, as Kafka's does: a
        // new leader's high watermark may be behind what its predecessor committed
        // until its followers fetch.
        if msg.offset < log_start || msg.offset > log.log_end_offset().max(high_watermark) {
            let e = BrokerError::OffsetOutOfRange {
                topic: self.topic.clone(),
                partition: self.partition,
                requested: msg.offset,
                log_start_offset: log_start,
                log_end_offset: high_watermark,
            };
            return Box::pin(async move { Err(e) });
        }
        if msg.offset < high_watermark || msg.max_wait_ms == 0 {
            let result = self.read(ctx, msg.offset, msg.max_bytes);
            return Box::pin(async move { result });
        }
        self.park_fetch(msg, ctx)
    }
}

impl Handler<ListOffsets> for PartitionReplica {
    type Result = BrokerResult<Option<(i64, Option<i64>)>>;

    fn handle(&mut self, msg: ListOffsets, ctx: &mut Context<Self>) -> Self::Result {
        match msg.0 {
            OffsetSpec::Earliest => self.guarded(
                ctx,
                |_| false,
                |log| Ok(Some((log.log_start_offset(), None))),
            ),
            OffsetSpec::Latest => {
                self.guarded(ctx, |_| false, |log| Ok(Some((log.high_watermark(), None))))
            }
            OffsetSpec::Timestamp(t) => {
                let (found, high_watermark) = self.guarded(
                    ctx,
                    |_| false,
                    |log| Ok((log.offset_for_timestamp(t)?, log.high_watermark())),
                )?;
                Ok(found
                    .filter(|f| f.offset < high_watermark)
                    .map(|f| (f.offset, Some(f.timestamp_ms))))
            }
        }
    }
}

impl Handler<DeleteRecords> for PartitionReplica {
    type Result = BrokerResult<i64>;

    fn handle(&mut self, msg: DeleteRecords, ctx: &mut Context<Self>) -> Self::Result {
        self.delete_records(ctx, msg.offset)
    }
}

impl Handler<EndOffsetForEpoch> for PartitionReplica {
    type Result = BrokerResult<Option<EpochEndOffset>>;

    fn handle(&mut self, msg: EndOffsetForEpoch, ctx: &mut Context<Self>) -> Self::Result {
        let current = self.leader_epoch_or_refuse()?;
        let asked = msg.0.get();
        if asked < 0 {
            // Kafka's UNDEFINED_EPOCH: nothing to look up.
            return Ok(None);
        }
        self.guarded(
            ctx,
            |_| false,
            |log| {
                let latest = log.leader_epochs().latest_epoch();
                // Kafka's leader records its epoch at the log end when it takes over;
                // this one records it at its first append. Until then its own epoch
                // still ends at the log end, as Kafka answers.
                if asked == current.get() && latest.is_none_or(|l| l < asked) {
                    return Ok(Some(EpochEndOffset {
                        epoch: asked,
                        end_offset: log.log_end_offset(),
                    }));
                }
                Ok(log.end_offset_for_epoch(asked))
            },
        )
    }
}

impl Handler<GetStatus> for PartitionReplica {
    type Result = MessageResult<GetStatus>;

    fn handle(&mut self, _: GetStatus, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.status())
    }
}

impl Handler<SetRole> for PartitionReplica {
    type Result = ();

    /// A leader in a new epoch stamps it on what it appends from now on and starts
    /// tracking its followers afresh; a leader that becomes a follower fails what
    /// waits for its high watermark (see [`replication`]).
    fn handle(&mut self, msg: SetRole, ctx: &mut Context<Self>) {
        self.set_role(msg.role, msg.assignment, ctx);
    }
}

impl Handler<ReplicaFetch> for PartitionReplica {
    type Result = ResponseFuture<BrokerResult<FetchResult>>;

    fn handle(&mut self, msg: ReplicaFetch, ctx: &mut Context<Self>) -> Self::Result {
        self.replica_fetch(msg, ctx)
    }
}

impl Handler<StartAtLeader> for PartitionReplica {
    type Result = BrokerResult<i64>;

    fn handle(&mut self, msg: StartAtLeader, ctx: &mut Context<Self>) -> Self::Result {
        self.start_at_leader(msg, ctx)
    }
}

impl Handler<ReadToLogEnd> for PartitionReplica {
    type Result = BrokerResult<FetchResult>;

    fn handle(&mut self, msg: ReadToLogEnd, ctx: &mut Context<Self>) -> Self::Result {
        if !matches!(self.role, Role::Leader { .. }) {
            return Err(self.not_leader());
        }
        self.read_to_log_end(ctx, msg.offset, msg.max_bytes)
    }
}

impl Handler<AppendAsFollower> for PartitionReplica {
    type Result = ResponseFuture<BrokerResult<i64>>;

    fn handle(&mut self, msg: AppendAsFollower, ctx: &mut Context<Self>) -> Self::Result {
        self.append_as_follower(msg, ctx)
    }
}

impl Handler<GetFollowerPosition> for PartitionReplica {
    type Result = BrokerResult<FollowerPosition>;

    fn handle(&mut self, msg: GetFollowerPosition, _: &mut Context<Self>) -> Self::Result {
        self.follower_position(msg.0)
    }
}

impl Handler<TruncateToLeader> for PartitionReplica {
    type Result = BrokerResult<i64>;

    fn handle(&mut self, msg: TruncateToLeader, ctx: &mut Context<Self>) -> Self::Result {
        let end = self.truncate_to_leader(msg, ctx);
        self.close_tail();
        end
    }
}

impl Handler<UpdateConfig> for PartitionReplica {
    type Result = BrokerResult<()>;

    fn handle(&mut self, msg: UpdateConfig, ctx: &mut Context<Self>) -> Self::Result {
        let log_config = msg.0.log.clone();
        self.config = msg.0;
        let result = self.guarded(ctx, |_| false, |log| log.set_config(log_config));
        self.maybe_flush(ctx);
        result
    }
}

impl Handler<Stop> for PartitionReplica {
    type Result = BrokerResult<()>;

    fn handle(&mut self, msg: Stop, ctx: &mut Context<Self>) -> Self::Result {
        self.stopped = true;
        let mut result = Ok(());
        if let Some(mut log) = self.log.take() {
            if msg.0 == StopMode::Close {
                // Everything written is flushed by close. A leader that commits
                // alone (no other replica in its ISR) so commits it: it answers the
                // appends waiting for it, and lets the checkpoint say so.
                let name = self.name();
                let alone =
                    matches!(self.role, Role::Leader { .. }) && self.replication.commits_alone();
                let closed = contain(
                    ActorKind::Partition,
                    || name.clone(),
                    || {
                        log.flush()?;
                        let end = log.log_end_offset();
                        if alone {
                            log.set_high_watermark(end);
                        }
                        log.close().map(|()| alone.then_some(end))
                    },
                );
                match closed {
                    Ok(Ok(Some(end))) => {
                        let refusal = self.isr_too_small();
                        self.waiters.complete_produces(end, refusal.as_ref());
                        self.waiters.complete_local(end);
                    }
                    Ok(Ok(None)) => {}
                    Ok(Err(e)) => {
                        result = Err(BrokerError::from_log(&self.topic, self.partition, e))
                    }
                    Err(panic) => {
                        result = Err(BrokerError::Internal(format!(
                            "panic while closing: {panic}"
                        )))
                    }
                }
            }
        }
        self.offline_reason = Some("stopped".into());
        let error = self.unavailable();
        self.fail_parked(&error);
        self.close_tail();
        ctx.stop();
        result
    }
}

impl Handler<ApplyRetention> for PartitionReplica {
    type Result = BrokerResult<usize>;

    fn handle(&mut self, _: ApplyRetention, ctx: &mut Context<Self>) -> Self::Result {
        self.apply_retention(ctx)
    }
}

impl Handler<GetCleanable> for PartitionReplica {
    type Result = Option<CleanerView>;

    fn handle(&mut self, _: GetCleanable, _: &mut Context<Self>) -> Self::Result {
        if !self.config.cleanup_compact {
            return None;
        }
        let log = self.log.as_ref()?;
        Some(CleanerView {
            log: log.cleanable(),
            config: self.config.clone(),
        })
    }
}

impl Handler<InstallCleaned> for PartitionReplica {
    type Result = BrokerResult<bool>;

    fn handle(&mut self, msg: InstallCleaned, ctx: &mut Context<Self>) -> Self::Result {
        let installed =
            self.guarded(ctx, write_error_is_fatal, |log| log.install_cleaned(&msg.0))?;
        if installed {
            self.counters.cleaner_runs += 1;
        }
        Ok(installed)
    }
}

#[cfg(any(test, feature = "test-support"))]
impl Handler<InjectPanic> for PartitionReplica {
    type Result = BrokerResult<()>;

    fn handle(&mut self, _: InjectPanic, ctx: &mut Context<Self>) -> Self::Result {
        self.guarded(
            ctx,
            |_| false,
            |_| -> crate::storage::LogResult<()> { panic!("injected fault") },
        )
    }
}

impl Handler<SubscribeTail> for PartitionReplica {
    type Result = BrokerResult<TailSubscription>;

    fn handle(&mut self, _: SubscribeTail, _: &mut Context<Self>) -> Self::Result {
        let Some(log) = self.log.as_ref() else {
            return Err(self.unavailable());
        };
        self.tail.set_log_start(log.log_start_offset());
        Ok(TailSubscription {
            topic: self.topic.clone(),
            partition: self.partition,
            chunks: self.tail.subscribe(),
            high_watermark: log.high_watermark(),
            log_start_offset: log.log_start_offset(),
            log_end_offset: log.log_end_offset(),
            log_start: self.tail.log_start(),
        })
    }
}
