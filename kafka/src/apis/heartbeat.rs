//! Heartbeat: a member says it is alive, within its session timeout. The answer is
//! how a Kafka consumer hears that its group is rebalancing (REBALANCE_IN_PROGRESS:
//! rejoin now) or has dropped it (UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION) — REST and
//! WebSocket members are told by the coordinator directly.

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};
use troupe_actors::ids::GenerationId;
use troupe_actors::requests::membership;

use super::{error_code, Session};

pub async fn handle(
    session: &Session,
    request: HeartbeatRequest,
    _version: i16,
) -> HeartbeatResponse {
    let answer = membership::heartbeat(
        &session.engine,
        &session.context,
        request.group_id.0.as_str(),
        request.member_id.as_str(),
        GenerationId::new(request.generation_id),
    )
    .await;
    HeartbeatResponse::default().with_error_code(match answer {
        Ok(()) => 0,
        Err(e) => error_code(e.kind()),
    })
}
