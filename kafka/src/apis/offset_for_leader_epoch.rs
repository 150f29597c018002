//! OffsetForLeaderEpoch: for each partition, where the requested leader epoch ends
//! in the leader's log — the largest epoch it knows at or before the one asked for,
//! and the offset where the next begins (the log end for the latest) — from the
//! partition's leader-epoch cache (`requests::leader_epochs`). A consumer asks after
//! a leader change to detect a log truncated below its position (KIP-320); followers
//! will ask it of their leader (KIP-101).
//!
//! As Kafka's leader answers: the request's `current_leader_epoch` (-1: not given)
//! is checked against the partition's epoch in the metadata image — older is
//! FENCED_LEADER_EPOCH (the client's metadata is stale), newer UNKNOWN_LEADER_EPOCH
//! (this broker's is) — and a partition led elsewhere is NOT_LEADER_OR_FOLLOWER; an
//! epoch the log does not know is answered with epoch and offset -1 and no error.

use futures::future::join_all;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use troupe_actors::ids::LeaderEpoch;
use troupe_actors::requests::leader_epochs::end_offset_for_epoch;

use super::admin::{authorized_led_here, check_current_epoch, Refusal};
use super::Session;
use troupe_actors::auth::acl::Operation;

pub async fn handle(
    session: &Session,
    request: OffsetForLeaderEpochRequest,
    _version: i16,
) -> OffsetForLeaderEpochResponse {
    let topics = request.topics.into_iter().map(|topic| async move {
        let name = topic.topic.0.to_string();
        let partitions = join_all(topic.partitions.into_iter().map(|p| {
            let name = name.clone();
            async move {
                let answer = EpochEndOffset::default().with_partition(p.partition);
                match look_up(
                    session,
                    &name,
                    p.partition,
                    p.current_leader_epoch,
                    p.leader_epoch,
                )
                .await
                {
                    Ok(Some((epoch, end_offset))) => {
                        answer.with_leader_epoch(epoch).with_end_offset(end_offset)
                    }
                    Ok(None) => answer,
                    Err(refusal) => answer.with_error_code(refusal.code),
                }
            }
        }))
        .await;
        OffsetForLeaderTopicResult::default()
            .with_topic(topic.topic)
            .with_partitions(partitions)
    });
    OffsetForLeaderEpochResponse::default().with_topics(join_all(topics).await)
}

async fn look_up(
    session: &Session,
    topic: &str,
    partition: i32,
    current_leader_epoch: i32,
    leader_epoch: i32,
) -> Result<Option<(i32, i64)>, Refusal> {
    let image = session.engine.image();
    let led = authorized_led_here(session, &image, Operation::Describe, topic, partition)?;
    check_current_epoch(current_leader_epoch, led.leader_epoch)?;
    let found = end_offset_for_epoch(
        &session.engine,
        &session.context,
        topic,
        partition,
        LeaderEpoch::new(leader_epoch),
    )
    .await?;
    Ok(found.map(|f| (f.epoch, f.end_offset)))
}

/// Kafka's `Partition.checkCurrentLeaderEpoch`: the client's idea of the leader's
/// epoch, when it gives one, must be the partition's.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::apis::admin::{FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH};

    #[test]
    fn the_current_epoch_is_checked_as_kafka_checks_it() {
        let at = |given| check_current_epoch(given, LeaderEpoch::new(3)).map_err(|r| r.code);
        assert_eq!(at(-1), Ok(()));
        assert_eq!(at(3), Ok(()));
        assert_eq!(at(2), Err(FENCED_LEADER_EPOCH));
        assert_eq!(at(0), Err(FENCED_LEADER_EPOCH));
        assert_eq!(at(4), Err(UNKNOWN_LEADER_EPOCH));
    }
}
