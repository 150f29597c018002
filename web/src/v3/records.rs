//! `POST /v3/clusters/{cluster_id}/topics/{topic}/records`: Confluent's v3 produce,
//! and `…/records:batch`, its batch form.
//!
//! The body of `…/records` is a stream of JSON records, one or several concatenated
//! (Confluent's streamed form, usually sent with `Transfer-Encoding: chunked` and kept
//! open). As in Confluent, the answer is HTTP 200 and one JSON report per record, in
//! order: `{"error_code": 200, …}` on success or `{"error_code", "message"}` on
//! failure — a record of the wrong shape (an unknown or misspelled field, a bad type,
//! bad base64) fails alone, in band, with error code 400, and nothing of it is written.
//! A chunked body is answered as it arrives: each record is produced once it is
//! complete and its report sent once it is acknowledged, while the connection stays
//! open. A body of known length is checked for JSON syntax whole before any record is
//! written (a syntax error anywhere refuses all of it with HTTP 400); in a chunked
//! body a syntax error ends the stream there, after the records before it.
//!
//! Memory per request is bounded: records are parsed, encoded and produced in windows
//! of at most [`WINDOW_RECORDS`] records or [`WINDOW_BYTES`] bytes of JSON, and reports
//! go out through a bounded channel, so a client that does not read its answers stops
//! the reading of its body rather than growing the broker.
//!
//! Key and value are `{"type": "BINARY"|"JSON"|"STRING", "data": …}`; BINARY data is
//! base64. There is no schema registry, so a key or value without a type, or with
//! schema fields, is refused.

use actix_web::http::header;
use actix_web::web::{Bytes, BytesMut};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use troupe_actors::partition::Acks;
use troupe_actors::storage::RecordHeader;

use super::check_cluster;
use crate::error::{codes, ApiError, ApiResult};
use crate::json::ValueSplitter;
use crate::records::decode_base64;
use crate::state::AppState;
use crate::{body_error, json, metrics, read_body};
use troupe_actors::requests::produce::{
    produce_in_order, PartitionFailures, ProduceRecord, ProduceTarget, Produced,
};
use troupe_actors::requests::RequestContext;

/// Records parsed, encoded and produced at a time.
pub const WINDOW_RECORDS: usize = 4096;
/// Bytes of request JSON parsed, encoded and produced at a time.
pub const WINDOW_BYTES: usize = 1024 * 1024;
/// Windows of reports queued for a client before reading its body pauses.
const REPORT_QUEUE_WINDOWS: usize = 4;
/// Latest timestamp a record may carry: the end of year 9999, the last instant
/// ISO-8601 (and so the report) can state.
const MAX_TIMESTAMP_MS: i64 = 253_402_300_799_999;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Data {
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
struct Header {
    name: String,
    value: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
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

/// A timestamp as ms since the epoch or ISO-8601 (shared with WebSocket frames),
/// between the epoch and the end of year 9999: Kafka has no record timestamps before
/// the epoch (-1 means "none"), and a later one could not be reported back.
pub(crate) fn parse_timestamp(v: Value) -> ApiResult<i64> {
    let ms = match v {
        Value::Number(n) => n.as_i64().ok_or_else(|| {
            ApiError::bad_request("timestamp must be a whole number of milliseconds")
        })?,
        Value::String(s) => DateTime::parse_from_rfc3339(&s)
            .map(|t| t.timestamp_millis())
            .map_err(|e| ApiError::bad_request(format!("timestamp '{s}' is not ISO-8601: {e}")))?,
        _ => {
            return Err(ApiError::bad_request(
                "timestamp must be an ISO-8601 string or milliseconds",
            ))
        }
    };
    if !(0..=MAX_TIMESTAMP_MS).contains(&ms) {
        return Err(ApiError::bad_request(format!(
            "timestamp {ms} is out of range: from 0 (1970-01-01T00:00:00Z) to {MAX_TIMESTAMP_MS} (9999-12-31T23:59:59.999Z)"
        )));
    }
    Ok(ms)
}

pub(crate) struct Prepared {
    pub(crate) record: ProduceRecord,
    key_type: Option<String>,
    value_type: Option<String>,
}

/// One record in the v3 produce schema (shared with WebSocket produce frames).
pub(crate) fn prepare(value: Value) -> ApiResult<Prepared> {
    prepare_request(json::from_value(value)?)
}

/// One record from its JSON text.
fn prepare_slice(text: &[u8]) -> ApiResult<Prepared> {
    prepare_request(json::parse(text)?)
}

fn prepare_request(request: ProduceRequest) -> ApiResult<Prepared> {
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
async fn produce_prepared_in_order(
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

/// A record refused for its shape or encoding is reported in band with Confluent's
/// code 400; other failures keep their own code.
fn in_band(result: ApiResult<Value>, shape_error: bool) -> Value {
    match result {
        Ok(v) => v,
        Err(e) if shape_error => json!({"error_code": 400, "message": e.message}),
        Err(e) => e.body(),
    }
}

/// Produces one window of record texts; the reports, one JSON line each.
async fn produce_window(
    state: &AppState,
    route: &ProduceTarget,
    texts: &[Bytes],
    failures: &mut PartitionFailures,
) -> Vec<u8> {
    let prepared: Vec<ApiResult<Prepared>> = texts.iter().map(|t| prepare_slice(t)).collect();
    let results = produce_prepared_in_order(state, route, &prepared, Acks::All, failures).await;
    let mut out = Vec::with_capacity(results.len() * 160);
    for (p, r) in prepared.iter().zip(results) {
        let line = in_band(r, p.is_err());
        // Writing a Value into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut out, &line);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn is_chunked(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::TRANSFER_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
}

/// The topic a v3 produce path names, checked: this cluster, a topic that takes
/// records (unknown and internal topics are HTTP errors, before the body is read).
fn target(
    state: &AppState,
    req: &HttpRequest,
    path: web::Path<(String, String)>,
) -> ApiResult<ProduceTarget> {
    let (cluster_id, topic) = path.into_inner();
    check_cluster(state, &cluster_id)?;
    state.produce_target(&RequestContext::http(req.peer_addr()), &topic)
}

pub async fn produce(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Payload,
) -> ApiResult<HttpResponse> {
    let route = target(&state, &req, path)?;
    let limit = state.limits.max_request_bytes;
    let (records, first) = if is_chunked(&req) {
        let mut records = RecordStream {
            payload: Some(body),
            splitter: ValueSplitter::new(limit),
            eof: false,
        };
        // The first record is awaited before the answer starts, so a stream that is
        // empty or broken from its first byte gets the same HTTP error as a body of
        // known length would.
        let first = records.next_window().await?;
        if first.0.is_empty() {
            return Err(ApiError::unprocessable(
                codes::INVALID_PAYLOAD,
                "The request body holds no record",
            ));
        }
        (records, Some(first))
    } else {
        let whole = read_body(body, limit).await?;
        let count = json::count_values(&whole).map_err(json::shape_error)?;
        if count == 0 {
            return Err(ApiError::unprocessable(
                codes::INVALID_PAYLOAD,
                "The request body holds no record",
            ));
        }
        if count == 1 {
            let large = whole.len() >= crate::memory::LARGE_BODY_BYTES;
            let single =
                produce_window(&state, &route, &[whole], &mut PartitionFailures::new()).await;
            if large {
                crate::memory::release_soon();
            }
            return Ok(HttpResponse::Ok()
                .content_type("application/json")
                .body(trim_line_end(single)));
        }
        let records = RecordStream {
            payload: None,
            // The body's own buffer, not a copy, when nothing else holds it.
            splitter: ValueSplitter::whole(
                whole
                    .try_into_mut()
                    .unwrap_or_else(|shared| BytesMut::from(&shared[..])),
            ),
            eof: true,
        };
        (records, None)
    };
    let (tx, rx) = mpsc::channel::<Bytes>(REPORT_QUEUE_WINDOWS);
    let state = state.into_inner();
    actix_web::rt::spawn(async move {
        let handled_bytes = pump(records, first, &state, &route, tx).await;
        if handled_bytes >= crate::memory::LARGE_BODY_BYTES {
            crate::memory::release_soon();
        }
    });
    // The guard asks for a trim once the last report has gone, if they were many.
    let sent = crate::memory::ReleaseOnDrop { bytes: 0 };
    let reports = futures::stream::unfold((rx, sent), |(mut rx, mut sent)| async move {
        let b = rx.recv().await?;
        sent.bytes += b.len();
        Some((Ok::<_, actix_web::Error>(b), (rx, sent)))
    });
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .streaming(reports))
}

/// Produces the records of `source` window by window (starting with `first`, when
/// already read), sending each window's reports to `tx`; ends with the stream, its
/// first error (sent as the last report), or the client going away. Returns the bytes
/// of records handled.
async fn pump(
    mut source: RecordStream,
    mut first: Option<(Vec<Bytes>, bool)>,
    state: &AppState,
    route: &ProduceTarget,
    tx: mpsc::Sender<Bytes>,
) -> usize {
    let mut handled_bytes = 0;
    let mut failures = PartitionFailures::new();
    loop {
        let window = match first.take() {
            Some(w) => Ok(w),
            None => source.next_window().await,
        };
        let (texts, end) = match window {
            Ok(w) => w,
            Err(e) => {
                let mut line = e.body().to_string().into_bytes();
                line.extend_from_slice(b"\r\n");
                let _ = tx.send(Bytes::from(line)).await;
                return handled_bytes;
            }
        };
        if !texts.is_empty() {
            handled_bytes += texts.iter().map(Bytes::len).sum::<usize>();
            let lines = produce_window(state, route, &texts, &mut failures).await;
            if tx.send(Bytes::from(lines)).await.is_err() {
                // The client went away: stop reading its body.
                return handled_bytes;
            }
        }
        if end {
            return handled_bytes;
        }
    }
}

fn trim_line_end(mut line: Vec<u8>) -> Vec<u8> {
    while line.last().is_some_and(u8::is_ascii_whitespace) {
        line.pop();
    }
    line
}

/// The records of one produce request, as they arrive.
struct RecordStream {
    /// `None` when the body arrived whole before.
    payload: Option<web::Payload>,
    splitter: ValueSplitter,
    eof: bool,
}

impl RecordStream {
    /// The next window of record texts: whatever complete records are buffered (up to
    /// the window's bounds), waiting for the body only when none is. `true` once the
    /// body has ended and everything was handed out. A syntax error, a body error or a
    /// record over the size limit ends the stream with that error.
    async fn next_window(&mut self) -> ApiResult<(Vec<Bytes>, bool)> {
        let RecordStream {
            payload,
            splitter,
            eof,
        } = self;
        let mut texts = Vec::new();
        let mut bytes = 0;
        loop {
            while texts.len() < WINDOW_RECORDS && bytes < WINDOW_BYTES {
                match splitter.next_value(*eof) {
                    Some(Ok(text)) => {
                        bytes += text.len();
                        texts.push(text);
                    }
                    Some(Err(e)) => {
                        if texts.is_empty() {
                            return Err(json::shape_error(e));
                        }
                        // Produce what came before; the error comes next time.
                        return Ok((texts, false));
                    }
                    None => break,
                }
            }
            if !texts.is_empty() {
                return Ok((texts, false));
            }
            if *eof {
                return if splitter.is_blank() {
                    Ok((texts, true))
                } else {
                    Err(ApiError::malformed_json("the stream ends inside a record"))
                };
            }
            let Some(payload) = payload else {
                *eof = true;
                continue;
            };
            match payload.next().await {
                Some(Ok(chunk)) => splitter.push(&chunk)?,
                Some(Err(e)) => return Err(body_error(e)),
                None => *eof = true,
            }
        }
    }
}

/// Entries one `records:batch` request may carry (Confluent's default limit).
pub const BATCH_MAX_ENTRIES: usize = 10;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchRequest {
    entries: Vec<BatchEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchEntry {
    id: Value,
    partition_id: Option<i32>,
    #[serde(default)]
    headers: Vec<Header>,
    key: Option<Data>,
    value: Option<Data>,
    timestamp: Option<Value>,
}

/// `POST …/topics/{topic}/records:batch`: up to [`BATCH_MAX_ENTRIES`] records, each
/// with a client-chosen `id` (a string of 1 to 80 characters, distinct within the
/// request); the answer is 207 with `successes` and `failures`, each naming its id.
pub async fn produce_batch(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Payload,
) -> ApiResult<HttpResponse> {
    let route = target(&state, &req, path)?;
    let body = read_body(body, state.limits.max_request_bytes).await?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::unprocessable(
            codes::INVALID_PAYLOAD,
            "The request body holds no batch",
        ));
    }
    let request: BatchRequest = json::parse(&body)?;
    if request.entries.is_empty() {
        return Err(ApiError::bad_request("A batch needs at least one entry"));
    }
    if request.entries.len() > BATCH_MAX_ENTRIES {
        return Err(ApiError::bad_request(format!(
            "A batch holds at most {BATCH_MAX_ENTRIES} entries; this one has {}",
            request.entries.len()
        )));
    }
    let mut ids = Vec::with_capacity(request.entries.len());
    for e in &request.entries {
        let id = match &e.id {
            Value::String(s) if (1..=80).contains(&s.chars().count()) => s.clone(),
            other => {
                return Err(ApiError::bad_request(format!(
                    "Each entry needs an 'id': a string of 1 to 80 characters (got {other})"
                )))
            }
        };
        if ids.contains(&id) {
            return Err(ApiError::bad_request(format!(
                "Entry ids must be distinct: '{id}' appears twice"
            )));
        }
        ids.push(id);
    }
    let prepared: Vec<ApiResult<Prepared>> = request
        .entries
        .into_iter()
        .map(|e| {
            prepare_request(ProduceRequest {
                partition_id: e.partition_id,
                headers: e.headers,
                key: e.key,
                value: e.value,
                timestamp: e.timestamp,
            })
        })
        .collect();
    let results = produce_prepared(&state, &route, &prepared, Acks::All).await;
    let (mut successes, mut failures) = (Vec::new(), Vec::new());
    for ((id, p), r) in ids.into_iter().zip(&prepared).zip(results) {
        let mut line = in_band(r, p.is_err());
        if line["error_code"] == json!(200) {
            if let Some(o) = line.as_object_mut() {
                o.remove("error_code");
                o.insert("id".into(), Value::String(id));
            }
            successes.push(line);
        } else {
            failures.push(
                json!({"id": id, "error_code": line["error_code"], "message": line["message"]}),
            );
        }
    }
    Ok(
        HttpResponse::build(actix_web::http::StatusCode::MULTI_STATUS)
            .json(json!({"successes": successes, "failures": failures})),
    )
}
