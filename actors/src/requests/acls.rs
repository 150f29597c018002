//! ACLs, as Kafka keeps them (in the cluster metadata; `kafka-acls.sh`, the admin
//! clients' CreateAcls, DescribeAcls and DeleteAcls): described from the image by a
//! filter, created (checked; one that exists already is kept as it is) and deleted by
//! filters through the controller, each answered once this node's image has the change.

use super::{Engine, RequestContext};
use crate::auth::acl::{Acl, AclFilter};
use crate::broker::AlterAcls;
use crate::error::{BrokerError, BrokerResult};

/// The ACLs `filter` matches.
pub fn describe(
    engine: &Engine,
    ctx: &RequestContext,
    filter: &AclFilter,
) -> BrokerResult<Vec<Acl>> {
    engine.check_admin(ctx, crate::auth::acl::Operation::Describe)?;
    Ok(engine
        .image()
        .acls
        .matching(filter)
        .map(|(_, acl)| acl.clone())
        .collect())
}

/// Adds `acls`, all or none (each must be a whole ACL).
pub async fn create(engine: &Engine, ctx: &RequestContext, acls: Vec<Acl>) -> BrokerResult<()> {
    engine.check_admin(ctx, crate::auth::acl::Operation::Alter)?;
    for acl in &acls {
        acl.check()
            .map_err(|reason| BrokerError::InvalidRequest(format!("invalid ACL: {reason}")))?;
    }
    if acls.is_empty() {
        return Ok(());
    }
    let count = acls.len();
    engine
        .ask_broker(AlterAcls {
            create: acls,
            delete_ids: Vec::new(),
        })
        .await?;
    log::info!("{count} ACL(s) created");
    Ok(())
}

/// Deletes every ACL each filter matches; answers what each filter matched.
pub async fn delete(
    engine: &Engine,
    ctx: &RequestContext,
    filters: &[AclFilter],
) -> BrokerResult<Vec<Vec<Acl>>> {
    engine.check_admin(ctx, crate::auth::acl::Operation::Alter)?;
    let image = engine.image();
    let mut ids = Vec::new();
    let mut matched = Vec::with_capacity(filters.len());
    for filter in filters {
        let mut these = Vec::new();
        for (id, acl) in image.acls.matching(filter) {
            if !ids.contains(id) {
                ids.push(id.clone());
            }
            these.push(acl.clone());
        }
        matched.push(these);
    }
    if !ids.is_empty() {
        let count = ids.len();
        engine
            .ask_broker(AlterAcls {
                create: Vec::new(),
                delete_ids: ids,
            })
            .await?;
        log::info!("{count} ACL(s) deleted");
    }
    Ok(matched)
}
