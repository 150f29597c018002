//! Confluent REST Proxy v2: produce (`POST /topics/{topic}`), topic and partition
//! metadata, `GET /brokers`, consumer instances (`/consumers/…`), and the direct
//! partition read that Redpanda's proxy offers
//! (`GET /topics/{topic}/partitions/{p}/records`). Responses are
//! `application/vnd.kafka.v2+json`, errors included ([`typed_errors`]), and an unknown
//! topic is v2's 40401 (v3 and Troupe's own routes say 40403; in v2, 40403 is an
//! unknown consumer instance).

pub mod consumers;
pub mod forward;
pub mod produce;
pub mod records;
pub mod topics;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderValue, CONTENT_TYPE};
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpResponse};
use serde_json::json;
use troupe_actors::consumer::ConsumerError;
use troupe_actors::ErrorKind;

use crate::error::{codes, ApiError};
use crate::records::V2;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/brokers", web::get().to(brokers))
        .route("/topics", web::get().to(topics::list))
        .route("/topics/{topic}", web::get().to(topics::get))
        .route("/topics/{topic}", web::post().to(produce::to_topic))
        .route(
            "/topics/{topic}/partitions",
            web::get().to(topics::partitions),
        )
        .route(
            "/topics/{topic}/partitions/{partition}",
            web::get().to(topics::partition),
        )
        .route(
            "/topics/{topic}/partitions/{partition}",
            web::post().to(produce::to_partition),
        )
        .route(
            "/topics/{topic}/partitions/{partition}/offsets",
            web::get().to(topics::offsets),
        )
        .route(
            "/topics/{topic}/partitions/{partition}/records",
            web::get().to(records::read),
        );
    consumers::configure(cfg);
}

/// Whether a path is one of v2's (`/topics…`, `/consumers…`, `/brokers`).
pub fn is_v2_path(path: &str) -> bool {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    matches!(first, "topics" | "consumers" | "brokers")
}

/// v2 errors are typed `application/vnd.kafka.v2+json`, as every v2 answer is
/// (Confluent's v2 resources produce only that type). Covers every error on a v2
/// path, extractor and routing errors included, in one place.
pub async fn typed_errors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let v2 = is_v2_path(req.path());
    let mut res = next.call(req).await?;
    let status = res.status();
    if v2 && (status.is_client_error() || status.is_server_error()) {
        let json = res
            .headers()
            .get(CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
        if json {
            res.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(V2));
        }
    }
    Ok(res)
}

/// A v2 error from a route that involves no consumer instance: there 40403 can only
/// mean an unknown topic, which v2 calls 40401.
pub fn topic_error(e: ApiError) -> ApiError {
    if e.error_code == codes::UNKNOWN_TOPIC_OR_PARTITION {
        ApiError::new(e.status, codes::TOPIC_NOT_FOUND, e.message)
    } else {
        e
    }
}

/// A consumer instance's error in v2's codes: an unknown topic is 40401 (40403 stays
/// an unknown instance).
pub fn consumer_error(e: ConsumerError) -> ApiError {
    let unknown_topic = e.kind() == ErrorKind::UnknownTopic;
    let e = ApiError::from(e);
    if unknown_topic {
        ApiError::new(e.status, codes::TOPIC_NOT_FOUND, e.message)
    } else {
        e
    }
}

pub fn ok(body: serde_json::Value) -> HttpResponse {
    HttpResponse::Ok().content_type(V2).body(body.to_string())
}

async fn brokers(state: web::Data<AppState>) -> HttpResponse {
    let ids: Vec<i32> = state
        .engine
        .image()
        .brokers
        .keys()
        .map(|b| b.get())
        .collect();
    ok(json!({ "brokers": ids }))
}
