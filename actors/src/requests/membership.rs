//! A consumer group as its remote members drive it: clients that speak Kafka's classic
//! group protocol themselves (the Kafka listener's JoinGroup, SyncGroup, Heartbeat,
//! LeaveGroup, OffsetCommit, OffsetFetch and OffsetDelete), where REST and WebSocket
//! consumers have an in-broker instance do it for them (`consumers.rs`). Both meet in
//! the same [`GroupCoordinator`], so one group mixes them: the group's leader, whoever
//! it is, assigns to every member — a remote leader in its SyncGroup, an in-broker
//! one by leaving it to the broker's assignors.
//!
//! A member is [`MemberOrigin::Remote`]: it survives a broker restart (it gets its
//! session timeout to come back), and its client id and host are the connection's.
//! Groups are found as Kafka's coordinator finds them: a join of a new member or a
//! standalone commit may create the group; any other request to a group that does not
//! exist is the member's error (UNKNOWN_MEMBER_ID, or ILLEGAL_GENERATION for a commit),
//! and a fetch of its offsets finds none.

use crate::auth::acl::{Operation, ResourceType};
use std::collections::BTreeMap;

use actix::{Addr, Handler, Message};

use super::{Engine, RequestContext};
use crate::group::membership::{JoinRequest, JoinResult};
use crate::group::offsets_topic::{CommittedOffset, MemberOrigin};
use crate::group::{
    Assignment, CommitOffsets, Committer, DeleteOffsets, FetchOffsets, FindCoordinator,
    GroupCoordinator, GroupError, GroupResult, Heartbeat, JoinGroup, LeaveGroup, OffsetCommit,
    SyncGroup, TopicPartition,
};
use crate::ids::GenerationId;

/// What a remote member asks for when it joins (the rest of its identity is the
/// connection's, from the [`RequestContext`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Join {
    /// `None` (or empty) for a new member.
    pub member_id: Option<String>,
    pub session_timeout_ms: i64,
    pub rebalance_timeout_ms: i64,
    /// Assignor names in preference order.
    pub protocols: Vec<String>,
    pub topics: Vec<String>,
}

/// Each partition's outcome, in the order asked.
pub type PartitionOutcomes = Vec<(TopicPartition, GroupResult<()>)>;

/// Joins (or rejoins) the group; answers once the join phase completes. The leader's
/// answer lists every member's subscription, in-broker members' included.
pub async fn join(
    engine: &Engine,
    ctx: &RequestContext,
    group_id: &str,
    join: Join,
) -> GroupResult<JoinResult> {
    engine.authorize_group(ctx, Operation::Read, group_id)?;
    let member_id = join.member_id.filter(|id| !id.is_empty());
    let coordinator = match &member_id {
        None => existing_or_new(engine, group_id).await?,
        Some(id) => existing(engine, group_id)
            .await
            .map_err(unknown_member(id))?,
    };
    let request = JoinRequest {
        member_id,
        client_id: ctx.client_id.clone().unwrap_or_default(),
        client_host: client_host(ctx),
        origin: MemberOrigin::Remote,
        session_timeout_ms: join.session_timeout_ms,
        rebalance_timeout_ms: join.rebalance_timeout_ms,
        protocols: join.protocols,
        topics: join.topics,
    };
    coordinator
        .send(JoinGroup {
            request,
            notify: None,
        })
        .await
        .map_err(GroupError::mailbox)?
}

/// Syncs: the leader hands in the assignment (`None`: the broker's assignors make it),
/// a follower `None`. Answers the member's partitions once the leader has synced.
pub async fn sync(
    engine: &Engine,
    ctx: &RequestContext,
    group_id: &str,
    member_id: &str,
    generation_id: GenerationId,
    assignment: Option<Assignment>,
) -> GroupResult<Vec<TopicPartition>> {
    engine.authorize_group(ctx, Operation::Read, group_id)?;
    let sync = SyncGroup {
        member_id: member_id.to_string(),
        generation_id,
        assignment,
    };
    ask_as_member(engine, group_id, member_id, sync).await
}

/// A heartbeat; `RebalanceInProgress` tells the member to rejoin.
pub async fn heartbeat(
    engine: &Engine,
    ctx: &RequestContext,
    group_id: &str,
    member_id: &str,
    generation_id: GenerationId,
) -> GroupResult<()> {
    engine.authorize_group(ctx, Operation::Read, group_id)?;
    let heartbeat = Heartbeat {
        member_id: member_id.to_string(),
        generation_id,
    };
    ask_as_member(engine, group_id, member_id, heartbeat).await
}

pub async fn leave(
    engine: &Engine,
    ctx: &RequestContext,
    group_id: &str,
    member_id: &str,
) -> GroupResult<()> {
    engine.authorize_group(ctx, Operation::Read, group_id)?;
    let leave = LeaveGroup {
        member_id: member_id.to_string(),
    };
    ask_as_member(engine, group_id, member_id, leave).await
}

/// Commits offsets, durably before answering. Partitions the metadata image does not
/// have are refused each on its own (as Kafka does); the coordinator takes the rest
/// all or nothing. Read on the group, and on each partition's topic.
pub async fn commit(
    engine: &Engine,
    ctx: &RequestContext,
    group_id: &str,
    committer: Committer,
    offsets: Vec<OffsetCommit>,
) -> PartitionOutcomes {
    if let Err(denied) = engine.authorize_group(ctx, Operation::Read, group_id) {
        let refused = GroupError::from(denied);
        return offsets
            .into_iter()
            .map(|c| (c.partition, Err(refused.clone())))
            .collect();
    }
    let (known, mut outcomes) =
        split_known(engine, ctx, Operation::Read, offsets, |c| &c.partition);
    if known.is_empty() {
        return outcomes;
    }
    let found = match &committer {
        Committer::Standalone => existing_or_new(engine, group_id).await,
        // Kafka's answer to a member's commit to a group it has not heard of.
        Committer::Member { generation_id, .. } => {
            let given = *generation_id;
            existing(engine, group_id).await.map_err(|e| match e {
                GroupError::GroupIdNotFound(_) => GroupError::IllegalGeneration {
                    given,
                    current: GenerationId::NONE,
                },
                other => other,
            })
        }
    };
    let partitions: Vec<TopicPartition> = known.iter().map(|c| c.partition.clone()).collect();
    let answer = match found {
        Ok(coordinator) => coordinator
            .send(CommitOffsets {
                committer,
                offsets: known,
            })
            .await
            .unwrap_or_else(|e| Err(GroupError::mailbox(e))),
        Err(e) => Err(e),
    };
    outcomes.extend(partitions.into_iter().map(|tp| (tp, answer.clone())));
    outcomes
}

/// The group's committed offsets of `partitions` (`None`: all it has). A group that
/// does not exist has none. Describe on the group; only the topics `ctx` may
/// describe are answered.
pub async fn committed(
    engine: &Engine,
    ctx: &RequestContext,
    group_id: &str,
    partitions: Option<Vec<TopicPartition>>,
) -> GroupResult<BTreeMap<TopicPartition, CommittedOffset>> {
    engine.authorize_group(ctx, Operation::Describe, group_id)?;
    let coordinator = match existing(engine, group_id).await {
        Ok(c) => c,
        Err(GroupError::GroupIdNotFound(_)) => return Ok(BTreeMap::new()),
        Err(e) => return Err(e),
    };
    let mut offsets = coordinator
        .send(FetchOffsets { partitions })
        .await
        .map_err(GroupError::mailbox)??;
    offsets.retain(|tp, _| engine.may(ctx, Operation::Describe, ResourceType::Topic, &tp.topic));
    Ok(offsets)
}

/// Deletes the group's committed offsets of `partitions` (see [`DeleteOffsets`]).
/// The group's own refusal (it does not exist, its coordinator is down) is `Err`.
pub async fn delete_offsets(
    engine: &Engine,
    ctx: &RequestContext,
    group_id: &str,
    partitions: Vec<TopicPartition>,
) -> GroupResult<PartitionOutcomes> {
    engine.authorize_group(ctx, Operation::Delete, group_id)?;
    let coordinator = existing(engine, group_id).await?;
    let (known, mut outcomes) = split_known(engine, ctx, Operation::Read, partitions, |tp| tp);
    if known.is_empty() {
        return Ok(outcomes);
    }
    let deleted = coordinator
        .send(DeleteOffsets { partitions: known })
        .await
        .map_err(GroupError::mailbox)??;
    outcomes.extend(deleted);
    Ok(outcomes)
}

/// Splits `items` into those whose partition the metadata image has and whose topic
/// `ctx` may do `operation` on, and the refusal of each other one.
fn split_known<T>(
    engine: &Engine,
    ctx: &RequestContext,
    operation: Operation,
    items: Vec<T>,
    partition: impl Fn(&T) -> &TopicPartition,
) -> (Vec<T>, PartitionOutcomes) {
    let image = engine.image();
    let mut known = Vec::with_capacity(items.len());
    let mut refused = Vec::new();
    for item in items {
        let tp = partition(&item);
        if let Err(denied) = engine.authorize_topic(ctx, operation, &tp.topic) {
            refused.push((tp.clone(), Err(denied.into())));
            continue;
        }
        let exists = match image.topic(&tp.topic) {
            Err(_) => Err(GroupError::UnknownTopic(tp.topic.clone())),
            Ok(t) if tp.partition < 0 || tp.partition as usize >= t.partitions.len() => {
                Err(GroupError::UnknownPartition {
                    topic: tp.topic.clone(),
                    partition: tp.partition,
                })
            }
            Ok(_) => Ok(()),
        };
        match exists {
            Ok(()) => known.push(item),
            Err(e) => refused.push((tp.clone(), Err(e))),
        }
    }
    (known, refused)
}

/// Where a member's client connects from, as Kafka writes it (`/127.0.0.1`).
fn client_host(ctx: &RequestContext) -> String {
    ctx.client_address
        .map(|a| format!("/{}", a.ip()))
        .unwrap_or_default()
}

/// The coordinator of a group that exists.
async fn existing(engine: &Engine, group_id: &str) -> GroupResult<Addr<GroupCoordinator>> {
    find(engine, group_id, false).await
}

/// The coordinator of the group, started for it if it is new.
async fn existing_or_new(engine: &Engine, group_id: &str) -> GroupResult<Addr<GroupCoordinator>> {
    find(engine, group_id, true).await
}

async fn find(
    engine: &Engine,
    group_id: &str,
    create: bool,
) -> GroupResult<Addr<GroupCoordinator>> {
    engine
        .groups
        .send(FindCoordinator {
            group_id: group_id.to_string(),
            create,
        })
        .await
        .map_err(GroupError::mailbox)?
}

/// Asks the coordinator of the member's group; a group that does not exist does not
/// know the member either.
async fn ask_as_member<M, T>(
    engine: &Engine,
    group_id: &str,
    member_id: &str,
    msg: M,
) -> GroupResult<T>
where
    M: Message<Result = GroupResult<T>> + Send + 'static,
    T: Send + 'static,
    GroupCoordinator: Handler<M>,
{
    let coordinator = existing(engine, group_id)
        .await
        .map_err(unknown_member(member_id))?;
    coordinator.send(msg).await.map_err(GroupError::mailbox)?
}

/// A group that does not exist does not know the member either (Kafka's answer).
fn unknown_member(member_id: &str) -> impl Fn(GroupError) -> GroupError + '_ {
    move |e| match e {
        GroupError::GroupIdNotFound(_) => GroupError::UnknownMemberId(member_id.to_string()),
        other => other,
    }
}
