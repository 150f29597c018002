//! Consumer groups as an administrator sees them: list, describe, delete, lag, and
//! resetting a group's committed offsets — answered by the group manager and each
//! group's coordinator. (Members join, sync and commit through their own protocol:
//! the consumer instances for REST and WebSocket clients, `membership.rs` for Kafka
//! clients.)
//!
//! A group coordinated by another broker (the leader of its `__consumer_offsets`
//! partition) is asked there over the Kafka protocol (`group/remote.rs`), and a list
//! gathers every broker's groups — unless a Kafka client asks: it asks each broker
//! itself, as Kafka's admin clients do, and a forwarded request never bounces.

use super::{Engine, Listener, RequestContext};
use crate::auth::acl::{Operation, ResourceType};
use crate::group::manager::{lags_of, reset_positions, standalone_commit};
use crate::group::remote::{list_remote, remote_coordinator, RemoteCoordinator};
use crate::group::{
    CoordinatorRef, DeleteGroup, DescribeGroup, FindCoordinator, GroupDescription, GroupError,
    GroupLag, GroupResult, GroupState, ListGroups, PartitionLag, ResetOffsets, ResetSpec,
    TopicPartition,
};

/// The group's coordinator on another broker, when it is there and `ctx` may be
/// forwarded.
fn elsewhere(engine: &Engine, ctx: &RequestContext, group_id: &str) -> Option<RemoteCoordinator> {
    if ctx.listener == Listener::Kafka {
        return None;
    }
    remote_coordinator(&engine.routes, group_id)
}

/// Every group `ctx` may describe.
pub async fn list(engine: &Engine, ctx: &RequestContext) -> GroupResult<Vec<GroupDescription>> {
    let mut groups = engine
        .groups
        .send(ListGroups)
        .await
        .map_err(GroupError::mailbox)?;
    if ctx.listener != Listener::Kafka {
        let image = engine.image();
        let others = image
            .brokers
            .values()
            .filter(|b| b.id != image.node_id && !b.fenced);
        for broker in others {
            // A broker that does not answer leaves its groups out, as Kafka's
            // admin client reports per broker.
            let Ok(ids) = list_remote(&engine.routes, broker.id).await else {
                continue;
            };
            for id in ids {
                let remote = RemoteCoordinator::at(&engine.routes, broker.id, &id);
                if let Ok(group) = remote.describe().await {
                    groups.push(group);
                }
            }
        }
        groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        groups.dedup_by(|a, b| a.group_id == b.group_id);
    }
    groups.retain(|g| engine.may(ctx, Operation::Describe, ResourceType::Group, &g.group_id));
    Ok(groups)
}

/// A group that exists (a dead one is not found).
pub async fn describe(
    engine: &Engine,
    ctx: &RequestContext,
    group_id: &str,
) -> GroupResult<GroupDescription> {
    engine.authorize_group(ctx, Operation::Describe, group_id)?;
    if let Some(remote) = elsewhere(engine, ctx, group_id) {
        return remote.describe().await;
    }
    let coordinator = engine
        .groups
        .send(FindCoordinator {
            group_id: group_id.to_string(),
            create: false,
        })
        .await
        .map_err(GroupError::mailbox)??;
    let group = coordinator
        .send(DescribeGroup)
        .await
        .map_err(GroupError::mailbox)?;
    if group.state == GroupState::Dead {
        return Err(GroupError::GroupIdNotFound(group_id.to_string()));
    }
    Ok(group)
}

/// Deletes an empty group (Delete on it).
pub async fn delete(engine: &Engine, ctx: &RequestContext, group_id: &str) -> GroupResult<()> {
    engine.authorize_group(ctx, Operation::Delete, group_id)?;
    if let Some(remote) = elsewhere(engine, ctx, group_id) {
        return remote.delete().await;
    }
    engine
        .groups
        .send(DeleteGroup {
            group_id: group_id.to_string(),
        })
        .await
        .map_err(GroupError::mailbox)?
}

/// Each committed partition's lag (log end minus committed offset): Describe on the
/// group, and only the topics `ctx` may describe.
pub async fn lag(
    engine: &Engine,
    ctx: &RequestContext,
    group_id: &str,
) -> GroupResult<Vec<PartitionLag>> {
    engine.authorize_group(ctx, Operation::Describe, group_id)?;
    let mut lags = lag_of_all(engine, ctx, group_id).await?;
    lags.retain(|l| {
        engine.may(
            ctx,
            Operation::Describe,
            ResourceType::Topic,
            &l.partition.topic,
        )
    });
    Ok(lags)
}

async fn lag_of_all(
    engine: &Engine,
    ctx: &RequestContext,
    group_id: &str,
) -> GroupResult<Vec<PartitionLag>> {
    if let Some(remote) = elsewhere(engine, ctx, group_id) {
        let group = remote.describe().await?;
        return lags_of(&engine.routes, &group).await;
    }
    engine
        .groups
        .send(GroupLag {
            group_id: group_id.to_string(),
        })
        .await
        .map_err(GroupError::mailbox)?
}

/// Sets the committed offsets of `topic`'s partitions (all, or those listed) of a
/// group with no members; answers the offsets set.
pub async fn reset_offsets(
    engine: &Engine,
    ctx: &RequestContext,
    group_id: &str,
    topic: String,
    partitions: Option<Vec<i32>>,
    spec: ResetSpec,
) -> GroupResult<Vec<(TopicPartition, i64)>> {
    engine.authorize_group(ctx, Operation::Read, group_id)?;
    engine.authorize_topic(ctx, Operation::Read, &topic)?;
    let reset = ResetOffsets {
        group_id: group_id.to_string(),
        topic,
        partitions,
        spec,
    };
    let Some(remote) = elsewhere(engine, ctx, group_id) else {
        return engine
            .groups
            .send(reset)
            .await
            .map_err(GroupError::mailbox)?;
    };
    crate::group::manager::validate_group_id(group_id)?;
    let offsets = reset_positions(&engine.routes, &reset).await?;
    let commit = standalone_commit(&offsets);
    let coordinator = CoordinatorRef::Remote(remote.clone());
    match coordinator
        .send(commit)
        .await
        .map_err(GroupError::mailbox)?
    {
        // A standalone commit is refused by a group with members.
        Err(GroupError::UnknownMemberId(_)) | Err(GroupError::IllegalGeneration { .. }) => {
            let members = remote
                .describe()
                .await
                .map(|g| g.members.len())
                .unwrap_or(0);
            Err(GroupError::NonEmptyGroup(members))
        }
        other => other.map(|()| offsets),
    }
}
