//! Replication, from one partition's side (Kafka's `Partition` and its replica
//! state): what a leader knows of its followers and what a follower takes from its
//! leader.
//!
//! - **The leader** serves its followers' fetches ([`ReplicaFetch`]) up to its log
//!   end offset. A follower fetches from its own log end offset, and only once what
//!   it has is durable (fsynced, under its flush policy), so the offset it fetches
//!   from says how much it holds safely. The high watermark is the smallest of those
//!   offsets over the in-sync replicas, and of this log's own durable end: an
//!   `acks=all` write is answered once every ISR member has it on disk.
//! - **The ISR** is the metadata's. A follower that has not caught up with the log
//!   end for `replica.lag.time.max.ms` is proposed out of it, and one that reaches
//!   the high watermark is proposed back in (Kafka's AlterPartition, through the
//!   controller, `ControllerRequest::AlterIsr`); the leader relies on a change only
//!   once the metadata has it, except that a proposed addition counts for the high
//!   watermark at once (KIP-497's maximal ISR: an addition can only hold it back).
//!   A proposal carries the leader and partition epochs it was made in, so a stale
//!   one (a deposed leader's) is refused.
//! - **A follower** appends the leader's batches as they are
//!   ([`AppendAsFollower`], `Log::append_as_follower`) and takes the leader's high
//!   watermark, capped by its own log end. Before fetching from a new leader it is
//!   truncated to where the two logs agree ([`FollowerPosition`],
//!   [`TruncateToLeader`]: Kafka's OffsetForLeaderEpoch, KIP-101 and KIP-279).
//!
//! The fetching itself is the [`crate::replica_fetcher::ReplicaFetcher`]'s, outside
//! the partition actors.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::oneshot;

use super::{FetchResult, PartitionReplica, Role};
use crate::controller::active::ControllerRequest;
use crate::controller::channel::ControllerChannel;
use crate::controller::decisions::IsrChange;
use crate::error::{BrokerError, BrokerResult};
use crate::ids::{LeaderEpoch, NodeId, PartitionEpoch};
use crate::storage::{EpochEndOffset, FetchData, RecordBatch};

/// The partition's replicas as the metadata gives them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assignment {
    pub replicas: Vec<NodeId>,
    pub isr: Vec<NodeId>,
    pub partition_epoch: PartitionEpoch,
    /// The topic's effective `min.insync.replicas`.
    pub min_insync: usize,
}

/// What every replica of this broker shares.
#[derive(Clone, Default)]
pub struct ReplicationSettings {
    /// This broker.
    pub node: NodeId,
    /// `replica.lag.time.max.ms`.
    pub lag_time_max: Duration,
    /// How a leader proposes ISR changes; `None` on a node without a controller
    /// (tests), whose replicas never change their ISR.
    pub controller: Option<ControllerChannel>,
}

/// What the leader knows of one follower, in this leadership.
#[derive(Debug, Clone, Copy)]
struct FollowerState {
    /// The offset it last fetched from: what it holds, durably. `None` until it
    /// fetches from this leader.
    end_offset: Option<i64>,
    /// When it last had everything this leader had (Kafka's `lastCaughtUpTimeMs`).
    caught_up_at: Instant,
    /// This leader's log end offset, and the time, at its previous fetch.
    previous_fetch: Option<(i64, Instant)>,
}

/// A follower's fetch waiting for data (or for the high watermark to move).
struct ParkedReplicaFetch {
    id: u64,
    offset: i64,
    max_bytes: usize,
    reply: oneshot::Sender<BrokerResult<FetchResult>>,
}

/// The partition's replication state.
#[derive(Default)]
pub(super) struct Replication {
    pub settings: ReplicationSettings,
    pub assignment: Assignment,
    followers: HashMap<NodeId, FollowerState>,
    /// An ISR proposed and not yet in the metadata.
    pending_isr: Option<Vec<NodeId>>,
    /// Where this log is durable up to: fsynced, or written where the flush policy
    /// asks for no fsync.
    pub durable_end: i64,
    parked: Vec<ParkedReplicaFetch>,
    next_parked_id: u64,
    /// Whether the ISR check timer runs (in the current context).
    timer_armed: bool,
    /// After a refused proposal, none before then (a fenced broker still fetching
    /// would be proposed again on its every fetch).
    quiet_until: Option<Instant>,
}

impl Replication {
    /// The other replicas the high watermark waits for: the ISR, with any proposed
    /// addition, but never this broker.
    fn isr_followers(&self) -> impl Iterator<Item = NodeId> + '_ {
        let node = self.settings.node;
        let isr = &self.assignment.isr;
        let added = self
            .pending_isr
            .iter()
            .flatten()
            .filter(|r| !isr.contains(r));
        isr.iter().chain(added).copied().filter(move |r| *r != node)
    }

    /// The high watermark the ISR allows, or `None` while an ISR follower has not
    /// fetched from this leader yet.
    fn allowed_high_watermark(&self) -> Option<i64> {
        let mut hw = self.durable_end;
        for r in self.isr_followers() {
            hw = hw.min(self.followers.get(&r)?.end_offset?);
        }
        Some(hw)
    }

    /// Whether this replica commits alone (no other replica is in the ISR).
    pub fn commits_alone(&self) -> bool {
        self.isr_followers().next().is_none()
    }

    /// Starts a leadership: every follower unknown, caught up as of now.
    fn reset_followers(&mut self, now: Instant) {
        self.followers.clear();
        self.sync_followers(now);
    }

    /// Tracks the assignment's replicas (a reassignment adds and removes them): a
    /// new one is unknown until it fetches.
    fn sync_followers(&mut self, now: Instant) {
        let node = self.settings.node;
        let replicas = &self.assignment.replicas;
        self.followers.retain(|r, _| replicas.contains(r));
        for r in replicas.iter().filter(|r| **r != node) {
            self.followers.entry(*r).or_insert(FollowerState {
                end_offset: None,
                caught_up_at: now,
                previous_fetch: None,
            });
        }
    }

    /// The ISR this leader would propose now: without followers that have not been
    /// caught up for `replica.lag.time.max.ms`, with replicas that reached
    /// `high_watermark` (and this leadership's first offset).
    fn wanted_isr(
        &self,
        now: Instant,
        log_end: i64,
        high_watermark: i64,
        epoch_start: i64,
    ) -> Vec<NodeId> {
        let node = self.settings.node;
        let lag = self.settings.lag_time_max;
        let mut isr: Vec<NodeId> = self
            .assignment
            .isr
            .iter()
            .copied()
            .filter(|r| {
                *r == node
                    || self.followers.get(r).is_none_or(|f| {
                        f.end_offset.is_some_and(|e| e >= log_end)
                            || now.duration_since(f.caught_up_at) <= lag
                    })
            })
            .collect();
        // Only replicas out of the ISR now may join (one just dropped above is at the
        // high watermark by definition: it holds it back).
        for r in &self.assignment.replicas {
            if self.assignment.isr.contains(r) || *r == node {
                continue;
            }
            let caught_up = self
                .followers
                .get(r)
                .and_then(|f| f.end_offset)
                .is_some_and(|e| e >= high_watermark && e >= epoch_start);
            if caught_up {
                isr.push(*r);
            }
        }
        isr
    }
}

impl PartitionReplica {
    /// Sets the replication settings (the replica manager's, before it starts).
    pub fn with_replication(
        mut self,
        settings: ReplicationSettings,
        assignment: Assignment,
    ) -> Self {
        self.replication.settings = settings;
        self.replication.assignment = assignment;
        self
    }

    /// A new role and assignment from the metadata. A leader that becomes a
    /// follower (or loses its leader) fails what waits for its high watermark: a new
    /// leader decides what is committed now.
    pub(super) fn set_role(&mut self, role: Role, assignment: Assignment, ctx: &mut Context<Self>) {
        let was = self.role;
        let epoch_changed =
            assignment.partition_epoch != self.replication.assignment.partition_epoch;
        self.role = role;
        self.replication.assignment = assignment;
        if epoch_changed {
            self.replication.pending_isr = None;
        }
        if role != was {
            log::debug!("{}: {:?} (was {:?})", self.name(), role, was);
        }
        match (was, role) {
            (Role::Leader { leader_epoch: old }, Role::Leader { leader_epoch: new })
                if old == new =>
            {
                self.replication.sync_followers(self.clock.monotonic());
            }
            (_, Role::Leader { .. }) => {
                self.fail_replica_fetches(&self.not_leader());
                self.begin_leadership(ctx);
            }
            (Role::Leader { .. }, Role::Follower { .. }) => {
                let moved = BrokerError::LeadershipMoved {
                    topic: self.topic.clone(),
                    partition: self.partition,
                };
                self.waiters.fail_produces(&moved);
                self.fail_replica_fetches(&self.not_leader());
                self.close_tail();
            }
            (Role::Follower { .. }, Role::Follower { .. }) => {}
        }
        self.update_high_watermark(ctx);
    }

    /// A leadership begins (or the actor starts as leader): its followers are
    /// unknown until they fetch, and the high watermark moves only as the ISR allows.
    pub(super) fn begin_leadership(&mut self, ctx: &mut Context<Self>) {
        self.replication.reset_followers(self.clock.monotonic());
        self.arm_isr_timer(ctx);
        self.update_high_watermark(ctx);
    }

    pub(super) fn not_leader(&self) -> BrokerError {
        BrokerError::NotLeader {
            topic: self.topic.clone(),
            partition: self.partition,
            leader: match self.role {
                Role::Follower { leader_id, .. }
                    if leader_id != crate::controller::records::NO_LEADER =>
                {
                    Some(leader_id)
                }
                _ => None,
            },
        }
    }

    /// This log is durable up to `to`: answers what waited for that (`acks=1`
    /// produces, a follower's appends) and, on a leader, moves the high watermark
    /// as far as the ISR allows.
    pub(super) fn durable_to(&mut self, to: i64, ctx: &mut Context<Self>) {
        if to > self.replication.durable_end {
            self.replication.durable_end = to;
        }
        self.waiters.complete_local(self.replication.durable_end);
        self.update_high_watermark(ctx);
    }

    /// On a leader, moves the high watermark to what the ISR allows (never back).
    pub(super) fn update_high_watermark(&mut self, ctx: &mut Context<Self>) {
        if !matches!(self.role, Role::Leader { .. }) {
            return;
        }
        if let Some(hw) = self.replication.allowed_high_watermark() {
            self.advance_high_watermark(hw, ctx);
        }
    }

    /// Why an `acks=all` write waiting for the high watermark is not acknowledged
    /// when it gets there: the ISR shrank below `min.insync.replicas` meanwhile.
    pub(super) fn isr_too_small(&self) -> Option<BrokerError> {
        let assignment = &self.replication.assignment;
        let in_sync = assignment.isr.len().max(1);
        (in_sync < assignment.min_insync).then(|| BrokerError::NotEnoughReplicasAfterAppend {
            topic: self.topic.clone(),
            partition: self.partition,
            in_sync,
            min_insync: assignment.min_insync,
        })
    }

    /// A follower's fetch, at the leader: records its position, moves the high
    /// watermark and the ISR as it allows, and answers data up to the log end (or
    /// waits for some, up to `max_wait_ms`).
    pub(super) fn replica_fetch(
        &mut self,
        msg: ReplicaFetch,
        ctx: &mut Context<Self>,
    ) -> ResponseFuture<BrokerResult<FetchResult>> {
        match self.check_replica_fetch(&msg) {
            Ok(()) => {}
            Err(e) => return Box::pin(async move { Err(e) }),
        }
        let Some(log) = self.log.as_ref() else {
            let e = self.unavailable();
            return Box::pin(async move { Err(e) });
        };
        let (log_start, log_end) = (log.log_start_offset(), log.log_end_offset());
        if msg.offset < log_start || msg.offset > log_end {
            let e = BrokerError::OffsetOutOfRange {
                topic: self.topic.clone(),
                partition: self.partition,
                requested: msg.offset,
                log_start_offset: log_start,
                log_end_offset: log_end,
            };
            return Box::pin(async move { Err(e) });
        }
        let now = self.clock.monotonic();
        if let Some(f) = self.replication.followers.get_mut(&msg.replica) {
            if msg.offset >= log_end {
                f.caught_up_at = now;
            } else if let Some((previous_end, at)) = f.previous_fetch {
                if msg.offset >= previous_end {
                    f.caught_up_at = f.caught_up_at.max(at);
                }
            }
            f.previous_fetch = Some((log_end, now));
            f.end_offset = Some(msg.offset);
        }
        self.update_high_watermark(ctx);
        self.maybe_change_isr(ctx);
        if msg.offset < log_end || msg.max_wait_ms == 0 {
            let result = self.read_to_log_end(ctx, msg.offset, msg.max_bytes);
            return Box::pin(async move { result });
        }
        let (reply, rx) = oneshot::channel();
        let id = self.replication.next_parked_id;
        self.replication.next_parked_id += 1;
        self.replication.parked.retain(|p| !p.reply.is_closed());
        self.replication.parked.push(ParkedReplicaFetch {
            id,
            offset: msg.offset,
            max_bytes: msg.max_bytes,
            reply,
        });
        self.clock.run_later(
            ctx,
            Duration::from_millis(msg.max_wait_ms),
            move |act: &mut Self, ctx| {
                if let Some(i) = act.replication.parked.iter().position(|p| p.id == id) {
                    let parked = act.replication.parked.swap_remove(i);
                    let result = act.read_to_log_end(ctx, parked.offset, parked.max_bytes);
                    let _ = parked.reply.send(result);
                }
            },
        );
        self.parked_reply(rx, "the partition stopped during a follower's fetch")
    }

    fn check_replica_fetch(&self, msg: &ReplicaFetch) -> BrokerResult<()> {
        let Role::Leader { leader_epoch } = self.role else {
            return Err(self.not_leader());
        };
        if let Some(asked) = msg.leader_epoch {
            if asked < leader_epoch {
                return Err(BrokerError::FencedLeaderEpoch(format!(
                    "{} is in leader epoch {leader_epoch}, not {asked}",
                    self.name()
                )));
            }
            if asked > leader_epoch {
                return Err(BrokerError::Unavailable(format!(
                    "{} has not seen leader epoch {asked} yet (it is in {leader_epoch})",
                    self.name()
                )));
            }
        }
        if !self.replication.assignment.replicas.contains(&msg.replica) {
            return Err(BrokerError::InvalidRequest(format!(
                "broker {} holds no replica of {}",
                msg.replica,
                self.name()
            )));
        }
        Ok(())
    }

    /// Whole batches from `offset`, up to the log end, with the high watermark: what
    /// a follower gets, and a new coordinator's replay.
    pub(super) fn read_to_log_end(
        &mut self,
        ctx: &mut Context<Self>,
        offset: i64,
        max_bytes: usize,
    ) -> BrokerResult<FetchResult> {
        self.guarded(
            ctx,
            |_| false,
            |log| {
                let data = log.read(offset, max_bytes)?;
                Ok(FetchResult {
                    data,
                    high_watermark: log.high_watermark(),
                })
            },
        )
    }

    /// Answers the followers' parked fetches: there is new data, or a new high
    /// watermark to tell.
    pub(super) fn wake_replica_fetches(&mut self, ctx: &mut Context<Self>) {
        if self.replication.parked.is_empty() {
            return;
        }
        for parked in std::mem::take(&mut self.replication.parked) {
            if parked.reply.is_closed() {
                continue;
            }
            let result = self.read_to_log_end(ctx, parked.offset, parked.max_bytes);
            let _ = parked.reply.send(result);
        }
    }

    pub(super) fn fail_replica_fetches(&mut self, error: &BrokerError) {
        for parked in self.replication.parked.drain(..) {
            let _ = parked.reply.send(Err(error.clone()));
        }
    }

    /// Checks the ISR every half `replica.lag.time.max.ms` while leading.
    fn arm_isr_timer(&mut self, ctx: &mut Context<Self>) {
        if self.replication.timer_armed || self.replication.settings.controller.is_none() {
            return;
        }
        self.replication.timer_armed = true;
        let every = (self.replication.settings.lag_time_max / 2).max(Duration::from_millis(50));
        self.clock.run_later(ctx, every, |act: &mut Self, ctx| {
            act.replication.timer_armed = false;
            if matches!(act.role, Role::Leader { .. }) {
                act.maybe_change_isr(ctx);
                act.arm_isr_timer(ctx);
            }
        });
    }

    /// Forgets the ISR timer: the context that ran it is gone (a restart).
    pub(super) fn reset_isr_timer(&mut self) {
        self.replication.timer_armed = false;
    }

    /// Proposes the ISR the followers' positions call for, if it differs from the
    /// metadata's and no proposal is pending.
    pub(super) fn maybe_change_isr(&mut self, ctx: &mut Context<Self>) {
        let Role::Leader { leader_epoch } = self.role else {
            return;
        };
        let Some(controller) = self.replication.settings.controller.clone() else {
            return;
        };
        let now = self.clock.monotonic();
        if self.replication.pending_isr.is_some()
            || self.replication.quiet_until.is_some_and(|t| now < t)
        {
            return;
        }
        let Some(log) = self.log.as_ref() else {
            return;
        };
        let epoch_start = log
            .leader_epochs()
            .entries()
            .iter()
            .find(|e| e.epoch == leader_epoch.get())
            .map_or_else(|| log.log_end_offset(), |e| e.start_offset);
        let wanted = self.replication.wanted_isr(
            self.clock.monotonic(),
            log.log_end_offset(),
            log.high_watermark(),
            epoch_start,
        );
        log::trace!(
            "{}: ISR check: wanted {wanted:?}, followers {:?}",
            self.name(),
            self.replication.followers
        );
        if wanted == self.replication.assignment.isr {
            return;
        }
        log::info!(
            "{}: proposing ISR {:?} (was {:?})",
            self.name(),
            wanted,
            self.replication.assignment.isr
        );
        let change = IsrChange {
            topic: self.topic.clone(),
            partition: self.partition,
            leader: self.replication.settings.node,
            leader_epoch,
            partition_epoch: self.replication.assignment.partition_epoch,
            isr: wanted.clone(),
        };
        self.replication.pending_isr = Some(wanted);
        let ask = controller.ask(ControllerRequest::AlterIsr(change));
        ctx.spawn(
            actix::fut::wrap_future(ask).map(|answer, act: &mut Self, ctx| {
                match answer {
                    // Committed: it counts once the metadata brings it (`set_role`).
                    Ok(reply) if reply.index > 0 => {}
                    Ok(_) => act.replication.pending_isr = None,
                    Err(e) => {
                        log::warn!("{}: ISR change refused: {e}", act.name());
                        act.replication.pending_isr = None;
                        let quiet = (act.replication.settings.lag_time_max / 2)
                            .max(Duration::from_millis(100));
                        act.replication.quiet_until = Some(act.clock.monotonic() + quiet);
                        act.update_high_watermark(ctx);
                    }
                }
            }),
        );
    }

    /// Where a follower stands, for its fetcher: its log end offset and latest
    /// leader epoch. Refused unless it follows in `leader_epoch`.
    pub(super) fn follower_position(
        &self,
        leader_epoch: LeaderEpoch,
    ) -> BrokerResult<FollowerPosition> {
        self.check_follows(leader_epoch)?;
        let log = self.log.as_ref().ok_or_else(|| self.unavailable())?;
        Ok(FollowerPosition {
            log_end_offset: log.log_end_offset(),
            latest_epoch: log.leader_epochs().latest_epoch(),
        })
    }

    fn check_follows(&self, leader_epoch: LeaderEpoch) -> BrokerResult<()> {
        match self.role {
            Role::Follower {
                leader_epoch: mine, ..
            } if mine == leader_epoch => Ok(()),
            role => Err(BrokerError::FencedLeaderEpoch(format!(
                "{} is {:?}, not a follower in leader epoch {leader_epoch}",
                self.name(),
                role
            ))),
        }
    }

    /// Truncates a follower to where its log and its leader's agree: `leader_end`
    /// is the leader's answer for this log's latest epoch (its largest epoch at or
    /// before it, and where that ends), `None` when the leader knows no such epoch.
    pub(super) fn truncate_to_leader(
        &mut self,
        msg: TruncateToLeader,
        ctx: &mut Context<Self>,
    ) -> BrokerResult<i64> {
        self.check_follows(msg.leader_epoch)?;
        let name = self.name();
        let end = self.guarded(ctx, super::supervision::write_error_is_fatal, |log| {
            let target = match msg.leader_end {
                // The leader's log ends that epoch at `end_offset`; this one holds
                // the same epoch up to where its own next epoch begins.
                Some(EpochEndOffset { epoch, end_offset }) => {
                    let mine = log
                        .end_offset_for_epoch(epoch)
                        .map_or(log.log_start_offset(), |e| e.end_offset);
                    end_offset.min(mine)
                }
                // The leader has no epoch this old: keep only what was committed.
                None => log.high_watermark(),
            };
            if target < log.log_end_offset() {
                log::info!(
                    "{name}: truncating to offset {target} to match the leader (log end offset {})",
                    log.log_end_offset()
                );
                log.truncate_to(target)?;
            }
            Ok(log.log_end_offset())
        })?;
        self.replication.durable_end = self.replication.durable_end.min(end);
        Ok(end)
    }

    /// Empties a follower and starts it at its leader's log start, past everything it
    /// holds (the leader's retention moved on while it was away).
    pub(super) fn start_at_leader(
        &mut self,
        msg: StartAtLeader,
        ctx: &mut Context<Self>,
    ) -> BrokerResult<i64> {
        self.check_follows(msg.leader_epoch)?;
        let name = self.name();
        let start = msg.log_start_offset;
        let end = self.guarded(ctx, super::supervision::write_error_is_fatal, |log| {
            log::info!(
                "{name}: the leader's log starts at {start}, past this one's end {}: starting again there",
                log.log_end_offset()
            );
            log.truncate_fully_and_start_at(start)?;
            Ok(log.log_end_offset())
        })?;
        self.replication.durable_end = end;
        self.close_tail();
        Ok(end)
    }

    /// Appends what the leader sent and takes its high watermark; answers the log
    /// end offset once what was appended is durable.
    pub(super) fn append_as_follower(
        &mut self,
        msg: AppendAsFollower,
        ctx: &mut Context<Self>,
    ) -> ResponseFuture<BrokerResult<i64>> {
        if let Err(e) = self.check_follows(msg.leader_epoch) {
            return Box::pin(async move { Err(e) });
        }
        let batches = match split_batches(&msg.records) {
            Ok(b) => b,
            Err(reason) => {
                let e = BrokerError::CorruptBatch {
                    topic: self.topic.clone(),
                    partition: self.partition,
                    reason,
                };
                return Box::pin(async move { Err(e) });
            }
        };
        let appended = self.guarded(ctx, super::supervision::write_error_is_fatal, |log| {
            log.append_as_follower(&batches)
        });
        let appended = match appended {
            Ok(a) => a,
            Err(e) => return Box::pin(async move { Err(e) }),
        };
        let Some(log) = self.log.as_mut() else {
            let e = self.unavailable();
            return Box::pin(async move { Err(e) });
        };
        let log_end = log.log_end_offset();
        let flush_due = log.flush_due();
        let hw = msg.leader_high_watermark.min(log_end);
        self.advance_high_watermark(hw, ctx);
        let Some(info) = appended.filter(|_| flush_due) else {
            if !flush_due {
                self.durable_to(log_end, ctx);
                self.arm_flush_timer(ctx);
            }
            // Nothing appended, or nothing that needs an fsync: what it holds is
            // durable as far as its policy asks.
            return Box::pin(async move { Ok(log_end) });
        };
        let rx = self
            .waiters
            .park_local(info.last_offset, self.follower_result(&info));
        self.maybe_flush(ctx);
        let reply = self.parked_reply(rx, "the partition stopped before the copy was durable");
        Box::pin(async move { reply.await.map(|r| r.last_offset + 1) })
    }

    fn follower_result(&self, info: &crate::storage::AppendInfo) -> super::AppendResult {
        super::AppendResult {
            base_offset: info.base_offset,
            last_offset: info.last_offset,
            timestamp_ms: info.max_timestamp_ms,
            log_append_time_ms: None,
            log_start_offset: info.log_start_offset,
            duplicate: false,
        }
    }
}

/// The whole batches in `bytes`, each checked (CRC-32C): a fetch answer's records.
fn split_batches(bytes: &[u8]) -> Result<Vec<RecordBatch>, String> {
    let data = FetchData {
        bytes: bytes.to_vec(),
        log_start_offset: 0,
        log_end_offset: 0,
    };
    let mut batches = Vec::new();
    let mut used = 0;
    for batch in data.batches() {
        let size = batch.size_bytes();
        let copied = RecordBatch::from_bytes(bytes[used..used + size].to_vec()).map_err(|e| {
            format!(
                "a batch from the leader at offset {}: {e}",
                batch.base_offset()
            )
        })?;
        batches.push(copied);
        used += size;
    }
    Ok(batches)
}

/// A follower's fetch at its leader (Kafka's Fetch with the follower's replica id).
#[derive(Message)]
#[rtype(result = "BrokerResult<FetchResult>")]
pub struct ReplicaFetch {
    pub replica: NodeId,
    /// The follower's log end offset: it holds everything below, durably.
    pub offset: i64,
    /// The epoch the follower believes current (`None`: not checked).
    pub leader_epoch: Option<LeaderEpoch>,
    pub max_bytes: usize,
    pub max_wait_ms: u64,
}

/// The leader's batches for a follower, byte for byte, and its high watermark.
/// Answers the follower's log end offset once they are durable.
#[derive(Message)]
#[rtype(result = "BrokerResult<i64>")]
pub struct AppendAsFollower {
    pub leader_epoch: LeaderEpoch,
    pub records: bytes::Bytes,
    pub leader_high_watermark: i64,
}

/// Where a follower stands before it fetches from its leader in `0`.
#[derive(Message)]
#[rtype(result = "BrokerResult<FollowerPosition>")]
pub struct GetFollowerPosition(pub LeaderEpoch);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerPosition {
    pub log_end_offset: i64,
    pub latest_epoch: Option<i32>,
}

/// Truncate a follower to where its leader's log agrees with it (after asking the
/// leader where its latest epoch ends). Answers the new log end offset.
#[derive(Message)]
#[rtype(result = "BrokerResult<i64>")]
pub struct TruncateToLeader {
    pub leader_epoch: LeaderEpoch,
    pub leader_end: Option<EpochEndOffset>,
}

/// Empty a follower and start it at `log_start_offset`, its leader's log start, which
/// is past everything it holds. Answers the new log end offset.
#[derive(Message)]
#[rtype(result = "BrokerResult<i64>")]
pub struct StartAtLeader {
    pub leader_epoch: LeaderEpoch,
    pub log_start_offset: i64,
}
