//! The cluster's metadata records: each change to the cluster — a broker registering or
//! being fenced, a topic created, a partition's leader or ISR changing, a config set,
//! a topic removed — as one record of Kafka's KRaft metadata log (`__cluster_metadata`,
//! KIP-631), with Kafka's names. The controller decides a change by committing a batch
//! of records through the quorum; every node applies the committed batches, in order,
//! to its [`ClusterState`](super::state::ClusterState) and builds its metadata image
//! from that. A batch applies as a whole or not at all.
//!
//! Records are stored as JSON in the quorum's log (operators can read them; the log is
//! small and written rarely, unlike partitions' logs whose layout is Kafka's binary one).
//!
//! ```text
//! {"type":"register_broker","broker_id":2,"incarnation_id":"…","endpoints":[…]}
//! {"type":"topic","name":"orders","topic_id":"…"}
//! {"type":"partition","topic_id":"…","partition_id":0,"replicas":[2,3,1],
//!  "isr":[2,3,1],"leader":2,"leader_epoch":0,"partition_epoch":0}
//! ```

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::acl::Acl;
use crate::auth::{ScramCredential, ScramMechanism};
use crate::ids::{LeaderEpoch, NodeId, PartitionEpoch, PartitionId};

/// "No leader": the partition is offline (Kafka's `NO_LEADER`, -1).
pub const NO_LEADER: NodeId = NodeId::new(-1);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MetadataRecord {
    /// The cluster's identity: the first record of every metadata log.
    Bootstrap {
        cluster_id: String,
    },
    /// A broker (re)started and registered; its epoch is this record's log index.
    /// It starts fenced, and is unfenced once it has caught up with the metadata.
    RegisterBroker(RegisterBrokerRecord),
    /// A broker's fenced or shutting-down state changed (Kafka's
    /// BrokerRegistrationChangeRecord).
    BrokerRegistrationChange(BrokerRegistrationChangeRecord),
    /// A broker left the cluster for good.
    UnregisterBroker {
        broker_id: NodeId,
    },
    Topic(TopicRecord),
    /// A partition's first state, when its topic is created or grows.
    Partition(PartitionRecord),
    /// A change of a partition's leader, ISR or replicas; applying it raises the
    /// partition epoch (and the leader epoch, when the leader changes).
    PartitionChange(PartitionChangeRecord),
    /// A topic or broker config set (`value: Some`) or removed (`None`).
    Config(ConfigRecord),
    RemoveTopic {
        topic_id: String,
    },
    /// The next producer id the controller hands out (Kafka's ProducerIdsRecord).
    ProducerIds {
        next_producer_id: i64,
    },
    /// A user's SCRAM credential for one mechanism, set or replaced (Kafka's
    /// UserScramCredentialRecord: the salt, iterations and derived keys, never the
    /// password).
    UserScramCredential(UserScramCredentialRecord),
    /// A user's credential for one mechanism removed (Kafka's
    /// RemoveUserScramCredentialRecord); a user with none left is gone.
    RemoveUserScramCredential {
        name: String,
        mechanism: ScramMechanism,
    },
    /// An ACL added, under an id of its own (Kafka's AccessControlEntryRecord).
    AccessControlEntry {
        id: String,
        #[serde(flatten)]
        acl: Acl,
    },
    /// An ACL removed (Kafka's RemoveAccessControlEntryRecord).
    RemoveAccessControlEntry {
        id: String,
    },
    /// A client quota set (`rate: Some`, bytes per second) or removed (Kafka's
    /// ClientQuotaRecord).
    ClientQuota(crate::quotas::QuotaChange),
    /// The key brokers sign the requests they forward to each other over HTTP with
    /// (Troupe's own record: see [`crate::auth::forwarding`]); a later one replaces
    /// it.
    ForwardingKey {
        key: crate::auth::forwarding::ForwardingKey,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserScramCredentialRecord {
    pub name: String,
    pub mechanism: ScramMechanism,
    #[serde(flatten)]
    pub credential: ScramCredential,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerEndpoint {
    /// The listener's name: `PLAINTEXT`, `HTTP`, `CONTROLLER`, …
    pub name: String,
    pub host: String,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterBrokerRecord {
    pub broker_id: NodeId,
    /// A new one each time the broker process starts: a registration with another
    /// incarnation id is a restart, not a retry.
    pub incarnation_id: Uuid,
    pub endpoints: Vec<BrokerEndpoint>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistrationChangeRecord {
    pub broker_id: NodeId,
    /// The registration this change is for (stale changes are not applied).
    pub broker_epoch: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fenced: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_controlled_shutdown: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicRecord {
    pub name: String,
    pub topic_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRecord {
    pub topic_id: String,
    pub partition_id: PartitionId,
    /// In preference order: the first is the preferred leader.
    pub replicas: Vec<NodeId>,
    pub isr: Vec<NodeId>,
    /// [`NO_LEADER`] when none of the replicas can lead.
    pub leader: NodeId,
    pub leader_epoch: LeaderEpoch,
    pub partition_epoch: PartitionEpoch,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionChangeRecord {
    pub topic_id: String,
    pub partition_id: PartitionId,
    /// A reassignment's replicas being added and removed (Kafka's
    /// `addingReplicas`/`removingReplicas`); `Some(empty)` ends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adding: Option<Vec<NodeId>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removing: Option<Vec<NodeId>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<NodeId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isr: Option<Vec<NodeId>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<Vec<NodeId>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfigResourceType {
    Topic,
    Broker,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigRecord {
    pub resource_type: ConfigResourceType,
    /// The topic's name, or the broker's id ("" for the cluster-wide default).
    pub resource_name: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}
