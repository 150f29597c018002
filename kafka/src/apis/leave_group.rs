//! LeaveGroup: members leave their group at once rather than at their session's end,
//! so the rebalance that hands their partitions to the others starts now. Up to
//! version 2 one member leaves; from version 3 a list of them, each answered on its
//! own (admin tools remove members this way). A member named only by its
//! `group.instance.id` is a static member, which Troupe never has: UNKNOWN_MEMBER_ID.

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};
use troupe_actors::auth::acl::Operation;
use troupe_actors::requests::membership;

use super::{error_code, Session};

pub async fn handle(
    session: &Session,
    request: LeaveGroupRequest,
    version: i16,
) -> LeaveGroupResponse {
    let group_id = request.group_id.0.as_str();
    // A group the client may not read: refused whole, as Kafka does.
    let may = session
        .engine
        .authorize_group(&session.context, Operation::Read, group_id);
    if let Err(denied) = may {
        return LeaveGroupResponse::default().with_error_code(error_code(denied.kind()));
    }
    if version < 3 {
        let code = leave(session, group_id, request.member_id.as_str(), None).await;
        return LeaveGroupResponse::default().with_error_code(code);
    }
    let mut members = Vec::with_capacity(request.members.len());
    for m in &request.members {
        let reason = m.reason.as_ref().map(|r| r.as_str());
        let code = leave(session, group_id, m.member_id.as_str(), reason).await;
        members.push(
            MemberResponse::default()
                .with_member_id(m.member_id.clone())
                .with_group_instance_id(m.group_instance_id.clone())
                .with_error_code(code),
        );
    }
    LeaveGroupResponse::default().with_members(members)
}

async fn leave(session: &Session, group_id: &str, member_id: &str, reason: Option<&str>) -> i16 {
    log::debug!(
        "kafka: group {group_id}: {member_id} leaves ({})",
        reason.unwrap_or("no reason given")
    );
    match membership::leave(&session.engine, &session.context, group_id, member_id).await {
        Ok(()) => 0,
        Err(e) => error_code(e.kind()),
    }
}
