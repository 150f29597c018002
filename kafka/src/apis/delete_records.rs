//! DeleteRecords: each partition's log start offset moves forward to the offset
//! asked for (-1: the high watermark), deleting the records below it, and the answer
//! is the partition's new low watermark (`requests::delete_records`; Kafka's
//! `deleteRecordsOnLocalLog`). Per partition, as Kafka answers: an offset past the
//! high watermark (or below -1) is OFFSET_OUT_OF_RANGE, an internal topic
//! INVALID_TOPIC_EXCEPTION, a topic that is only compacted POLICY_VIOLATION, a
//! partition led elsewhere NOT_LEADER_OR_FOLLOWER. `timeout_ms` is not waited on: on
//! one node no follower's log start has to catch up before the answer.

use futures::future::join_all;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use troupe_actors::requests::delete_records::delete_records;

use super::admin::{authorized_led_here, Refusal};
use super::Session;
use troupe_actors::auth::acl::Operation;

/// Kafka's `DeleteRecordsRequest.HIGH_WATERMARK`: delete everything committed.
const HIGH_WATERMARK: i64 = -1;

pub async fn handle(
    session: &Session,
    request: DeleteRecordsRequest,
    _version: i16,
) -> DeleteRecordsResponse {
    let topics = request.topics.into_iter().map(|topic| async move {
        let name = topic.name.0.to_string();
        let partitions = join_all(topic.partitions.into_iter().map(|p| {
            let name = name.clone();
            async move {
                let answer = DeleteRecordsPartitionResult::default()
                    .with_partition_index(p.partition_index)
                    .with_low_watermark(-1);
                match delete(session, &name, p.partition_index, p.offset).await {
                    Ok(low_watermark) => answer.with_low_watermark(low_watermark),
                    Err(refusal) => answer.with_error_code(refusal.code),
                }
            }
        }))
        .await;
        DeleteRecordsTopicResult::default()
            .with_name(topic.name)
            .with_partitions(partitions)
    });
    DeleteRecordsResponse::default().with_topics(join_all(topics).await)
}

async fn delete(
    session: &Session,
    topic: &str,
    partition: i32,
    offset: i64,
) -> Result<i64, Refusal> {
    authorized_led_here(
        session,
        &session.engine.image(),
        Operation::Delete,
        topic,
        partition,
    )?;
    let up_to = (offset != HIGH_WATERMARK).then_some(offset);
    let deleted = delete_records(&session.engine, &session.context, topic, partition, up_to).await;
    deleted.map_err(|e| {
        log::debug!("kafka: DeleteRecords on {topic}-{partition} to {offset}: {e}");
        Refusal::from(e)
    })
}
