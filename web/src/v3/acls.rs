//! `/v3/clusters/{cluster_id}/acls`: Confluent v3's ACL API over Kafka's ACL model
//! (stored in the cluster metadata).
//!
//! - `GET …/acls?resource_type=&resource_name=&pattern_type=&principal=&host=&operation=&permission=`
//!   searches (each parameter optional; `ANY`, and for `pattern_type` `MATCH`, as
//!   Kafka's filters).
//! - `POST …/acls` `{resource_type, resource_name, pattern_type, principal, host,
//!   operation, permission}` creates one → 201; `POST …/acls:batch` `{"data": [...]}`
//!   creates several, all or none → 204.
//! - `DELETE …/acls?…` deletes every ACL the filter matches → 200 with them;
//!   `resource_type` is required (`ANY` to mean it), so a bare DELETE cannot empty the
//!   cluster's ACLs by accident.
//!
//! Names are Kafka's, upper case (`TOPIC`, `PREFIXED`, `DESCRIBE_CONFIGS`); any case
//! is read.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};
use troupe_actors::auth::acl::{Acl, AclFilter, Operation, PatternType, Permission, ResourceType};
use troupe_actors::requests::acls;

use super::{check_cluster, cluster_body, Urls};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

fn acl_json(urls: &Urls, acl: &Acl) -> Value {
    let query = format!(
        "/acls?resource_type={}&resource_name={}&pattern_type={}&principal={}&host={}&operation={}&permission={}",
        acl.resource_type,
        encode(&acl.resource_name),
        acl.pattern_type,
        encode(&acl.principal),
        encode(&acl.host),
        acl.operation,
        acl.permission
    );
    json!({
        "kind": "KafkaAcl",
        "metadata": { "self": urls.url(&query) },
        "cluster_id": urls.cluster_id,
        "resource_type": acl.resource_type,
        "resource_name": acl.resource_name,
        "pattern_type": acl.pattern_type,
        "principal": acl.principal,
        "host": acl.host,
        "operation": acl.operation,
        "permission": acl.permission,
    })
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// The search parameters, as text (read leniently, refused precisely).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AclQuery {
    resource_type: Option<String>,
    resource_name: Option<String>,
    pattern_type: Option<String>,
    principal: Option<String>,
    host: Option<String>,
    operation: Option<String>,
    permission: Option<String>,
}

fn named<T>(what: &str, text: Option<&str>, parse: fn(&str) -> Option<T>) -> ApiResult<Option<T>> {
    text.map(|t| parse(t).ok_or_else(|| ApiError::bad_request(format!("'{t}' is not a {what}"))))
        .transpose()
}

impl AclQuery {
    fn filter(&self) -> ApiResult<AclFilter> {
        Ok(AclFilter {
            resource_type: named(
                "resource type",
                self.resource_type.as_deref(),
                ResourceType::parse,
            )?,
            resource_name: self.resource_name.clone(),
            pattern_type: named(
                "pattern type",
                self.pattern_type.as_deref(),
                PatternType::parse,
            )?,
            principal: self.principal.clone(),
            host: self.host.clone(),
            operation: named("operation", self.operation.as_deref(), Operation::parse)?,
            permission: named("permission", self.permission.as_deref(), Permission::parse)?,
        })
    }
}

/// Confluent's CreateAclRequestData: every field required.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewAcl {
    resource_type: String,
    resource_name: String,
    pattern_type: String,
    principal: String,
    host: String,
    operation: String,
    permission: String,
}

/// A required name: parsed, or refused naming it.
fn one<T>(what: &str, text: &str, parse: fn(&str) -> Option<T>) -> ApiResult<T> {
    parse(text).ok_or_else(|| ApiError::bad_request(format!("'{text}' is not a {what}")))
}

impl NewAcl {
    fn acl(self) -> ApiResult<Acl> {
        Ok(Acl {
            resource_type: one("resource type", &self.resource_type, ResourceType::parse)?,
            resource_name: self.resource_name,
            pattern_type: one("pattern type", &self.pattern_type, PatternType::parse)?,
            principal: self.principal,
            host: self.host,
            operation: one("operation", &self.operation, Operation::parse)?,
            permission: one("permission", &self.permission, Permission::parse)?,
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewAcls {
    data: Vec<NewAcl>,
}

pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: web::Query<AclQuery>,
) -> ApiResult<HttpResponse> {
    check_cluster(&state, &path)?;
    let urls = Urls::new(&req, &state);
    let filter = query.filter()?;
    let data = acls::describe(&state.engine, &caller, &filter)?
        .iter()
        .map(|a| acl_json(&urls, a))
        .collect();
    Ok(HttpResponse::Ok().json(urls.list("KafkaAclList", "/acls", data)))
}

pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Payload,
) -> ApiResult<HttpResponse> {
    let acl = cluster_body::<NewAcl>(&state, &path, body).await?.acl()?;
    acls::create(&state.engine, &caller, vec![acl]).await?;
    Ok(HttpResponse::Created().finish())
}

pub async fn create_batch(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Payload,
) -> ApiResult<HttpResponse> {
    let batch: NewAcls = cluster_body(&state, &path, body).await?;
    let acls_wanted = batch
        .data
        .into_iter()
        .map(NewAcl::acl)
        .collect::<ApiResult<Vec<_>>>()?;
    acls::create(&state.engine, &caller, acls_wanted).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: web::Query<AclQuery>,
) -> ApiResult<HttpResponse> {
    check_cluster(&state, &path)?;
    if query.resource_type.is_none() {
        return Err(ApiError::bad_request(
            "resource_type is required to delete ACLs (ANY for every type)",
        ));
    }
    let filter = query.filter()?;
    let deleted = acls::delete(&state.engine, &caller, std::slice::from_ref(&filter)).await?;
    let urls = Urls::new(&req, &state);
    let data: Vec<Value> = deleted
        .into_iter()
        .flatten()
        .map(|a| acl_json(&urls, &a))
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "data": data })))
}
