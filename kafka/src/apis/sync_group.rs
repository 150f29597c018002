//! SyncGroup: after a join, each member asks for its partitions. The leader brings
//! the assignment — one consumer-protocol assignment per member, decoded to the
//! engine's (member id → partitions) — and a follower brings none and waits for the
//! leader's; when the leader is an in-broker REST or WebSocket instance, the broker's
//! assignors make it. Each member gets its partitions written back as a
//! consumer-protocol assignment.

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use troupe_actors::group::{Assignment, GroupError};
use troupe_actors::ids::GenerationId;
use troupe_actors::requests::membership;

use super::join_group::CONSUMER;
use super::{error_code, Session, Since};
use crate::consumer_protocol::{decode_assignment, encode_assignment};

pub async fn handle(
    session: &Session,
    request: SyncGroupRequest,
    version: i16,
) -> SyncGroupResponse {
    let group_id = request.group_id.0.as_str();
    let member_id = request.member_id.as_str();
    let refused = |e: GroupError| {
        log::debug!("kafka: group {group_id}: sync of {member_id}: {e}");
        SyncGroupResponse::default()
            .with_error_code(error_code(e.kind()))
            .with_assignment(Bytes::new())
    };
    if request
        .protocol_type
        .as_ref()
        .is_some_and(|t| t.as_str() != CONSUMER)
    {
        return refused(GroupError::InconsistentGroupProtocol);
    }
    let assignment = match leader_assignment(&request) {
        Ok(assignment) => assignment,
        Err(e) => return refused(e),
    };
    let synced = membership::sync(
        &session.engine,
        &session.context,
        group_id,
        member_id,
        GenerationId::new(request.generation_id),
        assignment,
    )
    .await;
    match synced {
        Ok(partitions) => SyncGroupResponse::default()
            // What the member joined with, which its generation vouches for.
            .since(version, 5, |r| {
                r.with_protocol_type(request.protocol_type.clone())
                    .with_protocol_name(request.protocol_name.clone())
            })
            .with_assignment(encode_assignment(&partitions)),
        Err(e) => refused(e),
    }
}

/// The leader's assignment, if this is the leader's sync (a follower's carries none).
/// One that does not read as the consumer protocol is refused whole.
fn leader_assignment(request: &SyncGroupRequest) -> Result<Option<Assignment>, GroupError> {
    if request.assignments.is_empty() {
        return Ok(None);
    }
    let mut assignment = BTreeMap::new();
    for a in &request.assignments {
        let partitions = decode_assignment(&a.assignment).map_err(|e| {
            log::warn!(
                "kafka: group {}: the leader's assignment for {}: {e}",
                request.group_id.0.as_str(),
                a.member_id.as_str()
            );
            GroupError::InconsistentGroupProtocol
        })?;
        assignment.insert(a.member_id.to_string(), partitions);
    }
    Ok(Some(assignment))
}
