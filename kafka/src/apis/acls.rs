//! DescribeAcls, CreateAcls and DeleteAcls: what `kafka-acls.sh` and the admin
//! clients use, over the same ACLs REST's `/v3/clusters/{c}/acls` manages (stored in
//! the cluster metadata). Codes are Kafka's (`ResourceType`, `PatternType`,
//! `AclOperation`, `AclPermissionType`); a filter or binding Kafka would refuse is
//! INVALID_REQUEST for that entry alone. Describe groups the ACLs by resource, as
//! Kafka answers.

use std::collections::BTreeMap;

use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
    DescribeAclsRequest, DescribeAclsResponse,
};
use kafka_protocol::protocol::StrBytes;
use troupe_actors::auth::acl::{Acl, AclFilter, Operation, PatternType, Permission, ResourceType};
use troupe_actors::requests::acls;
use troupe_actors::ErrorKind;

use super::{error_code, Session};

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// A filter from Kafka's fields; `Err` names a code Kafka does not have.
fn filter(
    resource_type: i8,
    resource_name: Option<&StrBytes>,
    pattern_type: i8,
    principal: Option<&StrBytes>,
    host: Option<&StrBytes>,
    operation: i8,
    permission: i8,
) -> Result<AclFilter, String> {
    let code = |what: &str, c: i8| format!("{c} is not a {what}");
    Ok(AclFilter {
        resource_type: Some(
            ResourceType::of_code(resource_type)
                .ok_or_else(|| code("resource type", resource_type))?,
        ),
        resource_name: resource_name.map(|n| n.to_string()),
        pattern_type: Some(
            PatternType::of_code(pattern_type).ok_or_else(|| code("pattern type", pattern_type))?,
        ),
        principal: principal.map(|p| p.to_string()),
        host: host.map(|h| h.to_string()),
        operation: Some(Operation::of_code(operation).ok_or_else(|| code("operation", operation))?),
        permission: Some(
            Permission::of_code(permission).ok_or_else(|| code("permission", permission))?,
        ),
    })
}

pub fn describe(session: &Session, request: DescribeAclsRequest) -> DescribeAclsResponse {
    let wanted = match filter(
        request.resource_type_filter,
        request.resource_name_filter.as_ref(),
        request.pattern_type_filter,
        request.principal_filter.as_ref(),
        request.host_filter.as_ref(),
        request.operation,
        request.permission_type,
    ) {
        Ok(f) => f,
        Err(why) => {
            return DescribeAclsResponse::default()
                .with_error_code(ErrorKind::InvalidRequest.kafka_code())
                .with_error_message(Some(StrBytes::from_string(why)))
        }
    };
    let found = match acls::describe(&session.engine, &session.context, &wanted) {
        Ok(found) => found,
        Err(e) => {
            return DescribeAclsResponse::default()
                .with_error_code(error_code(e.kind()))
                .with_error_message(Some(StrBytes::from_string(e.to_string())))
        }
    };
    let mut by_resource: BTreeMap<(i8, String, i8), Vec<AclDescription>> = BTreeMap::new();
    for acl in found {
        by_resource
            .entry((
                acl.resource_type.code(),
                acl.resource_name.clone(),
                acl.pattern_type.code(),
            ))
            .or_default()
            .push(
                AclDescription::default()
                    .with_principal(text(&acl.principal))
                    .with_host(text(&acl.host))
                    .with_operation(acl.operation.code())
                    .with_permission_type(acl.permission.code()),
            );
    }
    DescribeAclsResponse::default().with_resources(
        by_resource
            .into_iter()
            .map(|((kind, name, pattern), list)| {
                DescribeAclsResource::default()
                    .with_resource_type(kind)
                    .with_resource_name(StrBytes::from_string(name))
                    .with_pattern_type(pattern)
                    .with_acls(list)
            })
            .collect(),
    )
}

pub async fn create(session: &Session, request: CreateAclsRequest) -> CreateAclsResponse {
    let mut results = Vec::with_capacity(request.creations.len());
    for c in request.creations {
        let acl = (|| -> Result<Acl, String> {
            Ok(Acl {
                resource_type: ResourceType::of_code(c.resource_type)
                    .ok_or("an unknown resource type")?,
                resource_name: c.resource_name.to_string(),
                pattern_type: PatternType::of_code(c.resource_pattern_type)
                    .ok_or("an unknown pattern type")?,
                principal: c.principal.to_string(),
                host: c.host.to_string(),
                operation: Operation::of_code(c.operation).ok_or("an unknown operation")?,
                permission: Permission::of_code(c.permission_type)
                    .ok_or("an unknown permission")?,
            })
        })();
        let outcome = match acl {
            Ok(acl) => acls::create(&session.engine, &session.context, vec![acl])
                .await
                .map_err(|e| (error_code(e.kind()), e.to_string())),
            Err(why) => Err((ErrorKind::InvalidRequest.kafka_code(), why.to_string())),
        };
        results.push(match outcome {
            Ok(()) => AclCreationResult::default(),
            Err((code, message)) => AclCreationResult::default()
                .with_error_code(code)
                .with_error_message(Some(StrBytes::from_string(message))),
        });
    }
    CreateAclsResponse::default().with_results(results)
}

fn delete_filter(f: &DeleteAclsFilter) -> Result<AclFilter, String> {
    filter(
        f.resource_type_filter,
        f.resource_name_filter.as_ref(),
        f.pattern_type_filter,
        f.principal_filter.as_ref(),
        f.host_filter.as_ref(),
        f.operation,
        f.permission_type,
    )
}

pub async fn delete(session: &Session, request: DeleteAclsRequest) -> DeleteAclsResponse {
    let parsed: Vec<Result<AclFilter, String>> =
        request.filters.iter().map(delete_filter).collect();
    let good: Vec<AclFilter> = parsed.iter().filter_map(|p| p.clone().ok()).collect();
    let deleted = acls::delete(&session.engine, &session.context, &good).await;
    let mut matched = match deleted {
        Ok(m) => m.into_iter(),
        Err(e) => {
            let result = DeleteAclsFilterResult::default()
                .with_error_code(error_code(e.kind()))
                .with_error_message(Some(StrBytes::from_string(e.to_string())));
            return DeleteAclsResponse::default()
                .with_filter_results(vec![result; request.filters.len()]);
        }
    };
    let results = parsed
        .into_iter()
        .map(|p| match p {
            Err(why) => DeleteAclsFilterResult::default()
                .with_error_code(ErrorKind::InvalidRequest.kafka_code())
                .with_error_message(Some(StrBytes::from_string(why))),
            Ok(_) => DeleteAclsFilterResult::default().with_matching_acls(
                matched
                    .next()
                    .unwrap_or_default()
                    .iter()
                    .map(|a| {
                        DeleteAclsMatchingAcl::default()
                            .with_resource_type(a.resource_type.code())
                            .with_resource_name(text(&a.resource_name))
                            .with_pattern_type(a.pattern_type.code())
                            .with_principal(text(&a.principal))
                            .with_host(text(&a.host))
                            .with_operation(a.operation.code())
                            .with_permission_type(a.permission.code())
                    })
                    .collect(),
            ),
        })
        .collect();
    DeleteAclsResponse::default().with_filter_results(results)
}
