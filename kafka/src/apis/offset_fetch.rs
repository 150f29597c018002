//! OffsetFetch: a group's committed offsets, of the partitions asked for (offset -1
//! for one without a commit) or, from version 2, of every partition it has committed.
//! Up to version 7 one group is asked; from version 8 several, each answered with its
//! own error. The answer waits for commits accepted before it (the coordinator's
//! rule), so it is always stable (`require_stable`, v7+, asks no more). A group that
//! does not exist has no offsets, not an error.
//!
//! Versions 1 to 8: version 9 is the new consumer group protocol's (KIP-848).

use std::collections::BTreeMap;

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{GroupId, OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use troupe_actors::group::TopicPartition;
use troupe_actors::requests::membership;

use super::{error_code, Session, Since};

/// One partition's committed offset, or -1 (and no metadata) for none.
struct Found {
    partition: i32,
    offset: i64,
    leader_epoch: i32,
    metadata: String,
    /// Only in version 1's answer for a group that failed.
    error_code: i16,
}

/// What was asked of one group: each topic's partitions, or `None` for all.
type Wanted = Option<Vec<(TopicName, Vec<i32>)>>;
type Answer = Vec<(TopicName, Vec<Found>)>;

pub async fn handle(
    session: &Session,
    request: OffsetFetchRequest,
    version: i16,
) -> OffsetFetchResponse {
    if version >= 8 {
        let mut groups = Vec::with_capacity(request.groups.len());
        for g in request.groups {
            let wanted = g.topics.map(|ts| {
                ts.into_iter()
                    .map(|t| (t.name, t.partition_indexes))
                    .collect()
            });
            let (code, answer) = match fetch(session, &g.group_id, wanted).await {
                Ok(answer) => (0, answer),
                Err(code) => (code, Vec::new()),
            };
            groups.push(
                OffsetFetchResponseGroup::default()
                    .with_group_id(g.group_id)
                    .with_error_code(code)
                    .with_topics(answer.into_iter().map(grouped_topic).collect()),
            );
        }
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let wanted: Wanted = request.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name, t.partition_indexes))
            .collect()
    });
    let (code, answer) = match fetch(session, &request.group_id, wanted.clone()).await {
        Ok(answer) => (0, answer),
        // Version 1 has no group error: each partition asked for carries it.
        Err(code) if version < 2 => (0, failed(wanted.unwrap_or_default(), code)),
        Err(code) => (code, Vec::new()),
    };
    let topics = answer
        .into_iter()
        .map(|(name, found)| {
            let partitions = found
                .into_iter()
                .map(|f| {
                    OffsetFetchResponsePartition::default()
                        .with_partition_index(f.partition)
                        .with_committed_offset(f.offset)
                        .since(version, 5, |p| {
                            p.with_committed_leader_epoch(f.leader_epoch)
                        })
                        .with_metadata(Some(StrBytes::from_string(f.metadata)))
                        .with_error_code(f.error_code)
                })
                .collect();
            OffsetFetchResponseTopic::default()
                .with_name(name)
                .with_partitions(partitions)
        })
        .collect();
    OffsetFetchResponse::default()
        .with_topics(topics)
        .since(version, 2, |r| r.with_error_code(code))
}

fn grouped_topic((name, found): (TopicName, Vec<Found>)) -> OffsetFetchResponseTopics {
    let partitions = found
        .into_iter()
        .map(|f| {
            OffsetFetchResponsePartitions::default()
                .with_partition_index(f.partition)
                .with_committed_offset(f.offset)
                .with_committed_leader_epoch(f.leader_epoch)
                .with_metadata(Some(StrBytes::from_string(f.metadata)))
        })
        .collect();
    OffsetFetchResponseTopics::default()
        .with_name(name)
        .with_partitions(partitions)
}

impl Found {
    fn none(partition: i32) -> Found {
        Found {
            partition,
            offset: -1,
            leader_epoch: -1,
            metadata: String::new(),
            error_code: 0,
        }
    }
}

/// The group's offsets as asked, or the group's error code.
async fn fetch(session: &Session, group_id: &GroupId, wanted: Wanted) -> Result<Answer, i16> {
    let partitions = wanted.as_ref().map(|topics| {
        topics
            .iter()
            .flat_map(|(t, ps)| ps.iter().map(|&p| TopicPartition::new(t, p)))
            .collect()
    });
    let committed = membership::committed(
        &session.engine,
        &session.context,
        group_id.0.as_str(),
        partitions,
    )
    .await
    .map_err(|e| error_code(e.kind()))?;
    let found = |tp: &TopicPartition| {
        committed
            .get(tp)
            .map_or(Found::none(tp.partition), |c| Found {
                partition: tp.partition,
                offset: c.offset,
                leader_epoch: c.leader_epoch.get(),
                metadata: c.metadata.clone(),
                error_code: 0,
            })
    };
    let Some(topics) = wanted else {
        let mut all: BTreeMap<&str, Vec<Found>> = BTreeMap::new();
        for tp in committed.keys() {
            all.entry(&tp.topic).or_default().push(found(tp));
        }
        return Ok(all
            .into_iter()
            .map(|(t, f)| (TopicName(StrBytes::from_string(t.to_string())), f))
            .collect());
    };
    Ok(topics
        .into_iter()
        .map(|(name, ps)| {
            let found = ps
                .iter()
                .map(|&p| found(&TopicPartition::new(&name, p)))
                .collect();
            (name, found)
        })
        .collect())
}

/// Each partition asked for, with no offset and the group's error.
fn failed(wanted: Vec<(TopicName, Vec<i32>)>, code: i16) -> Answer {
    wanted
        .into_iter()
        .map(|(name, ps)| {
            let found = ps
                .into_iter()
                .map(|p| Found {
                    error_code: code,
                    ..Found::none(p)
                })
                .collect();
            (name, found)
        })
        .collect()
}
