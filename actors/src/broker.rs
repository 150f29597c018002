//! `Broker`: the actor that owns the topic registry — on one node, the controller's
//! part of Kafka. It creates, alters and deletes topics (persisting each change in
//! `topics.json` before acknowledging it), publishes the resulting
//! [`MetadataImage`](crate::metadata::MetadataImage), and has the
//! [`ReplicaManager`] start and stop the partitions and the [`LogManager`] move their
//! directories. Nobody asks it where a partition is: that is a read of the published
//! image and replica table. It never touches a partition's log itself.
//!
//! Supervised ([`crate::supervision`]): after a panic it reloads the registry from
//! `topics.json` — what was acknowledged — and publishes it again, so the replica
//! manager restarts whatever a half-done change stopped; a delete cut short comes
//! back as a topic that was not deleted (its caller saw the failure). Routing never
//! crosses its mailbox, so produce and fetch go on meanwhile. Once its budget is
//! spent it refuses registry changes with why, and the published image stays.
//!
//! It also hands out producer ids ([`producer_ids`]), as Kafka's controller
//! allocates their blocks.

pub mod messages;
pub mod producer_ids;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use futures::future::join_all;

use crate::broker_config::BrokerConfig;
use crate::clock::Clock;
use crate::error::{BrokerError, BrokerResult};
use crate::ids::{NodeId, PartitionId};
use crate::log_manager::{remove_dirs_later, LogManager};
use crate::metadata::{Endpoint, MetadataImage, MetadataPublisher, TopicImage};
use crate::partition::{PartitionLimits, PartitionReplica, UpdateConfig};
use crate::replica_manager::{close_all, ReplicaManager};
use crate::requests::Routes;
use crate::supervision::{ActorKind, Supervise, Supervision, Verdict};
use crate::topic_config::{topic_config_def, validate_topic_config, ConfigEntry, PartitionConfig};
use crate::topic_store::{new_id, StoredMetadata, TopicRecord, TopicStore};
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
fn assignment_shape(
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

struct TopicState {
    record: TopicRecord,
    /// The effective config, derived once per change (not per produce request).
    config: PartitionConfig,
}

pub struct Broker {
    config: BrokerConfig,
    store: TopicStore,
    meta: StoredMetadata,
    topics: BTreeMap<String, TopicState>,
    /// Topics being deleted: their partitions are stopping, their directories not
    /// yet renamed, and the topic is still in the registry.
    deleting: HashSet<String>,
    /// The partitions of each topic being deleted, stopping, until its delete ends:
    /// a restart waits for them to close before it starts the topic's partitions again.
    closing: BTreeMap<String, Vec<Addr<PartitionReplica>>>,
    logs: LogManager,
    replicas: ReplicaManager,
    metadata: MetadataPublisher,
    /// Producer ids for InitProducerId; kept across a restart (its block stays valid).
    producer_ids: ProducerIdManager,
    clock: Clock,
    supervision: Supervision,
    /// This broker's advertised listeners, as registered.
    endpoints: Vec<Endpoint>,
}

impl Broker {
    /// Loads the registry from `log.dirs` and starts every partition, each reading
    /// time from `clock`. Must run inside an actix system.
    pub fn open(config: BrokerConfig, clock: Clock) -> BrokerResult<Broker> {
        let logs = LogManager::open(&config.log_dir, config.reserved_file_descriptors)?;
        let store = TopicStore::new(&config.log_dir);
        let meta = store.load_or_init(config.node_id)?;
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
        let replicas = ReplicaManager::new(config.partition_threads, limits, clock.clone());
        let metadata = MetadataPublisher::new(MetadataImage::single_node(
            meta.cluster_id.clone(),
            config.node_id,
        ));
        let producer_ids = ProducerIdManager::new(&config.log_dir);
        let mut broker = Broker {
            config,
            store,
            meta,
            topics: BTreeMap::new(),
            deleting: HashSet::new(),
            closing: BTreeMap::new(),
            logs,
            replicas,
            metadata,
            producer_ids,
            clock,
            supervision,
            endpoints: Vec::new(),
        };
        broker.load_topics();
        broker.create_offsets_topic()?;
        // The replica manager starts every partition, the offsets topic first (groups
        // need it); past the open-file budget, partitions start offline rather than
        // take the descriptors the listener needs.
        broker.publish();
        log::info!(
            "broker {} of cluster {} serving {} topic(s) from {}",
            broker.config.node_id,
            broker.meta.cluster_id,
            broker.topics.len(),
            broker.config.log_dir.display()
        );
        Ok(broker)
    }

    /// The registry in memory, from `self.meta` as read from `topics.json`.
    fn load_topics(&mut self) {
        self.topics.clear();
        for record in self.meta.topics.clone() {
            let config = self.partition_config(&record.configs);
            self.topics
                .insert(record.name.clone(), TopicState { record, config });
        }
    }

    /// After a restart: the registry as `topics.json` holds it, published again.
    fn reload(&mut self) -> BrokerResult<Vec<Addr<PartitionReplica>>> {
        self.meta = self.store.load_or_init(self.config.node_id)?;
        self.load_topics();
        self.deleting.clear();
        self.create_offsets_topic()?;
        Ok(self.publish())
    }

    /// `Err` with the reason while the registry is down (its restart budget spent).
    fn check_up(&self) -> BrokerResult<()> {
        match self.supervision.down() {
            None => Ok(()),
            Some(reason) => Err(BrokerError::Unavailable(format!(
                "the topic registry is down: {reason}"
            ))),
        }
    }

    /// `__consumer_offsets` exists from the first start on: compacted, with
    /// `offsets.topic.num.partitions` partitions (fixed from then on, as in Kafka).
    fn create_offsets_topic(&mut self) -> BrokerResult<()> {
        let name = crate::group::offsets_topic::OFFSETS_TOPIC;
        if self.topics.contains_key(name) {
            return Ok(());
        }
        let groups = &self.config.groups;
        let configs = BTreeMap::from([
            ("cleanup.policy".to_string(), "compact".to_string()),
            (
                "segment.bytes".to_string(),
                groups.offsets_topic_segment_bytes.to_string(),
            ),
        ]);
        let record = TopicRecord {
            name: name.to_string(),
            topic_id: new_id(),
            partitions: groups.offsets_topic_partitions,
            replication_factor: 1,
            configs: Self::validate_configs(&configs)?,
        };
        let config = self.partition_config(&record.configs);
        self.topics
            .insert(name.to_string(), TopicState { record, config });
        self.persist()?;
        log::info!(
            "created {name} with {} partition(s)",
            self.config.groups.offsets_topic_partitions
        );
        Ok(())
    }

    fn partition_config(&self, overrides: &BTreeMap<String, String>) -> PartitionConfig {
        self.config
            .topic_defaults
            .partition_config(overrides, self.config.recovery_point_checkpoint_interval_ms)
    }

    /// Publishes the metadata image made from the registry, after the replica
    /// manager has applied it (started what it adds, published its table): a reader
    /// that finds a topic in the image finds its replicas. Answers the replicas the
    /// image no longer wants, for the caller to close.
    fn publish(&mut self) -> Vec<Addr<PartitionReplica>> {
        let mut image =
            MetadataImage::single_node(self.meta.cluster_id.clone(), self.config.node_id);
        if let Some(me) = image.brokers.get_mut(&self.config.node_id) {
            me.endpoints = self.endpoints.clone();
        }
        for (name, state) in &self.topics {
            let mut topic = TopicImage::local(
                name,
                state.record.topic_id.clone(),
                state.record.partitions,
                self.config.node_id,
                state.record.configs.clone(),
                state.config.log.max_message_bytes,
            );
            topic.replication_factor = state.record.replication_factor;
            topic.compacted = state.config.cleanup_compact;
            topic.deleting = self.deleting.contains(name);
            image.topics.insert(name.clone(), Arc::new(topic));
        }
        let Broker {
            replicas,
            topics,
            logs,
            ..
        } = self;
        let placement = |topic: &str, partition: i32| {
            let config = topics
                .get(topic)
                .map(|t| t.config.clone())
                .unwrap_or_default();
            (logs.partition_dir(topic, partition), config)
        };
        let files = logs.files();
        let stopped = replicas.apply(&image, placement, files.max_partitions(), || {
            format!(
                "not opened: {}, and the partitions before it use them all; raise the limit (ulimit -n, LimitNOFILE) or lower reserved.file.descriptors, and restart",
                files.describe()
            )
        });
        self.metadata.publish(image);
        stopped
    }

    /// Readers' handles on what [`Self::publish`] publishes.
    pub fn routes(&self) -> Routes {
        Routes::new(self.metadata.view(), self.replicas.view())
    }

    fn topic(&self, name: &str) -> BrokerResult<&TopicState> {
        self.topics
            .get(name)
            .ok_or_else(|| BrokerError::UnknownTopic(name.to_string()))
    }

    fn metadata(state: &TopicState) -> TopicMetadata {
        TopicMetadata {
            name: state.record.name.clone(),
            topic_id: state.record.topic_id.clone(),
            partitions: state.record.partitions,
            replication_factor: state.record.replication_factor,
            internal: is_internal_topic(&state.record.name),
            configs: state.record.configs.clone(),
        }
    }

    /// Persists the registry as it is in memory.
    fn persist(&mut self) -> BrokerResult<()> {
        self.meta.topics = self.topics.values().map(|t| t.record.clone()).collect();
        self.store.save(&self.meta)
    }

    fn validate_partitions(&self, count: i32) -> BrokerResult<()> {
        if count < 1 || count > self.config.max_partitions_per_topic {
            return Err(BrokerError::InvalidPartitions(format!(
                "{count} is not between 1 and max.partitions.per.topic = {}",
                self.config.max_partitions_per_topic
            )));
        }
        Ok(())
    }

    /// Refuses `added` partitions that would take the broker past what its open-file
    /// limit carries, before anything is created.
    fn check_file_budget(&self, added: i32) -> BrokerResult<()> {
        let current: usize = self
            .topics
            .values()
            .map(|t| t.record.partitions.max(0) as usize)
            .sum();
        let total = current + added.max(0) as usize;
        let files = self.logs.files();
        if total > files.max_partitions() {
            return Err(BrokerError::InvalidPartitions(format!(
                "{added} more partition(s) would make {total} on this broker, but {}; raise the limit (ulimit -n, LimitNOFILE) or create fewer",
                files.describe()
            )));
        }
        Ok(())
    }

    fn validate_configs(
        configs: &BTreeMap<String, String>,
    ) -> BrokerResult<BTreeMap<String, String>> {
        configs
            .iter()
            .map(|(name, value)| Ok((name.clone(), validate_topic_config(name, value)?)))
            .collect()
    }

    fn writable_topic(&self, name: &str) -> BrokerResult<&TopicState> {
        let topic = self.topic(name)?;
        if is_internal_topic(name) {
            return Err(BrokerError::TopicIsInternal(name.to_string()));
        }
        if self.deleting.contains(name) {
            return Err(BrokerError::InvalidRequest(format!(
                "topic '{name}' is being deleted"
            )));
        }
        Ok(topic)
    }
}

impl Actor for Broker {
    type Context = Context<Self>;
}

/// The partitions' threads end with the registry itself, not with a stop its
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
        // Partitions a delete was stopping close first: two actors never hold one log.
        let closing: Vec<_> = std::mem::take(&mut self.closing)
            .into_values()
            .flatten()
            .collect();
        let closed = close_all(closing, "the topic registry restarts");
        ctx.wait(actix::fut::wrap_future(closed).map(
            |(), act: &mut Self, ctx| match act.reload() {
                Ok(stopped) => {
                    ctx.spawn(actix::fut::wrap_future(close_all(
                        stopped,
                        "not in the reloaded registry",
                    )));
                    log::info!("topic registry reloaded: {} topic(s)", act.topics.len());
                }
                Err(e) => {
                    act.supervision
                        .failed(format!("reloading the registry failed: {e}"));
                    ctx.stop();
                }
            },
        ));
    }
}

#[cfg(any(test, feature = "test-support"))]
crate::supervision::answers_panic_hook!(Broker);

impl Handler<GetClusterInfo> for Broker {
    type Result = MessageResult<GetClusterInfo>;

    fn handle(&mut self, _: GetClusterInfo, _: &mut Context<Self>) -> Self::Result {
        MessageResult(ClusterInfo {
            cluster_id: self.meta.cluster_id.clone(),
            node_id: self.config.node_id,
            controller_id: self.config.node_id,
            live_brokers: vec![self.config.node_id],
        })
    }
}

impl Handler<CreateTopic> for Broker {
    type Result = BrokerResult<TopicMetadata>;

    fn handle(&mut self, CreateTopic(msg): CreateTopic, _: &mut Context<Self>) -> Self::Result {
        self.check_up()?;
        validate_topic_name(&msg.name)?;
        if self.topics.contains_key(&msg.name) || self.deleting.contains(&msg.name) {
            return Err(BrokerError::TopicExists(msg.name));
        }
        if is_internal_topic(&msg.name) {
            // Kafka's controller refuses these too: the broker creates them itself,
            // and an internal topic can never be deleted again.
            return Err(BrokerError::InvalidRequest(format!(
                "topic '{}' is internal: the broker creates it itself",
                msg.name
            )));
        }
        let (partitions, replication_factor) = if msg.replicas_assignments.is_empty() {
            let partitions = match msg.partitions {
                None | Some(-1) => self.config.num_partitions,
                Some(n) => n,
            };
            let replication_factor = match msg.replication_factor {
                None | Some(-1) => self.config.default_replication_factor,
                Some(n) => n,
            };
            (partitions, replication_factor)
        } else {
            let unset = |v: Option<i64>| matches!(v, None | Some(-1));
            if !unset(msg.partitions.map(i64::from))
                || !unset(msg.replication_factor.map(i64::from))
            {
                return Err(BrokerError::InvalidRequest(
                    "both partitions_count or replication_factor and replicas_assignments were set: only one may be used".into(),
                ));
            }
            assignment_shape(&msg.replicas_assignments, &[self.config.node_id])?
        };
        self.validate_partitions(partitions)?;
        self.check_file_budget(partitions)?;
        let live_brokers = 1;
        if replication_factor < 1 || replication_factor as i32 > live_brokers {
            return Err(BrokerError::InvalidReplicationFactor {
                requested: replication_factor as i32,
                available: live_brokers,
            });
        }
        let configs = Self::validate_configs(&msg.configs)?;
        let record = TopicRecord {
            name: msg.name.clone(),
            topic_id: new_id(),
            partitions,
            replication_factor,
            configs,
        };
        if msg.validate_only {
            return Ok(Self::metadata(&TopicState {
                config: self.partition_config(&record.configs),
                record,
            }));
        }
        self.logs.clear_stale_dirs(&msg.name, 0..partitions)?;
        let config = self.partition_config(&record.configs);
        self.topics.insert(
            msg.name.clone(),
            TopicState {
                record,
                config: config.clone(),
            },
        );
        if let Err(e) = self.persist() {
            self.topics.remove(&msg.name);
            return Err(e);
        }
        self.publish();
        log::info!("created topic {} with {partitions} partition(s)", msg.name);
        self.topic(&msg.name).map(Self::metadata)
    }
}

impl Handler<DeleteTopic> for Broker {
    type Result = ResponseActFuture<Self, BrokerResult<()>>;

    /// Deletion happens whole or not at all: the partitions are closed, every
    /// partition directory is renamed to a `-delete` name (Kafka's
    /// `LogLocalLog.logDeleteDirName`), and only then is the topic removed from the
    /// registry and the delete acknowledged. A rename or registry write that fails
    /// puts the directories back, restarts the partitions and fails the request.
    fn handle(&mut self, msg: DeleteTopic, _: &mut Context<Self>) -> Self::Result {
        if let Err(e) = self
            .check_up()
            .and_then(|()| self.writable_topic(&msg.name))
        {
            return Box::pin(actix::fut::ready(Err(e)));
        }
        if !self.deleting.insert(msg.name.clone()) {
            return Box::pin(actix::fut::ready(Err(BrokerError::InvalidRequest(
                format!("topic '{}' is already being deleted", msg.name),
            ))));
        }
        // The topic takes no more writes from here on, and its replicas are no longer
        // found by readers.
        let partitions = self.publish();
        self.closing.insert(msg.name.clone(), partitions.clone());
        log::info!("deleting topic {}", msg.name);
        // Closed cleanly (not discarded): if the delete has to be undone, the
        // partitions reopen without recovery and lose nothing.
        let stop_all = close_all(partitions, "its topic is being deleted");
        Box::pin(
            actix::fut::wrap_future(stop_all)
                .map(move |(), act: &mut Self, _| act.finish_delete(&msg.name)),
        )
    }
}

impl Broker {
    /// The part of a delete after the partitions have stopped (see `DeleteTopic`).
    fn finish_delete(&mut self, name: &str) -> BrokerResult<()> {
        self.deleting.remove(name);
        self.closing.remove(name);
        let Some(record) = self.topics.get(name).map(|t| t.record.clone()) else {
            return Err(BrokerError::UnknownTopic(name.to_string()));
        };
        let moved = match self.logs.move_to_delete(name, 0..record.partitions) {
            Ok(moved) => moved,
            Err(e) => {
                self.restart_topic(&record);
                return Err(e);
            }
        };
        let state = self.topics.remove(name);
        if let Err(e) = self.persist() {
            if let Some(state) = state {
                self.topics.insert(name.to_string(), state);
            }
            self.logs.move_back(&moved);
            self.restart_topic(&record);
            return Err(e);
        }
        self.publish();
        remove_dirs_later(moved);
        log::info!("deleted topic {name}");
        Ok(())
    }

    /// Starts the partitions of a topic again after a delete that did not happen.
    fn restart_topic(&mut self, record: &TopicRecord) {
        if !self.topics.contains_key(&record.name) {
            return;
        }
        self.publish();
        log::warn!(
            "topic {} was not deleted; its partitions are back",
            record.name
        );
    }
}

impl Handler<CreatePartitions> for Broker {
    type Result = BrokerResult<TopicMetadata>;

    fn handle(&mut self, msg: CreatePartitions, _: &mut Context<Self>) -> Self::Result {
        self.check_up()?;
        let current = self.writable_topic(&msg.name)?.record.partitions;
        if msg.count <= current {
            return Err(BrokerError::InvalidPartitions(format!(
                "topic '{}' has {current} partitions; the count can only grow",
                msg.name
            )));
        }
        self.validate_partitions(msg.count)?;
        self.check_file_budget(msg.count - current)?;
        if msg.validate_only {
            let mut meta = Self::metadata(self.topic(&msg.name)?);
            meta.partitions = msg.count;
            return Ok(meta);
        }
        self.logs.clear_stale_dirs(&msg.name, current..msg.count)?;
        let Some(state) = self.topics.get_mut(&msg.name) else {
            return Err(BrokerError::UnknownTopic(msg.name));
        };
        state.record.partitions = msg.count;
        if let Err(e) = self.persist() {
            if let Some(state) = self.topics.get_mut(&msg.name) {
                state.record.partitions = current;
            }
            return Err(e);
        }
        self.publish();
        log::info!(
            "topic {} grew from {current} to {} partitions",
            msg.name,
            msg.count
        );
        self.topic(&msg.name).map(Self::metadata)
    }
}

impl Handler<AlterTopicConfigs> for Broker {
    type Result = ResponseFuture<BrokerResult<()>>;

    fn handle(&mut self, msg: AlterTopicConfigs, _: &mut Context<Self>) -> Self::Result {
        if let Err(e) = self.check_up() {
            return Box::pin(futures::future::ready(Err(e)));
        }
        let prepared = (|| {
            let mut configs = self.writable_topic(&msg.name)?.record.configs.clone();
            for change in &msg.changes {
                match &change.value {
                    Some(value) => {
                        configs.insert(
                            change.name.clone(),
                            validate_topic_config(&change.name, value)?,
                        );
                    }
                    None => {
                        if topic_config_def(&change.name).is_none() {
                            return Err(BrokerError::InvalidConfig {
                                name: change.name.clone(),
                                reason: "unknown topic config".into(),
                            });
                        }
                        configs.remove(&change.name);
                    }
                }
            }
            Ok(configs)
        })();
        let configs = match prepared {
            Ok(c) => c,
            Err(e) => return Box::pin(async move { Err(e) }),
        };
        if msg.validate_only {
            return Box::pin(async { Ok(()) });
        }
        let partition_config = self.partition_config(&configs);
        let Some(state) = self.topics.get_mut(&msg.name) else {
            return Box::pin(async move { Err(BrokerError::UnknownTopic(msg.name)) });
        };
        let previous = std::mem::replace(&mut state.record.configs, configs);
        let previous_config = std::mem::replace(&mut state.config, partition_config.clone());
        if let Err(e) = self.persist() {
            if let Some(state) = self.topics.get_mut(&msg.name) {
                state.record.configs = previous;
                state.config = previous_config;
            }
            return Box::pin(async move { Err(e) });
        }
        self.publish();
        let partitions = self.replicas.topic(&msg.name).to_vec();
        Box::pin(async move {
            for result in join_all(
                partitions
                    .iter()
                    .map(|p| p.send(UpdateConfig(partition_config.clone()))),
            )
            .await
            {
                result.map_err(BrokerError::mailbox)??;
            }
            Ok(())
        })
    }
}

impl Handler<TopicConfigs> for Broker {
    type Result = BrokerResult<Vec<ConfigEntry>>;

    fn handle(&mut self, msg: TopicConfigs, _: &mut Context<Self>) -> Self::Result {
        let topic = self.topic(&msg.name)?;
        Ok(self.config.topic_defaults.effective(&topic.record.configs))
    }
}

impl Handler<BrokerConfigs> for Broker {
    type Result = MessageResult<BrokerConfigs>;

    fn handle(&mut self, _: BrokerConfigs, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.config.topic_defaults.broker_entries())
    }
}

impl Handler<RegisterListeners> for Broker {
    type Result = ();

    fn handle(&mut self, msg: RegisterListeners, _: &mut Context<Self>) {
        self.endpoints = msg.0;
        let stopped = self.publish();
        debug_assert!(stopped.is_empty(), "listeners change no partition");
    }
}

impl Handler<CompactedPartitions> for Broker {
    type Result = MessageResult<CompactedPartitions>;

    fn handle(&mut self, _: CompactedPartitions, _: &mut Context<Self>) -> Self::Result {
        MessageResult(
            self.topics
                .iter()
                .filter(|(_, t)| t.config.cleanup_compact)
                .flat_map(|(name, _)| self.replicas.topic(name).iter().cloned())
                .collect(),
        )
    }
}

impl Handler<AllocateProducerId> for Broker {
    type Result = BrokerResult<i64>;

    /// Served while the registry is down too: producer ids are not the registry.
    fn handle(&mut self, _: AllocateProducerId, _: &mut Context<Self>) -> Self::Result {
        self.producer_ids.next_id()
    }
}

impl Handler<ShutdownBroker> for Broker {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: ShutdownBroker, _: &mut Context<Self>) -> Self::Result {
        let partitions = self.replicas.all();
        log::info!("closing {} partition(s)", partitions.len());
        Box::pin(close_all(partitions, "the broker is stopping"))
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
