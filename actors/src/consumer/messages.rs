//! The typed messages a [`super::ConsumerInstance`] and the
//! [`super::ConsumerRegistry`] answer: the operations of Confluent REST Proxy's v2
//! consumer API, in Kafka consumer terms, and the [`ConsumerError`] they fail with.

use actix::{Addr, MailboxError, Message};

use super::ConsumerInstance;
use crate::error::BrokerError;
use crate::error_kind::ErrorKind;
use crate::group::offsets_topic::CommittedOffset;
use crate::group::{GroupError, TopicPartition};
use crate::ids::GenerationId;
use crate::storage::StoredRecord;

/// Why a consumer message failed; [`ConsumerError::kind`] gives its row of the
/// engine's error table.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConsumerError {
    #[error("unknown consumer instance '{name}' in group '{group_id}'")]
    UnknownInstance { group_id: String, name: String },
    #[error("consumer instance '{name}' already exists in group '{group_id}'")]
    InstanceExists { group_id: String, name: String },
    #[error("invalid consumer instance name '{0}'")]
    InvalidInstanceName(String),
    #[error("too many consumer instances: consumer.instances.max = {0}")]
    TooManyInstances(usize),
    #[error("the consumer is not subscribed to any topic and has no partitions assigned")]
    NotSubscribed,
    /// Topics, a pattern and partitions assigned by hand are three ways to consume;
    /// an instance takes one at a time.
    #[error("subscribing to topics or a pattern and assigning partitions are mutually exclusive: this instance {holds}")]
    MixedSubscription { holds: &'static str },
    #[error("partition {topic}-{partition} is not assigned to this consumer instance")]
    NotAssigned { topic: String, partition: i32 },
    #[error("no committed offset for {topic}-{partition} and auto.offset.reset is none")]
    NoOffset { topic: String, partition: i32 },
    #[error(transparent)]
    Group(#[from] GroupError),
    #[error(transparent)]
    Broker(#[from] BrokerError),
    #[error("the consumer instance is closed")]
    Closed,
}

impl ConsumerError {
    /// Which row of the engine's error table this is.
    pub fn kind(&self) -> ErrorKind {
        use ConsumerError as E;
        match self {
            E::Group(e) => e.kind(),
            E::Broker(e) => e.kind(),
            E::UnknownInstance { .. } | E::Closed => ErrorKind::UnknownConsumerInstance,
            E::InstanceExists { .. } => ErrorKind::ConsumerInstanceExists,
            E::TooManyInstances(_) => ErrorKind::TooManyRequests,
            E::InvalidInstanceName(_)
            | E::NotSubscribed
            | E::MixedSubscription { .. }
            | E::NotAssigned { .. }
            | E::NoOffset { .. } => ErrorKind::IllegalState,
        }
    }
}

impl From<MailboxError> for ConsumerError {
    fn from(e: MailboxError) -> Self {
        ConsumerError::Broker(BrokerError::mailbox(e))
    }
}

pub type ConsumerResult<T> = Result<T, ConsumerError>;

/// Kafka's `auto.offset.reset`: where to start a partition without a committed
/// offset (or whose committed offset retention has passed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetPolicy {
    Earliest,
    Latest,
    /// Fail the fetch instead.
    None,
}

impl ResetPolicy {
    pub fn parse(s: &str) -> Option<ResetPolicy> {
        match s {
            "earliest" | "smallest" => Some(ResetPolicy::Earliest),
            "latest" | "largest" => Some(ResetPolicy::Latest),
            "none" => Some(ResetPolicy::None),
            _ => None,
        }
    }
}

/// What an instance is created with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceSettings {
    /// The embedded format records are rendered in (the web layer's concern; kept
    /// with the instance as Confluent does).
    pub format: String,
    pub auto_offset_reset: ResetPolicy,
    pub auto_commit: bool,
    /// Kafka's `client.id`: shown in group descriptions.
    pub client_id: String,
}

#[derive(Message)]
#[rtype(result = "ConsumerResult<Addr<ConsumerInstance>>")]
pub struct CreateInstance {
    pub group_id: String,
    pub name: String,
    pub settings: InstanceSettings,
}

#[derive(Message)]
#[rtype(result = "ConsumerResult<Addr<ConsumerInstance>>")]
pub struct FindInstance {
    pub group_id: String,
    pub name: String,
}

/// An instance has closed (deleted, or idle past `consumer.instance.timeout.ms`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct InstanceClosed {
    pub group_id: String,
    pub name: String,
}

/// What an instance reports about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceInfo {
    pub group_id: String,
    pub name: String,
    pub settings: InstanceSettings,
    pub member_id: Option<String>,
    pub generation_id: Option<GenerationId>,
}

#[derive(Message)]
#[rtype(result = "InstanceInfo")]
pub struct GetInstanceInfo;

/// What an instance subscribes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subscription {
    Topics(Vec<String>),
    /// A regular expression matched against whole topic names (as Java's
    /// `Pattern.matches`), internal topics excluded; topics created or deleted later
    /// are picked up as they come.
    Pattern(String),
}

/// Subscribe (replacing any earlier subscription): the group assigns the partitions.
#[derive(Message)]
#[rtype(result = "ConsumerResult<()>")]
pub struct Subscribe {
    pub to: Subscription,
    /// The topics a pattern may match (those its user may read); `None`: every one.
    pub visible: Option<TopicFilter>,
}

/// Which topics someone may see, as the authorizer decides.
pub type TopicFilter = std::sync::Arc<dyn Fn(&str) -> bool + Send + Sync>;

#[derive(Message)]
#[rtype(result = "Vec<String>")]
pub struct GetSubscription;

/// Drop the subscription (and leave the group) or the manual assignment.
#[derive(Message)]
#[rtype(result = "ConsumerResult<()>")]
pub struct Unsubscribe;

/// Assign partitions by hand, outside group management.
#[derive(Message)]
#[rtype(result = "ConsumerResult<()>")]
pub struct Assign {
    pub partitions: Vec<TopicPartition>,
}

#[derive(Message)]
#[rtype(result = "Vec<TopicPartition>")]
pub struct GetAssignment;

/// One record and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedRecord {
    pub topic: String,
    pub partition: i32,
    pub record: StoredRecord,
}

impl ConsumedRecord {
    /// Its key's, value's and headers' bytes: what a fetch quota counts.
    pub fn size_bytes(&self) -> usize {
        let r = &self.record.record;
        let headers: usize = r
            .headers
            .iter()
            .map(|h| h.key.len() + h.value.as_deref().map_or(0, <[u8]>::len))
            .sum();
        r.key.as_deref().map_or(0, <[u8]>::len)
            + r.value.as_deref().map_or(0, <[u8]>::len)
            + headers
    }
}

/// Fetch records from the assigned partitions at the instance's positions, waiting
/// up to `timeout_ms` for some to arrive, at most `max_bytes` of keys and values
/// (but at least one record).
#[derive(Message)]
#[rtype(result = "ConsumerResult<Vec<ConsumedRecord>>")]
pub struct Poll {
    pub max_bytes: usize,
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetAndMetadata {
    pub partition: TopicPartition,
    pub offset: i64,
    pub metadata: String,
}

/// Commit `offsets`, or (with `None`) every position the instance has fetched up to.
#[derive(Message)]
#[rtype(result = "ConsumerResult<Vec<OffsetAndMetadata>>")]
pub struct Commit {
    pub offsets: Option<Vec<OffsetAndMetadata>>,
}

/// The group's committed offsets for `partitions`.
#[derive(Message)]
#[rtype(result = "ConsumerResult<Vec<(TopicPartition, Option<CommittedOffset>)>>")]
pub struct Committed {
    pub partitions: Vec<TopicPartition>,
}

/// Where the next fetch of each partition starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeekTo {
    Offset(i64),
    Beginning,
    End,
    /// The first record whose timestamp is at or after this one (ms since the epoch),
    /// or the log end when there is none, as Kafka's `offsetsForTimes` then `seek`.
    Timestamp(i64),
}

#[derive(Message)]
#[rtype(result = "ConsumerResult<()>")]
pub struct Seek {
    pub seeks: Vec<(TopicPartition, SeekTo)>,
}

/// The partitions assigned to an instance, and the generation that assigned them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssignmentState {
    pub generation_id: GenerationId,
    pub partitions: Vec<TopicPartition>,
}

/// Watch the instance's assignment: the receiver sees every change (a join that
/// completed, the group left). While watched, the instance does not expire idle.
#[derive(Message)]
#[rtype(result = "tokio::sync::watch::Receiver<AssignmentState>")]
pub struct WatchAssignment;

/// Close the instance: leave the group (committing first with auto commit).
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseInstance;
