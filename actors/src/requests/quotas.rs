//! Client quotas: listed and changed (stored in the cluster metadata through the
//! controller, as Kafka's DescribeClientQuotas and AlterClientQuotas do them), and
//! the delay a request earns by its bytes (`Engine::throttle`, see `crate::quotas`).
//! Reading quotas needs DescribeConfigs on the cluster, changing them AlterConfigs
//! (Kafka's rights for them).

use super::{Engine, RequestContext};
use crate::auth::acl::Operation;
use crate::broker::AlterClientQuotas;
use crate::error::BrokerResult;
use crate::quotas::{QuotaChange, QuotaEntity, QuotaKind};

/// An entity and its quotas: bytes per second of each kind.
pub type EntityQuotas = (QuotaEntity, Vec<(QuotaKind, u64)>);

/// Every entity's quotas that `matches`.
pub fn describe(
    engine: &Engine,
    ctx: &RequestContext,
    matches: impl Fn(&QuotaEntity) -> bool,
) -> BrokerResult<Vec<EntityQuotas>> {
    engine.check_admin(ctx, Operation::DescribeConfigs)?;
    let image = engine.image();
    Ok(image
        .quotas
        .quotas
        .iter()
        .filter(|(entity, _)| matches(entity))
        .map(|(entity, kinds)| {
            let rates = kinds.iter().map(|(k, r)| (*k, *r)).collect();
            (entity.clone(), rates)
        })
        .collect())
}

/// Sets and removes quotas, all together (each checked first); `validate_only`
/// checks without changing anything.
pub async fn alter(
    engine: &Engine,
    ctx: &RequestContext,
    changes: Vec<QuotaChange>,
    validate_only: bool,
) -> BrokerResult<()> {
    engine.check_admin(ctx, Operation::AlterConfigs)?;
    if validate_only {
        let state = crate::controller::state::ClusterState::default();
        return crate::controller::decisions::alter_quotas(&state, &changes).map(|_| ());
    }
    engine.ask_broker(AlterClientQuotas(changes)).await
}
