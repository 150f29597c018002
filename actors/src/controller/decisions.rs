//! What the active controller decides, as the records that say it: pure functions
//! of the committed [`ClusterState`] and a request. The controller commits what they
//! return through the quorum, and nothing takes effect before that, so a new active
//! controller continues from exactly what was committed.
//!
//! Brokers: a registration fences the broker (a restarted broker catches up before
//! it leads); a broker that is fenced (silent past its session timeout) or shutting
//! down gives up its leaderships and leaves the ISRs it is in — except as the last
//! member, which stays so that a clean election can pick it when it returns (with
//! one replica, the partition is offline until then). Unfencing gives offline
//! partitions whose ISR includes it their leader back; preferred-leader election
//! moves leaderships back to each partition's first replica.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::placement::elect_leader;
use super::records::{
    BrokerEndpoint, BrokerRegistrationChangeRecord, ConfigRecord, ConfigResourceType,
    MetadataRecord, PartitionChangeRecord, PartitionRecord, RegisterBrokerRecord, TopicRecord,
    UserScramCredentialRecord, NO_LEADER,
};
use super::state::{ClusterState, PartitionState};
use crate::auth::scram::{check_iterations, ScramMechanism};
use crate::error::{BrokerError, BrokerResult};
use crate::ids::{LeaderEpoch, NodeId, PartitionEpoch, PartitionId};

/// A new topic with its replicas placed (by [`super::placement::place`] or by hand)
/// and its configs checked: what the controller commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedTopic {
    pub name: String,
    pub topic_id: String,
    /// Each partition's replicas, in preference order.
    pub assignments: Vec<Vec<NodeId>>,
    pub configs: BTreeMap<String, String>,
}

/// Users' SCRAM credentials to set and remove together.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct ScramChanges {
    pub upsertions: Vec<UserScramCredentialRecord>,
    pub deletions: Vec<(String, ScramMechanism)>,
    /// Only users that do not exist yet: creating one (an existing name is refused),
    /// or a bootstrap credential (`--add-scram`: one that exists is left as it is).
    #[serde(default)]
    pub create: CreateMode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CreateMode {
    /// Set, whether the user exists or not.
    #[default]
    Upsert,
    /// Refuse a user that exists.
    New,
    /// Skip a user that exists.
    IfAbsent,
}

/// The records of `changes`: every removed credential must exist, every set one be
/// acceptable.
pub fn alter_scram_credentials(
    state: &ClusterState,
    changes: &ScramChanges,
) -> BrokerResult<Vec<MetadataRecord>> {
    let mut records = Vec::new();
    for (name, mechanism) in &changes.deletions {
        if !state
            .users
            .get(name)
            .is_some_and(|c| c.contains_key(mechanism))
        {
            return Err(BrokerError::UnknownUser(format!(
                "user '{name}' has no {mechanism} credential"
            )));
        }
        records.push(MetadataRecord::RemoveUserScramCredential {
            name: name.clone(),
            mechanism: *mechanism,
        });
    }
    for record in &changes.upsertions {
        check_iterations(record.credential.iterations)
            .map_err(BrokerError::UnacceptableCredential)?;
        if state.users.contains_key(&record.name) {
            match changes.create {
                CreateMode::Upsert => {}
                CreateMode::New => return Err(BrokerError::UserExists(record.name.clone())),
                CreateMode::IfAbsent => continue,
            }
        }
        records.push(MetadataRecord::UserScramCredential(record.clone()));
    }
    Ok(records)
}

/// The records of ACLs added (each checked; one that exists already is skipped) and
/// removed (ids that are gone already are skipped: another request removed them).
pub fn alter_acls(
    state: &ClusterState,
    create: &[crate::auth::acl::Acl],
    delete_ids: &[String],
) -> BrokerResult<Vec<MetadataRecord>> {
    let mut records = Vec::new();
    for id in delete_ids {
        if state.acls.contains_key(id) {
            records.push(MetadataRecord::RemoveAccessControlEntry { id: id.clone() });
        }
    }
    let mut adding: Vec<&crate::auth::acl::Acl> = Vec::new();
    for acl in create {
        acl.check().map_err(BrokerError::InvalidRequest)?;
        if state.acls.values().any(|a| a == acl) || adding.contains(&acl) {
            continue;
        }
        adding.push(acl);
        records.push(MetadataRecord::AccessControlEntry {
            id: Uuid::new_v4().to_string(),
            acl: acl.clone(),
        });
    }
    Ok(records)
}

/// The records of client quotas set and removed, each checked (a named entity, a
/// positive rate); removing a quota that is not there changes nothing.
pub fn alter_quotas(
    state: &ClusterState,
    changes: &[crate::quotas::QuotaChange],
) -> BrokerResult<Vec<MetadataRecord>> {
    let mut records = Vec::new();
    for change in changes {
        change.entity.check().map_err(BrokerError::InvalidRequest)?;
        if change.rate == Some(0) {
            return Err(BrokerError::InvalidRequest(format!(
                "{} must be a positive number of bytes per second",
                change.kind.key()
            )));
        }
        let current = state
            .quotas
            .quotas
            .get(&change.entity)
            .and_then(|k| k.get(&change.kind))
            .copied();
        if current != change.rate {
            records.push(MetadataRecord::ClientQuota(change.clone()));
        }
    }
    Ok(records)
}

/// The records that create `topic`: every replica in the ISR, the first active
/// one leading.
pub fn create_topic(
    state: &ClusterState,
    topic: &PlacedTopic,
) -> BrokerResult<Vec<MetadataRecord>> {
    if state.topic(&topic.name).is_some() {
        return Err(BrokerError::TopicExists(topic.name.clone()));
    }
    let mut records = vec![MetadataRecord::Topic(TopicRecord {
        name: topic.name.clone(),
        topic_id: topic.topic_id.clone(),
    })];
    records.extend(new_partitions(
        state,
        &topic.topic_id,
        0,
        &topic.assignments,
    ));
    records.extend(topic.configs.iter().map(|(name, value)| {
        MetadataRecord::Config(ConfigRecord {
            resource_type: ConfigResourceType::Topic,
            resource_name: topic.name.clone(),
            name: name.clone(),
            value: Some(value.clone()),
        })
    }));
    Ok(records)
}

/// The records that add partitions with `assignments` to topic `name`.
pub fn add_partitions(
    state: &ClusterState,
    name: &str,
    assignments: &[Vec<NodeId>],
) -> BrokerResult<Vec<MetadataRecord>> {
    let topic = state
        .topic(name)
        .ok_or_else(|| BrokerError::UnknownTopic(name.to_string()))?;
    let first = topic.partitions.len() as i32;
    Ok(new_partitions(state, &topic.topic_id, first, assignments))
}

fn new_partitions(
    state: &ClusterState,
    topic_id: &str,
    first: i32,
    assignments: &[Vec<NodeId>],
) -> Vec<MetadataRecord> {
    let active = |n: NodeId| state.brokers.get(&n).is_some_and(|b| b.is_active());
    assignments
        .iter()
        .enumerate()
        .map(|(i, replicas)| {
            MetadataRecord::Partition(PartitionRecord {
                topic_id: topic_id.to_string(),
                partition_id: PartitionId::new(first + i as i32),
                replicas: replicas.clone(),
                isr: replicas.clone(),
                leader: elect_leader(replicas, replicas, &active, false),
                leader_epoch: LeaderEpoch::FIRST,
                partition_epoch: PartitionEpoch::default(),
            })
        })
        .collect()
}

pub fn delete_topic(state: &ClusterState, name: &str) -> BrokerResult<Vec<MetadataRecord>> {
    let topic = state
        .topic(name)
        .ok_or_else(|| BrokerError::UnknownTopic(name.to_string()))?;
    Ok(vec![MetadataRecord::RemoveTopic {
        topic_id: topic.topic_id.clone(),
    }])
}

/// Sets (`Some`) or removes (`None`) topic configs.
pub fn alter_topic_configs(
    state: &ClusterState,
    name: &str,
    changes: &BTreeMap<String, Option<String>>,
) -> BrokerResult<Vec<MetadataRecord>> {
    if state.topic(name).is_none() {
        return Err(BrokerError::UnknownTopic(name.to_string()));
    }
    Ok(changes
        .iter()
        .map(|(key, value)| {
            MetadataRecord::Config(ConfigRecord {
                resource_type: ConfigResourceType::Topic,
                resource_name: name.to_string(),
                name: key.clone(),
                value: value.clone(),
            })
        })
        .collect())
}

/// A broker (re)registering: its registration, which fences a new incarnation, and
/// that incarnation's leaderships moved meanwhile. The same incarnation again (a
/// retry, or its listeners once bound) only updates its endpoints.
pub fn register_broker(
    state: &ClusterState,
    broker_id: NodeId,
    incarnation_id: Uuid,
    endpoints: Vec<BrokerEndpoint>,
) -> Vec<MetadataRecord> {
    let retry = state
        .brokers
        .get(&broker_id)
        .is_some_and(|b| b.incarnation_id == incarnation_id);
    let mut records = vec![MetadataRecord::RegisterBroker(RegisterBrokerRecord {
        broker_id,
        incarnation_id,
        endpoints,
    })];
    if !retry {
        records.extend(leave_leaderships(state, broker_id));
    }
    records
}

/// `broker_id` fenced (silent past its session timeout).
pub fn fence_broker(state: &ClusterState, broker_id: NodeId) -> Vec<MetadataRecord> {
    registration_change(state, broker_id, Some(true), None)
}

/// `broker_id` starting a controlled shutdown: its leaderships move first.
pub fn begin_controlled_shutdown(state: &ClusterState, broker_id: NodeId) -> Vec<MetadataRecord> {
    registration_change(state, broker_id, None, Some(true))
}

fn registration_change(
    state: &ClusterState,
    broker_id: NodeId,
    fenced: Option<bool>,
    in_controlled_shutdown: Option<bool>,
) -> Vec<MetadataRecord> {
    let Some(broker) = state.brokers.get(&broker_id) else {
        return Vec::new();
    };
    let unchanged = fenced.is_none_or(|f| f == broker.fenced)
        && in_controlled_shutdown.is_none_or(|s| s == broker.in_controlled_shutdown);
    let mut records = Vec::new();
    if !unchanged {
        records.push(MetadataRecord::BrokerRegistrationChange(
            BrokerRegistrationChangeRecord {
                broker_id,
                broker_epoch: broker.epoch,
                fenced,
                in_controlled_shutdown,
            },
        ));
    }
    records.extend(leave_leaderships(state, broker_id));
    records
}

/// The partition changes that take `gone` out of leaderships and ISRs (keeping it
/// as an ISR's last member).
fn leave_leaderships(state: &ClusterState, gone: NodeId) -> Vec<MetadataRecord> {
    let active = |n: NodeId| n != gone && state.brokers.get(&n).is_some_and(|b| b.is_active());
    changes(state, |p| {
        if !p.replicas.contains(&gone) {
            return None;
        }
        let isr: Vec<NodeId> = if p.isr.len() > 1 {
            p.isr.iter().copied().filter(|r| *r != gone).collect()
        } else {
            p.isr.clone()
        };
        let leader = if p.leader == gone || p.leader == NO_LEADER {
            elect_leader(&p.replicas, &isr, &active, false)
        } else {
            p.leader
        };
        Some((leader, isr))
    })
}

/// `broker_id` unfenced (it heartbeats and has caught up with the metadata): offline
/// partitions it can lead get it as leader.
pub fn unfence_broker(state: &ClusterState, broker_id: NodeId) -> Vec<MetadataRecord> {
    let Some(broker) = state.brokers.get(&broker_id) else {
        return Vec::new();
    };
    if !broker.fenced && !broker.in_controlled_shutdown {
        return Vec::new();
    }
    let mut records = vec![MetadataRecord::BrokerRegistrationChange(
        BrokerRegistrationChangeRecord {
            broker_id,
            broker_epoch: broker.epoch,
            fenced: Some(false),
            in_controlled_shutdown: Some(false),
        },
    )];
    let active = |n: NodeId| n == broker_id || state.brokers.get(&n).is_some_and(|b| b.is_active());
    records.extend(changes(state, |p| {
        (p.leader == NO_LEADER).then(|| {
            (
                elect_leader(&p.replicas, &p.isr, &active, false),
                p.isr.clone(),
            )
        })
    }));
    records
}

/// A leader for each offline partition that has an active broker in its ISR (one
/// became active, or the partition was created while none was) — or, where
/// `unclean(topic)` allows it (`unclean.leader.election.enable`), any active replica,
/// which becomes the ISR alone: records only the ISR had are lost, and it is logged.
pub fn elect_offline_leaders(
    state: &ClusterState,
    unclean: &dyn Fn(&str) -> bool,
) -> Vec<MetadataRecord> {
    let active = |n: NodeId| state.brokers.get(&n).is_some_and(|b| b.is_active());
    let mut records = Vec::new();
    for topic in state.topics.values() {
        let allowed = unclean(&topic.name);
        for (id, p) in &topic.partitions {
            if p.leader != NO_LEADER {
                continue;
            }
            let leader = elect_leader(&p.replicas, &p.isr, &active, allowed);
            if leader == NO_LEADER {
                continue;
            }
            let isr = if p.isr.contains(&leader) {
                p.isr.clone()
            } else {
                log::warn!(
                    "unclean leader election: {}-{id} is led by broker {leader}, which was not in its ISR {:?}; records only they had are lost",
                    topic.name,
                    p.isr
                );
                vec![leader]
            };
            records.push(MetadataRecord::PartitionChange(PartitionChangeRecord {
                topic_id: topic.topic_id.clone(),
                partition_id: *id,
                leader: Some(leader),
                isr: (isr != p.isr).then_some(isr),
                replicas: None,
                ..Default::default()
            }));
        }
    }
    records
}

/// Leaderships moved back to each partition's preferred (first) replica where it is
/// active, in sync and not leading (Kafka's `auto.leader.rebalance.enable`).
pub fn preferred_leader_elections(state: &ClusterState) -> Vec<MetadataRecord> {
    let active = |n: NodeId| state.brokers.get(&n).is_some_and(|b| b.is_active());
    changes(state, |p| {
        let preferred = *p.replicas.first()?;
        (p.leader != preferred && p.isr.contains(&preferred) && active(preferred))
            .then(|| (preferred, p.isr.clone()))
    })
}

/// A partition leader's proposed ISR (Kafka's AlterPartition): committed only if
/// `broker` still leads in `leader_epoch`, the partition is still at
/// `partition_epoch` (a proposal made against an older state is stale), the new ISR
/// holds the leader and only the partition's replicas, and every replica it adds is
/// on an active broker (KIP-841: a fenced or stopping broker never joins).
pub fn alter_isr(state: &ClusterState, change: &IsrChange) -> BrokerResult<Vec<MetadataRecord>> {
    let topic = state
        .topic(&change.topic)
        .ok_or_else(|| BrokerError::UnknownTopic(change.topic.clone()))?;
    let id = PartitionId::new(change.partition);
    let p = topic
        .partitions
        .get(&id)
        .ok_or_else(|| BrokerError::UnknownPartition {
            topic: change.topic.clone(),
            partition: change.partition,
        })?;
    let name = format!("{}-{}", change.topic, change.partition);
    if p.leader != change.leader || p.leader_epoch != change.leader_epoch {
        return Err(BrokerError::FencedLeaderEpoch(format!(
            "{name} is led by broker {} in epoch {}, not by {} in epoch {}",
            p.leader, p.leader_epoch, change.leader, change.leader_epoch
        )));
    }
    if p.partition_epoch != change.partition_epoch {
        return Err(BrokerError::InvalidUpdateVersion(format!(
            "{name} is at partition epoch {}, not {}",
            p.partition_epoch, change.partition_epoch
        )));
    }
    let mut isr = Vec::new();
    for r in &change.isr {
        if !p.replicas.contains(r) {
            return Err(BrokerError::InvalidRequest(format!(
                "broker {r} holds no replica of {name}"
            )));
        }
        if !isr.contains(r) {
            isr.push(*r);
        }
    }
    if !isr.contains(&change.leader) {
        return Err(BrokerError::InvalidRequest(format!(
            "the ISR of {name} must hold its leader"
        )));
    }
    let active = |n: &NodeId| state.brokers.get(n).is_some_and(|b| b.is_active());
    if let Some(r) = isr.iter().find(|r| !p.isr.contains(r) && !active(r)) {
        return Err(BrokerError::InvalidRequest(format!(
            "broker {r} is fenced or shutting down: it cannot join the ISR of {name}"
        )));
    }
    if isr == p.isr {
        return Ok(Vec::new());
    }
    Ok(vec![MetadataRecord::PartitionChange(
        PartitionChangeRecord {
            topic_id: topic.topic_id.clone(),
            partition_id: id,
            leader: None,
            isr: Some(isr),
            replicas: None,
            ..Default::default()
        },
    )])
}

/// Starts moving `topic`-`partition` to `target` (Kafka's
/// AlterPartitionReassignments, KIP-455): the replicas become the target followed by
/// the original ones it leaves out, the new ones start as followers and catch up,
/// and [`complete_reassignments`] drops the old ones once every target replica is in
/// the ISR. A reassignment in progress is replaced (measured from the original
/// replicas); a target equal to them cancels it.
pub fn reassign(
    state: &ClusterState,
    topic: &str,
    partition: i32,
    target: &[NodeId],
) -> BrokerResult<Vec<MetadataRecord>> {
    let t = state
        .topic(topic)
        .ok_or_else(|| BrokerError::UnknownTopic(topic.to_string()))?;
    let id = PartitionId::new(partition);
    let p = t
        .partitions
        .get(&id)
        .ok_or_else(|| BrokerError::UnknownPartition {
            topic: topic.to_string(),
            partition,
        })?;
    if target.is_empty() {
        return Err(BrokerError::InvalidReplicationFactor {
            requested: 0,
            available: state.brokers.len() as i32,
        });
    }
    for (i, r) in target.iter().enumerate() {
        if target[..i].contains(r) {
            return Err(BrokerError::InvalidRequest(format!(
                "broker {r} is named twice in the replicas of {topic}-{partition}"
            )));
        }
        if !state.brokers.contains_key(r) {
            return Err(BrokerError::InvalidRequest(format!(
                "broker {r} is not registered"
            )));
        }
    }
    let original = p.original_replicas();
    let adding: Vec<NodeId> = target
        .iter()
        .copied()
        .filter(|r| !original.contains(r))
        .collect();
    let removing: Vec<NodeId> = original
        .iter()
        .copied()
        .filter(|r| !target.contains(r))
        .collect();
    let mut replicas = target.to_vec();
    replicas.extend(removing.iter().copied());
    // Cancelling drops the replicas that were being added from the ISR too.
    let isr: Vec<NodeId> = p
        .isr
        .iter()
        .copied()
        .filter(|r| replicas.contains(r))
        .collect();
    if replicas == p.replicas && adding == p.adding && removing == p.removing {
        return Ok(Vec::new());
    }
    let leader_gone = !replicas.contains(&p.leader);
    let active = |n: NodeId| state.brokers.get(&n).is_some_and(|b| b.is_active());
    let leader = if leader_gone {
        elect_leader(&replicas, &isr, &active, false)
    } else {
        p.leader
    };
    Ok(vec![MetadataRecord::PartitionChange(
        PartitionChangeRecord {
            topic_id: t.topic_id.clone(),
            partition_id: id,
            leader: (leader != p.leader).then_some(leader),
            isr: (isr != p.isr && !isr.is_empty()).then_some(isr),
            replicas: Some(replicas),
            adding: Some(adding),
            removing: Some(removing),
        },
    )])
}

/// Finishes each reassignment whose target replicas are all in the ISR: the
/// replicas become the target (the removed ones stop and delete their copies), the
/// ISR keeps only target members, and a leader being removed hands over to an active
/// in-sync target replica (none yet: the reassignment waits).
pub fn complete_reassignments(state: &ClusterState) -> Vec<MetadataRecord> {
    let active = |n: NodeId| state.brokers.get(&n).is_some_and(|b| b.is_active());
    let mut records = Vec::new();
    for topic in state.topics.values() {
        for (id, p) in &topic.partitions {
            if p.adding.is_empty() && p.removing.is_empty() {
                continue;
            }
            let target = p.target_replicas();
            if !target.iter().all(|r| p.isr.contains(r)) {
                continue;
            }
            let isr: Vec<NodeId> = p
                .isr
                .iter()
                .copied()
                .filter(|r| target.contains(r))
                .collect();
            let leader = if target.contains(&p.leader) {
                p.leader
            } else {
                match target
                    .iter()
                    .copied()
                    .find(|r| isr.contains(r) && active(*r))
                {
                    Some(l) => l,
                    None => continue,
                }
            };
            log::info!(
                "reassignment of {}-{id} complete: replicas {target:?} (were {:?})",
                topic.name,
                p.replicas
            );
            records.push(MetadataRecord::PartitionChange(PartitionChangeRecord {
                topic_id: topic.topic_id.clone(),
                partition_id: *id,
                leader: (leader != p.leader).then_some(leader),
                isr: (isr != p.isr).then_some(isr),
                replicas: Some(target),
                adding: Some(Vec::new()),
                removing: Some(Vec::new()),
            }));
        }
    }
    records
}

/// What a leader proposes for its partition's ISR, and the state it proposes it
/// against.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IsrChange {
    pub topic: String,
    pub partition: i32,
    pub leader: NodeId,
    pub leader_epoch: LeaderEpoch,
    pub partition_epoch: PartitionEpoch,
    pub isr: Vec<NodeId>,
}

/// A PartitionChange for each partition where `decide` answers a leader and ISR
/// different from what it has.
fn changes(
    state: &ClusterState,
    decide: impl Fn(&PartitionState) -> Option<(NodeId, Vec<NodeId>)>,
) -> Vec<MetadataRecord> {
    let mut records = Vec::new();
    for topic in state.topics.values() {
        for (id, p) in &topic.partitions {
            let Some((leader, isr)) = decide(p) else {
                continue;
            };
            if leader == p.leader && isr == p.isr {
                continue;
            }
            records.push(MetadataRecord::PartitionChange(PartitionChangeRecord {
                topic_id: topic.topic_id.clone(),
                partition_id: *id,
                leader: (leader != p.leader).then_some(leader),
                isr: (isr != p.isr).then_some(isr),
                replicas: None,
                ..Default::default()
            }));
        }
    }
    records
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::placement::place;
    use proptest::prelude::*;

    fn node(n: i32) -> NodeId {
        NodeId::new(n)
    }

    /// A cluster of `brokers` registered and unfenced.
    fn cluster(brokers: i32) -> (ClusterState, u64) {
        let mut state = ClusterState::default();
        let mut index = 1;
        for b in 1..=brokers {
            let records = register_broker(&state, node(b), Uuid::new_v4(), vec![]);
            state.apply_batch(index, &records).unwrap();
            index += 1;
            state
                .apply_batch(index, &unfence_broker(&state, node(b)))
                .unwrap();
            index += 1;
        }
        (state, index)
    }

    fn new_topic(state: &ClusterState, name: &str, partitions: i32, factor: i16) -> PlacedTopic {
        PlacedTopic {
            name: name.into(),
            topic_id: format!("id-{name}"),
            assignments: place(&state.active_brokers(), partitions, 0, factor, 0).unwrap(),
            configs: BTreeMap::from([("retention.ms".into(), "1000".into())]),
        }
    }

    /// A topic `t` of one partition on brokers 1, 2, 3 (1 leading), committed.
    fn replicated(state: &mut ClusterState, index: &mut u64) {
        let topic = PlacedTopic {
            name: "t".into(),
            topic_id: "id-t".into(),
            assignments: vec![vec![node(1), node(2), node(3)]],
            configs: BTreeMap::new(),
        };
        state
            .apply_batch(*index, &create_topic(state, &topic).unwrap())
            .unwrap();
        *index += 1;
    }

    fn partition(state: &ClusterState) -> PartitionState {
        state.topic("t").unwrap().partitions[&PartitionId::new(0)].clone()
    }

    fn isr_change(state: &ClusterState, isr: &[i32]) -> IsrChange {
        let p = partition(state);
        IsrChange {
            topic: "t".into(),
            partition: 0,
            leader: p.leader,
            leader_epoch: p.leader_epoch,
            partition_epoch: p.partition_epoch,
            isr: isr.iter().map(|n| node(*n)).collect(),
        }
    }

    #[test]
    fn isr_changes_are_guarded_by_the_leader_and_partition_epochs() {
        let (mut state, mut index) = cluster(3);
        replicated(&mut state, &mut index);
        // The leader shrinks the ISR: committed, the partition epoch moves on.
        let shrink = isr_change(&state, &[1, 2]);
        let records = alter_isr(&state, &shrink).unwrap();
        state.apply_batch(index, &records).unwrap();
        index += 1;
        assert_eq!(partition(&state).isr, vec![node(1), node(2)]);
        // The same proposal again is stale: its partition epoch is past.
        assert!(matches!(
            alter_isr(&state, &shrink),
            Err(BrokerError::InvalidUpdateVersion(_))
        ));
        // A proposal from a broker that does not lead, or in an old leader epoch.
        let mut other = isr_change(&state, &[1, 2, 3]);
        other.leader = node(2);
        assert!(matches!(
            alter_isr(&state, &other),
            Err(BrokerError::FencedLeaderEpoch(_))
        ));
        // Fenced, broker 3 cannot come back in; the leader must stay in; only replicas.
        state
            .apply_batch(index, &fence_broker(&state, node(3)))
            .unwrap();
        index += 1;
        assert!(matches!(
            alter_isr(&state, &isr_change(&state, &[1, 2, 3])),
            Err(BrokerError::InvalidRequest(_))
        ));
        assert!(alter_isr(&state, &isr_change(&state, &[2])).is_err());
        assert!(alter_isr(&state, &isr_change(&state, &[1, 4])).is_err());
        // Unfenced, it rejoins.
        state
            .apply_batch(index, &unfence_broker(&state, node(3)))
            .unwrap();
        index += 1;
        let grow = alter_isr(&state, &isr_change(&state, &[1, 2, 3])).unwrap();
        state.apply_batch(index, &grow).unwrap();
        assert_eq!(partition(&state).isr.len(), 3);
    }

    #[test]
    fn a_reassignment_adds_catches_up_then_drops_and_moves_the_leader() {
        let (mut state, mut index) = cluster(4);
        replicated(&mut state, &mut index);
        let start = reassign(&state, "t", 0, &[node(4), node(2), node(3)]).unwrap();
        state.apply_batch(index, &start).unwrap();
        index += 1;
        let p = partition(&state);
        assert_eq!(p.replicas, vec![node(4), node(2), node(3), node(1)]);
        assert_eq!(
            (p.adding.clone(), p.removing.clone()),
            (vec![node(4)], vec![node(1)])
        );
        assert_eq!(
            p.leader,
            node(1),
            "the old leader leads until the move completes"
        );
        // Not complete while broker 4 is out of the ISR.
        assert!(complete_reassignments(&state).is_empty());
        let joined = alter_isr(&state, &isr_change(&state, &[1, 2, 3, 4])).unwrap();
        state.apply_batch(index, &joined).unwrap();
        index += 1;
        let done = complete_reassignments(&state);
        state.apply_batch(index, &done).unwrap();
        let p = partition(&state);
        assert_eq!(p.replicas, vec![node(4), node(2), node(3)]);
        assert!(p.adding.is_empty() && p.removing.is_empty());
        assert!(!p.isr.contains(&node(1)));
        assert_eq!(p.leader, node(4), "the first in-sync target replica leads");
        // Bad targets.
        assert!(reassign(&state, "t", 0, &[]).is_err());
        assert!(reassign(&state, "t", 0, &[node(2), node(2)]).is_err());
        assert!(reassign(&state, "t", 0, &[node(9)]).is_err());
        assert!(reassign(&state, "t", 1, &[node(2)]).is_err());
    }

    #[test]
    fn an_unclean_election_happens_only_where_the_topic_allows_it() {
        let (mut state, mut index) = cluster(3);
        replicated(&mut state, &mut index);
        // The ISR shrinks to the leader, which is then fenced: no clean candidate.
        let shrink = alter_isr(&state, &isr_change(&state, &[1])).unwrap();
        state.apply_batch(index, &shrink).unwrap();
        index += 1;
        state
            .apply_batch(index, &fence_broker(&state, node(1)))
            .unwrap();
        index += 1;
        assert!(partition(&state).is_offline());
        assert!(
            elect_offline_leaders(&state, &|_| false).is_empty(),
            "clean: stays offline"
        );
        let unclean = elect_offline_leaders(&state, &|t| t == "t");
        state.apply_batch(index, &unclean).unwrap();
        let p = partition(&state);
        assert_eq!(p.leader, node(2));
        assert_eq!(
            p.isr,
            vec![node(2)],
            "the out-of-sync leader is the ISR alone"
        );
    }

    #[test]
    fn a_fenced_leader_hands_over_and_comes_back_by_preferred_election() {
        let (mut state, mut index) = cluster(3);
        let topic = new_topic(&state, "t", 3, 3);
        state
            .apply_batch(index, &create_topic(&state, &topic).unwrap())
            .unwrap();
        index += 1;
        assert_eq!(state.topic_configs["t"]["retention.ms"], "1000");
        let led_by_1 = |s: &ClusterState| {
            s.topic("t")
                .unwrap()
                .partitions
                .values()
                .filter(|p| p.leader == node(1))
                .count()
        };
        assert_eq!(led_by_1(&state), 1);
        state
            .apply_batch(index, &fence_broker(&state, node(1)))
            .unwrap();
        index += 1;
        assert_eq!(led_by_1(&state), 0);
        for p in state.topic("t").unwrap().partitions.values() {
            assert!(!p.isr.contains(&node(1)), "fenced brokers leave the ISR");
            assert_ne!(p.leader, NO_LEADER);
        }
        state
            .apply_batch(index, &unfence_broker(&state, node(1)))
            .unwrap();
        index += 1;
        // Back in the ISR is replication's work; here it is put back by hand.
        let p0 = state
            .topic("t")
            .unwrap()
            .partitions
            .iter()
            .find(|(_, p)| p.replicas[0] == node(1))
            .map(|(id, _)| *id)
            .unwrap();
        let change = MetadataRecord::PartitionChange(PartitionChangeRecord {
            topic_id: "id-t".into(),
            partition_id: p0,
            leader: None,
            isr: Some(vec![node(1), node(2), node(3)]),
            replicas: None,
            ..Default::default()
        });
        state.apply_batch(index, &[change]).unwrap();
        index += 1;
        let elections = preferred_leader_elections(&state);
        assert_eq!(elections.len(), 1);
        state.apply_batch(index, &elections).unwrap();
        assert_eq!(led_by_1(&state), 1);
    }

    #[test]
    fn a_single_replica_partition_is_offline_while_its_broker_is_fenced() {
        let (mut state, mut index) = cluster(2);
        let topic = new_topic(&state, "t", 2, 1);
        state
            .apply_batch(index, &create_topic(&state, &topic).unwrap())
            .unwrap();
        index += 1;
        state
            .apply_batch(index, &fence_broker(&state, node(2)))
            .unwrap();
        index += 1;
        let offline: Vec<_> = state
            .topic("t")
            .unwrap()
            .partitions
            .values()
            .filter(|p| p.is_offline())
            .collect();
        assert_eq!(offline.len(), 1);
        assert_eq!(offline[0].isr, vec![node(2)], "the last ISR member stays");
        // A restart registers again (fenced), then unfences: it leads again.
        let records = register_broker(&state, node(2), Uuid::new_v4(), vec![]);
        state.apply_batch(index, &records).unwrap();
        index += 1;
        state
            .apply_batch(index, &unfence_broker(&state, node(2)))
            .unwrap();
        assert!(state
            .topic("t")
            .unwrap()
            .partitions
            .values()
            .all(|p| !p.is_offline()));
    }

    #[test]
    fn stale_and_invalid_batches_change_nothing() {
        let (mut state, index) = cluster(1);
        let before = state.clone();
        let stale = MetadataRecord::BrokerRegistrationChange(BrokerRegistrationChangeRecord {
            broker_id: node(1),
            broker_epoch: 0,
            fenced: Some(true),
            in_controlled_shutdown: None,
        });
        let topic = new_topic(&state, "t", 1, 1);
        let mut batch = create_topic(&state, &topic).unwrap();
        batch.push(stale);
        assert!(state.apply_batch(index, &batch).is_err());
        assert_eq!(state, before, "no half-applied batch");
        assert!(create_topic(&state, &topic).is_ok());
        state
            .apply_batch(index, &create_topic(&state, &topic).unwrap())
            .unwrap();
        assert_eq!(
            create_topic(&state, &topic),
            Err(BrokerError::TopicExists("t".into()))
        );
    }

    #[derive(Debug, Clone)]
    enum Op {
        Create { partitions: i32, factor: i16 },
        Delete(usize),
        Fence(i32),
        Shutdown(i32),
        Register(i32),
        Unfence(i32),
        Preferred,
        Restore(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (1i32..5, 1i16..4).prop_map(|(partitions, factor)| Op::Create { partitions, factor }),
            (0usize..4).prop_map(Op::Delete),
            (1i32..5).prop_map(Op::Fence),
            (1i32..5).prop_map(Op::Shutdown),
            (1i32..5).prop_map(Op::Register),
            (1i32..5).prop_map(Op::Unfence),
            Just(Op::Preferred),
            (0usize..8).prop_map(Op::Restore),
        ]
    }

    /// Every partition: replicas distinct, ISR a non-empty subset, the leader an
    /// active broker in the ISR, or none only when no ISR member is active.
    fn check_invariants(state: &ClusterState) -> Result<(), TestCaseError> {
        let active = |n: &NodeId| state.brokers.get(n).is_some_and(|b| b.is_active());
        for topic in state.topics.values() {
            for (id, p) in &topic.partitions {
                prop_assert!(!p.isr.is_empty(), "{id}: empty ISR");
                prop_assert!(p.isr.iter().all(|r| p.replicas.contains(r)));
                if p.leader == NO_LEADER {
                    prop_assert!(
                        !p.isr.iter().any(active),
                        "{id} offline with {:?} in sync",
                        p.isr
                    );
                } else {
                    prop_assert!(active(&p.leader), "{id} led by inactive {}", p.leader);
                    prop_assert!(p.isr.contains(&p.leader));
                }
            }
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn decisions_keep_the_invariants_and_epochs_only_rise(ops in proptest::collection::vec(op(), 1..40)) {
            let (mut state, mut index) = cluster(4);
            let mut created = 0;
            for op in ops {
                let before = state.clone();
                let records = match op {
                    Op::Create { partitions, factor } => {
                        created += 1;
                        let name = format!("t{created}");
                        match place(&state.active_brokers(), partitions, 0, factor, created) {
                            Ok(assignments) => create_topic(&state, &PlacedTopic {
                                name: name.clone(), topic_id: format!("id-{name}"), assignments,
                                configs: BTreeMap::new(),
                            }).unwrap(),
                            Err(_) => {
                                prop_assert!(factor as usize > state.active_brokers().len());
                                continue;
                            }
                        }
                    }
                    Op::Delete(i) => match state.topic_ids.keys().nth(i).cloned() {
                        Some(name) => delete_topic(&state, &name).unwrap(),
                        None => continue,
                    },
                    Op::Fence(b) => fence_broker(&state, node(b)),
                    Op::Shutdown(b) => begin_controlled_shutdown(&state, node(b)),
                    Op::Register(b) => register_broker(&state, node(b), Uuid::new_v4(), vec![]),
                    Op::Unfence(b) => unfence_broker(&state, node(b)),
                    Op::Preferred => preferred_leader_elections(&state),
                    // A replica back in sync (what replication will propose).
                    Op::Restore(i) => {
                        let found = state.topics.values().flat_map(|t| t.partitions.iter().map(move |(id, p)| (t, id, p))).nth(i);
                        match found {
                            Some((t, id, p)) if p.leader != NO_LEADER => {
                                let active = |n: &NodeId| state.brokers.get(n).is_some_and(|b| b.is_active());
                                let isr: Vec<NodeId> = p.replicas.iter().copied()
                                    .filter(|r| p.isr.contains(r) || active(r)).collect();
                                if isr == p.isr { continue; }
                                vec![MetadataRecord::PartitionChange(PartitionChangeRecord {
                                    topic_id: t.topic_id.clone(), partition_id: *id,
                                    leader: None, isr: Some(isr), replicas: None,
                                    ..Default::default()
                                })]
                            }
                            _ => continue,
                        }
                    }
                };
                let applied = state.apply_batch(index, &records);
                prop_assert!(applied.is_ok(), "{:?}: {:?}", records, applied);
                index += 1;
                check_invariants(&state)?;
                for (id, topic) in &state.topics {
                    let Some(old) = before.topics.get(id) else { continue };
                    for (p, now) in &topic.partitions {
                        let then = &old.partitions[p];
                        prop_assert!(now.leader_epoch >= then.leader_epoch);
                        prop_assert!(now.partition_epoch >= then.partition_epoch);
                        if now.leader != then.leader {
                            prop_assert!(now.leader_epoch > then.leader_epoch);
                        }
                    }
                }
            }
        }
    }
}
