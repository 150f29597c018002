//! OffsetCommit: a group's committed offsets, durable in `__consumer_offsets` before
//! the answer. A member commits as a member of its generation; a negative generation
//! is Kafka's standalone commit (kcat with manual assignment, `kafka-consumer-groups
//! --reset-offsets`, a consumer outside any group), which only a group without
//! members takes. Each partition is answered on its own: one of a topic that does not
//! exist is UNKNOWN_TOPIC_OR_PARTITION; the others are committed, or refused, together.
//!
//! Versions 2 to 8: version 9 is the new consumer group protocol's (KIP-848), whose
//! member epochs Troupe's groups do not have. The leader epoch a client commits with
//! (v6+) is not kept: OffsetFetch answers it unknown (-1), and clients then skip the
//! truncation check it serves.

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};
use troupe_actors::group::{Committer, OffsetCommit, TopicPartition};
use troupe_actors::ids::GenerationId;
use troupe_actors::requests::membership;

use super::{PartitionCodes, Session};

pub async fn handle(
    session: &Session,
    request: OffsetCommitRequest,
    _version: i16,
) -> OffsetCommitResponse {
    let committer = if request.generation_id_or_member_epoch < 0 {
        Committer::Standalone
    } else {
        Committer::Member {
            member_id: request.member_id.to_string(),
            generation_id: GenerationId::new(request.generation_id_or_member_epoch),
        }
    };
    let offsets: Vec<OffsetCommit> = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| OffsetCommit {
                partition: TopicPartition::new(&t.name, p.partition_index),
                offset: p.committed_offset,
                metadata: p
                    .committed_metadata
                    .as_ref()
                    .map(|m| m.to_string())
                    .unwrap_or_default(),
            })
        })
        .collect();
    let outcomes = membership::commit(
        &session.engine,
        &session.context,
        request.group_id.0.as_str(),
        committer,
        offsets,
    )
    .await;
    let codes = PartitionCodes::new(outcomes);
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(codes.of(&t.name, p.partition_index))
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}
