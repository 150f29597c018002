//! CreatePartitions: raise each topic's partition count (Kafka never lowers it),
//! through the topic registry (`requests::topics::create_partitions`), which refuses
//! a count that does not grow or that the broker cannot carry (INVALID_PARTITIONS);
//! `validate_only` checks without creating. A manual assignment of the new
//! partitions' replicas is checked as Kafka's controller checks it — one per new
//! partition, each with the topic's replication factor, distinct brokers the image
//! knows — and answered INVALID_REPLICA_ASSIGNMENT otherwise; the registry places
//! the partitions itself (on one node, on the only broker, which is what any valid
//! assignment says). A topic named twice is INVALID_REQUEST. `timeout_ms` is not
//! waited on: the partitions exist when the registry answers.

use std::collections::BTreeSet;
use troupe_actors::auth::acl::Operation;

use futures::future::join_all;
use kafka_protocol::messages::create_partitions_request::{
    CreatePartitionsAssignment, CreatePartitionsTopic,
};
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use troupe_actors::metadata::MetadataImage;
use troupe_actors::requests::topics;

use super::admin::{named_twice, outcome, repeated, Refusal};
use super::Session;

/// Kafka's INVALID_REPLICA_ASSIGNMENT.
const INVALID_REPLICA_ASSIGNMENT: i16 = 39;

pub async fn handle(
    session: &Session,
    request: CreatePartitionsRequest,
    _version: i16,
) -> CreatePartitionsResponse {
    let names: Vec<String> = request
        .topics
        .iter()
        .map(|t| t.name.0.to_string())
        .collect();
    let validate_only = request.validate_only;
    let results =
        request
            .topics
            .into_iter()
            .zip(repeated(&names))
            .map(|(topic, twice)| async move {
                let grown = if twice {
                    Err(named_twice("the topic"))
                } else {
                    grow(session, &topic, validate_only).await
                };
                let (code, message) = outcome(&grown);
                CreatePartitionsTopicResult::default()
                    .with_name(topic.name)
                    .with_error_code(code)
                    .with_error_message(message)
            });
    CreatePartitionsResponse::default().with_results(join_all(results).await)
}

async fn grow(
    session: &Session,
    topic: &CreatePartitionsTopic,
    validate_only: bool,
) -> Result<(), Refusal> {
    let name = topic.name.0.as_str();
    // Refused before anything about the topic is told (Kafka's order).
    session
        .engine
        .authorize_topic(&session.context, Operation::Alter, name)
        .map_err(troupe_actors::BrokerError::from)?;
    if let Some(assignments) = &topic.assignments {
        check_assignments(&session.engine.image(), name, topic.count, assignments)?;
    }
    topics::create_partitions(
        &session.engine,
        &session.context,
        name,
        topic.count,
        validate_only,
    )
    .await?;
    Ok(())
}

/// Kafka's checks of the new partitions' replicas: one assignment per new partition,
/// each of the topic's replication factor, of distinct brokers that exist. A count
/// that does not grow is left to the registry to refuse.
fn check_assignments(
    image: &MetadataImage,
    name: &str,
    count: i32,
    assignments: &[CreatePartitionsAssignment],
) -> Result<(), Refusal> {
    let topic = image.topic(name)?;
    let added = i64::from(count) - topic.partitions.len() as i64;
    if added <= 0 {
        return Ok(());
    }
    let invalid = |message: String| Err(Refusal::new(INVALID_REPLICA_ASSIGNMENT, message));
    if assignments.len() as i64 != added {
        return invalid(format!(
            "{added} partition(s) are added but {} assignment(s) are given",
            assignments.len()
        ));
    }
    for (i, assignment) in assignments.iter().enumerate() {
        let brokers: Vec<i32> = assignment.broker_ids.iter().map(|b| b.0).collect();
        let partition = topic.partitions.len() + i;
        if brokers.len() != topic.replication_factor.max(0) as usize {
            return invalid(format!(
                "partition {partition} is given {} replica(s); the topic's replication factor is {}",
                brokers.len(),
                topic.replication_factor
            ));
        }
        if brokers.iter().collect::<BTreeSet<_>>().len() != brokers.len() {
            return invalid(format!(
                "partition {partition} names a broker twice in {brokers:?}"
            ));
        }
        if let Some(unknown) = brokers
            .iter()
            .find(|b| !image.brokers.keys().any(|id| id.get() == **b))
        {
            return invalid(format!(
                "partition {partition} is assigned to broker {unknown}, which is not registered"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::BrokerId;
    use std::sync::Arc;
    use troupe_actors::ids::NodeId;
    use troupe_actors::metadata::TopicImage;

    fn assignment(brokers: &[i32]) -> CreatePartitionsAssignment {
        CreatePartitionsAssignment::default()
            .with_broker_ids(brokers.iter().map(|b| BrokerId(*b)).collect())
    }

    #[test]
    fn assignments_are_checked_as_kafka_checks_them() {
        let mut image = MetadataImage::single_node("c".into(), NodeId::new(1));
        let t = TopicImage::local("t", "id".into(), 2, NodeId::new(1), Default::default(), 1);
        image.topics.insert("t".into(), Arc::new(t));
        let check = |count, given: &[&[i32]]| {
            let given: Vec<_> = given.iter().map(|b| assignment(b)).collect();
            check_assignments(&image, "t", count, &given).map_err(|r| r.code)
        };
        assert_eq!(check(4, &[&[1], &[1]]), Ok(()));
        assert_eq!(check(2, &[]), Ok(()), "no growth: the registry refuses");
        for bad in [
            vec![&[1][..]],
            vec![&[1][..], &[1, 1][..]],
            vec![&[1][..], &[2][..]],
            vec![&[1][..], &[][..]],
        ] {
            assert_eq!(check(4, &bad), Err(INVALID_REPLICA_ASSIGNMENT), "{bad:?}");
        }
        let unknown = check_assignments(&image, "u", 3, &[]).map_err(|r| r.code);
        assert_eq!(unknown, Err(3));
    }
}
