//! `ConsumerInstance`: a Kafka consumer that lives inside the broker, for clients
//! that cannot run one — REST clients (Confluent REST Proxy's v2 consumer
//! instances) and, later, WebSocket subscribers. It is a real group member: it joins
//! through the group's coordinator, heartbeats, rejoins the moment a rebalance
//! starts (the coordinator tells it), keeps a position per assigned partition,
//! fetches from the partition actors and commits to the group.
//!
//! Positions start at the group's committed offset, or per `auto.offset.reset`.
//! After a rebalance, partitions the instance keeps keep their positions (as
//! Kafka's cooperative protocol does), so a client that has fetched but not yet
//! committed does not see those records again — kept from one generation to the
//! next only: across a generation it missed, a partition may have had another
//! owner, and its position starts again from the committed offset. With `auto.commit.enable` the
//! instance commits what it has returned at the start of the next fetch, before
//! handing partitions back in a rebalance, and when it closes.
//!
//! The [`ConsumerRegistry`] finds instances by group and name and closes them when
//! idle past `consumer.instance.timeout.ms`.

pub mod messages;
pub mod registry;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures::channel::oneshot;
use futures::future::{join_all, select_all};
use tokio::sync::watch;

pub use messages::*;
pub use registry::ConsumerRegistry;

use crate::broker::{Broker, RouteTopic};
use crate::broker_config::ConsumerConfig;
use crate::error::BrokerError;
use crate::group::membership::JoinRequest;
use crate::group::offsets_topic::MemberOrigin;
use crate::group::{
    CommitOffsets, Committer, FetchOffsets, FindCoordinator, GroupCoordinator, GroupError,
    GroupManager, Heartbeat, JoinGroup, LeaveGroup, OffsetCommit, RebalanceNotice, SyncGroup,
    TopicPartition,
};
use crate::partition::{Fetch, FetchResult, ListOffsets, OffsetSpec, PartitionReplica};

/// The assignors an instance offers, in preference order (sticky first: a
/// rebalance moves as few partitions as it can).
const PROTOCOLS: [&str; 3] = ["sticky", "range", "roundrobin"];

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConsumerError {
    #[error("Consumer instance '{name}' not found in group '{group_id}'")]
    UnknownInstance { group_id: String, name: String },
    #[error("Consumer instance '{name}' already exists in group '{group_id}'")]
    InstanceExists { group_id: String, name: String },
    #[error("Too many consumer instances: consumer.instances.max = {0}")]
    TooManyInstances(usize),
    #[error("{0}")]
    IllegalState(String),
    #[error("Partition {topic}-{partition} is not assigned to this consumer instance")]
    NotAssigned { topic: String, partition: i32 },
    #[error("No committed offset for {topic}-{partition} and auto.offset.reset is none")]
    NoOffset { topic: String, partition: i32 },
    #[error(transparent)]
    Group(#[from] GroupError),
    #[error(transparent)]
    Broker(#[from] BrokerError),
    #[error("The consumer instance is closed")]
    Closed,
}

impl From<MailboxError> for ConsumerError {
    fn from(e: MailboxError) -> Self {
        ConsumerError::Broker(BrokerError::mailbox(e))
    }
}

pub struct ConsumerInstance {
    group_id: String,
    name: String,
    settings: InstanceSettings,
    config: ConsumerConfig,
    broker: Addr<Broker>,
    groups: Addr<GroupManager>,
    registry: Recipient<InstanceClosed>,
    coordinator: Option<Addr<GroupCoordinator>>,
    subscription: Vec<String>,
    /// With a pattern subscription, `subscription` is the topics it matches now.
    pattern: Option<regex::Regex>,
    /// Partitions assigned by hand (`Assign`), outside group management.
    manual: bool,
    member_id: Option<String>,
    generation_id: i32,
    assignment: Vec<TopicPartition>,
    /// Bumped whenever `assignment` is replaced: a fetch that started before may
    /// bring records of a partition lost and assigned again since.
    assignment_epoch: u64,
    /// The next offset to fetch per assigned partition; absent until first fetched.
    positions: BTreeMap<TopicPartition, i64>,
    joining: bool,
    /// A rebalance notice came while a join was under way: join again after it.
    rejoin_requested: bool,
    /// Bumped whenever the subscription changes: a join started before is stale.
    join_epoch: u64,
    join_waiters: Vec<oneshot::Sender<()>>,
    last_used: Instant,
    last_heartbeat: Instant,
    closed: bool,
    /// Told of every assignment change (a WebSocket group subscription watches it);
    /// an instance being watched does not expire while idle.
    assignment_watch: Option<watch::Sender<AssignmentState>>,
}

impl ConsumerInstance {
    pub fn new(
        group_id: &str,
        name: &str,
        settings: InstanceSettings,
        config: ConsumerConfig,
        broker: Addr<Broker>,
        groups: Addr<GroupManager>,
        registry: Recipient<InstanceClosed>,
    ) -> Self {
        ConsumerInstance {
            group_id: group_id.to_string(),
            name: name.to_string(),
            settings,
            config,
            broker,
            groups,
            registry,
            coordinator: None,
            subscription: Vec::new(),
            pattern: None,
            manual: false,
            member_id: None,
            generation_id: -1,
            assignment: Vec::new(),
            assignment_epoch: 0,
            positions: BTreeMap::new(),
            joining: false,
            rejoin_requested: false,
            join_epoch: 0,
            join_waiters: Vec::new(),
            last_used: Instant::now(),
            last_heartbeat: Instant::now(),
            closed: false,
            assignment_watch: None,
        }
    }

    fn committer(&self) -> Committer {
        match &self.member_id {
            Some(member_id) if !self.manual => Committer::Member {
                member_id: member_id.clone(),
                generation_id: self.generation_id,
            },
            _ => Committer::Standalone,
        }
    }

    /// Commits of every fetched position (what auto commit and an empty commit send).
    fn position_commits(&self) -> Vec<OffsetCommit> {
        self.positions
            .iter()
            .map(|(tp, offset)| OffsetCommit {
                partition: tp.clone(),
                offset: *offset,
                metadata: String::new(),
            })
            .collect()
    }

    fn auto_commit(&self) -> Option<(Addr<GroupCoordinator>, CommitOffsets)> {
        if !self.settings.auto_commit || self.positions.is_empty() {
            return None;
        }
        let coordinator = self.coordinator.clone()?;
        Some((
            coordinator,
            CommitOffsets {
                committer: self.committer(),
                offsets: self.position_commits(),
            },
        ))
    }

    /// Tells the watcher, if any, the assignment as it is now.
    fn publish_assignment(&self) {
        if let Some(w) = &self.assignment_watch {
            let state = AssignmentState {
                generation_id: self.generation_id,
                partitions: self.assignment.clone(),
            };
            w.send_if_modified(|current| {
                let changed = *current != state;
                *current = state;
                changed
            });
        }
    }

    fn watched(&self) -> bool {
        self.assignment_watch
            .as_ref()
            .is_some_and(|w| w.receiver_count() > 0)
    }

    fn wake_join_waiters(&mut self) {
        for w in self.join_waiters.drain(..) {
            let _ = w.send(());
        }
    }

    /// Joins (or rejoins) the group with the current subscription and syncs.
    fn rejoin(&mut self, ctx: &mut Context<Self>) {
        if self.subscription.is_empty() || self.closed || self.joining {
            return;
        }
        let find = self.coordinator_future();
        self.joining = true;
        self.rejoin_requested = false;
        let epoch = self.join_epoch;
        let commit = self.auto_commit();
        let request = JoinRequest {
            member_id: self.member_id.clone(),
            client_id: self.settings.client_id.clone(),
            client_host: format!("troupe:{}", self.name),
            origin: MemberOrigin::InBroker,
            session_timeout_ms: self.config.session_timeout_ms,
            rebalance_timeout_ms: self.config.session_timeout_ms,
            protocols: PROTOCOLS.iter().map(|p| p.to_string()).collect(),
            topics: self.subscription.clone(),
        };
        let notify = ctx.address().recipient();
        log::debug!(
            "consumer {}/{} joining as {:?}",
            self.group_id,
            self.name,
            request.member_id
        );
        let join = async move {
            if let Some((c, commit)) = commit {
                // Hand the partitions back with their positions committed.
                if let Ok(Err(e)) = c.send(commit).await {
                    log::debug!("commit before rejoining: {e}");
                }
            }
            let coordinator = match find.await {
                Ok(c) => c,
                Err(e) => return (None, None, Err(lookup_failed(e))),
            };
            let joined = coordinator
                .send(JoinGroup {
                    request,
                    notify: Some(notify),
                })
                .await
                .map_err(|e| GroupError::CoordinatorNotAvailable(e.to_string()))
                .and_then(|answer| answer);
            let joined = match joined {
                Ok(joined) => joined,
                Err(e) => return (Some(coordinator), None, Err(e)),
            };
            // From here on the member id is ours, whatever the sync answers.
            let synced = coordinator
                .send(SyncGroup {
                    member_id: joined.member_id.clone(),
                    generation_id: joined.generation_id,
                    assignment: None,
                })
                .await
                .map_err(|e| GroupError::CoordinatorNotAvailable(e.to_string()))
                .and_then(|answer| answer);
            (
                Some(coordinator),
                Some(joined.member_id),
                synced.map(|partitions| (joined.generation_id, partitions)),
            )
        };
        ctx.spawn(
            join.into_actor(self)
                .map(move |(coordinator, member_id, result), act, ctx| {
                    act.joining = false;
                    if let Some(c) = coordinator {
                        // The member id below (and the leave) belong to this one.
                        act.coordinator = Some(c);
                    }
                    log::debug!(
                        "consumer {}/{} join answered: {member_id:?} {:?}",
                        act.group_id,
                        act.name,
                        result.as_ref().map(|r| r.0)
                    );
                    if let Some(id) = member_id {
                        act.member_id = Some(id);
                    }
                    if act.closed {
                        // Closed while joining: leave with the member id just learned.
                        drop(act.leave());
                        ctx.stop();
                        return;
                    }
                    if act.join_epoch != epoch {
                        // The subscription changed meanwhile: join with the new one, or
                        // leave if there is none.
                        if act.subscription.is_empty() {
                            drop(act.leave());
                        } else {
                            act.rejoin(ctx);
                        }
                        return;
                    }
                    match result {
                        Ok((generation_id, partitions)) => {
                            log::debug!(
                        "consumer {}/{} joined generation {generation_id} with {partitions:?}",
                        act.group_id,
                        act.name
                    );
                            // Positions carry over only from the generation just
                            // before: in one this member missed (a sync that failed)
                            // its partitions may have gone to another member, which
                            // fetched and committed further.
                            if generation_id == act.generation_id + 1 {
                                act.positions.retain(|tp, _| partitions.contains(tp));
                            } else {
                                act.positions.clear();
                            }
                            act.generation_id = generation_id;
                            act.set_assignment(partitions);
                            act.last_heartbeat = Instant::now();
                            act.wake_join_waiters();
                            if act.rejoin_requested {
                                act.rejoin(ctx);
                            }
                        }
                        Err(GroupError::RebalanceInProgress)
                        | Err(GroupError::IllegalGeneration { .. }) => act.rejoin(ctx),
                        Err(GroupError::UnknownMemberId(_)) => {
                            act.member_id = None;
                            act.rejoin(ctx);
                        }
                        Err(e) => {
                            log::warn!(
                                "consumer {}/{} cannot join its group: {e}",
                                act.group_id,
                                act.name
                            );
                            act.wake_join_waiters();
                            // Try again at the next heartbeat tick.
                            act.member_id = None;
                            act.set_assignment(Vec::new());
                        }
                    }
                }),
        );
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        if self.watched() {
            self.last_used = Instant::now();
        }
        if self.last_used.elapsed() >= Duration::from_millis(self.config.instance_timeout_ms) {
            log::info!(
                "consumer instance {}/{} idle for {} ms: closing",
                self.group_id,
                self.name,
                self.config.instance_timeout_ms
            );
            drop(self.close(ctx));
            return;
        }
        if self.subscription.is_empty() || self.joining {
            return;
        }
        let Some(member_id) = self.member_id.clone() else {
            self.rejoin(ctx);
            return;
        };
        if self.last_heartbeat.elapsed() < Duration::from_millis(self.config.heartbeat_interval_ms)
        {
            return;
        }
        let Some(coordinator) = self.coordinator.clone() else {
            return;
        };
        self.last_heartbeat = Instant::now();
        let beat = coordinator.send(Heartbeat {
            member_id,
            generation_id: self.generation_id,
        });
        ctx.spawn(beat.into_actor(self).map(|result, act, ctx| match result {
            Ok(Ok(())) => {}
            Ok(Err(GroupError::UnknownMemberId(_))) => {
                act.member_id = None;
                act.rejoin(ctx);
            }
            Ok(Err(_)) => act.rejoin(ctx),
            Err(e) => log::warn!("heartbeat of {}/{}: {e}", act.group_id, act.name),
        }));
    }

    /// Leaves the group (committing first with auto commit) and forgets the
    /// subscription or assignment.
    fn leave(&mut self) -> LeaveFuture {
        self.join_epoch += 1;
        let done = self.drop_membership();
        self.subscription.clear();
        self.pattern = None;
        self.manual = false;
        done
    }

    /// Leaves the group (committing first with auto commit) and forgets the
    /// assignment, keeping the subscription.
    /// The answer is the leave itself; it runs on its own task, so it finishes even
    /// if this instance stops now — await it only to know when it is done.
    fn drop_membership(&mut self) -> LeaveFuture {
        let commit = self.auto_commit();
        let leave = match (&self.member_id, &self.coordinator) {
            (Some(member_id), Some(c)) if !self.manual => Some((c.clone(), member_id.clone())),
            _ => None,
        };
        self.set_assignment(Vec::new());
        self.positions.clear();
        self.member_id = None;
        self.generation_id = -1;
        self.wake_join_waiters();
        let task = actix::spawn(async move {
            if let Some((c, commit)) = commit {
                let _ = c.send(commit).await;
            }
            if let Some((c, member_id)) = leave {
                let _ = c.send(LeaveGroup { member_id }).await;
            }
        });
        Box::pin(async move {
            let _ = task.await;
        })
    }

    /// Closes the instance; the answer completes once it has left its group.
    fn close(&mut self, ctx: &mut Context<Self>) -> LeaveFuture {
        if self.closed {
            return Box::pin(async {});
        }
        self.closed = true;
        self.registry.do_send(InstanceClosed {
            group_id: self.group_id.clone(),
            name: self.name.clone(),
        });
        if self.joining {
            // The join's answer brings the member id to leave with; it stops then.
            return Box::pin(async {});
        }
        let left = self.leave();
        ctx.stop();
        left
    }

    fn set_assignment(&mut self, partitions: Vec<TopicPartition>) {
        self.assignment = partitions;
        self.assignment_epoch += 1;
        self.publish_assignment();
    }

    fn check_assigned(&self, tp: &TopicPartition) -> ConsumerResult<()> {
        if self.assignment.contains(tp) {
            return Ok(());
        }
        Err(ConsumerError::NotAssigned {
            topic: tp.topic.clone(),
            partition: tp.partition,
        })
    }

    fn usable(&mut self) -> ConsumerResult<()> {
        if self.closed {
            return Err(ConsumerError::Closed);
        }
        self.last_used = Instant::now();
        Ok(())
    }

    /// The group's coordinator, asked of the manager (and created if need be) rather
    /// than taken from `coordinator`: a group deleted since that address was cached
    /// left a Dead coordinator behind, which refuses everyone and which the manager
    /// no longer routes to.
    fn coordinator_future(&self) -> CoordinatorFuture {
        find_coordinator(self.groups.clone(), self.group_id.clone())
    }

    /// The fetch step of a poll: everything it needs is copied out, so the mailbox
    /// keeps serving (heartbeats, rebalances) while it waits for data.
    fn fetch(
        &mut self,
        max_bytes: usize,
        timeout_ms: u64,
    ) -> ResponseActFuture<Self, ConsumerResult<Vec<ConsumedRecord>>> {
        let Some(coordinator) = self.coordinator.clone() else {
            return Box::pin(fut::ready(Ok(Vec::new())));
        };
        let plan = FetchPlan {
            broker: self.broker.clone(),
            coordinator,
            find: Some(self.coordinator_future()),
            found: None,
            assignment: self.assignment.clone(),
            positions: self.positions.clone(),
            commit: self.auto_commit().map(|(_, commit)| commit),
            reset: self.settings.auto_offset_reset,
        };
        let epoch = self.assignment_epoch;
        let fetched = plan.run(max_bytes, timeout_ms);
        Box::pin(
            fetched
                .into_actor(self)
                .map(move |(found, result), act, _| {
                    if found.is_some() {
                        act.coordinator = found;
                    }
                    let fetched = result?;
                    let mut records = Vec::new();
                    for (tp, from, batch) in fetched {
                        if !act.assignment.contains(&tp) {
                            continue;
                        }
                        match act.positions.get(&tp) {
                            // A seek or another poll moved the position meanwhile.
                            Some(&p) if p != from => continue,
                            // Lost and assigned again meanwhile: its position starts over
                            // from the committed offset, which may be past these.
                            None if act.assignment_epoch != epoch => continue,
                            _ => {}
                        }
                        let next = batch.last().map_or(from, |r| r.record.offset + 1);
                        act.positions.insert(tp, next);
                        records.extend(batch);
                    }
                    Ok(records)
                }),
        )
    }
}

type CoordinatorFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = ConsumerResult<Addr<GroupCoordinator>>>>>;

fn find_coordinator(groups: Addr<GroupManager>, group_id: String) -> CoordinatorFuture {
    Box::pin(async move {
        Ok(groups
            .send(FindCoordinator {
                group_id,
                create: true,
            })
            .await??)
    })
}

/// A failed coordinator lookup, as the join loop handles errors.
fn lookup_failed(e: ConsumerError) -> GroupError {
    match e {
        ConsumerError::Group(e) => e,
        other => GroupError::CoordinatorNotAvailable(other.to_string()),
    }
}

/// Sends a commit to the cached coordinator. If the group was deleted since (its
/// Dead coordinator answers GROUP_ID_NOT_FOUND, or it is gone), the group is looked
/// up again — which creates it anew, as a commit to an unknown group does in Kafka —
/// and the commit sent there. Answers the new coordinator, if it took one.
async fn send_commit(
    cached: Addr<GroupCoordinator>,
    find: CoordinatorFuture,
    commit: CommitOffsets,
) -> (Option<Addr<GroupCoordinator>>, ConsumerResult<()>) {
    match cached.send(commit.clone()).await {
        Ok(Err(GroupError::GroupIdNotFound(_))) | Err(_) => {}
        Ok(answer) => return (None, answer.map_err(ConsumerError::from)),
    }
    let fresh = match find.await {
        Ok(c) => c,
        Err(e) => return (None, Err(e)),
    };
    let answer = match fresh.send(commit).await {
        Ok(answer) => answer.map_err(ConsumerError::from),
        Err(e) => Err(e.into()),
    };
    (Some(fresh), answer)
}

/// The data a poll works from: a copy of the instance's state at its start.
struct FetchPlan {
    broker: Addr<Broker>,
    coordinator: Addr<GroupCoordinator>,
    /// To look the group up again if the auto commit finds it deleted; and the
    /// coordinator found then.
    find: Option<CoordinatorFuture>,
    found: Option<Addr<GroupCoordinator>>,
    assignment: Vec<TopicPartition>,
    positions: BTreeMap<TopicPartition, i64>,
    commit: Option<CommitOffsets>,
    reset: ResetPolicy,
}

type Fetched = Vec<(TopicPartition, i64, Vec<ConsumedRecord>)>;

/// A leave under way (it runs on its own task; awaiting it is optional).
type LeaveFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>;

impl FetchPlan {
    /// Answers the fetched records, and the group's new coordinator if the old one
    /// turned out to be of a deleted group.
    async fn run(
        mut self,
        max_bytes: usize,
        timeout_ms: u64,
    ) -> (Option<Addr<GroupCoordinator>>, ConsumerResult<Fetched>) {
        let result = self.fetch(max_bytes, timeout_ms).await;
        (self.found, result)
    }

    async fn fetch(&mut self, max_bytes: usize, timeout_ms: u64) -> ConsumerResult<Fetched> {
        if let (Some(commit), Some(find)) = (self.commit.take(), self.find.take()) {
            let (found, answer) = send_commit(self.coordinator.clone(), find, commit).await;
            if let Err(e) = answer {
                log::debug!("auto commit: {e}");
            }
            if let Some(c) = found {
                self.coordinator = c.clone();
                self.found = Some(c);
            }
        }
        if self.assignment.is_empty() {
            return Ok(Vec::new());
        }
        let routes = self.routes().await?;
        self.initial_positions(&routes).await?;
        let mut fetched = Vec::new();
        let reads = self.assignment.iter().map(|tp| {
            let addr = routes.get(tp).cloned();
            let offset = self.positions.get(tp).copied().unwrap_or(0);
            read(tp.clone(), addr, offset, max_bytes, 0, self.reset)
        });
        for r in join_all(reads).await {
            fetched.push(r?);
        }
        let none = fetched.iter().all(|(_, _, records)| records.is_empty());
        if none && timeout_ms > 0 {
            // Wait on every partition; the first to bring data answers.
            let mut waits: Vec<_> = fetched
                .iter()
                .map(|(tp, from, _)| {
                    Box::pin(read(
                        tp.clone(),
                        routes.get(tp).cloned(),
                        *from,
                        max_bytes,
                        timeout_ms,
                        self.reset,
                    ))
                })
                .collect();
            while !waits.is_empty() {
                let (first, _, rest) = select_all(waits).await;
                let first = first?;
                if !first.2.is_empty() {
                    fetched = vec![first];
                    break;
                }
                waits = rest;
            }
        }
        Ok(limit_bytes(fetched, max_bytes))
    }

    async fn routes(&self) -> ConsumerResult<BTreeMap<TopicPartition, Addr<PartitionReplica>>> {
        let mut topics: Vec<&String> = self.assignment.iter().map(|tp| &tp.topic).collect();
        topics.dedup();
        let mut routes = BTreeMap::new();
        for topic in topics {
            // A subscribed topic that is gone has no partitions to read.
            let Ok(route) = self
                .broker
                .send(RouteTopic {
                    name: topic.clone(),
                })
                .await?
            else {
                continue;
            };
            for (p, addr) in route.partitions.iter().cloned().enumerate() {
                routes.insert(TopicPartition::new(topic, p as i32), addr);
            }
        }
        Ok(routes)
    }

    /// Positions for partitions fetched for the first time: the committed offset,
    /// else per `auto.offset.reset`.
    async fn initial_positions(
        &mut self,
        routes: &BTreeMap<TopicPartition, Addr<PartitionReplica>>,
    ) -> ConsumerResult<()> {
        let missing: Vec<TopicPartition> = self
            .assignment
            .iter()
            .filter(|tp| !self.positions.contains_key(*tp))
            .cloned()
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let committed = self
            .coordinator
            .send(FetchOffsets {
                partitions: Some(missing.clone()),
            })
            .await?;
        for tp in missing {
            let offset = match committed.get(&tp) {
                Some(c) => c.offset,
                None => reset_offset(&tp, routes.get(&tp), self.reset).await?,
            };
            self.positions.insert(tp, offset);
        }
        Ok(())
    }
}

/// Where a partition without a usable committed offset starts, per Kafka's
/// `auto.offset.reset` (`None` is an error).
pub async fn reset_offset(
    tp: &TopicPartition,
    addr: Option<&Addr<PartitionReplica>>,
    reset: ResetPolicy,
) -> ConsumerResult<i64> {
    let spec = match reset {
        ResetPolicy::Earliest => OffsetSpec::Earliest,
        ResetPolicy::Latest => OffsetSpec::Latest,
        ResetPolicy::None => {
            return Err(ConsumerError::NoOffset {
                topic: tp.topic.clone(),
                partition: tp.partition,
            })
        }
    };
    let Some(addr) = addr else {
        return Ok(0);
    };
    Ok(addr.send(ListOffsets(spec)).await??.map_or(0, |(o, _)| o))
}

/// The offset of the first record at or after `timestamp_ms`, or the log end when no
/// record is that recent (Kafka's consumer seeks there too: nothing older is wanted).
async fn offset_for_time(
    tp: &TopicPartition,
    addr: Option<&Addr<PartitionReplica>>,
    timestamp_ms: i64,
) -> ConsumerResult<i64> {
    let Some(addr) = addr else {
        return Err(ConsumerError::Broker(BrokerError::UnknownPartition {
            topic: tp.topic.clone(),
            partition: tp.partition,
        }));
    };
    if let Some((offset, _)) = addr
        .send(ListOffsets(OffsetSpec::Timestamp(timestamp_ms)))
        .await??
    {
        return Ok(offset);
    }
    Ok(addr
        .send(ListOffsets(OffsetSpec::Latest))
        .await??
        .map_or(0, |(o, _)| o))
}

/// Reads one partition from `offset`; an offset retention has passed is reset per
/// the policy (and the records from there returned).
async fn read(
    tp: TopicPartition,
    addr: Option<Addr<PartitionReplica>>,
    offset: i64,
    max_bytes: usize,
    max_wait_ms: u64,
    reset: ResetPolicy,
) -> ConsumerResult<(TopicPartition, i64, Vec<ConsumedRecord>)> {
    let Some(addr) = addr else {
        return Ok((tp, offset, Vec::new()));
    };
    let fetch = |offset| Fetch {
        offset,
        max_bytes,
        max_wait_ms,
    };
    let (from, result): (i64, FetchResult) = match addr.send(fetch(offset)).await? {
        Ok(r) => (offset, r),
        Err(BrokerError::OffsetOutOfRange { .. }) if reset != ResetPolicy::None => {
            let from = reset_offset(&tp, Some(&addr), reset).await?;
            (from, addr.send(fetch(from)).await??)
        }
        Err(e) => return Err(e.into()),
    };
    let records = result
        .data
        .records_from(from)
        .map_err(|e| BrokerError::Storage(format!("cannot decode stored records: {e}")))?
        .into_iter()
        .map(|record| ConsumedRecord {
            topic: tp.topic.clone(),
            partition: tp.partition,
            record,
        })
        .collect();
    Ok((tp, from, records))
}

/// Keeps records, partition by partition, up to `max_bytes` of keys and values —
/// and always at least one, so a large record cannot stall a consumer.
fn limit_bytes(fetched: Fetched, max_bytes: usize) -> Fetched {
    let mut total = 0usize;
    let mut out = Vec::new();
    let mut any = false;
    for (tp, from, records) in fetched {
        let mut kept = Vec::new();
        for r in records {
            let size = r.record.record.key.as_ref().map_or(0, Vec::len)
                + r.record.record.value.as_ref().map_or(0, Vec::len);
            if any && total + size > max_bytes {
                break;
            }
            total += size;
            any = true;
            kept.push(r);
        }
        out.push((tp, from, kept));
    }
    out
}

impl Actor for ConsumerInstance {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let tick_ms = self
            .config
            .heartbeat_interval_ms
            .min(self.config.instance_timeout_ms / 4)
            .clamp(10, 1_000);
        ctx.run_interval(Duration::from_millis(tick_ms), |act, ctx| act.tick(ctx));
    }
}

impl Handler<crate::broker::TopicsChanged> for ConsumerInstance {
    type Result = ();

    fn handle(&mut self, msg: crate::broker::TopicsChanged, ctx: &mut Context<Self>) {
        self.match_pattern(&msg.partitions, ctx);
    }
}

impl Handler<RebalanceNotice> for ConsumerInstance {
    type Result = ();

    fn handle(&mut self, _: RebalanceNotice, ctx: &mut Context<Self>) {
        if self.joining {
            self.rejoin_requested = true;
        }
        self.rejoin(ctx);
    }
}

impl Handler<GetInstanceInfo> for ConsumerInstance {
    type Result = MessageResult<GetInstanceInfo>;

    fn handle(&mut self, _: GetInstanceInfo, _: &mut Context<Self>) -> Self::Result {
        MessageResult(InstanceInfo {
            group_id: self.group_id.clone(),
            name: self.name.clone(),
            settings: self.settings.clone(),
            member_id: self.member_id.clone(),
            generation_id: self.member_id.as_ref().map(|_| self.generation_id),
        })
    }
}

impl Handler<Subscribe> for ConsumerInstance {
    type Result = ResponseActFuture<Self, ConsumerResult<()>>;

    fn handle(&mut self, msg: Subscribe, ctx: &mut Context<Self>) -> Self::Result {
        if let Err(e) = self.usable() {
            return Box::pin(fut::ready(Err(e)));
        }
        if self.manual {
            return Box::pin(fut::ready(Err(ConsumerError::IllegalState(
                "Subscription to topics, partitions and pattern are mutually exclusive: \
                 this instance has assigned partitions"
                    .into(),
            ))));
        }
        let topics = match msg.to {
            Subscription::Topics(topics) => topics,
            Subscription::Pattern(pattern) => return self.subscribe_pattern(&pattern, ctx),
        };
        let mut topics = topics;
        topics.sort();
        topics.dedup();
        for t in &topics {
            if let Err(e) = crate::broker::validate_topic_name(t) {
                return Box::pin(fut::ready(Err(e.into())));
            }
        }
        self.join_epoch += 1;
        self.pattern = None;
        self.subscription = topics;
        let coordinator = self.coordinator_future();
        Box::pin(coordinator.into_actor(self).map(|c, act, ctx| {
            act.coordinator = Some(c?);
            act.joining_now(ctx);
            Ok(())
        }))
    }
}

impl ConsumerInstance {
    fn subscribe_pattern(
        &mut self,
        pattern: &str,
        ctx: &mut Context<Self>,
    ) -> ResponseActFuture<Self, ConsumerResult<()>> {
        let regex = match regex::Regex::new(&format!("^(?:{pattern})$")) {
            Ok(r) => r,
            Err(e) => {
                return Box::pin(fut::ready(Err(ConsumerError::Broker(
                    BrokerError::InvalidRequest(format!("invalid topic_pattern: {e}")),
                ))))
            }
        };
        self.join_epoch += 1;
        self.pattern = Some(regex);
        self.subscription.clear();
        let coordinator = self.coordinator_future();
        let topics = self
            .broker
            .send(crate::broker::SubscribeTopics(ctx.address().recipient()));
        let both = async move { Ok::<_, ConsumerError>((coordinator.await?, topics.await?)) };
        Box::pin(both.into_actor(self).map(|answer, act, ctx| {
            let (coordinator, counts) = answer?;
            act.coordinator = Some(coordinator);
            act.match_pattern(&counts, ctx);
            Ok(())
        }))
    }

    /// Re-evaluates a pattern subscription against the topics that exist now.
    fn match_pattern(&mut self, counts: &BTreeMap<String, i32>, ctx: &mut Context<Self>) {
        let Some(pattern) = &self.pattern else {
            return;
        };
        let topics: Vec<String> = counts
            .keys()
            .filter(|t| !crate::broker::is_internal_topic(t) && pattern.is_match(t))
            .cloned()
            .collect();
        if topics == self.subscription {
            return;
        }
        log::debug!(
            "consumer {}/{}: pattern now matches {topics:?}",
            self.group_id,
            self.name
        );
        self.join_epoch += 1;
        self.subscription = topics;
        if self.subscription.is_empty() {
            drop(self.drop_membership());
        } else {
            self.joining_now(ctx);
        }
    }

    /// Starts a join now: a running one is for an older subscription and its answer
    /// will be ignored (and the join repeated).
    fn joining_now(&mut self, ctx: &mut Context<Self>) {
        if !self.joining {
            self.rejoin(ctx);
        }
    }
}

impl Handler<GetSubscription> for ConsumerInstance {
    type Result = MessageResult<GetSubscription>;

    fn handle(&mut self, _: GetSubscription, _: &mut Context<Self>) -> Self::Result {
        self.last_used = Instant::now();
        MessageResult(self.subscription.clone())
    }
}

impl Handler<Unsubscribe> for ConsumerInstance {
    type Result = ConsumerResult<()>;

    fn handle(&mut self, _: Unsubscribe, _: &mut Context<Self>) -> Self::Result {
        self.usable()?;
        drop(self.leave());
        Ok(())
    }
}

impl Handler<Assign> for ConsumerInstance {
    type Result = ResponseActFuture<Self, ConsumerResult<()>>;

    fn handle(&mut self, msg: Assign, _: &mut Context<Self>) -> Self::Result {
        if let Err(e) = self.usable() {
            return Box::pin(fut::ready(Err(e)));
        }
        if !self.subscription.is_empty() || self.pattern.is_some() {
            return Box::pin(fut::ready(Err(ConsumerError::IllegalState(
                "Subscription to topics, partitions and pattern are mutually exclusive: \
                 this instance is subscribed"
                    .into(),
            ))));
        }
        let broker = self.broker.clone();
        let coordinator = self.coordinator_future();
        let partitions = msg.partitions;
        let check = async move {
            for tp in &partitions {
                let route = broker
                    .send(RouteTopic {
                        name: tp.topic.clone(),
                    })
                    .await??;
                if tp.partition < 0 || tp.partition as usize >= route.partitions.len() {
                    return Err(ConsumerError::Broker(BrokerError::UnknownPartition {
                        topic: tp.topic.clone(),
                        partition: tp.partition,
                    }));
                }
            }
            Ok((partitions, coordinator.await?))
        };
        Box::pin(check.into_actor(self).map(|checked, act, _| {
            let (mut partitions, coordinator) = checked?;
            partitions.sort();
            partitions.dedup();
            act.coordinator = Some(coordinator);
            act.manual = !partitions.is_empty();
            act.positions.retain(|tp, _| partitions.contains(tp));
            act.set_assignment(partitions);
            Ok(())
        }))
    }
}

impl Handler<GetAssignment> for ConsumerInstance {
    type Result = MessageResult<GetAssignment>;

    fn handle(&mut self, _: GetAssignment, _: &mut Context<Self>) -> Self::Result {
        self.last_used = Instant::now();
        MessageResult(self.assignment.clone())
    }
}

impl Handler<Poll> for ConsumerInstance {
    type Result = ResponseActFuture<Self, ConsumerResult<Vec<ConsumedRecord>>>;

    fn handle(&mut self, msg: Poll, _: &mut Context<Self>) -> Self::Result {
        if let Err(e) = self.usable() {
            return Box::pin(fut::ready(Err(e)));
        }
        if self.subscription.is_empty() && !self.manual && self.pattern.is_none() {
            return Box::pin(fut::ready(Err(ConsumerError::IllegalState(
                "Consumer is not subscribed to any topics or assigned any partitions".into(),
            ))));
        }
        if !self.joining {
            return self.fetch(msg.max_bytes, msg.timeout_ms);
        }
        // A rebalance is under way: wait for it (within the timeout), then fetch
        // with what is left of the timeout.
        let (tx, rx) = oneshot::channel();
        self.join_waiters.push(tx);
        let started = Instant::now();
        let wait = Duration::from_millis(msg.timeout_ms);
        Box::pin(
            async move {
                let _ = tokio::time::timeout(wait, rx).await;
            }
            .into_actor(self)
            .then(move |(), act, _| {
                let left = wait.saturating_sub(started.elapsed()).as_millis() as u64;
                act.fetch(msg.max_bytes, left)
            }),
        )
    }
}

impl Handler<Commit> for ConsumerInstance {
    type Result = ResponseActFuture<Self, ConsumerResult<Vec<OffsetAndMetadata>>>;

    fn handle(&mut self, msg: Commit, _: &mut Context<Self>) -> Self::Result {
        let prepared = (|| {
            self.usable()?;
            let offsets = match msg.offsets {
                Some(offsets) => {
                    for o in &offsets {
                        self.check_assigned(&o.partition)?;
                    }
                    offsets
                }
                None => self
                    .position_commits()
                    .into_iter()
                    .map(|c| OffsetAndMetadata {
                        partition: c.partition,
                        offset: c.offset,
                        metadata: c.metadata,
                    })
                    .collect(),
            };
            let coordinator = self.coordinator.clone().ok_or_else(|| {
                ConsumerError::IllegalState(
                    "Consumer is not subscribed to any topics or assigned any partitions".into(),
                )
            })?;
            Ok::<_, ConsumerError>((coordinator, offsets))
        })();
        let (coordinator, offsets) = match prepared {
            Ok(prepared) => prepared,
            Err(e) => return Box::pin(fut::ready(Err(e))),
        };
        let commit = CommitOffsets {
            committer: self.committer(),
            offsets: offsets
                .iter()
                .map(|o| OffsetCommit {
                    partition: o.partition.clone(),
                    offset: o.offset,
                    metadata: o.metadata.clone(),
                })
                .collect(),
        };
        let sent = send_commit(coordinator, self.coordinator_future(), commit);
        Box::pin(sent.into_actor(self).map(|(fresh, answer), act, _| {
            if fresh.is_some() {
                act.coordinator = fresh;
            }
            answer.map(|()| offsets)
        }))
    }
}

impl Handler<Committed> for ConsumerInstance {
    type Result = ResponseFuture<
        ConsumerResult<
            Vec<(
                TopicPartition,
                Option<crate::group::offsets_topic::CommittedOffset>,
            )>,
        >,
    >;

    fn handle(&mut self, msg: Committed, _: &mut Context<Self>) -> Self::Result {
        let usable = self.usable();
        let coordinator = self.coordinator_future();
        Box::pin(async move {
            usable?;
            let committed = coordinator
                .await?
                .send(FetchOffsets {
                    partitions: Some(msg.partitions.clone()),
                })
                .await?;
            Ok(msg
                .partitions
                .into_iter()
                .map(|tp| {
                    let c = committed.get(&tp).cloned();
                    (tp, c)
                })
                .collect())
        })
    }
}

impl Handler<Seek> for ConsumerInstance {
    type Result = ResponseActFuture<Self, ConsumerResult<()>>;

    fn handle(&mut self, msg: Seek, _: &mut Context<Self>) -> Self::Result {
        let checked = (|| {
            self.usable()?;
            for (tp, to) in &msg.seeks {
                self.check_assigned(tp)?;
                if let SeekTo::Offset(o) = to {
                    if *o < 0 {
                        return Err(ConsumerError::Broker(BrokerError::InvalidRequest(format!(
                            "offset {o} for {}-{} is negative",
                            tp.topic, tp.partition
                        ))));
                    }
                }
            }
            Ok(())
        })();
        if let Err(e) = checked {
            return Box::pin(fut::ready(Err(e)));
        }
        let broker = self.broker.clone();
        let resolve = async move {
            let mut resolved = Vec::new();
            for (tp, to) in msg.seeks {
                let offset = match to {
                    SeekTo::Offset(o) => o,
                    SeekTo::Beginning | SeekTo::End => {
                        let route = broker
                            .send(RouteTopic {
                                name: tp.topic.clone(),
                            })
                            .await??;
                        let spec = if to == SeekTo::Beginning {
                            ResetPolicy::Earliest
                        } else {
                            ResetPolicy::Latest
                        };
                        reset_offset(&tp, route.partitions.get(tp.partition as usize), spec).await?
                    }
                    SeekTo::Timestamp(ms) => {
                        let route = broker
                            .send(RouteTopic {
                                name: tp.topic.clone(),
                            })
                            .await??;
                        offset_for_time(&tp, route.partitions.get(tp.partition as usize), ms)
                            .await?
                    }
                };
                resolved.push((tp, offset));
            }
            Ok::<_, ConsumerError>(resolved)
        };
        Box::pin(resolve.into_actor(self).map(|resolved, act, _| {
            for (tp, offset) in resolved? {
                if act.assignment.contains(&tp) {
                    act.positions.insert(tp, offset);
                }
            }
            Ok(())
        }))
    }
}

impl Handler<WatchAssignment> for ConsumerInstance {
    type Result = MessageResult<WatchAssignment>;

    fn handle(&mut self, _: WatchAssignment, _: &mut Context<Self>) -> Self::Result {
        let state = AssignmentState {
            generation_id: self.generation_id,
            partitions: self.assignment.clone(),
        };
        let watch = self
            .assignment_watch
            .get_or_insert_with(|| watch::channel(state).0);
        MessageResult(watch.subscribe())
    }
}

impl Handler<CloseInstance> for ConsumerInstance {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: CloseInstance, ctx: &mut Context<Self>) -> Self::Result {
        self.close(ctx)
    }
}
