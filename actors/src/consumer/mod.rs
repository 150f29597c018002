//! `ConsumerInstance`: a Kafka consumer that lives inside the broker, for clients
//! that cannot run one — REST clients (Confluent REST Proxy's v2 consumer instances)
//! and WebSocket group subscribers. It is a real group member: it joins through the
//! group's coordinator, heartbeats, rejoins the moment a rebalance starts (the
//! coordinator tells it), keeps a position per assigned partition, fetches from the
//! partition actors and commits to the group.
//!
//! Positions start at the group's committed offset, or per `auto.offset.reset`.
//! After a rebalance, partitions the instance keeps keep their positions (as Kafka's
//! cooperative protocol does), so a client that has fetched but not yet committed
//! does not see those records again — kept from one generation to the next only:
//! across a generation it missed, a partition may have had another owner, and its
//! position starts again from the committed offset. With `auto.commit.enable` the
//! instance commits what it has returned at the start of the next fetch, before
//! handing partitions back in a rebalance, and when it closes.
//!
//! The pieces, split by state as Kafka's client is:
//! - [`subscription`]: what the instance consumes, its assignment and positions
//!   (Kafka's `SubscriptionState`); pure.
//! - [`coordinator_client`]: join, sync, heartbeat, commit and leave against the
//!   `GroupCoordinator` (Kafka's `ConsumerCoordinator`).
//! - [`fetch_plan`] (pure) and `fetcher`: what a poll reads and with what budget, and
//!   the reads themselves.
//! - [`offset_lookup`]: offset resets, times and seeks, asked of the partitions.
//! - `metadata`: partition addresses, asked of the `Broker`.
//!
//! This actor only orchestrates: it turns messages into calls on those pieces, spawns
//! their futures and hands the answers back. The [`ConsumerRegistry`] finds instances
//! by group and name and closes them when idle past `consumer.instance.timeout.ms`.
//!
//! An instance is a *temporary* actor of [`crate::supervision`]: ephemeral (nothing of
//! it is persisted but its group's commits) and re-created by its client on a 404, so
//! a panic is contained and ends it rather than restarting it half-remembered. Its
//! group sees it leave at its session timeout; the registry forgets it.

pub mod coordinator_client;
pub mod fetch_plan;
mod fetcher;
pub mod messages;
mod metadata;
pub mod offset_lookup;
pub mod registry;
pub mod subscription;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::watch;

pub use messages::*;
pub use offset_lookup::reset_offset;
pub use registry::ConsumerRegistry;

use crate::broker_config::ConsumerConfig;
use crate::clock::Clock;
use crate::group::offsets_topic::CommittedOffset;
use crate::group::{CommitOffsets, GroupManager, RebalanceNotice, TopicPartition};
use crate::metadata::TopicsChanged;
use crate::requests::Routes;
use coordinator_client::{
    auto_commit, offset_commits, send_commit, CoordinatorClient, FinishedJoin, HeartbeatDue,
    HeartbeatNext, JoinAnswer, JoinNext, LeaveFuture, MemberIdentity,
};
use fetch_plan::FetchBudget;
use fetcher::Fetcher;
use subscription::SubscriptionState;

pub struct ConsumerInstance {
    group_id: String,
    name: String,
    settings: InstanceSettings,
    config: ConsumerConfig,
    routes: Routes,
    registry: Recipient<InstanceClosed>,
    subscriptions: SubscriptionState,
    coordinator: CoordinatorClient,
    last_used: Instant,
    closed: bool,
    /// Told of every assignment change (a WebSocket group subscription watches it);
    /// an instance being watched does not expire while idle.
    assignment_watch: Option<watch::Sender<AssignmentState>>,
    /// Heartbeats, the idle timeout, and a poll's wait for a rebalance.
    clock: Clock,
    /// Told of topic changes (from the first pattern subscription on).
    watching_topics: bool,
    /// The topics a pattern subscription may match (its user's readable ones).
    visible: Option<TopicFilter>,
}

/// Whom an instance works with, handed over by the registry that creates it.
pub struct InstanceLinks {
    pub routes: Routes,
    pub groups: Addr<GroupManager>,
    /// Told when the instance closes.
    pub registry: Recipient<InstanceClosed>,
    pub clock: Clock,
}

impl ConsumerInstance {
    pub fn new(
        group_id: &str,
        name: &str,
        settings: InstanceSettings,
        config: ConsumerConfig,
        links: InstanceLinks,
    ) -> Self {
        let InstanceLinks {
            routes,
            groups,
            registry,
            clock,
        } = links;
        let identity = MemberIdentity {
            client_id: settings.client_id.clone(),
            client_host: format!("troupe:{name}"),
            session_timeout_ms: config.session_timeout_ms,
        };
        let label = format!("{group_id}/{name}");
        let coordinator = CoordinatorClient::new(
            group_id,
            label,
            identity,
            groups,
            routes.clone(),
            clock.clone(),
        );
        ConsumerInstance {
            group_id: group_id.to_string(),
            name: name.to_string(),
            settings,
            config,
            routes,
            registry,
            subscriptions: SubscriptionState::default(),
            visible: None,
            coordinator,
            last_used: clock.monotonic(),
            closed: false,
            assignment_watch: None,
            clock,
            watching_topics: false,
        }
    }

    fn usable(&mut self) -> ConsumerResult<()> {
        if self.closed {
            return Err(ConsumerError::Closed);
        }
        self.last_used = self.clock.monotonic();
        Ok(())
    }

    fn assignment_state(&self) -> AssignmentState {
        AssignmentState {
            generation_id: self.coordinator.generation().generation_id,
            partitions: self.subscriptions.assignment().to_vec(),
        }
    }

    /// Tells the watcher, if any, the assignment as it is now.
    fn publish_assignment(&self) {
        if let Some(w) = &self.assignment_watch {
            let state = self.assignment_state();
            w.send_if_modified(|current| {
                let changed = *current != state;
                *current = state;
                changed
            });
        }
    }

    fn watched(&self) -> bool {
        self.assignment_watch
            .as_ref()
            .is_some_and(|w| w.receiver_count() > 0)
    }

    /// With `auto.commit.enable`, the commit of every position.
    fn auto_commit(&self) -> Option<CommitOffsets> {
        if !self.settings.auto_commit || self.subscriptions.positions().is_empty() {
            return None;
        }
        Some(CommitOffsets {
            committer: self.coordinator.committer(self.subscriptions.mode()),
            offsets: offset_commits(&self.subscriptions.all_consumed()),
        })
    }

    /// Joins (or rejoins) the group with the current subscription, and syncs. A join
    /// already under way is left to finish: its answer, for an older subscription or
    /// rebalance, leads to another.
    fn rejoin(&mut self, ctx: &mut Context<Self>) {
        let topics = self.subscriptions.subscribed_topics();
        if topics.is_empty() || self.closed {
            return;
        }
        let topics = topics.to_vec();
        let version = self.subscriptions.subscription_version();
        let commit = self.auto_commit();
        let join = self
            .coordinator
            .begin_join(topics, commit, ctx.address().recipient());
        if let Some(join) = join {
            ctx.spawn(
                join.into_actor(self)
                    .map(move |answer, act, ctx| act.join_answered(answer, version, ctx)),
            );
        }
    }

    /// A join begun at subscription `version` answered.
    fn join_answered(&mut self, answer: JoinAnswer, version: u64, ctx: &mut Context<Self>) {
        let FinishedJoin {
            result,
            rebalance_noticed,
        } = self.coordinator.join_finished(answer);
        if self.closed {
            // Closed while joining: leave with the member id just learned.
            drop(self.leave());
            ctx.stop();
            return;
        }
        if self.subscriptions.subscription_version() != version {
            // The subscription changed meanwhile: join with the new one, or leave if
            // there is none.
            if self.subscriptions.subscribed_topics().is_empty() {
                drop(self.leave());
            } else {
                self.rejoin(ctx);
            }
            return;
        }
        match self.coordinator.settle_join(result) {
            JoinNext::Joined { partitions, step } => {
                self.subscriptions.assign_from_group(partitions, step);
                self.publish_assignment();
                if rebalance_noticed {
                    self.rejoin(ctx);
                }
            }
            JoinNext::Retry => self.rejoin(ctx),
            JoinNext::GiveUp(_) => {
                // Joined again at the next heartbeat tick.
                self.subscriptions.suspend_assignment();
                self.publish_assignment();
            }
        }
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        if self.watched() {
            self.last_used = self.clock.monotonic();
        }
        let idle = self.clock.elapsed_since(self.last_used);
        if idle >= Duration::from_millis(self.config.instance_timeout_ms) {
            log::info!(
                "consumer instance {}/{} idle for {} ms: closing",
                self.group_id,
                self.name,
                self.config.instance_timeout_ms
            );
            drop(self.close(ctx));
            return;
        }
        if self.subscriptions.subscribed_topics().is_empty() {
            return;
        }
        let interval = Duration::from_millis(self.config.heartbeat_interval_ms);
        match self.coordinator.heartbeat_due(interval) {
            HeartbeatDue::Wait => {}
            HeartbeatDue::Rejoin => self.rejoin(ctx),
            HeartbeatDue::Send(beat) => {
                ctx.spawn(beat.into_actor(self).map(|answer, act, ctx| {
                    if act.coordinator.heartbeat_answered(answer) == HeartbeatNext::Rejoin {
                        act.rejoin(ctx);
                    }
                }));
            }
        }
    }

    /// Leaves the group (committing first with auto commit) and forgets the
    /// subscription or assignment.
    fn leave(&mut self) -> LeaveFuture {
        let left = self.drop_membership();
        self.subscriptions.unsubscribe();
        left
    }

    /// Leaves the group (committing first with auto commit) and hands the partitions
    /// back, keeping the subscription. The answer is the leave itself; it runs on its
    /// own task, so it finishes even if this instance stops now — await it only to
    /// know when it is done.
    fn drop_membership(&mut self) -> LeaveFuture {
        let commit = self.auto_commit();
        self.subscriptions.release_all();
        self.publish_assignment();
        self.coordinator
            .leave_group(commit, self.subscriptions.mode())
    }

    /// Closes the instance; the answer completes once it has left its group.
    fn close(&mut self, ctx: &mut Context<Self>) -> LeaveFuture {
        if self.closed {
            return Box::pin(async {});
        }
        self.closed = true;
        self.registry.do_send(InstanceClosed {
            group_id: self.group_id.clone(),
            name: self.name.clone(),
        });
        if self.coordinator.is_joining() {
            // The join's answer brings the member id to leave with; it stops then.
            return Box::pin(async {});
        }
        let left = self.leave();
        ctx.stop();
        left
    }

    /// The fetch step of a poll: everything it needs is copied out, so the mailbox
    /// keeps serving (heartbeats, rebalances) while it waits for data.
    fn fetch(
        &mut self,
        budget: FetchBudget,
    ) -> ResponseActFuture<Self, ConsumerResult<Vec<ConsumedRecord>>> {
        let Some(cached) = self.coordinator.current() else {
            return Box::pin(fut::ready(Ok(Vec::new())));
        };
        let commit = self.auto_commit();
        let find = self.coordinator.find();
        let routes = self.routes.clone();
        let reset = self.settings.auto_offset_reset;
        let assignment = self.subscriptions.assignment().to_vec();
        let positions = self.subscriptions.positions().clone();
        let started = self.subscriptions.assignment_epoch();
        let fetched = async move {
            let fresh = match commit {
                Some(commit) => auto_commit(cached.clone(), find, commit).await,
                None => None,
            };
            let fetcher = Fetcher {
                routes,
                coordinator: fresh.clone().unwrap_or(cached),
                reset,
            };
            (fresh, fetcher.fetch(assignment, positions, budget).await)
        };
        Box::pin(
            fetched
                .into_actor(self)
                .map(move |(fresh, result), act, _| {
                    act.coordinator.adopt(fresh);
                    let mut records = Vec::new();
                    for part in result? {
                        let next = part.next_offset();
                        if act.subscriptions.record_fetched(
                            &part.partition,
                            part.from,
                            next,
                            started,
                        ) {
                            records.extend(part.records);
                        }
                    }
                    Ok(records)
                }),
        )
    }

    fn subscribe_topics(
        &mut self,
        topics: Vec<String>,
    ) -> ResponseActFuture<Self, ConsumerResult<()>> {
        if let Err(e) = self.subscriptions.subscribe_topics(topics) {
            return Box::pin(fut::ready(Err(e)));
        }
        let find = self.coordinator.find();
        Box::pin(find.into_actor(self).map(|c, act, ctx| {
            act.coordinator.set_coordinator(c?);
            act.rejoin(ctx);
            Ok(())
        }))
    }

    fn subscribe_pattern(
        &mut self,
        pattern: &str,
        ctx: &mut Context<Self>,
    ) -> ResponseActFuture<Self, ConsumerResult<()>> {
        if let Err(e) = self.subscriptions.subscribe_pattern(pattern) {
            return Box::pin(fut::ready(Err(e)));
        }
        let counts = self.routes.metadata.image().partition_counts();
        if !self.watching_topics {
            self.watching_topics = true;
            self.routes
                .metadata
                .watch_partition_counts(counts.clone(), ctx.address().recipient());
        }
        let find = self.coordinator.find();
        Box::pin(find.into_actor(self).map(move |found, act, ctx| {
            act.coordinator.set_coordinator(found?);
            act.match_pattern(&counts, ctx);
            Ok(())
        }))
    }

    /// Re-evaluates a pattern subscription against the topics that exist now.
    fn match_pattern(&mut self, counts: &BTreeMap<String, i32>, ctx: &mut Context<Self>) {
        let visible = self.visible.clone();
        let topics = counts
            .keys()
            .filter(|t| visible.as_ref().is_none_or(|may| may(t)));
        if !self.subscriptions.match_pattern(topics) {
            return;
        }
        log::debug!(
            "consumer {}/{}: pattern now matches {:?}",
            self.group_id,
            self.name,
            self.subscriptions.subscribed_topics()
        );
        if self.subscriptions.subscribed_topics().is_empty() {
            drop(self.drop_membership());
        } else {
            self.rejoin(ctx);
        }
    }
}

impl crate::supervision::Supervise for ConsumerInstance {
    const KIND: crate::supervision::ActorKind = crate::supervision::ActorKind::ConsumerInstance;

    fn name(&self) -> String {
        format!("{}/{}", self.group_id, self.name)
    }
}

#[cfg(any(test, feature = "test-support"))]
crate::supervision::answers_panic_hook!(ConsumerInstance);

impl Actor for ConsumerInstance {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let tick_ms = self
            .config
            .heartbeat_interval_ms
            .min(self.config.instance_timeout_ms / 4)
            .clamp(10, 1_000);
        let every = Duration::from_millis(tick_ms);
        self.clock
            .clone()
            .run_interval(ctx, every, |act: &mut Self, ctx| act.tick(ctx));
    }
}

impl Handler<TopicsChanged> for ConsumerInstance {
    type Result = ();

    fn handle(&mut self, msg: TopicsChanged, ctx: &mut Context<Self>) {
        self.match_pattern(&msg.partitions, ctx);
    }
}

impl Handler<RebalanceNotice> for ConsumerInstance {
    type Result = ();

    fn handle(&mut self, _: RebalanceNotice, ctx: &mut Context<Self>) {
        self.coordinator.rebalance_noticed();
        self.rejoin(ctx);
    }
}

impl Handler<GetInstanceInfo> for ConsumerInstance {
    type Result = MessageResult<GetInstanceInfo>;

    fn handle(&mut self, _: GetInstanceInfo, _: &mut Context<Self>) -> Self::Result {
        let generation = self.coordinator.generation();
        MessageResult(InstanceInfo {
            group_id: self.group_id.clone(),
            name: self.name.clone(),
            settings: self.settings.clone(),
            member_id: generation.member_id.clone(),
            generation_id: generation
                .member_id
                .as_ref()
                .map(|_| generation.generation_id),
        })
    }
}

impl Handler<Subscribe> for ConsumerInstance {
    type Result = ResponseActFuture<Self, ConsumerResult<()>>;

    fn handle(&mut self, msg: Subscribe, ctx: &mut Context<Self>) -> Self::Result {
        if let Err(e) = self.usable() {
            return Box::pin(fut::ready(Err(e)));
        }
        self.visible = msg.visible;
        match msg.to {
            Subscription::Topics(topics) => self.subscribe_topics(topics),
            Subscription::Pattern(pattern) => self.subscribe_pattern(&pattern, ctx),
        }
    }
}

impl Handler<GetSubscription> for ConsumerInstance {
    type Result = MessageResult<GetSubscription>;

    fn handle(&mut self, _: GetSubscription, _: &mut Context<Self>) -> Self::Result {
        self.last_used = self.clock.monotonic();
        MessageResult(self.subscriptions.subscribed_topics().to_vec())
    }
}

impl Handler<Unsubscribe> for ConsumerInstance {
    type Result = ConsumerResult<()>;

    fn handle(&mut self, _: Unsubscribe, _: &mut Context<Self>) -> Self::Result {
        self.usable()?;
        drop(self.leave());
        Ok(())
    }
}

impl Handler<Assign> for ConsumerInstance {
    type Result = ResponseActFuture<Self, ConsumerResult<()>>;

    fn handle(&mut self, msg: Assign, _: &mut Context<Self>) -> Self::Result {
        let assignable = self
            .usable()
            .and_then(|()| self.subscriptions.check_assignable());
        if let Err(e) = assignable {
            return Box::pin(fut::ready(Err(e)));
        }
        let partitions = msg.partitions;
        if let Err(e) = metadata::check_partitions_exist(&self.routes, &partitions) {
            return Box::pin(fut::ready(Err(e)));
        }
        let find = self.coordinator.find();
        let check = async move { Ok::<_, ConsumerError>((partitions, find.await?)) };
        Box::pin(check.into_actor(self).map(|checked, act, _| {
            let (partitions, coordinator) = checked?;
            act.coordinator.set_coordinator(coordinator);
            act.subscriptions.assign(partitions)?;
            act.publish_assignment();
            Ok(())
        }))
    }
}

impl Handler<GetAssignment> for ConsumerInstance {
    type Result = MessageResult<GetAssignment>;

    fn handle(&mut self, _: GetAssignment, _: &mut Context<Self>) -> Self::Result {
        self.last_used = self.clock.monotonic();
        MessageResult(self.subscriptions.assignment().to_vec())
    }
}

impl Handler<Poll> for ConsumerInstance {
    type Result = ResponseActFuture<Self, ConsumerResult<Vec<ConsumedRecord>>>;

    fn handle(&mut self, msg: Poll, _: &mut Context<Self>) -> Self::Result {
        if let Err(e) = self.usable() {
            return Box::pin(fut::ready(Err(e)));
        }
        if self.subscriptions.is_idle() {
            return Box::pin(fut::ready(Err(ConsumerError::NotSubscribed)));
        }
        let budget = FetchBudget {
            max_bytes: msg.max_bytes,
            max_wait_ms: msg.timeout_ms,
        };
        if !self.coordinator.is_joining() {
            return self.fetch(budget);
        }
        // A rebalance is under way: wait for it (within the timeout), then fetch
        // with what is left of the timeout.
        let joined = self.coordinator.wait_for_join();
        let started = self.clock.monotonic();
        let wait = Duration::from_millis(msg.timeout_ms);
        let clock = self.clock.clone();
        Box::pin(
            async move {
                let _ = clock.timeout(wait, joined).await;
            }
            .into_actor(self)
            .then(move |(), act, _| {
                let waited = act.clock.elapsed_since(started);
                let left_ms = wait.saturating_sub(waited).as_millis() as u64;
                act.fetch(FetchBudget {
                    max_wait_ms: left_ms,
                    ..budget
                })
            }),
        )
    }
}

impl Handler<Commit> for ConsumerInstance {
    type Result = ResponseActFuture<Self, ConsumerResult<Vec<OffsetAndMetadata>>>;

    fn handle(&mut self, msg: Commit, _: &mut Context<Self>) -> Self::Result {
        let prepared = (|| {
            self.usable()?;
            let offsets = match msg.offsets {
                Some(offsets) => {
                    for o in &offsets {
                        self.subscriptions.check_assigned(&o.partition)?;
                    }
                    offsets
                }
                None => self.subscriptions.all_consumed(),
            };
            let cached = self
                .coordinator
                .current()
                .ok_or(ConsumerError::NotSubscribed)?;
            Ok::<_, ConsumerError>((cached, offsets))
        })();
        let (cached, offsets) = match prepared {
            Ok(prepared) => prepared,
            Err(e) => return Box::pin(fut::ready(Err(e))),
        };
        let commit = CommitOffsets {
            committer: self.coordinator.committer(self.subscriptions.mode()),
            offsets: offset_commits(&offsets),
        };
        let sent = send_commit(cached, self.coordinator.find(), commit);
        Box::pin(sent.into_actor(self).map(|(fresh, answer), act, _| {
            act.coordinator.adopt(fresh);
            answer.map(|()| offsets)
        }))
    }
}

impl Handler<Committed> for ConsumerInstance {
    type Result = ResponseFuture<ConsumerResult<Vec<(TopicPartition, Option<CommittedOffset>)>>>;

    fn handle(&mut self, msg: Committed, _: &mut Context<Self>) -> Self::Result {
        let usable = self.usable();
        let committed = self.coordinator.fetch_committed(msg.partitions.clone());
        Box::pin(async move {
            usable?;
            let committed = committed.await?;
            Ok(msg
                .partitions
                .into_iter()
                .map(|tp| {
                    let c = committed.get(&tp).cloned();
                    (tp, c)
                })
                .collect())
        })
    }
}

impl Handler<Seek> for ConsumerInstance {
    type Result = ResponseActFuture<Self, ConsumerResult<()>>;

    fn handle(&mut self, msg: Seek, _: &mut Context<Self>) -> Self::Result {
        let checked = self
            .usable()
            .and_then(|()| self.subscriptions.check_seeks(&msg.seeks));
        if let Err(e) = checked {
            return Box::pin(fut::ready(Err(e)));
        }
        let resolve = offset_lookup::resolve_seeks(self.routes.clone(), msg.seeks);
        Box::pin(resolve.into_actor(self).map(|resolved, act, _| {
            for (tp, offset) in resolved? {
                act.subscriptions.seek(tp, offset);
            }
            Ok(())
        }))
    }
}

impl Handler<WatchAssignment> for ConsumerInstance {
    type Result = MessageResult<WatchAssignment>;

    fn handle(&mut self, _: WatchAssignment, _: &mut Context<Self>) -> Self::Result {
        let state = self.assignment_state();
        let watch = self
            .assignment_watch
            .get_or_insert_with(|| watch::channel(state).0);
        MessageResult(watch.subscribe())
    }
}

impl Handler<CloseInstance> for ConsumerInstance {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: CloseInstance, ctx: &mut Context<Self>) -> Self::Result {
        self.close(ctx)
    }
}
