//! OffsetDelete: removes a group's committed offsets of some partitions (admin
//! tools' `--delete-offsets`). A group without members loses them all; a group with
//! members keeps those of topics its members subscribe to, each answered
//! GROUP_SUBSCRIBED_TO_TOPIC. A group that does not exist is GROUP_ID_NOT_FOUND.

use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};
use troupe_actors::group::TopicPartition;
use troupe_actors::requests::membership;

use super::{error_code, PartitionCodes, Session};

pub async fn handle(
    session: &Session,
    request: OffsetDeleteRequest,
    _version: i16,
) -> OffsetDeleteResponse {
    let partitions: Vec<TopicPartition> = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| TopicPartition::new(&t.name, p.partition_index))
        })
        .collect();
    let deleted = membership::delete_offsets(
        &session.engine,
        &session.context,
        request.group_id.0.as_str(),
        partitions,
    )
    .await;
    let outcomes = match deleted {
        Ok(outcomes) => outcomes,
        Err(e) => return OffsetDeleteResponse::default().with_error_code(error_code(e.kind())),
    };
    let codes = PartitionCodes::new(outcomes);
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    OffsetDeleteResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(codes.of(&t.name, p.partition_index))
                })
                .collect();
            OffsetDeleteResponseTopic::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    OffsetDeleteResponse::default().with_topics(topics)
}
