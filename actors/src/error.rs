//! `BrokerError`: what the broker and partition actors answer when they refuse or fail.
//! Each variant is one kind of the engine's error table ([`ErrorKind`]), which gives
//! its Kafka code, HTTP status and Confluent code; messages are lowercase facts.

use std::path::Path;

use crate::error_kind::ErrorKind;
use crate::storage::{LogError, ProducerError};

/// What [`BrokerError::LeadershipMoved`]'s message says, so a broker that forwarded
/// the write tells it from a NOT_LEADER_OR_FOLLOWER that did nothing (both are that
/// code on the wire) and does not send it again.
pub const LEADERSHIP_MOVED_MARK: &str = "moved before the write was replicated";

/// Serializable: a controller's answer crosses the controller listener as it is.
#[derive(Debug, Clone, thiserror::Error, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum BrokerError {
    #[error("unknown topic '{0}'")]
    UnknownTopic(String),

    #[error("topic '{topic}' has no partition {partition}")]
    UnknownPartition { topic: String, partition: i32 },

    #[error("topic '{0}' already exists")]
    TopicExists(String),

    #[error("invalid topic name '{name}': {reason}")]
    InvalidTopicName { name: String, reason: String },

    #[error("invalid partition count: {0}")]
    InvalidPartitions(String),

    #[error("invalid replication factor {requested}: only {available} broker(s) are available")]
    InvalidReplicationFactor { requested: i32, available: i32 },

    #[error("invalid config {name}: {reason}")]
    InvalidConfig { name: String, reason: String },

    #[error("topic '{0}' is internal and read-only")]
    TopicIsInternal(String),

    /// A user, or a user's credential for a mechanism, that does not exist.
    #[error("{0}")]
    UnknownUser(String),

    #[error("user '{0}' already exists")]
    UserExists(String),

    /// Managing users or ACLs without the right to.
    #[error("not authorized: {0}")]
    ClusterAuthorizationFailed(String),

    /// The authorizer refused the operation: nothing was done.
    #[error(transparent)]
    Denied(#[from] crate::auth::acl::Denied),

    /// A credential refused: an empty password, iterations out of bounds, a user
    /// name that cannot be used.
    #[error("unacceptable credential: {0}")]
    UnacceptableCredential(String),

    #[error("record batch of {size_bytes} bytes exceeds max.message.bytes = {max_message_bytes}")]
    RecordTooLarge {
        size_bytes: usize,
        max_message_bytes: usize,
    },

    #[error("offset {requested} is out of range for {topic}-{partition}: valid offsets are [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        topic: String,
        partition: i32,
        requested: i64,
        log_start_offset: i64,
        log_end_offset: i64,
    },

    #[error("invalid request: {0}")]
    InvalidRequest(String),

    /// A request the topic's own configuration forbids (records deleted from a topic
    /// that is only compacted).
    #[error("{0}")]
    PolicyViolation(String),

    /// A record batch a client sent that fails its checks (framing, records): nothing
    /// of it is written.
    #[error("invalid record batch for {topic}-{partition}: {reason}")]
    InvalidRecord {
        topic: String,
        partition: i32,
        reason: String,
    },

    /// A record batch a client sent whose checksum does not match its bytes (damaged
    /// on the way): nothing of it is written, and the client may send it again.
    #[error("record batch for {topic}-{partition} fails its checksum: {reason}")]
    CorruptBatch {
        topic: String,
        partition: i32,
        reason: String,
    },

    #[error("partition {topic}-{partition} is offline: {reason}")]
    PartitionOffline {
        topic: String,
        partition: i32,
        reason: String,
    },

    #[error("partition {topic}-{partition} failed and is restarting: {reason}")]
    PartitionRestarting {
        topic: String,
        partition: i32,
        reason: String,
    },

    #[error("too many requests waiting on {topic}-{partition} (limit {limit})")]
    Busy {
        topic: String,
        partition: i32,
        limit: usize,
    },

    /// The file system holding the log directory is full (`ENOSPC`): the write was
    /// refused and nothing of it stored; reads go on, and writes succeed again once
    /// space is freed (Kafka's KAFKA_STORAGE_ERROR, without taking the partition
    /// offline).
    #[error("disk full: {0}")]
    DiskFull(String),
    /// Kafka's CORRUPT_MESSAGE on a read: stored offsets that fail their check. They
    /// cannot be served; the offsets after them can.
    #[error("corrupt record batch in {topic}-{partition}: offsets {first_offset} to {last_offset} fail their check in segment file {segment} at byte {position} ({reason}) and cannot be served; offsets from {next} on can be read", next = .last_offset + 1)]
    CorruptRecord {
        topic: String,
        partition: i32,
        first_offset: i64,
        last_offset: i64,
        segment: String,
        position: u64,
        reason: String,
    },

    /// Stored batches that pass their check but whose records cannot be decoded
    /// (a record's framing, or a group record of a version this broker does not read).
    #[error(
        "records of {topic}-{partition} read from offset {offset} cannot be decoded: {reason}"
    )]
    UndecodableRecords {
        topic: String,
        partition: i32,
        offset: i64,
        reason: String,
    },

    /// An idempotent producer's batch that does not continue its sequence and is not
    /// a retry of one of its last five batches (Kafka's OUT_OF_ORDER_SEQUENCE_NUMBER).
    /// Nothing was written. (A retry of one of them is no error: the append answers
    /// with the earlier offsets, `AppendResult::duplicate` set.)
    #[error("out of order sequence on {topic}-{partition}: producer {producer_id} (epoch {producer_epoch}) sent a batch starting at sequence {first_sequence}, where sequence {expected_sequence} comes next")]
    OutOfOrderSequence {
        topic: String,
        partition: i32,
        producer_id: i64,
        producer_epoch: i16,
        first_sequence: i32,
        expected_sequence: i32,
    },

    /// An idempotent producer's batch in an epoch older than the one the partition
    /// has seen from it: a newer instance of the producer took over (Kafka's
    /// INVALID_PRODUCER_EPOCH). Nothing was written.
    #[error("producer {producer_id} sent epoch {producer_epoch} to {topic}-{partition}, older than its current epoch {current_epoch}")]
    InvalidProducerEpoch {
        topic: String,
        partition: i32,
        producer_id: i64,
        producer_epoch: i16,
        current_epoch: i16,
    },

    /// Transactions (a transactional id, transactional batches) are a later issue:
    /// refused cleanly, never half-served.
    #[error("transactions are not supported: {0}")]
    TransactionsUnsupported(String),

    /// An actor this request needs is not running (stopped, restarting, or not
    /// started yet): the request may succeed if sent again.
    #[error("unavailable: {0}")]
    Unavailable(String),

    /// The partition's leader, as this node's metadata has it, could not be
    /// connected to: the request never left, so it may be sent again (to the leader
    /// the metadata names next).
    #[error(
        "the partition's leader, broker {node}, cannot be reached (nothing was written): {reason}"
    )]
    LeaderUnreachable {
        node: crate::ids::NodeId,
        reason: String,
    },

    /// Sent to a broker that does not lead the partition (another does, or none yet).
    #[error("this broker does not lead {topic}-{partition}{}", leader.map(|l| format!(": broker {l} does")).unwrap_or_default())]
    NotLeader {
        topic: String,
        partition: i32,
        leader: Option<crate::ids::NodeId>,
    },

    /// A write appended while this broker led, whose leadership moved before every
    /// in-sync replica had it: not acknowledged, and whether the new leader keeps it
    /// is unknown (Kafka answers NOT_LEADER_OR_FOLLOWER; an idempotent producer's
    /// retry is safe, a plain one may duplicate).
    #[error("the leadership of {topic}-{partition} moved before the write was replicated: it was not acknowledged, and may or may not have been kept")]
    LeadershipMoved { topic: String, partition: i32 },

    /// An `acks=all` write refused before anything was appended: the partition has
    /// fewer in-sync replicas than its `min.insync.replicas`.
    #[error("partition {topic}-{partition} has {in_sync} in-sync replica(s), fewer than min.insync.replicas = {min_insync}: nothing was written")]
    NotEnoughReplicas {
        topic: String,
        partition: i32,
        in_sync: usize,
        min_insync: usize,
    },

    /// An `acks=all` write appended while the ISR was large enough, whose ISR shrank
    /// below `min.insync.replicas` before the write was committed: not acknowledged.
    #[error("partition {topic}-{partition}'s in-sync replicas shrank to {in_sync}, fewer than min.insync.replicas = {min_insync}, before the write was replicated: it is not acknowledged and may or may not be kept")]
    NotEnoughReplicasAfterAppend {
        topic: String,
        partition: i32,
        in_sync: usize,
        min_insync: usize,
    },

    /// A request made in a leader epoch older than the partition's current one.
    #[error("fenced leader epoch: {0}")]
    FencedLeaderEpoch(String),

    /// An ISR change proposed against a partition epoch that is not current.
    #[error("stale partition epoch: {0}")]
    InvalidUpdateVersion(String),

    /// What another broker answered a forwarded request with, in Kafka's code.
    #[error("broker {node} answered: {message}")]
    Remote {
        node: crate::ids::NodeId,
        code: i16,
        message: String,
    },

    /// Sent to a node that does not lead the metadata quorum.
    #[error("not the active controller: {0}")]
    NotController(String),

    /// A heartbeat or change from a broker registration that is not the current one.
    #[error("stale broker epoch: {0}")]
    StaleBrokerEpoch(String),

    /// A file or directory of the broker's could not be read or written (not for want
    /// of space), or holds what this broker cannot read.
    #[error("storage failure on {path}: {reason}")]
    StorageFailure { path: String, reason: String },

    #[error("internal error: {0}")]
    Internal(String),
}

impl BrokerError {
    /// Which row of the engine's error table this is.
    pub fn kind(&self) -> ErrorKind {
        use BrokerError as E;
        match self {
            E::UnknownTopic(_) => ErrorKind::UnknownTopic,
            E::UnknownPartition { .. } => ErrorKind::UnknownPartition,
            E::TopicExists(_) => ErrorKind::TopicAlreadyExists,
            E::InvalidTopicName { .. } | E::TopicIsInternal(_) => ErrorKind::InvalidTopic,
            E::InvalidPartitions(_) => ErrorKind::InvalidPartitions,
            E::InvalidReplicationFactor { .. } => ErrorKind::InvalidReplicationFactor,
            E::InvalidConfig { .. } => ErrorKind::InvalidConfig,
            E::UnknownUser(_) => ErrorKind::ResourceNotFound,
            E::UserExists(_) => ErrorKind::DuplicateResource,
            E::ClusterAuthorizationFailed(_) => ErrorKind::ClusterAuthorizationFailed,
            E::Denied(denied) => denied.kind(),
            E::UnacceptableCredential(_) => ErrorKind::UnacceptableCredential,
            E::RecordTooLarge { .. } => ErrorKind::MessageTooLarge,
            E::OffsetOutOfRange { .. } => ErrorKind::OffsetOutOfRange,
            E::InvalidRequest(_) => ErrorKind::InvalidRequest,
            E::PolicyViolation(_) => ErrorKind::PolicyViolation,
            E::InvalidRecord { .. } => ErrorKind::InvalidRecord,
            E::CorruptBatch { .. } => ErrorKind::CorruptBatch,
            E::PartitionOffline { .. } => ErrorKind::PartitionOffline,
            E::PartitionRestarting { .. } | E::Unavailable(_) | E::LeaderUnreachable { .. } => {
                ErrorKind::Unavailable
            }
            E::NotController(_) => ErrorKind::NotController,
            E::NotLeader { .. } | E::LeadershipMoved { .. } => ErrorKind::NotLeaderOrFollower,
            E::NotEnoughReplicas { .. } => ErrorKind::NotEnoughReplicas,
            E::NotEnoughReplicasAfterAppend { .. } => ErrorKind::NotEnoughReplicasAfterAppend,
            E::FencedLeaderEpoch(_) => ErrorKind::FencedLeaderEpoch,
            E::InvalidUpdateVersion(_) => ErrorKind::InvalidUpdateVersion,
            E::Remote { code, .. } => {
                ErrorKind::of_kafka_code(*code).unwrap_or(ErrorKind::Internal)
            }
            E::StaleBrokerEpoch(_) => ErrorKind::StaleBrokerEpoch,
            E::Busy { .. } => ErrorKind::TooManyRequests,
            E::DiskFull(_) => ErrorKind::DiskFull,
            E::CorruptRecord { .. } | E::UndecodableRecords { .. } => ErrorKind::CorruptMessage,
            E::StorageFailure { .. } => ErrorKind::StorageError,
            E::OutOfOrderSequence { .. } => ErrorKind::OutOfOrderSequence,
            E::InvalidProducerEpoch { .. } => ErrorKind::InvalidProducerEpoch,
            E::TransactionsUnsupported(_) => ErrorKind::TransactionsUnsupported,
            E::Internal(_) => ErrorKind::Internal,
        }
    }

    /// Maps a storage error met while serving `topic`-`partition`.
    pub fn from_log(topic: &str, partition: i32, e: LogError) -> BrokerError {
        if e.is_disk_full() {
            return BrokerError::DiskFull(format!(
                "{topic}-{partition} cannot take writes ({e}); reads continue, and writes resume once space is freed"
            ));
        }
        match e {
            LogError::OffsetOutOfRange {
                requested,
                log_start_offset,
                log_end_offset,
            } => BrokerError::OffsetOutOfRange {
                topic: topic.to_string(),
                partition,
                requested,
                log_start_offset,
                log_end_offset,
            },
            LogError::RecordBatchTooLarge {
                size_bytes,
                max_message_bytes,
            } => BrokerError::RecordTooLarge {
                size_bytes,
                max_message_bytes,
            },
            LogError::InvalidBatch(e) => {
                BrokerError::InvalidRequest(format!("invalid record batch: {e}"))
            }
            LogError::CorruptBatch {
                path,
                position,
                first_offset,
                last_offset,
                reason,
            } => BrokerError::CorruptRecord {
                topic: topic.to_string(),
                partition,
                first_offset,
                last_offset,
                segment: path.display().to_string(),
                position,
                reason,
            },
            LogError::Producer(e) => BrokerError::from_producer(topic, partition, e),
            LogError::InvalidConfig(reason) => BrokerError::InvalidConfig {
                name: "log".into(),
                reason,
            },
            // A replica copying batches that do not continue its log: nothing was
            // written, and the copier must truncate first.
            e @ LogError::NonContiguousAppend { .. } => {
                BrokerError::InvalidRequest(format!("{topic}-{partition}: {e}"))
            }
            LogError::Corrupt {
                path,
                position,
                reason,
            } => BrokerError::storage(&path, format!("corrupt at byte {position}: {reason}")),
            LogError::Io { path, source } => BrokerError::storage(&path, source),
        }
    }

    /// Maps a producer-state refusal met appending to `topic`-`partition`.
    fn from_producer(topic: &str, partition: i32, e: ProducerError) -> BrokerError {
        let topic = topic.to_string();
        match e {
            ProducerError::InvalidEpoch {
                producer_id,
                producer_epoch,
                current_epoch,
            } => BrokerError::InvalidProducerEpoch {
                topic,
                partition,
                producer_id,
                producer_epoch,
                current_epoch,
            },
            ProducerError::OutOfOrderSequence {
                producer_id,
                producer_epoch,
                first_sequence,
                expected_sequence,
            } => BrokerError::OutOfOrderSequence {
                topic,
                partition,
                producer_id,
                producer_epoch,
                first_sequence,
                expected_sequence,
            },
            e @ ProducerError::InvalidSequence { .. } => BrokerError::InvalidRequest(format!(
                "invalid record batch for {topic}-{partition}: {e}"
            )),
            e @ ProducerError::Transactional { .. } => {
                BrokerError::TransactionsUnsupported(format!("{topic}-{partition}: {e}"))
            }
        }
    }

    /// A file or directory at `path` that could not be read or written.
    pub fn storage(path: &Path, reason: impl std::fmt::Display) -> BrokerError {
        BrokerError::StorageFailure {
            path: path.display().to_string(),
            reason: reason.to_string(),
        }
    }

    /// Batches of `topic`-`partition` read from `offset` whose records cannot be
    /// decoded.
    pub fn undecodable(
        topic: &str,
        partition: i32,
        offset: i64,
        reason: impl std::fmt::Display,
    ) -> BrokerError {
        BrokerError::UndecodableRecords {
            topic: topic.to_string(),
            partition,
            offset,
            reason: reason.to_string(),
        }
    }

    /// Whether the same request may succeed if sent again shortly.
    pub fn is_retriable(&self) -> bool {
        self.kind().is_retriable()
    }

    /// An actor that did not take or answer a message: the one mapping of a mailbox
    /// error, which consumer instances, coordinators and the HTTP layer share.
    pub fn mailbox(e: actix::MailboxError) -> BrokerError {
        BrokerError::Unavailable(format!(
            "the actor serving the request did not answer ({e})"
        ))
    }
}

pub type BrokerResult<T> = Result<T, BrokerError>;
