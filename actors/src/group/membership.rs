//! A consumer group's membership and rebalance state machine, Kafka's classic group
//! protocol: join (member ids, generations, protocol negotiation), sync (the leader's
//! assignment, or the broker's own with the negotiated assignor), heartbeat, leave,
//! and session expiry, through the states Empty → PreparingRebalance →
//! CompletingRebalance → Stable (and Dead). It is plain data driven by explicit
//! times, so the GroupCoordinator actor that will own it (and replay it from
//! `__consumer_offsets`) stays thin, and every transition is testable here.

use std::collections::BTreeMap;

use super::offsets_topic::{GroupMetadata, MemberMetadata, MemberOrigin};
use super::{Assignment, Assignor, Subscription, TopicPartition};
use crate::error_kind::ErrorKind;
use crate::ids::GenerationId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

/// Why a group request is refused; [`GroupError::kind`] gives its row of the engine's
/// error table (Kafka's group error codes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    #[error("unknown member '{0}'")]
    UnknownMemberId(String),
    #[error("generation {given} is not the group's current generation {current}")]
    IllegalGeneration {
        given: GenerationId,
        current: GenerationId,
    },
    #[error("the group is rebalancing: rejoin it")]
    RebalanceInProgress,
    #[error("no assignor that every member supports")]
    InconsistentGroupProtocol,
    #[error("the group is full at {0} members")]
    GroupMaxSizeReached(usize),
    #[error("the group has {0} active member(s)")]
    NonEmptyGroup(usize),
    #[error("unknown group '{0}'")]
    GroupIdNotFound(String),
    #[error("the group's members subscribe to topic '{0}'")]
    GroupSubscribedToTopic(String),
    #[error("invalid group id: {0}")]
    InvalidGroupId(String),
    #[error("session timeout {given} ms is not between {min} and {max} ms")]
    InvalidSessionTimeout { given: i64, min: i64, max: i64 },
    #[error("partition {topic}-{partition} is not assigned to member {member_id}")]
    PartitionNotAssigned {
        member_id: String,
        topic: String,
        partition: i32,
    },
    #[error("invalid commit offset: {0}")]
    InvalidCommitOffset(String),
    #[error("offset metadata of {size} bytes exceeds the limit of {limit}")]
    OffsetMetadataTooLarge { size: usize, limit: usize },
    #[error("unknown topic '{0}'")]
    UnknownTopic(String),
    #[error("topic '{topic}' has no partition {partition}")]
    UnknownPartition { topic: String, partition: i32 },
    #[error("group coordinator not available: {0}")]
    CoordinatorNotAvailable(String),
    #[error("not the group's coordinator: {0}")]
    NotCoordinator(String),
    /// The authorizer refused the operation: nothing was done.
    #[error(transparent)]
    Denied(#[from] crate::auth::acl::Denied),
}

impl GroupError {
    /// Which row of the engine's error table this is.
    pub fn kind(&self) -> ErrorKind {
        use GroupError as E;
        match self {
            E::UnknownMemberId(_) => ErrorKind::UnknownMemberId,
            E::IllegalGeneration { .. } => ErrorKind::IllegalGeneration,
            E::RebalanceInProgress => ErrorKind::RebalanceInProgress,
            E::InconsistentGroupProtocol => ErrorKind::InconsistentGroupProtocol,
            E::GroupMaxSizeReached(_) => ErrorKind::GroupMaxSizeReached,
            E::NonEmptyGroup(_) => ErrorKind::NonEmptyGroup,
            E::GroupIdNotFound(_) => ErrorKind::GroupIdNotFound,
            E::GroupSubscribedToTopic(_) => ErrorKind::GroupSubscribedToTopic,
            E::InvalidGroupId(_) => ErrorKind::InvalidGroupId,
            E::InvalidSessionTimeout { .. } => ErrorKind::InvalidSessionTimeout,
            E::PartitionNotAssigned { .. } => ErrorKind::IllegalState,
            E::InvalidCommitOffset(_) => ErrorKind::InvalidRequest,
            E::OffsetMetadataTooLarge { .. } => ErrorKind::OffsetMetadataTooLarge,
            E::UnknownTopic(_) => ErrorKind::UnknownTopic,
            E::UnknownPartition { .. } => ErrorKind::UnknownPartition,
            E::CoordinatorNotAvailable(_) => ErrorKind::CoordinatorNotAvailable,
            E::NotCoordinator(_) => ErrorKind::NotCoordinator,
            E::Denied(denied) => denied.kind(),
        }
    }
}

/// A JoinGroup request's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinRequest {
    /// `None` (or empty) for a new member.
    pub member_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub origin: MemberOrigin,
    pub session_timeout_ms: i64,
    pub rebalance_timeout_ms: i64,
    /// Assignor names in preference order.
    pub protocols: Vec<String>,
    pub topics: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub member_id: String,
    pub client_id: String,
    pub client_host: String,
    pub origin: MemberOrigin,
    pub session_timeout_ms: i64,
    pub rebalance_timeout_ms: i64,
    /// Assignor names in preference order, and the topics subscribed.
    pub protocols: Vec<String>,
    pub topics: Vec<String>,
    pub last_heartbeat_ms: i64,
    /// Has (re)joined the rebalance in progress.
    pub joined: bool,
    pub assignment: Vec<TopicPartition>,
}

/// What a completed join tells a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinResult {
    pub generation_id: GenerationId,
    pub protocol: String,
    pub leader_id: String,
    pub member_id: String,
    /// The members and their subscriptions: only for the leader, which may assign.
    pub members: Vec<Subscription>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub group_id: String,
    pub state: GroupState,
    pub generation_id: GenerationId,
    pub protocol: Option<String>,
    pub leader_id: Option<String>,
    pub members: BTreeMap<String, Member>,
    rebalance_deadline_ms: Option<i64>,
    max_members: usize,
}

impl Group {
    pub fn new(group_id: &str, max_members: usize) -> Self {
        Group {
            group_id: group_id.to_string(),
            state: GroupState::Empty,
            generation_id: GenerationId::INITIAL,
            protocol: None,
            leader_id: None,
            members: BTreeMap::new(),
            rebalance_deadline_ms: None,
            max_members,
        }
    }

    /// A member (re)joins; a new one (no id) is given one. Starts a rebalance if
    /// none is running; returns the member id.
    pub fn join(&mut self, req: JoinRequest, now_ms: i64) -> Result<String, GroupError> {
        let id = match req.member_id.as_deref().filter(|id| !id.is_empty()) {
            Some(id) if self.members.contains_key(id) => id.to_string(),
            Some(id) => return Err(GroupError::UnknownMemberId(id.to_string())),
            None => {
                if self.members.len() >= self.max_members {
                    return Err(GroupError::GroupMaxSizeReached(self.members.len()));
                }
                // Kafka's form: the client id and a UUID.
                format!("{}-{}", req.client_id, uuid::Uuid::new_v4())
            }
        };
        let compatible = self
            .members
            .values()
            .filter(|m| m.member_id != id)
            .all(|m| m.protocols.iter().any(|p| req.protocols.contains(p)));
        if req.protocols.is_empty() || !compatible {
            return Err(GroupError::InconsistentGroupProtocol);
        }
        let assignment = self
            .members
            .get(&id)
            .map(|m| m.assignment.clone())
            .unwrap_or_default();
        self.members.insert(
            id.clone(),
            Member {
                member_id: id.clone(),
                client_id: req.client_id,
                client_host: req.client_host,
                origin: req.origin,
                session_timeout_ms: req.session_timeout_ms,
                rebalance_timeout_ms: req.rebalance_timeout_ms,
                protocols: req.protocols,
                topics: req.topics,
                last_heartbeat_ms: now_ms,
                joined: true,
                assignment,
            },
        );
        self.prepare_rebalance(now_ms);
        Ok(id)
    }

    /// Starts a rebalance of a group with members (the subscribed topics changed):
    /// every member must rejoin.
    pub fn request_rebalance(&mut self, now_ms: i64) {
        if self.members.is_empty() || self.state == GroupState::PreparingRebalance {
            return;
        }
        for m in self.members.values_mut() {
            m.joined = false;
        }
        self.prepare_rebalance(now_ms);
    }

    /// When the running rebalance gives up on members that have not rejoined.
    pub fn rebalance_deadline_ms(&self) -> Option<i64> {
        self.rebalance_deadline_ms
    }

    /// The next time [`Group::expire`] or [`Group::try_complete_join`] may change
    /// something, if any.
    pub fn next_deadline_ms(&self) -> Option<i64> {
        let sessions = self
            .members
            .values()
            .filter(|m| !self.awaiting_join(m))
            .map(|m| m.last_heartbeat_ms + m.session_timeout_ms + 1);
        sessions.chain(self.rebalance_deadline_ms).min()
    }

    /// A member parked in a join is not heartbeating; the rebalance timeout, not its
    /// session, bounds its wait (as in Kafka).
    fn awaiting_join(&self, m: &Member) -> bool {
        self.state == GroupState::PreparingRebalance && m.joined
    }

    /// The durable form of the group, written to `__consumer_offsets`.
    pub fn to_metadata(&self, now_ms: i64) -> GroupMetadata {
        GroupMetadata {
            protocol_type: "consumer".to_string(),
            generation_id: self.generation_id,
            protocol: self.protocol.clone(),
            leader_id: self.leader_id.clone(),
            state_timestamp_ms: now_ms,
            members: self
                .members
                .values()
                .map(|m| MemberMetadata {
                    member_id: m.member_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    origin: m.origin,
                    rebalance_timeout_ms: m.rebalance_timeout_ms.clamp(0, i32::MAX as i64) as i32,
                    session_timeout_ms: m.session_timeout_ms.clamp(0, i32::MAX as i64) as i32,
                    topics: m.topics.clone(),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    /// Rebuilds a group from its metadata after a restart. Remote members get their
    /// session timeout (from now) to heartbeat again; members that lived in this
    /// broker died with it, and a group left without members is Empty — its
    /// generation is kept, so commits from before the restart stay stale.
    pub fn restore(group_id: &str, max_members: usize, meta: &GroupMetadata, now_ms: i64) -> Self {
        let mut group = Group::new(group_id, max_members);
        group.generation_id = meta.generation_id;
        for m in meta
            .members
            .iter()
            .filter(|m| m.origin == MemberOrigin::Remote)
        {
            group.members.insert(
                m.member_id.clone(),
                Member {
                    member_id: m.member_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    origin: m.origin,
                    session_timeout_ms: m.session_timeout_ms as i64,
                    rebalance_timeout_ms: m.rebalance_timeout_ms as i64,
                    protocols: meta.protocol.iter().cloned().collect(),
                    topics: m.topics.clone(),
                    last_heartbeat_ms: now_ms,
                    joined: false,
                    assignment: m.assignment.clone(),
                },
            );
        }
        if !group.members.is_empty() {
            group.state = GroupState::Stable;
            group.protocol = meta.protocol.clone();
            group.leader_id = meta
                .leader_id
                .clone()
                .filter(|l| group.members.contains_key(l));
            if group.leader_id.is_none() {
                group.request_rebalance(now_ms);
            }
        }
        group
    }

    fn prepare_rebalance(&mut self, now_ms: i64) {
        if self.state != GroupState::PreparingRebalance {
            self.state = GroupState::PreparingRebalance;
            let timeout = self
                .members
                .values()
                .map(|m| m.rebalance_timeout_ms)
                .max()
                .unwrap_or(0);
            self.rebalance_deadline_ms = Some(now_ms + timeout);
        }
    }

    /// Completes the join phase once every member has rejoined or the rebalance
    /// timeout has passed (members that did not rejoin are dropped). Returns whether
    /// a new generation started.
    pub fn try_complete_join(&mut self, now_ms: i64) -> bool {
        if self.state != GroupState::PreparingRebalance {
            return false;
        }
        let all_joined = self.members.values().all(|m| m.joined);
        if !all_joined && self.rebalance_deadline_ms.is_some_and(|d| now_ms < d) {
            return false;
        }
        self.members.retain(|_, m| m.joined);
        self.rebalance_deadline_ms = None;
        if self.members.is_empty() {
            self.state = GroupState::Empty;
            self.leader_id = None;
            self.protocol = None;
            return false;
        }
        self.generation_id = self.generation_id.next();
        if !self
            .leader_id
            .as_ref()
            .is_some_and(|l| self.members.contains_key(l))
        {
            self.leader_id = self.members.keys().next().cloned();
        }
        let leader = self.leader_id.as_ref().and_then(|l| self.members.get(l));
        self.protocol = leader.and_then(|l| {
            l.protocols
                .iter()
                .find(|p| self.members.values().all(|m| m.protocols.contains(p)))
                .cloned()
        });
        for m in self.members.values_mut() {
            m.joined = false;
            m.last_heartbeat_ms = now_ms;
        }
        self.state = GroupState::CompletingRebalance;
        true
    }

    pub fn join_result(&self, member_id: &str) -> Option<JoinResult> {
        if self.state != GroupState::CompletingRebalance && self.state != GroupState::Stable {
            return None;
        }
        let leader_id = self.leader_id.clone()?;
        let members = if leader_id == member_id {
            self.subscriptions()
        } else {
            Vec::new()
        };
        Some(JoinResult {
            generation_id: self.generation_id,
            protocol: self.protocol.clone().unwrap_or_default(),
            leader_id,
            member_id: member_id.to_string(),
            members,
        })
    }

    fn subscriptions(&self) -> Vec<Subscription> {
        self.members
            .values()
            .map(|m| Subscription {
                member_id: m.member_id.clone(),
                topics: m.topics.clone(),
                owned: m.assignment.clone(),
            })
            .collect()
    }

    fn check_member(&self, member_id: &str, generation_id: GenerationId) -> Result<(), GroupError> {
        if !self.members.contains_key(member_id) {
            return Err(GroupError::UnknownMemberId(member_id.to_string()));
        }
        if generation_id != self.generation_id {
            return Err(GroupError::IllegalGeneration {
                given: generation_id,
                current: self.generation_id,
            });
        }
        Ok(())
    }

    /// SyncGroup. The leader may hand in the assignment; if it hands in none, the
    /// broker computes it with the negotiated assignor. Returns the member's
    /// partitions, or `None` while the assignment is not known yet.
    pub fn sync(
        &mut self,
        member_id: &str,
        generation_id: GenerationId,
        leader_assignment: Option<Assignment>,
        partitions: &BTreeMap<String, i32>,
    ) -> Result<Option<Vec<TopicPartition>>, GroupError> {
        self.check_member(member_id, generation_id)?;
        match self.state {
            GroupState::PreparingRebalance => return Err(GroupError::RebalanceInProgress),
            GroupState::CompletingRebalance if self.leader_id.as_deref() == Some(member_id) => {
                let assignment = leader_assignment.unwrap_or_else(|| {
                    let assignor = self
                        .protocol
                        .as_deref()
                        .and_then(Assignor::from_name)
                        .unwrap_or(Assignor::Range);
                    assignor.assign(partitions, &self.subscriptions())
                });
                for m in self.members.values_mut() {
                    m.assignment = assignment.get(&m.member_id).cloned().unwrap_or_default();
                }
                self.state = GroupState::Stable;
            }
            _ => {}
        }
        if self.state != GroupState::Stable {
            return Ok(None);
        }
        Ok(self.members.get(member_id).map(|m| m.assignment.clone()))
    }

    pub fn heartbeat(
        &mut self,
        member_id: &str,
        generation_id: GenerationId,
        now_ms: i64,
    ) -> Result<(), GroupError> {
        self.check_member(member_id, generation_id)?;
        if let Some(m) = self.members.get_mut(member_id) {
            m.last_heartbeat_ms = now_ms;
        }
        if self.state == GroupState::PreparingRebalance {
            return Err(GroupError::RebalanceInProgress);
        }
        Ok(())
    }

    pub fn leave(&mut self, member_id: &str, now_ms: i64) -> Result<(), GroupError> {
        if self.members.remove(member_id).is_none() {
            return Err(GroupError::UnknownMemberId(member_id.to_string()));
        }
        self.after_departure(now_ms);
        Ok(())
    }

    /// Drops members whose session timed out; returns their ids.
    pub fn expire(&mut self, now_ms: i64) -> Vec<String> {
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                !self.awaiting_join(m) && now_ms - m.last_heartbeat_ms > m.session_timeout_ms
            })
            .map(|m| m.member_id.clone())
            .collect();
        for id in &expired {
            self.members.remove(id);
        }
        if !expired.is_empty() {
            self.after_departure(now_ms);
        }
        expired
    }

    fn after_departure(&mut self, now_ms: i64) {
        if self.members.is_empty() {
            self.state = GroupState::Empty;
            self.leader_id = None;
            self.rebalance_deadline_ms = None;
            return;
        }
        // The caller completes the join phase (try_complete_join) if everyone left
        // has already rejoined, and answers the joins waiting on it.
        self.prepare_rebalance(now_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(id: Option<&str>, session: i64, rebalance: i64, protocols: &[&str]) -> JoinRequest {
        JoinRequest {
            member_id: id.map(str::to_string),
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            origin: MemberOrigin::Remote,
            session_timeout_ms: session,
            rebalance_timeout_ms: rebalance,
            protocols: protocols.iter().map(|p| p.to_string()).collect(),
            topics: vec!["t".into()],
        }
    }

    fn join(g: &mut Group, id: Option<&str>, now: i64) -> String {
        g.join(request(id, 10_000, 30_000, &["sticky", "range"]), now)
            .unwrap()
    }

    /// Every member rejoins and syncs; returns each member's partitions.
    fn rebalance(
        g: &mut Group,
        partitions: &BTreeMap<String, i32>,
        now: i64,
    ) -> BTreeMap<String, Vec<TopicPartition>> {
        let ids: Vec<String> = g.members.keys().cloned().collect();
        if g.state == GroupState::PreparingRebalance {
            for id in &ids {
                join(g, Some(id), now);
            }
            assert!(g.try_complete_join(now));
        }
        let leader = g.leader_id.clone().unwrap();
        let generation = g.generation_id;
        assert!(g
            .sync(&leader, generation, None, partitions)
            .unwrap()
            .is_some());
        ids.iter()
            .map(|id| {
                (
                    id.clone(),
                    g.sync(id, generation, None, partitions).unwrap().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn three_members_split_six_partitions_then_two_cover_them() {
        let partitions = BTreeMap::from([("t".to_string(), 6)]);
        let mut g = Group::new("g", 100);
        let ids: Vec<String> = (0..3).map(|_| join(&mut g, None, 0)).collect();
        assert_eq!(g.state, GroupState::PreparingRebalance);
        assert!(g.try_complete_join(0));
        assert_eq!(
            (g.state, g.generation_id, g.protocol.as_deref()),
            (
                GroupState::CompletingRebalance,
                GenerationId::new(1),
                Some("sticky")
            )
        );
        let first = rebalance(&mut g, &partitions, 0);
        assert!(first.values().all(|p| p.len() == 2));
        assert_eq!(g.state, GroupState::Stable);
        // One leaves: a rebalance, and the other two cover all six, keeping theirs.
        g.leave(&ids[1], 10).unwrap();
        let second = rebalance(&mut g, &partitions, 10);
        assert_eq!(g.generation_id, GenerationId::new(2));
        assert!(second.values().all(|p| p.len() == 3));
        for id in [&ids[0], &ids[2]] {
            assert!(first[id].iter().all(|tp| second[id].contains(tp)), "sticky");
        }
    }

    #[test]
    fn a_silent_member_expires_after_its_session_timeout() {
        let partitions = BTreeMap::from([("t".to_string(), 4)]);
        let mut g = Group::new("g", 100);
        let a = join(&mut g, None, 0);
        let b = join(&mut g, None, 0);
        g.try_complete_join(0);
        rebalance(&mut g, &partitions, 0);
        let generation = g.generation_id;
        g.heartbeat(&a, generation, 9_000).unwrap();
        assert!(
            g.expire(10_000).is_empty(),
            "exactly the session timeout is not expiry"
        );
        assert_eq!(g.expire(10_001), vec![b.clone()]);
        let after = rebalance(&mut g, &partitions, 10_001);
        assert_eq!(after[&a].len(), 4);
        assert_eq!(
            g.heartbeat(&b, g.generation_id, 10_002),
            Err(GroupError::UnknownMemberId(b))
        );
    }

    #[test]
    fn stale_generations_and_strangers_are_refused() {
        let partitions = BTreeMap::from([("t".to_string(), 2)]);
        let mut g = Group::new("g", 2);
        let a = join(&mut g, None, 0);
        g.try_complete_join(0);
        rebalance(&mut g, &partitions, 0);
        assert!(matches!(
            g.heartbeat(&a, GenerationId::INITIAL, 1),
            Err(GroupError::IllegalGeneration { .. })
        ));
        assert!(matches!(
            g.sync("nobody", GenerationId::new(1), None, &partitions),
            Err(GroupError::UnknownMemberId(_))
        ));
        // A join while stable starts a rebalance: heartbeats say so.
        let b = join(&mut g, None, 5);
        assert_eq!(
            g.heartbeat(&a, GenerationId::new(1), 6),
            Err(GroupError::RebalanceInProgress)
        );
        // a does not rejoin in time: dropped at the rebalance deadline.
        assert!(!g.try_complete_join(6));
        assert!(g.try_complete_join(5 + 30_000));
        assert_eq!(g.members.keys().cloned().collect::<Vec<_>>(), vec![b]);
        assert!(g.join(request(None, 1, 1, &["range"]), 0).is_ok());
        assert!(matches!(
            g.join(request(None, 1, 1, &["range"]), 0),
            Err(GroupError::GroupMaxSizeReached(2))
        ));
        assert_eq!(
            Group::new("h", 5).join(request(None, 1, 1, &[]), 0),
            Err(GroupError::InconsistentGroupProtocol)
        );
    }

    #[test]
    fn a_restart_keeps_the_generation_and_only_remote_members() {
        let partitions = BTreeMap::from([("t".to_string(), 2)]);
        let mut g = Group::new("g", 10);
        let a = join(&mut g, None, 0);
        let mut in_broker = request(None, 10_000, 30_000, &["range"]);
        in_broker.origin = MemberOrigin::InBroker;
        let b = g.join(in_broker.clone(), 0).unwrap();
        g.try_complete_join(0);
        rebalance(&mut g, &partitions, 0);
        let meta = g.to_metadata(1);
        let restored = Group::restore("g", 10, &meta, 100);
        assert_eq!(restored.generation_id, g.generation_id);
        // Stable, or rebalancing if the leader was the member that is gone.
        assert_ne!(restored.state, GroupState::Empty);
        assert!(restored.members.contains_key(&a) && !restored.members.contains_key(&b));
        assert_eq!(restored.members[&a].assignment, g.members[&a].assignment);
        // Only in-broker members: Empty, generation kept.
        g.leave(&a, 2).unwrap();
        in_broker.member_id = Some(b.clone());
        g.join(in_broker, 2).unwrap();
        assert!(g.try_complete_join(2));
        assert!(g
            .sync(&b, g.generation_id, None, &partitions)
            .unwrap()
            .is_some());
        let restored = Group::restore("g", 10, &g.to_metadata(3), 100);
        assert_eq!(
            (restored.state, restored.generation_id),
            (GroupState::Empty, g.generation_id)
        );
    }

    #[test]
    fn members_parked_in_a_join_wait_for_the_rebalance_timeout_not_their_session() {
        let mut g = Group::new("g", 10);
        let a = join(&mut g, None, 0);
        g.try_complete_join(0);
        rebalance(&mut g, &BTreeMap::from([("t".to_string(), 2)]), 0);
        g.request_rebalance(1_000);
        assert_eq!(g.state, GroupState::PreparingRebalance);
        join(&mut g, Some(&a), 1_000);
        // a is the only member and has rejoined: the join completes at once.
        assert!(g.try_complete_join(1_000));
        let b = join(&mut g, None, 2_000);
        // a heartbeats (and is told to rejoin) but does not rejoin; b, parked in its
        // join, waits past its own session timeout and is kept.
        for t in [10_000, 20_000] {
            let generation = g.generation_id;
            assert_eq!(
                g.heartbeat(&a, generation, t),
                Err(GroupError::RebalanceInProgress)
            );
        }
        assert!(g.expire(2_000 + 20_000).is_empty());
        // a's session (from its last heartbeat), not b's: b is parked.
        assert_eq!(g.next_deadline_ms(), Some(20_000 + 10_000 + 1));
        assert!(g.try_complete_join(2_000 + 30_000));
        assert_eq!(g.members.keys().cloned().collect::<Vec<_>>(), vec![b]);
    }
}
