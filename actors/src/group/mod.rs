//! Consumer groups: one [`GroupCoordinator`] actor per group (membership,
//! rebalances, committed offsets), the [`GroupManager`] that starts and finds them,
//! the partition assignors a rebalance runs — Kafka's `range`, `roundrobin` and
//! `sticky` — and the records that keep it all in `__consumer_offsets`.

pub mod consumer_protocol;
pub mod coordinator;
pub mod manager;
pub mod membership;
pub mod messages;
pub mod offsets_topic;
pub mod range;
pub mod remote;
pub mod roundrobin;
pub mod sticky;

use std::collections::{BTreeMap, HashMap};

use actix::Addr;

pub use coordinator::GroupCoordinator;
pub use manager::GroupManager;
pub use membership::{GroupError, GroupState};
pub use messages::*;
pub use remote::CoordinatorRef;

use crate::error::{BrokerError, BrokerResult};
use crate::partition::{ListOffsets, OffsetSpec, PartitionReplica, ReadToLogEnd};
use offsets_topic::{GroupRecord, GroupSnapshot, OFFSETS_TOPIC};

/// Bytes read per fetch while replaying `__consumer_offsets`.
const REPLAY_FETCH_BYTES: usize = 1024 * 1024;

/// Replays `partition` of `__consumer_offsets` (its actor `store`) from its log start
/// to its high watermark into a snapshot per group.
pub(crate) async fn read_offsets_partition(
    store: &Addr<PartitionReplica>,
    partition: i32,
) -> BrokerResult<HashMap<String, GroupSnapshot>> {
    let mut groups: HashMap<String, GroupSnapshot> = HashMap::new();
    let mut offset = store
        .send(ListOffsets(OffsetSpec::Earliest))
        .await
        .map_err(BrokerError::mailbox)??
        .map_or(0, |(o, _)| o);
    loop {
        // To the log end, not the high watermark: a new leader's high watermark may
        // not cover the last commits it holds yet.
        let answer = store
            .send(ReadToLogEnd {
                offset,
                max_bytes: REPLAY_FETCH_BYTES,
            })
            .await
            .map_err(BrokerError::mailbox)?;
        let fetched = match answer {
            Ok(fetched) => fetched,
            // A damaged batch loses the commits in it, not the whole partition's
            // groups: replay goes on after it (the log has reported it).
            Err(e) => match &e {
                BrokerError::CorruptRecord { last_offset, .. } => {
                    log::error!("replaying group offsets, skipping what cannot be read: {e}");
                    offset = last_offset + 1;
                    continue;
                }
                _ => return Err(e),
            },
        };
        let records = fetched
            .data
            .records_from(offset)
            .map_err(|e| BrokerError::undecodable(OFFSETS_TOPIC, partition, offset, e))?;
        let next = fetched
            .data
            .batches()
            .last()
            .map_or(offset, |b| b.next_offset());
        for stored in &records {
            let record = GroupRecord::decode(stored).map_err(|e| {
                BrokerError::undecodable(OFFSETS_TOPIC, partition, stored.offset, e)
            })?;
            groups
                .entry(record.group().to_string())
                .or_default()
                .apply(&record);
        }
        if next <= offset || next >= fetched.data.log_end_offset {
            return Ok(groups);
        }
        offset = next;
    }
}

/// One partition of one topic; ordered by topic, then partition, as Kafka sorts them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: &str, partition: i32) -> Self {
        TopicPartition {
            topic: topic.to_string(),
            partition,
        }
    }
}

/// A member's subscription, and what it owned before this rebalance (for `sticky`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub member_id: String,
    pub topics: Vec<String>,
    pub owned: Vec<TopicPartition>,
}

/// member id → its partitions, sorted. Every member appears, even with none.
pub type Assignment = BTreeMap<String, Vec<TopicPartition>>;

/// The assignment strategies a group can negotiate (Kafka's protocol names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assignor {
    Range,
    RoundRobin,
    Sticky,
}

impl Assignor {
    pub fn from_name(name: &str) -> Option<Assignor> {
        match name {
            "range" => Some(Assignor::Range),
            "roundrobin" => Some(Assignor::RoundRobin),
            "sticky" | "cooperative-sticky" => Some(Assignor::Sticky),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Assignor::Range => "range",
            Assignor::RoundRobin => "roundrobin",
            Assignor::Sticky => "sticky",
        }
    }

    /// Assigns the partitions of the subscribed topics (`partitions` gives each
    /// topic's count; unknown topics have none) to `members`.
    pub fn assign(
        self,
        partitions: &BTreeMap<String, i32>,
        members: &[Subscription],
    ) -> Assignment {
        let mut assignment = match self {
            Assignor::Range => range::assign(partitions, members),
            Assignor::RoundRobin => roundrobin::assign(partitions, members),
            Assignor::Sticky => sticky::assign(partitions, members),
        };
        for m in members {
            assignment.entry(m.member_id.clone()).or_default().sort();
        }
        assignment
    }
}

/// Every partition some member subscribes to, sorted.
pub(crate) fn subscribed_partitions(
    partitions: &BTreeMap<String, i32>,
    members: &[Subscription],
) -> Vec<TopicPartition> {
    let mut topics: Vec<&String> = members.iter().flat_map(|m| m.topics.iter()).collect();
    topics.sort();
    topics.dedup();
    topics
        .into_iter()
        .flat_map(|t| {
            (0..partitions.get(t).copied().unwrap_or(0)).map(move |p| TopicPartition::new(t, p))
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A batch of `__consumer_offsets` that fails its CRC loses only the commits in
    /// it: the replay goes on after it instead of failing every group of the partition.
    #[actix_rt::test]
    async fn replay_skips_a_damaged_batch_and_loads_the_rest() {
        use crate::group::offsets_topic::CommittedOffset;
        use crate::partition::PartitionLimits;
        use crate::storage::{Log, LogConfig};
        use crate::topic_config::PartitionConfig;
        use actix::Actor;

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("__consumer_offsets-0");
        let mut log = Log::open(&path, LogConfig::default()).unwrap();
        let mut ends = Vec::new();
        for group in ["a", "b", "c"] {
            let commit = offsets_topic::GroupRecord::Offset {
                group: group.into(),
                partition: TopicPartition::new("t", 0),
                value: Some(CommittedOffset {
                    offset: 7,
                    leader_epoch: crate::ids::LeaderEpoch::FIRST,
                    metadata: String::new(),
                    commit_timestamp_ms: 1,
                }),
            };
            log.append_records(&[commit.encode(1)], 0).unwrap();
            ends.push(log.size_bytes() as usize);
        }
        log.close().unwrap();
        // A bit inside the second batch (group "b"'s commit).
        let file = path.join("00000000000000000000.log");
        let mut bytes = std::fs::read(&file).unwrap();
        bytes[ends[1] - 3] ^= 0x10;
        std::fs::write(&file, &bytes).unwrap();

        let limits = PartitionLimits {
            mailbox_capacity: 16,
            max_waiting_fetches: 4,
            restart_policy: crate::supervision::RestartPolicy {
                max_restarts: 0,
                window: std::time::Duration::from_secs(60),
            },
            retention_check_interval: std::time::Duration::from_secs(3600),
            tail_buffer_chunks: 4,
            tail_chunk_max_bytes: 1 << 16,
            producer_id_expiration_ms: 86_400_000,
        };
        let store = PartitionReplica::new(
            "__consumer_offsets",
            0,
            path,
            PartitionConfig::default(),
            limits,
            crate::clock::Clock::system(),
        )
        .start();
        let groups = read_offsets_partition(&store, 0).await.unwrap();
        let mut loaded: Vec<&str> = groups.keys().map(String::as_str).collect();
        loaded.sort_unstable();
        assert_eq!(loaded, vec!["a", "c"]);
    }

    pub fn members(n: usize, topics: &[&str]) -> Vec<Subscription> {
        (0..n)
            .map(|i| Subscription {
                member_id: format!("m{i}"),
                topics: topics.iter().map(|t| t.to_string()).collect(),
                owned: vec![],
            })
            .collect()
    }

    /// Every subscribed partition exactly once, counts within one of each other.
    pub fn assert_complete_and_balanced(
        a: &Assignment,
        partitions: &BTreeMap<String, i32>,
        subs: &[Subscription],
    ) {
        let mut all: Vec<TopicPartition> = a.values().flatten().cloned().collect();
        all.sort();
        let expected = subscribed_partitions(partitions, subs);
        assert_eq!(all, expected, "disjoint and covering");
        let counts: Vec<usize> = a.values().map(Vec::len).collect();
        let (min, max) = (
            counts.iter().min().copied().unwrap_or(0),
            counts.iter().max().copied().unwrap_or(0),
        );
        assert!(max - min <= 1, "balanced: {counts:?}");
    }

    #[test]
    fn every_assignor_splits_six_partitions_over_three_members() {
        let partitions = BTreeMap::from([("t".to_string(), 6)]);
        let subs = members(3, &["t"]);
        for assignor in [Assignor::Range, Assignor::RoundRobin, Assignor::Sticky] {
            let a = assignor.assign(&partitions, &subs);
            assert_complete_and_balanced(&a, &partitions, &subs);
            assert!(
                a.values().all(|p| p.len() == 2),
                "{}: {a:?}",
                assignor.name()
            );
            // One leaves: the other two cover all six.
            let a = assignor.assign(&partitions, &subs[..2]);
            assert_complete_and_balanced(&a, &partitions, &subs[..2]);
            assert!(a.values().all(|p| p.len() == 3));
        }
        assert_eq!(
            Assignor::from_name("roundrobin"),
            Some(Assignor::RoundRobin)
        );
        assert_eq!(Assignor::from_name("nope"), None);
    }
}
