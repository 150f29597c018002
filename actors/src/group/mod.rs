//! Consumer groups. So far: the partition assignors a group's leader (or the broker)
//! runs when a group rebalances — Kafka's `range`, `roundrobin` and `sticky`. The
//! GroupCoordinator actor and the `__consumer_offsets` store build on these
//! (issue 5, in progress).

pub mod membership;
pub mod offsets_topic;
pub mod range;
pub mod roundrobin;
pub mod sticky;

use std::collections::BTreeMap;

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
