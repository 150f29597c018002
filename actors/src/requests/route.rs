//! `TopicRoute`: where a topic's partitions are on this broker, looked up in the
//! published metadata image and replica table — a read, no actor is asked.

use actix::Addr;

use crate::error::{BrokerError, BrokerResult};
use crate::metadata::MetadataView;
use crate::partition::PartitionReplica;
use crate::replica_manager::{ReplicaView, TopicReplicas};

/// What routing reads: the published metadata image and replica table. Held by the
/// request layer's [`super::Engine`] and by the actors that find partitions
/// themselves (the group manager, consumer instances) — none of them asks an actor.
#[derive(Clone)]
pub struct Routes {
    pub metadata: MetadataView,
    pub replicas: ReplicaView,
}

impl Routes {
    pub fn new(metadata: MetadataView, replicas: ReplicaView) -> Self {
        Routes { metadata, replicas }
    }

    /// Where `topic`'s partitions are.
    pub fn topic(&self, topic: &str) -> BrokerResult<TopicRoute> {
        TopicRoute::lookup(&self.metadata, &self.replicas, topic)
    }
}

#[derive(Debug, Clone)]
pub struct TopicRoute {
    pub name: String,
    /// The partitions' actors, by partition number.
    pub partitions: TopicReplicas,
    pub internal: bool,
    /// Being deleted: takes no more writes.
    pub deleting: bool,
    /// The topic's effective `max.message.bytes`.
    pub max_message_bytes: usize,
}

impl TopicRoute {
    pub fn lookup(
        metadata: &MetadataView,
        replicas: &ReplicaView,
        name: &str,
    ) -> BrokerResult<TopicRoute> {
        let image = metadata.image();
        let topic = image.topic(name)?;
        let count = topic.partitions.len();
        // The table is published before the image, so a topic in the image has its
        // replicas — unless it is being deleted and they are already stopping.
        let partitions = match replicas.topic(name) {
            Some(all) if all.len() == count => all,
            Some(all) if all.len() > count => all[..count].iter().cloned().collect(),
            _ if topic.deleting => return Err(BrokerError::UnknownTopic(name.to_string())),
            _ => {
                return Err(BrokerError::Unavailable(format!(
                    "the partitions of topic '{name}' are not started yet"
                )))
            }
        };
        Ok(TopicRoute {
            name: name.to_string(),
            partitions,
            internal: topic.internal,
            deleting: topic.deleting,
            max_message_bytes: topic.max_message_bytes,
        })
    }

    /// The actor of partition `p`.
    pub fn partition(&self, p: i32) -> BrokerResult<&Addr<PartitionReplica>> {
        usize::try_from(p)
            .ok()
            .and_then(|i| self.partitions.get(i))
            .ok_or_else(|| BrokerError::UnknownPartition {
                topic: self.name.clone(),
                partition: p,
            })
    }
}
