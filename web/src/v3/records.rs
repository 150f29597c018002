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
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use troupe_actors::partition::Acks;

use super::check_cluster;
use crate::error::{codes, ApiError, ApiResult};
use crate::json::ValueSplitter;
use crate::produce_json::{
    prepare_request, prepare_slice, produce_prepared, produce_prepared_in_order, Data, Header,
    Prepared, ProduceRequest,
};
use crate::state::AppState;
use crate::{body_error, json, read_body};
use troupe_actors::requests::produce::{PartitionFailures, ProduceTarget};
use troupe_actors::requests::Listener;

/// Records parsed, encoded and produced at a time.
pub const WINDOW_RECORDS: usize = 4096;
/// Bytes of request JSON parsed, encoded and produced at a time.
pub const WINDOW_BYTES: usize = 1024 * 1024;
/// Windows of reports queued for a client before reading its body pauses.
const REPORT_QUEUE_WINDOWS: usize = 4;
/// A record refused for its shape or encoding is reported in band with Confluent's
/// code 400; other failures keep their own code.
fn in_band(result: ApiResult<Value>, shape_error: bool) -> Value {
    match result {
        Ok(v) => v,
        Err(e) if shape_error => json!({"error_code": 400, "message": e.message}),
        Err(e) => e.body(),
    }
}

/// The `acks` query parameter (Troupe's; Confluent's proxy sets it in its producer
/// config): `all` (the default: every in-sync replica has the records), `1` (the
/// leader has them durably) or `0` (answered once written, before any fsync).
fn acks_param(req: &HttpRequest) -> ApiResult<Acks> {
    let query =
        web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
            .map_err(|e| ApiError::bad_request(format!("Bad query string: {e}")))?;
    match query.get("acks") {
        None => Ok(Acks::All),
        Some(text) => Acks::parse(text).ok_or_else(|| {
            ApiError::bad_request(format!("'acks' must be 0, 1 or all, not '{text}'"))
        }),
    }
}

/// Produces one window of record texts; the reports, one JSON line each.
async fn produce_window(
    state: &AppState,
    route: &ProduceTarget,
    texts: &[Bytes],
    failures: &mut PartitionFailures,
    acks: Acks,
) -> Vec<u8> {
    let prepared: Vec<ApiResult<Prepared>> = texts.iter().map(|t| prepare_slice(t)).collect();
    let results = produce_prepared_in_order(state, route, &prepared, acks, failures).await;
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
    state.produce_target(&crate::auth::Caller::of(req, Listener::Http), &topic)
}

pub async fn produce(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Payload,
) -> ApiResult<HttpResponse> {
    let route = target(&state, &req, path)?;
    let acks = acks_param(&req)?;
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
            let single = produce_window(
                &state,
                &route,
                &[whole],
                &mut PartitionFailures::new(),
                acks,
            )
            .await;
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
        let handled_bytes = pump(records, first, &state, &route, tx, acks).await;
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
    acks: Acks,
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
            let lines = produce_window(state, route, &texts, &mut failures, acks).await;
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
