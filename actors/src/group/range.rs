//! Kafka's `range` assignor: per topic, the sorted members subscribed to it each take
//! a contiguous range of partitions; the first `partitions % members` take one more.

use std::collections::BTreeMap;

use super::{Assignment, Subscription, TopicPartition};

pub fn assign(partitions: &BTreeMap<String, i32>, members: &[Subscription]) -> Assignment {
    let mut out: Assignment = members
        .iter()
        .map(|m| (m.member_id.clone(), Vec::new()))
        .collect();
    for (topic, &count) in partitions {
        let mut consumers: Vec<&str> = members
            .iter()
            .filter(|m| m.topics.iter().any(|t| t == topic))
            .map(|m| m.member_id.as_str())
            .collect();
        consumers.sort_unstable();
        if consumers.is_empty() {
            continue;
        }
        let n = consumers.len() as i32;
        let (per, extra) = (count / n, count % n);
        for (i, member) in consumers.iter().enumerate() {
            let i = i as i32;
            let start = per * i + i.min(extra);
            let len = per + i32::from(i < extra);
            if let Some(list) = out.get_mut(*member) {
                list.extend((start..start + len).map(|p| TopicPartition::new(topic, p)));
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
    fn ranges_are_contiguous_and_the_first_members_take_the_remainder() {
        let partitions = BTreeMap::from([("t".to_string(), 7)]);
        let a = assign(&partitions, &members(3, &["t"]));
        let ps = |m: &str| a[m].iter().map(|tp| tp.partition).collect::<Vec<_>>();
        assert_eq!(
            (ps("m0"), ps("m1"), ps("m2")),
            (vec![0, 1, 2], vec![3, 4], vec![5, 6])
        );
    }
}
