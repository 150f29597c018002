//! Confluent REST Proxy v2 consumer instances: `POST /consumers/{group}` creates an
//! instance (a consumer the broker runs on the client's behalf, a real member of the
//! group), and `/consumers/{group}/instances/{instance}/…` drives it: subscription,
//! assignments, records, offsets and positions.
//!
//! As Confluent: a commit with a body names the offset of the *last record
//! processed* (the group stores the next one, offset + 1); an empty commit commits
//! everything the instance has returned; `GET …/offsets` answers the stored (next)
//! offsets. The records' embedded format is fixed when the instance is created and
//! the `Accept` header of a records request must match it (406 otherwise).
//!
//! Bodies refuse unknown fields (400), as Confluent's do; `POST …/positions` seeks to
//! offsets and, with `timestamps`, to the first record at or after a time.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};
use troupe_actors::consumer::{
    InstanceSettings, OffsetAndMetadata, ResetPolicy, SeekTo, Subscription,
};
use troupe_actors::group::TopicPartition;
use troupe_actors::requests::consumers::{self, Consumer};
use troupe_actors::requests::RequestContext;

use crate::auth::Caller;
use crate::error::{codes, ApiError, ApiResult};
use crate::json::parse;
use crate::metrics;
use crate::read_body;
use crate::records::{EmbeddedFormat, RecordsWriter};
use crate::state::AppState;
use crate::timestamps::record_timestamp as parse_timestamp;
use crate::v2::{consumer_error, ok};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/consumers/{group}", web::post().to(create))
        .service(
            // An instance on another node is reached there (`forward.rs`).
            web::scope("/consumers/{group}/instances/{instance}")
                .wrap(actix_web::middleware::from_fn(super::forward::forward))
                .route("", web::delete().to(delete))
                .route("/subscription", web::post().to(subscribe))
                .route("/subscription", web::get().to(subscription))
                .route("/subscription", web::delete().to(unsubscribe))
                .route("/assignments", web::post().to(assign))
                .route("/assignments", web::get().to(assignments))
                .route("/records", web::get().to(records))
                .route("/offsets", web::post().to(commit))
                .route("/offsets", web::get().to(committed))
                .route("/positions", web::post().to(seek))
                .route("/positions/beginning", web::post().to(seek_to_beginning))
                .route("/positions/end", web::post().to(seek_to_end)),
        );
}

fn no_content() -> HttpResponse {
    HttpResponse::NoContent().finish()
}

fn invalid_config(message: String) -> ApiError {
    ApiError::unprocessable(codes::INVALID_CONSUMER_CONFIG, message)
}

/// Confluent takes these settings as strings; plain JSON booleans and numbers are
/// accepted as well.
fn setting_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: Option<String>,
    /// Confluent's older name for `name`.
    id: Option<String>,
    format: Option<String>,
    #[serde(rename = "auto.offset.reset")]
    auto_offset_reset: Option<Value>,
    #[serde(rename = "auto.commit.enable")]
    auto_commit_enable: Option<Value>,
    /// Accepted for compatibility; a records request's `timeout` bounds its wait.
    #[serde(rename = "fetch.min.bytes", alias = "responseMinBytes")]
    _fetch_min_bytes: Option<Value>,
    #[serde(rename = "consumer.request.timeout.ms", alias = "requestWaitMs")]
    _request_timeout_ms: Option<Value>,
}

async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    group: web::Path<String>,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let body = read_body(payload, state.limits.max_request_bytes).await?;
    let group_id = group.into_inner();
    let body: CreateBody = if body.is_empty() {
        parse(b"{}")?
    } else {
        parse(&body)?
    };
    // Confluent reads the format case-insensitively.
    let format = body
        .format
        .map(|f| f.to_ascii_lowercase())
        .unwrap_or_else(|| "binary".into());
    if EmbeddedFormat::from_name(&format).is_none() {
        return Err(invalid_config(format!(
            "format '{format}' is not binary, json or string"
        )));
    }
    let reset_text = match &body.auto_offset_reset {
        None => "latest".to_string(),
        Some(v) => setting_text(v).unwrap_or_default(),
    };
    let auto_offset_reset = ResetPolicy::parse(&reset_text).ok_or_else(|| {
        invalid_config(format!(
            "auto.offset.reset '{reset_text}' is not earliest, latest or none"
        ))
    })?;
    let auto_commit = match body.auto_commit_enable.as_ref().map(setting_text) {
        None => false,
        Some(Some(t)) if t == "true" => true,
        Some(Some(t)) if t == "false" => false,
        Some(other) => {
            return Err(invalid_config(format!(
                "auto.commit.enable '{}' is not true or false",
                other.unwrap_or_default()
            )))
        }
    };
    let name = body
        .name
        .or(body.id)
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| format!("rest-consumer-{}", uuid::Uuid::new_v4()));
    let settings = InstanceSettings {
        format,
        auto_offset_reset,
        auto_commit,
        client_id: name.clone(),
    };
    consumers::create(&state.engine, &caller, &group_id, &name, settings).await?;
    let host = req.connection_info().host().to_string();
    let scheme = req.connection_info().scheme().to_string();
    Ok(ok(json!({
        "instance_id": name,
        "base_uri": format!("{scheme}://{host}/consumers/{group_id}/instances/{name}"),
    })))
}

async fn instance(
    state: &AppState,
    ctx: &RequestContext,
    path: &(String, String),
) -> ApiResult<Consumer> {
    Ok(consumers::find(&state.engine, ctx, &path.0, &path.1).await?)
}

type InstancePath = web::Path<(String, String)>;

/// The instance a request is for, and its body parsed.
async fn instance_and_body<T: serde::de::DeserializeOwned>(
    state: &AppState,
    ctx: &RequestContext,
    path: &(String, String),
    payload: web::Payload,
) -> ApiResult<(Consumer, T)> {
    let body = read_body(payload, state.limits.max_request_bytes).await?;
    let addr = instance(state, ctx, path).await?;
    Ok((addr, parse(&body)?))
}

async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    path: InstancePath,
) -> ApiResult<HttpResponse> {
    instance(&state, &caller, &path).await?.close().await?;
    Ok(no_content())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscribeBody {
    topics: Option<Vec<String>>,
    topic_pattern: Option<String>,
}

async fn subscribe(
    state: web::Data<AppState>,
    caller: Caller,
    path: InstancePath,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let (addr, body): (_, SubscribeBody) =
        instance_and_body(&state, &caller, &path, payload).await?;
    let to = match (body.topics, body.topic_pattern) {
        (Some(topics), None) if !topics.is_empty() => Subscription::Topics(topics),
        (None, Some(pattern)) => Subscription::Pattern(pattern),
        (Some(_), Some(_)) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                codes::ILLEGAL_STATE,
                "Subscription to topics, partitions and pattern are mutually exclusive",
            ))
        }
        _ => {
            return Err(ApiError::unprocessable(
                codes::INVALID_PAYLOAD,
                "A subscription needs a non-empty 'topics' list or a 'topic_pattern'",
            ))
        }
    };
    addr.subscribe(to).await.map_err(consumer_error)?;
    Ok(no_content())
}

async fn subscription(
    state: web::Data<AppState>,
    caller: Caller,
    path: InstancePath,
) -> ApiResult<HttpResponse> {
    let topics = instance(&state, &caller, &path)
        .await?
        .subscription()
        .await?;
    Ok(ok(json!({ "topics": topics })))
}

async fn unsubscribe(
    state: web::Data<AppState>,
    caller: Caller,
    path: InstancePath,
) -> ApiResult<HttpResponse> {
    instance(&state, &caller, &path)
        .await?
        .unsubscribe()
        .await
        .map_err(consumer_error)?;
    Ok(no_content())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PartitionRef {
    topic: String,
    partition: i32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PartitionsBody {
    partitions: Vec<PartitionRef>,
}

fn topic_partitions(partitions: Vec<PartitionRef>) -> Vec<TopicPartition> {
    partitions
        .into_iter()
        .map(|p| TopicPartition {
            topic: p.topic,
            partition: p.partition,
        })
        .collect()
}

fn render_partitions(partitions: &[TopicPartition]) -> Value {
    Value::Array(
        partitions
            .iter()
            .map(|tp| json!({"topic": tp.topic, "partition": tp.partition}))
            .collect(),
    )
}

async fn assign(
    state: web::Data<AppState>,
    caller: Caller,
    path: InstancePath,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let (addr, body): (_, PartitionsBody) =
        instance_and_body(&state, &caller, &path, payload).await?;
    addr.assign(topic_partitions(body.partitions))
        .await
        .map_err(consumer_error)?;
    Ok(no_content())
}

async fn assignments(
    state: web::Data<AppState>,
    caller: Caller,
    path: InstancePath,
) -> ApiResult<HttpResponse> {
    let partitions = instance(&state, &caller, &path).await?.assignment().await?;
    Ok(ok(json!({ "partitions": render_partitions(&partitions) })))
}

#[derive(Deserialize)]
struct RecordsQuery {
    timeout: Option<u64>,
    max_bytes: Option<usize>,
}

async fn records(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    path: InstancePath,
    query: web::Query<RecordsQuery>,
) -> ApiResult<HttpResponse> {
    let addr = instance(&state, &caller, &path).await?;
    let info = addr.info().await?;
    let format = EmbeddedFormat::from_name(&info.settings.format).unwrap_or(EmbeddedFormat::Binary);
    if !format.accepted_by(&req) {
        return Err(ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            codes::NOT_ACCEPTABLE,
            format!(
                "The consumer instance's format is {}: accept {}",
                info.settings.format,
                format.content_type()
            ),
        ));
    }
    let timeout_ms = query
        .timeout
        .unwrap_or(state.consumer_request_timeout_ms)
        .min(state.limits.max_fetch_wait_ms);
    let max_bytes = query
        .max_bytes
        .unwrap_or(state.limits.max_fetch_bytes)
        .clamp(1, state.limits.max_fetch_bytes);
    let consumed = addr
        .poll(max_bytes, timeout_ms)
        .await
        .map_err(consumer_error)?;
    let mut body = RecordsWriter::default();
    for r in &consumed {
        let bytes = r.record.record.key.as_ref().map_or(0, Vec::len)
            + r.record.record.value.as_ref().map_or(0, Vec::len);
        metrics::record_out(&r.topic, 1, bytes as u64);
        body.push(&r.topic, r.partition, &r.record, format);
    }
    Ok(HttpResponse::Ok()
        .content_type(format.content_type())
        .body(body.finish()))
}

/// One partition's offset (commits and positions; positions ignore `metadata`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OffsetRef {
    topic: String,
    partition: i32,
    offset: i64,
    metadata: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OffsetsBody {
    offsets: Vec<OffsetRef>,
}

/// One partition's seek to a time: `timestamp` is ISO-8601 or ms since the epoch.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TimestampRef {
    topic: String,
    partition: i32,
    timestamp: Value,
    /// Accepted as Confluent's is; a seek stores nothing.
    #[serde(rename = "metadata")]
    _metadata: Option<String>,
}

/// `POST …/positions`: offsets, timestamps, or both (Confluent's seek request).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeekBody {
    #[serde(default)]
    offsets: Vec<OffsetRef>,
    #[serde(default)]
    timestamps: Vec<TimestampRef>,
}

async fn commit(
    state: web::Data<AppState>,
    caller: Caller,
    path: InstancePath,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let body = read_body(payload, state.limits.max_request_bytes).await?;
    let addr = instance(&state, &caller, &path).await?;
    let offsets = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let body: OffsetsBody = parse(&body)?;
        let mut offsets = Vec::with_capacity(body.offsets.len());
        for o in body.offsets {
            if o.offset < 0 {
                return Err(ApiError::bad_request(format!(
                    "offset {} for {}-{} is negative",
                    o.offset, o.topic, o.partition
                )));
            }
            offsets.push(OffsetAndMetadata {
                partition: TopicPartition {
                    topic: o.topic,
                    partition: o.partition,
                },
                // The last record processed: the group resumes after it.
                offset: o.offset + 1,
                metadata: o.metadata.unwrap_or_default(),
            });
        }
        Some(offsets)
    };
    addr.commit(offsets).await.map_err(consumer_error)?;
    // Confluent answers a JSON list (of the offsets it committed; its own is always
    // empty), typed like every v2 answer.
    Ok(ok(json!([])))
}

/// `GET …/offsets` takes its partitions in a body, as Confluent's does.
async fn committed(
    state: web::Data<AppState>,
    caller: Caller,
    path: InstancePath,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let (addr, body): (_, PartitionsBody) =
        instance_and_body(&state, &caller, &path, payload).await?;
    let committed = addr
        .committed(topic_partitions(body.partitions))
        .await
        .map_err(consumer_error)?;
    let offsets: Vec<Value> = committed
        .into_iter()
        .filter_map(|(tp, c)| {
            c.map(|c| {
                json!({
                    "topic": tp.topic,
                    "partition": tp.partition,
                    "offset": c.offset,
                    "metadata": c.metadata,
                })
            })
        })
        .collect();
    Ok(ok(json!({ "offsets": offsets })))
}

async fn seek(
    state: web::Data<AppState>,
    caller: Caller,
    path: InstancePath,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let (addr, body): (_, SeekBody) = instance_and_body(&state, &caller, &path, payload).await?;
    let mut seeks = Vec::with_capacity(body.offsets.len() + body.timestamps.len());
    for p in body.offsets {
        let tp = TopicPartition {
            topic: p.topic,
            partition: p.partition,
        };
        seeks.push((tp, SeekTo::Offset(p.offset)));
    }
    for t in body.timestamps {
        let tp = TopicPartition {
            topic: t.topic,
            partition: t.partition,
        };
        seeks.push((tp, SeekTo::Timestamp(parse_timestamp(t.timestamp)?)));
    }
    addr.seek(seeks).await.map_err(consumer_error)?;
    Ok(no_content())
}

async fn seek_to(
    state: &AppState,
    ctx: &RequestContext,
    path: &(String, String),
    payload: web::Payload,
    to: SeekTo,
) -> ApiResult<HttpResponse> {
    let (addr, body): (_, PartitionsBody) = instance_and_body(state, ctx, path, payload).await?;
    let seeks = topic_partitions(body.partitions)
        .into_iter()
        .map(|tp| (tp, to))
        .collect();
    addr.seek(seeks).await.map_err(consumer_error)?;
    Ok(no_content())
}

async fn seek_to_beginning(
    state: web::Data<AppState>,
    caller: Caller,
    path: InstancePath,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    seek_to(&state, &caller, &path, payload, SeekTo::Beginning).await
}

async fn seek_to_end(
    state: web::Data<AppState>,
    caller: Caller,
    path: InstancePath,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    seek_to(&state, &caller, &path, payload, SeekTo::End).await
}
