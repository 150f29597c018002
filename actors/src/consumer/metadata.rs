//! Where a consumer instance's partitions live: their `PartitionReplica` addresses,
//! read from the published metadata image and replica table ([`Routes`]) at each use,
//! as Kafka's consumer reads its `ConsumerMetadata`. The lookups sit together so that
//! following a partition led by another node changes only this file.

use std::collections::{BTreeMap, BTreeSet};

use actix::Addr;

use super::messages::{ConsumerError, ConsumerResult};
use crate::error::BrokerError;
use crate::group::TopicPartition;
use crate::partition::PartitionReplica;
use crate::requests::Routes;

pub(super) type PartitionAddresses = BTreeMap<TopicPartition, Addr<PartitionReplica>>;

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
        for (p, addr) in route.partitions.iter().cloned().enumerate() {
            addresses.insert(TopicPartition::new(topic, p as i32), addr);
        }
    }
    Ok(addresses)
}

/// One partition's address: `None` past the topic's partitions; an unknown topic is
/// an error.
pub(super) fn partition_address(
    routes: &Routes,
    tp: &TopicPartition,
) -> ConsumerResult<Option<Addr<PartitionReplica>>> {
    let route = routes.topic(&tp.topic)?;
    let index = usize::try_from(tp.partition).ok();
    Ok(index.and_then(|i| route.partitions.get(i).cloned()))
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
