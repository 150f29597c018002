//! `TopicRoute`: where a topic's partitions are — each one's leader, and the
//! replicas on this broker — looked up in the published metadata image and replica
//! table: a read, no actor is asked. [`TopicRoute::leader`] decides local or remote
//! for the request layer: this broker's replica when it leads, else the leader
//! through [`Peers`] (the adapters never know which).

use std::sync::Arc;
use std::time::Duration;

use actix::Addr;

use super::remote::{At, Peers};
use crate::controller::records::NO_LEADER;
use crate::error::{BrokerError, BrokerResult};
use crate::ids::NodeId;
use crate::metadata::{MetadataImage, MetadataView};
use crate::partition::{
    Acks, Append, AppendResult, Fetch, FetchResult, ListOffsets, OffsetSpec, PartitionReplica,
    PartitionStatus,
};
use crate::replica_manager::{ReplicaView, TopicReplicas};
use crate::storage::RecordBatch;

/// How long a request waits for a partition's leadership to settle (a leader
/// being elected, or moving) before it is answered with a retriable error.
pub const LEADER_WAIT: Duration = Duration::from_secs(5);

/// What routing reads: the published metadata image and replica table. Held by the
/// request layer's [`super::Engine`] and by the actors that find partitions
/// themselves (the group manager, consumer instances) — none of them asks an actor.
#[derive(Clone)]
pub struct Routes {
    pub metadata: MetadataView,
    pub replicas: ReplicaView,
    pub peers: Arc<Peers>,
}

impl Routes {
    pub fn new(metadata: MetadataView, replicas: ReplicaView, peers: Arc<Peers>) -> Self {
        Routes {
            metadata,
            replicas,
            peers,
        }
    }

    /// Where `topic`'s partitions are.
    pub fn topic(&self, topic: &str) -> BrokerResult<TopicRoute> {
        TopicRoute::lookup(self, topic)
    }

    /// `topic`-`partition`'s leader, waiting up to [`LEADER_WAIT`] for it to have
    /// one this broker can reach.
    pub async fn leader(&self, topic: &str, partition: i32) -> BrokerResult<Leader> {
        self.settled(topic, partition, |route| route.leader(partition))
            .await
    }

    /// Runs `attempt` on partition `partition`'s leader, as `route` (the request's
    /// own lookup) has it; while the leadership is moving (no leader, the one asked
    /// says it leads no more, or it cannot be connected to — a broker killed and not
    /// yet fenced), waits for the metadata to change, looks the leader up again and
    /// retries, up to [`LEADER_WAIT`]. `attempt` must fail with `NotLeader` or
    /// `LeaderUnreachable` only when it did nothing.
    pub async fn on_leader<T, F, Fut>(
        &self,
        route: &TopicRoute,
        partition: i32,
        attempt: F,
    ) -> BrokerResult<T>
    where
        F: Fn(Leader) -> Fut,
        Fut: std::future::Future<Output = BrokerResult<T>>,
    {
        let deadline = tokio::time::Instant::now() + LEADER_WAIT;
        let mut view = self.metadata.clone();
        // The request's route first: a lookup per batch would cost every produce.
        let mut known = Some(route.leader(partition));
        loop {
            let seen = view.image().metadata_offset;
            let leader = match known.take() {
                Some(Ok(leader)) => leader,
                Some(Err(BrokerError::NotLeader { .. })) | None => {
                    self.leader(&route.name, partition).await?
                }
                Some(Err(e)) => return Err(e),
            };
            match attempt(leader).await {
                Err(BrokerError::NotLeader { .. } | BrokerError::LeaderUnreachable { .. })
                    if tokio::time::Instant::now() < deadline =>
                {
                    wait_for_newer(&mut view, seen, deadline).await;
                }
                answer => return answer,
            }
        }
    }

    /// `find` on the current route, waiting for the image to change while it
    /// answers a leadership in motion.
    async fn settled<T>(
        &self,
        topic: &str,
        partition: i32,
        find: impl Fn(&TopicRoute) -> BrokerResult<T>,
    ) -> BrokerResult<T> {
        let deadline = tokio::time::Instant::now() + LEADER_WAIT;
        let mut view = self.metadata.clone();
        loop {
            let seen = view.image().metadata_offset;
            let found = self.topic(topic).and_then(|route| find(&route));
            match found {
                Err(e) if leadership_moving(&e) && tokio::time::Instant::now() < deadline => {
                    wait_for_newer(&mut view, seen, deadline).await;
                }
                Err(BrokerError::NotLeader { leader: None, .. }) => {
                    return Err(BrokerError::PartitionOffline {
                        topic: topic.to_string(),
                        partition,
                        reason: format!(
                            "it has had no leader for {} ms: every broker holding one of its replicas is fenced or stopped",
                            LEADER_WAIT.as_millis()
                        ),
                    })
                }
                found => return found,
            }
        }
    }
}

/// An error that a later image may cure: no leader yet, or another one.
fn leadership_moving(e: &BrokerError) -> bool {
    matches!(e, BrokerError::NotLeader { .. })
}

/// Waits until the image is newer than `seen` (or `deadline`).
async fn wait_for_newer(view: &mut MetadataView, seen: u64, deadline: tokio::time::Instant) {
    let _ = tokio::time::timeout_at(deadline, async {
        while view.image().metadata_offset <= seen {
            if !view.changed().await {
                return;
            }
        }
    })
    .await;
}

/// A partition's leader, as a request reaches it: this broker's replica, or
/// another broker over the Kafka protocol.
#[derive(Clone)]
pub enum Leader {
    Local(Addr<PartitionReplica>),
    Remote(RemoteLeader),
}

/// A partition led by broker `node`, reached through `peers`.
#[derive(Clone)]
pub struct RemoteLeader {
    pub node: NodeId,
    pub topic: String,
    pub partition: i32,
    image: Arc<MetadataImage>,
    peers: Arc<Peers>,
}

impl RemoteLeader {
    fn at(&self) -> At<'_> {
        At {
            image: &self.image,
            node: self.node,
            topic: &self.topic,
            partition: self.partition,
        }
    }
}

impl Leader {
    /// Appends `batch`. A local append is queued at the partition before this
    /// returns.
    pub fn append(
        &self,
        batch: RecordBatch,
        acks: Acks,
    ) -> impl std::future::Future<Output = BrokerResult<AppendResult>> + 'static {
        let queued = match self {
            Leader::Local(addr) => Ok(addr.send(Append {
                batch: batch.clone(),
                acks,
            })),
            Leader::Remote(remote) => Err(remote.clone()),
        };
        async move {
            match queued {
                Ok(queued) => queued.await.map_err(BrokerError::mailbox)?,
                Err(remote) => remote.peers.append(&remote.at(), &batch, acks).await,
            }
        }
    }

    pub async fn fetch(&self, fetch: Fetch) -> BrokerResult<FetchResult> {
        match self {
            Leader::Local(addr) => addr.send(fetch).await.map_err(BrokerError::mailbox)?,
            Leader::Remote(remote) => remote.peers.fetch(&remote.at(), &fetch).await,
        }
    }

    pub async fn list_offsets(&self, spec: OffsetSpec) -> BrokerResult<Option<(i64, Option<i64>)>> {
        match self {
            Leader::Local(addr) => addr
                .send(ListOffsets(spec))
                .await
                .map_err(BrokerError::mailbox)?,
            Leader::Remote(remote) => remote.peers.list_offsets(&remote.at(), spec).await,
        }
    }
}

#[derive(Clone)]
pub struct TopicRoute {
    pub name: String,
    /// This broker's replicas, by partition number (`None`: hosted elsewhere).
    pub partitions: TopicReplicas,
    /// Each partition's leader, by partition number (`NO_LEADER`: offline).
    pub leaders: Arc<[NodeId]>,
    image: Arc<MetadataImage>,
    peers: Arc<Peers>,
    pub internal: bool,
    /// Being deleted: takes no more writes.
    pub deleting: bool,
    /// The topic's effective `max.message.bytes`.
    pub max_message_bytes: usize,
}

impl TopicRoute {
    pub fn lookup(routes: &Routes, name: &str) -> BrokerResult<TopicRoute> {
        let image = routes.metadata.image();
        let topic = image.topic(name)?;
        let count = topic.partitions.len();
        // The table is published before the image, so a partition this node hosts in
        // the image has its replica — unless the topic is being deleted and they are
        // already stopping.
        let hosted = |p: &crate::metadata::PartitionImage| p.replicas.contains(&image.node_id);
        let local = routes.replicas.topic(name);
        let mut partitions = Vec::with_capacity(count);
        for (i, p) in topic.partitions.iter().enumerate() {
            let addr = local.as_ref().and_then(|l| l.get(i).cloned().flatten());
            if addr.is_none() && hosted(p) {
                if topic.deleting {
                    return Err(BrokerError::UnknownTopic(name.to_string()));
                }
                return Err(BrokerError::Unavailable(format!(
                    "the partitions of topic '{name}' are not started yet"
                )));
            }
            partitions.push(addr);
        }
        Ok(TopicRoute {
            name: name.to_string(),
            partitions: Arc::from(partitions),
            leaders: topic.partitions.iter().map(|p| p.leader).collect(),
            internal: topic.internal,
            deleting: topic.deleting,
            max_message_bytes: topic.max_message_bytes,
            image: image.clone(),
            peers: routes.peers.clone(),
        })
    }

    /// How many partitions the topic has.
    pub fn partition_count(&self) -> usize {
        self.leaders.len()
    }

    fn check(&self, p: i32) -> BrokerResult<usize> {
        usize::try_from(p)
            .ok()
            .filter(|i| *i < self.leaders.len())
            .ok_or_else(|| BrokerError::UnknownPartition {
                topic: self.name.clone(),
                partition: p,
            })
    }

    /// This broker's replica of partition `p`, if it leads it — or if nobody does
    /// and it holds one (which answers that it is offline). Kafka's clients are
    /// answered NOT_LEADER_OR_FOLLOWER otherwise, and ask the leader themselves.
    pub fn partition(&self, p: i32) -> BrokerResult<&Addr<PartitionReplica>> {
        let i = self.check(p)?;
        let leader = self.leaders[i];
        match &self.partitions[i] {
            Some(addr) if leader == self.image.node_id || leader == NO_LEADER => Ok(addr),
            None if leader == NO_LEADER => Err(BrokerError::PartitionOffline {
                topic: self.name.clone(),
                partition: p,
                reason: "no broker holding one of its replicas is alive".into(),
            }),
            _ => Err(BrokerError::NotLeader {
                topic: self.name.clone(),
                partition: p,
                leader: Some(leader),
            }),
        }
    }

    /// Partition `p`'s leader, local or remote. No leader is `NotLeader` (the
    /// request layer waits for one a bounded time) unless this broker holds an
    /// offline replica, which answers why.
    pub fn leader(&self, p: i32) -> BrokerResult<Leader> {
        let i = self.check(p)?;
        let leader = self.leaders[i];
        if leader == self.image.node_id || (leader == NO_LEADER && self.partitions[i].is_some()) {
            return self.partition(p).cloned().map(Leader::Local);
        }
        if leader == NO_LEADER {
            return Err(BrokerError::NotLeader {
                topic: self.name.clone(),
                partition: p,
                leader: None,
            });
        }
        Ok(Leader::Remote(RemoteLeader {
            node: leader,
            topic: self.name.clone(),
            partition: p,
            image: self.image.clone(),
            peers: self.peers.clone(),
        }))
    }

    /// A status for partition `p` as seen from here, led elsewhere: `bounds` is the
    /// leader's `[log start, high watermark]` (`None`: no leader, offline).
    pub fn remote_status(&self, p: i32, bounds: Option<(i64, i64)>) -> PartitionStatus {
        let partition = self
            .image
            .topics
            .get(&self.name)
            .and_then(|t| t.partitions.get(p as usize));
        let (start, end) = bounds.unwrap_or((0, 0));
        PartitionStatus {
            topic: self.name.clone(),
            partition: p,
            online: bounds.is_some(),
            offline_reason: bounds.is_none().then(|| {
                "no leader: every broker holding one of its replicas is fenced or stopped".into()
            }),
            leader_epoch: partition.map(|p| p.leader_epoch).unwrap_or_default(),
            log_start_offset: start,
            log_end_offset: end,
            high_watermark: end,
            ..PartitionStatus::default()
        }
    }

    /// Refuses an `acks=all` write to partition `p` (led here) while its ISR is
    /// smaller than the topic's `min.insync.replicas` — before anything is appended,
    /// as Kafka's leader does.
    pub fn check_min_insync(&self, p: i32, acks: Acks) -> BrokerResult<()> {
        if acks != Acks::All {
            return Ok(());
        }
        let Some(topic) = self.image.topics.get(&self.name) else {
            return Ok(());
        };
        let Some(partition) = usize::try_from(p)
            .ok()
            .and_then(|i| topic.partitions.get(i))
        else {
            return Ok(());
        };
        let in_sync = partition.isr.len();
        if in_sync < topic.min_insync_replicas {
            return Err(BrokerError::NotEnoughReplicas {
                topic: self.name.clone(),
                partition: p,
                in_sync,
                min_insync: topic.min_insync_replicas,
            });
        }
        Ok(())
    }

    /// The replicas this broker holds.
    pub fn local(&self) -> impl Iterator<Item = &Addr<PartitionReplica>> {
        self.partitions.iter().flatten()
    }
}
