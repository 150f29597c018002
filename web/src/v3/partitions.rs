//! `/v3/clusters/{cluster_id}/topics/{topic}/partitions`: Confluent's PartitionData,
//! plus the partition's offsets and size (`log_start_offset`, `log_end_offset`,
//! `high_watermark`, `size_bytes`, `leader_epoch`), which Confluent's API lacks and
//! dashboards need; a partition's replicas, leader and ISR (as the metadata image
//! gives them), its earliest and latest offsets (`…/offset`), the replicas a broker
//! holds, and reassignments (none ever run yet: empty lists, and a partition's
//! shows nothing moving).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};
use troupe_actors::partition::PartitionStatus;
use troupe_actors::requests::topics;

use super::{check_broker, check_cluster, Urls};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// A partition's place in the cluster, from the metadata image: replicas, ISR and
/// leader (`None`: offline).
struct Placement {
    replicas: Vec<i32>,
    isr: Vec<i32>,
    leader: Option<i32>,
}

fn placement(state: &AppState, topic: &str, partition: i32) -> Placement {
    let image = state.engine.image();
    let p = image
        .topics
        .get(topic)
        .and_then(|t| t.partitions.get(partition as usize));
    match p {
        Some(p) => Placement {
            replicas: p.replicas.iter().map(|r| r.get()).collect(),
            isr: p.isr.iter().map(|r| r.get()).collect(),
            leader: Some(p.leader.get()).filter(|l| *l >= 0),
        },
        None => Placement {
            replicas: Vec::new(),
            isr: Vec::new(),
            leader: None,
        },
    }
}

fn partition_json(urls: &Urls, state: &AppState, s: &PartitionStatus) -> Value {
    let path = format!("/topics/{}/partitions/{}", s.topic, s.partition);
    let at = placement(state, &s.topic, s.partition);
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
        // resource has it.
        "replica_ids": at.replicas,
        "isr_ids": at.isr,
        "leader_id": at.leader,
    });
    if let Some(leader) = at.leader {
        fields["leader"] = urls.related(&format!("{path}/replicas/{leader}"));
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
    let (_, all) = state.partition_statuses(&topic, None).await?;
    let urls = Urls::new(&req, &state);
    let data = all
        .iter()
        .map(|s| partition_json(&urls, &state, s))
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
    let (_, one) = state.partition_statuses(&topic, Some(partition)).await?;
    let urls = Urls::new(&req, &state);
    Ok(HttpResponse::Ok().json(partition_json(&urls, &state, &one[0])))
}

/// Confluent's ReplicaData: broker `broker_id`'s replica of a partition.
fn replica_json(urls: &Urls, broker_id: i32, topic: &str, partition: i32, at: &Placement) -> Value {
    urls.resource(
        "KafkaReplica",
        &format!("/topics/{topic}/partitions/{partition}/replicas/{broker_id}"),
        &format!("/topic={topic}/partition={partition}/replica={broker_id}"),
        json!({
            "cluster_id": urls.cluster_id,
            "topic_name": topic,
            "partition_id": partition,
            "broker_id": broker_id,
            "is_leader": at.leader == Some(broker_id),
            "is_in_sync": at.isr.contains(&broker_id),
            "broker": urls.related(&format!("/brokers/{broker_id}")),
        }),
    )
}

pub async fn replicas(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String, i32)>,
) -> ApiResult<HttpResponse> {
    let (cluster_id, topic, partition) = path.into_inner();
    check_cluster(&state, &cluster_id)?;
    check_partition(&state, &topic, partition)?;
    let urls = Urls::new(&req, &state);
    let at = placement(&state, &topic, partition);
    let data = at
        .replicas
        .iter()
        .map(|b| replica_json(&urls, *b, &topic, partition, &at))
        .collect();
    Ok(HttpResponse::Ok().json(urls.list(
        "KafkaReplicaList",
        &format!("/topics/{topic}/partitions/{partition}/replicas"),
        data,
    )))
}

/// The topic and partition exist (as the image has them), or a 404 that says which.
fn check_partition(state: &AppState, topic: &str, partition: i32) -> ApiResult<()> {
    let image = state.engine.image();
    let count = image.topic(topic).map_err(ApiError::from)?.partitions.len();
    if !(0..count as i32).contains(&partition) {
        return Err(troupe_actors::BrokerError::UnknownPartition {
            topic: topic.to_string(),
            partition,
        }
        .into());
    }
    Ok(())
}

/// `GET …/partitions/{p}/replicas/{broker_id}`: the partition's leader link points here.
pub async fn replica(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String, i32, i32)>,
) -> ApiResult<HttpResponse> {
    let (cluster_id, topic, partition, broker_id) = path.into_inner();
    check_cluster(&state, &cluster_id)?;
    check_partition(&state, &topic, partition)?;
    let at = placement(&state, &topic, partition);
    if !at.replicas.contains(&broker_id) {
        return Err(ApiError::not_found(format!(
            "Partition {topic}-{partition} has no replica on broker {broker_id}."
        )));
    }
    let urls = Urls::new(&req, &state);
    Ok(HttpResponse::Ok().json(replica_json(&urls, broker_id, &topic, partition, &at)))
}

/// `GET …/brokers/{id}/partition-replicas`: every replica the broker holds, by topic
/// then partition.
pub async fn broker_replicas(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, i32)>,
) -> ApiResult<HttpResponse> {
    let (cluster_id, broker_id) = path.into_inner();
    check_cluster(&state, &cluster_id)?;
    check_broker(&state, broker_id)?;
    let urls = Urls::new(&req, &state);
    let image = state.engine.image();
    let mut data = Vec::new();
    for topic in image.topics.values().filter(|t| !t.deleting) {
        for p in &topic.partitions {
            let partition = p.partition.get();
            let at = placement(&state, &topic.name, partition);
            if at.replicas.contains(&broker_id) {
                data.push(replica_json(&urls, broker_id, &topic.name, partition, &at));
            }
        }
    }
    Ok(HttpResponse::Ok().json(urls.list(
        "KafkaReplicaList",
        &format!("/brokers/{broker_id}/partition-replicas"),
        data,
    )))
}

/// `GET …/partitions/{p}/reassignment`: Confluent's ReassignmentData. Nothing is ever
/// being moved on one node, so nothing is being added or removed.
pub async fn reassignment(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String, i32)>,
) -> ApiResult<HttpResponse> {
    let (cluster_id, topic, partition) = path.into_inner();
    check_cluster(&state, &cluster_id)?;
    state.partition_statuses(&topic, Some(partition)).await?;
    let urls = Urls::new(&req, &state);
    let path = format!("/topics/{topic}/partitions/{partition}");
    Ok(HttpResponse::Ok().json(urls.resource(
        "KafkaReassignment",
        &format!("{path}/reassignment"),
        &format!("/topic={topic}/partition={partition}/reassignment"),
        json!({
            "cluster_id": urls.cluster_id,
            "topic_name": topic,
            "partition_id": partition,
            "adding_replicas": [],
            "removing_replicas": [],
            "replicas": urls.related(&format!("{path}/replicas")),
        }),
    )))
}

/// `GET …/topics/{topic}/partitions/-/reassignment`: ongoing reassignments of a
/// topic — none.
pub async fn topic_reassignments(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let (cluster_id, topic) = path.into_inner();
    check_cluster(&state, &cluster_id)?;
    topics::describe(&state.engine, &state.context(), &topic)?;
    let urls = Urls::new(&req, &state);
    Ok(HttpResponse::Ok().json(urls.list(
        "KafkaReassignmentList",
        &format!("/topics/{topic}/partitions/-/reassignment"),
        Vec::new(),
    )))
}

/// `GET …/topics/-/partitions/-/reassignment`: ongoing reassignments — none.
pub async fn all_reassignments(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    check_cluster(&state, &path)?;
    let urls = Urls::new(&req, &state);
    Ok(HttpResponse::Ok().json(urls.list(
        "KafkaReassignmentList",
        "/topics/-/partitions/-/reassignment",
        Vec::new(),
    )))
}

#[derive(Deserialize)]
pub struct OffsetQuery {
    offset_type: Option<String>,
}

/// The one `offset_type` Confluent knows (and its default).
const EARLIEST_AND_LATEST: &str = "earliest_and_latest";

/// `GET …/partitions/{p}/offset?offset_type=earliest_and_latest`: Confluent's
/// PartitionWithOffsets, the offsets Kafka's ListOffsets answers for `earliest`
/// (the log start offset) and `latest` (the high watermark).
pub async fn offsets(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String, i32)>,
    query: web::Query<OffsetQuery>,
) -> ApiResult<HttpResponse> {
    let (cluster_id, topic, partition) = path.into_inner();
    check_cluster(&state, &cluster_id)?;
    let offset_type = query.offset_type.as_deref().unwrap_or(EARLIEST_AND_LATEST);
    if offset_type != EARLIEST_AND_LATEST {
        // Confluent answers a JAX-RS BadRequest: the bare status as the code.
        return Err(ApiError::new(
            actix_web::http::StatusCode::BAD_REQUEST,
            400,
            format!("offset_type:{offset_type} is invalid (only {EARLIEST_AND_LATEST} is known)"),
        ));
    }
    let (_, one) = state.partition_statuses(&topic, Some(partition)).await?;
    let s = &one[0];
    let urls = Urls::new(&req, &state);
    Ok(HttpResponse::Ok().json(urls.resource(
        "KafkaPartitionWithOffsets",
        &format!("/topics/{topic}/partitions/{partition}/offset"),
        &format!("/topic={topic}/partition={partition}/offset_type={EARLIEST_AND_LATEST}"),
        json!({
            "cluster_id": urls.cluster_id,
            "topic_name": topic,
            "partition_id": partition,
            "earliest_offset": s.log_start_offset,
            "latest_offset": s.high_watermark,
        }),
    )))
}
