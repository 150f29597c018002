//! The image's types: plain values, cloned (cheaply, topics are `Arc`s) to make the
//! next version. Field names are Kafka's (`leader_epoch`, `isr`, `partition_epoch`),
//! so the cluster's metadata records can fill them as they are; their types are
//! [`crate::ids`], so a leader cannot be given an epoch nor a replica a partition.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::error::{BrokerError, BrokerResult};
use crate::ids::{LeaderEpoch, NodeId, PartitionEpoch, PartitionId};

#[derive(Debug, Clone, PartialEq)]
pub struct MetadataImage {
    pub cluster_id: String,
    /// This broker.
    pub node_id: NodeId,
    /// The active controller (on one node: this node).
    pub controller_id: NodeId,
    pub brokers: BTreeMap<NodeId, BrokerImage>,
    pub topics: BTreeMap<String, Arc<TopicImage>>,
    /// Users and their SCRAM credentials: what SASL and HTTP authentication check.
    pub users: Arc<crate::auth::Users>,
    /// Every ACL: what the authorizer decides by.
    pub acls: Arc<crate::auth::acl::AclTable>,
    /// Client quotas.
    pub quotas: Arc<crate::quotas::QuotaTable>,
    /// What requests forwarded between brokers over HTTP are signed with (none on a
    /// single node, which forwards nothing).
    pub forwarding_key: Option<Arc<crate::auth::forwarding::ForwardingKey>>,
    /// The metadata log offset this image was made at (Kafka's image provenance):
    /// a change committed at offset `o` is in every image with `metadata_offset >= o`.
    pub metadata_offset: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerImage {
    pub id: NodeId,
    /// Where clients reach it, by listener (Kafka's advertised listeners).
    pub endpoints: Vec<Endpoint>,
    /// Fenced (silent past its session timeout, or restarted and not caught up):
    /// it leads nothing.
    pub fenced: bool,
    /// In a controlled shutdown: its leaderships are moving away.
    pub in_controlled_shutdown: bool,
}

/// One advertised listener of a broker: Kafka's `NAME://host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The listener's name (`PLAINTEXT`), which clients' connections are matched by.
    pub listener: String,
    pub host: String,
    pub port: u16,
}

impl BrokerImage {
    /// Its endpoint on `listener`, if it has one.
    pub fn endpoint(&self, listener: &str) -> Option<&Endpoint> {
        self.endpoints.iter().find(|e| e.listener == listener)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TopicImage {
    pub name: String,
    pub topic_id: String,
    pub internal: bool,
    pub replication_factor: i16,
    /// Topic-level config overrides.
    pub overrides: BTreeMap<String, String>,
    /// The effective `max.message.bytes`, which produce checks on every record.
    pub max_message_bytes: usize,
    /// The effective `cleanup.policy` includes `compact`.
    pub compacted: bool,
    /// The effective `min.insync.replicas`: an `acks=all` write to a partition with
    /// fewer in-sync replicas is refused before anything is appended.
    pub min_insync_replicas: usize,
    /// Being deleted: still listed, but takes no more writes.
    pub deleting: bool,
    pub partitions: Vec<PartitionImage>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionImage {
    pub partition: PartitionId,
    pub leader: NodeId,
    pub leader_epoch: LeaderEpoch,
    pub replicas: Vec<NodeId>,
    pub isr: Vec<NodeId>,
    /// Bumped on every change of the partition's leader, replicas or ISR.
    pub partition_epoch: PartitionEpoch,
    /// A reassignment in progress: replicas being added and to be removed.
    pub adding: Vec<NodeId>,
    pub removing: Vec<NodeId>,
}

impl MetadataImage {
    /// A node that is the whole cluster and knows no topics yet.
    pub fn single_node(cluster_id: String, node_id: NodeId) -> Self {
        MetadataImage {
            cluster_id,
            node_id,
            controller_id: node_id,
            brokers: BTreeMap::from([(
                node_id,
                BrokerImage {
                    id: node_id,
                    endpoints: Vec::new(),
                    fenced: false,
                    in_controlled_shutdown: false,
                },
            )]),
            topics: BTreeMap::new(),
            users: Default::default(),
            acls: Default::default(),
            quotas: Default::default(),
            forwarding_key: None,
            metadata_offset: 0,
        }
    }

    pub fn topic(&self, name: &str) -> BrokerResult<&Arc<TopicImage>> {
        self.topics
            .get(name)
            .ok_or_else(|| BrokerError::UnknownTopic(name.to_string()))
    }

    pub fn broker_ids(&self) -> Vec<NodeId> {
        self.brokers.keys().copied().collect()
    }

    /// Every topic's partition count, by name (what consumer groups rebalance on).
    pub fn partition_counts(&self) -> BTreeMap<String, i32> {
        self.topics
            .iter()
            .map(|(name, t)| (name.clone(), t.partitions.len() as i32))
            .collect()
    }
}

impl TopicImage {
    /// A topic whose every partition has one replica, on `node_id`, which leads it.
    pub fn local(
        name: &str,
        topic_id: String,
        partitions: i32,
        node_id: NodeId,
        overrides: BTreeMap<String, String>,
        max_message_bytes: usize,
    ) -> Self {
        TopicImage {
            name: name.to_string(),
            topic_id,
            internal: crate::broker::is_internal_topic(name),
            replication_factor: 1,
            overrides,
            max_message_bytes,
            compacted: false,
            min_insync_replicas: 1,
            deleting: false,
            partitions: (0..partitions)
                .map(|partition| PartitionImage {
                    partition: PartitionId::new(partition),
                    leader: node_id,
                    leader_epoch: LeaderEpoch::FIRST,
                    replicas: vec![node_id],
                    isr: vec![node_id],
                    partition_epoch: PartitionEpoch::default(),
                    adding: Vec::new(),
                    removing: Vec::new(),
                })
                .collect(),
        }
    }

    pub fn partition(&self, partition: PartitionId) -> BrokerResult<&PartitionImage> {
        usize::try_from(partition.get())
            .ok()
            .and_then(|p| self.partitions.get(p))
            .ok_or_else(|| BrokerError::UnknownPartition {
                topic: self.name.clone(),
                partition: partition.get(),
            })
    }
}
