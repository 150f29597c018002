//! `GET /topics/{topic}/partitions/{p}/records`: a direct partition read, as Redpanda's
//! REST proxy offers it (Confluent's proxy needs a consumer instance for this).
//!
//! Query: `offset` (a number, `beginning` or `end`) or `timestamp` (ms since the epoch,
//! or ISO-8601: start at the first record at or after it); `timeout` (ms to wait for
//! data when there is none yet; default 0, at most `fetch.max.wait.ms`); `max_bytes`
//! (default and maximum `fetch.max.bytes`). The `Accept` header picks the embedded
//! format. The answer is a JSON array of `{topic, key, value, partition, offset,
//! timestamp}` from the requested offset on — records before it in the same batch are
//! left out, unlike Redpanda.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use troupe_actors::partition::OffsetSpec;
use troupe_actors::quotas::QuotaKind;
use troupe_actors::requests::fetch::FetchRequest;
use troupe_actors::requests::{self, list_offsets, Listener};
use troupe_actors::BrokerError;

use crate::error::{ApiError, ApiResult};
use crate::metrics;
use crate::records::{EmbeddedFormat, RecordsWriter};
use crate::state::AppState;

#[derive(Deserialize)]
pub struct ReadQuery {
    offset: Option<String>,
    timestamp: Option<String>,
    timeout: Option<u64>,
    max_bytes: Option<usize>,
    /// What to do when `offset` is out of range (retention moved the log start past
    /// it): `earliest` or `latest` restart there, as Kafka's consumer setting; absent
    /// or `none` answers 416.
    #[serde(rename = "auto.offset.reset")]
    auto_offset_reset: Option<String>,
}

pub async fn read(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, i32)>,
    query: web::Query<ReadQuery>,
) -> ApiResult<HttpResponse> {
    let (topic, partition) = path.into_inner();
    read_from(&req, &state, &topic, partition, &query)
        .await
        .map_err(super::topic_error)
}

async fn read_from(
    req: &HttpRequest,
    state: &AppState,
    topic: &str,
    partition: i32,
    query: &ReadQuery,
) -> ApiResult<HttpResponse> {
    let format = EmbeddedFormat::from_accept(req)?;
    let spec = match (&query.offset, &query.timestamp) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "Give either offset or timestamp, not both",
            ))
        }
        (None, None) => return Err(ApiError::bad_request(
            "Missing mandatory parameter 'offset' (a number, 'beginning' or 'end') or 'timestamp'",
        )),
        (Some(o), None) => match o.as_str() {
            "beginning" | "earliest" => Some(OffsetSpec::Earliest),
            "end" | "latest" => Some(OffsetSpec::Latest),
            n => {
                let n: i64 = n.parse().map_err(|_| {
                    ApiError::bad_request(format!(
                        "offset '{n}' is not a number, 'beginning' or 'end'"
                    ))
                })?;
                if n < 0 {
                    return Err(ApiError::bad_request(format!("offset {n} is negative")));
                }
                return fetch(req, state, topic, partition, n, query, format).await;
            }
        },
        (None, Some(t)) => Some(OffsetSpec::Timestamp(crate::timestamps::lookup_timestamp(
            t,
        )?)),
    };
    let ctx = crate::auth::Caller::of(req, Listener::Http).0;
    let offset = list_offsets::list_offset(
        &state.engine,
        &ctx,
        topic,
        partition,
        spec.unwrap_or(OffsetSpec::Latest),
    )
    .await?;
    fetch(req, state, topic, partition, offset, query, format).await
}

async fn fetch(
    req: &HttpRequest,
    state: &AppState,
    topic: &str,
    partition: i32,
    offset: i64,
    query: &ReadQuery,
    format: EmbeddedFormat,
) -> ApiResult<HttpResponse> {
    let max_bytes = query
        .max_bytes
        .unwrap_or(state.limits.max_fetch_bytes)
        .clamp(1, state.limits.max_fetch_bytes);
    let max_wait_ms = query
        .timeout
        .unwrap_or(0)
        .min(state.limits.max_fetch_wait_ms);
    let reset = match query.auto_offset_reset.as_deref() {
        None | Some("none") => None,
        Some("earliest") => Some(OffsetSpec::Earliest),
        Some("latest") => Some(OffsetSpec::Latest),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "auto.offset.reset '{other}' is not earliest, latest or none"
            )))
        }
    };
    let ctx = crate::auth::Caller::of(req, Listener::Http).0;
    let request = FetchRequest {
        partition,
        offset,
        max_bytes,
        max_wait_ms,
        reset,
    };
    let (offset, fetched) = requests::fetch::fetch(&state.engine, &ctx, topic, request).await?;
    let records = fetched
        .data
        .records_from(offset)
        .map_err(|e| BrokerError::undecodable(topic, partition, offset, e))?;
    let bytes: usize = records
        .iter()
        .map(|r| {
            r.record.key.as_ref().map_or(0, Vec::len) + r.record.value.as_ref().map_or(0, Vec::len)
        })
        .sum();
    metrics::record_out(topic, records.len() as u64, bytes as u64);
    // Over its fetch quota, the client's answer waits (Kafka's throttle).
    let throttle = state
        .engine
        .throttle(&ctx, QuotaKind::Consumer, bytes as u64);
    if !throttle.is_zero() {
        actix_web::rt::time::sleep(throttle).await;
    }
    let mut body = RecordsWriter::with_capacity(bytes * 4 / 3 + records.len() * 96);
    for r in &records {
        body.push(topic, partition, r, format);
    }
    Ok(HttpResponse::Ok()
        .content_type(format.content_type())
        .body(body.finish()))
}
