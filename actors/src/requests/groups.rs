//! Consumer groups as an administrator sees them: list, describe, delete, lag, and
//! resetting a group's committed offsets — answered by the group manager and each
//! group's coordinator. (Members join, sync and commit through their own protocol:
//! the consumer instances for REST and WebSocket clients, `membership.rs` for Kafka
//! clients.)

use super::{Engine, RequestContext};
use crate::group::{
    DeleteGroup, DescribeGroup, FindCoordinator, GroupDescription, GroupError, GroupLag,
    GroupResult, GroupState, ListGroups, PartitionLag, ResetOffsets, ResetSpec, TopicPartition,
};

pub async fn list(engine: &Engine, _ctx: &RequestContext) -> GroupResult<Vec<GroupDescription>> {
    engine
        .groups
        .send(ListGroups)
        .await
        .map_err(GroupError::mailbox)
}

/// A group that exists (a dead one is not found).
pub async fn describe(
    engine: &Engine,
    _ctx: &RequestContext,
    group_id: &str,
) -> GroupResult<GroupDescription> {
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

/// Deletes an empty group.
pub async fn delete(engine: &Engine, _ctx: &RequestContext, group_id: &str) -> GroupResult<()> {
    engine
        .groups
        .send(DeleteGroup {
            group_id: group_id.to_string(),
        })
        .await
        .map_err(GroupError::mailbox)?
}

/// Each committed partition's lag (log end minus committed offset).
pub async fn lag(
    engine: &Engine,
    _ctx: &RequestContext,
    group_id: &str,
) -> GroupResult<Vec<PartitionLag>> {
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
    _ctx: &RequestContext,
    group_id: &str,
    topic: String,
    partitions: Option<Vec<i32>>,
    spec: ResetSpec,
) -> GroupResult<Vec<(TopicPartition, i64)>> {
    engine
        .groups
        .send(ResetOffsets {
            group_id: group_id.to_string(),
            topic,
            partitions,
            spec,
        })
        .await
        .map_err(GroupError::mailbox)?
}
