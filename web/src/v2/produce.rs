//! v2 produce: `POST /topics/{topic}` and `POST /topics/{topic}/partitions/{p}` with
//! `{"records": [{"key", "value", "partition"}]}`. The `Content-Type` names the
//! embedded format: `application/vnd.kafka.binary.v2+json` (base64 keys and values) or
//! `application/vnd.kafka.json.v2+json` (any JSON). Each record gets an entry in
//! `offsets`, with `error_code`/`error` set when that record failed.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};
use troupe_actors::partition::Acks;
use troupe_actors::BrokerError;

use super::ok;
use crate::error::{codes, ApiError, ApiResult};
use crate::produce::{oversized, produce, route, ProduceRecord};
use crate::records::{decode_base64, EmbeddedFormat};
use crate::state::AppState;
use crate::{json, metrics, read_body};

#[derive(Deserialize)]
struct V2Record {
    key: Option<Value>,
    value: Option<Value>,
    partition: Option<i32>,
}

#[derive(Deserialize)]
struct V2Request {
    records: Vec<V2Record>,
}

/// The embedded format, from the exact `Content-Type` (a substring match took
/// `text/plain; x=vnd.kafka.json.v2+json`, which a page on any site can send).
fn format_of(req: &HttpRequest) -> ApiResult<EmbeddedFormat> {
    crate::content_type::v2_produce_format(req)
}

fn embedded(
    format: EmbeddedFormat,
    v: Option<Value>,
    code: i32,
    what: &str,
) -> ApiResult<Option<Vec<u8>>> {
    match (format, v) {
        (_, None) | (_, Some(Value::Null)) => Ok(None),
        (EmbeddedFormat::Json, Some(v)) => Ok(Some(v.to_string().into_bytes())),
        (EmbeddedFormat::Binary, Some(Value::String(s))) => {
            decode_base64(&s).map(Some).map_err(|e| {
                ApiError::unprocessable(code, format!("The record {what} is not valid base64: {e}"))
            })
        }
        (EmbeddedFormat::Binary, Some(_)) => Err(ApiError::unprocessable(
            code,
            format!("The record {what} must be a base64 string"),
        )),
        (EmbeddedFormat::String, Some(Value::String(s))) => Ok(Some(s.into_bytes())),
        (EmbeddedFormat::String, Some(_)) => Err(ApiError::unprocessable(
            code,
            format!("The record {what} must be a string"),
        )),
    }
}

pub async fn to_topic(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Payload,
) -> ApiResult<HttpResponse> {
    produce_v2(req, state, path.into_inner(), None, body).await
}

pub async fn to_partition(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, i32)>,
    body: web::Payload,
) -> ApiResult<HttpResponse> {
    let (topic, partition) = path.into_inner();
    produce_v2(req, state, topic, Some(partition), body).await
}

async fn produce_v2(
    req: HttpRequest,
    state: web::Data<AppState>,
    topic: String,
    partition: Option<i32>,
    body: web::Payload,
) -> ApiResult<HttpResponse> {
    let format = format_of(&req)?;
    let body = read_body(body, state.limits.max_request_bytes).await?;
    let request: V2Request = json::parse(&body)?;
    if request.records.is_empty() {
        return Err(ApiError::unprocessable(
            codes::INVALID_PAYLOAD,
            "records may not be empty",
        ));
    }
    let mut records = Vec::with_capacity(request.records.len());
    let mut bytes = 0u64;
    for r in request.records {
        let key = embedded(format, r.key, codes::INVALID_KEY, "key")?;
        let value = embedded(format, r.value, codes::INVALID_VALUE, "value")?;
        bytes += (key.as_ref().map_or(0, Vec::len) + value.as_ref().map_or(0, Vec::len)) as u64;
        records.push(ProduceRecord {
            partition: partition.or(r.partition),
            key,
            value,
            headers: Vec::new(),
            timestamp_ms: None,
        });
    }
    let route = route(&state, &topic).await.map_err(|e| {
        if e.error_code == codes::UNKNOWN_TOPIC_OR_PARTITION {
            ApiError::new(e.status, codes::TOPIC_NOT_FOUND, e.message)
        } else {
            e
        }
    })?;
    if let Some(p) = partition {
        if p < 0 || p as usize >= route.partitions.len() {
            return Err(BrokerError::UnknownPartition {
                topic,
                partition: p,
            }
            .into());
        }
    }
    if let Some(e) = oversized(&records, route.max_message_bytes) {
        return Err(e);
    }
    let count = records.len() as u64;
    let results = produce(&route, records, Acks::All).await;
    let failed = results.iter().filter(|r| r.is_err()).count() as u64;
    // A request whose every record failed for the same reason is that error.
    if failed == count {
        if let Some(Err(e)) = results.first() {
            if results.iter().all(|r| r.as_ref().err() == Some(e)) {
                return Err(e.clone());
            }
        }
    }
    metrics::record_in(&topic, count - failed, bytes);
    let offsets: Vec<Value> = results
        .into_iter()
        .map(|r| match r {
            Ok(p) => json!({"partition": p.partition, "offset": p.offset, "error_code": null, "error": null}),
            Err(e) => json!({"partition": null, "offset": null, "error_code": e.error_code, "error": e.message}),
        })
        .collect();
    Ok(ok(
        json!({"key_schema_id": null, "value_schema_id": null, "offsets": offsets}),
    ))
}
