//! v2 produce: `POST /topics/{topic}` and `POST /topics/{topic}/partitions/{p}` with
//! `{"records": [{"key", "value", "partition"}]}`. The `Content-Type` names the
//! embedded format: `application/vnd.kafka.binary.v2+json` (base64 keys and values) or
//! `application/vnd.kafka.json.v2+json` (any JSON). Each record gets an entry in
//! `offsets`, with `error_code`/`error` set when that record failed.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;
use troupe_actors::partition::Acks;
use troupe_actors::BrokerError;

use crate::error::{codes, ApiError, ApiResult};
use crate::records::{decode_base64, EmbeddedFormat, V2};
use crate::state::AppState;
use crate::{json, metrics, read_body};
use troupe_actors::requests::produce::{
    oversized, produce_in_order, PartitionFailures, ProduceRecord,
};
use troupe_actors::requests::Listener;

/// Records converted and produced at a time, so memory follows the window, not the
/// request (the request's JSON is read whole, and borrowed from, not copied).
const WINDOW_RECORDS: usize = 4096;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct V2Record<'a> {
    #[serde(borrow, default)]
    key: Option<&'a RawValue>,
    #[serde(borrow, default)]
    value: Option<&'a RawValue>,
    partition: Option<i32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct V2Request<'a> {
    #[serde(borrow)]
    records: Vec<V2Record<'a>>,
    // Schema-registry fields of Confluent's schema: known, and refused by name.
    #[serde(borrow, default)]
    key_schema: Option<&'a RawValue>,
    #[serde(borrow, default)]
    value_schema: Option<&'a RawValue>,
    #[serde(borrow, default)]
    key_schema_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    value_schema_id: Option<&'a RawValue>,
}

/// The embedded format, from the exact `Content-Type` (a substring match took
/// `text/plain; x=vnd.kafka.json.v2+json`, which a page on any site can send).
fn format_of(req: &HttpRequest) -> ApiResult<EmbeddedFormat> {
    crate::content_type::v2_produce_format(req)
}

/// A JSON text without the whitespace between its tokens (the text is valid JSON).
fn compact_json(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for &b in text.as_bytes() {
        if in_string {
            out.push(b);
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else if !b.is_ascii_whitespace() {
            in_string = b == b'"';
            out.push(b);
        }
    }
    out
}

fn embedded(
    format: EmbeddedFormat,
    raw: Option<&RawValue>,
    code: i32,
    what: &str,
) -> ApiResult<Option<Vec<u8>>> {
    let Some(raw) = raw.filter(|r| r.get() != "null") else {
        return Ok(None);
    };
    let text = || -> ApiResult<std::borrow::Cow<'_, str>> {
        serde_json::from_str(raw.get()).map_err(|_| {
            let kind = if format == EmbeddedFormat::Binary {
                "a base64 string"
            } else {
                "a string"
            };
            ApiError::unprocessable(code, format!("The record {what} must be {kind}"))
        })
    };
    match format {
        EmbeddedFormat::Json => Ok(Some(compact_json(raw.get()))),
        EmbeddedFormat::Binary => decode_base64(&text()?).map(Some).map_err(|e| {
            ApiError::unprocessable(code, format!("The record {what} is not valid base64: {e}"))
        }),
        EmbeddedFormat::String => Ok(Some(text()?.into_owned().into_bytes())),
    }
}

/// One request record as the produce path takes it.
fn convert(
    format: EmbeddedFormat,
    partition: Option<i32>,
    r: &V2Record<'_>,
) -> ApiResult<ProduceRecord> {
    Ok(ProduceRecord {
        partition: partition.or(r.partition),
        key: embedded(format, r.key, codes::INVALID_KEY, "key")?,
        value: embedded(format, r.value, codes::INVALID_VALUE, "value")?,
        headers: Vec::new(),
        timestamp_ms: None,
    })
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
    let request: V2Request<'_> = json::parse_borrowed(&body)?;
    let schema_fields = [
        ("key_schema", request.key_schema),
        ("value_schema", request.value_schema),
        ("key_schema_id", request.key_schema_id),
        ("value_schema_id", request.value_schema_id),
    ];
    if let Some((name, _)) = schema_fields
        .iter()
        .find(|(_, v)| v.is_some_and(|v| v.get() != "null"))
    {
        return Err(ApiError::unprocessable(
            codes::INVALID_PAYLOAD,
            format!("'{name}' needs a schema registry, which Troupe does not have"),
        ));
    }
    if request.records.is_empty() {
        return Err(ApiError::unprocessable(
            codes::INVALID_PAYLOAD,
            "records may not be empty",
        ));
    }
    let ctx = crate::auth::Caller::of(&req, Listener::Http).0;
    let route = state.produce_target(&ctx, &topic).map_err(|e| {
        if e.error_code == codes::UNKNOWN_TOPIC_OR_PARTITION {
            ApiError::new(e.status, codes::TOPIC_NOT_FOUND, e.message)
        } else {
            e
        }
    })?;
    if let Some(p) = partition {
        if p < 0 || p as usize >= route.partition_count() {
            return Err(BrokerError::UnknownPartition {
                topic,
                partition: p,
            }
            .into());
        }
    }
    // Every record is checked before any is written: one invalid or oversized record
    // refuses the request.
    for r in &request.records {
        let record = convert(format, partition, r)?;
        if let Some(e) = oversized(std::slice::from_ref(&record), route.max_message_bytes) {
            return Err(e.into());
        }
    }
    let count = request.records.len();
    let (mut ok, mut bytes) = (0u64, 0u64);
    // The first error, while every record so far failed with it.
    let mut uniform_error: Option<Option<ApiError>> = None;
    let mut offsets = Vec::with_capacity(count * 64);
    offsets.push(b'[');
    let mut failures = PartitionFailures::new();
    for window in request.records.chunks(WINDOW_RECORDS) {
        let records = window
            .iter()
            .map(|r| convert(format, partition, r))
            .collect::<ApiResult<Vec<_>>>()?;
        bytes += records
            .iter()
            .map(|r| {
                (r.key.as_ref().map_or(0, Vec::len) + r.value.as_ref().map_or(0, Vec::len)) as u64
            })
            .sum::<u64>();
        for r in produce_in_order(&route, records, Acks::All, &mut failures).await {
            let r = r.map_err(ApiError::from);
            let entry = match &r {
                Ok(p) => {
                    json!({"partition": p.partition, "offset": p.offset, "error_code": null, "error": null})
                }
                Err(e) => {
                    json!({"partition": null, "offset": null, "error_code": e.error_code, "error": e.message})
                }
            };
            match r {
                Ok(_) => {
                    ok += 1;
                    uniform_error = Some(None);
                }
                Err(e) => match &uniform_error {
                    None => uniform_error = Some(Some(e)),
                    Some(Some(first)) if *first != e => uniform_error = Some(None),
                    Some(_) => {}
                },
            }
            if offsets.len() > 1 {
                offsets.push(b',');
            }
            // Writing a Value into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut offsets, &entry);
        }
    }
    offsets.push(b']');
    metrics::record_in(&topic, ok, bytes);
    if body.len() >= crate::memory::LARGE_BODY_BYTES {
        crate::memory::release_soon();
    }
    // A request whose every record failed for the same reason is that error.
    if let Some(Some(e)) = uniform_error {
        return Err(e);
    }
    // Rendered as text: a `Value` of every offset would cost far more than the request.
    let mut body = br#"{"key_schema_id":null,"value_schema_id":null,"offsets":"#.to_vec();
    body.extend_from_slice(&offsets);
    body.push(b'}');
    Ok(HttpResponse::Ok().content_type(V2).body(body))
}
