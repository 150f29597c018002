//! ListOffsets, for every protocol and for the engine's own consumers: which offset
//! "the beginning", "the end" or a time means in a partition. One rule lives here, as
//! Kafka's consumer applies it: a time with no record at or after it means the log
//! end (nothing older is wanted), and an empty answer for the beginning or the end
//! means offset 0.

use super::{Engine, Leader, RequestContext};
use crate::auth::acl::Operation;
use crate::error::BrokerResult;
use crate::partition::OffsetSpec;

/// The offset `spec` means in the partition `leader` leads.
pub async fn resolve(leader: &Leader, spec: OffsetSpec) -> BrokerResult<i64> {
    let list = |spec| leader.list_offsets(spec);
    match list(spec).await? {
        Some((offset, _)) => Ok(offset),
        None if matches!(spec, OffsetSpec::Timestamp(_)) => {
            Ok(list(OffsetSpec::Latest).await?.map_or(0, |(o, _)| o))
        }
        None => Ok(0),
    }
}

/// The offsets a partition serves: `[log start, high watermark]`.
pub async fn log_bounds(leader: &Leader) -> BrokerResult<(i64, i64)> {
    Ok((
        resolve(leader, OffsetSpec::Earliest).await?,
        resolve(leader, OffsetSpec::Latest).await?,
    ))
}

/// What the partition itself answers for `spec`, as Kafka's ListOffsets reports it:
/// the offset and that record's timestamp (`None` for the beginning and end), or
/// `None` when no record is at or after the time asked for.
pub async fn lookup(
    engine: &Engine,
    ctx: &RequestContext,
    topic: &str,
    partition: i32,
    spec: OffsetSpec,
) -> BrokerResult<Option<(i64, Option<i64>)>> {
    engine.authorize_topic(ctx, Operation::Describe, topic)?;
    engine
        .leader(ctx, topic, partition)
        .await?
        .list_offsets(spec)
        .await
}

/// [`resolve`] for `topic`-`partition`, routed.
pub async fn list_offset(
    engine: &Engine,
    ctx: &RequestContext,
    topic: &str,
    partition: i32,
    spec: OffsetSpec,
) -> BrokerResult<i64> {
    engine.authorize_topic(ctx, Operation::Describe, topic)?;
    resolve(&engine.leader(ctx, topic, partition).await?, spec).await
}
