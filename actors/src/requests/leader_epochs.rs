//! OffsetForLeaderEpoch: where a leader epoch's records end in a partition's log,
//! as its leader answers it from its leader-epoch cache. A consumer asks after a
//! leader change, to learn whether the log it read was truncated below its position
//! (KIP-320); a follower will ask it of its leader to know where to truncate
//! (KIP-101).

use super::{ask, Engine, RequestContext};
use crate::error::BrokerResult;
use crate::ids::LeaderEpoch;
use crate::partition::EndOffsetForEpoch;
use crate::storage::EpochEndOffset;

/// The largest epoch the partition's log knows at or before `epoch`, and where it
/// ends (the log end offset for the latest); `None` when the log knows no such epoch.
pub async fn end_offset_for_epoch(
    engine: &Engine,
    ctx: &RequestContext,
    topic: &str,
    partition: i32,
    epoch: LeaderEpoch,
) -> BrokerResult<Option<EpochEndOffset>> {
    engine.authorize_topic(ctx, crate::auth::acl::Operation::Describe, topic)?;
    let route = engine.route(topic)?;
    ask(route.partition(partition)?, EndOffsetForEpoch(epoch)).await?
}
