//! v2 metadata: `GET /topics`, `/topics/{t}`, `/topics/{t}/partitions`,
//! `/topics/{t}/partitions/{p}` and `/topics/{t}/partitions/{p}/offsets`.

use std::collections::BTreeMap;

use actix_web::{web, HttpResponse};
use serde_json::{json, Value};
use troupe_actors::partition::PartitionStatus;
use troupe_actors::requests::{configs, topics};
use troupe_actors::ErrorKind;

use super::{ok, topic_error};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

fn partition_json(node_id: i32, s: &PartitionStatus) -> Value {
    json!({
        "partition": s.partition,
        "leader": if s.online { node_id } else { -1 },
        "replicas": [{ "broker": node_id, "leader": s.online, "in_sync": s.online }],
    })
}

/// Topic names, internal topics left out (as Confluent's v2 lists them); v3 lists
/// every topic with `is_internal`.
pub async fn list(state: web::Data<AppState>, caller: Caller) -> ApiResult<HttpResponse> {
    let topics = topics::list(&state.engine, &caller);
    let names: Vec<&str> = topics
        .iter()
        .filter(|t| !t.internal)
        .map(|t| t.name.as_str())
        .collect();
    Ok(ok(json!(names)))
}

pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let topic = path.into_inner();
    let configs = configs::topic_configs(&state.engine, &caller, &topic)
        .await
        .map_err(|e| topic_error(e.into()))?;
    let (_, statuses) = state
        .partition_statuses(&caller, &topic, None)
        .await
        .map_err(topic_error)?;
    let configs: BTreeMap<String, String> =
        configs.into_iter().map(|e| (e.name, e.value)).collect();
    Ok(ok(json!({
        "name": topic,
        "configs": configs,
        "partitions": statuses.iter().map(|s| partition_json(state.node_id, s)).collect::<Vec<_>>(),
    })))
}

pub async fn partitions(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let (_, statuses) = state
        .partition_statuses(&caller, &path, None)
        .await
        .map_err(topic_error)?;
    Ok(ok(json!(statuses
        .iter()
        .map(|s| partition_json(state.node_id, s))
        .collect::<Vec<_>>())))
}

pub async fn partition(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, i32)>,
) -> ApiResult<HttpResponse> {
    let (topic, partition) = path.into_inner();
    let (_, one) = state
        .partition_statuses(&caller, &topic, Some(partition))
        .await
        .map_err(topic_error)?;
    Ok(ok(partition_json(state.node_id, &one[0])))
}

/// `beginning_offset` is the log start offset; `end_offset` the high watermark (the
/// offset the next record will get, once acknowledged).
pub async fn offsets(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, i32)>,
) -> ApiResult<HttpResponse> {
    let (topic, partition) = path.into_inner();
    let (_, one) = state
        .partition_statuses(&caller, &topic, Some(partition))
        .await
        .map_err(topic_error)?;
    // An offline partition's bounds are unknown, not zero.
    if !one[0].online {
        let reason = one[0].offline_reason.as_deref().unwrap_or("no leader");
        return Err(ApiError::of_kind(
            ErrorKind::Unavailable,
            format!("the offsets of {topic}-{partition} are unknown: {reason}"),
        ));
    }
    Ok(ok(json!({
        "beginning_offset": one[0].log_start_offset,
        "end_offset": one[0].high_watermark,
    })))
}
