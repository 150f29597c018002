//! `BrokerConfig`: the broker's settings once parsed (the binary's `settings.rs` reads
//! them from file, environment and command line by Kafka's names). Every limit the
//! broker enforces is here, with its unit in its name.

use std::path::PathBuf;
use std::time::Duration;

use crate::ids::NodeId;
use crate::supervision::RestartPolicy;
use crate::topic_config::TopicDefaults;

#[derive(Debug, Clone, PartialEq)]
pub struct BrokerConfig {
    /// `node.id` (Kafka's `broker.id`).
    pub node_id: NodeId,
    /// `log.dirs`: where partitions and metadata live (one directory).
    pub log_dir: PathBuf,
    /// `num.partitions`: partitions of a topic created without a count.
    pub num_partitions: i32,
    /// `default.replication.factor`.
    pub default_replication_factor: i16,
    /// Defaults for every topic config (`log.segment.bytes`, `log.retention.ms`, …).
    pub topic_defaults: TopicDefaults,
    /// `log.flush.offset.checkpoint.interval.ms`.
    pub recovery_point_checkpoint_interval_ms: i64,
    /// `log.retention.check.interval.ms`: how often each partition applies retention.
    pub retention_check_interval_ms: u64,
    /// `producer.id.expiration.ms`: how long a partition remembers an idempotent
    /// producer after its newest batch (checked with retention).
    pub producer_id_expiration_ms: i64,
    /// `log.cleaner.enable`, `log.cleaner.threads`, `log.cleaner.dedupe.buffer.size`,
    /// `log.cleaner.backoff.ms` (how often the cleaner looks for work).
    pub cleaner_enable: bool,
    pub cleaner_threads: usize,
    pub cleaner_dedupe_buffer_bytes: usize,
    pub cleaner_backoff_ms: u64,
    /// `max.partitions.per.topic`: a bound on one topic's size (not a Kafka key).
    pub max_partitions_per_topic: i32,
    /// `reserved.file.descriptors`: open files kept for connections, threads and all
    /// that is not a partition; the rest of `RLIMIT_NOFILE` bounds the partition
    /// count (see [`crate::file_limits`]).
    pub reserved_file_descriptors: u64,
    /// `partition.mailbox.capacity`: messages queued per partition actor before senders wait.
    pub partition_mailbox_capacity: usize,
    /// `partition.max.waiting.fetches`: long-polling reads parked on one partition.
    pub partition_max_waiting_fetches: usize,
    /// `partition.max.restarts` within `partition.restart.window.ms` before a failing
    /// partition is marked offline instead of restarted again. The keys are older than
    /// [`crate::supervision`]: the budget is every supervised actor's
    /// ([`BrokerConfig::restart_policy`]).
    pub partition_max_restarts: usize,
    pub partition_restart_window_ms: u64,
    /// `partition.threads`: arbiters (threads) the partition actors are spread over.
    pub partition_threads: usize,
    /// `partition.tail.buffer.chunks` / `partition.tail.chunk.max.bytes`: the live
    /// tail's ring per partition (recently committed chunks pushed to subscribers).
    /// A subscriber more than the ring behind reads the log instead; the ring bounds
    /// the memory the live tail of one partition can hold.
    pub partition_tail_buffer_chunks: usize,
    pub partition_tail_chunk_max_bytes: usize,
    /// Consumer groups and `__consumer_offsets`.
    pub groups: GroupConfig,
    /// Consumer instances living in the broker (REST v2, WebSocket).
    pub consumers: ConsumerConfig,
    /// The node's place in the cluster: roles, the controller quorum, liveness.
    pub cluster: ClusterConfig,
}

/// What a node is in the cluster (Kafka's KRaft settings). The default is the
/// embedded one: a combined broker and controller that is the whole quorum.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterConfig {
    /// `process.roles`.
    pub roles: ProcessRoles,
    /// `controller.quorum.voters`: each controller's id and its controller
    /// listener's `host:port`. Empty: this node alone is the quorum.
    pub voters: std::collections::BTreeMap<NodeId, String>,
    /// `cluster.id`: required of a multi-node cluster (every node must agree);
    /// a single node makes one up on its first start.
    pub cluster_id: Option<String>,
    /// `broker.session.timeout.ms`: a broker silent this long is fenced.
    pub broker_session_timeout_ms: u64,
    /// `broker.heartbeat.interval.ms`.
    pub broker_heartbeat_interval_ms: u64,
    /// `offsets.topic.replication.factor`.
    pub offsets_topic_replication_factor: i16,
    /// `auto.leader.rebalance.enable`, every `leader.imbalance.check.interval.seconds`.
    pub auto_leader_rebalance_enable: bool,
    pub leader_imbalance_check_interval_ms: u64,
    /// `inter.broker.listener.name`: the listener brokers reach each other on.
    pub inter_broker_listener_name: String,
    /// `controller.listener.names`: the listener controllers talk on.
    pub controller_listener_name: String,
    /// On a broker-only node: its CONTROLLER listener's `host:port`, where the
    /// quorum's leader replicates the metadata log to it (it is a learner).
    pub observer_addr: Option<String>,
    /// How followers fetch and when they leave the ISR.
    pub replication: ReplicationConfig,
    /// TLS to other brokers' inter-broker listener, when it is SSL (set by the
    /// server from the `ssl.*` keys).
    pub inter_broker_tls: Option<crate::peer_client::PeerTls>,
    /// TLS to the voters' CONTROLLER listener, when it is SSL.
    pub controller_tls: Option<crate::peer_client::PeerTls>,
}

/// Kafka's `replica.*` keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationConfig {
    /// `replica.lag.time.max.ms`.
    pub lag_time_max_ms: u64,
    /// `replica.fetch.wait.max.ms`.
    pub fetch_wait_max_ms: u64,
    /// `replica.fetch.max.bytes`.
    pub fetch_max_bytes: usize,
    /// `replica.fetch.response.max.bytes`.
    pub fetch_response_max_bytes: usize,
    /// `replica.fetch.backoff.ms`.
    pub fetch_backoff_ms: u64,
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        ReplicationConfig {
            lag_time_max_ms: 30_000,
            fetch_wait_max_ms: 500,
            fetch_max_bytes: 1 << 20,
            fetch_response_max_bytes: 10 << 20,
            fetch_backoff_ms: 1_000,
        }
    }
}

/// `process.roles`: a broker (serves clients, holds replicas), a controller (a
/// voter of the metadata quorum), or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessRoles {
    pub broker: bool,
    pub controller: bool,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            roles: ProcessRoles {
                broker: true,
                controller: true,
            },
            voters: Default::default(),
            cluster_id: None,
            broker_session_timeout_ms: 9_000,
            broker_heartbeat_interval_ms: 2_000,
            offsets_topic_replication_factor: 1,
            auto_leader_rebalance_enable: true,
            leader_imbalance_check_interval_ms: 300_000,
            inter_broker_listener_name: "PLAINTEXT".into(),
            inter_broker_tls: None,
            controller_tls: None,
            controller_listener_name: "CONTROLLER".into(),
            observer_addr: None,
            replication: ReplicationConfig::default(),
        }
    }
}

impl ClusterConfig {
    /// This node is the whole quorum (no voters named, or only itself).
    pub fn is_single_node(&self, node_id: NodeId) -> bool {
        self.voters.is_empty() || (self.voters.len() == 1 && self.voters.contains_key(&node_id))
    }
}

/// Consumer instances the broker runs for REST (and WebSocket) clients, as
/// Confluent REST Proxy runs them (its names where it has them).
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerConfig {
    /// `consumer.instance.timeout.ms`: an instance unused this long is closed and
    /// leaves its group.
    pub instance_timeout_ms: u64,
    /// `consumer.instances.max`: instances open at once on this broker.
    pub max_instances: usize,
    /// `consumer.session.timeout.ms` and `consumer.heartbeat.interval.ms`: the group
    /// session of an instance, and how often it heartbeats.
    pub session_timeout_ms: i64,
    pub heartbeat_interval_ms: u64,
    /// `consumer.request.timeout.ms`: how long a records request waits for data when
    /// it names no `timeout`.
    pub request_timeout_ms: u64,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            instance_timeout_ms: 300_000,
            max_instances: 1_000,
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 3_000,
            request_timeout_ms: 1_000,
        }
    }
}

/// Consumer-group settings (Kafka's names).
#[derive(Debug, Clone, PartialEq)]
pub struct GroupConfig {
    /// `offsets.topic.num.partitions`: fixed once the topic exists.
    pub offsets_topic_partitions: i32,
    /// `offsets.topic.segment.bytes`.
    pub offsets_topic_segment_bytes: u64,
    /// `offset.metadata.max.bytes`: the longest metadata string a commit may carry.
    pub offset_metadata_max_bytes: usize,
    /// `group.min.session.timeout.ms` / `group.max.session.timeout.ms`: the session
    /// timeouts members may ask for.
    pub min_session_timeout_ms: i64,
    pub max_session_timeout_ms: i64,
    /// `group.max.size`: members per group.
    pub max_size: usize,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            offsets_topic_partitions: 50,
            offsets_topic_segment_bytes: 100 * 1024 * 1024,
            offset_metadata_max_bytes: 4096,
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            max_size: 1_000,
        }
    }
}

impl BrokerConfig {
    /// The restart budget of every supervised actor (see [`crate::supervision`]).
    pub fn restart_policy(&self) -> RestartPolicy {
        RestartPolicy {
            max_restarts: self.partition_max_restarts,
            window: Duration::from_millis(self.partition_restart_window_ms),
        }
    }
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            node_id: NodeId::new(1),
            log_dir: PathBuf::from("./data"),
            num_partitions: 1,
            default_replication_factor: 1,
            topic_defaults: TopicDefaults::default(),
            recovery_point_checkpoint_interval_ms: 60_000,
            retention_check_interval_ms: 300_000,
            producer_id_expiration_ms: 86_400_000,
            cleaner_enable: true,
            cleaner_threads: 1,
            cleaner_dedupe_buffer_bytes: 128 * 1024 * 1024,
            cleaner_backoff_ms: 15_000,
            max_partitions_per_topic: 10_000,
            reserved_file_descriptors: 1024,
            partition_mailbox_capacity: 1024,
            partition_max_waiting_fetches: 1024,
            partition_max_restarts: 5,
            partition_restart_window_ms: 60_000,
            partition_threads: 2,
            partition_tail_buffer_chunks: 128,
            partition_tail_chunk_max_bytes: 256 * 1024,
            groups: GroupConfig::default(),
            consumers: ConsumerConfig::default(),
            cluster: ClusterConfig::default(),
        }
    }
}
