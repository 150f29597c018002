//! `Broker`: this node's view of the cluster's metadata, and its front to the
//! controller — Kafka's broker metadata listener and its forwarding of admin
//! requests. It applies each committed state of the metadata quorum, in order and
//! never backwards: publishes the resulting [`MetadataImage`], has the
//! [`ReplicaManager`] start, re-role and stop the partition replicas the image gives
//! this node (with the leader epochs it gives), closes and deletes the directories
//! of removed topics, and hands changed configs to the partitions. Admin requests
//! (create, grow, reconfigure, delete topics) go to the active controller, which
//! decides and commits them; the answer comes once this node has applied the
//! commit, so a client's next request here sees its change.
//!
//! It registers this broker with the controller when it starts (a new incarnation
//! id each start), heartbeats every `broker.heartbeat.interval.ms`, and on
//! [`ShutdownBroker`] asks for a controlled shutdown (its leaderships move first)
//! before closing its partitions.
//!
//! `topics.json` keeps the data dir's identity (cluster id, node id, format); the
//! topics of a dir written before the metadata log are handed to the controller
//! once, to commit as the log's first records (see [`crate::topic_store`]).
//!
//! Supervised ([`crate::supervision`]): after a panic it applies the quorum's latest
//! state again, so the replica manager restarts whatever a half-done change stopped.
//! Routing never crosses its mailbox, so produce and fetch go on meanwhile. Once its
//! budget is spent it refuses admin requests with why, and the published image stays.
//!
//! It also hands out producer ids ([`producer_ids`]).

pub mod messages;
pub mod producer_ids;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use uuid::Uuid;

use crate::broker_config::BrokerConfig;
use crate::clock::Clock;
use crate::controller::active::{BrokerStanding, ControllerRequest};
use crate::controller::channel::ControllerChannel;
use crate::controller::quorum::{Applied, Quorum};
use crate::controller::records::BrokerEndpoint;
use crate::error::{BrokerError, BrokerResult};
use crate::ids::{NodeId, PartitionId};
use crate::log_manager::{remove_dirs_later, LogManager};
use crate::metadata::{Endpoint, MetadataImage, MetadataPublisher, MetadataView};
use crate::partition::{PartitionLimits, ReplicationSettings, UpdateConfig};
use crate::replica_fetcher::FetcherSettings;
use crate::replica_manager::{close_all, Fetching, ReplicaManager};
use crate::requests::remote::{PeerSettings, Peers};
use crate::requests::Routes;
use crate::supervision::{ActorKind, Supervise, Supervision, Verdict};
use crate::topic_config::{ConfigEntry, PartitionConfig};
use crate::topic_store::{StoredMetadata, TopicStore};
pub use messages::*;
use producer_ids::ProducerIdManager;

/// Kafka's limit on topic names.
pub const MAX_TOPIC_NAME_CHARS: usize = 249;

/// Kafka's topic name rules: 1-249 characters of `[a-zA-Z0-9._-]`, and not `.` or `..`.
pub fn validate_topic_name(name: &str) -> BrokerResult<()> {
    let invalid = |reason: &str| {
        Err(BrokerError::InvalidTopicName {
            name: name.to_string(),
            reason: reason.to_string(),
        })
    };
    if name.is_empty() {
        return invalid("the name is empty");
    }
    if name == "." || name == ".." {
        return invalid("'.' and '..' are not allowed");
    }
    if name.chars().count() > MAX_TOPIC_NAME_CHARS {
        return invalid("longer than 249 characters");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-')
    {
        return invalid("only ASCII letters, digits, '.', '_' and '-' are allowed");
    }
    Ok(())
}

/// Topics Kafka itself owns (its `Topic.INTERNAL_TOPICS`); read-only to the admin API,
/// and no client may create one.
pub fn is_internal_topic(name: &str) -> bool {
    name == "__consumer_offsets" || name == "__transaction_state"
}

/// Checks a manual replica assignment as Kafka's controller does and answers the
/// partition count and replication factor it implies: partitions numbered 0..n
/// once each, every partition with the same number of distinct replicas, every
/// replica a live broker.
pub(crate) fn assignment_shape(
    assignment: &[(PartitionId, Vec<NodeId>)],
    live_brokers: &[NodeId],
) -> BrokerResult<(i32, i16)> {
    let invalid = |m: String| Err(BrokerError::InvalidRequest(m));
    let mut partitions: Vec<i32> = assignment.iter().map(|(p, _)| p.get()).collect();
    partitions.sort_unstable();
    if partitions
        .iter()
        .enumerate()
        .any(|(i, p)| *p as i64 != i as i64)
    {
        return invalid(format!(
            "replicas_assignments names partitions {partitions:?}: they must be 0 to n-1, each once"
        ));
    }
    let replicas = assignment[0].1.len();
    for (partition, brokers) in assignment {
        if brokers.is_empty() {
            return invalid(format!("partition {partition} has no replicas"));
        }
        if brokers.len() != replicas {
            return invalid(format!(
                "partition {partition} has {} replicas where partition {} has {replicas}: all partitions need the same number",
                brokers.len(),
                assignment[0].0
            ));
        }
        let mut distinct = brokers.clone();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() != brokers.len() {
            return invalid(format!(
                "partition {partition} names a broker twice in {brokers:?}"
            ));
        }
        if let Some(b) = brokers.iter().find(|b| !live_brokers.contains(b)) {
            return invalid(format!(
                "partition {partition} is assigned to broker {b}, which is not registered (brokers: {live_brokers:?})"
            ));
        }
    }
    let replication_factor = i16::try_from(replicas)
        .map_err(|_| BrokerError::InvalidRequest(format!("{replicas} replicas per partition")))?;
    Ok((partitions.len() as i32, replication_factor))
}

/// How long an admin request waits for this node to apply what the controller
/// committed for it.
const APPLY_WAIT: Duration = Duration::from_secs(30);
/// How long a controlled shutdown waits for this broker's leaderships to move.
const CONTROLLED_SHUTDOWN_WAIT: Duration = Duration::from_secs(10);
/// Pause before registering again after a failed registration.
const REGISTRATION_RETRY: Duration = Duration::from_millis(500);

pub struct Broker {
    config: BrokerConfig,
    store: TopicStore,
    identity: StoredMetadata,
    /// A new one each start: the controller tells a restart from a retried
    /// registration by it.
    incarnation_id: Uuid,
    quorum: Quorum,
    channel: ControllerChannel,
    /// The metadata as last applied here.
    applied: Arc<Applied>,
    /// Each topic with replicas here: its id and effective config. A topic deleted
    /// and created again under its name has a new id, and its old replicas stop
    /// (and their directories go) before the new ones start.
    running: BTreeMap<String, (String, PartitionConfig)>,
    logs: LogManager,
    replicas: ReplicaManager,
    metadata: MetadataPublisher,
    /// Producer ids for InitProducerId; kept across a restart (its block stays valid).
    producer_ids: ProducerIdManager,
    clock: Clock,
    supervision: Supervision,
    /// This broker's advertised listeners, as registered.
    endpoints: Vec<Endpoint>,
    /// This incarnation's registration epoch, once registered.
    broker_epoch: Option<i64>,
    heartbeat_in_flight: bool,
    /// How the request layer reaches partitions led by other brokers.
    peers: Arc<Peers>,
}

/// The time limit of a request forwarded to another broker (beyond a fetch's own
/// long poll): a produce waits for the leader's fsync.
const PEER_TIMEOUT: Duration = Duration::from_secs(30);
/// Forwarded requests in flight per peer broker.
const PEER_MAX_INFLIGHT: usize = 64;

/// A committed state of the metadata quorum, applied here in order.
#[derive(Message)]
#[rtype(result = "()")]
struct MetadataApplied(Arc<Applied>);

impl Broker {
    /// The broker of this node over `quorum`, reaching the controller through
    /// `channel`; `store` and `identity` are the data dir's (see [`crate::node`]).
    /// Starts the partitions the metadata already gives this node. Must run inside
    /// an actix system.
    pub fn open(
        config: BrokerConfig,
        clock: Clock,
        quorum: Quorum,
        channel: ControllerChannel,
        store: TopicStore,
        identity: StoredMetadata,
    ) -> BrokerResult<Broker> {
        let logs = LogManager::open(&config.log_dir, config.reserved_file_descriptors)?;
        let limits = PartitionLimits {
            mailbox_capacity: config.partition_mailbox_capacity,
            max_waiting_fetches: config.partition_max_waiting_fetches,
            restart_policy: config.restart_policy(),
            retention_check_interval: Duration::from_millis(
                config.retention_check_interval_ms.max(1),
            ),
            tail_buffer_chunks: config.partition_tail_buffer_chunks,
            tail_chunk_max_bytes: config.partition_tail_chunk_max_bytes,
            producer_id_expiration_ms: config.producer_id_expiration_ms,
        };
        let supervision = Supervision::new(ActorKind::Broker, config.restart_policy());
        let replication = &config.cluster.replication;
        let replicas = ReplicaManager::new(
            config.partition_threads,
            limits,
            clock.clone(),
            ReplicationSettings {
                node: config.node_id,
                lag_time_max: Duration::from_millis(replication.lag_time_max_ms),
                controller: Some(channel.clone()),
            },
            Some(Fetching {
                settings: FetcherSettings {
                    node: config.node_id,
                    cluster_id: identity.cluster_id.clone(),
                    wait_max_ms: replication.fetch_wait_max_ms,
                    max_bytes: replication.fetch_max_bytes,
                    response_max_bytes: replication.fetch_response_max_bytes,
                    backoff: Duration::from_millis(replication.fetch_backoff_ms),
                    tls: config.cluster.inter_broker_tls.clone(),
                },
                listener: config.cluster.inter_broker_listener_name.clone(),
            }),
        );
        let metadata = MetadataPublisher::new(MetadataImage::single_node(
            identity.cluster_id.clone(),
            config.node_id,
        ));
        let producer_ids = ProducerIdManager::new(&config.log_dir, config.node_id);
        let applied = quorum.applied().borrow().clone();
        let peers = Arc::new(Peers::new(PeerSettings {
            node_id: config.node_id,
            listener: config.cluster.inter_broker_listener_name.clone(),
            timeout: PEER_TIMEOUT,
            max_inflight: PEER_MAX_INFLIGHT,
            tls: config.cluster.inter_broker_tls.clone(),
        }));
        let mut broker = Broker {
            config,
            store,
            identity,
            incarnation_id: Uuid::new_v4(),
            quorum,
            channel,
            applied,
            running: BTreeMap::new(),
            logs,
            replicas,
            metadata,
            producer_ids,
            clock,
            supervision,
            endpoints: Vec::new(),
            broker_epoch: None,
            heartbeat_in_flight: false,
            peers,
        };
        // Nothing runs yet, so nothing is doomed: the partitions start at once.
        let image = broker.image();
        broker.apply_image(image);
        log::info!(
            "broker {} of cluster {} (incarnation {}) serving from {}",
            broker.config.node_id,
            broker.identity.cluster_id,
            broker.incarnation_id,
            broker.config.log_dir.display()
        );
        Ok(broker)
    }

    /// Readers' handles on what the broker publishes.
    pub fn routes(&self) -> Routes {
        Routes::new(
            self.metadata.view(),
            self.replicas.view(),
            self.peers.clone(),
        )
    }

    /// The image the applied metadata gives this node.
    fn image(&self) -> MetadataImage {
        let defaults = &self.config.topic_defaults;
        let interval = self.config.recovery_point_checkpoint_interval_ms;
        let effective = |overrides: &BTreeMap<String, String>| {
            let config = defaults.partition_config(overrides, interval);
            crate::controller::state::EffectiveTopic {
                max_message_bytes: config.log.max_message_bytes,
                compacted: config.cleanup_compact,
                min_insync_replicas: defaults.min_insync_replicas(overrides),
            }
        };
        let controller = self
            .channel
            .active_controller()
            .unwrap_or(crate::controller::records::NO_LEADER);
        let mut image = self
            .applied
            .state
            .image(self.config.node_id, controller, &effective);
        image.metadata_offset = self.applied.index;
        if !self.may_lead() {
            // The registration replayed is the incarnation before this one: fenced
            // to this node's own readers (its start waits for its own).
            if let Some(me) = image.brokers.get_mut(&self.config.node_id) {
                me.fenced = true;
            }
        }
        image
    }

    /// Applies a newer committed state: first stops the replicas of topics it
    /// removes (or recreates) and deletes their directories, then starts, re-roles
    /// and reconfigures the rest and publishes the image. Nothing else is handled
    /// meanwhile, so states apply one after another.
    fn on_applied(&mut self, applied: Arc<Applied>, ctx: &mut Context<Self>) {
        if applied.index < self.applied.index {
            return;
        }
        self.applied = applied;
        self.migrate_identity();
        self.reapply(ctx);
        self.heartbeat_if_catching_up(ctx);
    }

    /// Brings the replicas in line with the applied state (see [`Self::on_applied`]).
    fn reapply(&mut self, ctx: &mut Context<Self>) {
        let image = self.image();
        self.stop_moved(&image, ctx);
        let doomed: Vec<String> = self
            .running
            .iter()
            .filter(|(name, (id, _))| image.topics.get(*name).is_none_or(|t| &t.topic_id != id))
            .map(|(name, _)| name.clone())
            .collect();
        if doomed.is_empty() {
            self.apply_image(image);
            return;
        }
        let mut stopping = Vec::new();
        let mut dirs = Vec::new();
        for name in &doomed {
            self.running.remove(name);
            let replicas = self.replicas.remove_topic(name);
            dirs.push((name.clone(), replicas.len() as i32));
            stopping.extend(replicas);
        }
        log::info!("stopping the replicas of removed topic(s) {doomed:?}");
        // Closed cleanly first: two actors never hold one log.
        let closed = close_all(stopping, "its topic was deleted");
        ctx.wait(
            actix::fut::wrap_future(closed).map(move |(), act: &mut Self, _| {
                // Each on its own: one that cannot move stays (and is moved away
                // before a new topic of that name opens there), the others go.
                for (name, partitions) in dirs {
                    for p in 0..partitions {
                        match act.logs.move_to_delete(&name, p..p + 1) {
                            Ok(moved) => remove_dirs_later(moved),
                            Err(e) => log::error!("a directory of deleted topic {name} stays: {e}"),
                        }
                    }
                }
                act.apply_image(image);
            }),
        );
    }

    /// Closes the replicas a reassignment moved off this broker, then deletes their
    /// directories (renamed first, as a deleted topic's).
    fn stop_moved(&mut self, image: &MetadataImage, ctx: &mut Context<Self>) {
        let moved = self.replicas.take_moved(image);
        if moved.is_empty() {
            return;
        }
        let names: Vec<(String, i32)> = moved.iter().map(|(t, p, _)| (t.clone(), *p)).collect();
        log::info!("replicas moved off this broker: {names:?}");
        let closed = close_all(
            moved.into_iter().map(|(_, _, a)| a).collect(),
            "moved off this broker",
        );
        ctx.wait(
            actix::fut::wrap_future(closed).map(move |(), act: &mut Self, _| {
                for (topic, p) in names {
                    match act.logs.move_to_delete(&topic, p..p + 1) {
                        Ok(dirs) => remove_dirs_later(dirs),
                        Err(e) => log::error!(
                            "the directory of {topic}-{p}, moved off this broker, stays: {e}"
                        ),
                    }
                }
            }),
        );
    }

    /// Starts what the image gives this node, re-roles and reconfigures what runs,
    /// and publishes the image.
    fn apply_image(&mut self, image: MetadataImage) {
        let lead = self.may_lead();
        let defaults = &self.config.topic_defaults;
        let interval = self.config.recovery_point_checkpoint_interval_ms;
        let configs: BTreeMap<String, (String, PartitionConfig)> = image
            .topics
            .values()
            .map(|t| {
                let config = defaults.partition_config(&t.overrides, interval);
                (t.name.clone(), (t.topic_id.clone(), config))
            })
            .collect();
        let Broker { replicas, logs, .. } = self;
        let placement = |topic: &str, partition: i32| {
            let (id, config) = configs.get(topic).cloned().unwrap_or_default();
            match logs.claim_partition_dir(topic, partition, &id) {
                Ok(dir) => Ok((dir, config)),
                Err(e) => Err((logs.partition_dir(topic, partition), e.to_string())),
            }
        };
        let files = logs.files();
        let stopped = replicas.apply(&image, placement, files.max_partitions(), lead, || {
            format!(
                "not opened: {}, and the partitions before it use them all; raise the limit (ulimit -n, LimitNOFILE) or lower reserved.file.descriptors, and restart",
                files.describe()
            )
        });
        debug_assert!(stopped.is_empty(), "removed topics were stopped before");
        if !stopped.is_empty() {
            actix::spawn(close_all(stopped, "not in the metadata"));
        }
        // Partitions whose effective config changed get it.
        for (name, (id, config)) in &configs {
            let changed = self
                .running
                .get(name)
                .is_some_and(|(running_id, old)| running_id == id && old != config);
            if changed {
                for partition in self.replicas.topic(name) {
                    partition.do_send(UpdateConfig(config.clone()));
                }
            }
        }
        self.running = configs
            .into_iter()
            .filter(|(name, _)| !self.replicas.topic(name).is_empty())
            .collect();
        self.metadata.publish(image);
    }

    /// Whether this node may act on the leaderships its metadata gives it: once the
    /// metadata holds this incarnation's registration (whose record moved the
    /// leaderships of the incarnation before), or at once when this node is the whole
    /// quorum (nobody else can have moved them, and a node restarted on a full disk
    /// could not commit its registration).
    fn may_lead(&self) -> bool {
        self.config.cluster.is_single_node(self.config.node_id)
            || self
                .applied
                .state
                .brokers
                .get(&self.config.node_id)
                .is_some_and(|b| b.incarnation_id == self.incarnation_id)
    }

    /// Once the metadata log holds the topics of an older data dir (and its
    /// cluster id), `topics.json` keeps only the identity.
    fn migrate_identity(&mut self) {
        if self.identity.topics.is_empty() || self.applied.state.cluster_id.is_none() {
            return;
        }
        let mut identity = self.identity.clone();
        identity.topics.clear();
        identity.version = crate::topic_store::VERSION;
        match self.store.save(&identity) {
            Ok(()) => {
                log::info!("topics.json now keeps only the data dir's identity; the topics are in the metadata log");
                self.identity = identity;
            }
            Err(e) => {
                log::warn!("cannot rewrite topics.json after the move to the metadata log: {e}")
            }
        }
    }

    /// `Err` with the reason while the broker is down (its restart budget spent).
    fn check_up(&self) -> BrokerResult<()> {
        match self.supervision.down() {
            None => Ok(()),
            Some(reason) => Err(BrokerError::Unavailable(format!(
                "the topic registry is down: {reason}"
            ))),
        }
    }

    /// Asks the controller, then waits until this node has applied what it
    /// committed; answers the reply and the image that has it.
    fn ask(
        &self,
        request: ControllerRequest,
    ) -> impl std::future::Future<
        Output = BrokerResult<(
            crate::controller::active::ControllerReply,
            Arc<MetadataImage>,
        )>,
    > + 'static {
        let up = self.check_up();
        let channel = self.channel.clone();
        let view = self.metadata.view();
        async move {
            up?;
            let reply = channel.ask(request).await?;
            let image = wait_for_offset(view, reply.index).await?;
            Ok((reply, image))
        }
    }

    fn registration(&self) -> ControllerRequest {
        ControllerRequest::RegisterBroker {
            broker_id: self.config.node_id,
            incarnation_id: self.incarnation_id,
            endpoints: self
                .endpoints
                .iter()
                .map(|e| BrokerEndpoint {
                    name: e.listener.clone(),
                    host: e.host.clone(),
                    port: e.port,
                })
                .collect(),
            observer_addr: self.config.cluster.observer_addr.clone(),
        }
    }

    /// Registers (again, with the same incarnation: the endpoints may have changed),
    /// then heartbeats at once; retried until it succeeds.
    fn register(&mut self, ctx: &mut Context<Self>) {
        let ask = self.channel.ask(self.registration());
        ctx.spawn(
            actix::fut::wrap_future(ask).map(|answer, act: &mut Self, ctx| match answer {
                Ok(reply) => {
                    if let Some(BrokerStanding { broker_epoch, .. }) = reply.broker {
                        act.broker_epoch = Some(broker_epoch);
                    }
                    act.heartbeat(ctx, false);
                }
                Err(e) => {
                    log::warn!("registering with the controller failed (retrying): {e}");
                    Clock::system().run_later(ctx, REGISTRATION_RETRY, |act: &mut Self, ctx| {
                        act.register(ctx)
                    });
                }
            }),
        );
    }

    fn heartbeat_request(&self, want_shut_down: bool) -> Option<ControllerRequest> {
        Some(ControllerRequest::Heartbeat {
            broker_id: self.config.node_id,
            broker_epoch: self.broker_epoch?,
            current_metadata_offset: self.applied.index,
            want_shut_down,
        })
    }

    fn heartbeat(&mut self, ctx: &mut Context<Self>, want_shut_down: bool) {
        if self.heartbeat_in_flight {
            return;
        }
        let Some(request) = self.heartbeat_request(want_shut_down) else {
            return;
        };
        self.heartbeat_in_flight = true;
        let ask = self.channel.ask(request);
        ctx.spawn(actix::fut::wrap_future(ask).map(|answer, act: &mut Self, ctx| {
            act.heartbeat_in_flight = false;
            match answer {
                Ok(_) => {}
                Err(BrokerError::StaleBrokerEpoch(why)) => {
                    log::warn!("the controller does not know this registration ({why}): registering again");
                    act.broker_epoch = None;
                    act.register(ctx);
                }
                Err(e) => log::warn!("heartbeat to the controller failed: {e}"),
            }
        }));
    }

    /// A fenced broker that has just caught up with its registration heartbeats at
    /// once, to be unfenced without waiting for the next interval.
    fn heartbeat_if_catching_up(&mut self, ctx: &mut Context<Self>) {
        let Some(epoch) = self.broker_epoch else {
            return;
        };
        let me = self.applied.state.brokers.get(&self.config.node_id);
        if me.is_some_and(|b| b.fenced && b.epoch == epoch) && self.applied.index >= epoch as u64 {
            self.heartbeat(ctx, false);
        }
    }

    /// The topic as the answer to a create or grow.
    fn topic_metadata(image: &MetadataImage, name: &str) -> BrokerResult<TopicMetadata> {
        image
            .topic(name)
            .map(|t| crate::requests::topics::metadata(t))
    }
}

/// Waits until `view` publishes an image with the metadata at `offset` or later.
pub async fn wait_for_offset(
    mut view: MetadataView,
    offset: u64,
) -> BrokerResult<Arc<MetadataImage>> {
    let wait = async {
        loop {
            let image = view.image();
            if image.metadata_offset >= offset {
                return Ok(image);
            }
            if !view.changed().await {
                return Err(BrokerError::Unavailable("the broker stopped".into()));
            }
        }
    };
    tokio::time::timeout(APPLY_WAIT, wait)
        .await
        .unwrap_or_else(|_| {
            Err(BrokerError::Unavailable(format!(
                "this node did not apply metadata offset {offset} within {} s",
                APPLY_WAIT.as_secs()
            )))
        })
}

impl Actor for Broker {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Each committed state, in order, as a message to this actor.
        let mut applied = self.quorum.applied();
        let me = ctx.address();
        actix::spawn(async move {
            loop {
                let latest = applied.borrow_and_update().clone();
                if me.send(MetadataApplied(latest)).await.is_err() {
                    return;
                }
                if applied.changed().await.is_err() {
                    return;
                }
            }
        });
        self.register(ctx);
        let every = Duration::from_millis(self.config.cluster.broker_heartbeat_interval_ms.max(10));
        // Heartbeats keep cluster time (the system clock), as the controller's
        // session timeouts do, whatever clock the partitions are given.
        Clock::system().run_interval(ctx, every, |act: &mut Self, ctx| act.heartbeat(ctx, false));
    }
}

/// The partitions' threads end with the broker itself, not with a stop its
/// supervisor would restart.
impl Drop for Broker {
    fn drop(&mut self) {
        self.replicas.stop_arbiters();
    }
}

impl Supervise for Broker {
    const KIND: ActorKind = ActorKind::Broker;
}

impl Supervised for Broker {
    fn restarting(&mut self, ctx: &mut Context<Self>) {
        let now = self.clock.monotonic();
        if let Verdict::StayDown { .. } = self.supervision.restarting_at(&self.name(), now) {
            return;
        }
        // Whatever a half-done change stopped starts again from the applied state.
        self.applied = self.quorum.applied().borrow().clone();
        self.heartbeat_in_flight = false;
        self.reapply(ctx);
        log::info!("broker restarted at metadata offset {}", self.applied.index);
    }
}

#[cfg(any(test, feature = "test-support"))]
crate::supervision::answers_panic_hook!(Broker);

impl Handler<MetadataApplied> for Broker {
    type Result = ();

    fn handle(&mut self, MetadataApplied(applied): MetadataApplied, ctx: &mut Context<Self>) {
        self.on_applied(applied, ctx);
    }
}

impl Handler<GetClusterInfo> for Broker {
    type Result = MessageResult<GetClusterInfo>;

    fn handle(&mut self, _: GetClusterInfo, _: &mut Context<Self>) -> Self::Result {
        let state = &self.applied.state;
        MessageResult(ClusterInfo {
            cluster_id: state
                .cluster_id
                .clone()
                .unwrap_or_else(|| self.identity.cluster_id.clone()),
            node_id: self.config.node_id,
            controller_id: self
                .channel
                .active_controller()
                .unwrap_or(self.config.node_id),
            live_brokers: state.active_brokers(),
        })
    }
}

impl Handler<CreateTopic> for Broker {
    type Result = ResponseFuture<BrokerResult<TopicMetadata>>;

    fn handle(&mut self, CreateTopic(msg): CreateTopic, _: &mut Context<Self>) -> Self::Result {
        let partitions = if msg.replicas_assignments.is_empty() {
            match msg.partitions {
                None | Some(-1) => self.config.num_partitions,
                Some(n) => n,
            }
        } else {
            msg.replicas_assignments.len() as i32
        };
        if let Err(e) = self.check_file_budget(partitions) {
            return Box::pin(async move { Err(e) });
        }
        let validate_only = msg.validate_only;
        let name = msg.name.clone();
        let request = ControllerRequest::CreateTopic(msg);
        let ask = self.ask(request);
        Box::pin(async move {
            let (reply, image) = ask.await?;
            match (validate_only, reply.topic) {
                (true, Some(t)) => Ok(TopicMetadata {
                    internal: is_internal_topic(&name),
                    name,
                    topic_id: t.topic_id,
                    partitions: t.partitions,
                    replication_factor: t.replication_factor,
                    configs: t.configs,
                }),
                _ => {
                    log::info!("created topic {name}");
                    Broker::topic_metadata(&image, &name)
                }
            }
        })
    }
}

impl Handler<DeleteTopic> for Broker {
    type Result = ResponseFuture<BrokerResult<()>>;

    /// Committed by the controller, then applied here: the topic is gone from the
    /// image (it takes no more writes and is not found by readers), and its replicas
    /// close and their directories are renamed to `-delete` names and removed later.
    fn handle(&mut self, msg: DeleteTopic, _: &mut Context<Self>) -> Self::Result {
        let ask = self.ask(ControllerRequest::DeleteTopic {
            name: msg.name.clone(),
        });
        Box::pin(async move {
            ask.await?;
            log::info!("deleted topic {}", msg.name);
            Ok(())
        })
    }
}

impl Handler<ReassignPartition> for Broker {
    type Result = ResponseFuture<BrokerResult<()>>;

    fn handle(&mut self, msg: ReassignPartition, _: &mut Context<Self>) -> Self::Result {
        let ask = self.ask(ControllerRequest::Reassign {
            topic: msg.topic,
            partition: msg.partition,
            replicas: msg.replicas,
        });
        Box::pin(async move { ask.await.map(drop) })
    }
}

impl Handler<CreatePartitions> for Broker {
    type Result = ResponseFuture<BrokerResult<TopicMetadata>>;

    fn handle(&mut self, msg: CreatePartitions, _: &mut Context<Self>) -> Self::Result {
        let current = self.metadata.current();
        let existing = current.topic(&msg.name).map(|t| t.partitions.len() as i32);
        if let Ok(existing) = existing {
            if let Err(e) = self.check_file_budget(msg.count - existing) {
                return Box::pin(async move { Err(e) });
            }
        }
        let ask = self.ask(ControllerRequest::CreatePartitions {
            name: msg.name.clone(),
            count: msg.count,
            validate_only: msg.validate_only,
        });
        Box::pin(async move {
            let (_, image) = ask.await?;
            let mut meta = Broker::topic_metadata(&image, &msg.name)?;
            if msg.validate_only {
                meta.partitions = msg.count;
            } else {
                log::info!("topic {} grew to {} partitions", msg.name, msg.count);
            }
            Ok(meta)
        })
    }
}

impl Handler<AlterTopicConfigs> for Broker {
    type Result = ResponseFuture<BrokerResult<()>>;

    fn handle(&mut self, msg: AlterTopicConfigs, _: &mut Context<Self>) -> Self::Result {
        let changes = msg.changes.into_iter().map(|c| (c.name, c.value)).collect();
        let ask = self.ask(ControllerRequest::AlterTopicConfigs {
            name: msg.name,
            changes,
            validate_only: msg.validate_only,
        });
        Box::pin(async move { ask.await.map(|_| ()) })
    }
}

impl Handler<AlterAcls> for Broker {
    type Result = ResponseFuture<BrokerResult<()>>;

    fn handle(&mut self, msg: AlterAcls, _: &mut Context<Self>) -> Self::Result {
        let ask = self.ask(ControllerRequest::AlterAcls {
            create: msg.create,
            delete_ids: msg.delete_ids,
        });
        Box::pin(async move { ask.await.map(|_| ()) })
    }
}

impl Handler<AlterClientQuotas> for Broker {
    type Result = ResponseFuture<BrokerResult<()>>;

    fn handle(&mut self, msg: AlterClientQuotas, _: &mut Context<Self>) -> Self::Result {
        let ask = self.ask(ControllerRequest::AlterClientQuotas(msg.0));
        Box::pin(async move { ask.await.map(|_| ()) })
    }
}

impl Handler<AlterUserScramCredentials> for Broker {
    type Result = ResponseFuture<BrokerResult<()>>;

    fn handle(&mut self, msg: AlterUserScramCredentials, _: &mut Context<Self>) -> Self::Result {
        let ask = self.ask(ControllerRequest::AlterUserScramCredentials(msg.0));
        Box::pin(async move { ask.await.map(|_| ()) })
    }
}

impl Broker {
    /// Refuses `added` partitions that would take this broker past what its
    /// open-file limit carries, before anything is created (as if every new
    /// partition had a replica here, which on one node they all do).
    fn check_file_budget(&self, added: i32) -> BrokerResult<()> {
        let total = self.replicas.count() + added.max(0) as usize;
        let files = self.logs.files();
        if total > files.max_partitions() {
            return Err(BrokerError::InvalidPartitions(format!(
                "{added} more partition(s) would make {total} on this broker, but {}; raise the limit (ulimit -n, LimitNOFILE) or create fewer",
                files.describe()
            )));
        }
        Ok(())
    }
}

impl Handler<TopicConfigs> for Broker {
    type Result = BrokerResult<Vec<ConfigEntry>>;

    fn handle(&mut self, msg: TopicConfigs, _: &mut Context<Self>) -> Self::Result {
        let image = self.metadata.current();
        let topic = image.topic(&msg.name)?;
        Ok(self.config.topic_defaults.effective(&topic.overrides))
    }
}

impl Handler<ConfigsWithOverrides> for Broker {
    type Result = MessageResult<ConfigsWithOverrides>;

    fn handle(&mut self, msg: ConfigsWithOverrides, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.config.topic_defaults.effective(&msg.overrides))
    }
}

impl Handler<BrokerConfigs> for Broker {
    type Result = MessageResult<BrokerConfigs>;

    fn handle(&mut self, _: BrokerConfigs, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.config.topic_defaults.broker_entries())
    }
}

impl Handler<RegisterListeners> for Broker {
    type Result = ResponseActFuture<Self, ()>;

    /// The listeners, once bound, are part of this broker's registration: it
    /// registers again with the same incarnation, which only updates them. Answered
    /// once this node's image lists them (clients told of the listener find it in
    /// Metadata); a failure is logged and retried by [`Self::register`].
    fn handle(&mut self, msg: RegisterListeners, _: &mut Context<Self>) -> Self::Result {
        // Each listener registers its own: one of the same name replaces it.
        for endpoint in msg.0 {
            self.endpoints.retain(|e| e.listener != endpoint.listener);
            self.endpoints.push(endpoint);
        }
        let ask = self.channel.ask(self.registration());
        let view = self.metadata.view();
        let registered = async move {
            let reply = ask.await?;
            wait_for_offset(view, reply.index).await?;
            Ok::<_, BrokerError>(reply)
        };
        Box::pin(actix::fut::wrap_future(registered).map(
            |answer, act: &mut Self, ctx| match answer {
                Ok(reply) => {
                    if let Some(standing) = reply.broker {
                        act.broker_epoch = Some(standing.broker_epoch);
                    }
                }
                Err(e) => {
                    log::warn!("registering this broker's listeners failed (retrying): {e}");
                    act.register(ctx);
                }
            },
        ))
    }
}

impl Handler<CompactedPartitions> for Broker {
    type Result = MessageResult<CompactedPartitions>;

    fn handle(&mut self, _: CompactedPartitions, _: &mut Context<Self>) -> Self::Result {
        MessageResult(
            self.running
                .iter()
                .filter(|(_, (_, config))| config.cleanup_compact)
                .flat_map(|(name, _)| self.replicas.topic(name))
                .collect(),
        )
    }
}

impl Handler<AllocateProducerId> for Broker {
    type Result = BrokerResult<i64>;

    /// Served while the broker is down too: producer ids are not the metadata.
    fn handle(&mut self, _: AllocateProducerId, _: &mut Context<Self>) -> Self::Result {
        self.producer_ids.next_id()
    }
}

impl Handler<DescribeCluster> for Broker {
    type Result = MessageResult<DescribeCluster>;

    fn handle(&mut self, _: DescribeCluster, _: &mut Context<Self>) -> Self::Result {
        let state = &self.applied.state;
        let brokers = state
            .brokers
            .values()
            .map(|b| BrokerDescription {
                id: b.id,
                endpoints: b
                    .endpoints
                    .iter()
                    .map(|e| format!("{}://{}:{}", e.name, e.host, e.port))
                    .collect(),
                state: if b.in_controlled_shutdown {
                    BrokerState::ShuttingDown
                } else if b.fenced {
                    BrokerState::Fenced
                } else {
                    BrokerState::Alive
                },
            })
            .collect();
        MessageResult(ClusterDescription {
            cluster_id: state
                .cluster_id
                .clone()
                .unwrap_or_else(|| self.identity.cluster_id.clone()),
            node_id: self.config.node_id,
            controller_id: self.channel.active_controller(),
            brokers,
            quorum: self.quorum.status(),
            metadata_offset: self.applied.index,
        })
    }
}

impl Handler<ShutdownBroker> for Broker {
    type Result = ResponseActFuture<Self, ()>;

    /// A controlled shutdown: asks the controller to move this broker's leaderships
    /// (waiting up to a bound for them to have moved), then closes every partition.
    fn handle(&mut self, _: ShutdownBroker, _: &mut Context<Self>) -> Self::Result {
        let channel = self.channel.clone();
        let request = self.heartbeat_request(true);
        let moved = async move {
            let Some(request) = request else {
                return;
            };
            let deadline = tokio::time::Instant::now() + CONTROLLED_SHUTDOWN_WAIT;
            while tokio::time::Instant::now() < deadline {
                match channel.ask(request.clone()).await {
                    Ok(reply) if reply.broker.as_ref().is_some_and(|b| b.should_shut_down) => {
                        return
                    }
                    Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                    Err(e) => {
                        log::warn!("controlled shutdown: {e}; stopping anyway");
                        return;
                    }
                }
            }
            log::warn!(
                "controlled shutdown: leaderships did not move within {} s; stopping anyway",
                CONTROLLED_SHUTDOWN_WAIT.as_secs()
            );
        };
        Box::pin(
            actix::fut::wrap_future(moved).then(|(), act: &mut Self, _| {
                let partitions = act.replicas.all();
                log::info!("closing {} partition(s)", partitions.len());
                actix::fut::wrap_future(close_all(partitions, "the broker is stopping"))
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `assignment_shape` on a one-broker cluster (broker 1).
    fn shape(assignment: &[(i32, Vec<i32>)]) -> BrokerResult<(i32, i16)> {
        let typed: Vec<(PartitionId, Vec<NodeId>)> = assignment
            .iter()
            .map(|(p, brokers)| {
                let brokers = brokers.iter().copied().map(NodeId::new).collect();
                (PartitionId::new(*p), brokers)
            })
            .collect();
        assignment_shape(&typed, &[NodeId::new(1)])
    }

    #[test]
    fn replica_assignments_are_checked_as_kafka_does() {
        assert_eq!(shape(&[(0, vec![1])]), Ok((1, 1)));
        assert_eq!(
            shape(&[(1, vec![1]), (0, vec![1]), (2, vec![1])]),
            Ok((3, 1))
        );
        for bad in [
            vec![(1, vec![1])],
            vec![(0, vec![1]), (0, vec![1])],
            vec![(0, vec![1]), (2, vec![1])],
            vec![(0, vec![])],
            vec![(0, vec![2])],
            vec![(0, vec![1, 1])],
            vec![(0, vec![1]), (1, vec![1, 2])],
        ] {
            assert!(
                matches!(shape(&bad), Err(BrokerError::InvalidRequest(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn topic_names_follow_kafka_rules() {
        for ok in ["a", "orders", "my.topic_v2-x", &"x".repeat(249)] {
            assert!(validate_topic_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "has space",
            "slash/",
            "ünï",
            &"x".repeat(250),
        ] {
            assert!(validate_topic_name(bad).is_err(), "{bad}");
        }
    }
}
