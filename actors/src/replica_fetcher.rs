//! `ReplicaFetcher`: one per (this follower broker, a leader broker), as Kafka's
//! replica fetcher threads. It pulls every partition this broker follows on that
//! leader in one Kafka Fetch request with this broker's replica id, over the
//! leader's inter-broker listener on a connection of its own (a long poll never
//! holds up forwarded produces), and hands each partition's batches, byte for byte,
//! to the local [`PartitionReplica`] ([`AppendAsFollower`]).
//!
//! A partition first met (or met again in a new leader epoch) is truncated before it
//! is fetched: the fetcher asks the leader where the follower's latest epoch ends
//! (Kafka's OffsetForLeaderEpoch) and the replica cuts any divergent tail
//! ([`TruncateToLeader`]). A fetch long-polls at the leader for
//! `replica.fetch.wait.max.ms` when the follower is caught up, and takes at most
//! `replica.fetch.max.bytes` per partition and `replica.fetch.response.max.bytes` in
//! all. The next fetch goes out once every partition's batches are durable here,
//! so the offset it asks from tells the leader what this replica holds safely.
//!
//! The [`crate::replica_manager::ReplicaManager`] tells it what to follow
//! ([`SetFollowed`]) on every metadata image; a partition whose leader answers that
//! it no longer leads (or is in another epoch) waits for the next image.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use actix::prelude::*;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{
    BrokerId, FetchRequest, FetchResponse, OffsetForLeaderEpochRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::error::{BrokerError, BrokerResult};
use crate::ids::{LeaderEpoch, NodeId};
use crate::partition::{
    AppendAsFollower, GetFollowerPosition, PartitionReplica, StartAtLeader, TruncateToLeader,
};
use crate::peer_client::{broker_client_id, PeerClient};
use crate::storage::EpochEndOffset;
use crate::supervision::{self, ActorKind, Supervise};

const FETCH_VERSION: i16 = 11;
const OFFSET_FOR_LEADER_EPOCH_VERSION: i16 = 3;
const OFFSET_OUT_OF_RANGE: i16 = 1;

/// What every fetcher of this broker shares (broker config).
#[derive(Debug, Clone)]
pub struct FetcherSettings {
    pub node: NodeId,
    pub cluster_id: String,
    /// `replica.fetch.wait.max.ms`.
    pub wait_max_ms: u64,
    /// `replica.fetch.max.bytes`, per partition.
    pub max_bytes: usize,
    /// `replica.fetch.response.max.bytes`, per request.
    pub response_max_bytes: usize,
    /// `replica.fetch.backoff.ms`: after a failed round.
    pub backoff: Duration,
    /// TLS to the leader's inter-broker listener, when it is SSL.
    pub tls: Option<crate::peer_client::PeerTls>,
}

/// A partition this broker follows on the fetcher's leader.
#[derive(Clone)]
pub struct Followed {
    pub topic: String,
    pub partition: i32,
    pub replica: Addr<PartitionReplica>,
    pub leader_epoch: LeaderEpoch,
}

/// Everything this broker follows on the fetcher's leader, at its address (from
/// the latest image). An empty list stops the fetcher.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetFollowed {
    pub address: String,
    pub partitions: Vec<Followed>,
}

#[derive(Clone)]
struct FetchState {
    followed: Followed,
    /// Where the next fetch starts; `None` until truncated to the leader.
    offset: Option<i64>,
    /// The leader refused it in this epoch: wait for a newer image.
    parked: bool,
    /// Left out of rounds until then after a failure (`replica.fetch.backoff.ms`).
    retry_at: Option<Instant>,
}

type Key = (String, i32);

pub struct ReplicaFetcher {
    settings: FetcherSettings,
    leader: NodeId,
    client: Option<PeerClient>,
    partitions: BTreeMap<Key, FetchState>,
    running: bool,
    /// A timer will run the next round (every partition was backing off).
    wakeup_armed: bool,
}

impl ReplicaFetcher {
    pub fn new(settings: FetcherSettings, leader: NodeId) -> Self {
        ReplicaFetcher {
            settings,
            leader,
            client: None,
            partitions: BTreeMap::new(),
            running: false,
            wakeup_armed: false,
        }
    }

    pub fn start_supervised(self) -> Addr<ReplicaFetcher> {
        supervision::start(self)
    }

    /// Runs one round (truncations, then a fetch) unless one runs or nothing is to
    /// be fetched.
    fn run(&mut self, ctx: &mut Context<Self>) {
        if self.running {
            return;
        }
        let Some(client) = self.client.clone() else {
            return;
        };
        let now = Instant::now();
        let ready: Vec<(Key, FetchState)> = self
            .partitions
            .iter()
            .filter(|(_, p)| !p.parked && p.retry_at.is_none_or(|t| t <= now))
            .map(|(k, p)| (k.clone(), p.clone()))
            .collect();
        if ready.is_empty() {
            let next = self.partitions.values().filter_map(|p| p.retry_at).min();
            if let (Some(next), false) = (next, self.wakeup_armed) {
                self.wakeup_armed = true;
                ctx.run_later(next.saturating_duration_since(now), |act, ctx| {
                    act.wakeup_armed = false;
                    act.run(ctx);
                });
            }
            return;
        }
        self.running = true;
        let round = Round {
            settings: self.settings.clone(),
            leader: self.leader,
            client,
            partitions: ready,
        };
        ctx.spawn(
            actix::fut::wrap_future(round.run()).map(|outcome, act: &mut Self, ctx| {
                act.running = false;
                let failed = outcome.failed;
                let retry_at = Instant::now() + act.settings.backoff;
                for (key, epoch, update) in outcome.updates {
                    let Some(state) = act.partitions.get_mut(&key) else {
                        continue;
                    };
                    // An image meanwhile may have changed the epoch: that state
                    // starts over.
                    if state.followed.leader_epoch != epoch {
                        continue;
                    }
                    match update {
                        Update::Offset(o) => {
                            state.offset = Some(o);
                            state.retry_at = None;
                        }
                        Update::Truncate => {
                            state.offset = None;
                            state.retry_at = Some(retry_at);
                        }
                        Update::Backoff => state.retry_at = Some(retry_at),
                        Update::Park => state.parked = true,
                    }
                }
                if failed && !act.wakeup_armed {
                    // The leader could not be reached: the round's partitions wait.
                    act.wakeup_armed = true;
                    let backoff = act.settings.backoff;
                    ctx.run_later(backoff, |act, ctx| {
                        act.wakeup_armed = false;
                        act.run(ctx);
                    });
                } else if !failed {
                    act.run(ctx);
                }
            }),
        );
    }
}

impl Actor for ReplicaFetcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.run(ctx);
    }
}

impl Supervise for ReplicaFetcher {
    const KIND: ActorKind = ActorKind::ReplicaFetcher;

    fn name(&self) -> String {
        format!("from broker {}", self.leader)
    }
}

impl Supervised for ReplicaFetcher {
    fn restarting(&mut self, _: &mut Context<Self>) {
        // The round in flight is gone: every partition is truncated and fetched anew.
        self.running = false;
        for p in self.partitions.values_mut() {
            p.offset = None;
        }
    }
}

impl Handler<SetFollowed> for ReplicaFetcher {
    type Result = ();

    fn handle(&mut self, msg: SetFollowed, ctx: &mut Context<Self>) {
        if self
            .client
            .as_ref()
            .is_none_or(|c| c.address() != msg.address)
        {
            self.client = Some(PeerClient::new(
                &msg.address,
                &broker_client_id(&self.settings.cluster_id, self.settings.node.get()),
                4,
                Duration::from_millis(self.settings.wait_max_ms) + FETCH_TIMEOUT,
                self.settings.tls.clone(),
            ));
        }
        let mut partitions = BTreeMap::new();
        for followed in msg.partitions {
            let key = (followed.topic.clone(), followed.partition);
            let state = match self.partitions.remove(&key) {
                Some(state)
                    if state.followed.leader_epoch == followed.leader_epoch
                        && state.followed.replica == followed.replica =>
                {
                    state
                }
                _ => FetchState {
                    followed,
                    offset: None,
                    parked: false,
                    retry_at: None,
                },
            };
            partitions.insert(key, state);
        }
        self.partitions = partitions;
        if self.partitions.is_empty() {
            ctx.stop();
            return;
        }
        self.run(ctx);
    }
}

/// Beyond the long poll, how long a fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

enum Update {
    /// Fetch from here next.
    Offset(i64),
    /// Truncate to the leader again, after the backoff.
    Truncate,
    /// Left out until the backoff passes.
    Backoff,
    /// Left out until a newer image.
    Park,
}

impl Update {
    /// What a leader's refusal means: FENCED (an older epoch here) waits for a newer
    /// image, anything else for the backoff.
    fn after_refusal(e: &BrokerError) -> Update {
        match e {
            BrokerError::FencedLeaderEpoch(_) => Update::Park,
            _ => Update::Backoff,
        }
    }
}

struct Outcome {
    updates: Vec<(Key, LeaderEpoch, Update)>,
    /// The leader could not be reached: wait `replica.fetch.backoff.ms`.
    failed: bool,
}

/// One round, run off the actor.
struct Round {
    settings: FetcherSettings,
    leader: NodeId,
    client: PeerClient,
    partitions: Vec<(Key, FetchState)>,
}

impl Round {
    async fn run(mut self) -> Outcome {
        let mut updates = Vec::new();
        // Truncate first what is new in this epoch.
        let mut partitions = std::mem::take(&mut self.partitions);
        for (key, state) in &mut partitions {
            if state.offset.is_some() {
                continue;
            }
            let epoch = state.followed.leader_epoch;
            match self.truncate(state).await {
                Ok(offset) => {
                    state.offset = Some(offset);
                    updates.push((key.clone(), epoch, Update::Offset(offset)));
                }
                Err(e) => {
                    log::info!(
                        "follower of {}-{}: cannot truncate to broker {} yet: {e}",
                        key.0,
                        key.1,
                        self.leader
                    );
                    let update = Update::after_refusal(&e);
                    updates.push((key.clone(), epoch, update));
                }
            }
        }
        self.partitions = partitions;
        let ready: Vec<&(Key, FetchState)> = self
            .partitions
            .iter()
            .filter(|(_, s)| s.offset.is_some())
            .collect();
        if ready.is_empty() {
            return Outcome {
                updates,
                failed: false,
            };
        }
        let answer = match self
            .client
            .call(&self.fetch_request(&ready), FETCH_VERSION)
            .await
        {
            Ok(answer) => answer,
            Err(e) => {
                log::info!("fetching from broker {}: {e}", self.leader);
                return Outcome {
                    updates,
                    failed: true,
                };
            }
        };
        updates.extend(self.apply(&ready, answer).await);
        Outcome {
            updates,
            failed: false,
        }
    }

    /// Asks the leader where this replica's latest epoch ends and truncates it
    /// there; answers the log end offset to fetch from.
    async fn truncate(&self, state: &FetchState) -> BrokerResult<i64> {
        let f = &state.followed;
        let position = f
            .replica
            .send(GetFollowerPosition(f.leader_epoch))
            .await
            .map_err(|e| BrokerError::Unavailable(format!("the replica: {e}")))??;
        let Some(latest) = position.latest_epoch else {
            return Ok(position.log_end_offset);
        };
        let request = OffsetForLeaderEpochRequest::default()
            .with_replica_id(BrokerId(self.settings.node.get()))
            .with_topics(vec![OffsetForLeaderTopic::default()
                .with_topic(topic_name(&f.topic))
                .with_partitions(vec![OffsetForLeaderPartition::default()
                    .with_partition(f.partition)
                    .with_current_leader_epoch(f.leader_epoch.get())
                    .with_leader_epoch(latest)])]);
        let answer = self
            .client
            .call(&request, OFFSET_FOR_LEADER_EPOCH_VERSION)
            .await
            .map_err(|e| BrokerError::Unavailable(e.to_string()))?;
        let p = answer
            .topics
            .first()
            .and_then(|t| t.partitions.first())
            .ok_or_else(|| BrokerError::Internal("an answer without the partition".into()))?;
        leader_code(p.error_code)?;
        let leader_end = (p.leader_epoch >= 0 && p.end_offset >= 0).then_some(EpochEndOffset {
            epoch: p.leader_epoch,
            end_offset: p.end_offset,
        });
        f.replica
            .send(TruncateToLeader {
                leader_epoch: f.leader_epoch,
                leader_end,
            })
            .await
            .map_err(|e| BrokerError::Unavailable(format!("the replica: {e}")))?
    }

    fn fetch_request(&self, ready: &[&(Key, FetchState)]) -> FetchRequest {
        let mut topics: BTreeMap<&str, Vec<FetchPartition>> = BTreeMap::new();
        for ((topic, partition), state) in ready.iter().map(|r| (&r.0, &r.1)) {
            topics.entry(topic).or_default().push(
                FetchPartition::default()
                    .with_partition(*partition)
                    .with_fetch_offset(state.offset.unwrap_or(0))
                    .with_current_leader_epoch(state.followed.leader_epoch.get())
                    .with_partition_max_bytes(clamp(self.settings.max_bytes)),
            );
        }
        FetchRequest::default()
            .with_replica_id(BrokerId(self.settings.node.get()))
            .with_max_wait_ms(clamp(self.settings.wait_max_ms as usize))
            .with_min_bytes(1)
            .with_max_bytes(clamp(self.settings.response_max_bytes))
            .with_topics(
                topics
                    .into_iter()
                    .map(|(t, ps)| {
                        FetchTopic::default()
                            .with_topic(topic_name(t))
                            .with_partitions(ps)
                    })
                    .collect(),
            )
    }

    /// Hands each partition's batches to its replica, in parallel; answers the
    /// updates.
    async fn apply(
        &self,
        ready: &[&(Key, FetchState)],
        answer: FetchResponse,
    ) -> Vec<(Key, LeaderEpoch, Update)> {
        let mut appends = Vec::new();
        let mut updates = Vec::new();
        for topic in answer.responses {
            for p in topic.partitions {
                let key = (topic.topic.0.to_string(), p.partition_index);
                let Some((_, state)) = ready.iter().find(|r| r.0 == key).map(|r| (&r.0, &r.1))
                else {
                    continue;
                };
                let epoch = state.followed.leader_epoch;
                if p.error_code == OFFSET_OUT_OF_RANGE {
                    let fetched_from = state.offset.unwrap_or(0);
                    if p.log_start_offset > fetched_from {
                        // The leader's log now starts past everything this one holds
                        // (its retention moved on): start again at its log start.
                        let replica = state.followed.replica.clone();
                        let start = StartAtLeader {
                            leader_epoch: epoch,
                            log_start_offset: p.log_start_offset,
                        };
                        let update = match replica.send(start).await {
                            Ok(Ok(end)) => Update::Offset(end),
                            _ => Update::Backoff,
                        };
                        updates.push((key, epoch, update));
                        continue;
                    }
                    // The leader's log ends before this one (an unclean election, or
                    // a truncation it has not told): find where they agree again.
                    updates.push((key, epoch, Update::Truncate));
                    continue;
                }
                if let Err(e) = leader_code(p.error_code) {
                    log::debug!(
                        "follower of {}-{}: broker {} answered {e}",
                        key.0,
                        key.1,
                        self.leader
                    );
                    let update = Update::after_refusal(&e);
                    updates.push((key, epoch, update));
                    continue;
                }
                let records = p.records.unwrap_or_default();
                let replica = state.followed.replica.clone();
                let message = AppendAsFollower {
                    leader_epoch: epoch,
                    records,
                    leader_high_watermark: p.high_watermark,
                };
                appends.push(async move { (key, epoch, replica.send(message).await) });
            }
        }
        for (key, epoch, appended) in futures::future::join_all(appends).await {
            match appended {
                Ok(Ok(end)) => updates.push((key, epoch, Update::Offset(end))),
                Ok(Err(e)) => {
                    log::warn!("follower of {}-{}: {e}", key.0, key.1);
                    let update = match e {
                        BrokerError::FencedLeaderEpoch(_) => Update::Park,
                        _ => Update::Truncate,
                    };
                    updates.push((key, epoch, update));
                }
                Err(e) => {
                    log::warn!("follower of {}-{}: the replica: {e}", key.0, key.1);
                    updates.push((key, epoch, Update::Backoff));
                }
            }
        }
        updates
    }
}

/// A leader's answer code as an error: FENCED_LEADER_EPOCH (this broker's epoch is
/// older: wait for a newer image) or any other (the leader is behind on metadata,
/// restarting, out of space: retry after the backoff).
fn leader_code(code: i16) -> BrokerResult<()> {
    match code {
        0 => Ok(()),
        74 => Err(BrokerError::FencedLeaderEpoch(
            crate::ErrorKind::name_of_code(code),
        )),
        code => Err(BrokerError::Unavailable(crate::ErrorKind::name_of_code(
            code,
        ))),
    }
}

fn topic_name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_string()))
}

fn clamp(n: usize) -> i32 {
    n.min(i32::MAX as usize) as i32
}
