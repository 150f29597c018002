//! Kafka's consumer protocol: what a consumer group's members put in the group APIs'
//! opaque bytes — each member's subscription (JoinGroup's protocol metadata,
//! DescribeGroups' member metadata) and each member's assignment (SyncGroup,
//! DescribeGroups) — translated to and from the engine's group model, which keeps
//! topics and partitions, not bytes. Bodies are the `kafka-protocol` crate's
//! (`ConsumerProtocolSubscription`, `ConsumerProtocolAssignment`); this file adds the
//! version in front, as Kafka's `ConsumerProtocol` does.
//!
//! Encoding the engine's view (rather than echoing a member's bytes) is what lets a
//! Kafka leader assign partitions to REST and WebSocket members, whose in-broker
//! instances never wrote any. What is lost: `user_data` (an assignor's private notes;
//! sticky assignors fall back to the owned partitions, which are kept) and the rack.
//!
//! ```text
//! Subscription (versions 0-3; a newer one is read as 3: Kafka only appends fields)
//!   version        int16
//!   topics         [string]
//!   user_data      bytes, nullable
//!   owned          [topic string, [int32 partition]]   v1+
//!   generation_id  int32                                v2+
//!   rack_id        string, nullable                     v3+
//!
//! Assignment (versions 0-3, all alike)
//!   version        int16
//!   assigned       [topic string, [int32 partition]]
//!   user_data      bytes, nullable
//! ```

use std::collections::BTreeMap;

use super::TopicPartition;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    consumer_protocol_assignment, consumer_protocol_subscription, ConsumerProtocolAssignment,
    ConsumerProtocolSubscription, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, Message, StrBytes};

/// The version written: the first with owned partitions, which cooperative and sticky
/// assignors read.
const SUBSCRIPTION_VERSION: i16 = 1;
/// Assignment versions differ in name only; 1 is what clients since Kafka 2.4 write.
const ASSIGNMENT_VERSION: i16 = 1;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a consumer protocol {what}: {reason}")]
pub struct ConsumerProtocolError {
    what: &'static str,
    reason: String,
}

/// A member's subscription, as far as the engine keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub topics: Vec<String>,
    /// What it owned going into this rebalance.
    pub owned: Vec<TopicPartition>,
}

pub fn decode_subscription(bytes: &Bytes) -> Result<Subscription, ConsumerProtocolError> {
    let s: ConsumerProtocolSubscription = decode(bytes, "subscription")?;
    let owned = flatten(s.owned_partitions.iter().map(|t| (&t.topic, &t.partitions)));
    Ok(Subscription {
        topics: s.topics.iter().map(|t| t.to_string()).collect(),
        owned,
    })
}

pub fn encode_subscription(topics: &[String], owned: &[TopicPartition]) -> Bytes {
    let owned = by_topic(owned)
        .into_iter()
        .map(|(topic, partitions)| {
            consumer_protocol_subscription::TopicPartition::default()
                .with_topic(topic)
                .with_partitions(partitions)
        })
        .collect();
    let subscription = ConsumerProtocolSubscription::default()
        .with_topics(
            topics
                .iter()
                .map(|t| StrBytes::from_string(t.clone()))
                .collect(),
        )
        .with_owned_partitions(owned);
    encode(&subscription, SUBSCRIPTION_VERSION)
}

/// A member's partitions from the assignment its leader wrote. Empty bytes are no
/// partitions (what Kafka hands a member its leader left out).
pub fn decode_assignment(bytes: &Bytes) -> Result<Vec<TopicPartition>, ConsumerProtocolError> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let a: ConsumerProtocolAssignment = decode(bytes, "assignment")?;
    let mut partitions = flatten(
        a.assigned_partitions
            .iter()
            .map(|t| (&t.topic, &t.partitions)),
    );
    partitions.sort();
    partitions.dedup();
    Ok(partitions)
}

pub fn encode_assignment(partitions: &[TopicPartition]) -> Bytes {
    let assigned = by_topic(partitions)
        .into_iter()
        .map(|(topic, partitions)| {
            consumer_protocol_assignment::TopicPartition::default()
                .with_topic(topic)
                .with_partitions(partitions)
        })
        .collect();
    let assignment = ConsumerProtocolAssignment::default().with_assigned_partitions(assigned);
    encode(&assignment, ASSIGNMENT_VERSION)
}

/// The partitions of the protocol's (topic, [partition]) lists, in their order.
fn flatten<'a>(topics: impl Iterator<Item = (&'a TopicName, &'a Vec<i32>)>) -> Vec<TopicPartition> {
    topics
        .flat_map(|(topic, partitions)| partitions.iter().map(|&p| TopicPartition::new(topic, p)))
        .collect()
}

/// Partitions grouped by topic, both sorted.
fn by_topic(partitions: &[TopicPartition]) -> BTreeMap<TopicName, Vec<i32>> {
    let mut topics: BTreeMap<TopicName, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        topics
            .entry(TopicName(StrBytes::from_string(tp.topic.clone())))
            .or_default()
            .push(tp.partition);
    }
    for partitions in topics.values_mut() {
        partitions.sort_unstable();
        partitions.dedup();
    }
    topics
}

/// Reads the version, then the body at that version (a newer one as the newest
/// known: later versions only append fields, which are left unread).
fn decode<T: Decodable + Message>(
    bytes: &Bytes,
    what: &'static str,
) -> Result<T, ConsumerProtocolError> {
    let failed = |reason: String| ConsumerProtocolError { what, reason };
    let mut buf = bytes.clone();
    if buf.remaining() < 2 {
        return Err(failed(format!("{} bytes", bytes.len())));
    }
    let version = buf.get_i16();
    if version < T::VERSIONS.min {
        return Err(failed(format!("version {version}")));
    }
    T::decode(&mut buf, version.min(T::VERSIONS.max)).map_err(|e| failed(e.to_string()))
}

fn encode<T: Encodable>(message: &T, version: i16) -> Bytes {
    let mut out = BytesMut::new();
    out.put_i16(version);
    // Only an invalid version or a field the version lacks fails, and both are fixed
    // here: a failure is a bug, answered with what was written so far.
    if let Err(e) = message.encode(&mut out, version) {
        log::error!("encoding consumer protocol v{version}: {e}");
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tps(list: &[(&str, i32)]) -> Vec<TopicPartition> {
        list.iter()
            .map(|&(t, p)| TopicPartition::new(t, p))
            .collect()
    }

    /// Bytes as a client of `version` writes them.
    fn client_subscription(version: i16, topics: &[&str], owned: &[(&str, &[i32])]) -> Bytes {
        let s = ConsumerProtocolSubscription::default()
            .with_topics(
                topics
                    .iter()
                    .map(|t| StrBytes::from(t.to_string()))
                    .collect(),
            )
            .with_user_data(Some(Bytes::from_static(b"assignor notes")))
            .with_owned_partitions(if version >= 1 {
                owned
                    .iter()
                    .map(|(t, ps)| {
                        consumer_protocol_subscription::TopicPartition::default()
                            .with_topic(TopicName(StrBytes::from(t.to_string())))
                            .with_partitions(ps.to_vec())
                    })
                    .collect()
            } else {
                Vec::new()
            })
            .with_generation_id(if version >= 2 { 7 } else { -1 })
            .with_rack_id((version >= 3).then(|| StrBytes::from_static_str("rack-a")));
        encode(&s, version)
    }

    #[test]
    fn subscriptions_of_every_version_give_topics_and_owned_partitions() {
        for version in 0..=3 {
            let bytes = client_subscription(version, &["a", "b"], &[("a", &[2, 0])]);
            let s = decode_subscription(&bytes).unwrap();
            assert_eq!(s.topics, vec!["a", "b"], "v{version}");
            let owned = if version >= 1 {
                tps(&[("a", 2), ("a", 0)])
            } else {
                vec![]
            };
            assert_eq!(s.owned, owned, "v{version}");
        }
    }

    #[test]
    fn a_newer_subscription_is_read_as_the_newest_known() {
        let mut bytes = BytesMut::from(&client_subscription(3, &["t"], &[("t", &[1])])[..]);
        bytes[..2].copy_from_slice(&4i16.to_be_bytes());
        // A field version 4 might append.
        bytes.put_i32(99);
        let s = decode_subscription(&bytes.freeze()).unwrap();
        assert_eq!(
            (s.topics, s.owned),
            (vec!["t".to_string()], tps(&[("t", 1)]))
        );
    }

    #[test]
    fn what_is_not_a_subscription_is_refused() {
        for bytes in [
            &b""[..],
            &b"\x00"[..],
            &b"\xff\xff\x00\x00"[..],
            &b"\x00\x00\x00\x00\x00\x05a"[..],
        ] {
            assert!(
                decode_subscription(&Bytes::copy_from_slice(bytes)).is_err(),
                "{bytes:?}"
            );
        }
    }

    #[test]
    fn the_engines_subscription_reads_back_as_a_client_reads_it() {
        let topics = vec!["b".to_string(), "a".to_string()];
        let owned = tps(&[("b", 3), ("a", 1), ("b", 0)]);
        let bytes = encode_subscription(&topics, &owned);
        assert_eq!(&bytes[..2], &SUBSCRIPTION_VERSION.to_be_bytes());
        let read = ConsumerProtocolSubscription::decode(&mut bytes.slice(2..), 1).unwrap();
        assert_eq!(read.topics, vec![StrBytes::from("b"), StrBytes::from("a")]);
        assert_eq!(read.user_data, None);
        let owned: Vec<(String, Vec<i32>)> = read
            .owned_partitions
            .iter()
            .map(|t| (t.topic.to_string(), t.partitions.clone()))
            .collect();
        assert_eq!(
            owned,
            vec![("a".to_string(), vec![1]), ("b".to_string(), vec![0, 3])]
        );
        let back = decode_subscription(&bytes).unwrap();
        assert_eq!(back.topics, topics);
        assert_eq!(back.owned, tps(&[("a", 1), ("b", 0), ("b", 3)]));
    }

    #[test]
    fn assignments_round_trip_sorted_and_any_version_reads() {
        let partitions = tps(&[("t", 5), ("s", 0), ("t", 1)]);
        let bytes = encode_assignment(&partitions);
        assert_eq!(
            decode_assignment(&bytes).unwrap(),
            tps(&[("s", 0), ("t", 1), ("t", 5)])
        );
        // As a leader of each version writes it, user data and all.
        for version in 0..=3 {
            let a = ConsumerProtocolAssignment::default()
                .with_assigned_partitions(vec![
                    consumer_protocol_assignment::TopicPartition::default()
                        .with_topic(TopicName(StrBytes::from("t")))
                        .with_partitions(vec![2, 0, 2]),
                ])
                .with_user_data(Some(Bytes::from_static(b"x")));
            let bytes = encode(&a, version);
            assert_eq!(
                decode_assignment(&bytes).unwrap(),
                tps(&[("t", 0), ("t", 2)]),
                "v{version}"
            );
        }
        assert_eq!(decode_assignment(&Bytes::new()).unwrap(), vec![]);
        assert_eq!(decode_assignment(&encode_assignment(&[])).unwrap(), vec![]);
        assert!(decode_assignment(&Bytes::from_static(b"\x00\x01\x00\x00\x00\x09")).is_err());
    }

    proptest::proptest! {
        /// A member's bytes are whatever its client sent: any of them reads or is
        /// refused, never a panic or an allocation their lengths ask for.
        #[test]
        fn any_bytes_read_or_are_refused(
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..128),
            version in 0i16..6,
        ) {
            let mut bytes = version.to_be_bytes().to_vec();
            bytes.extend(body);
            let bytes = Bytes::from(bytes);
            let _ = decode_subscription(&bytes);
            let _ = decode_assignment(&bytes);
        }
    }
}
