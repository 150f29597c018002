//! `GroupManager`: the registry of consumer groups. At startup it replays every
//! partition of `__consumer_offsets` into one snapshot per group and starts a
//! supervised [`GroupCoordinator`] for each (on a thread of their own); later it
//! starts one for each new group, routes callers to them, keeps them told of topic
//! changes, and answers the questions that span groups and partitions (list, lag,
//! offset resets).
//!
//! Supervised ([`crate::supervision`]): a restart keeps its map of coordinators (they
//! are supervised themselves, so every address in it stays valid, and forgetting one
//! would let a second coordinator start for its group) and its topic subscription;
//! once its budget is spent it answers every request with why.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use actix::prelude::*;
use futures::future::join_all;

use super::coordinator::{GroupCoordinator, OffsetsStore};
use super::membership::{GroupError, GroupState};
use super::messages::*;
use super::offsets_topic::{partition_for, GroupSnapshot, OFFSETS_TOPIC};
use super::{read_offsets_partition, TopicPartition};
use crate::broker_config::GroupConfig;
use crate::clock::Clock;
use crate::error::{BrokerError, BrokerResult};
use crate::metadata::TopicsChanged;
use crate::partition::{GetStatus, OffsetSpec, PartitionReplica};
use crate::requests::list_offsets::resolve;
use crate::requests::Routes;
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
    /// `__consumer_offsets`' partitions.
    stores: Vec<Addr<PartitionReplica>>,
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
        let mut snapshots: HashMap<String, GroupSnapshot> = HashMap::new();
        for (p, store) in route.partitions.iter().enumerate() {
            let groups = read_offsets_partition(store, p as i32).await?;
            snapshots.extend(groups);
        }
        snapshots.retain(|_, s| !s.is_empty());
        log::info!(
            "loaded {} consumer group(s) from {OFFSETS_TOPIC}",
            snapshots.len()
        );
        let topics = routes.metadata.image().partition_counts();
        let mut manager = GroupManager {
            config: Arc::new(config),
            routes,
            stores: route.partitions.to_vec(),
            coordinators: HashMap::new(),
            topics,
            arbiter: Arbiter::new(),
            clock,
            restarts,
            supervision: Supervision::new(ActorKind::GroupManager, restarts),
            watching: false,
        };
        for (group_id, snapshot) in snapshots {
            manager.start_coordinator(&group_id, snapshot);
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

    fn start_coordinator(
        &mut self,
        group_id: &str,
        snapshot: GroupSnapshot,
    ) -> Addr<GroupCoordinator> {
        let p = partition_for(group_id, self.stores.len() as i32);
        let coordinator = GroupCoordinator::new(
            group_id,
            self.config.clone(),
            OffsetsStore {
                replica: self.stores[p as usize].clone(),
                partition: p,
            },
            snapshot,
            self.topics.clone(),
            self.clock.clone(),
            self.restarts,
        );
        let addr = supervision::start_in_arbiter(&self.arbiter.handle(), coordinator);
        self.coordinators.insert(group_id.to_string(), addr.clone());
        addr
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
        if !msg.create {
            return Err(GroupError::GroupIdNotFound(msg.group_id));
        }
        Ok(self.start_coordinator(&msg.group_id, GroupSnapshot::default()))
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

/// The partitions of `topic` a reset or lag question is about.
fn topic_partitions(routes: &Routes, topic: &str) -> GroupResult<Vec<Addr<PartitionReplica>>> {
    let route = routes.topic(topic).map_err(|e| match e {
        BrokerError::UnknownTopic(t) => GroupError::UnknownTopic(t),
        other => GroupError::CoordinatorNotAvailable(other.to_string()),
    })?;
    Ok(route.partitions.to_vec())
}

/// What `spec` means in the partition (the request layer's one rule).
async fn list_offset(addr: &Addr<PartitionReplica>, spec: OffsetSpec) -> GroupResult<i64> {
    resolve(addr, spec)
        .await
        .map_err(|e| GroupError::CoordinatorNotAvailable(e.to_string()))
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
            let partitions = topic_partitions(&routes, &msg.topic)?;
            let wanted: Vec<i32> = match msg.partitions {
                Some(list) => list,
                None => (0..partitions.len() as i32).collect(),
            };
            let mut offsets = Vec::new();
            for p in wanted {
                let addr = usize::try_from(p)
                    .ok()
                    .and_then(|i| partitions.get(i))
                    .ok_or_else(|| GroupError::UnknownPartition {
                        topic: msg.topic.clone(),
                        partition: p,
                    })?;
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
            // Only now, with the offsets known, may the group come into being.
            let coordinator = manager
                .send(FindCoordinator {
                    group_id: msg.group_id.clone(),
                    create: true,
                })
                .await
                .map_err(GroupError::mailbox)??;
            let commit = CommitOffsets {
                committer: Committer::Standalone,
                offsets: offsets
                    .iter()
                    .map(|(tp, offset)| OffsetCommit {
                        partition: tp.clone(),
                        offset: *offset,
                        metadata: String::new(),
                    })
                    .collect(),
            };
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
            let owners: HashMap<&TopicPartition, (&str, &str)> = group
                .members
                .iter()
                .flat_map(|m| {
                    m.assignment
                        .iter()
                        .map(move |tp| (tp, (m.member_id.as_str(), m.client_id.as_str())))
                })
                .collect();
            let mut routes: HashMap<String, Vec<Addr<PartitionReplica>>> = HashMap::new();
            let mut lags = Vec::new();
            for (tp, committed) in &group.offsets {
                if !routes.contains_key(&tp.topic) {
                    // A deleted topic's offsets linger until the group is deleted.
                    let Ok(partitions) = topic_partitions(&lookup, &tp.topic) else {
                        continue;
                    };
                    routes.insert(tp.topic.clone(), partitions);
                }
                let Some(addr) = routes[&tp.topic].get(tp.partition as usize) else {
                    continue;
                };
                let status = addr.send(GetStatus).await.map_err(GroupError::mailbox)?;
                let owner = owners.get(tp);
                lags.push(PartitionLag {
                    partition: tp.clone(),
                    committed_offset: committed.offset,
                    log_end_offset: status.high_watermark,
                    lag_records: (status.high_watermark - committed.offset).max(0),
                    member_id: owner.map(|o| o.0.to_string()),
                    client_id: owner.map(|o| o.1.to_string()),
                });
            }
            Ok(lags)
        })
    }
}
