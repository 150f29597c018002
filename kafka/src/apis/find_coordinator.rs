//! FindCoordinator: which broker coordinates a consumer group. The group's
//! coordinator lives on the broker that leads its `__consumer_offsets` partition
//! (Kafka's rule), read from the metadata image; on one node that is this broker.
//! Transaction coordinators (key type 1) are refused: transactions are a later issue.

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use troupe_actors::auth::acl::Operation;
use troupe_actors::group::manager::validate_group_id;
use troupe_actors::group::offsets_topic::{partition_for, OFFSETS_TOPIC};
use troupe_actors::ids::PartitionId;
use troupe_actors::ErrorKind;

use super::{error_code, Session, Since};

/// Kafka's error for a coordinator type this broker does not run.
const INVALID_REQUEST: i16 = 42;

pub async fn handle(
    session: &Session,
    request: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let keys: Vec<StrBytes> = if version >= 4 {
        request.coordinator_keys.clone()
    } else {
        vec![request.key.clone()]
    };
    let found: Vec<Coordinator> = keys
        .into_iter()
        .map(|key| find(session, key, request.key_type))
        .collect();
    if version >= 4 {
        return FindCoordinatorResponse::default().with_coordinators(found);
    }
    let Some(one) = found.into_iter().next() else {
        return FindCoordinatorResponse::default().with_error_code(INVALID_REQUEST);
    };
    FindCoordinatorResponse::default()
        .with_error_code(one.error_code)
        .since(version, 1, |m| m.with_error_message(one.error_message))
        .with_node_id(one.node_id)
        .with_host(one.host)
        .with_port(one.port)
}

fn find(session: &Session, key: StrBytes, key_type: i8) -> Coordinator {
    let refused = |key: StrBytes, code: i16, message: String| {
        Coordinator::default()
            .with_key(key)
            .with_node_id(BrokerId(-1))
            .with_port(-1)
            .with_error_code(code)
            .with_error_message(Some(StrBytes::from_string(message)))
    };
    if key_type != 0 {
        return refused(
            key,
            error_code(ErrorKind::TransactionsUnsupported),
            "transactions are not supported yet".into(),
        );
    }
    if let Err(e) = validate_group_id(key.as_str()) {
        return refused(key, error_code(e.kind()), e.to_string());
    }
    let may = session
        .engine
        .authorize_group(&session.context, Operation::Describe, key.as_str());
    if let Err(denied) = may {
        return refused(key, error_code(denied.kind()), denied.to_string());
    }
    let image = session.engine.image();
    let Ok(offsets) = image.topic(OFFSETS_TOPIC) else {
        return refused(
            key,
            error_code(ErrorKind::CoordinatorNotAvailable),
            "the offsets topic is not loaded".into(),
        );
    };
    let partition = partition_for(key.as_str(), offsets.partitions.len() as i32);
    let leader = offsets
        .partition(PartitionId::new(partition))
        .ok()
        .and_then(|p| image.brokers.get(&p.leader))
        .and_then(|b| Some((b.id, b.endpoint(&session.config.listener_name)?)));
    match leader {
        Some((id, endpoint)) => Coordinator::default()
            .with_key(key)
            .with_node_id(BrokerId(id.get()))
            .with_host(StrBytes::from_string(endpoint.host.clone()))
            .with_port(i32::from(endpoint.port)),
        None => refused(
            key,
            error_code(ErrorKind::CoordinatorNotAvailable),
            "the coordinator's broker has no endpoint on this listener".into(),
        ),
    }
}
