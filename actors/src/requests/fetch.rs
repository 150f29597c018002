//! Fetch, for the protocols that read a partition directly (REST v2 reads; the
//! WebSocket and consumer instances read through their own feeds): whole batches from
//! an offset, bounded in bytes and long-polled up to a wait, and — when the client
//! asked for it (`auto.offset.reset`) — restarted at the beginning or the end if the
//! offset fell out of the log (retention moved the start past it).

use super::list_offsets::resolve;
use super::{Engine, RequestContext};
use crate::error::{BrokerError, BrokerResult};
use crate::ids::{LeaderEpoch, NodeId};
use crate::partition::{Fetch, FetchResult, OffsetSpec, ReplicaFetch};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchRequest {
    pub partition: i32,
    pub offset: i64,
    pub max_bytes: usize,
    pub max_wait_ms: u64,
    /// Where to restart when `offset` is out of range: `None` answers the error.
    pub reset: Option<OffsetSpec>,
}

/// The offset actually read from (the reset one, if it came to that) and the batches.
pub async fn fetch(
    engine: &Engine,
    ctx: &RequestContext,
    topic: &str,
    request: FetchRequest,
) -> BrokerResult<(i64, FetchResult)> {
    engine.authorize_topic(ctx, crate::auth::acl::Operation::Read, topic)?;
    let leader = engine.leader(ctx, topic, request.partition).await?;
    let read = |offset| {
        leader.fetch(Fetch {
            offset,
            max_bytes: request.max_bytes,
            max_wait_ms: request.max_wait_ms,
        })
    };
    match (read(request.offset).await, request.reset) {
        (Err(BrokerError::OffsetOutOfRange { .. }), Some(spec)) => {
            let offset = resolve(&leader, spec).await?;
            Ok((offset, read(offset).await?))
        }
        (result, _) => Ok((request.offset, result?)),
    }
}

/// A follower's fetch from this broker's replica of `topic`-`partition`, which must
/// lead it (Kafka's Fetch with a replica id): data up to the log end offset, and the
/// follower's position recorded (see `partition::replication`).
pub async fn replica_fetch(
    engine: &Engine,
    ctx: &RequestContext,
    topic: &str,
    partition: i32,
    fetch: FollowerFetch,
) -> BrokerResult<FetchResult> {
    engine.authorize_cluster(ctx, crate::auth::acl::Operation::ClusterAction)?;
    let route = engine.route(topic)?;
    let FollowerFetch {
        replica,
        offset,
        leader_epoch,
        max_bytes,
        max_wait_ms,
    } = fetch;
    let read = ReplicaFetch {
        replica,
        offset,
        leader_epoch,
        max_bytes,
        max_wait_ms,
    };
    super::ask(route.partition(partition)?, read).await?
}

/// A follower broker's read (Kafka's Fetch with a replica id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerFetch {
    pub replica: NodeId,
    /// The follower's log end offset: it holds everything below, durably.
    pub offset: i64,
    /// The leader epoch the follower believes current (`None`: not checked).
    pub leader_epoch: Option<LeaderEpoch>,
    pub max_bytes: usize,
    pub max_wait_ms: u64,
}
