//! The typed messages the `Broker` answers.

use std::collections::BTreeMap;

use actix::{Addr, Message};

use crate::error::BrokerResult;
use crate::ids::NodeId;
use crate::partition::PartitionReplica;
pub use crate::requests::topics::NewTopic;
use crate::topic_config::ConfigEntry;

/// What the registry knows of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMetadata {
    pub name: String,
    pub topic_id: String,
    pub partitions: i32,
    pub replication_factor: i16,
    pub internal: bool,
    /// Topic-level overrides only; see [`TopicConfigs`] for effective values.
    pub configs: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterInfo {
    pub cluster_id: String,
    pub node_id: NodeId,
    /// The controller: on one node, this node.
    pub controller_id: NodeId,
    pub live_brokers: Vec<NodeId>,
}

#[derive(Message)]
#[rtype(result = "ClusterInfo")]
pub struct GetClusterInfo;

/// Create a topic (see [`NewTopic`]).
#[derive(Message, Debug, Clone)]
#[rtype(result = "BrokerResult<TopicMetadata>")]
pub struct CreateTopic(pub NewTopic);

#[derive(Message)]
#[rtype(result = "BrokerResult<()>")]
pub struct DeleteTopic {
    pub name: String,
}

/// Raise a topic's partition count (Kafka never lowers it).
#[derive(Message)]
#[rtype(result = "BrokerResult<TopicMetadata>")]
pub struct CreatePartitions {
    pub name: String,
    pub count: i32,
    pub validate_only: bool,
}

/// Move a partition to `replicas` (a reassignment; see
/// `controller::decisions::reassign`). Answered once this node has applied the start
/// of the move.
#[derive(Message)]
#[rtype(result = "BrokerResult<()>")]
pub struct ReassignPartition {
    pub topic: String,
    pub partition: i32,
    pub replicas: Vec<NodeId>,
}

/// One config change: `Some(value)` sets the override, `None` removes it (reset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigChange {
    pub name: String,
    pub value: Option<String>,
}

#[derive(Message)]
#[rtype(result = "BrokerResult<()>")]
pub struct AlterTopicConfigs {
    pub name: String,
    pub changes: Vec<ConfigChange>,
    pub validate_only: bool,
}

/// Users' SCRAM credentials set and removed together (committed through the
/// controller; answered once this node's image has them).
#[derive(Message)]
#[rtype(result = "BrokerResult<()>")]
pub struct AlterUserScramCredentials(pub crate::controller::decisions::ScramChanges);

/// ACLs added and removed by id together (committed through the controller; answered
/// once this node's image has them).
#[derive(Message)]
#[rtype(result = "BrokerResult<()>")]
pub struct AlterAcls {
    pub create: Vec<crate::auth::acl::Acl>,
    pub delete_ids: Vec<String>,
}

/// Client quotas set and removed together (committed through the controller;
/// answered once this node's image has them).
#[derive(Message)]
#[rtype(result = "BrokerResult<()>")]
pub struct AlterClientQuotas(pub Vec<crate::quotas::QuotaChange>);

/// Effective configs of a topic, with their sources.
#[derive(Message)]
#[rtype(result = "BrokerResult<Vec<ConfigEntry>>")]
pub struct TopicConfigs {
    pub name: String,
}

/// The effective configs a topic with these overrides has, with their sources: what
/// CreateTopics reports for a topic it creates (or only validates).
#[derive(Message)]
#[rtype(result = "Vec<ConfigEntry>")]
pub struct ConfigsWithOverrides {
    pub overrides: BTreeMap<String, String>,
}

/// The broker's own settings behind the topic defaults, by broker key
/// (`log.retention.ms`, …), with their sources.
#[derive(Message)]
#[rtype(result = "Vec<ConfigEntry>")]
pub struct BrokerConfigs;

/// This broker's advertised listeners, told by the listeners once they are bound
/// (each replaces an earlier one of its name): registered with the controller and
/// published in the image. The HTTP listener registers as `HTTP`, which Kafka
/// clients never ask for: it is how nodes reach each other's v2 consumer instances.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RegisterListeners(pub Vec<crate::metadata::Endpoint>);

/// A new producer id for an idempotent producer (InitProducerId), unique on this
/// node across restarts (see [`super::producer_ids`]).
#[derive(Message)]
#[rtype(result = "BrokerResult<i64>")]
pub struct AllocateProducerId;

/// Close every partition cleanly (broker shutdown).
#[derive(Message)]
#[rtype(result = "()")]
pub struct ShutdownBroker;

/// Every partition of the topics whose `cleanup.policy` includes `compact`.
#[derive(Message)]
#[rtype(result = "Vec<Addr<PartitionReplica>>")]
pub struct CompactedPartitions;

/// The cluster as this node sees it: brokers and their states, the active
/// controller, and the metadata quorum (Kafka's `kafka-metadata-quorum.sh describe`).
#[derive(Message)]
#[rtype(result = "ClusterDescription")]
pub struct DescribeCluster;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ClusterDescription {
    pub cluster_id: String,
    /// The node this description is from.
    pub node_id: NodeId,
    pub controller_id: Option<NodeId>,
    pub brokers: Vec<BrokerDescription>,
    pub quorum: crate::controller::quorum::QuorumStatus,
    /// The metadata log offset this node has applied.
    pub metadata_offset: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BrokerDescription {
    pub id: NodeId,
    /// `NAME://host:port` of each advertised listener.
    pub endpoints: Vec<String>,
    pub state: BrokerState,
}

/// A registered broker's state, as the controller last committed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BrokerState {
    /// Unfenced: it leads and takes replicas.
    Alive,
    /// Silent past its session timeout, or restarted and not yet caught up.
    Fenced,
    /// In a controlled shutdown: its leaderships are moving away.
    ShuttingDown,
}
