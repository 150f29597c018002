//! `/v3/clusters/{cluster_id}/topics/{topic}/partitions`: Confluent's PartitionData,
//! plus the partition's offsets and size (`log_start_offset`, `log_end_offset`,
//! `high_watermark`, `size_bytes`, `leader_epoch`), which Confluent's API lacks and
//! dashboards need; a partition's replicas, leader and ISR (as the metadata image
//! gives them), its earliest and latest offsets (`…/offset`), the replicas a broker
//! holds, and reassignments (Confluent's read-only resources, plus a `POST` that
//! starts one).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};
use troupe_actors::auth::acl::{Operation, ResourceType};
use troupe_actors::partition::PartitionStatus;
use troupe_actors::requests::topics;

use super::{check_broker, check_cluster, cluster_body, Urls};
use crate::auth::Caller;
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
    caller: Caller,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let (cluster_id, topic) = path.into_inner();
    check_cluster(&state, &cluster_id)?;
    let (_, all) = state.partition_statuses(&caller, &topic, None).await?;
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
    caller: Caller,
    path: web::Path<(String, String, i32)>,
) -> ApiResult<HttpResponse> {
    let (cluster_id, topic, partition) = path.into_inner();
    check_cluster(&state, &cluster_id)?;
    let (_, one) = state
        .partition_statuses(&caller, &topic, Some(partition))
        .await?;
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
    caller: Caller,
    path: web::Path<(String, String, i32)>,
) -> ApiResult<HttpResponse> {
    let (cluster_id, topic, partition) = path.into_inner();
    check_cluster(&state, &cluster_id)?;
    check_partition(&state, &caller, &topic, partition)?;
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
/// Describe on the topic first, as every partition read.
fn check_partition(
    state: &AppState,
    caller: &Caller,
    topic: &str,
    partition: i32,
) -> ApiResult<()> {
    state
        .engine
        .authorize_topic(caller, Operation::Describe, topic)
        .map_err(troupe_actors::BrokerError::from)?;
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
    caller: Caller,
    path: web::Path<(String, String, i32, i32)>,
) -> ApiResult<HttpResponse> {
    let (cluster_id, topic, partition, broker_id) = path.into_inner();
    check_cluster(&state, &cluster_id)?;
    check_partition(&state, &caller, &topic, partition)?;
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
    caller: Caller,
    path: web::Path<(String, i32)>,
) -> ApiResult<HttpResponse> {
    let (cluster_id, broker_id) = path.into_inner();
    check_cluster(&state, &cluster_id)?;
    check_broker(&state, broker_id)?;
    let urls = Urls::new(&req, &state);
    let image = state.engine.image();
    let mut data = Vec::new();
    let visible = image.topics.values().filter(|t| {
        !t.deleting
            && state
                .engine
                .may(&caller, Operation::Describe, ResourceType::Topic, &t.name)
    });
    for topic in visible {
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

/// Confluent's ReassignmentData of one partition.
fn reassignment_json(urls: &Urls, r: &topics::Reassignment) -> Value {
    let path = format!("/topics/{}/partitions/{}", r.topic, r.partition);
    urls.resource(
        "KafkaReassignment",
        &format!("{path}/reassignment"),
        &format!("/topic={}/partition={}/reassignment", r.topic, r.partition),
        json!({
            "cluster_id": urls.cluster_id,
            "topic_name": r.topic,
            "partition_id": r.partition,
            "adding_replicas": r.adding,
            "removing_replicas": r.removing,
            // Beyond Confluent's fields: every replica now, the target first.
            "replica_ids": r.replicas,
            "replicas": urls.related(&format!("{path}/replicas")),
        }),
    )
}

/// `GET …/partitions/{p}/reassignment`: Confluent's ReassignmentData: what is being
/// added and removed (empty lists when nothing moves).
pub async fn reassignment(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String, i32)>,
) -> ApiResult<HttpResponse> {
    let (cluster_id, topic, partition) = path.into_inner();
    check_cluster(&state, &cluster_id)?;
    let at = placement(&state, &topic, partition);
    let described = topics::describe(&state.engine, &caller, &topic)?;
    if partition < 0 || partition >= described.partitions {
        return Err(troupe_actors::BrokerError::UnknownPartition { topic, partition }.into());
    }
    let urls = Urls::new(&req, &state);
    let found = topics::reassignments(&state.engine, &caller, Some(&topic))?
        .into_iter()
        .find(|r| r.partition == partition)
        .unwrap_or(topics::Reassignment {
            topic,
            partition,
            replicas: at
                .replicas
                .iter()
                .map(|r| troupe_actors::ids::NodeId::new(*r))
                .collect(),
            adding: Vec::new(),
            removing: Vec::new(),
        });
    Ok(HttpResponse::Ok().json(reassignment_json(&urls, &found)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReassignRequest {
    replica_ids: Vec<i32>,
}

/// `POST …/partitions/{p}/reassignment` with `{"replica_ids": [..]}` (Troupe's;
/// Confluent's v3 only reads reassignments): moves the partition to those brokers,
/// the first preferred as leader. New replicas catch up as followers before the
/// ones left out are dropped; the answer (202) is the reassignment begun. The same
/// replicas as before cancel a move in progress.
pub async fn reassign(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String, i32)>,
    body: web::Payload,
) -> ApiResult<HttpResponse> {
    let (cluster_id, topic, partition) = path.into_inner();
    let request: ReassignRequest = cluster_body(&state, &cluster_id, body).await?;
    let replicas = request
        .replica_ids
        .iter()
        .map(|r| troupe_actors::ids::NodeId::new(*r))
        .collect();
    topics::reassign(&state.engine, &caller, &topic, partition, replicas).await?;
    let urls = Urls::new(&req, &state);
    let found = topics::reassignments(&state.engine, &caller, Some(&topic))?
        .into_iter()
        .find(|r| r.partition == partition);
    let body = match found {
        Some(r) => reassignment_json(&urls, &r),
        // Already done (nothing to catch up), or cancelled.
        None => {
            json!({"topic_name": topic, "partition_id": partition, "adding_replicas": [], "removing_replicas": []})
        }
    };
    Ok(HttpResponse::Accepted().json(body))
}

/// `GET …/topics/{topic}/partitions/-/reassignment`: the topic's reassignments in
/// progress.
pub async fn topic_reassignments(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let (cluster_id, topic) = path.into_inner();
    check_cluster(&state, &cluster_id)?;
    let urls = Urls::new(&req, &state);
    let data = topics::reassignments(&state.engine, &caller, Some(&topic))?
        .iter()
        .map(|r| reassignment_json(&urls, r))
        .collect();
    Ok(HttpResponse::Ok().json(urls.list(
        "KafkaReassignmentList",
        &format!("/topics/{topic}/partitions/-/reassignment"),
        data,
    )))
}

/// `GET …/topics/-/partitions/-/reassignment`: every reassignment in progress.
pub async fn all_reassignments(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    check_cluster(&state, &path)?;
    let urls = Urls::new(&req, &state);
    let data = topics::reassignments(&state.engine, &caller, None)?
        .iter()
        .map(|r| reassignment_json(&urls, r))
        .collect();
    Ok(HttpResponse::Ok().json(urls.list(
        "KafkaReassignmentList",
        "/topics/-/partitions/-/reassignment",
        data,
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
    caller: Caller,
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
    let (_, one) = state
        .partition_statuses(&caller, &topic, Some(partition))
        .await?;
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
