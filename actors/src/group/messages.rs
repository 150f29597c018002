//! The typed messages of the group layer: the classic group protocol and offsets,
//! answered by a [`super::GroupCoordinator`], and the group registry's own, answered
//! by the [`super::GroupManager`].

use std::collections::BTreeMap;

use actix::{Addr, MailboxError, Message, Recipient};

use super::coordinator::GroupCoordinator;
use super::membership::{GroupError, GroupState, JoinRequest, JoinResult};
use super::offsets_topic::{CommittedOffset, MemberOrigin};
use super::{Assignment, TopicPartition};
use crate::ids::GenerationId;

pub type GroupResult<T> = Result<T, GroupError>;

impl GroupError {
    /// A coordinator or partition that did not take or answer a message (stopped or
    /// restarting): the group's side of [`crate::BrokerError::mailbox`], and as
    /// retriable.
    pub fn mailbox(e: MailboxError) -> GroupError {
        GroupError::CoordinatorNotAvailable(format!("an actor did not answer ({e})"))
    }
}

/// Told to a member (that gave a recipient when it joined) the moment its group
/// starts a rebalance, so it rejoins at once instead of at its next heartbeat.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
#[rtype(result = "()")]
pub struct RebalanceNotice {
    pub group_id: String,
    pub member_id: String,
}

/// JoinGroup. Answered once the join phase completes (every member rejoined, or the
/// rebalance timeout passed).
#[derive(Message)]
#[rtype(result = "GroupResult<JoinResult>")]
pub struct JoinGroup {
    pub request: JoinRequest,
    pub notify: Option<Recipient<RebalanceNotice>>,
}

/// SyncGroup: the leader may hand in the assignment (`None`: the broker computes it
/// with the negotiated assignor). Answered with the member's partitions once known.
#[derive(Message)]
#[rtype(result = "GroupResult<Vec<TopicPartition>>")]
pub struct SyncGroup {
    pub member_id: String,
    pub generation_id: GenerationId,
    pub assignment: Option<Assignment>,
}

#[derive(Message)]
#[rtype(result = "GroupResult<()>")]
pub struct Heartbeat {
    pub member_id: String,
    pub generation_id: GenerationId,
}

#[derive(Message)]
#[rtype(result = "GroupResult<()>")]
pub struct LeaveGroup {
    pub member_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommit {
    pub partition: TopicPartition,
    pub offset: i64,
    pub metadata: String,
}

/// Who commits: a member of the current generation (its partitions only), or — as
/// Kafka's "simple" consumers with manual assignment and admin tools do — nobody,
/// which only an Empty group accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Committer {
    Member {
        member_id: String,
        generation_id: GenerationId,
    },
    Standalone,
}

/// OffsetCommit: durable (fsynced per the offsets topic's flush policy) before the
/// answer. All or nothing: one refused partition refuses the request.
#[derive(Message, Clone)]
#[rtype(result = "GroupResult<()>")]
pub struct CommitOffsets {
    pub committer: Committer,
    pub offsets: Vec<OffsetCommit>,
}

/// OffsetFetch: the committed offsets of `partitions`, or of every partition.
#[derive(Message)]
#[rtype(result = "GroupResult<BTreeMap<TopicPartition, CommittedOffset>>")]
pub struct FetchOffsets {
    pub partitions: Option<Vec<TopicPartition>>,
}

/// OffsetDelete: removes the group's committed offsets of `partitions` (tombstones),
/// as Kafka does: all of them from a group without members; otherwise only those of
/// topics no member subscribes to, each other partition refused on its own with
/// [`GroupError::GroupSubscribedToTopic`]. Answers each partition's outcome.
#[derive(Message)]
#[rtype(result = "GroupResult<Vec<(TopicPartition, GroupResult<()>)>>")]
pub struct DeleteOffsets {
    pub partitions: Vec<TopicPartition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    pub member_id: String,
    pub client_id: String,
    pub client_host: String,
    pub origin: MemberOrigin,
    pub topics: Vec<String>,
    pub assignment: Vec<TopicPartition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    pub group_id: String,
    pub state: GroupState,
    pub generation_id: GenerationId,
    pub protocol_type: String,
    /// The negotiated assignor.
    pub protocol: Option<String>,
    pub leader_id: Option<String>,
    pub members: Vec<MemberDescription>,
    pub offsets: BTreeMap<TopicPartition, CommittedOffset>,
}

#[derive(Message)]
#[rtype(result = "GroupDescription")]
pub struct DescribeGroup;

/// Deletes the group and its offsets (tombstones); only an Empty group.
#[derive(Message)]
#[rtype(result = "GroupResult<()>")]
pub struct RemoveGroup;

/// Fault injection for supervision tests: the coordinator stops as it does when its
/// memory may have run ahead of `__consumer_offsets`, and is restarted from disk.
#[cfg(any(test, feature = "test-support"))]
#[doc(hidden)]
#[derive(Message)]
#[rtype(result = "()")]
pub struct Crash;

// ---- the GroupManager's messages ----

/// The coordinator of `group_id`; with `create`, one is started for a new group.
#[derive(Message)]
#[rtype(result = "GroupResult<Addr<GroupCoordinator>>")]
pub struct FindCoordinator {
    pub group_id: String,
    pub create: bool,
}

/// Every known group, described.
#[derive(Message)]
#[rtype(result = "Vec<GroupDescription>")]
pub struct ListGroups;

/// Deletes an Empty group and forgets its coordinator.
#[derive(Message)]
#[rtype(result = "GroupResult<()>")]
pub struct DeleteGroup {
    pub group_id: String,
}

/// Where to reset a group's offsets to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResetSpec {
    Earliest,
    Latest,
    /// The first offset at or after this time (the log end when there is none).
    Timestamp(i64),
    /// This offset, clamped into the partition's [log start, log end].
    Offset(i64),
}

/// Resets the group's offsets for `topic` (`partitions`, or all of them); only an
/// Empty group. Answers the new offsets.
#[derive(Message)]
#[rtype(result = "GroupResult<Vec<(TopicPartition, i64)>>")]
pub struct ResetOffsets {
    pub group_id: String,
    pub topic: String,
    pub partitions: Option<Vec<i32>>,
    pub spec: ResetSpec,
}

/// One partition's lag: committed offset against the log end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    pub partition: TopicPartition,
    pub committed_offset: i64,
    pub log_end_offset: i64,
    pub lag_records: i64,
    /// The member the partition is assigned to, if any.
    pub member_id: Option<String>,
    pub client_id: Option<String>,
}

/// The lag of every partition the group has committed offsets for.
#[derive(Message)]
#[rtype(result = "GroupResult<Vec<PartitionLag>>")]
pub struct GroupLag {
    pub group_id: String,
}
