//! `ReplicaManager`: this broker's partition replicas, as Kafka's `ReplicaManager`. It
//! starts a supervised [`PartitionReplica`] per partition the metadata gives this
//! node, spread over a small pool of arbiters (threads), stops them when their topic
//! goes, and publishes the table of their addresses on a `tokio::sync::watch`, so that
//! finding a partition's actor is a read ([`ReplicaView`]) and never a message.
//!
//! It acts on the [`MetadataImage`]: [`ReplicaManager::apply`] starts every partition
//! the image gives this node that is not running yet and stops those of topics the
//! image no longer has (or is deleting) — the same call whoever published the image:
//! on one node the topic registry (`broker.rs`), in a cluster the replayed metadata
//! log, which will add leader and follower roles.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use actix::prelude::*;
use futures::future::join_all;
use tokio::sync::watch;

use crate::clock::Clock;
use crate::group::offsets_topic::OFFSETS_TOPIC;
use crate::ids::NodeId;
use crate::metadata::MetadataImage;
use crate::metadata::PartitionImage;
use crate::partition::{
    Assignment, PartitionLimits, PartitionReplica, ReplicationSettings, Role, SetRole, Stop,
    StopMode,
};
use crate::replica_fetcher::{FetcherSettings, Followed, ReplicaFetcher, SetFollowed};
use crate::topic_config::PartitionConfig;

/// The addresses of a topic's local replicas, by partition number.
/// A topic's replicas on this broker, by partition number: `None` where this broker
/// hosts no replica of the partition.
pub type TopicReplicas = Arc<[Option<Addr<PartitionReplica>>]>;

/// What is published: topic → its replicas.
#[derive(Default)]
pub struct ReplicaTable {
    topics: HashMap<String, TopicReplicas>,
}

/// A reader's handle on the published table.
#[derive(Clone)]
pub struct ReplicaView {
    rx: watch::Receiver<Arc<ReplicaTable>>,
}

impl ReplicaView {
    /// The topic's replicas on this broker, if it has any.
    pub fn topic(&self, name: &str) -> Option<TopicReplicas> {
        self.rx.borrow().topics.get(name).cloned()
    }

    /// Every local replica.
    pub fn all(&self) -> Vec<Addr<PartitionReplica>> {
        self.rx
            .borrow()
            .topics
            .values()
            .flat_map(|t| t.iter().flatten().cloned())
            .collect()
    }
}

pub struct ReplicaManager {
    arbiters: Vec<Arbiter>,
    next_arbiter: usize,
    limits: PartitionLimits,
    /// Handed to every partition.
    clock: Clock,
    /// Topic → partition number → its replica here.
    replicas: BTreeMap<String, BTreeMap<i32, Addr<PartitionReplica>>>,
    /// Topic → its partition count in the last image applied (the table's width).
    widths: BTreeMap<String, usize>,
    /// Each running replica's role and assignment, as last given.
    roles: BTreeMap<(String, i32), (Role, Assignment)>,
    tx: watch::Sender<Arc<ReplicaTable>>,
    /// Handed to every partition.
    replication: ReplicationSettings,
    /// How followers fetch (`None`: nothing is fetched, as in unit tests).
    fetching: Option<Fetching>,
    /// A fetcher per leader broker this broker follows partitions on.
    fetchers: HashMap<NodeId, Addr<ReplicaFetcher>>,
}

/// What the replica fetchers need: their settings and the listener they dial.
#[derive(Debug, Clone)]
pub struct Fetching {
    pub settings: FetcherSettings,
    /// `inter.broker.listener.name`.
    pub listener: String,
}

/// The replicas and ISR the metadata gives `partition`.
pub fn assignment_of(partition: &PartitionImage, min_insync: usize) -> Assignment {
    Assignment {
        replicas: partition.replicas.clone(),
        isr: partition.isr.clone(),
        partition_epoch: partition.partition_epoch,
        min_insync,
    }
}

/// The role the metadata gives `node`'s replica of `partition`. A node that may not
/// `lead` yet (a restarted one whose new registration is not in the metadata it has)
/// holds its leaderships as an offline follower: the metadata it replayed can be
/// older than leaderships the cluster has moved since (Kafka's brokers likewise
/// lead nothing until they have caught up with the metadata log).
pub fn role_of(partition: &PartitionImage, node: NodeId, lead: bool) -> Role {
    if partition.leader == node && !lead {
        Role::Follower {
            leader_epoch: partition.leader_epoch,
            leader_id: crate::controller::records::NO_LEADER,
        }
    } else if partition.leader == node {
        Role::Leader {
            leader_epoch: partition.leader_epoch,
        }
    } else {
        Role::Follower {
            leader_epoch: partition.leader_epoch,
            leader_id: partition.leader,
        }
    }
}

impl ReplicaManager {
    /// `threads` arbiters host the partitions, round-robin. Must run inside an actix
    /// system.
    pub fn new(
        threads: usize,
        limits: PartitionLimits,
        clock: Clock,
        replication: ReplicationSettings,
        fetching: Option<Fetching>,
    ) -> Self {
        let (tx, _) = watch::channel(Arc::new(ReplicaTable::default()));
        ReplicaManager {
            arbiters: (0..threads.max(1)).map(|_| Arbiter::new()).collect(),
            next_arbiter: 0,
            limits,
            clock,
            replicas: BTreeMap::new(),
            widths: BTreeMap::new(),
            roles: BTreeMap::new(),
            tx,
            replication,
            fetching,
            fetchers: HashMap::new(),
        }
    }

    pub fn view(&self) -> ReplicaView {
        ReplicaView {
            rx: self.tx.subscribe(),
        }
    }

    /// Brings the running replicas in line with `image` and publishes their table:
    /// starts the partitions this node hosts that are not running (`__consumer_offsets`
    /// first; each in the directory and with the config `placement` gives, or
    /// offline with the reason it gives; past
    /// `max_partitions` replicas, offline with `offline_reason`), and stops the
    /// replicas of topics the image no longer has or is deleting, answering them for
    /// the caller to close.
    pub fn apply(
        &mut self,
        image: &MetadataImage,
        placement: impl Fn(&str, i32) -> Result<(PathBuf, PartitionConfig), (PathBuf, String)>,
        max_partitions: usize,
        lead: bool,
        offline_reason: impl Fn() -> String,
    ) -> Vec<Addr<PartitionReplica>> {
        let gone: Vec<String> = self
            .replicas
            .keys()
            .filter(|t| image.topics.get(*t).is_none_or(|topic| topic.deleting))
            .cloned()
            .collect();
        let stopped = gone.iter().flat_map(|t| self.take_topic(t)).collect();
        let node = image.node_id;
        let mut topics: Vec<_> = image.topics.values().filter(|t| !t.deleting).collect();
        topics.sort_by_key(|t| t.name != OFFSETS_TOPIC);
        for topic in topics {
            self.widths
                .insert(topic.name.clone(), topic.partitions.len());
            for partition in &topic.partitions {
                let p = partition.partition.get();
                let key = (topic.name.clone(), p);
                let role = role_of(partition, node, lead);
                let assignment = assignment_of(partition, topic.min_insync_replicas);
                let running = self
                    .replicas
                    .get(&topic.name)
                    .and_then(|r| r.get(&p))
                    .cloned();
                match running {
                    None if partition.replicas.contains(&node) => {
                        let (dir, config, refused) = match placement(&topic.name, p) {
                            Ok((dir, config)) => (dir, config, None),
                            Err((dir, reason)) => (dir, PartitionConfig::default(), Some(reason)),
                        };
                        let offline = refused
                            .or_else(|| (self.count() >= max_partitions).then(&offline_reason));
                        self.start(&topic.name, p, dir, &config, offline, (role, assignment));
                    }
                    None => {}
                    // A running replica whose leader, epoch, replicas or ISR changed
                    // takes its new role. (One moved off this broker was taken out
                    // before, by `take_moved`.)
                    Some(addr) if self.roles.get(&key) != Some(&(role, assignment.clone())) => {
                        self.roles.insert(key, (role, assignment.clone()));
                        addr.do_send(SetRole { role, assignment });
                    }
                    Some(_) => {}
                }
            }
        }
        self.publish();
        self.update_fetchers(image);
        stopped
    }

    /// Tells each leader's fetcher what this broker follows there (starting
    /// fetchers for new leaders, stopping those with nothing left to fetch).
    fn update_fetchers(&mut self, image: &MetadataImage) {
        let Some(fetching) = self.fetching.clone() else {
            return;
        };
        let node = image.node_id;
        let mut followed: HashMap<NodeId, Vec<Followed>> = HashMap::new();
        for ((topic, partition), (role, _)) in &self.roles {
            let Role::Follower {
                leader_epoch,
                leader_id,
            } = *role
            else {
                continue;
            };
            if leader_id == crate::controller::records::NO_LEADER || leader_id == node {
                continue;
            }
            let Some(replica) = self.replicas.get(topic).and_then(|r| r.get(partition)) else {
                continue;
            };
            followed.entry(leader_id).or_default().push(Followed {
                topic: topic.clone(),
                partition: *partition,
                replica: replica.clone(),
                leader_epoch,
            });
        }
        let address = |leader: NodeId| {
            image.brokers.get(&leader).and_then(|b| {
                b.endpoints
                    .iter()
                    .find(|e| e.listener.eq_ignore_ascii_case(&fetching.listener))
                    .map(|e| format!("{}:{}", e.host, e.port))
            })
        };
        let gone: Vec<NodeId> = self
            .fetchers
            .keys()
            .filter(|l| !followed.contains_key(l) || address(**l).is_none())
            .copied()
            .collect();
        for leader in gone {
            if let Some(fetcher) = self.fetchers.remove(&leader) {
                fetcher.do_send(SetFollowed {
                    address: String::new(),
                    partitions: Vec::new(),
                });
            }
        }
        for (leader, partitions) in followed {
            let Some(address) = address(leader) else {
                log::debug!(
                    "broker {leader} has no {} listener registered yet",
                    fetching.listener
                );
                continue;
            };
            let fetcher = self.fetchers.entry(leader).or_insert_with(|| {
                log::info!("fetching from broker {leader} at {address}");
                ReplicaFetcher::new(fetching.settings.clone(), leader).start_supervised()
            });
            fetcher.do_send(SetFollowed {
                address,
                partitions,
            });
        }
    }

    /// Takes out of the table (and publishes it) the replicas of partitions the
    /// image no longer places on this broker (a reassignment moved them away), for
    /// the caller to close and delete.
    pub fn take_moved(
        &mut self,
        image: &MetadataImage,
    ) -> Vec<(String, i32, Addr<PartitionReplica>)> {
        let node = image.node_id;
        let mut moved = Vec::new();
        for (name, replicas) in &mut self.replicas {
            let Some(topic) = image.topics.get(name).filter(|t| !t.deleting) else {
                continue;
            };
            let gone: Vec<i32> = replicas
                .keys()
                .copied()
                .filter(|p| {
                    topic
                        .partitions
                        .get(*p as usize)
                        .is_some_and(|partition| !partition.replicas.contains(&node))
                })
                .collect();
            for p in gone {
                if let Some(addr) = replicas.remove(&p) {
                    self.roles.remove(&(name.clone(), p));
                    moved.push((name.clone(), p, addr));
                }
            }
        }
        if !moved.is_empty() {
            self.publish();
        }
        moved
    }

    /// Starts `topic`-`partition`, opening its log in `dir`, or offline with
    /// `offline` as the reason.
    fn start(
        &mut self,
        topic: &str,
        partition: i32,
        dir: PathBuf,
        config: &PartitionConfig,
        offline: Option<String>,
        (role, assignment): (Role, Assignment),
    ) {
        let mut replica = PartitionReplica::new(
            topic,
            partition,
            dir,
            config.clone(),
            self.limits,
            self.clock.clone(),
        )
        .with_role(role)
        .with_replication(self.replication.clone(), assignment.clone());
        self.roles
            .insert((topic.to_string(), partition), (role, assignment));
        if let Some(reason) = offline {
            replica = replica.offline(reason);
        }
        let arbiter = &self.arbiters[self.next_arbiter % self.arbiters.len()];
        self.next_arbiter += 1;
        let addr = replica.start_supervised(&arbiter.handle());
        self.replicas
            .entry(topic.to_string())
            .or_default()
            .insert(partition, addr);
    }

    /// Makes the current replicas visible to every [`ReplicaView`].
    fn publish(&self) {
        let topics = self
            .replicas
            .iter()
            .map(|(name, addrs)| {
                let width = self.widths.get(name).copied().unwrap_or(0);
                let width = width.max(addrs.keys().last().map_or(0, |p| *p as usize + 1));
                let row: Vec<Option<Addr<PartitionReplica>>> = (0..width)
                    .map(|p| addrs.get(&(p as i32)).cloned())
                    .collect();
                (name.clone(), Arc::from(row))
            })
            .collect();
        self.tx.send_replace(Arc::new(ReplicaTable { topics }));
    }

    /// Takes `topic`'s replicas out of the table (and publishes it), for the caller
    /// to close: its topic was deleted, or is being created again.
    pub fn remove_topic(&mut self, topic: &str) -> Vec<Addr<PartitionReplica>> {
        let removed = self.take_topic(topic);
        self.publish();
        removed
    }

    fn take_topic(&mut self, topic: &str) -> Vec<Addr<PartitionReplica>> {
        self.roles.retain(|(t, _), _| t != topic);
        self.widths.remove(topic);
        self.replicas
            .remove(topic)
            .map(|r| r.into_values().collect())
            .unwrap_or_default()
    }

    /// The topic's replicas on this broker (empty when it has none here).
    pub fn topic(&self, name: &str) -> Vec<Addr<PartitionReplica>> {
        self.replicas
            .get(name)
            .map(|r| r.values().cloned().collect())
            .unwrap_or_default()
    }

    pub fn all(&self) -> Vec<Addr<PartitionReplica>> {
        self.replicas
            .values()
            .flat_map(|r| r.values().cloned())
            .collect()
    }

    pub fn count(&self) -> usize {
        self.replicas.values().map(BTreeMap::len).sum()
    }

    /// Stops the arbiters (the broker is stopping).
    pub fn stop_arbiters(&self) {
        for arbiter in &self.arbiters {
            arbiter.stop();
        }
    }
}

/// Closes `partitions` cleanly (flush, trim indexes, checkpoint), logging failures.
pub async fn close_all(partitions: Vec<Addr<PartitionReplica>>, why: &str) {
    for result in join_all(partitions.iter().map(|p| p.send(Stop(StopMode::Close)))).await {
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => log::warn!("closing a partition ({why}): {e}"),
            Err(e) => log::warn!("closing a partition ({why}): {e}"),
        }
    }
}
