//! A consumer group's membership and rebalance state machine, Kafka's classic group
//! protocol: join (member ids, generations, protocol negotiation), sync (the leader's
//! assignment, or the broker's own with the negotiated assignor), heartbeat, leave,
//! and session expiry, through the states Empty → PreparingRebalance →
//! CompletingRebalance → Stable (and Dead). It is plain data driven by explicit
//! times, so the GroupCoordinator actor that will own it (and replay it from
//! `__consumer_offsets`) stays thin, and every transition is testable here.

use std::collections::BTreeMap;

use super::{Assignment, Assignor, Subscription, TopicPartition};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

/// Kafka's errors for group requests.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    #[error("UNKNOWN_MEMBER_ID: {0} is not a member of the group")]
    UnknownMemberId(String),
    #[error("ILLEGAL_GENERATION: generation {given} is not the group's {current}")]
    IllegalGeneration { given: i32, current: i32 },
    #[error("REBALANCE_IN_PROGRESS: rejoin the group")]
    RebalanceInProgress,
    #[error("INCONSISTENT_GROUP_PROTOCOL: no assignor that every member supports")]
    InconsistentGroupProtocol,
    #[error("GROUP_MAX_SIZE_REACHED: the group has {0} members")]
    GroupMaxSizeReached(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub member_id: String,
    pub client_id: String,
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
    pub generation_id: i32,
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
    pub generation_id: i32,
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
            generation_id: 0,
            protocol: None,
            leader_id: None,
            members: BTreeMap::new(),
            rebalance_deadline_ms: None,
            max_members,
        }
    }

    /// A member (re)joins; a new one (no id) is given one. Starts a rebalance if
    /// none is running; returns the member id.
    #[allow(clippy::too_many_arguments)]
    pub fn join(
        &mut self,
        member_id: Option<&str>,
        client_id: &str,
        session_timeout_ms: i64,
        rebalance_timeout_ms: i64,
        protocols: Vec<String>,
        topics: Vec<String>,
        now_ms: i64,
    ) -> Result<String, GroupError> {
        let id = match member_id.filter(|id| !id.is_empty()) {
            Some(id) if self.members.contains_key(id) => id.to_string(),
            Some(id) => return Err(GroupError::UnknownMemberId(id.to_string())),
            None => {
                if self.members.len() >= self.max_members {
                    return Err(GroupError::GroupMaxSizeReached(self.members.len()));
                }
                // Kafka's form: the client id and a UUID.
                format!("{client_id}-{}", uuid::Uuid::new_v4())
            }
        };
        let compatible = self
            .members
            .values()
            .filter(|m| m.member_id != id)
            .all(|m| m.protocols.iter().any(|p| protocols.contains(p)));
        if protocols.is_empty() || !compatible {
            return Err(GroupError::InconsistentGroupProtocol);
        }
        self.members.insert(
            id.clone(),
            Member {
                member_id: id.clone(),
                client_id: client_id.to_string(),
                session_timeout_ms,
                rebalance_timeout_ms,
                protocols,
                topics,
                last_heartbeat_ms: now_ms,
                joined: true,
                assignment: self
                    .members
                    .get(&id)
                    .map(|m| m.assignment.clone())
                    .unwrap_or_default(),
            },
        );
        self.prepare_rebalance(now_ms);
        Ok(id)
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
        self.generation_id += 1;
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

    fn check_member(&self, member_id: &str, generation_id: i32) -> Result<(), GroupError> {
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
        generation_id: i32,
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
        generation_id: i32,
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
            .filter(|m| now_ms - m.last_heartbeat_ms > m.session_timeout_ms)
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
        self.prepare_rebalance(now_ms);
        self.try_complete_join(now_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn join(g: &mut Group, id: Option<&str>, now: i64) -> String {
        g.join(
            id,
            "c",
            10_000,
            30_000,
            vec!["sticky".into(), "range".into()],
            vec!["t".into()],
            now,
        )
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
            (GroupState::CompletingRebalance, 1, Some("sticky"))
        );
        let first = rebalance(&mut g, &partitions, 0);
        assert!(first.values().all(|p| p.len() == 2));
        assert_eq!(g.state, GroupState::Stable);
        // One leaves: a rebalance, and the other two cover all six, keeping theirs.
        g.leave(&ids[1], 10).unwrap();
        let second = rebalance(&mut g, &partitions, 10);
        assert_eq!(g.generation_id, 2);
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
            g.heartbeat(&a, 0, 1),
            Err(GroupError::IllegalGeneration { .. })
        ));
        assert!(matches!(
            g.sync("nobody", 1, None, &partitions),
            Err(GroupError::UnknownMemberId(_))
        ));
        // A join while stable starts a rebalance: heartbeats say so.
        let b = join(&mut g, None, 5);
        assert_eq!(g.heartbeat(&a, 1, 6), Err(GroupError::RebalanceInProgress));
        // a does not rejoin in time: dropped at the rebalance deadline.
        assert!(!g.try_complete_join(6));
        assert!(g.try_complete_join(5 + 30_000));
        assert_eq!(g.members.keys().cloned().collect::<Vec<_>>(), vec![b]);
        assert!(g
            .join(None, "c", 1, 1, vec!["range".into()], vec![], 0)
            .is_ok());
        assert!(matches!(
            g.join(None, "c", 1, 1, vec!["range".into()], vec![], 0),
            Err(GroupError::GroupMaxSizeReached(2))
        ));
        assert_eq!(
            Group::new("h", 5).join(None, "c", 1, 1, vec![], vec![], 0),
            Err(GroupError::InconsistentGroupProtocol)
        );
    }
}
