//! Kafka's `sticky` assignor, in its essentials: the assignment is balanced (counts
//! differ by at most one) and, within that, as many partitions as possible stay with
//! the member that owned them before the rebalance — so members unaffected by a join
//! or leave keep what they had.

use std::collections::{BTreeMap, BTreeSet};

use super::{subscribed_partitions, Assignment, Subscription, TopicPartition};

pub fn assign(partitions: &BTreeMap<String, i32>, members: &[Subscription]) -> Assignment {
    let mut out: Assignment = members
        .iter()
        .map(|m| (m.member_id.clone(), Vec::new()))
        .collect();
    if members.is_empty() {
        return out;
    }
    let mut sorted: Vec<&Subscription> = members.iter().collect();
    sorted.sort_by(|a, b| a.member_id.cmp(&b.member_id));
    let all = subscribed_partitions(partitions, members);
    let total = all.len();
    let floor = total / sorted.len();
    let mut ceil_slots = total % sorted.len();
    let valid: BTreeSet<&TopicPartition> = all.iter().collect();
    let mut taken: BTreeSet<TopicPartition> = BTreeSet::new();

    // 1. Keep what each member owned, up to its fair share.
    for m in &sorted {
        let mut keep: Vec<TopicPartition> = m
            .owned
            .iter()
            .filter(|tp| valid.contains(tp) && m.topics.contains(&tp.topic) && !taken.contains(*tp))
            .cloned()
            .collect();
        keep.sort();
        keep.dedup();
        let cap = if ceil_slots > 0 && keep.len() > floor {
            floor + 1
        } else {
            floor
        };
        keep.truncate(cap);
        if keep.len() > floor {
            ceil_slots -= 1;
        }
        taken.extend(keep.iter().cloned());
        if let Some(list) = out.get_mut(&m.member_id) {
            *list = keep;
        }
    }
    // 2. Hand out the rest, each to the eligible member with the fewest partitions
    //    (members still below their fair share first).
    for tp in all.iter().filter(|tp| !taken.contains(*tp)) {
        let best = sorted
            .iter()
            .filter(|m| m.topics.contains(&tp.topic))
            .map(|m| (out.get(&m.member_id).map_or(0, Vec::len), &m.member_id))
            .filter(|(n, _)| *n < floor || (*n == floor && ceil_slots > 0) || floor == 0 && *n == 0)
            .min()
            .or_else(|| {
                sorted
                    .iter()
                    .filter(|m| m.topics.contains(&tp.topic))
                    .map(|m| (out.get(&m.member_id).map_or(0, Vec::len), &m.member_id))
                    .min()
            });
        if let Some((n, member)) = best {
            if n == floor {
                ceil_slots = ceil_slots.saturating_sub(1);
            }
            let member = member.clone();
            if let Some(list) = out.get_mut(&member) {
                list.push(tp.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::tests::{assert_complete_and_balanced, members};

    fn with_owned(mut subs: Vec<Subscription>, a: &Assignment) -> Vec<Subscription> {
        for s in &mut subs {
            s.owned = a.get(&s.member_id).cloned().unwrap_or_default();
        }
        subs
    }

    #[test]
    fn unaffected_members_keep_their_partitions() {
        let partitions = BTreeMap::from([("t".to_string(), 6)]);
        let three = members(3, &["t"]);
        let first = assign(&partitions, &three);
        assert_complete_and_balanced(&first, &partitions, &three);
        // m1 leaves: m0 and m2 keep their two each and split m1's.
        let two: Vec<Subscription> = with_owned(three.clone(), &first)
            .into_iter()
            .filter(|m| m.member_id != "m1")
            .collect();
        let second = assign(&partitions, &two);
        assert_complete_and_balanced(&second, &partitions, &two);
        for m in ["m0", "m2"] {
            assert!(
                first[m].iter().all(|tp| second[m].contains(tp)),
                "{m} kept its partitions"
            );
        }
        // A fourth member joins six partitions over four: at most one partition moves
        // from each of the two members that had three.
        let mut four = with_owned(two, &second);
        four.extend(
            members(4, &["t"])
                .into_iter()
                .filter(|m| m.member_id == "m3" || m.member_id == "m1"),
        );
        let third = assign(&partitions, &four);
        assert_complete_and_balanced(&third, &partitions, &four);
        let moved: usize = ["m0", "m2"]
            .iter()
            .map(|m| {
                second[*m]
                    .iter()
                    .filter(|tp| !third[*m].contains(tp))
                    .count()
            })
            .sum();
        assert_eq!(moved, 2, "only what the newcomers need moves");
    }

    proptest::proptest! {
        #[test]
        fn always_complete_and_balanced(partitions in 0i32..40, n in 1usize..8, owned in proptest::collection::vec((0usize..8, 0i32..40), 0..60)) {
            let topics = BTreeMap::from([("t".to_string(), partitions)]);
            let mut subs = members(n, &["t"]);
            // Arbitrary, even overlapping or stale, previous ownership.
            for (m, p) in owned {
                subs[m % n].owned.push(TopicPartition::new("t", p));
            }
            let a = assign(&topics, &subs);
            assert_complete_and_balanced(&a, &topics, &subs);
        }
    }
}
