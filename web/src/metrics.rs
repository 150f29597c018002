//! Prometheus metrics: request counts and latencies per route (a middleware), and
//! bytes and records in and out per topic (recorded by the produce and consume paths).
//! Rendered as Prometheus text at `GET /metrics`.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpResponse};

use crate::state::AppState;

pub async fn render(state: web::Data<AppState>) -> HttpResponse {
    match &state.metrics {
        Some(handle) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4")
            .body(handle.render()),
        None => HttpResponse::ServiceUnavailable().json(serde_json::json!({
            "error_code": 50301,
            "message": "metrics are not enabled in this process"
        })),
    }
}

/// Counts and times every request by method, route pattern and status.
pub async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let method = req.method().to_string();
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
    let res = next.call(req).await?;
    let status = res.status().as_u16().to_string();
    metrics::counter!("troupe_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("troupe_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    Ok(res)
}

pub fn record_in(topic: &str, records: u64, bytes: u64) {
    metrics::counter!("troupe_records_in_total", "topic" => topic.to_string()).increment(records);
    metrics::counter!("troupe_bytes_in_total", "topic" => topic.to_string()).increment(bytes);
}

pub fn record_out(topic: &str, records: u64, bytes: u64) {
    metrics::counter!("troupe_records_out_total", "topic" => topic.to_string()).increment(records);
    metrics::counter!("troupe_bytes_out_total", "topic" => topic.to_string()).increment(bytes);
}
