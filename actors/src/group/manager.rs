//! `GroupManager`: the registry of consumer groups. A group's coordinator runs on
//! the broker that leads its partition of `__consumer_offsets`, as in Kafka. At
//! startup the manager replays every offsets partition this broker leads into one
//! snapshot per group and starts a supervised [`GroupCoordinator`] for each (on a
//! thread of their own); later it starts one for each new group of those
//! partitions, routes callers to them, keeps them told of topic changes, and answers
//! the questions that span groups and partitions (list, lag, offset resets). It
//! watches the image: an offsets partition this broker comes to lead is replayed
//! and its groups' coordinators started; one it stops leading has its coordinators
//! unloaded (they answer NOT_COORDINATOR, and their members find the new one).
//!
//! Supervised ([`crate::supervision`]): a restart keeps its map of coordinators (they
//! are supervised themselves, so every address in it stays valid, and forgetting one
//! would let a second coordinator start for its group) and its topic subscription;
//! once its budget is spent it answers every request with why.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use actix::prelude::*;
use futures::future::join_all;

use super::coordinator::{GroupCoordinator, OffsetsStore, Unload};
use super::membership::{GroupError, GroupState};
use super::messages::*;
use super::offsets_topic::{partition_for, GroupSnapshot, OFFSETS_TOPIC};
use super::{read_offsets_partition, TopicPartition};
use crate::broker_config::GroupConfig;
use crate::clock::Clock;
use crate::error::{BrokerError, BrokerResult};
use crate::metadata::TopicsChanged;
use crate::partition::{OffsetSpec, PartitionReplica};
use crate::requests::list_offsets::resolve;
use crate::requests::{Leader, Routes};
use crate::supervision::{self, ActorKind, RestartPolicy, Supervise, Supervision};

/// The longest group id accepted (ids appear in URLs and on-disk keys).
pub const MAX_GROUP_ID_CHARS: usize = 255;

pub fn validate_group_id(group_id: &str) -> GroupResult<()> {
    if group_id.is_empty() {
        return Err(GroupError::InvalidGroupId("the group id is empty".into()));
    }
    if group_id.chars().count() > MAX_GROUP_ID_CHARS {
        return Err(GroupError::InvalidGroupId(format!(
            "longer than {MAX_GROUP_ID_CHARS} characters"
        )));
    }
    if group_id.chars().any(char::is_control) {
        return Err(GroupError::InvalidGroupId(
            "control characters are not allowed".into(),
        ));
    }
    Ok(())
}

pub struct GroupManager {
    config: Arc<GroupConfig>,
    /// Where topics' partitions are (a read of the published image).
    routes: Routes,
    /// `__consumer_offsets`' partition count.
    offsets_partitions: i32,
    /// The offsets partitions this broker leads and has replayed, with their
    /// replicas: the groups it coordinates.
    led: BTreeMap<i32, Addr<PartitionReplica>>,
    coordinators: HashMap<String, Addr<GroupCoordinator>>,
    topics: BTreeMap<String, i32>,
    arbiter: Arbiter,
    /// Handed to every coordinator.
    clock: Clock,
    /// Told to the coordinators it starts.
    restarts: RestartPolicy,
    supervision: Supervision,
    /// Watching the image's topic changes (once: a restart keeps the watch).
    watching: bool,
}

impl GroupManager {
    /// Replays `__consumer_offsets` and starts the manager and a coordinator per
    /// group found. Fails (the broker must not serve groups half-loaded) if a
    /// partition cannot be read or holds records this version cannot decode. The
    /// coordinators read time from `clock`.
    pub async fn start(
        routes: Routes,
        config: GroupConfig,
        clock: Clock,
        restarts: RestartPolicy,
    ) -> BrokerResult<Addr<Self>> {
        let route = routes.topic(OFFSETS_TOPIC)?;
        let mut led = led_offsets_partitions(&routes);
        let mut snapshots: HashMap<String, GroupSnapshot> = HashMap::new();
        let mut moved = Vec::new();
        for (p, store) in &led {
            match read_offsets_partition(store, *p).await {
                Ok(groups) => snapshots.extend(groups),
                // The leadership moved while the node started (a restarted broker is
                // fenced again, and the metadata it replayed said it led): its groups
                // load where it went, and the image brings it back if it returns.
                Err(BrokerError::NotLeader { .. }) => moved.push(*p),
                Err(e) => return Err(e),
            }
        }
        if !moved.is_empty() {
            log::info!("{OFFSETS_TOPIC} partitions {moved:?} are no longer led here");
            led.retain(|p, _| !moved.contains(p));
        }
        snapshots.retain(|_, s| !s.is_empty());
        log::info!(
            "loaded {} consumer group(s) from {} {OFFSETS_TOPIC} partition(s) led here",
            snapshots.len(),
            led.len()
        );
        let topics = routes.metadata.image().partition_counts();
        let mut manager = GroupManager {
            config: Arc::new(config),
            routes,
            offsets_partitions: route.partition_count() as i32,
            led,
            coordinators: HashMap::new(),
            topics,
            arbiter: Arbiter::new(),
            clock,
            restarts,
            supervision: Supervision::new(ActorKind::GroupManager, restarts),
            watching: false,
        };
        for (group_id, snapshot) in snapshots {
            manager
                .start_coordinator(&group_id, snapshot)
                .map_err(|e| BrokerError::Internal(e.to_string()))?;
        }
        Ok(supervision::start(manager))
    }

    /// `Err` with the reason while the manager is down (its restart budget spent).
    fn check_up(&self) -> GroupResult<()> {
        match self.supervision.down() {
            None => Ok(()),
            Some(reason) => Err(GroupError::CoordinatorNotAvailable(format!(
                "the group manager is down: {reason}"
            ))),
        }
    }

    /// Starts `group_id`'s coordinator, if this broker leads its offsets partition.
    fn start_coordinator(
        &mut self,
        group_id: &str,
        snapshot: GroupSnapshot,
    ) -> GroupResult<Addr<GroupCoordinator>> {
        let p = partition_for(group_id, self.offsets_partitions);
        let Some(replica) = self.led.get(&p).cloned() else {
            return Err(GroupError::NotCoordinator(format!(
                "group {group_id} is coordinated by the leader of {OFFSETS_TOPIC}-{p}, another broker"
            )));
        };
        let coordinator = GroupCoordinator::new(
            group_id,
            self.config.clone(),
            OffsetsStore {
                replica,
                partition: p,
            },
            snapshot,
            self.topics.clone(),
            self.clock.clone(),
            self.restarts,
        );
        let addr = supervision::start_in_arbiter(&self.arbiter.handle(), coordinator);
        self.coordinators.insert(group_id.to_string(), addr.clone());
        Ok(addr)
    }
}

/// The offsets partitions this broker leads, with their replicas here.
fn led_offsets_partitions(routes: &Routes) -> BTreeMap<i32, Addr<PartitionReplica>> {
    let Ok(route) = routes.topic(OFFSETS_TOPIC) else {
        return BTreeMap::new();
    };
    let me = routes.metadata.image().node_id;
    (0..route.partition_count())
        .filter(|i| route.leaders[*i] == me)
        .filter_map(|i| Some((i as i32, route.partitions[i].clone()?)))
        .collect()
}

/// The offsets partitions this broker now leads (from its watch of the image).
#[derive(Message)]
#[rtype(result = "()")]
struct OffsetsLeadership(BTreeMap<i32, Addr<PartitionReplica>>);

impl Handler<OffsetsLeadership> for GroupManager {
    type Result = ();

    fn handle(&mut self, msg: OffsetsLeadership, ctx: &mut Context<Self>) {
        let now = msg.0;
        let lost: BTreeSet<i32> = self
            .led
            .keys()
            .filter(|p| !now.contains_key(p))
            .copied()
            .collect();
        if !lost.is_empty() {
            let count = self.offsets_partitions;
            self.coordinators.retain(|group, addr| {
                let moved = lost.contains(&partition_for(group, count));
                if moved {
                    addr.do_send(Unload(format!(
                        "this broker no longer leads {OFFSETS_TOPIC}-{}",
                        partition_for(group, count)
                    )));
                }
                !moved
            });
            self.led.retain(|p, _| !lost.contains(p));
            log::info!("no longer coordinating the groups of {OFFSETS_TOPIC} partitions {lost:?}");
        }
        let gained: Vec<(i32, Addr<PartitionReplica>)> = now
            .into_iter()
            .filter(|(p, _)| !self.led.contains_key(p))
            .collect();
        if gained.is_empty() {
            return;
        }
        // Replayed before any request for their groups is served (the mailbox waits).
        let replay = async move {
            let mut loaded = Vec::new();
            for (p, store) in gained {
                let groups = read_offsets_partition(&store, p).await;
                loaded.push((p, store, groups));
            }
            loaded
        };
        ctx.wait(fut::wrap_future::<_, Self>(replay).map(|loaded, act, _| {
            for (p, store, groups) in loaded {
                match groups {
                    Ok(groups) => {
                        act.led.insert(p, store);
                        let mut started = 0;
                        for (group_id, snapshot) in groups {
                            if !snapshot.is_empty() && !act.coordinators.contains_key(&group_id) {
                                started +=
                                    act.start_coordinator(&group_id, snapshot).is_ok() as usize;
                            }
                        }
                        log::info!(
                            "now coordinating {OFFSETS_TOPIC}-{p}: {started} group(s) loaded"
                        );
                    }
                    // Not led here, so its groups are refused; the next image tries again.
                    Err(e) => log::error!("cannot replay {OFFSETS_TOPIC}-{p}: {e}"),
                }
            }
        }));
    }
}

impl Actor for GroupManager {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if self.watching {
            return;
        }
        self.watching = true;
        self.routes
            .metadata
            .watch_partition_counts(self.topics.clone(), ctx.address().recipient());
        let routes = self.routes.clone();
        let mut view = routes.metadata.clone();
        let manager = ctx.address();
        let mut known: BTreeSet<i32> = self.led.keys().copied().collect();
        actix::spawn(async move {
            while view.changed().await && manager.connected() {
                let now = led_offsets_partitions(&routes);
                let keys: BTreeSet<i32> = now.keys().copied().collect();
                if keys != known {
                    known = keys;
                    manager.do_send(OffsetsLeadership(now));
                }
            }
        });
    }
}

/// The coordinators' thread ends with the manager itself, not with a stop its
/// supervisor would restart.
impl Drop for GroupManager {
    fn drop(&mut self) {
        self.arbiter.stop();
    }
}

impl Supervise for GroupManager {
    const KIND: ActorKind = ActorKind::GroupManager;
}

impl Supervised for GroupManager {
    fn restarting(&mut self, _: &mut Context<Self>) {
        // Its state is its maps, kept as they are; a spent budget leaves it down.
        let now = self.clock.monotonic();
        let _ = self.supervision.restarting_at(&self.name(), now);
    }
}

#[cfg(any(test, feature = "test-support"))]
supervision::answers_panic_hook!(GroupManager);

impl Handler<TopicsChanged> for GroupManager {
    type Result = ();

    fn handle(&mut self, msg: TopicsChanged, _: &mut Context<Self>) {
        if msg.partitions == self.topics || self.check_up().is_err() {
            return;
        }
        self.topics = msg.partitions.clone();
        for c in self.coordinators.values() {
            c.do_send(msg.clone());
        }
    }
}

impl Handler<FindCoordinator> for GroupManager {
    type Result = GroupResult<Addr<GroupCoordinator>>;

    fn handle(&mut self, msg: FindCoordinator, _: &mut Context<Self>) -> Self::Result {
        self.check_up()?;
        validate_group_id(&msg.group_id)?;
        if let Some(addr) = self.coordinators.get(&msg.group_id) {
            return Ok(addr.clone());
        }
        let p = partition_for(&msg.group_id, self.offsets_partitions);
        if !self.led.contains_key(&p) {
            return Err(GroupError::NotCoordinator(format!(
                "group {} is coordinated by the leader of {OFFSETS_TOPIC}-{p}, another broker",
                msg.group_id
            )));
        }
        if !msg.create {
            return Err(GroupError::GroupIdNotFound(msg.group_id));
        }
        self.start_coordinator(&msg.group_id, GroupSnapshot::default())
    }
}

impl Handler<ListGroups> for GroupManager {
    type Result = ResponseFuture<Vec<GroupDescription>>;

    fn handle(&mut self, _: ListGroups, _: &mut Context<Self>) -> Self::Result {
        // Down, it knows of no group it would serve (it has logged why).
        if self.check_up().is_err() {
            return Box::pin(async { Vec::new() });
        }
        let coordinators: Vec<_> = self.coordinators.values().cloned().collect();
        Box::pin(async move {
            let mut groups: Vec<GroupDescription> =
                join_all(coordinators.iter().map(|c| c.send(DescribeGroup)))
                    .await
                    .into_iter()
                    .filter_map(Result::ok)
                    .filter(|g| g.state != GroupState::Dead)
                    .collect();
            groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
            groups
        })
    }
}

impl Handler<DeleteGroup> for GroupManager {
    type Result = ResponseActFuture<Self, GroupResult<()>>;

    fn handle(&mut self, msg: DeleteGroup, _: &mut Context<Self>) -> Self::Result {
        if let Err(e) = self.check_up() {
            return Box::pin(fut::ready(Err(e)));
        }
        let Some(addr) = self.coordinators.get(&msg.group_id).cloned() else {
            return Box::pin(fut::ready(Err(GroupError::GroupIdNotFound(msg.group_id))));
        };
        let group_id = msg.group_id;
        Box::pin(
            async move { addr.send(RemoveGroup).await.map_err(GroupError::mailbox)? }
                .into_actor(self)
                .map(move |result, act, _| {
                    if result.is_ok() {
                        act.coordinators.remove(&group_id);
                    }
                    result
                }),
        )
    }
}

/// The partition count of `topic`, which a reset or lag question is about.
fn topic_partitions(routes: &Routes, topic: &str) -> GroupResult<i32> {
    let route = routes.topic(topic).map_err(|e| match e {
        BrokerError::UnknownTopic(t) => GroupError::UnknownTopic(t),
        other => GroupError::CoordinatorNotAvailable(other.to_string()),
    })?;
    Ok(route.partition_count() as i32)
}

/// `topic`-`partition`'s leader, wherever it is.
async fn leader_of(routes: &Routes, topic: &str, partition: i32) -> GroupResult<Leader> {
    routes
        .leader(topic, partition)
        .await
        .map_err(|e| GroupError::CoordinatorNotAvailable(e.to_string()))
}

/// What `spec` means in the partition (the request layer's one rule).
async fn list_offset(leader: &Leader, spec: OffsetSpec) -> GroupResult<i64> {
    resolve(leader, spec)
        .await
        .map_err(|e| GroupError::CoordinatorNotAvailable(e.to_string()))
}

/// A commit of `offsets` by nobody (a reset's: only an Empty group takes it).
pub fn standalone_commit(offsets: &[(TopicPartition, i64)]) -> CommitOffsets {
    CommitOffsets {
        committer: Committer::Standalone,
        offsets: offsets
            .iter()
            .map(|(tp, offset)| OffsetCommit {
                partition: tp.clone(),
                offset: *offset,
                metadata: String::new(),
            })
            .collect(),
    }
}

/// Where a reset puts each partition of `msg.topic` (all, or those listed): the
/// offsets to commit.
pub async fn reset_positions(
    routes: &Routes,
    msg: &ResetOffsets,
) -> GroupResult<Vec<(TopicPartition, i64)>> {
    let count = topic_partitions(routes, &msg.topic)?;
    let wanted: Vec<i32> = match &msg.partitions {
        Some(list) => list.clone(),
        None => (0..count).collect(),
    };
    let mut offsets = Vec::new();
    for p in wanted {
        if !(0..count).contains(&p) {
            return Err(GroupError::UnknownPartition {
                topic: msg.topic.clone(),
                partition: p,
            });
        }
        let addr = &leader_of(routes, &msg.topic, p).await?;
        let start = list_offset(addr, OffsetSpec::Earliest).await?;
        let end = list_offset(addr, OffsetSpec::Latest).await?;
        let offset = match msg.spec {
            ResetSpec::Earliest => start,
            ResetSpec::Latest => end,
            ResetSpec::Timestamp(t) => list_offset(addr, OffsetSpec::Timestamp(t)).await?,
            ResetSpec::Offset(o) => o.clamp(start, end),
        };
        offsets.push((TopicPartition::new(&msg.topic, p), offset));
    }
    Ok(offsets)
}

impl Handler<ResetOffsets> for GroupManager {
    type Result = ResponseFuture<GroupResult<Vec<(TopicPartition, i64)>>>;

    fn handle(&mut self, msg: ResetOffsets, ctx: &mut Context<Self>) -> Self::Result {
        let routes = self.routes.clone();
        let manager = ctx.address();
        let up = self.check_up();
        Box::pin(async move {
            up?;
            validate_group_id(&msg.group_id)?;
            let offsets = reset_positions(&routes, &msg).await?;
            // Only now, with the offsets known, may the group come into being.
            let coordinator = manager
                .send(FindCoordinator {
                    group_id: msg.group_id.clone(),
                    create: true,
                })
                .await
                .map_err(GroupError::mailbox)??;
            let commit = standalone_commit(&offsets);
            match coordinator
                .send(commit)
                .await
                .map_err(GroupError::mailbox)?
            {
                // A standalone commit is refused by a group with members.
                Err(GroupError::UnknownMemberId(_)) => {
                    let members = coordinator
                        .send(DescribeGroup)
                        .await
                        .map_err(GroupError::mailbox)?;
                    Err(GroupError::NonEmptyGroup(members.members.len()))
                }
                other => other.map(|()| offsets),
            }
        })
    }
}

impl Handler<GroupLag> for GroupManager {
    type Result = ResponseFuture<GroupResult<Vec<PartitionLag>>>;

    fn handle(&mut self, msg: GroupLag, _: &mut Context<Self>) -> Self::Result {
        let lookup = self.routes.clone();
        let coordinator = self.coordinators.get(&msg.group_id).cloned();
        let up = self.check_up();
        Box::pin(async move {
            up?;
            let coordinator = coordinator.ok_or(GroupError::GroupIdNotFound(msg.group_id))?;
            let group = coordinator
                .send(DescribeGroup)
                .await
                .map_err(GroupError::mailbox)?;
            lags_of(&lookup, &group).await
        })
    }
}

/// Each committed partition of `group`: its committed offset, its leader's high
/// watermark, the lag between them, and who is assigned it.
pub async fn lags_of(lookup: &Routes, group: &GroupDescription) -> GroupResult<Vec<PartitionLag>> {
    let owners: HashMap<&TopicPartition, (&str, &str)> = group
        .members
        .iter()
        .flat_map(|m| {
            m.assignment
                .iter()
                .map(move |tp| (tp, (m.member_id.as_str(), m.client_id.as_str())))
        })
        .collect();
    let mut counts: HashMap<String, i32> = HashMap::new();
    let mut lags = Vec::new();
    for (tp, committed) in &group.offsets {
        if !counts.contains_key(&tp.topic) {
            // A deleted topic's offsets linger until the group is deleted.
            let Ok(count) = topic_partitions(lookup, &tp.topic) else {
                continue;
            };
            counts.insert(tp.topic.clone(), count);
        }
        if tp.partition >= counts[&tp.topic] {
            continue;
        }
        let leader = leader_of(lookup, &tp.topic, tp.partition).await?;
        let high_watermark = list_offset(&leader, OffsetSpec::Latest).await?;
        let owner = owners.get(tp);
        lags.push(PartitionLag {
            partition: tp.clone(),
            committed_offset: committed.offset,
            log_end_offset: high_watermark,
            lag_records: (high_watermark - committed.offset).max(0),
            member_id: owner.map(|o| o.0.to_string()),
            client_id: owner.map(|o| o.1.to_string()),
        });
    }
    Ok(lags)
}
