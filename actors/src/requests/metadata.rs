//! Metadata reads: a topic's partitions with each one's status (offsets, size,
//! leader epoch), as REST's partition resources, the v2 topic resources, the
//! dashboard and `/metrics` show them, and the log cleaner's totals. The route is a read of the image; the status is asked of each
//! partition actor, the owner of those numbers.

use futures::future::join_all;

use super::{Engine, RequestContext, TopicRoute};
use crate::cleaner::{CleanerStats, GetCleanerStats};
use crate::error::{BrokerError, BrokerResult};
use crate::partition::{GetStatus, PartitionStatus};

/// Registers this broker's advertised listeners, so the image (and Kafka's Metadata
/// answers) name them; answers once the image shows them.
pub async fn register_listeners(
    engine: &Engine,
    endpoints: Vec<crate::metadata::Endpoint>,
) -> BrokerResult<()> {
    super::ask(&engine.broker, crate::broker::RegisterListeners(endpoints)).await
}

/// The cluster as this node sees it: brokers and their states, the active
/// controller, the metadata quorum.
pub async fn describe_cluster(
    engine: &Engine,
    _ctx: &RequestContext,
) -> BrokerResult<crate::broker::ClusterDescription> {
    engine
        .broker
        .send(crate::broker::DescribeCluster)
        .await
        .map_err(BrokerError::mailbox)
}

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

/// Every partition's status, topic by topic (a topic deleted meanwhile is left out).
pub async fn all_statuses(engine: &Engine, _ctx: &RequestContext) -> Vec<PartitionStatus> {
    let image = engine.image();
    let mut rows = Vec::new();
    for name in image.topics.keys() {
        if let Ok(route) = engine.route(name) {
            if let Ok(statuses) = statuses(&route).await {
                rows.extend(statuses);
            }
        }
    }
    rows
}

/// The log cleaner's totals; `None` when it is disabled or not answering.
pub async fn cleaner_stats(engine: &Engine, _ctx: &RequestContext) -> Option<CleanerStats> {
    engine.cleaner.as_ref()?.send(GetCleanerStats).await.ok()
}
