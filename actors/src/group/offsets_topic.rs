//! The records consumer groups keep in the internal compacted topic
//! `__consumer_offsets`, and how a group's state is rebuilt from them.
//!
//! A group lives on partition `abs(java_hash(group)) % partitions`, as in Kafka, so
//! all its records are in one partition, in order. Two kinds of record share the
//! topic, told apart by the key's version (Kafka's own numbering):
//!
//! ```text
//! offset commit key (version 1)      group metadata key (version 2)
//! +---------+-------+-------+-----------+   +---------+-------+
//! | i16 = 1 | group | topic | i32 part. |   | i16 = 2 | group |
//! +---------+-------+-------+-----------+   +---------+-------+
//!
//! offset commit value (version 3, Kafka's layout)
//! +---------+------------+------------------+----------+---------------------+
//! | i16 = 3 | i64 offset | i32 leader epoch | metadata | i64 commit time (ms)|
//! +---------+------------+------------------+----------+---------------------+
//!
//! group metadata value (Troupe's version 100: Kafka's fields, plain arrays
//! instead of embedded consumer-protocol bytes)
//! +-----------+---------------+----------------+-----------------+---------------+
//! | i16 = 100 | protocol type | i32 generation | protocol (null) | leader (null) |
//! +-----------+---------------+----------------+-----------------+---------------+
//! | i64 state time (ms) | i32 n | n × member                                    |
//! +---------------------+-------+-----------------------------------------------+
//! member: id, client id, client host, i8 origin, i32 rebalance timeout ms,
//!         i32 session timeout ms, i32 n × topic, i32 m × (topic, i32 partition)
//! ```
//!
//! Strings are an i16 byte length and UTF-8 (length -1 is null); integers are
//! big-endian. A null value is a tombstone: the commit, or the whole group, is
//! deleted, and compaction eventually drops every older record of that key.
//!
//! The coordinator turns each request into these records, appends them, and then
//! applies them with [`GroupSnapshot::apply`] — the same function that rebuilds
//! every group from the topic at startup.

use std::collections::BTreeMap;

use crate::ids::{GenerationId, LeaderEpoch};
use crate::storage::{Record, StoredRecord};

use super::TopicPartition;

pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

const OFFSET_KEY_VERSION: i16 = 1;
const GROUP_KEY_VERSION: i16 = 2;
const OFFSET_VALUE_VERSION: i16 = 3;
const GROUP_VALUE_VERSION: i16 = 100;

/// Java's `String.hashCode` over UTF-16 code units: Kafka places groups with it, and
/// so do we, so a group lands on the partition Kafka would choose.
fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32))
}

/// The `__consumer_offsets` partition that holds `group`.
pub fn partition_for(group: &str, partitions: i32) -> i32 {
    let h = java_string_hash(group);
    // Kafka's Utils.abs: MIN_VALUE maps to 0.
    let abs = if h == i32::MIN { 0 } else { h.abs() };
    abs % partitions.max(1)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub offset: i64,
    /// The leader epoch the committer read at, or [`LeaderEpoch::UNKNOWN`].
    pub leader_epoch: LeaderEpoch,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
}

/// Where a member's client runs. Members living inside this broker (REST consumer
/// instances, WebSocket group subscriptions) cannot outlive it, so they are not
/// restored after a restart; remote clients get their session timeout to come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberOrigin {
    InBroker,
    Remote,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberMetadata {
    pub member_id: String,
    pub client_id: String,
    pub client_host: String,
    pub origin: MemberOrigin,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub topics: Vec<String>,
    pub assignment: Vec<TopicPartition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMetadata {
    pub protocol_type: String,
    pub generation_id: GenerationId,
    pub protocol: Option<String>,
    pub leader_id: Option<String>,
    pub state_timestamp_ms: i64,
    pub members: Vec<MemberMetadata>,
}

/// One record of `__consumer_offsets`, decoded. `None` values are tombstones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupRecord {
    Offset {
        group: String,
        partition: TopicPartition,
        value: Option<CommittedOffset>,
    },
    Group {
        group: String,
        value: Option<GroupMetadata>,
    },
}

impl GroupRecord {
    pub fn group(&self) -> &str {
        match self {
            GroupRecord::Offset { group, .. } | GroupRecord::Group { group, .. } => group,
        }
    }

    pub fn encode(&self, timestamp_ms: i64) -> Record {
        let mut key = Writer::default();
        let value = match self {
            GroupRecord::Offset {
                group,
                partition,
                value,
            } => {
                key.i16(OFFSET_KEY_VERSION);
                key.str(group);
                key.str(&partition.topic);
                key.i32(partition.partition);
                value.as_ref().map(encode_offset)
            }
            GroupRecord::Group { group, value } => {
                key.i16(GROUP_KEY_VERSION);
                key.str(group);
                value.as_ref().map(encode_group)
            }
        };
        Record {
            timestamp_ms,
            key: Some(key.0),
            value,
            headers: Vec::new(),
        }
    }

    /// Decodes a stored record; records of unknown versions are an error (a newer
    /// broker wrote them), never silently skipped.
    pub fn decode(record: &StoredRecord) -> Result<GroupRecord, DecodeError> {
        let key = record.record.key.as_deref().ok_or(DecodeError::NoKey)?;
        let mut k = Reader(key);
        let value = record.record.value.as_deref();
        match k.i16()? {
            0 | OFFSET_KEY_VERSION => Ok(GroupRecord::Offset {
                group: k.string()?,
                partition: TopicPartition {
                    topic: k.string()?,
                    partition: k.i32()?,
                },
                value: value.map(decode_offset).transpose()?,
            }),
            GROUP_KEY_VERSION => Ok(GroupRecord::Group {
                group: k.string()?,
                value: value.map(decode_group).transpose()?,
            }),
            version => Err(DecodeError::UnknownVersion {
                field: "key",
                version,
            }),
        }
    }
}

fn encode_offset(o: &CommittedOffset) -> Vec<u8> {
    let mut w = Writer::default();
    w.i16(OFFSET_VALUE_VERSION);
    w.i64(o.offset);
    w.i32(o.leader_epoch.get());
    w.str(&o.metadata);
    w.i64(o.commit_timestamp_ms);
    w.0
}

fn decode_offset(bytes: &[u8]) -> Result<CommittedOffset, DecodeError> {
    let mut r = Reader(bytes);
    let version = r.i16()?;
    if version != OFFSET_VALUE_VERSION {
        return Err(DecodeError::UnknownVersion {
            field: "offset value",
            version,
        });
    }
    Ok(CommittedOffset {
        offset: r.i64()?,
        leader_epoch: LeaderEpoch::new(r.i32()?),
        metadata: r.string()?,
        commit_timestamp_ms: r.i64()?,
    })
}

fn encode_group(g: &GroupMetadata) -> Vec<u8> {
    let mut w = Writer::default();
    w.i16(GROUP_VALUE_VERSION);
    w.str(&g.protocol_type);
    w.i32(g.generation_id.get());
    w.opt_str(g.protocol.as_deref());
    w.opt_str(g.leader_id.as_deref());
    w.i64(g.state_timestamp_ms);
    w.i32(g.members.len() as i32);
    for m in &g.members {
        w.str(&m.member_id);
        w.str(&m.client_id);
        w.str(&m.client_host);
        w.0.push(match m.origin {
            MemberOrigin::InBroker => 0,
            MemberOrigin::Remote => 1,
        });
        w.i32(m.rebalance_timeout_ms);
        w.i32(m.session_timeout_ms);
        w.i32(m.topics.len() as i32);
        for t in &m.topics {
            w.str(t);
        }
        w.i32(m.assignment.len() as i32);
        for tp in &m.assignment {
            w.str(&tp.topic);
            w.i32(tp.partition);
        }
    }
    w.0
}

fn decode_group(bytes: &[u8]) -> Result<GroupMetadata, DecodeError> {
    let mut r = Reader(bytes);
    let version = r.i16()?;
    if version != GROUP_VALUE_VERSION {
        return Err(DecodeError::UnknownVersion {
            field: "group value",
            version,
        });
    }
    let protocol_type = r.string()?;
    let generation_id = GenerationId::new(r.i32()?);
    let protocol = r.opt_string()?;
    let leader_id = r.opt_string()?;
    let state_timestamp_ms = r.i64()?;
    let members = (0..r.count()?)
        .map(|_| {
            Ok(MemberMetadata {
                member_id: r.string()?,
                client_id: r.string()?,
                client_host: r.string()?,
                origin: match r.take(1)?[0] {
                    0 => MemberOrigin::InBroker,
                    _ => MemberOrigin::Remote,
                },
                rebalance_timeout_ms: r.i32()?,
                session_timeout_ms: r.i32()?,
                topics: (0..r.count()?)
                    .map(|_| r.string())
                    .collect::<Result<_, _>>()?,
                assignment: (0..r.count()?)
                    .map(|_| {
                        Ok(TopicPartition {
                            topic: r.string()?,
                            partition: r.i32()?,
                        })
                    })
                    .collect::<Result<_, DecodeError>>()?,
            })
        })
        .collect::<Result<_, DecodeError>>()?;
    Ok(GroupMetadata {
        protocol_type,
        generation_id,
        protocol,
        leader_id,
        state_timestamp_ms,
        members,
    })
}

/// A group's durable state: what its records in `__consumer_offsets` add up to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupSnapshot {
    pub offsets: BTreeMap<TopicPartition, CommittedOffset>,
    pub metadata: Option<GroupMetadata>,
}

impl GroupSnapshot {
    /// Applies one record of this group, live or during replay.
    pub fn apply(&mut self, record: &GroupRecord) {
        match record {
            GroupRecord::Offset {
                partition, value, ..
            } => match value {
                Some(v) => {
                    self.offsets.insert(partition.clone(), v.clone());
                }
                None => {
                    self.offsets.remove(partition);
                }
            },
            GroupRecord::Group { value, .. } => self.metadata = value.clone(),
        }
    }

    /// A group deleted by tombstones (or never written) leaves nothing behind.
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty() && self.metadata.is_none()
    }
}

#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn i16(&mut self, v: i16) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    /// Strings are bounded by what callers accept (group ids, topic names and
    /// metadata are all validated well below i16::MAX bytes); longer ones are cut at
    /// a character boundary rather than written with a wrong length.
    fn str(&mut self, s: &str) {
        let mut end = s.len().min(i16::MAX as usize);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.i16(end as i16);
        self.0.extend_from_slice(&s.as_bytes()[..end]);
    }
    fn opt_str(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.str(s),
            None => self.i16(-1),
        }
    }
}

/// Why a stored record is not a group record this broker can read: damage, or a
/// version a newer broker wrote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("a record without a key")]
    NoKey,
    #[error("unknown {field} version {version}")]
    UnknownVersion { field: &'static str, version: i16 },
    #[error("truncated: needed {needed} bytes, {left} left")]
    Truncated { needed: usize, left: usize },
    #[error("bad array length {0}")]
    BadLength(i32),
    #[error("a string that is not UTF-8")]
    NotUtf8,
    #[error("an unexpected null")]
    UnexpectedNull,
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.0.len() < n {
            return Err(DecodeError::Truncated {
                needed: n,
                left: self.0.len(),
            });
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn i16(&mut self) -> Result<i16, DecodeError> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }
    fn i32(&mut self) -> Result<i32, DecodeError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn i64(&mut self) -> Result<i64, DecodeError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(i64::from_be_bytes(a))
    }
    fn count(&mut self) -> Result<usize, DecodeError> {
        let n = self.i32()?;
        // Each element takes at least two bytes: a longer count is corruption.
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.0.len() / 2)
            .ok_or(DecodeError::BadLength(n))
    }
    fn opt_string(&mut self) -> Result<Option<String>, DecodeError> {
        let len = self.i16()?;
        if len < 0 {
            return Ok(None);
        }
        let bytes = self.take(len as usize)?;
        String::from_utf8(bytes.to_vec())
            .map(Some)
            .map_err(|_| DecodeError::NotUtf8)
    }
    fn string(&mut self) -> Result<String, DecodeError> {
        self.opt_string()?.ok_or(DecodeError::UnexpectedNull)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(r: Record) -> StoredRecord {
        StoredRecord {
            offset: 0,
            record: r,
        }
    }

    #[test]
    fn groups_land_on_the_partitions_kafka_chooses() {
        // Java: "".hashCode() == 0, "group".hashCode() == 98629247.
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("group"), 98_629_247);
        assert_eq!(partition_for("group", 50), 98_629_247 % 50);
        assert!((0..50).contains(&partition_for("consumer-group-1", 50)));
        assert_eq!(partition_for("x", 1), 0);
    }

    #[test]
    fn records_round_trip_and_replay_into_a_snapshot() {
        let tp = TopicPartition::new("orders", 3);
        let offset = GroupRecord::Offset {
            group: "g".into(),
            partition: tp.clone(),
            value: Some(CommittedOffset {
                offset: 42,
                leader_epoch: LeaderEpoch::UNKNOWN,
                metadata: "m✓".into(),
                commit_timestamp_ms: 7,
            }),
        };
        let group = GroupRecord::Group {
            group: "g".into(),
            value: Some(GroupMetadata {
                protocol_type: "consumer".into(),
                generation_id: GenerationId::new(5),
                protocol: Some("range".into()),
                leader_id: None,
                state_timestamp_ms: 9,
                members: vec![MemberMetadata {
                    member_id: "a".into(),
                    client_id: "c".into(),
                    client_host: "/127.0.0.1".into(),
                    origin: MemberOrigin::Remote,
                    rebalance_timeout_ms: 1,
                    session_timeout_ms: 2,
                    topics: vec!["orders".into()],
                    assignment: vec![tp.clone()],
                }],
            }),
        };
        let mut snapshot = GroupSnapshot::default();
        for r in [&offset, &group] {
            let decoded = GroupRecord::decode(&stored(r.encode(1))).unwrap();
            assert_eq!(&decoded, r);
            snapshot.apply(&decoded);
        }
        assert_eq!(snapshot.offsets[&tp].offset, 42);
        assert_eq!(
            snapshot.metadata.as_ref().unwrap().generation_id,
            GenerationId::new(5)
        );
        for tombstone in [
            GroupRecord::Offset {
                group: "g".into(),
                partition: tp,
                value: None,
            },
            GroupRecord::Group {
                group: "g".into(),
                value: None,
            },
        ] {
            let decoded = GroupRecord::decode(&stored(tombstone.encode(1))).unwrap();
            snapshot.apply(&decoded);
        }
        assert!(snapshot.is_empty());
    }

    #[test]
    fn damaged_records_are_errors_not_panics() {
        let good = GroupRecord::Group {
            group: "g".into(),
            value: Some(GroupMetadata {
                protocol_type: "consumer".into(),
                generation_id: GenerationId::new(1),
                protocol: None,
                leader_id: None,
                state_timestamp_ms: 0,
                members: vec![],
            }),
        }
        .encode(0);
        let value = good.value.clone().unwrap();
        for cut in 0..value.len() {
            let mut r = good.clone();
            r.value = Some(value[..cut].to_vec());
            assert!(GroupRecord::decode(&stored(r)).is_err(), "cut at {cut}");
        }
        let mut r = good;
        r.key = Some(vec![0, 9, 0, 1, b'g']);
        assert!(GroupRecord::decode(&stored(r)).is_err());
    }
}
