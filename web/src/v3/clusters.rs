//! `GET /v3/clusters`, `/v3/clusters/{id}`, the brokers under it and their configs,
//! and the cluster's ACLs and cluster-wide broker configs (both empty: Troupe has no
//! ACLs and no dynamic cluster configs).

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};
use troupe_actors::auth::acl::Operation;
use troupe_actors::requests::configs;

use super::configs::{config_json, ConfigOwner};
use super::{check_broker, check_cluster, Urls};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

fn cluster(urls: &Urls, state: &AppState) -> Value {
    urls.resource(
        "KafkaCluster",
        "",
        "",
        json!({
            "cluster_id": state.cluster_id,
            "controller": urls.related(&format!("/brokers/{}", state.engine.image().controller_id)),
            "acls": urls.related("/acls"),
            "brokers": urls.related("/brokers"),
            "broker_configs": urls.related("/broker-configs"),
            "consumer_groups": urls.related("/consumer-groups"),
            "topics": urls.related("/topics"),
            "partition_reassignments": urls.related("/topics/-/partitions/-/reassignment"),
        }),
    )
}

/// Confluent's BrokerData for broker `id`, as the metadata image has it: its Kafka
/// listener's address (this node's own HTTP address when it has none), plus its
/// state and whether it is the active controller.
fn broker(urls: &Urls, state: &AppState, id: i32) -> Value {
    let image = state.engine.image();
    let registered = image.brokers.get(&troupe_actors::ids::NodeId::new(id));
    let endpoint = registered.and_then(|b| {
        b.endpoints
            .iter()
            .find(|e| e.listener != crate::HTTP_LISTENER)
    });
    let (host, port) = match endpoint {
        Some(e) => (e.host.clone(), e.port),
        None => (state.advertised_host.clone(), state.advertised_port),
    };
    let broker_state = match registered {
        Some(b) if b.fenced => "fenced",
        Some(b) if b.in_controlled_shutdown => "shutting_down",
        Some(_) => "alive",
        None => "unknown",
    };
    let mut fields = json!({
        "cluster_id": state.cluster_id,
        "broker_id": id,
        "host": host,
        "port": port,
        "rack": null,
        // Beyond Confluent's fields: what the dashboard's overview shows.
        "state": broker_state,
        "is_controller": image.controller_id.get() == id,
        "configs": urls.related(&format!("/brokers/{id}/configs")),
        "partition_replicas": urls.related(&format!("/brokers/{id}/partition-replicas")),
    });
    if id == state.node_id {
        // This node's own start time; another's is its own to tell.
        fields["started_at_ms"] = json!(state.started_at_ms);
        fields["uptime_ms"] = json!((state.engine.clock.now_ms() - state.started_at_ms).max(0));
    }
    urls.resource(
        "KafkaBroker",
        &format!("/brokers/{id}"),
        &format!("/broker={id}"),
        fields,
    )
}

pub async fn list(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let urls = Urls::new(&req, &state);
    let body = json!({
        "kind": "KafkaClusterList",
        "metadata": { "self": format!("{}/v3/clusters", urls.base), "next": null },
        "data": [cluster(&urls, &state)],
    });
    HttpResponse::Ok().json(body)
}

pub async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    check_cluster(&state, &path)?;
    Ok(HttpResponse::Ok().json(cluster(&Urls::new(&req, &state), &state)))
}

/// `GET …/quorum` (Troupe's, beyond Confluent's API, which has none): the brokers and
/// their states (alive, fenced, shutting down), the active controller, and the
/// metadata quorum — leader, term, this node's applied offset and, from the leader,
/// each voter's lag — as Kafka's `kafka-metadata-quorum.sh describe` shows them.
pub async fn describe_quorum(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    check_cluster(&state, &path)?;
    // Kafka's DescribeQuorum: Describe on the cluster.
    state
        .engine
        .authorize_cluster(&caller, Operation::Describe)
        .map_err(troupe_actors::BrokerError::from)?;
    let description =
        troupe_actors::requests::metadata::describe_cluster(&state.engine, &caller).await?;
    Ok(HttpResponse::Ok().json(json!({
        "kind": "TroupeClusterQuorum",
        "cluster_id": description.cluster_id,
        "node_id": description.node_id,
        "controller_id": description.controller_id,
        "metadata_offset": description.metadata_offset,
        "brokers": description.brokers,
        "quorum": description.quorum,
    })))
}

pub async fn list_brokers(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    check_cluster(&state, &path)?;
    let urls = Urls::new(&req, &state);
    Ok(HttpResponse::Ok().json(
        urls.list(
            "KafkaBrokerList",
            "/brokers",
            state
                .engine
                .image()
                .brokers
                .keys()
                .map(|id| broker(&urls, &state, id.get()))
                .collect(),
        ),
    ))
}

pub async fn get_broker(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, i32)>,
) -> ApiResult<HttpResponse> {
    let (cluster_id, broker_id) = path.into_inner();
    check_cluster(&state, &cluster_id)?;
    check_broker(&state, broker_id)?;
    Ok(HttpResponse::Ok().json(broker(&Urls::new(&req, &state), &state, broker_id)))
}

/// `GET …/brokers/{id}/configs`: the broker settings that set the topic defaults
/// (`log.retention.ms`, `compression.type`, …).
pub async fn broker_configs(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, i32)>,
) -> ApiResult<HttpResponse> {
    let (cluster_id, broker_id) = path.into_inner();
    check_cluster(&state, &cluster_id)?;
    check_broker(&state, broker_id)?;
    let entries = configs::broker_configs(&state.engine, &caller).await?;
    let urls = Urls::new(&req, &state);
    let data = entries
        .iter()
        .map(|e| config_json(&urls, &ConfigOwner::Broker(broker_id), e))
        .collect();
    Ok(HttpResponse::Ok().json(urls.list(
        "KafkaBrokerConfigList",
        &format!("/brokers/{broker_id}/configs"),
        data,
    )))
}

pub async fn broker_config(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, i32, String)>,
) -> ApiResult<HttpResponse> {
    let (cluster_id, broker_id, name) = path.into_inner();
    check_cluster(&state, &cluster_id)?;
    check_broker(&state, broker_id)?;
    let entries = configs::broker_configs(&state.engine, &caller).await?;
    let entry = entries.iter().find(|e| e.name == name).ok_or_else(|| {
        ApiError::not_found(format!(
            "Config {name} cannot be found for broker {broker_id}."
        ))
    })?;
    Ok(HttpResponse::Ok().json(config_json(
        &Urls::new(&req, &state),
        &ConfigOwner::Broker(broker_id),
        entry,
    )))
}

/// `GET …/broker-configs`: cluster-wide dynamic broker configs, of which Troupe has
/// none (its settings are per broker, static, under `/brokers/{id}/configs`).
pub async fn cluster_configs(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    check_cluster(&state, &path)?;
    state
        .engine
        .authorize_cluster(&caller, Operation::DescribeConfigs)
        .map_err(troupe_actors::BrokerError::from)?;
    let urls = Urls::new(&req, &state);
    Ok(HttpResponse::Ok().json(urls.list("KafkaClusterConfigList", "/broker-configs", Vec::new())))
}
