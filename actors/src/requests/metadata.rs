//! Metadata reads: a topic's partitions with each one's status (offsets, size,
//! leader epoch), as REST's partition resources, the v2 topic resources and the
//! dashboard show them. The route is a read of the image; the status is asked of each
//! partition actor, the owner of those numbers.

use futures::future::join_all;

use super::{Engine, RequestContext, TopicRoute};
use crate::error::{BrokerError, BrokerResult};
use crate::partition::{GetStatus, PartitionStatus};

/// Every partition's status, in partition order.
pub async fn statuses(route: &TopicRoute) -> BrokerResult<Vec<PartitionStatus>> {
    let answers = join_all(route.partitions.iter().map(|p| p.send(GetStatus))).await;
    answers
        .into_iter()
        .map(|a| a.map_err(BrokerError::mailbox))
        .collect()
}

/// The topic's route, and the status of one of its partitions (`Some(p)`) or of all.
pub async fn partition_statuses(
    engine: &Engine,
    _ctx: &RequestContext,
    topic: &str,
    partition: Option<i32>,
) -> BrokerResult<(TopicRoute, Vec<PartitionStatus>)> {
    let route = engine.route(topic)?;
    match partition {
        None => {
            let all = statuses(&route).await?;
            Ok((route, all))
        }
        Some(p) => {
            let status = route
                .partition(p)?
                .send(GetStatus)
                .await
                .map_err(BrokerError::mailbox)?;
            Ok((route, vec![status]))
        }
    }
}
