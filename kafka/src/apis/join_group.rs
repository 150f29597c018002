//! JoinGroup: a consumer joins (or rejoins) its group and waits for the rebalance's
//! other members; the answer names the generation, the negotiated assignor and the
//! leader — and, to the leader only, every member's subscription (REST and WebSocket
//! members' too, written from the engine's view: see [`crate::consumer_protocol`]),
//! so that it can assign to all of them in its SyncGroup.
//!
//! Only the consumer protocol is served (protocol type "consumer": its metadata is a
//! subscription, whose topics the group's assignors need). A new member is given its
//! id at once, without the MEMBER_ID_REQUIRED round trip Kafka added in JoinGroup v4
//! (clients take either). Static membership (`group.instance.id`, v5+) is refused
//! with UNSUPPORTED_VERSION rather than served with a dynamic member's semantics,
//! which would silently drop what its users count on (no rebalance on a restart).

use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::protocol::StrBytes;
use troupe_actors::auth::acl::Operation;
use troupe_actors::group::GroupError;
use troupe_actors::requests::membership::{self, Join};

use super::api_versions::UNSUPPORTED_VERSION;
use super::{error_code, Session, Since};
use crate::consumer_protocol::{decode_subscription, encode_subscription};

/// The one protocol type served.
pub(super) const CONSUMER: &str = "consumer";

pub async fn handle(
    session: &Session,
    request: JoinGroupRequest,
    version: i16,
) -> JoinGroupResponse {
    let refused = |code: i16| {
        JoinGroupResponse::default()
            .with_error_code(code)
            .with_member_id(request.member_id.clone())
    };
    let group_id = request.group_id.0.as_str();
    let may = session
        .engine
        .authorize_group(&session.context, Operation::Read, group_id);
    if let Err(denied) = may {
        return refused(error_code(denied.kind()));
    }
    if let Some(instance) = &request.group_instance_id {
        log::warn!(
            "kafka: group {group_id}: static membership (group.instance.id {instance}) is not supported"
        );
        return refused(UNSUPPORTED_VERSION);
    }
    let join = match join_of(&request, version) {
        Ok(join) => join,
        Err(e) => {
            log::debug!("kafka: group {group_id}: join refused: {e}");
            return refused(error_code(e.kind()));
        }
    };
    if let Some(reason) = &request.reason {
        log::debug!(
            "kafka: group {group_id}: {} joins: {reason}",
            request.member_id
        );
    }
    match membership::join(&session.engine, &session.context, group_id, join).await {
        Ok(joined) => {
            let members = joined
                .members
                .iter()
                .map(|m| {
                    JoinGroupResponseMember::default()
                        .with_member_id(StrBytes::from_string(m.member_id.clone()))
                        .with_metadata(encode_subscription(&m.topics, &m.owned))
                })
                .collect();
            JoinGroupResponse::default()
                .with_generation_id(joined.generation_id.get())
                .since(version, 7, |r| {
                    r.with_protocol_type(Some(StrBytes::from_static_str(CONSUMER)))
                })
                .with_protocol_name(Some(StrBytes::from_string(joined.protocol)))
                .with_leader(StrBytes::from_string(joined.leader_id))
                .with_member_id(StrBytes::from_string(joined.member_id))
                .with_members(members)
        }
        Err(e) => {
            log::debug!(
                "kafka: group {group_id}: join of {}: {e}",
                request.member_id
            );
            refused(error_code(e.kind()))
        }
    }
}

/// The engine's join: the assignor names, and the topics of the subscription (every
/// protocol carries the same one; the first that reads is taken).
fn join_of(request: &JoinGroupRequest, version: i16) -> Result<Join, GroupError> {
    if request.protocol_type.as_str() != CONSUMER {
        return Err(GroupError::InconsistentGroupProtocol);
    }
    let subscription = request
        .protocols
        .iter()
        .find_map(|p| decode_subscription(&p.metadata).ok())
        .ok_or(GroupError::InconsistentGroupProtocol)?;
    let session_timeout_ms = i64::from(request.session_timeout_ms);
    Ok(Join {
        member_id: Some(request.member_id.to_string()),
        session_timeout_ms,
        // Version 0 has none: the session timeout serves, as in Kafka.
        rebalance_timeout_ms: if version >= 1 {
            i64::from(request.rebalance_timeout_ms)
        } else {
            session_timeout_ms
        },
        protocols: request
            .protocols
            .iter()
            .map(|p| p.name.to_string())
            .collect(),
        topics: subscription.topics,
    })
}
