//! `BrokerError`: what the broker and partition actors answer when they refuse or fail.
//! The HTTP layer maps each variant to a Confluent REST error code in one place
//! (`troupe-web`'s `error.rs`); the Kafka protocol layer will map them to Kafka's.

use crate::storage::LogError;

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum BrokerError {
    #[error("This server does not host this topic-partition: unknown topic '{0}'")]
    UnknownTopic(String),

    #[error("Topic '{topic}' has no partition {partition}")]
    UnknownPartition { topic: String, partition: i32 },

    #[error("Topic '{0}' already exists")]
    TopicExists(String),

    #[error("Invalid topic name '{name}': {reason}")]
    InvalidTopicName { name: String, reason: String },

    #[error("Invalid partitions count: {0}")]
    InvalidPartitions(String),

    #[error("Invalid replication factor {requested}: only {available} broker(s) are available")]
    InvalidReplicationFactor { requested: i32, available: i32 },

    #[error("Invalid config {name}: {reason}")]
    InvalidConfig { name: String, reason: String },

    #[error("Topic '{0}' is internal and read-only")]
    TopicIsInternal(String),

    #[error("Record batch of {size_bytes} bytes exceeds max.message.bytes = {max_message_bytes}")]
    RecordTooLarge {
        size_bytes: usize,
        max_message_bytes: usize,
    },

    #[error("Offset {requested} is out of range for {topic}-{partition}: valid offsets are [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        topic: String,
        partition: i32,
        requested: i64,
        log_start_offset: i64,
        log_end_offset: i64,
    },

    #[error("Invalid request: {0}")]
    InvalidRequest(String),

    #[error("Partition {topic}-{partition} is offline: {reason}")]
    PartitionOffline {
        topic: String,
        partition: i32,
        reason: String,
    },

    #[error("Partition {topic}-{partition} failed and is restarting: {reason}")]
    PartitionRestarting {
        topic: String,
        partition: i32,
        reason: String,
    },

    #[error("Too many requests waiting on {topic}-{partition} (limit {limit})")]
    Busy {
        topic: String,
        partition: i32,
        limit: usize,
    },

    /// The file system holding the log directory is full (`ENOSPC`): the write was
    /// refused and nothing of it stored; reads go on, and writes succeed again once
    /// space is freed (Kafka's KAFKA_STORAGE_ERROR, without taking the partition
    /// offline).
    #[error("Disk full: {0}")]
    DiskFull(String),
    /// Kafka's CORRUPT_MESSAGE on a read: stored offsets that fail their check. They
    /// cannot be served; the offsets after them can.
    #[error("Corrupt record batch in {topic}-{partition}: offsets {first_offset} to {last_offset} fail their check in segment file {segment} at byte {position} ({reason}) and cannot be served; offsets from {next} on can be read", next = .last_offset + 1)]
    CorruptRecord {
        topic: String,
        partition: i32,
        first_offset: i64,
        last_offset: i64,
        segment: String,
        position: u64,
        reason: String,
    },

    /// An actor this request needs is not running (stopped, restarting, or not
    /// started yet): the request may succeed if sent again.
    #[error("Unavailable: {0}")]
    Unavailable(String),

    #[error("Storage error: {0}")]
    Storage(String),

    #[error("Internal error: {0}")]
    Internal(String),
}

impl BrokerError {
    /// Maps a storage error met while serving `topic`-`partition`.
    pub fn from_log(topic: &str, partition: i32, e: LogError) -> BrokerError {
        if e.is_disk_full() {
            return BrokerError::DiskFull(format!(
                "{topic}-{partition} cannot take writes: {e}. Reads continue; writes resume once space is freed"
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
            LogError::InvalidConfig(reason) => BrokerError::InvalidConfig {
                name: "log".into(),
                reason,
            },
            other => BrokerError::Storage(other.to_string()),
        }
    }

    /// Whether the same request may succeed if sent again shortly.
    pub fn is_retriable(&self) -> bool {
        matches!(
            self,
            BrokerError::PartitionRestarting { .. }
                | BrokerError::Busy { .. }
                | BrokerError::DiskFull(_)
                | BrokerError::Unavailable(_)
        )
    }

    pub fn mailbox(e: actix::MailboxError) -> BrokerError {
        BrokerError::Unavailable(format!("actor unavailable: {e}"))
    }
}

pub type BrokerResult<T> = Result<T, BrokerError>;
