//! `troupe-web`: the HTTP face of a Troupe broker (actix-web). It translates requests
//! into typed messages to the actors and their answers back into Confluent REST Proxy
//! v3/v2-compatible responses; it holds no state of its own.
//!
//! - [`v3`]: admin (clusters, brokers, topics, partitions, configs) and produce.
//! - [`v2`]: produce, metadata, and direct partition reads (Redpanda's form).
//! - [`ws`]: `/ws`, live consumption and produce over WebSocket.
//! - [`dashboard`]: the browser dashboard at `/`.
//! - `/health` and `/metrics` (Prometheus text).
//! - [`controller_listener`]: the metadata quorum's Raft RPCs between voters, mounted
//!   on a listener of their own.

pub mod auth;
pub mod body_timeout;
pub mod browser_safety;
pub mod content_type;
pub mod controller_listener;
pub mod dashboard;
pub mod error;
pub mod forwarding;
pub mod json;
pub mod memory;
pub mod metrics;
pub mod produce_json;
pub mod records;
pub mod state;
pub mod timestamps;
pub mod v2;
pub mod v3;
pub mod ws;
pub mod ws_hub;

use actix_web::{web, HttpResponse};

pub use browser_safety::BrowserSafety;
pub use error::{ApiError, ApiResult};
pub use state::{AppState, WebLimits};
pub use v2::forward::HTTP_LISTENER;
pub use ws_hub::{WsHub, WsLimits};

/// Registers every route. The caller adds `web::Data<AppState>`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(health))
        .route("/ws", web::get().to(ws::connect))
        .route("/metrics", web::get().to(metrics::render));
    v3::configure(cfg);
    v2::configure(cfg);
    dashboard::configure(cfg);
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "UP"}))
}

/// JSON error bodies for unknown routes and extractor failures, so every error a
/// client sees has the same shape.
pub fn not_found() -> ApiError {
    ApiError::not_found("HTTP 404 Not Found")
}

pub async fn default_service() -> actix_web::Result<HttpResponse> {
    Err(not_found().into())
}

pub fn path_error(
    err: actix_web::error::PathError,
    _: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::bad_request(format!("Invalid path parameter: {err}")).into()
}

pub fn query_error(
    err: actix_web::error::QueryPayloadError,
    _: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::bad_request(format!("Invalid query parameter: {err}")).into()
}

/// A failed body read: 408 / 40801 when the body was too slow, else 400.
pub fn body_error(e: actix_web::error::PayloadError) -> ApiError {
    if body_timeout::is_timeout(&e) {
        return ApiError::new(
            actix_web::http::StatusCode::REQUEST_TIMEOUT,
            error::codes::REQUEST_TIMEOUT,
            format!("Request body too slow: {e}"),
        );
    }
    ApiError::bad_request(format!("Cannot read the request body: {e}"))
}

/// Reads a request body up to `limit` bytes; a larger one is a 413 with a JSON body.
pub async fn read_body(mut payload: web::Payload, limit: usize) -> ApiResult<web::Bytes> {
    use futures::StreamExt;
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(body_error)?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::new(
                actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
                error::codes::PAYLOAD_TOO_LARGE,
                format!("Request body larger than http.max.request.bytes = {limit}"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}
