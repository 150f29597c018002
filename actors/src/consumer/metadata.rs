//! Where a consumer instance's partitions live: each one's leader (this broker's
//! replica, or another broker), read from the published metadata image and replica
//! table ([`Routes`]) at each use, as Kafka's consumer reads its `ConsumerMetadata`.
//! A partition with no leader right now (offline) has no address until it has one.

use std::collections::{BTreeMap, BTreeSet};

use super::messages::{ConsumerError, ConsumerResult};
use crate::error::BrokerError;
use crate::group::TopicPartition;
use crate::requests::{Leader, Routes};

pub(super) type PartitionAddresses = BTreeMap<TopicPartition, Leader>;

/// Every partition of the topics `partitions` belong to; a topic that is gone (a
/// subscribed topic deleted since) has none, so there is nothing of it to read.
pub(super) fn partition_addresses(
    routes: &Routes,
    partitions: &[TopicPartition],
) -> ConsumerResult<PartitionAddresses> {
    let topics: BTreeSet<&String> = partitions.iter().map(|tp| &tp.topic).collect();
    let mut addresses = BTreeMap::new();
    for topic in topics {
        let Ok(route) = routes.topic(topic) else {
            continue;
        };
        for p in 0..route.partition_count() as i32 {
            if let Ok(leader) = route.leader(p) {
                addresses.insert(TopicPartition::new(topic, p), leader);
            }
        }
    }
    Ok(addresses)
}

/// One partition's leader: `None` past the topic's partitions; an unknown topic,
/// or a partition with no leader, is an error.
pub(super) fn partition_address(
    routes: &Routes,
    tp: &TopicPartition,
) -> ConsumerResult<Option<Leader>> {
    let route = routes.topic(&tp.topic)?;
    if !(0..route.partition_count() as i32).contains(&tp.partition) {
        return Ok(None);
    }
    Ok(Some(route.leader(tp.partition)?))
}

/// Fails, at the first, unless every one of `partitions` exists.
pub(super) fn check_partitions_exist(
    routes: &Routes,
    partitions: &[TopicPartition],
) -> ConsumerResult<()> {
    for tp in partitions {
        if partition_address(routes, tp)?.is_none() {
            return Err(ConsumerError::Broker(BrokerError::UnknownPartition {
                topic: tp.topic.clone(),
                partition: tp.partition,
            }));
        }
    }
    Ok(())
}
