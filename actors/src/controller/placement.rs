//! Where a partition's replicas go and who leads it — the controller's choices, as
//! Kafka makes them, as pure functions of the brokers and the partition.
//!
//! Placement is Kafka's rack-unaware assignment: partition `i`'s first replica is
//! broker `(start + i) mod n` of the sorted active brokers, the others follow at a
//! shift that changes every `n` partitions, so replicas and leaderships spread evenly
//! and no broker holds two replicas of one partition. A replication factor above the
//! number of active brokers is refused, never lowered.
//!
//! A leader is chosen from the ISR among active brokers, the preferred replica (the
//! first of the replicas) first; with none, the partition is offline (`NO_LEADER`),
//! unless unclean election is allowed, when any active replica may lead.

use crate::error::{BrokerError, BrokerResult};
use crate::ids::NodeId;

use super::records::NO_LEADER;

/// Replicas of `partitions` new partitions, numbered from `first_partition`, over
/// `brokers` (the active ones), starting at `start` (the controller varies it so that
/// topics do not all start on the same broker).
pub fn place(
    brokers: &[NodeId],
    partitions: i32,
    first_partition: i32,
    replication_factor: i16,
    start: usize,
) -> BrokerResult<Vec<Vec<NodeId>>> {
    let mut brokers = brokers.to_vec();
    brokers.sort();
    brokers.dedup();
    let n = brokers.len();
    let factor = usize::try_from(replication_factor).unwrap_or(0);
    if factor == 0 || factor > n {
        return Err(BrokerError::InvalidReplicationFactor {
            requested: i32::from(replication_factor),
            available: n as i32,
        });
    }
    let mut shift = start / n.max(1);
    let assignments = (0..partitions.max(0) as usize)
        .map(|p| {
            let i = p + first_partition.max(0) as usize;
            if i > 0 && i.is_multiple_of(n) {
                shift += 1;
            }
            let first = (i + start) % n;
            let mut replicas = vec![brokers[first]];
            for j in 0..factor - 1 {
                // Kafka's replicaIndex: never `first` again, as n - 1 slots remain.
                let index = (first + 1 + (shift + j) % (n - 1)) % n;
                replicas.push(brokers[index]);
            }
            replicas
        })
        .collect();
    Ok(assignments)
}

/// The leader for a partition with `replicas` and `isr`, given which brokers are
/// active: the first replica, in preference order, that is in the ISR and active;
/// with `unclean`, else the first active replica; else none.
pub fn elect_leader(
    replicas: &[NodeId],
    isr: &[NodeId],
    active: &dyn Fn(NodeId) -> bool,
    unclean: bool,
) -> NodeId {
    replicas
        .iter()
        .copied()
        .find(|r| isr.contains(r) && active(*r))
        .or_else(|| {
            unclean
                .then(|| replicas.iter().copied().find(|r| active(*r)))
                .flatten()
        })
        .unwrap_or(NO_LEADER)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn ids(ns: &[i32]) -> Vec<NodeId> {
        ns.iter().map(|n| NodeId::new(*n)).collect()
    }

    #[test]
    fn three_brokers_six_partitions_spread_replicas_and_leaders() {
        let placed = place(&ids(&[3, 1, 2]), 6, 0, 3, 0).unwrap();
        let leaders: Vec<i32> = placed.iter().map(|r| r[0].get()).collect();
        assert_eq!(leaders, vec![1, 2, 3, 1, 2, 3]);
        for replicas in &placed {
            let mut sorted = replicas.clone();
            sorted.sort();
            assert_eq!(sorted, ids(&[1, 2, 3]));
        }
        // The shift changes after n partitions, so followers' order varies too.
        assert_ne!(placed[0], placed[3]);
    }

    #[test]
    fn a_factor_above_the_active_brokers_is_refused() {
        assert_eq!(
            place(&ids(&[1, 2]), 1, 0, 3, 0),
            Err(BrokerError::InvalidReplicationFactor {
                requested: 3,
                available: 2
            })
        );
        assert!(place(&ids(&[1]), 1, 0, 0, 0).is_err());
        assert!(place(&[], 1, 0, 1, 0).is_err());
    }

    #[test]
    fn the_preferred_in_sync_active_replica_leads() {
        let replicas = ids(&[2, 3, 1]);
        let all = |_: NodeId| true;
        assert_eq!(
            elect_leader(&replicas, &ids(&[1, 2, 3]), &all, false),
            NodeId::new(2)
        );
        let not_two = |n: NodeId| n.get() != 2;
        assert_eq!(
            elect_leader(&replicas, &ids(&[1, 2, 3]), &not_two, false),
            NodeId::new(3)
        );
        // 1 is active and a replica, but out of sync: clean election leaves it.
        let only_one = |n: NodeId| n.get() == 1;
        assert_eq!(
            elect_leader(&replicas, &ids(&[2, 3]), &only_one, false),
            NO_LEADER
        );
        assert_eq!(
            elect_leader(&replicas, &ids(&[2, 3]), &only_one, true),
            NodeId::new(1)
        );
    }

    proptest! {
        #[test]
        fn placement_never_repeats_a_broker_and_spreads_leaders(
            n in 1usize..7,
            partitions in 1i32..40,
            factor in 1i16..7,
            start in 0usize..20,
        ) {
            let brokers: Vec<NodeId> = (1..=n as i32).map(NodeId::new).collect();
            let placed = place(&brokers, partitions, 0, factor, start);
            if factor as usize > n {
                prop_assert!(placed.is_err());
                return Ok(());
            }
            let placed = placed.unwrap();
            prop_assert_eq!(placed.len(), partitions as usize);
            let mut leaders: BTreeMap<NodeId, usize> = BTreeMap::new();
            for replicas in &placed {
                prop_assert_eq!(replicas.len(), factor as usize);
                let mut distinct = replicas.clone();
                distinct.sort();
                distinct.dedup();
                prop_assert_eq!(distinct.len(), replicas.len());
                prop_assert!(replicas.iter().all(|r| brokers.contains(r)));
                *leaders.entry(replicas[0]).or_default() += 1;
            }
            // Leaderships differ by at most one between brokers.
            let most = leaders.values().max().copied().unwrap_or(0);
            let least = if leaders.len() < n.min(partitions as usize) { 0 } else {
                leaders.values().min().copied().unwrap_or(0)
            };
            prop_assert!(most - least <= 1, "{:?}", leaders);
        }
    }
}
