//! A consumer instance's side of the classic group protocol, as Kafka's
//! `ConsumerCoordinator`: it finds the group's coordinator, joins and syncs,
//! heartbeats, commits and leaves, and remembers the member id and generation the
//! group gave it.
//!
//! It holds no partitions (the `SubscriptionState` does) and is not an actor: the
//! `ConsumerInstance` spawns the futures built here and hands their answers back.
//! What an answer means — join again, give up until the next tick, or take the new
//! assignment — is decided by [`Generation`], without I/O, and tested below.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures::channel::oneshot;

use super::messages::{ConsumerError, ConsumerResult, OffsetAndMetadata};
use super::subscription::{GenerationStep, SubscriptionMode};
use crate::clock::Clock;
use crate::group::membership::{JoinRequest, JoinResult};
use crate::group::offsets_topic::{CommittedOffset, MemberOrigin};
use crate::group::remote::remote_coordinator;
use crate::group::CoordinatorRef;
use crate::group::{
    CommitOffsets, Committer, FetchOffsets, FindCoordinator, GroupError, GroupManager, Heartbeat,
    JoinGroup, LeaveGroup, OffsetCommit, RebalanceNotice, SyncGroup, TopicPartition,
};
use crate::ids::GenerationId;
use crate::requests::Routes;

/// The assignors an instance offers, in preference order (sticky first: a
/// rebalance moves as few partitions as it can).
const PROTOCOLS: [&str; 3] = ["sticky", "range", "roundrobin"];

/// A coordinator lookup under way.
pub(super) type CoordinatorFuture = Pin<Box<dyn Future<Output = ConsumerResult<CoordinatorRef>>>>;

/// A leave under way (it runs on its own task; awaiting it is optional).
pub(super) type LeaveFuture = Pin<Box<dyn Future<Output = ()>>>;

/// The member id and generation the group gave this instance, as Kafka's `Generation`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    pub member_id: Option<String>,
    /// [`GenerationId::NONE`] until the instance first joins, and again once it leaves.
    pub generation_id: GenerationId,
}

/// What the instance does after a join and sync answered.
#[derive(Debug, PartialEq)]
pub enum JoinNext {
    /// Joined: take `partitions`, carrying positions over as `step` allows.
    Joined {
        partitions: Vec<TopicPartition>,
        step: GenerationStep,
    },
    /// The rebalance moved on, or the group forgot the member: join again now.
    Retry,
    /// The group cannot be joined now: hold nothing, and join again at the next
    /// heartbeat tick.
    GiveUp(GroupError),
}

/// What a heartbeat's answer calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeartbeatNext {
    Continue,
    Rejoin,
}

impl Default for Generation {
    fn default() -> Self {
        Generation {
            member_id: None,
            generation_id: GenerationId::NONE,
        }
    }
}

impl Generation {
    /// Who commits: the member of its generation, or nobody in particular (Kafka's
    /// "simple" consumer) with partitions assigned by hand or before joining.
    pub fn committer(&self, mode: &SubscriptionMode) -> Committer {
        match &self.member_id {
            Some(member_id) if !matches!(mode, SubscriptionMode::Manual) => Committer::Member {
                member_id: member_id.clone(),
                generation_id: self.generation_id,
            },
            _ => Committer::Standalone,
        }
    }

    /// Takes a join-and-sync's result: a new generation, or what to do about the error.
    pub fn settle_join(
        &mut self,
        result: Result<(GenerationId, Vec<TopicPartition>), GroupError>,
    ) -> JoinNext {
        match result {
            Ok((generation_id, partitions)) => {
                let step = GenerationStep::between(self.generation_id, generation_id);
                self.generation_id = generation_id;
                JoinNext::Joined { partitions, step }
            }
            Err(GroupError::RebalanceInProgress) | Err(GroupError::IllegalGeneration { .. }) => {
                JoinNext::Retry
            }
            Err(GroupError::UnknownMemberId(_)) => {
                self.member_id = None;
                JoinNext::Retry
            }
            Err(e) => {
                self.member_id = None;
                JoinNext::GiveUp(e)
            }
        }
    }

    /// Takes a heartbeat's answer: any error means rejoining, as a new member if the
    /// group forgot this one.
    pub fn settle_heartbeat(&mut self, answer: Result<(), GroupError>) -> HeartbeatNext {
        match answer {
            Ok(()) => HeartbeatNext::Continue,
            Err(GroupError::UnknownMemberId(_)) => {
                self.member_id = None;
                HeartbeatNext::Rejoin
            }
            Err(_) => HeartbeatNext::Rejoin,
        }
    }
}

/// Whether a join and sync is under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JoinProgress {
    Idle,
    /// `rebalance_noticed`: a rebalance notice came meanwhile, so once this join
    /// completes the instance joins again.
    InFlight {
        rebalance_noticed: bool,
    },
}

/// What a join and sync brought back. The coordinator and member id count whatever
/// the result: the member id is the instance's from the join on, even if the sync
/// then fails.
pub(super) struct JoinAnswer {
    coordinator: Option<CoordinatorRef>,
    member_id: Option<String>,
    result: Result<(GenerationId, Vec<TopicPartition>), GroupError>,
}

/// A finished join, recorded: its result, and whether to join again after it.
pub(super) struct FinishedJoin {
    pub result: Result<(GenerationId, Vec<TopicPartition>), GroupError>,
    pub rebalance_noticed: bool,
}

/// What the member says of itself when joining.
pub(super) struct MemberIdentity {
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i64,
}

/// What the heartbeat tick calls for.
pub(super) enum HeartbeatDue {
    Wait,
    /// Not a member (a join gave up): join again.
    Rejoin,
    Send(crate::group::remote::Answer<Result<Result<(), GroupError>, MailboxError>>),
}

pub(super) struct CoordinatorClient {
    group_id: String,
    /// `group/instance`, for logs.
    label: String,
    identity: MemberIdentity,
    groups: Addr<GroupManager>,
    /// Where the group's coordinator is when it is not on this broker.
    routes: Routes,
    /// The group's coordinator as last found.
    coordinator: Option<CoordinatorRef>,
    generation: Generation,
    join: JoinProgress,
    /// Polls waiting for the join under way.
    join_waiters: Vec<oneshot::Sender<()>>,
    last_heartbeat: Instant,
    clock: Clock,
}

impl CoordinatorClient {
    pub fn new(
        group_id: &str,
        label: String,
        identity: MemberIdentity,
        groups: Addr<GroupManager>,
        routes: Routes,
        clock: Clock,
    ) -> Self {
        CoordinatorClient {
            group_id: group_id.to_string(),
            label,
            identity,
            groups,
            routes,
            coordinator: None,
            generation: Generation::default(),
            join: JoinProgress::Idle,
            join_waiters: Vec::new(),
            last_heartbeat: clock.monotonic(),
            clock,
        }
    }

    pub fn generation(&self) -> &Generation {
        &self.generation
    }

    pub fn current(&self) -> Option<CoordinatorRef> {
        self.coordinator.clone()
    }

    pub fn set_coordinator(&mut self, coordinator: CoordinatorRef) {
        self.coordinator = Some(coordinator);
    }

    /// Takes the coordinator a commit found anew (the cached one was of a deleted group).
    pub fn adopt(&mut self, fresh: Option<CoordinatorRef>) {
        if fresh.is_some() {
            self.coordinator = fresh;
        }
    }

    /// The group's coordinator, asked of the manager (and created if need be) rather
    /// than taken from the cache: a group deleted since that address was cached left
    /// a Dead coordinator behind, which refuses everyone and which the manager no
    /// longer routes to.
    ///
    /// A group coordinated by another broker (the leader of its `__consumer_offsets`
    /// partition) is reached there, over the Kafka protocol.
    pub fn find(&self) -> CoordinatorFuture {
        let groups = self.groups.clone();
        let group_id = self.group_id.clone();
        let routes = self.routes.clone();
        Box::pin(async move {
            let found = groups
                .send(FindCoordinator {
                    group_id: group_id.clone(),
                    create: true,
                })
                .await?;
            match found {
                Ok(addr) => Ok(CoordinatorRef::Local(addr)),
                Err(GroupError::NotCoordinator(why)) => remote_coordinator(&routes, &group_id)
                    .map(CoordinatorRef::Remote)
                    .ok_or_else(|| GroupError::CoordinatorNotAvailable(why).into()),
                Err(e) => Err(e.into()),
            }
        })
    }

    pub fn committer(&self, mode: &SubscriptionMode) -> Committer {
        self.generation.committer(mode)
    }

    pub fn is_joining(&self) -> bool {
        self.join != JoinProgress::Idle
    }

    /// A rebalance started: a join under way is for the old one, so join again after it.
    pub fn rebalance_noticed(&mut self) {
        if let JoinProgress::InFlight { rebalance_noticed } = &mut self.join {
            *rebalance_noticed = true;
        }
    }

    /// Completes once the join under way has (or the instance left).
    pub fn wait_for_join(&mut self) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.join_waiters.push(tx);
        rx
    }

    fn wake_join_waiters(&mut self) {
        for w in self.join_waiters.drain(..) {
            let _ = w.send(());
        }
    }

    /// Starts joining with `topics`: commit `commit` first (the partitions go back
    /// with their positions committed), find the coordinator, join, then sync.
    /// `None` while a join is already under way.
    pub fn begin_join(
        &mut self,
        topics: Vec<String>,
        commit: Option<CommitOffsets>,
        notify: Recipient<RebalanceNotice>,
    ) -> Option<impl Future<Output = JoinAnswer>> {
        if self.is_joining() {
            return None;
        }
        self.join = JoinProgress::InFlight {
            rebalance_noticed: false,
        };
        let request = JoinRequest {
            member_id: self.generation.member_id.clone(),
            client_id: self.identity.client_id.clone(),
            client_host: self.identity.client_host.clone(),
            origin: MemberOrigin::InBroker,
            session_timeout_ms: self.identity.session_timeout_ms,
            rebalance_timeout_ms: self.identity.session_timeout_ms,
            protocols: PROTOCOLS.iter().map(|p| p.to_string()).collect(),
            topics,
        };
        log::debug!("consumer {} joining as {:?}", self.label, request.member_id);
        let commit = commit.and_then(|c| Some((self.coordinator.clone()?, c)));
        Some(join_and_sync(commit, self.find(), request, notify))
    }

    /// Records what a finished join learned (the coordinator it used, the member id
    /// the group gave), whatever the instance does next.
    pub fn join_finished(&mut self, answer: JoinAnswer) -> FinishedJoin {
        let rebalance_noticed = matches!(
            self.join,
            JoinProgress::InFlight {
                rebalance_noticed: true
            }
        );
        self.join = JoinProgress::Idle;
        if let Some(c) = answer.coordinator {
            // The member id below (and the leave) belong to this one.
            self.coordinator = Some(c);
        }
        log::debug!(
            "consumer {} join answered: {:?} {:?}",
            self.label,
            answer.member_id,
            answer.result.as_ref().map(|r| r.0)
        );
        if let Some(id) = answer.member_id {
            self.generation.member_id = Some(id);
        }
        FinishedJoin {
            result: answer.result,
            rebalance_noticed,
        }
    }

    /// Settles a join's result (see [`Generation::settle_join`]); polls waiting for
    /// the join go on once it joined or gave up.
    pub fn settle_join(
        &mut self,
        result: Result<(GenerationId, Vec<TopicPartition>), GroupError>,
    ) -> JoinNext {
        let next = self.generation.settle_join(result);
        match &next {
            JoinNext::Joined { partitions, .. } => {
                log::debug!(
                    "consumer {} joined generation {} with {partitions:?}",
                    self.label,
                    self.generation.generation_id
                );
                self.last_heartbeat = self.clock.monotonic();
                self.wake_join_waiters();
            }
            JoinNext::GiveUp(e) => {
                log::warn!("consumer {} cannot join its group: {e}", self.label);
                self.wake_join_waiters();
            }
            JoinNext::Retry => {}
        }
        next
    }

    /// Whether a heartbeat is due, every `interval` while a member and not joining.
    pub fn heartbeat_due(&mut self, interval: Duration) -> HeartbeatDue {
        if self.is_joining() {
            return HeartbeatDue::Wait;
        }
        let Some(member_id) = self.generation.member_id.clone() else {
            return HeartbeatDue::Rejoin;
        };
        if self.clock.elapsed_since(self.last_heartbeat) < interval {
            return HeartbeatDue::Wait;
        }
        let Some(coordinator) = &self.coordinator else {
            return HeartbeatDue::Wait;
        };
        self.last_heartbeat = self.clock.monotonic();
        HeartbeatDue::Send(coordinator.send(Heartbeat {
            member_id,
            generation_id: self.generation.generation_id,
        }))
    }

    pub fn heartbeat_answered(
        &mut self,
        answer: Result<Result<(), GroupError>, MailboxError>,
    ) -> HeartbeatNext {
        match answer {
            Ok(answer) => self.generation.settle_heartbeat(answer),
            Err(e) => {
                log::warn!("heartbeat of {}: {e}", self.label);
                HeartbeatNext::Continue
            }
        }
    }

    /// Leaves the group: commits `commit` first, then leaves if the instance is a
    /// member (partitions assigned by hand are nobody's membership). Both run on a
    /// task of their own, so they finish even if the instance stops now. Forgets the
    /// member id and generation, and lets polls waiting for a join go on.
    pub fn leave_group(
        &mut self,
        commit: Option<CommitOffsets>,
        mode: &SubscriptionMode,
    ) -> LeaveFuture {
        let commit = commit.and_then(|c| Some((self.coordinator.clone()?, c)));
        let leave = match (&self.generation.member_id, &self.coordinator) {
            (Some(member_id), Some(c)) if !matches!(mode, SubscriptionMode::Manual) => {
                Some((c.clone(), member_id.clone()))
            }
            _ => None,
        };
        self.generation = Generation::default();
        self.wake_join_waiters();
        let task = actix::spawn(async move {
            if let Some((c, commit)) = commit {
                let _ = c.send(commit).await;
            }
            if let Some((c, member_id)) = leave {
                let _ = c.send(LeaveGroup { member_id }).await;
            }
        });
        Box::pin(async move {
            let _ = task.await;
        })
    }

    /// The group's committed offsets for `partitions`, from its coordinator as found now.
    pub fn fetch_committed(
        &self,
        partitions: Vec<TopicPartition>,
    ) -> impl Future<Output = ConsumerResult<BTreeMap<TopicPartition, CommittedOffset>>> {
        let find = self.find();
        async move {
            Ok(find
                .await?
                .send(FetchOffsets {
                    partitions: Some(partitions),
                })
                .await??)
        }
    }
}

/// The group's offset commits for `offsets`.
pub(super) fn offset_commits(offsets: &[OffsetAndMetadata]) -> Vec<OffsetCommit> {
    offsets
        .iter()
        .map(|o| OffsetCommit {
            partition: o.partition.clone(),
            offset: o.offset,
            metadata: o.metadata.clone(),
        })
        .collect()
}

/// Sends a commit to the cached coordinator. If the group was deleted since (its
/// Dead coordinator answers GROUP_ID_NOT_FOUND, or it is gone), the group is looked
/// up again — which creates it anew, as a commit to an unknown group does in Kafka —
/// and the commit sent there. Answers the new coordinator, if it took one.
pub(super) async fn send_commit(
    cached: CoordinatorRef,
    find: CoordinatorFuture,
    commit: CommitOffsets,
) -> (Option<CoordinatorRef>, ConsumerResult<()>) {
    match cached.send(commit.clone()).await {
        Ok(Err(GroupError::GroupIdNotFound(_))) | Err(_) => {}
        Ok(answer) => return (None, answer.map_err(ConsumerError::from)),
    }
    let fresh = match find.await {
        Ok(c) => c,
        Err(e) => return (None, Err(e)),
    };
    let answer = match fresh.send(commit).await {
        Ok(answer) => answer.map_err(ConsumerError::from),
        Err(e) => Err(e.into()),
    };
    (Some(fresh), answer)
}

/// The auto commit a poll sends before it fetches: a failure is only logged (the
/// positions are committed again next time). Answers the new coordinator, if any.
pub(super) async fn auto_commit(
    cached: CoordinatorRef,
    find: CoordinatorFuture,
    commit: CommitOffsets,
) -> Option<CoordinatorRef> {
    let (fresh, answer) = send_commit(cached, find, commit).await;
    if let Err(e) = answer {
        log::debug!("auto commit: {e}");
    }
    fresh
}

/// One join: commit, find the coordinator, join, sync.
async fn join_and_sync(
    commit: Option<(CoordinatorRef, CommitOffsets)>,
    find: CoordinatorFuture,
    request: JoinRequest,
    notify: Recipient<RebalanceNotice>,
) -> JoinAnswer {
    if let Some((c, commit)) = commit {
        if let Ok(Err(e)) = c.send(commit).await {
            log::debug!("commit before rejoining: {e}");
        }
    }
    let coordinator = match find.await {
        Ok(c) => c,
        Err(e) => {
            return JoinAnswer {
                coordinator: None,
                member_id: None,
                result: Err(lookup_failed(e)),
            }
        }
    };
    let joined = match join(&coordinator, request, notify).await {
        Ok(joined) => joined,
        Err(e) => {
            return JoinAnswer {
                coordinator: Some(coordinator),
                member_id: None,
                result: Err(e),
            }
        }
    };
    let synced = sync(&coordinator, &joined).await;
    JoinAnswer {
        coordinator: Some(coordinator),
        member_id: Some(joined.member_id),
        result: synced.map(|partitions| (joined.generation_id, partitions)),
    }
}

async fn join(
    coordinator: &CoordinatorRef,
    request: JoinRequest,
    notify: Recipient<RebalanceNotice>,
) -> Result<JoinResult, GroupError> {
    coordinator
        .send(JoinGroup {
            request,
            notify: Some(notify),
        })
        .await
        .map_err(GroupError::mailbox)?
}

/// Syncs without an assignment of its own: the coordinator assigns with the
/// negotiated assignor, whoever leads.
async fn sync(
    coordinator: &CoordinatorRef,
    joined: &JoinResult,
) -> Result<Vec<TopicPartition>, GroupError> {
    coordinator
        .send(SyncGroup {
            member_id: joined.member_id.clone(),
            generation_id: joined.generation_id,
            assignment: None,
        })
        .await
        .map_err(GroupError::mailbox)?
}

/// A failed coordinator lookup, as the join loop handles errors.
fn lookup_failed(e: ConsumerError) -> GroupError {
    match e {
        ConsumerError::Group(e) => e,
        other => GroupError::CoordinatorNotAvailable(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, generation_id: i32) -> Generation {
        Generation {
            member_id: Some(id.into()),
            generation_id: GenerationId::new(generation_id),
        }
    }

    fn synced(generation_id: i32) -> Result<(GenerationId, Vec<TopicPartition>), GroupError> {
        Ok((GenerationId::new(generation_id), partitions()))
    }

    fn partitions() -> Vec<TopicPartition> {
        vec![TopicPartition::new("t", 0)]
    }

    #[test]
    fn a_join_into_the_next_generation_keeps_positions_and_a_later_one_does_not() {
        let mut g = member("m", 3);
        assert_eq!(
            g.settle_join(synced(4)),
            JoinNext::Joined {
                partitions: partitions(),
                step: GenerationStep::Next
            }
        );
        assert_eq!(g.generation_id, GenerationId::new(4));
        assert!(matches!(
            g.settle_join(synced(6)),
            JoinNext::Joined {
                step: GenerationStep::Skipped,
                ..
            }
        ));
        assert_eq!(g, member("m", 6));
    }

    #[test]
    fn join_errors_retry_forget_the_member_or_give_up() {
        let mut g = member("m", 2);
        assert_eq!(
            g.settle_join(Err(GroupError::RebalanceInProgress)),
            JoinNext::Retry
        );
        assert_eq!(
            g.settle_join(Err(GroupError::IllegalGeneration {
                given: GenerationId::new(2),
                current: GenerationId::new(3)
            })),
            JoinNext::Retry
        );
        assert_eq!(g, member("m", 2), "a retry keeps the member id");

        assert_eq!(
            g.settle_join(Err(GroupError::UnknownMemberId("m".into()))),
            JoinNext::Retry
        );
        assert_eq!(g.member_id, None, "joins again as a new member");

        let mut g = member("m", 2);
        let e = GroupError::CoordinatorNotAvailable("down".into());
        assert_eq!(g.settle_join(Err(e.clone())), JoinNext::GiveUp(e));
        assert_eq!(g.member_id, None);
        assert_eq!(
            g.generation_id,
            GenerationId::new(2),
            "the generation stays, to judge the next join by"
        );
    }

    #[test]
    fn any_heartbeat_error_rejoins() {
        let mut g = member("m", 1);
        assert_eq!(g.settle_heartbeat(Ok(())), HeartbeatNext::Continue);
        assert_eq!(
            g.settle_heartbeat(Err(GroupError::RebalanceInProgress)),
            HeartbeatNext::Rejoin
        );
        assert_eq!(g.member_id.as_deref(), Some("m"));
        assert_eq!(
            g.settle_heartbeat(Err(GroupError::UnknownMemberId("m".into()))),
            HeartbeatNext::Rejoin
        );
        assert_eq!(g.member_id, None);
    }

    #[test]
    fn only_a_group_member_commits_as_one() {
        let topics = SubscriptionMode::Topics(vec!["t".into()]);
        assert_eq!(
            member("m", 5).committer(&topics),
            Committer::Member {
                member_id: "m".into(),
                generation_id: GenerationId::new(5)
            }
        );
        assert_eq!(
            member("m", 5).committer(&SubscriptionMode::Manual),
            Committer::Standalone
        );
        assert_eq!(
            Generation::default().committer(&topics),
            Committer::Standalone
        );
    }

    #[test]
    fn explicit_offsets_become_commits_as_given() {
        let offsets = [OffsetAndMetadata {
            partition: TopicPartition::new("t", 2),
            offset: 9,
            metadata: "m".into(),
        }];
        let commits = offset_commits(&offsets);
        assert_eq!(commits.len(), 1);
        assert_eq!(commits[0].partition, TopicPartition::new("t", 2));
        assert_eq!((commits[0].offset, commits[0].metadata.as_str()), (9, "m"));
    }
}
