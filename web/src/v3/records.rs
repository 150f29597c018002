//! `POST /v3/clusters/{cluster_id}/topics/{topic}/records`: Confluent's v3 produce.
//! The body is one JSON record, or several concatenated (Confluent's streamed form,
//! usually sent with `Transfer-Encoding: chunked`): then the answer is HTTP 200 with one
//! JSON report per record, in order, each `{"error_code": 200, …}` on success or
//! `{"error_code", "message"}` on failure. A single record's failure is an HTTP error.
//!
//! Key and value are `{"type": "BINARY"|"JSON"|"STRING", "data": …}`; BINARY data is
//! base64. There is no schema registry, so a key or value without a type is refused.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use troupe_actors::partition::Acks;
use troupe_actors::storage::RecordHeader;

use super::check_cluster;
use crate::error::{codes, ApiError, ApiResult};
use crate::produce::{produce as produce_records, route, ProduceRecord, Produced};
use crate::records::decode_base64;
use crate::state::AppState;
use crate::{json, metrics, read_body};

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "type")]
    kind: Option<String>,
    data: Option<Value>,
}

#[derive(Deserialize)]
struct Header {
    name: String,
    value: Option<String>,
}

#[derive(Deserialize)]
struct ProduceRequest {
    partition_id: Option<i32>,
    #[serde(default)]
    headers: Vec<Header>,
    key: Option<Data>,
    value: Option<Data>,
    timestamp: Option<Value>,
}

/// `(bytes, type name, size)` of a key or value.
fn encode_data(
    data: Option<Data>,
    code: i32,
    what: &str,
) -> ApiResult<(Option<Vec<u8>>, Option<String>)> {
    let Some(data) = data else {
        return Ok((None, None));
    };
    let kind = data
        .kind
        .ok_or_else(|| {
            ApiError::unprocessable(
                code,
                format!(
                    "The {what} needs a type (BINARY, JSON or STRING): there is no schema registry"
                ),
            )
        })?
        .to_ascii_uppercase();
    if !matches!(kind.as_str(), "BINARY" | "JSON" | "STRING") {
        return Err(ApiError::unprocessable(
            code,
            format!("Unsupported {what} type '{kind}': use BINARY, JSON or STRING"),
        ));
    }
    let bytes = match (kind.as_str(), data.data) {
        (_, None) | (_, Some(Value::Null)) => None,
        ("JSON", Some(v)) => {
            Some(serde_json::to_vec(&v).map_err(|e| ApiError::unprocessable(code, e.to_string()))?)
        }
        ("BINARY", Some(Value::String(s))) => Some(decode_base64(&s).map_err(|e| {
            ApiError::unprocessable(code, format!("The {what} is not valid base64: {e}"))
        })?),
        ("STRING", Some(Value::String(s))) => Some(s.into_bytes()),
        (_, Some(_)) => {
            return Err(ApiError::unprocessable(
                code,
                format!("The {what} data of type {kind} must be a JSON string"),
            ));
        }
    };
    Ok((bytes, Some(kind)))
}

/// A timestamp as ms since the epoch or ISO-8601 (shared with WebSocket frames).
pub(crate) fn parse_timestamp(v: Value) -> ApiResult<i64> {
    match v {
        Value::Number(n) => n.as_i64().ok_or_else(|| {
            ApiError::bad_request("timestamp must be a whole number of milliseconds")
        }),
        Value::String(s) => DateTime::parse_from_rfc3339(&s)
            .map(|t| t.timestamp_millis())
            .map_err(|e| ApiError::bad_request(format!("timestamp '{s}' is not ISO-8601: {e}"))),
        _ => Err(ApiError::bad_request(
            "timestamp must be an ISO-8601 string or milliseconds",
        )),
    }
}

pub(crate) struct Prepared {
    pub(crate) record: ProduceRecord,
    key_type: Option<String>,
    value_type: Option<String>,
}

/// One record in the v3 produce schema (shared with WebSocket produce frames).
pub(crate) fn prepare(value: Value) -> ApiResult<Prepared> {
    let request: ProduceRequest = json::from_value(value)?;
    let (key, key_type) = encode_data(request.key, codes::INVALID_KEY, "key")?;
    let (value, value_type) = encode_data(request.value, codes::INVALID_VALUE, "value")?;
    let mut headers = Vec::with_capacity(request.headers.len());
    for h in request.headers {
        let value = match h.value {
            Some(v) => Some(decode_base64(&v).map_err(|e| {
                ApiError::bad_request(format!("header '{}' is not valid base64: {e}", h.name))
            })?),
            None => None,
        };
        headers.push(RecordHeader { key: h.name, value });
    }
    let timestamp_ms = request.timestamp.map(parse_timestamp).transpose()?;
    Ok(Prepared {
        record: ProduceRecord {
            partition: request.partition_id,
            key,
            value,
            headers,
            timestamp_ms,
        },
        key_type,
        value_type,
    })
}

pub(crate) fn report(state: &AppState, topic: &str, p: &Prepared, produced: &Produced) -> Value {
    let mut body = json!({
        "error_code": 200,
        "cluster_id": state.cluster_id,
        "topic_name": topic,
        "partition_id": produced.partition,
        "offset": produced.offset,
        "timestamp": Utc
            .timestamp_millis_opt(produced.timestamp_ms)
            .single()
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true)),
    });
    if let Some(t) = &p.key_type {
        body["key"] = json!({"type": t, "size": p.record.key.as_ref().map_or(0, Vec::len)});
    }
    if let Some(t) = &p.value_type {
        body["value"] = json!({"type": t, "size": p.record.value.as_ref().map_or(0, Vec::len)});
    }
    body
}

pub async fn produce(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Payload,
) -> ApiResult<HttpResponse> {
    let (cluster_id, topic) = path.into_inner();
    check_cluster(&state, &cluster_id)?;
    let body = read_body(body, state.limits.max_request_bytes).await?;
    let chunked = req
        .headers()
        .get(header::TRANSFER_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("chunked"));
    // Parse every record; a syntax error ends the stream at that point.
    let mut entries: Vec<ApiResult<Prepared>> = Vec::new();
    let mut stream_error = None;
    for value in serde_json::Deserializer::from_slice(&body).into_iter::<Value>() {
        match value {
            Ok(v) => entries.push(prepare(v)),
            Err(e) => {
                stream_error = Some(json::shape_error(e));
                break;
            }
        }
    }
    let streamed = chunked || entries.len() + usize::from(stream_error.is_some()) > 1;
    if !streamed {
        if let Some(e) = stream_error {
            return Err(e);
        }
        if entries.is_empty() {
            return Err(ApiError::bad_request("The request body holds no record"));
        }
    }
    let route = route(&state, &topic).await?;
    let (records, kept): (Vec<ProduceRecord>, Vec<usize>) = entries
        .iter()
        .enumerate()
        .filter_map(|(i, e)| e.as_ref().ok().map(|p| (p.record.clone(), i)))
        .unzip();
    let mut results = produce_records(&route, records, Acks::All)
        .await
        .into_iter();
    let mut reports = Vec::with_capacity(entries.len() + 1);
    let (mut ok_records, mut ok_bytes) = (0u64, 0u64);
    for (i, entry) in entries.iter().enumerate() {
        let outcome = match entry {
            Err(e) => Err(e.clone()),
            Ok(p) => {
                debug_assert!(kept.contains(&i));
                match results.next() {
                    Some(Ok(produced)) => {
                        ok_records += 1;
                        ok_bytes += (p.record.key.as_ref().map_or(0, Vec::len)
                            + p.record.value.as_ref().map_or(0, Vec::len))
                            as u64;
                        Ok(report(&state, &topic, p, &produced))
                    }
                    Some(Err(e)) => Err(e),
                    None => Err(ApiError::internal("missing produce result")),
                }
            }
        };
        reports.push(outcome);
    }
    if let Some(e) = stream_error {
        reports.push(Err(e));
    }
    metrics::record_in(&topic, ok_records, ok_bytes);
    if !streamed {
        return match reports.pop() {
            Some(Ok(body)) => Ok(HttpResponse::Ok().json(body)),
            Some(Err(e)) => Err(e),
            None => Err(ApiError::internal("no produce result")),
        };
    }
    let mut out = String::new();
    for r in reports {
        let v = match r {
            Ok(v) => v,
            Err(e) => e.body(),
        };
        out.push_str(&v.to_string());
        out.push_str("\r\n");
    }
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(out))
}
