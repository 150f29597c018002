//! ListOffsets: the offset a time, the beginning (-2) or the end (-1) means in each
//! partition, as the partition answers it. Unlike the REST consumer's rule, a time
//! with no record at or after it is offset -1 here: that is what Kafka's clients
//! expect and decide on themselves.

use futures::future::join_all;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use troupe_actors::partition::OffsetSpec;
use troupe_actors::requests::list_offsets::lookup;

use super::{error_code, Session, Since};

/// Kafka's EARLIEST_TIMESTAMP and LATEST_TIMESTAMP.
const EARLIEST: i64 = -2;
const LATEST: i64 = -1;
/// Kafka's UNSUPPORTED_VERSION: a timestamp spec this broker does not know.
const INVALID_REQUEST: i16 = 42;

pub async fn handle(
    session: &Session,
    request: ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    let topics = request.topics.into_iter().map(|topic| async move {
        let name = topic.name.0.to_string();
        let partitions = join_all(topic.partitions.into_iter().map(|p| {
            let name = name.clone();
            async move {
                let answer = ListOffsetsPartitionResponse::default()
                    .with_partition_index(p.partition_index)
                    .with_timestamp(-1)
                    .with_offset(-1)
                    .since(version, 4, |m| m.with_leader_epoch(-1));
                let spec = match p.timestamp {
                    EARLIEST => OffsetSpec::Earliest,
                    LATEST => OffsetSpec::Latest,
                    t if t >= 0 => OffsetSpec::Timestamp(t),
                    _ => return answer.with_error_code(INVALID_REQUEST),
                };
                let found = lookup(
                    &session.engine,
                    &session.context,
                    &name,
                    p.partition_index,
                    spec,
                )
                .await;
                match found {
                    Ok(Some((offset, timestamp))) => answer
                        .with_offset(offset)
                        .with_timestamp(timestamp.unwrap_or(-1))
                        .since(version, 4, |m| m.with_leader_epoch(0)),
                    // An empty log: its beginning and end are offset 0.
                    Ok(None) if !matches!(spec, OffsetSpec::Timestamp(_)) => answer
                        .with_offset(0)
                        .since(version, 4, |m| m.with_leader_epoch(0)),
                    Ok(None) => answer,
                    Err(e) => answer.with_error_code(error_code(e.kind())),
                }
            }
        }))
        .await;
        ListOffsetsTopicResponse::default()
            .with_name(topic.name)
            .with_partitions(partitions)
    });
    ListOffsetsResponse::default().with_topics(join_all(topics).await)
}
