//! `Controller`: the active controller, an actor that runs on the node leading the
//! metadata quorum and stops when it loses the lead. It takes the cluster's
//! decisions — topics created, grown, reconfigured and deleted; brokers registered,
//! fenced when silent past `broker.session.timeout.ms`, unfenced once caught up,
//! shut down in a controlled way; leaderships moved back to preferred replicas — and
//! commits each as records through the quorum before answering. It keeps nothing a
//! successor needs: a new active controller reads the same committed state (only
//! brokers' last heartbeats are its own, and it starts them afresh, as Kafka's does).
//!
//! Requests are decided one at a time, each on the state the previous one left
//! (committed and applied here before the next is looked at), so two requests never
//! decide on the same stale state.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use uuid::Uuid;

use super::decisions::{self, PlacedTopic};
use super::placement::place;
use super::quorum::{Applied, ProposeError, Quorum};
use super::records::{BrokerEndpoint, MetadataRecord};
use super::state::ClusterState;
use crate::broker::{assignment_shape, is_internal_topic, validate_topic_name};
use crate::clock::Clock;
use crate::error::{BrokerError, BrokerResult};
use crate::ids::NodeId;
use crate::requests::topics::NewTopic;
use crate::topic_config::{topic_config_def, validate_topic_config};

/// What the active controller is asked, by its own node or (over the controller
/// listener) by another: serializable, so the same request travels either way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ControllerRequest {
    CreateTopic(NewTopic),
    DeleteTopic {
        name: String,
    },
    CreatePartitions {
        name: String,
        count: i32,
        validate_only: bool,
    },
    AlterTopicConfigs {
        name: String,
        /// `Some` sets, `None` removes (back to the default).
        changes: BTreeMap<String, Option<String>>,
        validate_only: bool,
    },
    /// A broker starting (a new incarnation), or telling its listeners.
    RegisterBroker {
        broker_id: NodeId,
        incarnation_id: Uuid,
        endpoints: Vec<BrokerEndpoint>,
        /// A broker-only node's CONTROLLER listener: it is made a learner of the
        /// quorum there first, so the metadata log reaches it.
        #[serde(default)]
        observer_addr: Option<String>,
    },
    /// Kafka's BrokerHeartbeat: alive, how far it has applied the metadata, and
    /// whether it wants to stop (a controlled shutdown).
    Heartbeat {
        broker_id: NodeId,
        broker_epoch: i64,
        current_metadata_offset: u64,
        want_shut_down: bool,
    },
    /// A partition leader's new ISR (Kafka's AlterPartition).
    AlterIsr(decisions::IsrChange),
    /// Move a partition to these replicas (Kafka's AlterPartitionReassignments).
    Reassign {
        topic: String,
        partition: i32,
        replicas: Vec<NodeId>,
    },
    /// Users' SCRAM credentials set and removed, all or none (Kafka's
    /// AlterUserScramCredentials). The credentials are made by the asking broker:
    /// no password travels.
    AlterUserScramCredentials(decisions::ScramChanges),
    /// ACLs added (those that exist already are left as they are) and removed by id
    /// (Kafka's CreateAcls and DeleteAcls).
    AlterAcls {
        create: Vec<crate::auth::acl::Acl>,
        delete_ids: Vec<String>,
    },
    /// Client quotas set and removed together (Kafka's AlterClientQuotas).
    AlterClientQuotas(Vec<crate::quotas::QuotaChange>),
}

/// The controller's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControllerReply {
    /// The metadata log index the decision was committed at (0: nothing to commit,
    /// or validate-only). A broker waits until it has applied this before answering
    /// its client, so the client's next request sees the change.
    pub index: u64,
    /// For a created topic (also validate-only): its id, partitions and factor.
    pub topic: Option<CreatedTopic>,
    /// For a registration: the broker's epoch. For a heartbeat: its state.
    pub broker: Option<BrokerStanding>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedTopic {
    pub topic_id: String,
    pub partitions: i32,
    pub replication_factor: i16,
    pub configs: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerStanding {
    pub broker_epoch: i64,
    pub is_fenced: bool,
    pub is_caught_up: bool,
    /// A controlled shutdown may end: the broker leads nothing any more.
    pub should_shut_down: bool,
}

#[derive(Message, Debug, Clone)]
#[rtype(result = "BrokerResult<ControllerReply>")]
pub struct Decide(pub ControllerRequest);

/// What the controller needs from the node's configuration.
#[derive(Debug, Clone)]
pub struct ControllerSettings {
    pub node_id: NodeId,
    /// The cluster id a new metadata log is bootstrapped with.
    pub cluster_id: String,
    pub num_partitions: i32,
    pub default_replication_factor: i16,
    pub max_partitions_per_topic: i32,
    pub broker_session_timeout: Duration,
    pub auto_leader_rebalance: bool,
    pub leader_imbalance_check_interval: Duration,
    /// The node's topic-config defaults (`unclean.leader.election.enable`).
    pub topic_defaults: crate::topic_config::TopicDefaults,
    /// `__consumer_offsets`: its partition count, factor and configs, created once
    /// enough brokers are active.
    pub offsets_topic: OffsetsTopicSpec,
    /// The brokers a new cluster is expected to have (its voters): the offsets
    /// topic waits for them to register, so its partitions spread over them, or
    /// for one session timeout, whichever comes first.
    pub expected_brokers: usize,
    /// Topics of a data dir written before the metadata log existed
    /// (`topics.json`), committed once when the log is new.
    pub legacy_topics: Vec<crate::topic_store::TopicRecord>,
}

#[derive(Debug, Clone)]
pub struct OffsetsTopicSpec {
    pub partitions: i32,
    pub replication_factor: i16,
    pub configs: BTreeMap<String, String>,
}

pub struct Controller {
    quorum: Quorum,
    applied: watch::Receiver<Arc<Applied>>,
    settings: ControllerSettings,
    clock: Clock,
    /// Each broker's last heartbeat, as this controller saw it.
    last_contact: HashMap<NodeId, Instant>,
    /// Varies where topics' first replicas go (Kafka picks it at random).
    placements: usize,
    /// When this controller became active.
    started: Instant,
}

impl Controller {
    pub fn new(quorum: Quorum, settings: ControllerSettings, clock: Clock) -> Controller {
        let started = clock.monotonic();
        Controller {
            applied: quorum.applied(),
            quorum,
            settings,
            clock,
            last_contact: HashMap::new(),
            placements: 0,
            started,
        }
    }

    fn state(&self) -> Arc<Applied> {
        self.applied.borrow().clone()
    }

    /// Commits `records` (nothing when empty) and answers the index they are at.
    fn commit(
        &self,
        records: Vec<MetadataRecord>,
    ) -> impl std::future::Future<Output = BrokerResult<u64>> + 'static {
        let quorum = self.quorum.clone();
        async move {
            if records.is_empty() {
                return Ok(0);
            }
            quorum.propose(records).await.map_err(propose_error)
        }
    }

    /// The records a request decides, and the answer beside the index.
    fn decide(
        &mut self,
        request: &ControllerRequest,
    ) -> BrokerResult<(Vec<MetadataRecord>, ControllerReply)> {
        let applied = self.state();
        let state = &applied.state;
        let mut reply = ControllerReply {
            index: 0,
            topic: None,
            broker: None,
        };
        let records = match request {
            ControllerRequest::CreateTopic(spec) => {
                let topic = self.new_topic(state, spec)?;
                reply.topic = Some(CreatedTopic {
                    topic_id: topic.topic_id.clone(),
                    partitions: topic.assignments.len() as i32,
                    replication_factor: topic.assignments.first().map_or(0, |r| r.len() as i16),
                    configs: topic.configs.clone(),
                });
                if spec.validate_only {
                    Vec::new()
                } else {
                    decisions::create_topic(state, &topic)?
                }
            }
            ControllerRequest::DeleteTopic { name } => {
                if is_internal_topic(name) {
                    return Err(BrokerError::TopicIsInternal(name.clone()));
                }
                decisions::delete_topic(state, name)?
            }
            ControllerRequest::CreatePartitions {
                name,
                count,
                validate_only,
            } => {
                if is_internal_topic(name) {
                    return Err(BrokerError::TopicIsInternal(name.clone()));
                }
                let topic = state
                    .topic(name)
                    .ok_or_else(|| BrokerError::UnknownTopic(name.clone()))?;
                let current = topic.partitions.len() as i32;
                if *count <= current {
                    return Err(BrokerError::InvalidPartitions(format!(
                        "topic '{name}' has {current} partitions; the count can only grow"
                    )));
                }
                self.check_partition_count(*count)?;
                let factor = topic
                    .partitions
                    .values()
                    .next()
                    .map_or(1, |p| p.replicas.len() as i16);
                let assignments = place(
                    &state.active_brokers(),
                    count - current,
                    current,
                    factor,
                    self.next_start(),
                )?;
                if *validate_only {
                    Vec::new()
                } else {
                    decisions::add_partitions(state, name, &assignments)?
                }
            }
            ControllerRequest::AlterTopicConfigs {
                name,
                changes,
                validate_only,
            } => {
                if is_internal_topic(name) {
                    return Err(BrokerError::TopicIsInternal(name.clone()));
                }
                let current = state.topic_configs.get(name).cloned().unwrap_or_default();
                let mut checked = BTreeMap::new();
                for (key, value) in changes {
                    let value = match value {
                        Some(v) => Some(validate_topic_config(key, v)?),
                        None if topic_config_def(key).is_none() => {
                            return Err(BrokerError::InvalidConfig {
                                name: key.clone(),
                                reason: "unknown topic config".into(),
                            })
                        }
                        None => None,
                    };
                    if current.get(key) != value.as_ref() {
                        checked.insert(key.clone(), value);
                    }
                }
                if *validate_only {
                    state
                        .topic(name)
                        .ok_or_else(|| BrokerError::UnknownTopic(name.clone()))?;
                    Vec::new()
                } else {
                    decisions::alter_topic_configs(state, name, &checked)?
                }
            }
            ControllerRequest::RegisterBroker {
                broker_id,
                incarnation_id,
                endpoints,
                ..
            } => {
                self.last_contact.insert(*broker_id, self.clock.monotonic());
                decisions::register_broker(state, *broker_id, *incarnation_id, endpoints.clone())
            }
            ControllerRequest::AlterIsr(change) => decisions::alter_isr(state, change)?,
            ControllerRequest::Reassign {
                topic,
                partition,
                replicas,
            } => decisions::reassign(state, topic, *partition, replicas)?,
            ControllerRequest::AlterUserScramCredentials(changes) => {
                decisions::alter_scram_credentials(state, changes)?
            }
            ControllerRequest::AlterAcls { create, delete_ids } => {
                decisions::alter_acls(state, create, delete_ids)?
            }
            ControllerRequest::AlterClientQuotas(changes) => {
                decisions::alter_quotas(state, changes)?
            }
            ControllerRequest::Heartbeat {
                broker_id,
                broker_epoch,
                current_metadata_offset,
                want_shut_down,
            } => {
                let broker = state.brokers.get(broker_id).ok_or_else(|| {
                    BrokerError::StaleBrokerEpoch(format!("broker {broker_id} is not registered"))
                })?;
                if broker.epoch != *broker_epoch {
                    return Err(BrokerError::StaleBrokerEpoch(format!(
                        "broker {broker_id}'s registration is epoch {}, not {broker_epoch}",
                        broker.epoch
                    )));
                }
                self.last_contact.insert(*broker_id, self.clock.monotonic());
                let caught_up = *current_metadata_offset >= broker.epoch as u64;
                let records = if *want_shut_down {
                    decisions::begin_controlled_shutdown(state, *broker_id)
                } else if broker.fenced && caught_up {
                    decisions::unfence_broker(state, *broker_id)
                } else {
                    Vec::new()
                };
                reply.broker = Some(BrokerStanding {
                    broker_epoch: broker.epoch,
                    is_fenced: broker.fenced,
                    is_caught_up: caught_up,
                    should_shut_down: false,
                });
                records
            }
        };
        Ok((records, reply))
    }

    /// The topic a create request asks for, checked as Kafka's controller checks it,
    /// with its replicas placed.
    fn new_topic(&mut self, state: &ClusterState, spec: &NewTopic) -> BrokerResult<PlacedTopic> {
        validate_topic_name(&spec.name)?;
        if state.topic(&spec.name).is_some() {
            return Err(BrokerError::TopicExists(spec.name.clone()));
        }
        if is_internal_topic(&spec.name) {
            // Kafka's controller refuses these too: the cluster creates them itself.
            return Err(BrokerError::InvalidRequest(format!(
                "topic '{}' is internal: the broker creates it itself",
                spec.name
            )));
        }
        let registered: Vec<NodeId> = state.brokers.keys().copied().collect();
        let assignments = if spec.replicas_assignments.is_empty() {
            let partitions = match spec.partitions {
                None | Some(-1) => self.settings.num_partitions,
                Some(n) => n,
            };
            let factor = match spec.replication_factor {
                None | Some(-1) => self.settings.default_replication_factor,
                Some(n) => n,
            };
            self.check_partition_count(partitions)?;
            place(
                &state.active_brokers(),
                partitions,
                0,
                factor,
                self.next_start(),
            )?
        } else {
            let unset = |v: Option<i64>| matches!(v, None | Some(-1));
            if !unset(spec.partitions.map(i64::from))
                || !unset(spec.replication_factor.map(i64::from))
            {
                return Err(BrokerError::InvalidRequest(
                    "both partitions_count or replication_factor and replicas_assignments were set: only one may be used".into(),
                ));
            }
            let (partitions, _) = assignment_shape(&spec.replicas_assignments, &registered)?;
            self.check_partition_count(partitions)?;
            let mut sorted = spec.replicas_assignments.clone();
            sorted.sort_by_key(|(p, _)| *p);
            sorted.into_iter().map(|(_, replicas)| replicas).collect()
        };
        let configs = spec
            .configs
            .iter()
            .map(|(k, v)| Ok((k.clone(), validate_topic_config(k, v)?)))
            .collect::<BrokerResult<BTreeMap<_, _>>>()?;
        Ok(PlacedTopic {
            name: spec.name.clone(),
            topic_id: crate::topic_store::new_id(),
            assignments,
            configs,
        })
    }

    fn check_partition_count(&self, count: i32) -> BrokerResult<()> {
        if count < 1 || count > self.settings.max_partitions_per_topic {
            return Err(BrokerError::InvalidPartitions(format!(
                "{count} is not between 1 and max.partitions.per.topic = {}",
                self.settings.max_partitions_per_topic
            )));
        }
        Ok(())
    }

    fn next_start(&mut self) -> usize {
        self.placements += 1;
        self.placements
    }

    /// What the controller does on its own each tick: bootstrap a new log (cluster
    /// id, topics of an older data dir), create `__consumer_offsets` once enough
    /// brokers are active, fence the silent brokers, and move leaderships back to
    /// preferred replicas.
    fn housekeeping(&mut self, now: Instant, rebalance: bool) -> Vec<MetadataRecord> {
        let applied = self.state();
        let state = &applied.state;
        let mut records = Vec::new();
        if state.cluster_id.is_none() {
            records.push(MetadataRecord::Bootstrap {
                cluster_id: self.settings.cluster_id.clone(),
            });
            records.extend(forwarding_key());
            records.extend(self.legacy_records());
            return records;
        }
        if state.forwarding_key.is_none() {
            // A log bootstrapped before forwarding keys existed.
            return forwarding_key().into_iter().collect();
        }
        let timeout = self.settings.broker_session_timeout;
        for broker in state.brokers.values().filter(|b| !b.fenced) {
            let last = *self.last_contact.entry(broker.id).or_insert(now);
            if now.saturating_duration_since(last) > timeout {
                log::warn!(
                    "broker {} has not heartbeated for {} ms (broker.session.timeout.ms): fencing it",
                    broker.id,
                    timeout.as_millis()
                );
                records.extend(decisions::fence_broker(state, broker.id));
                // One fence per tick: each is decided on the state the last left.
                return records;
            }
        }
        let defaults = &self.settings.topic_defaults;
        let no_overrides = BTreeMap::new();
        let unclean = |name: &str| {
            defaults.unclean_leader_election(state.topic_configs.get(name).unwrap_or(&no_overrides))
        };
        let elections = decisions::elect_offline_leaders(state, &unclean);
        if !elections.is_empty() {
            return elections;
        }
        let reassigned = decisions::complete_reassignments(state);
        if !reassigned.is_empty() {
            return reassigned;
        }
        let offsets = crate::group::offsets_topic::OFFSETS_TOPIC;
        let active = state.active_brokers();
        let waited = now.saturating_duration_since(self.started) >= timeout;
        let expected = active.len() >= self.settings.expected_brokers;
        if state.topic(offsets).is_none() && (expected || waited) {
            let spec = &self.settings.offsets_topic;
            if let Ok(assignments) = place(&active, spec.partitions, 0, spec.replication_factor, 0)
            {
                let topic = PlacedTopic {
                    name: offsets.to_string(),
                    topic_id: crate::topic_store::new_id(),
                    assignments,
                    configs: spec.configs.clone(),
                };
                if let Ok(created) = decisions::create_topic(state, &topic) {
                    log::info!("creating {offsets} with {} partition(s)", spec.partitions);
                    return created;
                }
            }
        }
        if rebalance && self.settings.auto_leader_rebalance {
            records.extend(decisions::preferred_leader_elections(state));
        }
        records
    }

    /// Commits what [`Self::housekeeping`] finds to do, and looks again once it is
    /// committed (a bootstrap, then the offsets topic, follow one another at once).
    /// One at a time, like requests: each decides on what the last left.
    fn housekeep(&mut self, ctx: &mut Context<Self>, rebalance: bool) {
        let now = self.clock.monotonic();
        let records = self.housekeeping(now, rebalance);
        if records.is_empty() {
            return;
        }
        let commit = self.commit(records);
        ctx.wait(
            actix::fut::wrap_future(commit).map(|result, act: &mut Self, ctx| match result {
                Ok(_) => act.housekeep(ctx, false),
                Err(e) => log::warn!("controller housekeeping: {e}"),
            }),
        );
    }

    /// The topics of a data dir from before the metadata log, as records: each keeps
    /// its id, partitions (on this node, which held them all) and configs.
    fn legacy_records(&self) -> Vec<MetadataRecord> {
        let node = self.settings.node_id;
        let mut records = Vec::new();
        let state = self.state();
        for t in &self.settings.legacy_topics {
            let topic = PlacedTopic {
                name: t.name.clone(),
                topic_id: t.topic_id.clone(),
                assignments: vec![vec![node]; t.partitions.max(0) as usize],
                configs: t.configs.clone(),
            };
            // Led by this node if it is already active; if not, it is given them
            // when it is (offline partitions get a leader as soon as one can lead).
            match decisions::create_topic(&state.state, &topic) {
                Ok(created) => records.extend(created),
                Err(e) => log::warn!(
                    "topic {} of the older data dir is not carried over: {e}",
                    t.name
                ),
            }
        }
        if !records.is_empty() {
            log::info!(
                "moving {} topic(s) of topics.json into the metadata log",
                self.settings.legacy_topics.len()
            );
        }
        records
    }
}

/// A proposal's failure as the engine's error.
fn propose_error(e: ProposeError) -> BrokerError {
    match e {
        ProposeError::NotLeader { leader } => BrokerError::NotController(match leader {
            Some(l) => format!("this node no longer leads the metadata quorum; node {l} does"),
            None => "the metadata quorum is electing a leader".into(),
        }),
        ProposeError::Refused(reason) => BrokerError::InvalidRequest(reason),
        ProposeError::NoMajority { answered, voters } => BrokerError::Unavailable(format!(
            "the metadata quorum has no majority: {} of {voters} controllers are reachable; nothing was changed",
            answered.len()
        )),
        ProposeError::QuorumUnavailable { timeout_ms } => BrokerError::Unavailable(format!(
            "the metadata quorum did not commit within {timeout_ms} ms: too few controllers are reachable; \
             the change may still be applied when they return"
        )),
        other => BrokerError::Unavailable(other.to_string()),
    }
}

impl Actor for Controller {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        log::info!("node {} is the active controller", self.settings.node_id);
        // A new controller gives every broker a full session from now.
        let now = self.clock.monotonic();
        let ids: Vec<NodeId> = self.state().state.brokers.keys().copied().collect();
        for id in ids {
            self.last_contact.insert(id, now);
        }
        let tick = (self.settings.broker_session_timeout / 4)
            .clamp(Duration::from_millis(50), Duration::from_millis(250));
        let mut last_rebalance = now;
        self.clock
            .run_interval(ctx, tick, move |act: &mut Self, ctx| {
                let now = act.clock.monotonic();
                let rebalance = now.saturating_duration_since(last_rebalance)
                    >= act.settings.leader_imbalance_check_interval;
                if rebalance {
                    last_rebalance = now;
                }
                act.housekeep(ctx, rebalance);
            });
        self.housekeep(ctx, false);
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        log::info!(
            "node {} is no longer the active controller",
            self.settings.node_id
        );
    }
}

impl Handler<Decide> for Controller {
    type Result = AtomicResponse<Self, BrokerResult<ControllerReply>>;

    fn handle(&mut self, Decide(request): Decide, _: &mut Context<Self>) -> Self::Result {
        let decided = self.decide(&request);
        let (records, reply) = match decided {
            Ok(d) => d,
            Err(e) => return AtomicResponse::new(Box::pin(actix::fut::ready(Err(e)))),
        };
        let commit = self.commit(records);
        let learner = match &request {
            ControllerRequest::RegisterBroker {
                broker_id,
                observer_addr: Some(addr),
                ..
            } => Some((broker_id.get() as u64, addr.clone())),
            _ => None,
        };
        let quorum = self.quorum.clone();
        let commit = async move {
            if let Some((id, addr)) = learner {
                quorum.add_learner(id, &addr).await.map_err(propose_error)?;
            }
            commit.await
        };
        AtomicResponse::new(Box::pin(actix::fut::wrap_future(commit).map(
            move |result, act: &mut Self, ctx| {
                let index = result?;
                let mut reply = reply;
                reply.index = index;
                // A heartbeat's answer tells what the committed state now says.
                if let (
                    ControllerRequest::Heartbeat {
                        broker_id,
                        want_shut_down,
                        ..
                    },
                    Some(standing),
                ) = (&request, reply.broker.as_mut())
                {
                    let applied = act.state();
                    if let Some(b) = applied.state.brokers.get(broker_id) {
                        standing.is_fenced = b.fenced;
                    }
                    standing.should_shut_down =
                        *want_shut_down && !leads_anything(&applied.state, *broker_id);
                }
                // A registration or unfence may let the offsets topic be created, or
                // offline partitions be led.
                ctx.notify(Housekeep);
                if let ControllerRequest::RegisterBroker { broker_id, .. } = &request {
                    let applied = act.state();
                    reply.broker = applied
                        .state
                        .brokers
                        .get(broker_id)
                        .map(|b| BrokerStanding {
                            broker_epoch: b.epoch,
                            is_fenced: b.fenced,
                            is_caught_up: false,
                            should_shut_down: false,
                        });
                }
                Ok(reply)
            },
        )))
    }
}

/// Runs the controller's housekeeping now.
#[derive(Message)]
#[rtype(result = "()")]
struct Housekeep;

impl Handler<Housekeep> for Controller {
    type Result = ();

    fn handle(&mut self, _: Housekeep, ctx: &mut Context<Self>) {
        self.housekeep(ctx, false);
    }
}

fn leads_anything(state: &ClusterState, broker: NodeId) -> bool {
    state
        .topics
        .values()
        .flat_map(|t| t.partitions.values())
        .any(|p| p.leader == broker)
}

/// A new forwarding key's record (none, logged, when the OS gives no randomness: the
/// next tick tries again).
fn forwarding_key() -> Option<MetadataRecord> {
    match crate::auth::forwarding::ForwardingKey::generate() {
        Ok(key) => Some(MetadataRecord::ForwardingKey { key }),
        Err(e) => {
            log::error!("making the cluster's forwarding key: {e}");
            None
        }
    }
}
