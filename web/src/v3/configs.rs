//! `/v3/clusters/{cluster_id}/topics/{topic}/configs`: list, get, update (`PUT` with
//! `{"value"}`), reset (`DELETE`), and batch alter (`POST …/configs:alter`); and
//! every topic's configs at once (`GET …/topics/-/configs`). A config name Troupe
//! does not know is a 404 on its own path, as Confluent's.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};
use troupe_actors::broker::ConfigChange;
use troupe_actors::requests::{configs, topics, RequestContext};
use troupe_actors::topic_config::{topic_config_def, ConfigEntry, ConfigSource};

use super::topics::refuse_duplicate_names;
use super::{check_cluster, cluster_body, Urls};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

fn config_not_found(name: &str, topic: &str) -> ApiError {
    ApiError::not_found(format!("Config {name} cannot be found for topic {topic}."))
}

/// A config name Troupe has no definition for is not found (Confluent checks the
/// config exists before it alters it); an unknown topic is reported first.
async fn check_configs<'a>(
    state: &AppState,
    ctx: &RequestContext,
    topic: &str,
    names: impl IntoIterator<Item = &'a str>,
) -> ApiResult<()> {
    topics::describe(&state.engine, ctx, topic)?;
    for name in names {
        if topic_config_def(name).is_none() {
            return Err(config_not_found(name, topic));
        }
    }
    Ok(())
}

/// Who a config belongs to, as Confluent's config resources name it.
pub(super) enum ConfigOwner<'a> {
    /// A topic's config: `is_default` unless set on the topic, writable.
    Topic(&'a str),
    /// A broker's setting: read-only here (it changes in the configuration file).
    Broker(i32),
}

/// One config resource (Confluent's `KafkaTopicConfig` / `KafkaBrokerConfig`): the
/// fields both share, and the owner's own.
pub(super) fn config_json(urls: &Urls, owner: &ConfigOwner<'_>, e: &ConfigEntry) -> Value {
    let (kind, path, crn, owner_field, is_default, is_read_only) = match owner {
        ConfigOwner::Topic(topic) => (
            "KafkaTopicConfig",
            format!("/topics/{topic}/configs/{}", e.name),
            format!("/topic={topic}/config={}", e.name),
            ("topic_name", json!(topic)),
            e.source != ConfigSource::DynamicTopicConfig,
            false,
        ),
        ConfigOwner::Broker(id) => (
            "KafkaBrokerConfig",
            format!("/brokers/{id}/configs/{}", e.name),
            format!("/broker={id}/config={}", e.name),
            ("broker_id", json!(id)),
            e.source == ConfigSource::DefaultConfig,
            true,
        ),
    };
    let mut data = json!({
        "cluster_id": urls.cluster_id,
        "name": e.name,
        "value": e.value,
        "is_default": is_default,
        "is_read_only": is_read_only,
        "is_sensitive": false,
        "source": e.source.kafka_name(),
        "synonyms": e.synonyms.iter().map(|(name, value, source)| json!({
            "name": name, "value": value, "source": source.kafka_name()
        })).collect::<Vec<_>>(),
    });
    data[owner_field.0] = owner_field.1;
    urls.resource(kind, &path, &crn, data)
}

pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let (cluster_id, topic) = path.into_inner();
    check_cluster(&state, &cluster_id)?;
    let entries = configs::topic_configs(&state.engine, &caller, &topic).await?;
    let urls = Urls::new(&req, &state);
    let data = entries
        .iter()
        .map(|e| config_json(&urls, &ConfigOwner::Topic(&topic), e))
        .collect();
    Ok(HttpResponse::Ok().json(urls.list(
        "KafkaTopicConfigList",
        &format!("/topics/{topic}/configs"),
        data,
    )))
}

/// `GET …/topics/-/configs`: the effective configs of every topic, by topic.
pub async fn list_all(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    check_cluster(&state, &path)?;
    let urls = Urls::new(&req, &state);
    let mut data = Vec::new();
    for topic in topics::list(&state.engine, &caller) {
        let entries = match configs::topic_configs(&state.engine, &caller, &topic.name).await {
            Ok(entries) => entries,
            // Deleted since the listing, or described but not its configs.
            Err(
                troupe_actors::BrokerError::UnknownTopic(_) | troupe_actors::BrokerError::Denied(_),
            ) => continue,
            Err(e) => return Err(e.into()),
        };
        data.extend(
            entries
                .iter()
                .map(|e| config_json(&urls, &ConfigOwner::Topic(&topic.name), e)),
        );
    }
    Ok(HttpResponse::Ok().json(urls.list("KafkaTopicConfigList", "/topics/-/configs", data)))
}

pub async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String, String)>,
) -> ApiResult<HttpResponse> {
    let (cluster_id, topic, name) = path.into_inner();
    check_cluster(&state, &cluster_id)?;
    let entries = configs::topic_configs(&state.engine, &caller, &topic).await?;
    let entry = entries
        .iter()
        .find(|e| e.name == name)
        .ok_or_else(|| config_not_found(&name, &topic))?;
    Ok(HttpResponse::Ok().json(config_json(
        &Urls::new(&req, &state),
        &ConfigOwner::Topic(&topic),
        entry,
    )))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateConfigRequest {
    value: Option<String>,
}

pub async fn update(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String, String)>,
    body: web::Payload,
) -> ApiResult<HttpResponse> {
    let (cluster_id, topic, name) = path.into_inner();
    let request: UpdateConfigRequest = cluster_body(&state, &cluster_id, body).await?;
    check_configs(&state, &caller, &topic, [name.as_str()]).await?;
    // A PUT sets; only DELETE resets. A missing or null value is Kafka's
    // "null value not supported" for a SET, never a silent reset.
    let Some(value) = request.value else {
        return Err(ApiError::bad_request(format!(
            "Setting {name} needs a value (DELETE resets it to the default)"
        )));
    };
    configs::alter_topic_configs(
        &state.engine,
        &caller,
        &topic,
        vec![ConfigChange {
            name,
            value: Some(value),
        }],
        false,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn reset(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String, String)>,
) -> ApiResult<HttpResponse> {
    let (cluster_id, topic, name) = path.into_inner();
    check_cluster(&state, &cluster_id)?;
    check_configs(&state, &caller, &topic, [name.as_str()]).await?;
    configs::alter_topic_configs(
        &state.engine,
        &caller,
        &topic,
        vec![ConfigChange { name, value: None }],
        false,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AlterEntry {
    name: String,
    value: Option<String>,
    operation: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AlterRequest {
    data: Vec<AlterEntry>,
    #[serde(default)]
    validate_only: bool,
}

pub async fn alter(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: web::Payload,
) -> ApiResult<HttpResponse> {
    let (cluster_id, topic) = path.into_inner();
    let request: AlterRequest = cluster_body(&state, &cluster_id, body).await?;
    refuse_duplicate_names(request.data.iter().map(|e| e.name.as_str()))?;
    check_configs(
        &state,
        &caller,
        &topic,
        request.data.iter().map(|e| e.name.as_str()),
    )
    .await?;
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
    configs::alter_topic_configs(
        &state.engine,
        &caller,
        &topic,
        changes,
        request.validate_only,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
