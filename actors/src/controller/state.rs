//! The cluster's metadata as the applied records left it: brokers with their
//! registrations, topics with their partitions' replicas, ISR, leader and epochs,
//! configs, the next producer id. Pure state: [`ClusterState::apply_batch`] is the
//! only way it changes, and every node applying the same committed batches in the
//! same order holds the same state (the quorum's state machine, and the controller's
//! view of what is decided). Each node builds its [`MetadataImage`] from it.
//!
//! A batch applies as a whole or not at all: each record is checked against the
//! state the batch's earlier records made, and a batch with an invalid record
//! changes nothing and says why. The controller checks a change before proposing
//! it, so a refused batch is a race (two changes to one thing), never a half change.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::records::{
    BrokerEndpoint, BrokerRegistrationChangeRecord, ConfigRecord, ConfigResourceType,
    MetadataRecord, PartitionChangeRecord, PartitionRecord, RegisterBrokerRecord, NO_LEADER,
};
use crate::auth::acl::Acl;
use crate::auth::Users;
use crate::ids::{LeaderEpoch, NodeId, PartitionEpoch, PartitionId};
use crate::metadata::{BrokerImage, Endpoint, MetadataImage, PartitionImage, TopicImage};

/// What the image needs of a topic's effective configuration, from its overrides
/// (the node's defaults fill the rest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EffectiveTopic {
    pub max_message_bytes: usize,
    pub compacted: bool,
    pub min_insync_replicas: usize,
}

/// A topic's [`EffectiveTopic`] from its overrides.
pub type EffectiveTopicConfig<'a> = dyn Fn(&BTreeMap<String, String>) -> EffectiveTopic + 'a;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error("the metadata belongs to cluster {have}, not {wanted}")]
    ClusterIdChange { have: String, wanted: String },
    #[error("broker {0} is not registered")]
    UnknownBroker(NodeId),
    #[error("broker {broker_id}'s registration is epoch {current}, not {stale}")]
    StaleBrokerEpoch {
        broker_id: NodeId,
        current: i64,
        stale: i64,
    },
    #[error("topic {0} already exists")]
    TopicExists(String),
    #[error("topic id {0} is already used")]
    TopicIdExists(String),
    #[error("no topic has id {0}")]
    UnknownTopicId(String),
    #[error("topic {0} does not exist")]
    UnknownTopic(String),
    #[error("partition {partition} of topic {topic_id} {problem}")]
    Partition {
        topic_id: String,
        partition: PartitionId,
        problem: String,
    },
    #[error("no ACL has id {0}")]
    UnknownAcl(String),
    #[error("user {name} has no {mechanism} credential")]
    UnknownCredential { name: String, mechanism: String },
}

/// A broker as its registration and the changes since left it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistration {
    pub id: NodeId,
    pub incarnation_id: Uuid,
    /// The log index of its registration: what its heartbeats and changes name.
    pub epoch: i64,
    pub endpoints: Vec<BrokerEndpoint>,
    /// Fenced brokers lead nothing and are left out of placement.
    pub fenced: bool,
    pub in_controlled_shutdown: bool,
}

impl BrokerRegistration {
    /// Takes leaderships and new replicas.
    pub fn is_active(&self) -> bool {
        !self.fenced && !self.in_controlled_shutdown
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicState {
    pub name: String,
    pub topic_id: String,
    pub partitions: BTreeMap<PartitionId, PartitionState>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    pub replicas: Vec<NodeId>,
    pub isr: Vec<NodeId>,
    pub leader: NodeId,
    pub leader_epoch: LeaderEpoch,
    pub partition_epoch: PartitionEpoch,
    /// A reassignment in progress: the replicas being added (in `replicas`, catching
    /// up) and those to be removed once they have (Kafka's KIP-455).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adding: Vec<NodeId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removing: Vec<NodeId>,
}

impl PartitionState {
    pub fn is_offline(&self) -> bool {
        self.leader == NO_LEADER
    }

    /// The replicas a reassignment in progress leads to (`replicas` when none is).
    pub fn target_replicas(&self) -> Vec<NodeId> {
        self.replicas
            .iter()
            .copied()
            .filter(|r| !self.removing.contains(r))
            .collect()
    }

    /// The replicas before the reassignment in progress.
    pub fn original_replicas(&self) -> Vec<NodeId> {
        self.replicas
            .iter()
            .copied()
            .filter(|r| !self.adding.contains(r))
            .collect()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterState {
    pub cluster_id: Option<String>,
    pub brokers: BTreeMap<NodeId, BrokerRegistration>,
    /// By topic id.
    pub topics: BTreeMap<String, TopicState>,
    /// Topic ids by name.
    pub topic_ids: BTreeMap<String, String>,
    /// Topic config overrides, by topic name.
    pub topic_configs: BTreeMap<String, BTreeMap<String, String>>,
    /// Broker config overrides, by broker id ("" for the cluster-wide default).
    pub broker_configs: BTreeMap<String, BTreeMap<String, String>>,
    pub next_producer_id: i64,
    /// Users and their SCRAM credentials (absent from snapshots written before users
    /// existed).
    #[serde(default)]
    pub users: Users,
    /// ACLs by id (absent from snapshots written before ACLs existed).
    #[serde(default)]
    pub acls: BTreeMap<String, Acl>,
    /// Client quotas (absent from snapshots written before quotas existed).
    #[serde(default)]
    pub quotas: crate::quotas::QuotaTable,
    /// What forwarded HTTP requests are signed with (absent from snapshots written
    /// before it existed; the active controller then makes one).
    #[serde(default)]
    pub forwarding_key: Option<crate::auth::forwarding::ForwardingKey>,
}

impl ClusterState {
    /// Applies the records committed at log `index`, all or none.
    pub fn apply_batch(
        &mut self,
        index: u64,
        records: &[MetadataRecord],
    ) -> Result<(), MetadataError> {
        let mut next = self.clone();
        for record in records {
            next.apply(index, record)?;
        }
        *self = next;
        Ok(())
    }

    fn apply(&mut self, index: u64, record: &MetadataRecord) -> Result<(), MetadataError> {
        match record {
            MetadataRecord::Bootstrap { cluster_id } => match &self.cluster_id {
                Some(have) if have != cluster_id => Err(MetadataError::ClusterIdChange {
                    have: have.clone(),
                    wanted: cluster_id.clone(),
                }),
                _ => {
                    self.cluster_id = Some(cluster_id.clone());
                    Ok(())
                }
            },
            MetadataRecord::RegisterBroker(r) => {
                self.register(index, r);
                Ok(())
            }
            MetadataRecord::BrokerRegistrationChange(c) => self.change_registration(c),
            MetadataRecord::UnregisterBroker { broker_id } => self
                .brokers
                .remove(broker_id)
                .map(|_| ())
                .ok_or(MetadataError::UnknownBroker(*broker_id)),
            MetadataRecord::Topic(t) => {
                if self.topic_ids.contains_key(&t.name) {
                    return Err(MetadataError::TopicExists(t.name.clone()));
                }
                if self.topics.contains_key(&t.topic_id) {
                    return Err(MetadataError::TopicIdExists(t.topic_id.clone()));
                }
                self.topic_ids.insert(t.name.clone(), t.topic_id.clone());
                self.topics.insert(
                    t.topic_id.clone(),
                    TopicState {
                        name: t.name.clone(),
                        topic_id: t.topic_id.clone(),
                        partitions: BTreeMap::new(),
                    },
                );
                Ok(())
            }
            MetadataRecord::Partition(p) => self.add_partition(p),
            MetadataRecord::PartitionChange(c) => self.change_partition(c),
            MetadataRecord::Config(c) => self.set_config(c),
            MetadataRecord::RemoveTopic { topic_id } => {
                let topic = self
                    .topics
                    .remove(topic_id)
                    .ok_or_else(|| MetadataError::UnknownTopicId(topic_id.clone()))?;
                self.topic_ids.remove(&topic.name);
                self.topic_configs.remove(&topic.name);
                Ok(())
            }
            MetadataRecord::ProducerIds { next_producer_id } => {
                self.next_producer_id = self.next_producer_id.max(*next_producer_id);
                Ok(())
            }
            MetadataRecord::UserScramCredential(r) => {
                self.users
                    .entry(r.name.clone())
                    .or_default()
                    .insert(r.mechanism, r.credential.clone());
                Ok(())
            }
            MetadataRecord::ForwardingKey { key } => {
                self.forwarding_key = Some(key.clone());
                Ok(())
            }
            MetadataRecord::ClientQuota(change) => {
                let quotas = &mut self.quotas.quotas;
                match change.rate {
                    Some(rate) => {
                        quotas
                            .entry(change.entity.clone())
                            .or_default()
                            .insert(change.kind, rate);
                    }
                    None => {
                        if let Some(kinds) = quotas.get_mut(&change.entity) {
                            kinds.remove(&change.kind);
                            if kinds.is_empty() {
                                quotas.remove(&change.entity);
                            }
                        }
                    }
                }
                Ok(())
            }
            MetadataRecord::AccessControlEntry { id, acl } => {
                self.acls.insert(id.clone(), acl.clone());
                Ok(())
            }
            MetadataRecord::RemoveAccessControlEntry { id } => self
                .acls
                .remove(id)
                .map(|_| ())
                .ok_or_else(|| MetadataError::UnknownAcl(id.clone())),
            MetadataRecord::RemoveUserScramCredential { name, mechanism } => {
                let unknown = || MetadataError::UnknownCredential {
                    name: name.clone(),
                    mechanism: mechanism.to_string(),
                };
                let credentials = self.users.get_mut(name).ok_or_else(unknown)?;
                credentials.remove(mechanism).ok_or_else(unknown)?;
                if credentials.is_empty() {
                    self.users.remove(name);
                }
                Ok(())
            }
        }
    }

    fn register(&mut self, index: u64, r: &RegisterBrokerRecord) {
        // The same incarnation registering again is a retry (or its listeners, bound
        // after it first registered): its epoch and state stay.
        if let Some(b) = self.brokers.get_mut(&r.broker_id) {
            if b.incarnation_id == r.incarnation_id {
                b.endpoints = r.endpoints.clone();
                return;
            }
        }
        // A new incarnation replaces the registration before: a restarted broker
        // starts fenced and catches up before it leads again.
        self.brokers.insert(
            r.broker_id,
            BrokerRegistration {
                id: r.broker_id,
                incarnation_id: r.incarnation_id,
                epoch: index as i64,
                endpoints: r.endpoints.clone(),
                fenced: true,
                in_controlled_shutdown: false,
            },
        );
    }

    fn change_registration(
        &mut self,
        c: &BrokerRegistrationChangeRecord,
    ) -> Result<(), MetadataError> {
        let broker = self
            .brokers
            .get_mut(&c.broker_id)
            .ok_or(MetadataError::UnknownBroker(c.broker_id))?;
        if broker.epoch != c.broker_epoch {
            return Err(MetadataError::StaleBrokerEpoch {
                broker_id: c.broker_id,
                current: broker.epoch,
                stale: c.broker_epoch,
            });
        }
        if let Some(fenced) = c.fenced {
            broker.fenced = fenced;
        }
        if let Some(shutting_down) = c.in_controlled_shutdown {
            broker.in_controlled_shutdown = shutting_down;
        }
        Ok(())
    }

    fn partition_error(
        topic_id: &str,
        partition: PartitionId,
        problem: impl Into<String>,
    ) -> MetadataError {
        MetadataError::Partition {
            topic_id: topic_id.to_string(),
            partition,
            problem: problem.into(),
        }
    }

    fn add_partition(&mut self, p: &PartitionRecord) -> Result<(), MetadataError> {
        let err = |problem: &str| Self::partition_error(&p.topic_id, p.partition_id, problem);
        check_replicas(&p.replicas, &p.isr, p.leader).map_err(|e| err(&e))?;
        let topic = self
            .topics
            .get_mut(&p.topic_id)
            .ok_or_else(|| MetadataError::UnknownTopicId(p.topic_id.clone()))?;
        // Partitions are numbered from 0 without gaps, as Kafka's are.
        if p.partition_id.get() != topic.partitions.len() as i32 {
            return Err(err(&format!(
                "is not the next partition ({} exist)",
                topic.partitions.len()
            )));
        }
        topic.partitions.insert(
            p.partition_id,
            PartitionState {
                replicas: p.replicas.clone(),
                isr: p.isr.clone(),
                leader: p.leader,
                leader_epoch: p.leader_epoch,
                partition_epoch: p.partition_epoch,
                adding: Vec::new(),
                removing: Vec::new(),
            },
        );
        Ok(())
    }

    fn change_partition(&mut self, c: &PartitionChangeRecord) -> Result<(), MetadataError> {
        let err = |problem: &str| Self::partition_error(&c.topic_id, c.partition_id, problem);
        let partition = self
            .topics
            .get_mut(&c.topic_id)
            .ok_or_else(|| MetadataError::UnknownTopicId(c.topic_id.clone()))?
            .partitions
            .get_mut(&c.partition_id)
            .ok_or_else(|| err("does not exist"))?;
        let replicas = c.replicas.as_ref().unwrap_or(&partition.replicas);
        let isr = c.isr.as_ref().unwrap_or(&partition.isr);
        let leader = c.leader.unwrap_or(partition.leader);
        check_replicas(replicas, isr, leader).map_err(|e| err(&e))?;
        let leader_changed = leader != partition.leader;
        partition.replicas = replicas.clone();
        partition.isr = isr.clone();
        partition.leader = leader;
        if let Some(adding) = &c.adding {
            partition.adding = adding.clone();
        }
        if let Some(removing) = &c.removing {
            partition.removing = removing.clone();
        }
        if leader_changed {
            partition.leader_epoch = LeaderEpoch::new(partition.leader_epoch.get() + 1);
        }
        partition.partition_epoch = PartitionEpoch::new(partition.partition_epoch.get() + 1);
        Ok(())
    }

    fn set_config(&mut self, c: &ConfigRecord) -> Result<(), MetadataError> {
        let configs = match c.resource_type {
            ConfigResourceType::Topic => {
                if !self.topic_ids.contains_key(&c.resource_name) {
                    return Err(MetadataError::UnknownTopic(c.resource_name.clone()));
                }
                self.topic_configs
                    .entry(c.resource_name.clone())
                    .or_default()
            }
            ConfigResourceType::Broker => self
                .broker_configs
                .entry(c.resource_name.clone())
                .or_default(),
        };
        match &c.value {
            Some(value) => configs.insert(c.name.clone(), value.clone()),
            None => configs.remove(&c.name),
        };
        Ok(())
    }

    pub fn topic(&self, name: &str) -> Option<&TopicState> {
        self.topic_ids.get(name).and_then(|id| self.topics.get(id))
    }

    /// Brokers that take leaderships and new replicas, by id.
    pub fn active_brokers(&self) -> Vec<NodeId> {
        self.brokers
            .values()
            .filter(|b| b.is_active())
            .map(|b| b.id)
            .collect()
    }

    /// The metadata image this state gives `node_id`, with `controller_id` active.
    /// `effective` answers a topic's effective `max.message.bytes` and whether it is
    /// compacted, from its overrides (the node's defaults fill the rest).
    pub fn image(
        &self,
        node_id: NodeId,
        controller_id: NodeId,
        effective: &EffectiveTopicConfig<'_>,
    ) -> MetadataImage {
        let none = BTreeMap::new();
        let brokers = self
            .brokers
            .values()
            .map(|b| {
                let endpoints = b
                    .endpoints
                    .iter()
                    .map(|e| Endpoint {
                        listener: e.name.clone(),
                        host: e.host.clone(),
                        port: e.port,
                    })
                    .collect();
                (
                    b.id,
                    BrokerImage {
                        id: b.id,
                        endpoints,
                        fenced: b.fenced,
                        in_controlled_shutdown: b.in_controlled_shutdown,
                    },
                )
            })
            .collect();
        let topics = self
            .topics
            .values()
            .map(|t| {
                let overrides = self.topic_configs.get(&t.name).unwrap_or(&none);
                let EffectiveTopic {
                    max_message_bytes,
                    compacted,
                    min_insync_replicas,
                } = effective(overrides);
                let partitions: Vec<PartitionImage> = t
                    .partitions
                    .iter()
                    .map(|(id, p)| PartitionImage {
                        partition: *id,
                        leader: p.leader,
                        leader_epoch: p.leader_epoch,
                        replicas: p.replicas.clone(),
                        isr: p.isr.clone(),
                        partition_epoch: p.partition_epoch,
                        adding: p.adding.clone(),
                        removing: p.removing.clone(),
                    })
                    .collect();
                let replication_factor = partitions.first().map_or(0, |p| p.replicas.len() as i16);
                let image = TopicImage {
                    name: t.name.clone(),
                    topic_id: t.topic_id.clone(),
                    internal: crate::broker::is_internal_topic(&t.name),
                    replication_factor,
                    overrides: overrides.clone(),
                    max_message_bytes,
                    compacted,
                    min_insync_replicas,
                    deleting: false,
                    partitions,
                };
                (t.name.clone(), Arc::new(image))
            })
            .collect();
        MetadataImage {
            cluster_id: self.cluster_id.clone().unwrap_or_default(),
            node_id,
            controller_id,
            brokers,
            topics,
            users: Arc::new(self.users.clone()),
            acls: Arc::new(crate::auth::acl::AclTable::from_entries(&self.acls)),
            quotas: Arc::new(self.quotas.clone()),
            forwarding_key: self.forwarding_key.clone().map(Arc::new),
            metadata_offset: 0,
        }
    }
}

/// A partition's replicas are distinct; its ISR is a subset of them; its leader is
/// in the ISR, or there is none.
fn check_replicas(replicas: &[NodeId], isr: &[NodeId], leader: NodeId) -> Result<(), String> {
    if replicas.is_empty() {
        return Err("has no replicas".into());
    }
    let mut seen = replicas.to_vec();
    seen.sort();
    seen.dedup();
    if seen.len() != replicas.len() {
        return Err(format!("lists a replica twice: {replicas:?}"));
    }
    if let Some(outside) = isr.iter().find(|r| !replicas.contains(r)) {
        return Err(format!(
            "has {outside} in its ISR but not among its replicas"
        ));
    }
    if leader != NO_LEADER && !isr.contains(&leader) {
        return Err(format!(
            "is led by {leader}, which is not in its ISR {isr:?}"
        ));
    }
    Ok(())
}
