//! Metadata reads: a topic's partitions with each one's status (offsets, size,
//! leader epoch), as REST's partition resources, the v2 topic resources, the
//! dashboard and `/metrics` show them, and the log cleaner's totals. The route is a read of the image; the status is asked of each
//! partition actor, the owner of those numbers.

use futures::future::join_all;

use super::{Engine, Leader, RequestContext, TopicRoute};
use crate::auth::acl::{Operation, ResourceType};
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

/// How long a status waits for a remote leader's offsets (a paused or partitioned
/// leader must not hold up a listing).
const REMOTE_STATUS_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Every partition's status, in partition order.
pub async fn statuses(route: &TopicRoute) -> BrokerResult<Vec<PartitionStatus>> {
    let answers = join_all((0..route.partition_count() as i32).map(|p| status(route, p))).await;
    answers.into_iter().collect()
}

/// Partition `p`'s status: its replica's here; for one led elsewhere, the offsets
/// its leader serves (`ListOffsets`) and the leader epoch the image gives — the
/// counters of a replica's files are its own broker's (and its `/metrics`').
async fn status(route: &TopicRoute, p: i32) -> BrokerResult<PartitionStatus> {
    let leader = match route.leader(p) {
        Ok(leader) => leader,
        // No leader, and no replica here to say why.
        Err(BrokerError::NotLeader { .. }) => return Ok(route.remote_status(p, None)),
        Err(e) => return Err(e),
    };
    match &leader {
        Leader::Local(addr) => addr.send(GetStatus).await.map_err(BrokerError::mailbox),
        Leader::Remote(remote) => {
            match tokio::time::timeout(REMOTE_STATUS_WAIT, super::list_offsets::log_bounds(&leader))
                .await
                .unwrap_or_else(|_| {
                    Err(BrokerError::Unavailable(format!(
                        "its leader, broker {}, did not answer within {} ms",
                        remote.node,
                        REMOTE_STATUS_WAIT.as_millis()
                    )))
                }) {
                Ok(bounds) => Ok(route.remote_status(p, Some(bounds))),
                // The image's leader cannot be reached (it died, and is not fenced
                // yet): the partition is shown as the image has it, offline for now.
                Err(
                    e @ (BrokerError::Unavailable(_)
                    | BrokerError::NotLeader { .. }
                    | BrokerError::LeaderUnreachable { .. }),
                ) => {
                    let mut status = route.remote_status(p, None);
                    status.offline_reason = Some(e.to_string());
                    Ok(status)
                }
                Err(e) => Err(e),
            }
        }
    }
}

/// The topic's route, and the status of one of its partitions (`Some(p)`) or of all.
/// Describe on the topic.
pub async fn partition_statuses(
    engine: &Engine,
    ctx: &RequestContext,
    topic: &str,
    partition: Option<i32>,
) -> BrokerResult<(TopicRoute, Vec<PartitionStatus>)> {
    engine.authorize_topic(ctx, Operation::Describe, topic)?;
    let route = engine.route(topic)?;
    match partition {
        None => {
            let all = statuses(&route).await?;
            Ok((route, all))
        }
        Some(p) => {
            let status = status(&route, p).await?;
            Ok((route, vec![status]))
        }
    }
}

/// The status of every partition replica on this broker, topic by topic (a topic
/// deleted meanwhile is left out, and so is one `ctx` may not describe): what this
/// broker's `/metrics` reports.
pub async fn all_statuses(engine: &Engine, ctx: &RequestContext) -> Vec<PartitionStatus> {
    let image = engine.image();
    let mut rows = Vec::new();
    let visible = image
        .topics
        .keys()
        .filter(|t| engine.may(ctx, Operation::Describe, ResourceType::Topic, t));
    for name in visible {
        if let Ok(route) = engine.route(name) {
            let answers = join_all(route.local().map(|addr| addr.send(GetStatus))).await;
            rows.extend(answers.into_iter().filter_map(Result::ok));
        }
    }
    rows
}

/// The log cleaner's totals; `None` when it is disabled or not answering.
pub async fn cleaner_stats(engine: &Engine, _ctx: &RequestContext) -> Option<CleanerStats> {
    engine.cleaner.as_ref()?.send(GetCleanerStats).await.ok()
}
