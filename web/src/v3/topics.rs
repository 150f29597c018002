//! `/v3/clusters/{cluster_id}/topics`: list, create, get, delete, and increase
//! partitions (`PATCH` with `partitions_count`).

use std::collections::BTreeMap;

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};
use troupe_actors::broker::TopicMetadata;
use troupe_actors::ids::{NodeId, PartitionId};
use troupe_actors::requests::topics::{self, NewTopic};

use super::{check_cluster, cluster_body, Urls};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub fn topic_json(urls: &Urls, t: &TopicMetadata) -> Value {
    let path = format!("/topics/{}", t.name);
    urls.resource(
        "KafkaTopic",
        &path,
        &format!("/topic={}", t.name),
        json!({
            "cluster_id": urls.cluster_id,
            "topic_name": t.name,
            "topic_id": t.topic_id,
            "is_internal": t.internal,
            "replication_factor": t.replication_factor,
            "partitions_count": t.partitions,
            "partitions": urls.related(&format!("{path}/partitions")),
            "configs": urls.related(&format!("{path}/configs")),
            "partition_reassignments": urls.related(&format!("{path}/partitions/-/reassignment")),
            "authorized_operations": [],
        }),
    )
}

pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    check_cluster(&state, &path)?;
    let urls = Urls::new(&req, &state);
    let topics = topics::list(&state.engine, &caller);
    let data = topics.iter().map(|t| topic_json(&urls, t)).collect();
    Ok(HttpResponse::Ok().json(urls.list("KafkaTopicList", "/topics", data)))
}

/// Confluent's CreateTopicRequestData (`api/v3/openapi.yaml`); unknown fields are
/// refused, so a misspelt `partition_count` cannot silently make one partition.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigPair {
    pub name: String,
    pub value: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplicasAssignment {
    partition_id: PartitionId,
    broker_ids: Vec<NodeId>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateTopicRequest {
    topic_name: String,
    partitions_count: Option<i32>,
    replication_factor: Option<i16>,
    #[serde(default)]
    replicas_assignments: Vec<ReplicasAssignment>,
    #[serde(default)]
    configs: Vec<ConfigPair>,
    #[serde(default)]
    validate_only: bool,
}

/// Refuses a config named twice in one request (Kafka's INVALID_REQUEST): which one
/// would win is not the client's to guess.
pub fn refuse_duplicate_names<'a>(names: impl IntoIterator<Item = &'a str>) -> ApiResult<()> {
    let mut seen = std::collections::HashSet::new();
    for name in names {
        if !seen.insert(name) {
            return Err(ApiError::bad_request(format!(
                "Config {name} is given more than once in the request"
            )));
        }
    }
    Ok(())
}

pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Payload,
) -> ApiResult<HttpResponse> {
    let request: CreateTopicRequest = cluster_body(&state, &path, body).await?;
    refuse_duplicate_names(request.configs.iter().map(|c| c.name.as_str()))?;
    let configs: BTreeMap<String, String> = request
        .configs
        .into_iter()
        .filter_map(|c| c.value.map(|v| (c.name, v)))
        .collect();
    let created = topics::create(
        &state.engine,
        &caller,
        NewTopic {
            name: request.topic_name,
            partitions: request.partitions_count,
            replication_factor: request.replication_factor,
            replicas_assignments: request
                .replicas_assignments
                .into_iter()
                .map(|a| (a.partition_id, a.broker_ids))
                .collect(),
            configs,
            validate_only: request.validate_only,
        },
    )
    .await?;
    let urls = Urls::new(&req, &state);
    let body = topic_json(&urls, &created);
    if request.validate_only {
        return Ok(HttpResponse::Ok().json(body));
    }
    Ok(HttpResponse::Created()
        .insert_header(("Location", urls.url(&format!("/topics/{}", created.name))))
        .json(body))
}

pub async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let (cluster_id, name) = path.into_inner();
    check_cluster(&state, &cluster_id)?;
    let topic = topics::describe(&state.engine, &caller, &name)?;
    Ok(HttpResponse::Ok().json(topic_json(&Urls::new(&req, &state), &topic)))
}

pub async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let (cluster_id, name) = path.into_inner();
    check_cluster(&state, &cluster_id)?;
    topics::delete(&state.engine, &caller, &name).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateTopicRequest {
    partitions_count: i32,
    #[serde(default)]
    validate_only: bool,
}

pub async fn update(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: web::Payload,
) -> ApiResult<HttpResponse> {
    let (cluster_id, name) = path.into_inner();
    let request: UpdateTopicRequest = cluster_body(&state, &cluster_id, body).await?;
    let topic = topics::create_partitions(
        &state.engine,
        &caller,
        &name,
        request.partitions_count,
        request.validate_only,
    )
    .await?;
    Ok(HttpResponse::Ok().json(topic_json(&Urls::new(&req, &state), &topic)))
}
