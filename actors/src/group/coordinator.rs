//! `GroupCoordinator`: the actor that owns one consumer group — its membership and
//! rebalances ([`Group`], the plain state machine) and its committed offsets.
//!
//! Every change that must survive a restart becomes records of `__consumer_offsets`
//! (its partition for this group), appended before the caller is answered and then
//! applied with the very function that replays them at startup. Join and follower
//! sync requests are parked until the rebalance lets them through; one timer,
//! re-armed after every change, fires at the group's next deadline (a member's
//! session running out, or the rebalance timeout).
//!
//! It is supervised ([`crate::supervision`]): when its memory may have run ahead of
//! what is on disk (a failed write) it stops, and after a panic (an assignor's bug,
//! say) the supervisor stops it; either way it restarts from the records on disk, and
//! once its restart budget is spent it stays down, answering every request with why.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use futures::channel::oneshot;

use super::membership::{Group, GroupError, GroupState, JoinResult};
use super::messages::*;
use super::offsets_topic::{CommittedOffset, GroupRecord, GroupSnapshot};
use super::{read_offsets_partition, TopicPartition};
use crate::broker_config::GroupConfig;
use crate::clock::Clock;
use crate::error::BrokerError;
use crate::ids::{GenerationId, LeaderEpoch};
use crate::partition::{Acks, Append, PartitionReplica};
use crate::storage::{RecordBatch, TimestampType};
use crate::supervision::{ActorKind, RestartPolicy, Supervise, Supervision, Verdict};

type Parked<T> = oneshot::Sender<GroupResult<T>>;

pub struct GroupCoordinator {
    group_id: String,
    config: Arc<GroupConfig>,
    /// This group's partition of `__consumer_offsets`.
    store: Addr<PartitionReplica>,
    /// That partition's number, which a failed replay names.
    store_partition: i32,
    group: Group,
    snapshot: GroupSnapshot,
    /// Partition counts of every topic (kept current by the manager).
    topics: BTreeMap<String, i32>,
    /// The counts the current assignment was computed from: a change to one of them
    /// (partitions added, topic deleted) rebalances the group.
    assigned_counts: BTreeMap<String, i32>,
    pending_joins: HashMap<String, Parked<JoinResult>>,
    /// Follower syncs waiting for the leader's, with the generation they are for.
    pending_syncs: HashMap<String, (GenerationId, Parked<Vec<TopicPartition>>)>,
    notify: HashMap<String, Recipient<RebalanceNotice>>,
    timer: Option<SpawnHandle>,
    /// Writes are numbered; a record is applied only if no later write of the same
    /// key was applied first, so memory matches the log's order.
    write_seq: u64,
    applied_seq: HashMap<Option<TopicPartition>, u64>,
    /// Writes finish in the order they were appended, but their answers may be
    /// polled out of order: every write up to this number has finished, and these
    /// beyond it.
    finished_through: u64,
    finished: BTreeSet<u64>,
    /// Offset fetches waiting for the writes begun before them: a commit already
    /// accepted is not in `snapshot` until it is durable, and a member just given
    /// the partition must start after that commit, not before it.
    pending_fetches: Vec<(u64, FetchOffsets, Parked<CommittedOffsets>)>,
    /// Session and rebalance deadlines, the deadline timer, record timestamps.
    clock: Clock,
    supervision: Supervision,
    /// Set once this broker no longer leads the group's offsets partition: every
    /// request is answered NOT_COORDINATOR with this, for good.
    moved: Option<String>,
}

/// This broker no longer leads the group's `__consumer_offsets` partition: the
/// coordinator answers NOT_COORDINATOR from now on (its members find the new one).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Unload(pub String);

impl Handler<Unload> for GroupCoordinator {
    type Result = ();

    fn handle(&mut self, msg: Unload, ctx: &mut Context<Self>) {
        log::info!("group {}: unloaded ({})", self.group_id, msg.0);
        self.moved = Some(msg.0);
        // Parked joins and syncs are dropped: their callers hear the coordinator
        // is gone and look for the new one.
        self.pending_joins.clear();
        self.pending_syncs.clear();
        self.notify.clear();
        if let Some(timer) = self.timer.take() {
            ctx.cancel_future(timer);
        }
        self.answer_all_fetches();
    }
}

type CommittedOffsets = BTreeMap<TopicPartition, CommittedOffset>;

/// The `__consumer_offsets` partition a group's records go to: its actor and number.
pub struct OffsetsStore {
    pub replica: Addr<PartitionReplica>,
    pub partition: i32,
}

impl GroupCoordinator {
    pub fn new(
        group_id: &str,
        config: Arc<GroupConfig>,
        store: OffsetsStore,
        snapshot: GroupSnapshot,
        topics: BTreeMap<String, i32>,
        clock: Clock,
        restarts: RestartPolicy,
    ) -> Self {
        let mut coordinator = GroupCoordinator {
            group_id: group_id.to_string(),
            group: Group::new(group_id, config.max_size),
            config,
            store: store.replica,
            store_partition: store.partition,
            snapshot: GroupSnapshot::default(),
            topics,
            assigned_counts: BTreeMap::new(),
            pending_joins: HashMap::new(),
            pending_syncs: HashMap::new(),
            notify: HashMap::new(),
            timer: None,
            write_seq: 0,
            applied_seq: HashMap::new(),
            finished_through: 0,
            finished: BTreeSet::new(),
            pending_fetches: Vec::new(),
            clock,
            supervision: Supervision::new(ActorKind::GroupCoordinator, restarts),
            moved: None,
        };
        coordinator.restore(snapshot);
        coordinator
    }

    fn restore(&mut self, snapshot: GroupSnapshot) {
        self.group = match &snapshot.metadata {
            Some(meta) => Group::restore(
                &self.group_id,
                self.config.max_size,
                meta,
                self.clock.now_ms(),
            ),
            None => Group::new(&self.group_id, self.config.max_size),
        };
        self.assigned_counts = self.subscribed_counts();
        self.snapshot = snapshot;
    }

    fn subscribed_counts(&self) -> BTreeMap<String, i32> {
        let topics: BTreeSet<&String> = self
            .group
            .members
            .values()
            .flat_map(|m| m.topics.iter())
            .collect();
        topics
            .into_iter()
            .map(|t| (t.clone(), self.topics.get(t).copied().unwrap_or(0)))
            .collect()
    }

    fn describe(&self) -> GroupDescription {
        GroupDescription {
            group_id: self.group_id.clone(),
            state: self.group.state,
            generation_id: self.group.generation_id,
            protocol_type: "consumer".to_string(),
            protocol: self.group.protocol.clone(),
            leader_id: self.group.leader_id.clone(),
            members: self
                .group
                .members
                .values()
                .map(|m| MemberDescription {
                    member_id: m.member_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    origin: m.origin,
                    topics: m.topics.clone(),
                    assignment: m.assignment.clone(),
                })
                .collect(),
            offsets: self.snapshot.offsets.clone(),
        }
    }

    /// After any change to the membership: tell members a rebalance started,
    /// complete the join phase if it can, persist the group when it empties, and
    /// re-arm the timer.
    fn settle(&mut self, before: GroupState, ctx: &mut Context<Self>) {
        let now = self.clock.now_ms();
        if self.group.state == GroupState::PreparingRebalance
            && before != GroupState::PreparingRebalance
        {
            self.rebalance_started();
        }
        if self.group.try_complete_join(now) {
            self.complete_joins();
        }
        self.forget_departed();
        if self.group.state == GroupState::Empty && before != GroupState::Empty {
            self.write_metadata(ctx);
        }
        self.arm_timer(ctx);
    }

    fn rebalance_started(&mut self) {
        log::debug!(
            "group {} rebalancing (generation {})",
            self.group_id,
            self.group.generation_id
        );
        for (_, (_, tx)) in self.pending_syncs.drain() {
            let _ = tx.send(Err(GroupError::RebalanceInProgress));
        }
        for (member_id, recipient) in &self.notify {
            let joined = self.group.members.get(member_id).is_some_and(|m| m.joined);
            if !joined {
                recipient.do_send(RebalanceNotice {
                    group_id: self.group_id.clone(),
                    member_id: member_id.clone(),
                });
            }
        }
    }

    fn complete_joins(&mut self) {
        log::info!(
            "group {} generation {}: {} member(s), assignor {:?}",
            self.group_id,
            self.group.generation_id,
            self.group.members.len(),
            self.group.protocol
        );
        for (member_id, tx) in self.pending_joins.drain() {
            let answer = self
                .group
                .join_result(&member_id)
                .ok_or_else(|| GroupError::UnknownMemberId(member_id.clone()));
            let _ = tx.send(answer);
        }
    }

    /// Drops parked requests and notice recipients of members no longer in the group.
    fn forget_departed(&mut self) {
        let members = &self.group.members;
        self.notify.retain(|id, _| members.contains_key(id));
        for id in self
            .pending_joins
            .keys()
            .chain(self.pending_syncs.keys())
            .filter(|id| !members.contains_key(*id))
            .cloned()
            .collect::<Vec<_>>()
        {
            let gone = GroupError::UnknownMemberId(id.clone());
            if let Some(tx) = self.pending_joins.remove(&id) {
                let _ = tx.send(Err(gone.clone()));
            }
            if let Some((_, tx)) = self.pending_syncs.remove(&id) {
                let _ = tx.send(Err(gone));
            }
        }
    }

    fn arm_timer(&mut self, ctx: &mut Context<Self>) {
        if let Some(handle) = self.timer.take() {
            ctx.cancel_future(handle);
        }
        if self.moved.is_some() {
            return;
        }
        let Some(deadline) = self.group.next_deadline_ms() else {
            return;
        };
        let wait = Duration::from_millis((deadline - self.clock.now_ms()).max(0) as u64);
        self.timer = Some(self.clock.run_later(ctx, wait, |act: &mut Self, ctx| {
            act.timer = None;
            let before = act.group.state;
            let now = act.clock.now_ms();
            let expired = act.group.expire(now);
            if !expired.is_empty() {
                log::info!("group {}: session timed out for {expired:?}", act.group_id);
            }
            act.settle(before, ctx);
        }));
    }

    /// Appends `records` to this group's partition; once durable, applies them.
    fn write(
        &mut self,
        records: Vec<GroupRecord>,
    ) -> impl ActorFuture<Self, Output = GroupResult<()>> {
        self.write_seq += 1;
        let seq = self.write_seq;
        let now = self.clock.now_ms();
        let encoded: Vec<_> = records.iter().map(|r| r.encode(now)).collect();
        let store = self.store.clone();
        let append = async move {
            let batch = RecordBatch::encode(&encoded, TimestampType::CreateTime)
                .map_err(|e| GroupError::CoordinatorNotAvailable(e.to_string()))?;
            store
                .send(Append {
                    batch,
                    acks: Acks::All,
                })
                .await
                .map_err(GroupError::mailbox)?
                .map_err(|e| GroupError::CoordinatorNotAvailable(e.to_string()))?;
            Ok(())
        };
        fut::wrap_future::<_, Self>(append).map(move |result, act, ctx| {
            match &result {
                Ok(()) => {
                    for record in &records {
                        let key = match record {
                            GroupRecord::Offset { partition, .. } => Some(partition.clone()),
                            GroupRecord::Group { .. } => None,
                        };
                        let applied = act.applied_seq.entry(key).or_insert(0);
                        if *applied < seq {
                            *applied = seq;
                            act.snapshot.apply(record);
                        }
                    }
                    act.write_finished(seq);
                }
                Err(e) => {
                    // Whether the append reached the disk is unknown: start over
                    // from what the log says.
                    log::error!(
                        "group {}: writing to __consumer_offsets failed ({e}); restarting from disk",
                        act.group_id
                    );
                    act.supervision
                        .failed(format!("writing to __consumer_offsets failed: {e}"));
                    ctx.stop();
                }
            }
            result
        })
    }

    fn write_finished(&mut self, seq: u64) {
        self.finished.insert(seq);
        while self.finished.remove(&(self.finished_through + 1)) {
            self.finished_through += 1;
        }
        let through = self.finished_through;
        let (ready, waiting) = std::mem::take(&mut self.pending_fetches)
            .into_iter()
            .partition(|(after, _, _)| *after <= through);
        self.pending_fetches = waiting;
        self.answer_fetches(ready);
    }

    fn answer_all_fetches(&mut self) {
        let all = std::mem::take(&mut self.pending_fetches);
        self.answer_fetches(all);
    }

    fn answer_fetches(&self, fetches: Vec<(u64, FetchOffsets, Parked<CommittedOffsets>)>) {
        for (_, msg, tx) in fetches {
            let _ = tx.send(self.check_up().map(|()| self.committed_offsets(msg)));
        }
    }

    /// `Err` with the reason while the coordinator is down (its restart budget spent).
    fn check_up(&self) -> GroupResult<()> {
        if let Some(why) = &self.moved {
            return Err(GroupError::NotCoordinator(format!(
                "group {}: {why}",
                self.group_id
            )));
        }
        match self.supervision.down() {
            None => Ok(()),
            Some(reason) => Err(GroupError::CoordinatorNotAvailable(format!(
                "the coordinator of group {} is down: {reason}",
                self.group_id
            ))),
        }
    }

    /// `Err` unless the coordinator is up and its group not deleted: what changing
    /// the group's offsets needs.
    fn check_offsets_kept(&self) -> GroupResult<()> {
        self.check_up()?;
        if self.group.state == GroupState::Dead {
            return Err(GroupError::GroupIdNotFound(self.group_id.clone()));
        }
        Ok(())
    }

    fn committed_offsets(&self, msg: FetchOffsets) -> CommittedOffsets {
        let offsets = &self.snapshot.offsets;
        match msg.partitions {
            None => offsets.clone(),
            Some(wanted) => wanted
                .into_iter()
                .filter_map(|tp| offsets.get(&tp).map(|o| (tp, o.clone())))
                .collect(),
        }
    }

    fn write_metadata(&mut self, ctx: &mut Context<Self>) {
        let record = GroupRecord::Group {
            group: self.group_id.clone(),
            value: Some(self.group.to_metadata(self.clock.now_ms())),
        };
        ctx.spawn(self.write(vec![record]).map(|_, _, _| ()));
    }

    fn check_commit(&self, msg: &CommitOffsets) -> GroupResult<()> {
        match &msg.committer {
            Committer::Standalone => {
                if !self.group.members.is_empty() {
                    return Err(GroupError::UnknownMemberId(String::new()));
                }
            }
            Committer::Member {
                member_id,
                generation_id,
            } => {
                let member = self
                    .group
                    .members
                    .get(member_id)
                    .ok_or_else(|| GroupError::UnknownMemberId(member_id.clone()))?;
                if *generation_id != self.group.generation_id {
                    return Err(GroupError::IllegalGeneration {
                        given: *generation_id,
                        current: self.group.generation_id,
                    });
                }
                // As Kafka: members may still commit while the group prepares a
                // rebalance (that is when they hand their partitions back), not
                // while the new assignment is being made.
                if self.group.state == GroupState::CompletingRebalance {
                    return Err(GroupError::RebalanceInProgress);
                }
                if let Some(c) = msg
                    .offsets
                    .iter()
                    .find(|c| !member.assignment.contains(&c.partition))
                {
                    return Err(GroupError::PartitionNotAssigned {
                        member_id: member_id.clone(),
                        topic: c.partition.topic.clone(),
                        partition: c.partition.partition,
                    });
                }
            }
        }
        for c in &msg.offsets {
            if c.offset < 0 {
                return Err(GroupError::InvalidCommitOffset(format!(
                    "offset {} for {}-{} is negative",
                    c.offset, c.partition.topic, c.partition.partition
                )));
            }
            if c.metadata.len() > self.config.offset_metadata_max_bytes {
                return Err(GroupError::OffsetMetadataTooLarge {
                    size: c.metadata.len(),
                    limit: self.config.offset_metadata_max_bytes,
                });
            }
        }
        Ok(())
    }

    async fn park<T: Send + 'static>(rx: oneshot::Receiver<GroupResult<T>>) -> GroupResult<T> {
        rx.await.unwrap_or_else(|_| {
            Err(GroupError::CoordinatorNotAvailable(
                "the coordinator restarted".into(),
            ))
        })
    }
}

impl Actor for GroupCoordinator {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.arm_timer(ctx);
    }
}

impl Supervise for GroupCoordinator {
    const KIND: ActorKind = ActorKind::GroupCoordinator;

    fn name(&self) -> String {
        self.group_id.clone()
    }
}

impl Supervised for GroupCoordinator {
    /// Forget everything in memory and replay this group's records from disk; the
    /// mailbox waits until that is done. Once the budget is spent, forget it all and
    /// stay down.
    fn restarting(&mut self, ctx: &mut Context<Self>) {
        self.pending_joins.clear();
        self.pending_syncs.clear();
        self.notify.clear();
        self.timer = None;
        self.applied_seq.clear();
        // Writes in flight were dropped with the actor's futures: whatever of them
        // reached the disk is in what is reloaded now.
        self.finished_through = self.write_seq;
        self.finished.clear();
        if self.moved.is_some() {
            // Unloaded: nothing to reload, and nothing it would serve.
            return;
        }
        let now = self.clock.monotonic();
        if let Verdict::StayDown { .. } = self.supervision.restarting_at(&self.group_id, now) {
            self.restore(GroupSnapshot::default());
            self.group.state = GroupState::Dead;
            self.answer_all_fetches();
            return;
        }
        let store = self.store.clone();
        let partition = self.store_partition;
        let group_id = self.group_id.clone();
        let reload = async move {
            let mut groups = read_offsets_partition(&store, partition).await?;
            Ok::<_, BrokerError>(groups.remove(&group_id).unwrap_or_default())
        };
        ctx.wait(
            fut::wrap_future::<_, Self>(reload).map(|result, act, ctx| match result {
                Ok(snapshot) => {
                    act.restore(snapshot);
                    act.arm_timer(ctx);
                    act.answer_all_fetches();
                }
                Err(e) => {
                    log::error!("group {}: cannot reload: {e}", act.group_id);
                    act.restore(GroupSnapshot::default());
                    act.group.state = GroupState::Dead;
                    act.answer_all_fetches();
                }
            }),
        );
    }
}

fn dead<T>() -> GroupResult<T> {
    Err(GroupError::CoordinatorNotAvailable(
        "the group's state could not be loaded".into(),
    ))
}

impl Handler<JoinGroup> for GroupCoordinator {
    type Result = ResponseFuture<GroupResult<JoinResult>>;

    fn handle(&mut self, msg: JoinGroup, ctx: &mut Context<Self>) -> Self::Result {
        if let Err(e) = self.check_up() {
            return Box::pin(async move { Err(e) });
        }
        if self.group.state == GroupState::Dead {
            return Box::pin(async { dead() });
        }
        let timeout = msg.request.session_timeout_ms;
        let (min, max) = (
            self.config.min_session_timeout_ms,
            self.config.max_session_timeout_ms,
        );
        if timeout < min || timeout > max {
            return Box::pin(async move {
                Err(GroupError::InvalidSessionTimeout {
                    given: timeout,
                    min,
                    max,
                })
            });
        }
        let before = self.group.state;
        let member_id = match self.group.join(msg.request, self.clock.now_ms()) {
            Ok(id) => id,
            Err(e) => return Box::pin(async move { Err(e) }),
        };
        if let Some(recipient) = msg.notify {
            self.notify.insert(member_id.clone(), recipient);
        }
        let (tx, rx) = oneshot::channel();
        if let Some(earlier) = self.pending_joins.insert(member_id, tx) {
            let _ = earlier.send(Err(GroupError::RebalanceInProgress));
        }
        self.settle(before, ctx);
        Box::pin(Self::park(rx))
    }
}

impl Handler<SyncGroup> for GroupCoordinator {
    type Result = ResponseActFuture<Self, GroupResult<Vec<TopicPartition>>>;

    fn handle(&mut self, msg: SyncGroup, _: &mut Context<Self>) -> Self::Result {
        if let Err(e) = self.check_up() {
            return Box::pin(fut::ready(Err(e)));
        }
        let before = self.group.state;
        let member_id = msg.member_id.clone();
        let synced = self.group.sync(
            &msg.member_id,
            msg.generation_id,
            msg.assignment,
            &self.topics,
        );
        match synced {
            Err(e) => Box::pin(fut::ready(Err(e))),
            Ok(None) => {
                let (tx, rx) = oneshot::channel();
                let generation = self.group.generation_id;
                if let Some((_, earlier)) = self.pending_syncs.insert(member_id, (generation, tx)) {
                    let _ = earlier.send(Err(GroupError::RebalanceInProgress));
                }
                Box::pin(fut::wrap_future(Self::park(rx)))
            }
            Ok(Some(partitions)) if before == GroupState::Stable => {
                Box::pin(fut::ready(Ok(partitions)))
            }
            Ok(Some(partitions)) => {
                // The leader's sync made the group Stable: persist the new
                // generation, then answer everyone waiting on it.
                self.assigned_counts = self.subscribed_counts();
                let generation = self.group.generation_id;
                let record = GroupRecord::Group {
                    group: self.group_id.clone(),
                    value: Some(self.group.to_metadata(self.clock.now_ms())),
                };
                Box::pin(self.write(vec![record]).map(move |written, act, _| {
                    let current = act.group.generation_id == generation
                        && act.group.state == GroupState::Stable;
                    // Only this generation's followers: a later one's wait for theirs.
                    let waiting: Vec<String> = act
                        .pending_syncs
                        .iter()
                        .filter(|(_, (g, _))| *g == generation)
                        .map(|(id, _)| id.clone())
                        .collect();
                    for id in waiting {
                        let Some((_, tx)) = act.pending_syncs.remove(&id) else {
                            continue;
                        };
                        let answer = match (&written, current) {
                            (Err(e), _) => Err(e.clone()),
                            (Ok(()), false) => Err(GroupError::RebalanceInProgress),
                            (Ok(()), true) => Ok(act
                                .group
                                .members
                                .get(&id)
                                .map(|m| m.assignment.clone())
                                .unwrap_or_default()),
                        };
                        let _ = tx.send(answer);
                    }
                    written.map(|()| partitions)
                }))
            }
        }
    }
}

impl Handler<Heartbeat> for GroupCoordinator {
    type Result = GroupResult<()>;

    fn handle(&mut self, msg: Heartbeat, ctx: &mut Context<Self>) -> Self::Result {
        self.check_up()?;
        let result = self
            .group
            .heartbeat(&msg.member_id, msg.generation_id, self.clock.now_ms());
        self.arm_timer(ctx);
        result
    }
}

impl Handler<LeaveGroup> for GroupCoordinator {
    type Result = GroupResult<()>;

    fn handle(&mut self, msg: LeaveGroup, ctx: &mut Context<Self>) -> Self::Result {
        self.check_up()?;
        let before = self.group.state;
        self.group.leave(&msg.member_id, self.clock.now_ms())?;
        log::info!("group {}: {} left", self.group_id, msg.member_id);
        self.settle(before, ctx);
        Ok(())
    }
}

impl Handler<CommitOffsets> for GroupCoordinator {
    type Result = ResponseActFuture<Self, GroupResult<()>>;

    fn handle(&mut self, msg: CommitOffsets, _: &mut Context<Self>) -> Self::Result {
        if let Err(e) = self.check_offsets_kept() {
            return Box::pin(fut::ready(Err(e)));
        }
        if let Err(e) = self.check_commit(&msg) {
            return Box::pin(fut::ready(Err(e)));
        }
        if msg.offsets.is_empty() {
            return Box::pin(fut::ready(Ok(())));
        }
        let now = self.clock.now_ms();
        let records = msg
            .offsets
            .into_iter()
            .map(|c| GroupRecord::Offset {
                group: self.group_id.clone(),
                partition: c.partition,
                value: Some(CommittedOffset {
                    offset: c.offset,
                    leader_epoch: LeaderEpoch::UNKNOWN,
                    metadata: c.metadata,
                    commit_timestamp_ms: now,
                }),
            })
            .collect();
        Box::pin(self.write(records))
    }
}

impl Handler<FetchOffsets> for GroupCoordinator {
    type Result = ResponseFuture<GroupResult<CommittedOffsets>>;

    /// Answers once every write begun before has been applied (see
    /// `pending_fetches`). A coordinator that is down says so: "no committed
    /// offset" would send its consumers to `auto.offset.reset`.
    fn handle(&mut self, msg: FetchOffsets, _: &mut Context<Self>) -> Self::Result {
        if self.finished_through >= self.write_seq {
            let offsets = self.check_up().map(|()| self.committed_offsets(msg));
            return Box::pin(async move { offsets });
        }
        let (tx, rx) = oneshot::channel();
        self.pending_fetches.push((self.write_seq, msg, tx));
        // Parked fetches are answered even across a restart (from the log); the
        // sender is dropped only with the actor, when the node shuts down.
        Box::pin(Self::park(rx))
    }
}

impl Handler<DeleteOffsets> for GroupCoordinator {
    type Result = ResponseActFuture<Self, GroupResult<Vec<(TopicPartition, GroupResult<()>)>>>;

    fn handle(&mut self, msg: DeleteOffsets, _: &mut Context<Self>) -> Self::Result {
        if let Err(e) = self.check_offsets_kept() {
            return Box::pin(fut::ready(Err(e)));
        }
        let subscribed = self.subscribed_counts();
        let outcomes: Vec<(TopicPartition, GroupResult<()>)> = msg
            .partitions
            .into_iter()
            .map(|tp| {
                let outcome = if subscribed.contains_key(&tp.topic) {
                    Err(GroupError::GroupSubscribedToTopic(tp.topic.clone()))
                } else {
                    Ok(())
                };
                (tp, outcome)
            })
            .collect();
        // Only offsets that exist need a tombstone; the others are gone already.
        let records: Vec<GroupRecord> = outcomes
            .iter()
            .filter(|(tp, outcome)| outcome.is_ok() && self.snapshot.offsets.contains_key(tp))
            .map(|(tp, _)| GroupRecord::Offset {
                group: self.group_id.clone(),
                partition: tp.clone(),
                value: None,
            })
            .collect();
        if records.is_empty() {
            return Box::pin(fut::ready(Ok(outcomes)));
        }
        Box::pin(
            self.write(records)
                .map(move |written, _, _| written.map(|()| outcomes)),
        )
    }
}

impl Handler<DescribeGroup> for GroupCoordinator {
    type Result = MessageResult<DescribeGroup>;

    fn handle(&mut self, _: DescribeGroup, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.describe())
    }
}

impl Handler<RemoveGroup> for GroupCoordinator {
    type Result = ResponseActFuture<Self, GroupResult<()>>;

    fn handle(&mut self, _: RemoveGroup, _: &mut Context<Self>) -> Self::Result {
        if let Err(e) = self.check_up() {
            return Box::pin(fut::ready(Err(e)));
        }
        if !self.group.members.is_empty() {
            let n = self.group.members.len();
            return Box::pin(fut::ready(Err(GroupError::NonEmptyGroup(n))));
        }
        let mut records: Vec<GroupRecord> = self
            .snapshot
            .offsets
            .keys()
            .map(|tp| GroupRecord::Offset {
                group: self.group_id.clone(),
                partition: tp.clone(),
                value: None,
            })
            .collect();
        records.push(GroupRecord::Group {
            group: self.group_id.clone(),
            value: None,
        });
        Box::pin(self.write(records).map(|written, act, _| {
            if written.is_ok() {
                act.group.state = GroupState::Dead;
                log::info!("group {} deleted", act.group_id);
            }
            written
        }))
    }
}

impl Handler<crate::metadata::TopicsChanged> for GroupCoordinator {
    type Result = ();

    fn handle(&mut self, msg: crate::metadata::TopicsChanged, ctx: &mut Context<Self>) {
        self.topics = msg.partitions;
        let settled = matches!(
            self.group.state,
            GroupState::Stable | GroupState::CompletingRebalance
        );
        if settled && self.subscribed_counts() != self.assigned_counts {
            log::info!(
                "group {}: subscribed topics changed, rebalancing",
                self.group_id
            );
            let before = self.group.state;
            self.group.request_rebalance(self.clock.now_ms());
            self.settle(before, ctx);
        }
    }
}

#[cfg(any(test, feature = "test-support"))]
impl Handler<Crash> for GroupCoordinator {
    type Result = ();

    fn handle(&mut self, _: Crash, ctx: &mut Context<Self>) {
        self.supervision.failed("a crash was injected".into());
        ctx.stop();
    }
}

#[cfg(any(test, feature = "test-support"))]
crate::supervision::answers_panic_hook!(GroupCoordinator);
