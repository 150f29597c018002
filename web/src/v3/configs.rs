//! `/v3/clusters/{cluster_id}/topics/{topic}/configs`: list, get, update (`PUT` with
//! `{"value"}`), reset (`DELETE`), and batch alter (`POST …/configs:alter`).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};
use troupe_actors::broker::{AlterTopicConfigs, ConfigChange, TopicConfigs};
use troupe_actors::topic_config::ConfigEntry;

use super::{check_cluster, Urls};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::{json, read_body};

fn config_json(urls: &Urls, topic: &str, e: &ConfigEntry) -> Value {
    urls.resource(
        "KafkaTopicConfig",
        &format!("/topics/{topic}/configs/{}", e.name),
        &format!("/topic={topic}/config={}", e.name),
        json!({
            "cluster_id": urls.cluster_id,
            "topic_name": topic,
            "name": e.name,
            "value": e.value,
            "is_default": e.source != troupe_actors::topic_config::ConfigSource::DynamicTopicConfig,
            "is_read_only": false,
            "is_sensitive": false,
            "source": e.source.kafka_name(),
            "synonyms": e.synonyms.iter().map(|(name, value, source)| json!({
                "name": name, "value": value, "source": source.kafka_name()
            })).collect::<Vec<_>>(),
        }),
    )
}

pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let (cluster_id, topic) = path.into_inner();
    check_cluster(&state, &cluster_id)?;
    let entries = state
        .ask(TopicConfigs {
            name: topic.clone(),
        })
        .await?;
    let urls = Urls::new(&req, &state);
    let data = entries
        .iter()
        .map(|e| config_json(&urls, &topic, e))
        .collect();
    Ok(HttpResponse::Ok().json(urls.list(
        "KafkaTopicConfigList",
        &format!("/topics/{topic}/configs"),
        data,
    )))
}

pub async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
) -> ApiResult<HttpResponse> {
    let (cluster_id, topic, name) = path.into_inner();
    check_cluster(&state, &cluster_id)?;
    let entries = state
        .ask(TopicConfigs {
            name: topic.clone(),
        })
        .await?;
    let entry = entries.iter().find(|e| e.name == name).ok_or_else(|| {
        ApiError::not_found(format!("Config {name} cannot be found for topic {topic}."))
    })?;
    Ok(HttpResponse::Ok().json(config_json(&Urls::new(&req, &state), &topic, entry)))
}

#[derive(Deserialize)]
struct UpdateConfigRequest {
    value: Option<String>,
}

pub async fn update(
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
    body: web::Payload,
) -> ApiResult<HttpResponse> {
    let (cluster_id, topic, name) = path.into_inner();
    check_cluster(&state, &cluster_id)?;
    let body = read_body(body, state.limits.max_request_bytes).await?;
    let request: UpdateConfigRequest = json::parse(&body)?;
    state
        .ask(AlterTopicConfigs {
            name: topic,
            changes: vec![ConfigChange {
                name,
                value: request.value,
            }],
            validate_only: false,
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn reset(
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
) -> ApiResult<HttpResponse> {
    let (cluster_id, topic, name) = path.into_inner();
    check_cluster(&state, &cluster_id)?;
    state
        .ask(AlterTopicConfigs {
            name: topic,
            changes: vec![ConfigChange { name, value: None }],
            validate_only: false,
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
struct AlterEntry {
    name: String,
    value: Option<String>,
    operation: Option<String>,
}

#[derive(Deserialize)]
struct AlterRequest {
    data: Vec<AlterEntry>,
    #[serde(default)]
    validate_only: bool,
}

pub async fn alter(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Payload,
) -> ApiResult<HttpResponse> {
    let (cluster_id, topic) = path.into_inner();
    check_cluster(&state, &cluster_id)?;
    let body = read_body(body, state.limits.max_request_bytes).await?;
    let request: AlterRequest = json::parse(&body)?;
    let mut changes = Vec::with_capacity(request.data.len());
    for entry in request.data {
        let op = entry
            .operation
            .as_deref()
            .unwrap_or("SET")
            .to_ascii_uppercase();
        let value = match op.as_str() {
            "SET" => Some(entry.value.ok_or_else(|| {
                ApiError::bad_request(format!("SET of {} needs a value", entry.name))
            })?),
            "DELETE" => None,
            other => {
                return Err(ApiError::bad_request(format!(
                    "Unknown operation '{other}': use SET or DELETE"
                )))
            }
        };
        changes.push(ConfigChange {
            name: entry.name,
            value,
        });
    }
    state
        .ask(AlterTopicConfigs {
            name: topic,
            changes,
            validate_only: request.validate_only,
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
