//! Where a consumer instance's partitions live: their `PartitionReplica` addresses,
//! asked of the `Broker` (`RouteTopic`) at each use, as Kafka's consumer asks its
//! `ConsumerMetadata`. The lookups sit together so that when routing becomes a read of
//! a metadata image (ARCHITECTURE.md, structural debt 3) only this file changes.

use std::collections::{BTreeMap, BTreeSet};

use actix::Addr;

use super::messages::{ConsumerError, ConsumerResult};
use crate::broker::{Broker, RouteTopic};
use crate::error::BrokerError;
use crate::group::TopicPartition;
use crate::partition::PartitionReplica;

pub(super) type PartitionAddresses = BTreeMap<TopicPartition, Addr<PartitionReplica>>;

/// Every partition of the topics `partitions` belong to; a topic that is gone (a
/// subscribed topic deleted since) has none, so there is nothing of it to read.
pub(super) async fn partition_addresses(
    broker: &Addr<Broker>,
    partitions: &[TopicPartition],
) -> ConsumerResult<PartitionAddresses> {
    let topics: BTreeSet<&String> = partitions.iter().map(|tp| &tp.topic).collect();
    let mut addresses = BTreeMap::new();
    for topic in topics {
        let Ok(route) = broker
            .send(RouteTopic {
                name: topic.clone(),
            })
            .await?
        else {
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
pub(super) async fn partition_address(
    broker: &Addr<Broker>,
    tp: &TopicPartition,
) -> ConsumerResult<Option<Addr<PartitionReplica>>> {
    let route = broker
        .send(RouteTopic {
            name: tp.topic.clone(),
        })
        .await??;
    let index = usize::try_from(tp.partition).ok();
    Ok(index.and_then(|i| route.partitions.get(i).cloned()))
}

/// Fails, at the first, unless every one of `partitions` exists.
pub(super) async fn check_partitions_exist(
    broker: &Addr<Broker>,
    partitions: &[TopicPartition],
) -> ConsumerResult<()> {
    for tp in partitions {
        if partition_address(broker, tp).await?.is_none() {
            return Err(ConsumerError::Broker(BrokerError::UnknownPartition {
                topic: tp.topic.clone(),
                partition: tp.partition,
            }));
        }
    }
    Ok(())
}
