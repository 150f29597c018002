//! The JSON record a client produces, in Confluent v3's shape —
//! `{"partition_id", "headers", "key": {"type", "data"}, "value", "timestamp"}` — which
//! v3 produce bodies and WebSocket `produce` frames share: its parsing into a
//! [`ProduceRecord`], producing prepared records through the request layer, and the
//! per-record report. Neither adapter owns it, so neither imports the other.
//!
//! Key and value are `{"type": "BINARY"|"JSON"|"STRING", "data": …}`; BINARY data is
//! base64. There is no schema registry, so a key or value without a type, or with
//! schema fields, is refused.

use chrono::{SecondsFormat, TimeZone, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use troupe_actors::partition::Acks;
use troupe_actors::requests::produce::{
    produce_in_order, PartitionFailures, ProduceRecord, ProduceTarget, Produced,
};
use troupe_actors::storage::RecordHeader;

use crate::error::{codes, ApiError, ApiResult};
use crate::records::decode_base64;
use crate::state::AppState;
use crate::timestamps::record_timestamp;
use crate::{json, metrics};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Data {
    #[serde(rename = "type")]
    kind: Option<String>,
    data: Option<Value>,
    // Schema-registry fields of Confluent's schema: known, and refused by name.
    subject: Option<Value>,
    subject_name_strategy: Option<Value>,
    schema_id: Option<Value>,
    schema_version: Option<Value>,
    schema: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Header {
    name: String,
    value: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProduceRequest {
    pub(crate) partition_id: Option<i32>,
    #[serde(default)]
    pub(crate) headers: Vec<Header>,
    pub(crate) key: Option<Data>,
    pub(crate) value: Option<Data>,
    pub(crate) timestamp: Option<Value>,
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
    let schema_fields = [
        ("subject", &data.subject),
        ("subject_name_strategy", &data.subject_name_strategy),
        ("schema_id", &data.schema_id),
        ("schema_version", &data.schema_version),
        ("schema", &data.schema),
    ];
    if let Some((name, _)) = schema_fields.iter().find(|(_, v)| v.is_some()) {
        return Err(ApiError::unprocessable(
            code,
            format!("The {what} names '{name}': schemas need a schema registry, which Troupe does not have"),
        ));
    }
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

pub(crate) struct Prepared {
    pub(crate) record: ProduceRecord,
    key_type: Option<String>,
    value_type: Option<String>,
}

/// One record from a parsed JSON value (a WebSocket frame's record).
pub(crate) fn prepare(value: Value) -> ApiResult<Prepared> {
    prepare_request(json::from_value(value)?)
}

/// One record from its JSON text.
pub(crate) fn prepare_slice(text: &[u8]) -> ApiResult<Prepared> {
    prepare_request(json::parse(text)?)
}

pub(crate) fn prepare_request(request: ProduceRequest) -> ApiResult<Prepared> {
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
    let timestamp_ms = request.timestamp.map(record_timestamp).transpose()?;
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

/// Produces records already prepared (or refused), in order; each gets its report or
/// its error. Shared by REST and WebSocket produce.
pub(crate) async fn produce_prepared(
    state: &AppState,
    route: &ProduceTarget,
    prepared: &[ApiResult<Prepared>],
    acks: Acks,
) -> Vec<ApiResult<Value>> {
    produce_prepared_in_order(state, route, prepared, acks, &mut PartitionFailures::new()).await
}

/// [`produce_prepared`] for one window of a request (see [`produce_in_order`]).
pub(crate) async fn produce_prepared_in_order(
    state: &AppState,
    route: &ProduceTarget,
    prepared: &[ApiResult<Prepared>],
    acks: Acks,
    failures: &mut PartitionFailures,
) -> Vec<ApiResult<Value>> {
    let valid: Vec<ProduceRecord> = prepared
        .iter()
        .filter_map(|p| p.as_ref().ok().map(|p| p.record.clone()))
        .collect();
    let mut produced = produce_in_order(route, valid, acks, failures)
        .await
        .into_iter()
        .map(|r| r.map_err(ApiError::from));
    let (mut ok_records, mut ok_bytes) = (0u64, 0u64);
    let reports = prepared
        .iter()
        .map(|p| match p {
            Err(e) => Err(e.clone()),
            Ok(p) => match produced.next() {
                Some(Ok(done)) => {
                    ok_records += 1;
                    ok_bytes += (p.record.key.as_ref().map_or(0, Vec::len)
                        + p.record.value.as_ref().map_or(0, Vec::len))
                        as u64;
                    Ok(report(state, &route.name, p, &done))
                }
                Some(Err(e)) => Err(e),
                None => Err(ApiError::internal("missing produce result")),
            },
        })
        .collect();
    metrics::record_in(&route.name, ok_records, ok_bytes);
    reports
}
