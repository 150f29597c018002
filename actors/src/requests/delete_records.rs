//! DeleteRecords: a client moves a partition's log start offset forward, deleting
//! the records below it (Kafka's `ReplicaManager.deleteRecords`). The partition's
//! leader does it (see `partition/retention.rs`); on one node there are no followers
//! whose log starts to wait for, so the answer is the leader's new log start, the
//! partition's low watermark.

use super::{ask, Engine, RequestContext};
use crate::error::{BrokerError, BrokerResult};
use crate::partition::DeleteRecords;

/// Deletes the records of `topic`-`partition` below `offset` (`None`: below the high
/// watermark) and answers the new log start offset. Internal topics are refused, as
/// Kafka refuses them; so is a topic being deleted, and (by the partition) a topic
/// that is only compacted and an offset past the high watermark.
pub async fn delete_records(
    engine: &Engine,
    ctx: &RequestContext,
    topic: &str,
    partition: i32,
    offset: Option<i64>,
) -> BrokerResult<i64> {
    engine.authorize_topic(ctx, crate::auth::acl::Operation::Delete, topic)?;
    let route = engine.route(topic)?;
    if route.internal {
        return Err(BrokerError::TopicIsInternal(topic.to_string()));
    }
    if route.deleting {
        return Err(BrokerError::UnknownTopic(topic.to_string()));
    }
    ask(route.partition(partition)?, DeleteRecords { offset }).await?
}
