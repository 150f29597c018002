//! Confluent REST Proxy v2: produce (`POST /topics/{topic}`), topic and partition
//! metadata, `GET /brokers`, consumer instances (`/consumers/…`), and the direct
//! partition read that Redpanda's proxy offers
//! (`GET /topics/{topic}/partitions/{p}/records`). Responses are
//! `application/vnd.kafka.v2+json`.

pub mod consumers;
pub mod produce;
pub mod records;
pub mod topics;

use actix_web::{web, HttpResponse};
use serde_json::json;

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

pub fn ok(body: serde_json::Value) -> HttpResponse {
    HttpResponse::Ok().content_type(V2).body(body.to_string())
}

async fn brokers(state: web::Data<AppState>) -> HttpResponse {
    ok(json!({ "brokers": [state.node_id] }))
}
