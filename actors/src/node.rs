//! Starting and stopping a broker node's actors, in order: the data dir's identity
//! (`topics.json`), the metadata quorum (replaying `__cluster_metadata-0`) and the
//! controller that runs while this node leads it, the broker (which applies the
//! metadata, starts the partition actors, each recovering its log, and registers
//! with the controller), the log cleaner, then the group manager (which replays
//! `__consumer_offsets`) — once this broker is unfenced and the offsets topic
//! exists. The web layer is started on top by the binary. Every actor that owns state runs under the
//! one restart policy of [`crate::supervision`], with the budget of
//! [`BrokerConfig::restart_policy`]. Every actor gets the node's one [`Clock`]: the
//! system's, or a test's.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::broker::{Broker, ShutdownBroker};
use crate::broker_config::BrokerConfig;
use crate::cleaner::{CleanerSettings, LogCleaner};
use crate::clock::Clock;
use crate::consumer::ConsumerRegistry;
use crate::controller::active::{ControllerSettings, OffsetsTopicSpec};
use crate::controller::channel::ControllerChannel;
use crate::controller::quorum::{Quorum, QuorumConfig};
use crate::error::{BrokerError, BrokerResult};
use crate::group::offsets_topic::OFFSETS_TOPIC;
use crate::group::GroupManager;
use crate::metadata::MetadataView;
use crate::requests::Engine;
use crate::topic_store::{StoredMetadata, TopicStore};

/// The metadata log's directory under `log.dirs` (Kafka's `__cluster_metadata-0`).
pub const METADATA_LOG_DIR: &str = "__cluster_metadata-0";
/// How long a node waits at start to be registered, unfenced and to see the
/// offsets topic.
const START_WAIT: Duration = Duration::from_secs(60);
/// How long a request waits for an active controller.
const CONTROLLER_WAIT: Duration = Duration::from_secs(10);

/// A running node: the request layer's handle, over its actors.
#[derive(Clone)]
pub struct Node {
    pub engine: Engine,
    quorum: Quorum,
    controller: ControllerChannel,
}

impl Node {
    /// Starts the node's actors on the system clock. Must be called inside a running
    /// actix system.
    pub async fn start(config: BrokerConfig) -> BrokerResult<Node> {
        Node::start_with_clock(config, Clock::system()).await
    }

    /// Starts the node's actors, every one reading time and arming timers on
    /// `clock` (tests pass a `ManualClock`'s and advance it).
    pub async fn start_with_clock(config: BrokerConfig, clock: Clock) -> BrokerResult<Node> {
        NodeStart::begin(config, clock).await?.finish().await
    }
    /// A controlled shutdown (leaderships move first), then every partition closed
    /// cleanly (flush, trim indexes, clean-shutdown marker), then the quorum.
    pub async fn shutdown(&self) {
        if let Err(e) = self.engine.broker.send(ShutdownBroker).await {
            log::warn!("broker shutdown: {e}");
        }
        self.quorum.shutdown().await;
    }

    pub fn quorum(&self) -> &Quorum {
        &self.quorum
    }

    /// This node's way to the active controller.
    pub fn controller(&self) -> &ControllerChannel {
        &self.controller
    }
}

/// A node half started: its identity read and its quorum member running, with
/// the channel to the active controller. A node of a multi-node cluster opens its
/// controller listener now (the quorum needs it to elect), then [`NodeStart::finish`]
/// starts the rest.
pub struct NodeStart {
    config: BrokerConfig,
    clock: Clock,
    store: TopicStore,
    identity: StoredMetadata,
    quorum: Quorum,
    channel: ControllerChannel,
}

impl NodeStart {
    /// Reads the data dir's identity and starts the quorum member and the
    /// controller channel. Must be called inside a running actix system.
    pub async fn begin(config: BrokerConfig, clock: Clock) -> BrokerResult<NodeStart> {
        std::fs::create_dir_all(&config.log_dir)
            .map_err(|e| BrokerError::storage(&config.log_dir, e))?;
        let store = TopicStore::new(&config.log_dir);
        let identity = store.load_or_init(config.node_id, config.cluster.cluster_id.as_deref())?;
        let quorum = start_quorum(&config, &identity.cluster_id).await?;
        let channel = ControllerChannel::run_while_leading(
            quorum.clone(),
            controller_settings(&config, &identity),
            // Liveness is cluster time, not a test's manual clock: a test that jumps
            // its clock would otherwise fence its own broker.
            Clock::system(),
            CONTROLLER_WAIT,
        );
        Ok(NodeStart {
            config,
            clock,
            store,
            identity,
            quorum,
            channel,
        })
    }

    pub fn quorum(&self) -> &Quorum {
        &self.quorum
    }

    pub fn controller(&self) -> &ControllerChannel {
        &self.channel
    }

    /// Opens the broker (which registers), waits until it serves, then starts the
    /// cleaner, the group manager and the consumer registry.
    pub async fn finish(self) -> BrokerResult<Node> {
        let NodeStart {
            config,
            clock,
            store,
            identity,
            quorum,
            channel,
        } = self;
        let restarts = config.restart_policy();
        let settings = CleanerSettings {
            threads: config.cleaner_threads,
            dedupe_buffer_bytes: config.cleaner_dedupe_buffer_bytes,
            backoff: std::time::Duration::from_millis(config.cleaner_backoff_ms.max(1)),
            clock: clock.clone(),
            restarts,
        };
        let enabled = config.cleaner_enable;
        let group_config = config.groups.clone();
        let consumer_config = config.consumers.clone();
        let node_id = config.node_id;
        let started = Broker::open(
            config,
            clock.clone(),
            quorum.clone(),
            channel.clone(),
            store,
            identity,
        );
        let broker = match started {
            Ok(broker) => broker,
            Err(e) => {
                quorum.shutdown().await;
                return Err(e);
            }
        };
        let routes = broker.routes();
        let broker = crate::supervision::start(broker);
        wait_until_serving(routes.metadata.clone(), node_id).await?;
        let cleaner = enabled.then(|| LogCleaner::start(broker.clone(), settings));
        let groups =
            GroupManager::start(routes.clone(), group_config, clock.clone(), restarts).await?;
        let consumers = ConsumerRegistry::new(
            consumer_config,
            routes.clone(),
            groups.clone(),
            clock.clone(),
            restarts,
        )
        .start_supervised();
        Ok(Node {
            engine: Engine::new(routes, broker, groups, consumers, cleaner, clock),
            quorum,
            controller: channel,
        })
    }
}

/// Starts this node's member of the metadata quorum. A node that is the whole
/// quorum votes alone (its controller address is never dialled).
async fn start_quorum(config: &BrokerConfig, cluster_id: &str) -> BrokerResult<Quorum> {
    let me = config.node_id.get() as u64;
    let voters: BTreeMap<u64, String> = if config.cluster.voters.is_empty() {
        BTreeMap::from([(me, "127.0.0.1:0".to_string())])
    } else {
        config
            .cluster
            .voters
            .iter()
            .map(|(id, addr)| (id.get() as u64, addr.clone()))
            .collect()
    };
    let single = voters.len() == 1;
    let observer = !voters.contains_key(&me);
    let dir = config.log_dir.join(METADATA_LOG_DIR);
    let mut quorum_config = QuorumConfig::new(me, voters, dir.clone(), cluster_id);
    quorum_config.observer = observer;
    quorum_config.tls = config.cluster.controller_tls.clone();
    if single && !observer {
        // Nobody to hear from: a short election, so a node starts at once.
        quorum_config.election_timeout_min_ms = 150;
        quorum_config.election_timeout_max_ms = 300;
        quorum_config.heartbeat_interval_ms = 50;
    }
    Quorum::start(quorum_config)
        .await
        .map_err(|e| BrokerError::storage(&dir, e.to_string()))
}

fn controller_settings(config: &BrokerConfig, identity: &StoredMetadata) -> ControllerSettings {
    let groups = &config.groups;
    ControllerSettings {
        node_id: config.node_id,
        cluster_id: identity.cluster_id.clone(),
        num_partitions: config.num_partitions,
        default_replication_factor: config.default_replication_factor,
        max_partitions_per_topic: config.max_partitions_per_topic,
        broker_session_timeout: Duration::from_millis(config.cluster.broker_session_timeout_ms),
        auto_leader_rebalance: config.cluster.auto_leader_rebalance_enable,
        leader_imbalance_check_interval: Duration::from_millis(
            config.cluster.leader_imbalance_check_interval_ms,
        ),
        topic_defaults: config.topic_defaults.clone(),
        offsets_topic: OffsetsTopicSpec {
            partitions: groups.offsets_topic_partitions,
            replication_factor: config.cluster.offsets_topic_replication_factor,
            configs: BTreeMap::from([
                ("cleanup.policy".to_string(), "compact".to_string()),
                (
                    "segment.bytes".to_string(),
                    groups.offsets_topic_segment_bytes.to_string(),
                ),
            ]),
        },
        legacy_topics: identity.topics.clone(),
        expected_brokers: config.cluster.voters.len().max(1),
    }
}

/// Waits until this broker is registered (this incarnation) and unfenced, and the
/// offsets topic exists (group coordinators replay the partitions led here as they
/// start, and the others as they come). A partition of it offline meanwhile, whose
/// only in-sync replica is a broker still down, does not hold this one back.
async fn wait_until_serving(mut view: MetadataView, node: crate::ids::NodeId) -> BrokerResult<()> {
    let serving = async {
        loop {
            let image = view.image();
            let me = image.brokers.get(&node);
            let offsets = image.topics.contains_key(OFFSETS_TOPIC);
            if me.is_some_and(|b| !b.fenced) && offsets {
                return Ok(());
            }
            if !view.changed().await {
                return Err(BrokerError::Unavailable(
                    "the broker stopped while starting".into(),
                ));
            }
        }
    };
    tokio::time::timeout(START_WAIT, serving)
        .await
        .unwrap_or_else(|_| {
            Err(BrokerError::Unavailable(format!(
            "this broker was not registered, unfenced and serving the offsets topic within {} s",
            START_WAIT.as_secs()
        )))
        })
}
