//! `AppState`: what every handler is given — the request layer's [`Engine`] (and
//! through it the broker's actors), the cluster's identity and the HTTP layer's limits.
//! Handlers keep no state of their own.

use metrics_exporter_prometheus::PrometheusHandle;
use troupe_actors::partition::PartitionStatus;
use troupe_actors::requests::metadata;
use troupe_actors::requests::produce::{self, ProduceTarget};
use troupe_actors::requests::{Engine, RequestContext, TopicRoute};

use crate::error::ApiResult;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebLimits {
    /// `http.max.request.bytes`: largest request body accepted.
    pub max_request_bytes: usize,
    /// `fetch.max.wait.ms`: longest a consume request may long-poll.
    pub max_fetch_wait_ms: u64,
    /// `fetch.max.bytes`: largest consume response, and the default when none is asked.
    pub max_fetch_bytes: usize,
    /// `http.request.body.timeout.ms`: how long a body of known length may take to
    /// arrive, and how long a chunked one may go silent.
    pub body_timeout_ms: u64,
}

impl Default for WebLimits {
    fn default() -> Self {
        WebLimits {
            max_request_bytes: 32 * 1024 * 1024,
            max_fetch_wait_ms: 30_000,
            max_fetch_bytes: 1024 * 1024,
            body_timeout_ms: 30_000,
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    /// The request layer, and through it the broker's actors.
    pub engine: Engine,
    pub cluster_id: String,
    pub node_id: i32,
    /// The host and port clients reach this broker at (for the brokers resources).
    pub advertised_host: String,
    pub advertised_port: u16,
    pub limits: WebLimits,
    pub metrics: Option<PrometheusHandle>,
    /// `consumer.request.timeout.ms`: a records request's wait when it names none.
    pub consumer_request_timeout_ms: u64,
    /// When this broker started (ms since the epoch), for its uptime.
    pub started_at_ms: i64,
    /// The WebSocket layer's limits and open-connection count.
    pub ws: std::sync::Arc<crate::ws_hub::WsHub>,
    /// How v2 consumer requests reach the node whose instance they name.
    pub forwarder: crate::forwarding::Forwarder,
}

impl AppState {
    /// Where a topic's partitions are (a read of the published metadata).
    pub fn route(&self, topic: &str) -> ApiResult<TopicRoute> {
        Ok(self.engine.route(topic)?)
    }

    /// The topic's route and the status of partition `Some(p)`, or of all of them.
    pub async fn partition_statuses(
        &self,
        ctx: &RequestContext,
        topic: &str,
        partition: Option<i32>,
    ) -> ApiResult<(TopicRoute, Vec<PartitionStatus>)> {
        Ok(metadata::partition_statuses(&self.engine, ctx, topic, partition).await?)
    }

    /// The topic routed for one produce request (unknown, internal and deleting
    /// topics refused).
    pub fn produce_target(&self, ctx: &RequestContext, topic: &str) -> ApiResult<ProduceTarget> {
        Ok(produce::target(&self.engine, ctx, topic)?)
    }
}
