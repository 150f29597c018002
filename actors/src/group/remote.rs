//! A group coordinator on another broker, as an in-broker member (a REST consumer
//! instance, a WebSocket group subscription) reaches it: Kafka's group APIs over the
//! inter-broker listener, as any Kafka consumer would. [`CoordinatorRef`] is either
//! kind, with one `send` for the coordinator's messages, so the consumer's code does
//! not tell them apart.
//!
//! The remote coordinator sees a Kafka member whose client id names this broker.
//! Joining, this member sends its topics as a consumer-protocol subscription; as
//! leader it syncs with no assignment, which the coordinator answers by assigning
//! with the negotiated assignor, as for an in-broker leader. It hears of rebalances
//! from its heartbeats (REBALANCE_IN_PROGRESS), as Kafka's clients do, rather than
//! by the notice a local coordinator pushes.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix::prelude::*;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{
    DeleteGroupsRequest, DescribeGroupsRequest, GroupId, HeartbeatRequest, JoinGroupRequest,
    LeaveGroupRequest, ListGroupsRequest, OffsetCommitRequest, OffsetFetchRequest,
    SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::consumer_protocol::{decode_assignment, decode_subscription, encode_subscription};
use super::coordinator::GroupCoordinator;
use super::membership::{GroupError, GroupState, JoinResult};
use super::messages::{
    CommitOffsets, Committer, FetchOffsets, GroupDescription, GroupResult, Heartbeat, JoinGroup,
    LeaveGroup, MemberDescription, SyncGroup,
};
use super::offsets_topic::{partition_for, CommittedOffset, MemberOrigin, OFFSETS_TOPIC};
use super::TopicPartition;
use crate::error_kind::ErrorKind;
use crate::ids::{GenerationId, LeaderEpoch, NodeId};
use crate::metadata::MetadataImage;
use crate::requests::remote::Peers;
use crate::requests::Routes;

const CONSUMER: &str = "consumer";
const JOIN_VERSION: i16 = 5;
const SYNC_VERSION: i16 = 3;
const HEARTBEAT_VERSION: i16 = 3;
const LEAVE_VERSION: i16 = 3;
const COMMIT_VERSION: i16 = 7;
const FETCH_VERSION: i16 = 7;
const DESCRIBE_VERSION: i16 = 5;
const LIST_VERSION: i16 = 4;
const DELETE_VERSION: i16 = 2;

/// The coordinator of `group_id` on the broker leading its offsets partition, when
/// that is another broker (`None`: this one, or no leader).
pub fn remote_coordinator(routes: &Routes, group_id: &str) -> Option<RemoteCoordinator> {
    let route = routes.topic(OFFSETS_TOPIC).ok()?;
    let p = partition_for(group_id, route.partition_count() as i32);
    let leader = *route.leaders.get(p as usize)?;
    let image = routes.metadata.image();
    (leader != image.node_id && leader.get() >= 0).then(|| RemoteCoordinator {
        node: leader,
        group_id: group_id.to_string(),
        image: image.clone(),
        peers: routes.peers.clone(),
    })
}

/// The ids of the groups broker `node` coordinates (Kafka's ListGroups, per broker).
pub async fn list_remote(routes: &Routes, node: NodeId) -> GroupResult<Vec<String>> {
    let image = routes.metadata.image();
    let answer = routes
        .peers
        .call(
            &image,
            node,
            &ListGroupsRequest::default(),
            LIST_VERSION,
            None,
        )
        .await
        .map_err(|e| GroupError::CoordinatorNotAvailable(e.to_string()))?;
    check(answer.error_code, "listing groups", node)?;
    Ok(answer
        .groups
        .iter()
        .map(|g| g.group_id.0.to_string())
        .collect())
}

/// Kafka's name of a group state, back to the engine's.
fn state_of(name: &str) -> GroupState {
    match name {
        "Empty" => GroupState::Empty,
        "PreparingRebalance" => GroupState::PreparingRebalance,
        "CompletingRebalance" => GroupState::CompletingRebalance,
        "Stable" => GroupState::Stable,
        _ => GroupState::Dead,
    }
}

/// A group's coordinator: this broker's actor, or another broker's.
#[derive(Clone)]
pub enum CoordinatorRef {
    Local(Addr<GroupCoordinator>),
    Remote(RemoteCoordinator),
}

/// The coordinator of `group_id` on broker `node`.
#[derive(Clone)]
pub struct RemoteCoordinator {
    pub node: NodeId,
    pub group_id: String,
    image: Arc<MetadataImage>,
    peers: Arc<Peers>,
}

/// A coordinator's answer, to await.
pub type Answer<T> = Pin<Box<dyn Future<Output = T>>>;

/// A coordinator message that can also travel to a remote coordinator.
pub trait CoordinatorCall: Message + Send + Sized + 'static
where
    GroupCoordinator: Handler<Self>,
    Self::Result: Send,
{
    fn call_remote(self, to: RemoteCoordinator) -> Answer<Self::Result>;
}

impl CoordinatorRef {
    pub fn remote(
        node: NodeId,
        group_id: &str,
        image: Arc<MetadataImage>,
        peers: Arc<Peers>,
    ) -> Self {
        CoordinatorRef::Remote(RemoteCoordinator {
            node,
            group_id: group_id.to_string(),
            image,
            peers,
        })
    }

    /// Sends `msg` to the coordinator, wherever it is.
    pub fn send<M>(&self, msg: M) -> Answer<Result<M::Result, MailboxError>>
    where
        M: CoordinatorCall,
        GroupCoordinator: Handler<M>,
        M::Result: Send,
    {
        match self {
            CoordinatorRef::Local(addr) => Box::pin(addr.send(msg)),
            CoordinatorRef::Remote(remote) => {
                let remote = remote.clone();
                Box::pin(async move { Ok(msg.call_remote(remote).await) })
            }
        }
    }
}

impl RemoteCoordinator {
    /// The coordinator of `group_id` on broker `node`.
    pub fn at(routes: &Routes, node: NodeId, group_id: &str) -> RemoteCoordinator {
        RemoteCoordinator {
            node,
            group_id: group_id.to_string(),
            image: routes.metadata.image(),
            peers: routes.peers.clone(),
        }
    }

    async fn call<R: kafka_protocol::protocol::Request>(
        &self,
        request: &R,
        version: i16,
    ) -> GroupResult<R::Response> {
        self.call_within(request, version, None).await
    }

    async fn call_within<R: kafka_protocol::protocol::Request>(
        &self,
        request: &R,
        version: i16,
        timeout: Option<std::time::Duration>,
    ) -> GroupResult<R::Response> {
        self.peers
            .call(&self.image, self.node, request, version, timeout)
            .await
            .map_err(|e| GroupError::CoordinatorNotAvailable(e.to_string()))
    }

    fn group(&self) -> GroupId {
        GroupId(StrBytes::from_string(self.group_id.clone()))
    }

    /// The group as its coordinator describes it (DescribeGroups, and OffsetFetch
    /// for its committed offsets). Kafka's answer has no generation or leader:
    /// generation -1, no leader.
    pub async fn describe(&self) -> GroupResult<GroupDescription> {
        let request = DescribeGroupsRequest::default().with_groups(vec![self.group()]);
        let answer = self.call(&request, DESCRIBE_VERSION).await?;
        let g = answer
            .groups
            .first()
            .ok_or_else(|| GroupError::CoordinatorNotAvailable("an empty answer".into()))?;
        check(g.error_code, "describing", self.node)?;
        let state = state_of(g.group_state.as_str());
        if state == GroupState::Dead {
            return Err(GroupError::GroupIdNotFound(self.group_id.clone()));
        }
        let members = g
            .members
            .iter()
            .map(|m| {
                let topics = decode_subscription(&m.member_metadata)
                    .map(|s| s.topics)
                    .unwrap_or_default();
                MemberDescription {
                    member_id: m.member_id.to_string(),
                    client_id: m.client_id.to_string(),
                    client_host: m.client_host.to_string(),
                    origin: MemberOrigin::Remote,
                    topics,
                    assignment: decode_assignment(&m.member_assignment).unwrap_or_default(),
                }
            })
            .collect();
        let offsets = FetchOffsets { partitions: None }
            .call_remote(self.clone())
            .await?;
        Ok(GroupDescription {
            group_id: self.group_id.clone(),
            state,
            generation_id: GenerationId::new(-1),
            protocol_type: g.protocol_type.to_string(),
            protocol: Some(g.protocol_data.to_string()).filter(|p| !p.is_empty()),
            leader_id: None,
            members,
            offsets,
        })
    }

    /// Deletes the group (DeleteGroups): only an empty one.
    pub async fn delete(&self) -> GroupResult<()> {
        let request = DeleteGroupsRequest::default().with_groups_names(vec![self.group()]);
        let answer = self.call(&request, DELETE_VERSION).await?;
        for r in &answer.results {
            check(r.error_code, "deleting", self.node)?;
        }
        Ok(())
    }
}

/// The remote coordinator's error code as the engine's error.
fn check(code: i16, what: &str, node: NodeId) -> GroupResult<()> {
    if code == 0 {
        return Ok(());
    }
    let kind = ErrorKind::of_kafka_code(code);
    let message = format!(
        "{what}: broker {node} answered {}",
        ErrorKind::name_of_code(code)
    );
    Err(match kind {
        Some(ErrorKind::NotCoordinator) => GroupError::NotCoordinator(message),
        Some(ErrorKind::UnknownMemberId) => GroupError::UnknownMemberId(message),
        Some(ErrorKind::IllegalGeneration) => GroupError::IllegalGeneration {
            given: GenerationId::new(-1),
            current: GenerationId::new(-1),
        },
        Some(ErrorKind::RebalanceInProgress) => GroupError::RebalanceInProgress,
        Some(ErrorKind::InconsistentGroupProtocol) => GroupError::InconsistentGroupProtocol,
        Some(ErrorKind::InvalidGroupId) => GroupError::InvalidGroupId(message),
        Some(ErrorKind::GroupIdNotFound) => GroupError::GroupIdNotFound(message),
        Some(ErrorKind::NonEmptyGroup) => GroupError::NonEmptyGroup(0),
        Some(ErrorKind::UnknownTopic) | Some(ErrorKind::UnknownPartition) => {
            GroupError::UnknownTopic(message)
        }
        _ => GroupError::CoordinatorNotAvailable(message),
    })
}

fn name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_string()))
}

impl CoordinatorCall for JoinGroup {
    fn call_remote(self, to: RemoteCoordinator) -> Answer<GroupResult<JoinResult>> {
        Box::pin(async move {
            let r = self.request;
            let metadata = encode_subscription(&r.topics, &[]);
            let request = JoinGroupRequest::default()
                .with_group_id(to.group())
                .with_session_timeout_ms(r.session_timeout_ms.clamp(0, i32::MAX as i64) as i32)
                .with_rebalance_timeout_ms(r.rebalance_timeout_ms.clamp(0, i32::MAX as i64) as i32)
                .with_member_id(StrBytes::from_string(r.member_id.unwrap_or_default()))
                .with_protocol_type(StrBytes::from_static_str(CONSUMER))
                .with_protocols(
                    r.protocols
                        .iter()
                        .map(|p| {
                            JoinGroupRequestProtocol::default()
                                .with_name(StrBytes::from_string(p.clone()))
                                .with_metadata(metadata.clone())
                        })
                        .collect(),
                );
            // A join waits for the rebalance: up to its timeout, and a little more.
            let wait = std::time::Duration::from_millis(
                r.rebalance_timeout_ms.clamp(0, i32::MAX as i64) as u64 + 5_000,
            );
            let answer = to.call_within(&request, JOIN_VERSION, Some(wait)).await?;
            check(answer.error_code, "joining", to.node)?;
            Ok(JoinResult {
                generation_id: GenerationId::new(answer.generation_id),
                protocol: answer
                    .protocol_name
                    .map(|p| p.to_string())
                    .unwrap_or_default(),
                leader_id: answer.leader.to_string(),
                member_id: answer.member_id.to_string(),
                // This member syncs without assigning: the coordinator assigns.
                members: Vec::new(),
            })
        })
    }
}

impl CoordinatorCall for SyncGroup {
    fn call_remote(self, to: RemoteCoordinator) -> Answer<GroupResult<Vec<TopicPartition>>> {
        Box::pin(async move {
            let request = SyncGroupRequest::default()
                .with_group_id(to.group())
                .with_generation_id(self.generation_id.get())
                .with_member_id(StrBytes::from_string(self.member_id));
            let answer = to.call(&request, SYNC_VERSION).await?;
            check(answer.error_code, "syncing", to.node)?;
            decode_assignment(&answer.assignment)
                .map_err(|e| GroupError::CoordinatorNotAvailable(e.to_string()))
        })
    }
}

impl CoordinatorCall for Heartbeat {
    fn call_remote(self, to: RemoteCoordinator) -> Answer<GroupResult<()>> {
        Box::pin(async move {
            let request = HeartbeatRequest::default()
                .with_group_id(to.group())
                .with_generation_id(self.generation_id.get())
                .with_member_id(StrBytes::from_string(self.member_id));
            let answer = to.call(&request, HEARTBEAT_VERSION).await?;
            check(answer.error_code, "heartbeat", to.node)
        })
    }
}

impl CoordinatorCall for LeaveGroup {
    fn call_remote(self, to: RemoteCoordinator) -> Answer<GroupResult<()>> {
        Box::pin(async move {
            let request = LeaveGroupRequest::default()
                .with_group_id(to.group())
                .with_members(vec![
                    MemberIdentity::default().with_member_id(StrBytes::from_string(self.member_id))
                ]);
            let answer = to.call(&request, LEAVE_VERSION).await?;
            check(answer.error_code, "leaving", to.node)?;
            for m in &answer.members {
                check(m.error_code, "leaving", to.node)?;
            }
            Ok(())
        })
    }
}

impl CoordinatorCall for CommitOffsets {
    fn call_remote(self, to: RemoteCoordinator) -> Answer<GroupResult<()>> {
        Box::pin(async move {
            let (generation, member) = match self.committer {
                Committer::Member {
                    member_id,
                    generation_id,
                } => (generation_id.get(), member_id),
                Committer::Standalone => (-1, String::new()),
            };
            let mut topics: BTreeMap<String, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
            for o in self.offsets {
                topics.entry(o.partition.topic.clone()).or_default().push(
                    OffsetCommitRequestPartition::default()
                        .with_partition_index(o.partition.partition)
                        .with_committed_offset(o.offset)
                        .with_committed_leader_epoch(-1)
                        .with_committed_metadata(Some(StrBytes::from_string(o.metadata))),
                );
            }
            let request = OffsetCommitRequest::default()
                .with_group_id(to.group())
                .with_generation_id_or_member_epoch(generation)
                .with_member_id(StrBytes::from_string(member))
                .with_topics(
                    topics
                        .into_iter()
                        .map(|(t, partitions)| {
                            OffsetCommitRequestTopic::default()
                                .with_name(name(&t))
                                .with_partitions(partitions)
                        })
                        .collect(),
                );
            let answer = to.call(&request, COMMIT_VERSION).await?;
            for t in &answer.topics {
                for p in &t.partitions {
                    check(p.error_code, "committing", to.node)?;
                }
            }
            Ok(())
        })
    }
}

impl CoordinatorCall for FetchOffsets {
    fn call_remote(
        self,
        to: RemoteCoordinator,
    ) -> Answer<GroupResult<BTreeMap<TopicPartition, CommittedOffset>>> {
        Box::pin(async move {
            let topics = self.partitions.map(|wanted| {
                let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
                for tp in wanted {
                    by_topic.entry(tp.topic).or_default().push(tp.partition);
                }
                by_topic
                    .into_iter()
                    .map(|(t, partitions)| {
                        OffsetFetchRequestTopic::default()
                            .with_name(name(&t))
                            .with_partition_indexes(partitions)
                    })
                    .collect()
            });
            let request = OffsetFetchRequest::default()
                .with_group_id(to.group())
                .with_topics(topics);
            let answer = to.call(&request, FETCH_VERSION).await?;
            check(answer.error_code, "fetching offsets", to.node)?;
            let mut out = BTreeMap::new();
            for t in &answer.topics {
                for p in &t.partitions {
                    check(p.error_code, "fetching offsets", to.node)?;
                    if p.committed_offset < 0 {
                        continue;
                    }
                    out.insert(
                        TopicPartition::new(t.name.as_str(), p.partition_index),
                        CommittedOffset {
                            offset: p.committed_offset,
                            leader_epoch: LeaderEpoch::new(p.committed_leader_epoch),
                            metadata: p
                                .metadata
                                .as_ref()
                                .map(|m| m.to_string())
                                .unwrap_or_default(),
                            commit_timestamp_ms: -1,
                        },
                    );
                }
            }
            Ok(out)
        })
    }
}
