//! InitProducerId, for the Kafka listener: gives an idempotent producer the id and
//! epoch it stamps on its batches, whose sequence numbers every partition then
//! checks (`storage::producer_state`). Ids come from the `Broker`'s block
//! allocator (`broker::producer_ids`), unique on this node across restarts.
//!
//! As Kafka's transaction coordinator does for a producer without a transactional
//! id, every call gets a fresh id at epoch 0, whatever id and epoch the producer
//! held before (a KIP-360 client sends them to ask for a bump; for an idempotent
//! producer Kafka answers with a new id too). Transactions are a later issue: a
//! transactional id is refused with [`BrokerError::TransactionsUnsupported`]
//! (Kafka's TRANSACTIONAL_ID_AUTHORIZATION_FAILED, final for every client), an
//! empty one with `InvalidRequest`, as Kafka does.

use super::{Engine, RequestContext};
use crate::broker::AllocateProducerId;
use crate::error::{BrokerError, BrokerResult};

/// The epoch of a newly allocated producer id.
pub const FIRST_PRODUCER_EPOCH: i16 = 0;

/// A producer id and epoch for a producer: `transactional_id` is the request's
/// (`None` for an idempotent producer); `current` the id and epoch the producer
/// holds already, if any (InitProducerId v3+), which do not change the answer.
pub async fn init_producer_id(
    engine: &Engine,
    ctx: &RequestContext,
    transactional_id: Option<&str>,
    current: Option<(i64, i16)>,
) -> BrokerResult<(i64, i16)> {
    match transactional_id {
        None => engine.authorize_idempotent_write(ctx)?,
        Some("") => {
            return Err(BrokerError::InvalidRequest(
                "a transactional id, when given, must not be empty".into(),
            ))
        }
        Some(id) => {
            engine.authorize(
                ctx,
                crate::auth::acl::Operation::Write,
                crate::auth::acl::ResourceType::TransactionalId,
                id,
            )?;
            return Err(BrokerError::TransactionsUnsupported(format!(
                "transactional id '{id}' refused: this broker serves idempotent producers, not transactions"
            )));
        }
    }
    let producer_id = engine.ask_broker(AllocateProducerId).await?;
    if let Some((old_id, old_epoch)) = current {
        log::debug!(
            "producer {old_id} (epoch {old_epoch}) asked again: it is producer {producer_id} now"
        );
    }
    Ok((producer_id, FIRST_PRODUCER_EPOCH))
}
