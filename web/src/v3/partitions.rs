//! `/v3/clusters/{cluster_id}/topics/{topic}/partitions`: Confluent's PartitionData,
//! plus the partition's offsets and size (`log_start_offset`, `log_end_offset`,
//! `high_watermark`, `size_bytes`, `leader_epoch`), which Confluent's API lacks and
//! dashboards need.

use actix_web::{web, HttpRequest, HttpResponse};
use futures::future::join_all;
use serde_json::{json, Value};
use troupe_actors::broker::{RouteTopic, TopicRoute};
use troupe_actors::partition::{GetStatus, PartitionStatus};
use troupe_actors::BrokerError;

use super::{check_cluster, Urls};
use crate::error::ApiResult;
use crate::state::AppState;

/// Every partition's status, in partition order.
pub async fn statuses(route: &TopicRoute) -> ApiResult<Vec<PartitionStatus>> {
    let answers = join_all(route.partitions.iter().map(|p| p.send(GetStatus))).await;
    answers.into_iter().map(|a| a.map_err(Into::into)).collect()
}

pub async fn route_and_status(
    state: &AppState,
    topic: &str,
    partition: Option<i32>,
) -> ApiResult<(TopicRoute, Vec<PartitionStatus>)> {
    let route = state
        .ask(RouteTopic {
            name: topic.to_string(),
        })
        .await?;
    match partition {
        None => {
            let all = statuses(&route).await?;
            Ok((route, all))
        }
        Some(p) => {
            let addr = usize::try_from(p)
                .ok()
                .and_then(|i| route.partitions.get(i))
                .ok_or_else(|| BrokerError::UnknownPartition {
                    topic: topic.to_string(),
                    partition: p,
                })?;
            let status = addr.send(GetStatus).await?;
            Ok((route, vec![status]))
        }
    }
}

fn partition_json(urls: &Urls, node_id: i32, s: &PartitionStatus) -> Value {
    let path = format!("/topics/{}/partitions/{}", s.topic, s.partition);
    let mut fields = json!({
        "cluster_id": urls.cluster_id,
        "topic_name": s.topic,
        "partition_id": s.partition,
        "replicas": urls.related(&format!("{path}/replicas")),
        "reassignment": urls.related(&format!("{path}/reassignment")),
        "leader_epoch": s.leader_epoch,
        "log_start_offset": s.log_start_offset,
        "log_end_offset": s.log_end_offset,
        "high_watermark": s.high_watermark,
        "size_bytes": s.size_bytes,
        "segments": s.segments,
        "clean_bytes": s.clean_bytes,
        "dirty_bytes": s.dirty_bytes,
        "cleaner_runs": s.cleaner_runs,
        "online": s.online,
        // The replica set inline (beyond Confluent's fields), as the replicas
        // resource has it: this broker's replica, in sync while it is online.
        "replica_ids": [node_id],
        "isr_ids": if s.online { vec![node_id] } else { Vec::new() },
        "leader_id": if s.online { Some(node_id) } else { None },
    });
    if s.online {
        fields["leader"] = urls.related(&format!("{path}/replicas/{node_id}"));
    }
    urls.resource(
        "KafkaPartition",
        &path,
        &format!("/topic={}/partition={}", s.topic, s.partition),
        fields,
    )
}

pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let (cluster_id, topic) = path.into_inner();
    check_cluster(&state, &cluster_id)?;
    let (_, all) = route_and_status(&state, &topic, None).await?;
    let urls = Urls::new(&req, &state);
    let data = all
        .iter()
        .map(|s| partition_json(&urls, state.node_id, s))
        .collect();
    Ok(HttpResponse::Ok().json(urls.list(
        "KafkaPartitionList",
        &format!("/topics/{topic}/partitions"),
        data,
    )))
}

pub async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String, i32)>,
) -> ApiResult<HttpResponse> {
    let (cluster_id, topic, partition) = path.into_inner();
    check_cluster(&state, &cluster_id)?;
    let (_, one) = route_and_status(&state, &topic, Some(partition)).await?;
    let urls = Urls::new(&req, &state);
    Ok(HttpResponse::Ok().json(partition_json(&urls, state.node_id, &one[0])))
}

pub async fn replicas(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String, i32)>,
) -> ApiResult<HttpResponse> {
    let (cluster_id, topic, partition) = path.into_inner();
    check_cluster(&state, &cluster_id)?;
    let (_, one) = route_and_status(&state, &topic, Some(partition)).await?;
    let s = &one[0];
    let urls = Urls::new(&req, &state);
    let path = format!("/topics/{topic}/partitions/{partition}/replicas");
    let replica = urls.resource(
        "KafkaReplica",
        &format!("{path}/{}", state.node_id),
        &format!(
            "/topic={topic}/partition={partition}/replica={}",
            state.node_id
        ),
        json!({
            "cluster_id": urls.cluster_id,
            "topic_name": topic,
            "partition_id": partition,
            "broker_id": state.node_id,
            "is_leader": s.online,
            "is_in_sync": s.online,
            "broker": urls.related(&format!("/brokers/{}", state.node_id)),
        }),
    );
    Ok(HttpResponse::Ok().json(urls.list("KafkaReplicaList", &path, vec![replica])))
}
