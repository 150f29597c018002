//! InitProducerId: a producer id and epoch for an idempotent producer, from the
//! engine's node-wide allocator (unique across restarts). A transactional id is
//! refused (TRANSACTIONAL_ID_AUTHORIZATION_FAILED, final for every client):
//! transactions are a later issue.

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use troupe_actors::requests::producer_ids::init_producer_id;

use super::{error_code, Session};

pub async fn handle(
    session: &Session,
    request: InitProducerIdRequest,
    _version: i16,
) -> InitProducerIdResponse {
    let transactional_id = request.transactional_id.as_ref().map(|t| t.0.as_str());
    let current =
        (request.producer_id.0 >= 0).then_some((request.producer_id.0, request.producer_epoch));
    match init_producer_id(&session.engine, &session.context, transactional_id, current).await {
        Ok((id, epoch)) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(epoch),
        Err(e) => InitProducerIdResponse::default()
            .with_error_code(error_code(e.kind()))
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    }
}
