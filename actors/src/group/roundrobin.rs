//! Kafka's `roundrobin` assignor: all subscribed partitions, sorted, dealt one by one
//! to the sorted members in turn, skipping members not subscribed to the partition's
//! topic.

use std::collections::BTreeMap;

use super::{subscribed_partitions, Assignment, Subscription};

pub fn assign(partitions: &BTreeMap<String, i32>, members: &[Subscription]) -> Assignment {
    let mut out: Assignment = members
        .iter()
        .map(|m| (m.member_id.clone(), Vec::new()))
        .collect();
    let mut sorted: Vec<&Subscription> = members.iter().collect();
    sorted.sort_by(|a, b| a.member_id.cmp(&b.member_id));
    if sorted.is_empty() {
        return out;
    }
    let mut next = 0usize;
    for tp in subscribed_partitions(partitions, members) {
        for step in 0..sorted.len() {
            let member = sorted[(next + step) % sorted.len()];
            if member.topics.contains(&tp.topic) {
                if let Some(list) = out.get_mut(&member.member_id) {
                    list.push(tp.clone());
                }
                next = (next + step + 1) % sorted.len();
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::tests::members;

    #[test]
    fn deals_partitions_in_turn_across_topics() {
        let partitions = BTreeMap::from([("a".to_string(), 2), ("b".to_string(), 2)]);
        let a = assign(&partitions, &members(2, &["a", "b"]));
        let names = |m: &str| {
            a[m].iter()
                .map(|tp| format!("{}{}", tp.topic, tp.partition))
                .collect::<Vec<_>>()
        };
        assert_eq!(names("m0"), vec!["a0", "b0"]);
        assert_eq!(names("m1"), vec!["a1", "b1"]);
    }
}
