//! `/v3/clusters/{cluster_id}/consumer-groups`: Confluent's consumer group, consumer,
//! assignment, lag and lag-summary resources — and, beyond Confluent (which has no
//! write API for groups), `DELETE` of an empty group and
//! `POST …/consumer-groups/{group}/offsets:reset` while the group has no members.
//!
//! Lag is the log end (high watermark) minus the committed offset, for every
//! partition the group has committed.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};
use troupe_actors::group::{
    GroupDescription, GroupState, MemberDescription, PartitionLag, ResetSpec, TopicPartition,
};
use troupe_actors::ids::GenerationId;
use troupe_actors::requests::{groups, RequestContext};

use super::{check_cluster, parse_body, Urls};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::read_body;
use crate::state::AppState;
use crate::timestamps::lookup_timestamp as parse_timestamp;

pub fn configure(cfg: &mut web::ServiceConfig) {
    let g = "/v3/clusters/{cluster_id}/consumer-groups";
    cfg.route(g, web::get().to(list))
        .route(&format!("{g}/{{group}}"), web::get().to(get))
        .route(&format!("{g}/{{group}}"), web::delete().to(delete))
        .route(
            &format!("{g}/{{group}}/consumers"),
            web::get().to(consumers),
        )
        .route(
            &format!("{g}/{{group}}/consumers/{{consumer}}"),
            web::get().to(consumer),
        )
        .route(
            &format!("{g}/{{group}}/consumers/{{consumer}}/assignments"),
            web::get().to(assignments),
        )
        .route(
            &format!("{g}/{{group}}/consumers/{{consumer}}/assignments/{{topic}}/partitions/{{partition}}"),
            web::get().to(assignment),
        )
        .route(&format!("{g}/{{group}}/lags"), web::get().to(lags))
        .route(
            &format!("{g}/{{group}}/lags/{{topic}}/partitions/{{partition}}"),
            web::get().to(lag),
        )
        .route(
            &format!("{g}/{{group}}/lag-summary"),
            web::get().to(lag_summary),
        )
        .route(
            &format!("{g}/{{group}}/offsets:reset"),
            web::post().to(reset_offsets),
        );
}

/// Confluent's state names.
pub fn state_name(state: GroupState) -> &'static str {
    match state {
        GroupState::Empty => "EMPTY",
        GroupState::PreparingRebalance => "PREPARING_REBALANCE",
        GroupState::CompletingRebalance => "COMPLETING_REBALANCE",
        GroupState::Stable => "STABLE",
        GroupState::Dead => "DEAD",
    }
}

async fn describe(
    state: &AppState,
    ctx: &RequestContext,
    group_id: &str,
) -> ApiResult<GroupDescription> {
    Ok(groups::describe(&state.engine, ctx, group_id).await?)
}

fn group_json(urls: &Urls, node_id: i32, g: &GroupDescription) -> Value {
    let path = format!("/consumer-groups/{}", g.group_id);
    urls.resource(
        "KafkaConsumerGroup",
        &path,
        &format!("/consumer-group={}", g.group_id),
        json!({
            "cluster_id": urls.cluster_id,
            "consumer_group_id": g.group_id,
            // Only ever used for standalone commits (manual assignment, resets).
            "is_simple": g.generation_id == GenerationId::INITIAL,
            "partition_assignor": g.protocol.clone().unwrap_or_default(),
            "state": state_name(g.state),
            // Kafka's classic group protocol (JoinGroup/SyncGroup) is the only one
            // Troupe speaks, so no group mixes it with KIP-848 consumers.
            "type": "CLASSIC",
            "is_mixed_consumer_group": false,
            "generation_id": g.generation_id,
            "members_count": g.members.len(),
            "coordinator": urls.related(&format!("/brokers/{node_id}")),
            "consumers": urls.related(&format!("{path}/consumers")),
            "lag_summary": urls.related(&format!("{path}/lag-summary")),
        }),
    )
}

fn consumer_json(urls: &Urls, group_id: &str, m: &MemberDescription) -> Value {
    let path = format!("/consumer-groups/{group_id}/consumers/{}", m.member_id);
    urls.resource(
        "KafkaConsumer",
        &path,
        &format!("/consumer-group={group_id}/consumer={}", m.member_id),
        json!({
            "cluster_id": urls.cluster_id,
            "consumer_group_id": group_id,
            "consumer_id": m.member_id,
            "instance_id": null,
            "client_id": m.client_id,
            "client_host": m.client_host,
            "subscription": m.topics,
            "assignments": urls.related(&format!("{path}/assignments")),
        }),
    )
}

type GroupPath = web::Path<(String, String)>;

async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    cluster: web::Path<String>,
) -> ApiResult<HttpResponse> {
    check_cluster(&state, &cluster)?;
    let urls = Urls::new(&req, &state);
    let groups = groups::list(&state.engine, &caller).await?;
    let data = groups
        .iter()
        .map(|g| group_json(&urls, state.node_id, g))
        .collect();
    Ok(HttpResponse::Ok().json(urls.list("KafkaConsumerGroupList", "/consumer-groups", data)))
}

async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    path: GroupPath,
) -> ApiResult<HttpResponse> {
    let (cluster, group_id) = path.into_inner();
    check_cluster(&state, &cluster)?;
    let group = describe(&state, &caller, &group_id).await?;
    let urls = Urls::new(&req, &state);
    Ok(HttpResponse::Ok().json(group_json(&urls, state.node_id, &group)))
}

async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    path: GroupPath,
) -> ApiResult<HttpResponse> {
    let (cluster, group_id) = path.into_inner();
    check_cluster(&state, &cluster)?;
    groups::delete(&state.engine, &caller, &group_id).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn consumers(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    path: GroupPath,
) -> ApiResult<HttpResponse> {
    let (cluster, group_id) = path.into_inner();
    check_cluster(&state, &cluster)?;
    let group = describe(&state, &caller, &group_id).await?;
    let urls = Urls::new(&req, &state);
    let data = group
        .members
        .iter()
        .map(|m| consumer_json(&urls, &group_id, m))
        .collect();
    Ok(HttpResponse::Ok().json(urls.list(
        "KafkaConsumerList",
        &format!("/consumer-groups/{group_id}/consumers"),
        data,
    )))
}

async fn member<'a>(
    group: &'a GroupDescription,
    consumer_id: &str,
) -> ApiResult<&'a MemberDescription> {
    group
        .members
        .iter()
        .find(|m| m.member_id == consumer_id)
        .ok_or_else(|| {
            ApiError::new(
                actix_web::http::StatusCode::NOT_FOUND,
                crate::error::codes::CONSUMER_INSTANCE_NOT_FOUND,
                format!(
                    "Consumer {consumer_id} is not a member of group {}",
                    group.group_id
                ),
            )
        })
}

async fn consumer(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String, String)>,
) -> ApiResult<HttpResponse> {
    let (cluster, group_id, consumer_id) = path.into_inner();
    check_cluster(&state, &cluster)?;
    let group = describe(&state, &caller, &group_id).await?;
    let m = member(&group, &consumer_id).await?;
    let urls = Urls::new(&req, &state);
    Ok(HttpResponse::Ok().json(consumer_json(&urls, &group_id, m)))
}

async fn assignments(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String, String)>,
) -> ApiResult<HttpResponse> {
    let (cluster, group_id, consumer_id) = path.into_inner();
    check_cluster(&state, &cluster)?;
    let group = describe(&state, &caller, &group_id).await?;
    let m = member(&group, &consumer_id).await?;
    let urls = Urls::new(&req, &state);
    let mut assigned: Vec<&TopicPartition> = m.assignment.iter().collect();
    // Confluent lists them by topic, then partition.
    assigned.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    let data = assigned
        .into_iter()
        .map(|tp| assignment_json(&urls, &group_id, &consumer_id, tp))
        .collect();
    Ok(HttpResponse::Ok().json(urls.list(
        "KafkaConsumerAssignmentList",
        &format!("/consumer-groups/{group_id}/consumers/{consumer_id}/assignments"),
        data,
    )))
}

/// Confluent's ConsumerAssignmentData; its resource name is
/// `…/consumer={c}/assignment={topic}/partition={p}`, as Confluent's CrnFactory
/// builds it.
fn assignment_json(urls: &Urls, group_id: &str, consumer_id: &str, tp: &TopicPartition) -> Value {
    let (topic, partition) = (&tp.topic, tp.partition);
    urls.resource(
        "KafkaConsumerAssignment",
        &format!(
            "/consumer-groups/{group_id}/consumers/{consumer_id}/assignments/{topic}/partitions/{partition}"
        ),
        &format!(
            "/consumer-group={group_id}/consumer={consumer_id}/assignment={topic}/partition={partition}"
        ),
        json!({
            "cluster_id": urls.cluster_id,
            "consumer_group_id": group_id,
            "consumer_id": consumer_id,
            "topic_name": topic,
            "partition_id": partition,
            "partition": urls.related(&format!("/topics/{topic}/partitions/{partition}")),
            "lag": urls.related(&format!("/consumer-groups/{group_id}/lags/{topic}/partitions/{partition}")),
        }),
    )
}

/// `GET …/consumers/{c}/assignments/{topic}/partitions/{p}`: one assignment (the
/// `self` of each listed one).
async fn assignment(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String, String, String, i32)>,
) -> ApiResult<HttpResponse> {
    let (cluster, group_id, consumer_id, topic, partition) = path.into_inner();
    check_cluster(&state, &cluster)?;
    let group = describe(&state, &caller, &group_id).await?;
    let m = member(&group, &consumer_id).await?;
    let tp = m
        .assignment
        .iter()
        .find(|tp| tp.topic == topic && tp.partition == partition)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "Consumer {consumer_id} of group {group_id} is not assigned {topic}-{partition}"
            ))
        })?;
    let urls = Urls::new(&req, &state);
    Ok(HttpResponse::Ok().json(assignment_json(&urls, &group_id, &consumer_id, tp)))
}

fn lag_json(urls: &Urls, group_id: &str, l: &PartitionLag) -> Value {
    let (topic, partition) = (&l.partition.topic, l.partition.partition);
    urls.resource(
        "KafkaConsumerLag",
        &format!("/consumer-groups/{group_id}/lags/{topic}/partitions/{partition}"),
        // Confluent's resource name: `lag={topic}/partition={p}`.
        &format!("/consumer-group={group_id}/lag={topic}/partition={partition}"),
        json!({
            "cluster_id": urls.cluster_id,
            "consumer_group_id": group_id,
            "topic_name": topic,
            "partition_id": partition,
            "current_offset": l.committed_offset,
            "log_end_offset": l.log_end_offset,
            "lag": l.lag_records,
            "consumer_id": l.member_id.clone().unwrap_or_default(),
            "instance_id": null,
            "client_id": l.client_id.clone().unwrap_or_default(),
        }),
    )
}

/// The group's lags, largest first, then by topic and partition (Confluent's order).
async fn group_lags(
    state: &AppState,
    ctx: &RequestContext,
    group_id: &str,
) -> ApiResult<Vec<PartitionLag>> {
    describe(state, ctx, group_id).await?;
    let mut lags = groups::lag(&state.engine, ctx, group_id).await?;
    lags.sort_by(|a, b| {
        b.lag_records
            .cmp(&a.lag_records)
            .then_with(|| a.partition.topic.cmp(&b.partition.topic))
            .then_with(|| a.partition.partition.cmp(&b.partition.partition))
    });
    Ok(lags)
}

async fn lags(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    path: GroupPath,
) -> ApiResult<HttpResponse> {
    let (cluster, group_id) = path.into_inner();
    check_cluster(&state, &cluster)?;
    let lags = group_lags(&state, &caller, &group_id).await?;
    let urls = Urls::new(&req, &state);
    let data = lags.iter().map(|l| lag_json(&urls, &group_id, l)).collect();
    Ok(HttpResponse::Ok().json(urls.list(
        "KafkaConsumerLagList",
        &format!("/consumer-groups/{group_id}/lags"),
        data,
    )))
}

async fn lag(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String, String, i32)>,
) -> ApiResult<HttpResponse> {
    let (cluster, group_id, topic, partition) = path.into_inner();
    check_cluster(&state, &cluster)?;
    let lags = group_lags(&state, &caller, &group_id).await?;
    let l = lags
        .iter()
        .find(|l| l.partition.topic == topic && l.partition.partition == partition)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "Group {group_id} has no committed offset for {topic}-{partition}"
            ))
        })?;
    let urls = Urls::new(&req, &state);
    Ok(HttpResponse::Ok().json(lag_json(&urls, &group_id, l)))
}

async fn lag_summary(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    path: GroupPath,
) -> ApiResult<HttpResponse> {
    let (cluster, group_id) = path.into_inner();
    check_cluster(&state, &cluster)?;
    let lags = group_lags(&state, &caller, &group_id).await?;
    // Sorted largest first: the first is the max. With nothing committed there is no
    // lag to summarise, and Confluent answers 404 rather than nulls in required fields.
    let Some(max) = lags.first() else {
        return Err(ApiError::not_found(format!(
            "Consumer group {group_id} has no committed offsets, so no lag summary."
        )));
    };
    let urls = Urls::new(&req, &state);
    let total: i64 = lags.iter().map(|l| l.lag_records).sum();
    let consumer_id = max.member_id.clone().unwrap_or_default();
    // The consumer that owns the partition; with none (no member has it now), the
    // group's consumers, so the link still resolves.
    let max_lag_consumer = if consumer_id.is_empty() {
        urls.related(&format!("/consumer-groups/{group_id}/consumers"))
    } else {
        urls.related(&format!(
            "/consumer-groups/{group_id}/consumers/{consumer_id}"
        ))
    };
    let (topic, partition) = (&max.partition.topic, max.partition.partition);
    Ok(HttpResponse::Ok().json(urls.resource(
        "KafkaConsumerGroupLagSummary",
        &format!("/consumer-groups/{group_id}/lag-summary"),
        &format!("/consumer-group={group_id}/lag-summary"),
        json!({
            "cluster_id": urls.cluster_id,
            "consumer_group_id": group_id,
            "max_lag_consumer_id": consumer_id,
            "max_lag_instance_id": null,
            "max_lag_client_id": max.client_id.clone().unwrap_or_default(),
            "max_lag_topic_name": topic,
            "max_lag_partition_id": partition,
            "max_lag": max.lag_records,
            "total_lag": total,
            "max_lag_consumer": max_lag_consumer,
            "max_lag_partition": urls.related(&format!("/topics/{topic}/partitions/{partition}")),
        }),
    )))
}

/// The latest timestamp a reset accepts: the end of year 9999, the last instant
/// ISO-8601 writes with four year digits. Anything beyond is a client mistake.
const MAX_RESET_TIMESTAMP_MS: i64 = 253_402_300_799_999;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResetBody {
    topic_name: String,
    partitions: Option<Vec<i32>>,
    /// `earliest`, `latest`, `timestamp` or `offset`.
    to: String,
    timestamp: Option<Value>,
    offset: Option<i64>,
}

async fn reset_offsets(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    path: GroupPath,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let (cluster, group_id) = path.into_inner();
    check_cluster(&state, &cluster)?;
    let body = read_body(payload, state.limits.max_request_bytes).await?;
    let body: ResetBody = parse_body(&body)?;
    let spec = match body.to.as_str() {
        "earliest" => ResetSpec::Earliest,
        "latest" => ResetSpec::Latest,
        "timestamp" => {
            let t =
                match &body.timestamp {
                    Some(Value::Number(n)) => n.as_i64().ok_or_else(|| {
                        ApiError::bad_request(format!("timestamp {n} is not whole milliseconds"))
                    })?,
                    Some(Value::String(s)) => parse_timestamp(s)?,
                    _ => return Err(ApiError::bad_request(
                        "'to': 'timestamp' needs a 'timestamp' (ms since the epoch or ISO-8601)",
                    )),
                };
            // Negative timestamps are Kafka's ListOffsets sentinels (-1 latest, -2
            // earliest), not times: say `latest` or `earliest` instead.
            if !(0..=MAX_RESET_TIMESTAMP_MS).contains(&t) {
                return Err(ApiError::bad_request(format!(
                    "timestamp {t} is outside [0, {MAX_RESET_TIMESTAMP_MS}] ms since the epoch"
                )));
            }
            ResetSpec::Timestamp(t)
        }
        "offset" => match body.offset {
            Some(o) if o >= 0 => ResetSpec::Offset(o),
            Some(o) => return Err(ApiError::bad_request(format!("offset {o} is negative"))),
            None => return Err(ApiError::bad_request("'to': 'offset' needs an 'offset'")),
        },
        other => {
            return Err(ApiError::bad_request(format!(
                "'to' is '{other}': use earliest, latest, timestamp or offset"
            )))
        }
    };
    let offsets = groups::reset_offsets(
        &state.engine,
        &caller,
        &group_id,
        body.topic_name,
        body.partitions,
        spec,
    )
    .await?;
    let urls = Urls::new(&req, &state);
    let data: Vec<Value> = offsets
        .iter()
        .map(|(tp, offset)| {
            json!({"topic_name": tp.topic, "partition_id": tp.partition, "offset": offset})
        })
        .collect();
    Ok(HttpResponse::Ok().json(urls.list(
        "KafkaConsumerGroupOffsetList",
        &format!("/consumer-groups/{group_id}/offsets:reset"),
        data,
    )))
}
